"""Fixtures for the export exchange tests: the sandbox SOAP intermediary over
real HTTP (hostile servers go through ``serve``, in ``tests/conftest.py``)."""

import pytest

from odoo.addons.credit_insurance_bpi_export.sandbox.soap_server import (
    SandboxSoapIntermediary,
)


@pytest.fixture
def intermediary(serve):
    server = serve(SandboxSoapIntermediary())
    server.soap_url = f"{server.url}/soap"
    return server
