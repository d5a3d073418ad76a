"""Fixtures for the export exchange tests: the sandbox SOAP intermediary and
hostile servers, over real HTTP on localhost."""

import pathlib

import pytest

import odoo.addons

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in odoo.addons.__path__:
    odoo.addons.__path__.append(str(ROOT))

from odoo.addons.credit_insurance.sandbox.server import start_in_thread
from odoo.addons.credit_insurance_bpi_export.sandbox.soap_server import (
    SandboxSoapIntermediary,
)


@pytest.fixture
def serve():
    """Serve a WSGI app (with the sandbox's fault injection) on localhost."""
    running = []

    def _serve(app, **options):
        server = start_in_thread(app, **options)
        running.append(server)
        return server

    yield _serve
    for server in running:
        server.stop()


@pytest.fixture
def intermediary(serve):
    app = SandboxSoapIntermediary()
    server = serve(app)
    server.soap_url = f"{server.url}/soap"
    return server
