"""Fixtures for the provider tests: the sandbox insurer over real HTTP (the
``serve`` fixture for other local servers is in ``tests/conftest.py``)."""

import pytest

from odoo.addons.credit_insurance.sandbox.server import start_sandbox


@pytest.fixture
def sandbox(tmp_path):
    server = start_sandbox(str(tmp_path / "sandbox"))
    yield server
    server.stop()
