"""The SOAP transport (zeep) against the sandbox intermediary and hostile
servers, over real HTTP on localhost."""

import subprocess
import sys
import time
from datetime import date
from decimal import Decimal

import pytest
import requests
from bpi_samples import HEADER, overdue

from odoo.addons.credit_insurance_bpi_export.exchange import documents
from odoo.addons.credit_insurance_bpi_export.exchange.errors import (
    HostileXml,
    MalformedAnswer,
    SoapFault,
    TransportError,
)
from odoo.addons.credit_insurance_bpi_export.exchange.soap import ExportSoapClient
from odoo.addons.credit_insurance_bpi_export.sandbox.hostile import (
    FixedAnswer,
    billion_laughs_answer,
    xxe_answer,
)

TURNOVER = documents.build_turnover_declaration(
    documents.TurnoverDeclaration(
        HEADER,
        date(2026, 1, 1),
        date(2026, 3, 31),
        "EUR",
        (documents.CountryTurnover("US", 2, Decimal(1500), 0),),
    )
)
OVERDUE = documents.build_overdue_declaration(overdue())


def test_round_trip_with_the_sandbox(intermediary):
    client = ExportSoapClient(intermediary.soap_url, timeout=5)
    receipt = client.deposit("overdue_declaration", "EXP/2026/0001", OVERDUE)
    assert receipt.accepted and receipt.deposit_number == "DEP-000001"
    assert receipt.message == "Document reçu"
    receipt = client.deposit("turnover_declaration", "EXP/2026/0002", TURNOVER)
    assert receipt.deposit_number == "DEP-000002"
    assert [d["type"] for d in intermediary.app.deposits] == [
        "menace_sinistre",
        "chiffre_affaires",
    ]


def test_the_sandbox_serves_its_wsdl(intermediary):
    answer = requests.get(intermediary.soap_url, params={"wsdl": ""}, timeout=5)
    assert b"DeposerDocument" in answer.content


@pytest.mark.parametrize(
    "document_type, content, message",
    [
        ("overdue_declaration", TURNOVER, "pas du type annoncé"),
        ("overdue_declaration", b"<DeclarationMenaceSinistre/>", "non conforme"),
    ],
)
def test_faults_name_what_is_wrong(intermediary, document_type, content, message):
    client = ExportSoapClient(intermediary.soap_url, timeout=5)
    with pytest.raises(SoapFault, match=message) as caught:
        client.deposit(document_type, "EXP/2026/0009", content)
    assert caught.value.code.endswith("Client")
    assert intermediary.app.deposits == []


def test_the_same_document_is_not_deposited_twice(intermediary):
    client = ExportSoapClient(intermediary.soap_url, timeout=5)
    client.deposit("overdue_declaration", "EXP/2026/0001", OVERDUE)
    with pytest.raises(SoapFault, match="déjà été déposé"):
        client.deposit("overdue_declaration", "EXP/2026/0001", OVERDUE)
    assert len(intermediary.app.deposits) == 1


def test_the_sandbox_refuses_a_hostile_request(intermediary):
    answer = requests.post(
        intermediary.soap_url, data=billion_laughs_answer().encode(), timeout=5
    )
    assert answer.status_code == 500
    assert "Requête refusée" in answer.text


def test_xxe_answer_is_refused_and_nothing_is_fetched(serve):
    canary = FixedAnswer("")
    canary_server = serve(canary)
    server = serve(FixedAnswer(xxe_answer(f"{canary_server.url}/canary")))
    client = ExportSoapClient(f"{server.url}/soap", timeout=5)
    with pytest.raises(HostileXml, match="XXE"):
        client.deposit("overdue_declaration", "EXP/2026/0001", OVERDUE)
    assert canary.fetched == []


def test_billion_laughs_answer_is_refused_quickly(serve):
    server = serve(FixedAnswer(billion_laughs_answer()))
    client = ExportSoapClient(f"{server.url}/soap", timeout=5)
    started = time.monotonic()
    with pytest.raises(HostileXml, match="entity expansion"):
        client.deposit("overdue_declaration", "EXP/2026/0001", OVERDUE)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "body, status, error, message",
    [
        ("<html>Maintenance</html>", 200, MalformedAnswer, "not"),
        ("<html>Maintenance", 200, MalformedAnswer, "not well-formed"),
        ("Service Unavailable", 503, TransportError, "HTTP status 503"),
    ],
)
def test_broken_answers_are_clear_errors(serve, body, status, error, message):
    server = serve(FixedAnswer(body, status=status, mimetype="text/html"))
    client = ExportSoapClient(f"{server.url}/soap", timeout=5)
    with pytest.raises(error, match=message):
        client.deposit("overdue_declaration", "EXP/2026/0001", OVERDUE)


def test_timeout_and_dropped_connection(intermediary):
    client = ExportSoapClient(intermediary.soap_url, timeout=0.5)
    intermediary.faults.add("latency", arg="2")
    with pytest.raises(TransportError, match="within 0.5 seconds"):
        client.deposit("overdue_declaration", "EXP/2026/0001", OVERDUE)
    intermediary.faults.add("drop")
    with pytest.raises(TransportError, match="cannot be reached"):
        client.deposit("overdue_declaration", "EXP/2026/0002", OVERDUE)


def test_unreachable_service():
    client = ExportSoapClient("http://127.0.0.1:9/soap", timeout=1)
    with pytest.raises(TransportError, match="cannot be reached"):
        client.deposit("overdue_declaration", "EXP/2026/0001", OVERDUE)


def test_the_sandbox_runs_as_a_script(tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = (
        __import__("pathlib").Path(__file__).resolve().parents[2]
        / "credit_insurance_bpi_export/sandbox/soap_server.py"
    )
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _attempt in range(50):
            try:
                requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        client = ExportSoapClient(f"http://127.0.0.1:{port}/soap", timeout=5)
        receipt = client.deposit("turnover_declaration", "EXP/2026/0003", TURNOVER)
        assert receipt.accepted
    finally:
        process.terminate()
        process.wait(timeout=5)
