"""The XML documents against the XSD shipped in the addon, and the hardened
parser against hostile XML."""

from datetime import date
from decimal import Decimal

import pytest
from bpi_samples import HEADER, overdue

from odoo.addons.credit_insurance.sandbox.server import start_in_thread
from odoo.addons.credit_insurance_bpi_export.exchange import documents
from odoo.addons.credit_insurance_bpi_export.exchange.errors import (
    DocumentInvalid,
    HostileXml,
    MalformedAnswer,
)
from odoo.addons.credit_insurance_bpi_export.sandbox.hostile import (
    FixedAnswer,
    billion_laughs_answer,
    xxe_answer,
)


def test_commercial_overdue_declaration_is_valid():
    root = documents.validate(documents.build_overdue_declaration(overdue()))
    ns = {"b": documents.NAMESPACE}
    assert root.findtext("b:CauseSinistre", namespaces=ns) == "commercial"
    assert root.find("b:EvenementPolitique", namespaces=ns) is None
    # Amounts with two decimals, rounded half up.
    assert root.findtext("b:TotalImpaye", namespaces=ns) == "6012.35"
    assert root.find("b:TotalImpaye", namespaces=ns).get("devise") == "EUR"


@pytest.mark.parametrize("event", ["moratorium", "non_transfer", "war_catastrophe"])
def test_political_overdue_declaration_is_valid(event):
    xml = documents.build_overdue_declaration(
        overdue(political_event_type=event, political_event_start=date(2026, 6, 1))
    )
    root = documents.validate(xml)
    ns = {"b": documents.NAMESPACE}
    assert root.findtext("b:CauseSinistre", namespaces=ns) == "politique"
    assert (
        root.findtext("b:EvenementPolitique/b:Type", namespaces=ns)
        == documents.POLITICAL_EVENT_CODES[event]
    )


def test_turnover_declaration_is_valid_with_or_without_lines():
    lines = (
        documents.CountryTurnover("US", 3, Decimal(3400), 0),
        documents.CountryTurnover("MA", 1, Decimal(2000), 3),
        documents.CountryTurnover("XK", 1, Decimal(10)),  # no OECD category
    )
    for declared in (lines, ()):
        xml = documents.build_turnover_declaration(
            documents.TurnoverDeclaration(
                HEADER, date(2026, 1, 1), date(2026, 3, 31), "EUR", declared
            )
        )
        root = documents.validate(xml)
        total = root.findtext("{%s}Total" % documents.NAMESPACE)
        assert total == ("5410.00" if declared else "0.00")


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"buyer": documents.Buyer("Boston Fabrics Inc.", "usa")}, "Pays"),
        ({"currency": "euro"}, "devise"),
        ({"invoices": ()}, "Creance"),
        ({"buyer": documents.Buyer("Boston Fabrics Inc.", "US", 9)}, "CategorieRisque"),
    ],
)
def test_a_document_outside_the_schema_is_never_produced(changes, error):
    with pytest.raises(DocumentInvalid, match=error):
        documents.build_overdue_declaration(overdue(**changes))


def test_negative_amounts_are_refused():
    invoice = documents.OverdueInvoice(
        "INV/1", date(2026, 1, 1), date(2026, 2, 1), "EUR", Decimal(1), Decimal(-1), 0
    )
    with pytest.raises(DocumentInvalid, match="MontantImpaye"):
        documents.build_overdue_declaration(overdue(invoices=(invoice,)))


# ------------------------------------------------------------- hostile XML


@pytest.fixture
def canary():
    app = FixedAnswer("")
    server = start_in_thread(app)
    server.app_ = app
    yield server
    server.stop()


def test_xxe_is_refused_without_reading_files_or_network(canary):
    with pytest.raises(HostileXml, match="DTD"):
        documents.parse_xml(xxe_answer(f"{canary.url}/canary").encode())
    assert canary.app_.fetched == []


def test_external_dtd_is_not_fetched(canary):
    xml = f'<!DOCTYPE r SYSTEM "{canary.url}/evil.dtd"><r>&x;</r>'
    with pytest.raises((HostileXml, MalformedAnswer)):
        documents.parse_xml(xml.encode())
    assert canary.app_.fetched == []


def test_billion_laughs_is_refused_at_once():
    with pytest.raises(HostileXml, match="DTD or entities"):
        documents.parse_xml(billion_laughs_answer().encode())


def test_malformed_xml_is_a_clear_error():
    with pytest.raises(MalformedAnswer, match="not well-formed"):
        documents.parse_xml(b"<html><body>Maintenance</html>")
