"""Repository-wide pytest rules and fixtures.

A test skipped because a tool is missing (Chromium, websocket-client, a local
server) proves nothing: the run fails instead of passing quietly.

The addons' plain-Python parts (providers, exchanges, sandboxes) are imported
through ``odoo.addons`` as the addons import them, with the repository added
to the addons path when pytest runs without Odoo's own options.
"""

import pathlib

import pytest

import odoo.addons

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in odoo.addons.__path__:
    odoo.addons.__path__.append(str(ROOT))

from odoo.addons.credit_insurance.sandbox.server import start_in_thread


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and exitstatus == pytest.ExitCode.OK:
        reporter.write_line(
            f"FAILED: {len(skipped)} test(s) skipped; every test must run "
            "(see the skip reasons above).",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def serve():
    """Serve a WSGI app (with the sandbox's fault injection) on a free
    localhost port; stopped after the test."""
    running = []

    def _serve(app, **options):
        server = start_in_thread(app, **options)
        running.append(server)
        return server

    yield _serve
    for server in running:
        server.stop()
