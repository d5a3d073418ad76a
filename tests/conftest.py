"""Repository-wide pytest rules.

A test skipped because a tool is missing (Chromium, websocket-client, a local
server) proves nothing: the run fails instead of passing quietly.
"""

import pytest


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
