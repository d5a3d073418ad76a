"""Allianz Trade provider against a local fake of its documented exchange."""

from dataclasses import replace
from datetime import date, timedelta

import pytest
import requests
from fake_insurers import FakeAllianzTrade

from odoo.addons.credit_insurance.providers import (
    AllianzTradeProvider,
    BuyerIdentity,
    DeliveryUnconfirmed,
    InsurerAuthError,
    InsurerProtocolError,
    InsurerRejected,
    InsurerTemporaryError,
    LimitRequest,
    OverdueDeclaration,
    ProviderConfig,
    ProviderOperationUnavailable,
)

API_KEY = "allianz-api-key-0042"
BERTHIER = BuyerIdentity.build(
    name="Maison Berthier SA",
    vat="FR40303265045",
    registry="30326504500011",
    zip="75009",
    city="Paris",
)


@pytest.fixture
def fake(serve):
    insurer = FakeAllianzTrade(API_KEY)
    insurer.companies["maison berthier sa"] = "EH-303265045"
    insurer.server = serve(insurer)
    return insurer


def provider(fake, timeout=2, api_key=API_KEY):
    return AllianzTradeProvider(
        ProviderConfig(
            base_url=fake.server.url,
            api_key=api_key,
            customer_number="ACI",
            timeout=timeout,
        ),
        requests.Session(),
    )


def cover_request(amount, reference="ODOO-LR-1", kind="new"):
    return LimitRequest(
        customer_reference=reference,
        request_type=kind,
        amount=amount,
        currency="EUR",
        buyer_ref="EH-303265045",
        policy_number="5121840",
    )


def test_happy_path_matching_cover_request_job_then_cover(fake):
    allianz = provider(fake)
    assert allianz.find_buyer(BERTHIER).buyer_ref == "EH-303265045"
    assert allianz.find_buyer(BuyerIdentity(name="Inconnu", country_code="FR")) is None
    request = cover_request(40_000)
    answer = allianz.request_limit(request)
    assert (answer.status, answer.insurer_reference) == ("pending", "J1")
    sent = fake.requests_received[0]
    assert sent["policy"] == {"businessUnitCode": "ACI", "policyId": "5121840"}
    assert sent["creditLimitDetails"] == {
        "requestedAmount": 40_000,
        "currencyCode": "EUR",
    }
    decided = allianz.poll_limit_request(request, "J1")
    assert decided.status == "decided"
    assert (decided.decision.decision, decided.decision.granted_amount) == (
        "approved",
        40_000,
    )
    assert decided.decision.buyer_ref == "EH-303265045"


def test_job_still_pending_is_polled_again(serve):
    fake = FakeAllianzTrade(API_KEY, job_polls=2)
    fake.server = serve(fake)
    allianz = provider(fake)
    request = cover_request(40_000)
    allianz.request_limit(request)
    assert allianz.poll_limit_request(request, "J1").status == "pending"
    assert allianz.poll_limit_request(request, "J1").status == "decided"


def test_partial_refusal_and_referral(fake):
    allianz = provider(fake)
    fake.underwriting["EH-303265045"] = "partial"
    allianz.request_limit(cover_request(40_000, "R-1"))
    partial = allianz.poll_limit_request(cover_request(40_000, "R-1"), "J1")
    assert (partial.decision.decision, partial.decision.granted_amount) == (
        "partial",
        20_000,
    )
    fake.underwriting["EH-303265045"] = "refuse"
    allianz.request_limit(cover_request(40_000, "R-2"))
    refused = allianz.poll_limit_request(cover_request(40_000, "R-2"), "J2")
    assert (refused.decision.decision, refused.decision.granted_amount) == (
        "refused",
        0,
    )
    fake.underwriting["EH-303265045"] = "refer"
    referred_request = cover_request(300_000, "R-3")
    allianz.request_limit(referred_request)
    assert allianz.poll_limit_request(referred_request, "J3").status == "referred"
    fake.underwrite_referral("C3", 250_000)
    decided = allianz.poll_limit_request(referred_request, "J3")
    assert (decided.decision.decision, decided.decision.granted_amount) == (
        "partial",
        250_000,
    )
    assert decided.decision.date_effective == date.today() + timedelta(days=1)


def test_portfolio_feed_and_unknown_codes(fake):
    allianz = provider(fake)
    allianz.request_limit(cover_request(40_000))
    decisions = allianz.fetch_decisions(None).decisions
    assert [(d.buyer_ref, d.decision, d.granted_amount) for d in decisions] == [
        ("EH-303265045", "approved", 40_000)
    ]
    assert fake.page_size_seen == 100
    fake.covers["C1"]["creditLimitsAggregation"]["creditLimits"][0][
        "technicalDecisionStatusCode"
    ] = "Mystery"
    with pytest.raises(
        InsurerProtocolError, match="unknown technicalDecisionStatusCode"
    ):
        allianz.fetch_decisions(None)


def test_token_expiry_mid_batch(fake):
    allianz = provider(fake)
    allianz.request_limit(cover_request(10_000, "B-1"))
    fake.expire_tokens()
    allianz.request_limit(cover_request(20_000, "B-2"))
    assert fake.logins == 2
    assert len(fake.requests_received) == 2


def test_resource_url_on_another_host_is_not_followed(fake):
    allianz = provider(fake)
    request = cover_request(10_000)
    allianz.request_limit(request)
    fake.jobs["J1"]["cover_id"] = "C1"
    original = fake.get_job

    def elsewhere(http_request, job_id):
        response = original(http_request, job_id)
        response.set_data(response.get_data().replace(b"127.0.0.1", b"evil.example"))
        return response

    fake.get_job = elsewhere
    with pytest.raises(InsurerProtocolError, match="another site"):
        allianz.poll_limit_request(request, "J1")


def test_bad_api_key_is_an_auth_error_without_the_key(fake):
    with pytest.raises(InsurerAuthError) as refused:
        provider(fake, api_key="nope-nope-1234").find_buyer(BERTHIER)
    assert "Invalid API key" in str(refused.value)
    assert "nope-nope-1234" not in str(refused.value)


def test_timeout(fake):
    fake.server.faults.add("latency", arg=2, path="/search")
    with pytest.raises(InsurerTemporaryError, match="did not answer within 0.5 s"):
        provider(fake, timeout=0.5).find_buyer(BERTHIER)


@pytest.mark.parametrize(
    "fault, arg, error, message",
    [
        ("error", 500, InsurerTemporaryError, "HTTP 500"),
        ("429", 60, InsurerTemporaryError, "retry after 60 s"),
        ("malformed", None, InsurerProtocolError, "malformed JSON"),
        ("html", 502, InsurerTemporaryError, "HTML error page"),
    ],
)
def test_errors_of_the_api(fake, fault, arg, error, message):
    allianz = provider(fake)
    allianz.authenticate()
    fake.server.faults.add(fault, arg=arg, path="/riskinfo/v3/jobs")
    with pytest.raises(error, match=message) as raised:
        allianz.poll_limit_request(cover_request(1000), "J1")
    assert not raised.value.may_have_been_received  # a read
    if fault == "429":
        assert raised.value.retry_after == 60


def test_rejected_request_carries_the_insurers_message(fake):
    allianz = provider(fake)
    with pytest.raises(InsurerRejected, match="requestTypeCode and companyId"):
        allianz.request_limit(
            LimitRequest(
                customer_reference="X",
                request_type="new",
                amount=1000,
                currency="EUR",
                buyer_ref="",
            )
        )


def test_dropped_answer_is_never_sent_again_automatically(fake):
    """No lookup by our reference: exactly once by asking a person to check."""
    allianz = provider(fake)
    request = cover_request(30_000, "ODOO-LR-DROP")
    fake.server.faults.add("drop", method="POST", path="/riskinfo/v3/covers")
    with pytest.raises(InsurerTemporaryError) as lost:
        allianz.submit_limit_request(request, may_have_been_sent=False)
    assert lost.value.may_have_been_received
    with pytest.raises(DeliveryUnconfirmed, match="Check the insurer's portal"):
        allianz.submit_limit_request(request, may_have_been_sent=True)
    assert len(fake.requests_received) == 1


def extension(days, due=None, key="ODOO-EXT-1"):
    due = due or date.today()
    return OverdueDeclaration(
        idempotency_key=key,
        category="extension",
        buyer_ref="EH-303265045",
        invoice_reference="FAC/2026/0042",
        amount=12_000,
        currency="EUR",
        due_date=due,
        requested_due_date=due + timedelta(days=days),
        policy_number="5121840",
    )


def test_unavailable_request_types_and_overdues(fake):
    allianz = provider(fake)
    with pytest.raises(ProviderOperationUnavailable, match="a 'reduce' request"):
        allianz.request_limit(cover_request(1000, kind="reduce"))
    declaration = replace(extension(30), category="overdue")
    with pytest.raises(ProviderOperationUnavailable) as unavailable:
        allianz.declare_overdue(declaration)
    message = str(unavailable.value)
    assert "Allianz Trade: declaring a payment overdue (category OVD)" in message
    assert "several invoices" in message
    with pytest.raises(ProviderOperationUnavailable, match="updating a declaration"):
        allianz.update_declaration("J1", declaration)
    assert fake.calls == []


def test_extension_period_requested_then_followed_through_its_job(fake):
    allianz = provider(fake)
    due = date.today()
    answer = allianz.declare_overdue(extension(45, due))
    assert (answer.status, answer.insurer_reference) == ("received", "J1")
    body = fake.overdues_received[0]
    assert body["overdueCategoryTypeCode"] == "EXP"
    assert body["policy"] == {"businessUnitCode": "ACI", "policyId": "5121840"}
    assert (body["companyId"], body["invoiceReference"]) == (
        "EH-303265045",
        "FAC/2026/0042",
    )
    assert body["dueDate"] == due.isoformat()
    assert body["extendedDueDate"] == (due + timedelta(days=45)).isoformat()
    assert allianz.fetch_declaration_status("J1").status == "accepted"

    refused = allianz.declare_overdue(extension(90, due, key="ODOO-EXT-2"))
    status = allianz.fetch_declaration_status(refused.insurer_reference)
    assert status.status == "refused"
    assert "exceeds the policy maximum" in status.message


def test_lost_extension_answer_is_never_sent_again(fake):
    """No lookup by our reference: a person checks the portal."""
    allianz = provider(fake)
    fake.server.faults.add("drop", method="POST", path="/riskinfo/v3/overdues")
    with pytest.raises(InsurerTemporaryError) as lost:
        allianz.submit_declaration(extension(30), may_have_been_sent=False)
    assert lost.value.may_have_been_received
    with pytest.raises(DeliveryUnconfirmed, match="Check the insurer's portal"):
        allianz.submit_declaration(extension(30), may_have_been_sent=True)
    assert len(fake.overdues_received) == 1
