"""Fixtures for the provider tests: local servers over real HTTP.

The providers are plain Python; they are imported through ``odoo.addons`` like
the addon imports them, with the repository added to the addons path when
pytest runs these tests without Odoo's own options.
"""

import pathlib

import pytest

import odoo.addons

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in odoo.addons.__path__:
    odoo.addons.__path__.append(str(ROOT))

from odoo.addons.credit_insurance.sandbox.server import (
    start_in_thread,
    start_sandbox,
)


@pytest.fixture
def serve():
    """Serve a WSGI app (with fault injection) on a free localhost port."""
    running = []

    def _serve(app, **options):
        server = start_in_thread(app, **options)
        running.append(server)
        return server

    yield _serve
    for server in running:
        server.stop()


@pytest.fixture
def sandbox(tmp_path):
    server = start_sandbox(str(tmp_path / "sandbox"))
    yield server
    server.stop()
