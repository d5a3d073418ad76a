"""Atradius provider against a local fake of its documented exchange."""

from datetime import date, timedelta

import pytest
import requests
from fake_insurers import FakeAtradius

from odoo.addons.credit_insurance.providers import (
    AtradiusProvider,
    BuyerIdentity,
    InsurerAuthError,
    InsurerProtocolError,
    InsurerRejected,
    InsurerTemporaryError,
    LimitRequest,
    OverdueDeclaration,
    ProviderConfig,
    ProviderOperationUnavailable,
)

APP_KEY, CLIENT_ID, SECRET = "app-key-7f3e", "client-42", "very-secret-99"
LUMIERE = BuyerIdentity.build(
    name="Boutique Lumière SARL", vat="FR83404833048", registry="40483304800014"
)


@pytest.fixture
def fake(serve):
    insurer = FakeAtradius(APP_KEY, CLIENT_ID, SECRET)
    insurer.known_buyers["404833048"] = (7001, "BOUTIQUE LUMIERE")
    insurer.known_buyers["303265045"] = (7002, "MAISON BERTHIER")
    insurer.server = serve(insurer)
    return insurer


def provider(fake, timeout=2, **credentials):
    return AtradiusProvider(
        ProviderConfig(
            base_url=fake.server.url,
            api_key=credentials.get("api_key", APP_KEY),
            client_id=credentials.get("client_id", CLIENT_ID),
            client_secret=credentials.get("client_secret", SECRET),
            customer_number="CUST-1",
            timeout=timeout,
        ),
        requests.Session(),
    )


def cover_request(amount, reference="ODOO-LR-1", buyer_ref="7001", kind="new"):
    return LimitRequest(
        customer_reference=reference,
        request_type=kind,
        amount=amount,
        currency="EUR",
        buyer_ref=buyer_ref,
        policy_number="POL-9",
    )


def test_happy_path_buyer_by_siren_then_limit_granted(fake):
    atradius = provider(fake)
    assert atradius.find_buyer(LUMIERE).buyer_ref == "7001"
    assert atradius.find_buyer(BuyerIdentity.build(registry="111222333")) is None
    answer = atradius.request_limit(cover_request(30_000))
    assert answer.status == "decided"
    assert (answer.decision.decision, answer.decision.granted_amount) == (
        "approved",
        30_000,
    )
    assert answer.decision.customer_reference == "ODOO-LR-1"
    assert fake.covers[5001]["coverType"] == "credit-limit"
    assert fake.logins == 1  # one token for the batch


def test_partial_grant_and_refusal(fake):
    atradius = provider(fake)
    fake.underwriting["7001"] = "partial"
    partial = atradius.request_limit(cover_request(30_000, "R-P"))
    assert (partial.decision.decision, partial.decision.granted_amount) == (
        "partial",
        15_000,
    )
    fake.underwriting["7001"] = "refuse"
    refused = atradius.request_limit(cover_request(30_000, "R-R"))
    assert (refused.decision.decision, refused.decision.granted_amount) == (
        "refused",
        0,
    )


def test_referral_then_underwriter_decision_with_conditions_and_expiry(fake):
    atradius = provider(fake)
    fake.underwriting["7001"] = "refer"
    request = cover_request(120_000, "R-REF")
    answer = atradius.request_limit(request)
    assert (answer.status, answer.insurer_reference) == ("referred", "5001")
    assert atradius.poll_limit_request(request, "5001").status == "referred"
    expiry = date.today() + timedelta(days=365)
    fake.decide(5001, 100_000, conditions=["Payment within 60 days"], expiry=expiry)
    decided = atradius.poll_limit_request(request, "5001")
    assert decided.status == "decided"
    assert decided.decision.decision == "conditional"
    assert decided.decision.conditions == "Payment within 60 days"
    assert decided.decision.date_expiry == expiry


def test_decision_feed_types_a_reduction_and_a_withdrawal(fake):
    atradius = provider(fake)
    atradius.request_limit(cover_request(40_000, "R-1"))
    atradius.request_limit(cover_request(20_000, "R-2", buyer_ref="7002"))
    notice = date.today() + timedelta(days=30)
    fake.decide(5001, 25_000, effective=notice)
    fake.decide(5002, 0, effective=notice)
    batch = atradius.fetch_decisions(None)
    latest = {d.buyer_ref: d for d in batch.decisions}
    assert (latest["7001"].decision, latest["7001"].granted_amount) == (
        "reduced",
        25_000,
    )
    assert (latest["7002"].decision, latest["7002"].granted_amount) == ("cancelled", 0)
    assert latest["7001"].date_effective == notice
    again = atradius.fetch_decisions(batch.next_since)
    assert {d.decision_ref for d in again.decisions} == {
        d.decision_ref for d in batch.decisions
    }, "the same day is read again, with the same references (recorded once)"


def test_amounts_must_be_multiples_of_1000_before_anything_is_sent(fake):
    with pytest.raises(InsurerRejected, match="multiples of 1000: ask for 13,000"):
        provider(fake).request_limit(cover_request(12_500))
    assert fake.count("POST", "/credit-insurance/cover-management/v1/covers") == 0


def test_insurer_rejection_carries_its_message(fake):
    with pytest.raises(InsurerRejected, match=r"\(HTTP 404\): No cover on this buyer"):
        provider(fake).request_limit(cover_request(10_000, kind="reduce"))


def test_token_expiry_mid_batch(fake):
    atradius = provider(fake)
    atradius.request_limit(cover_request(10_000, "B-1"))
    fake.expire_tokens()
    atradius.request_limit(cover_request(10_000, "B-2", buyer_ref="7002"))
    assert fake.logins == 2
    assert len(fake.with_ref("B-1")) == len(fake.with_ref("B-2")) == 1


def test_bad_credentials_are_an_auth_error_without_any_secret(fake):
    atradius = provider(fake, api_key="wrong-app-key-1234", client_secret="oops-5678")
    with pytest.raises(InsurerAuthError) as refused:
        atradius.find_buyer(LUMIERE)
    message = str(refused.value)
    assert "Invalid client credentials" in message
    assert "wrong-app-key-1234" not in message and "oops-5678" not in message
    assert fake.failed_logins == 1, "a refused login is not retried"


def test_timeout(fake):
    fake.server.faults.add("latency", arg=2, path="/credit-insurance/organisation")
    with pytest.raises(InsurerTemporaryError, match="did not answer within 0.5 s"):
        provider(fake, timeout=0.5).find_buyer(LUMIERE)


@pytest.mark.parametrize(
    "fault, arg, error, message",
    [
        ("error", 500, InsurerTemporaryError, "HTTP 500"),
        ("429", 120, InsurerTemporaryError, "retry after 120 s"),
        ("malformed", None, InsurerProtocolError, "malformed JSON"),
        ("html", 503, InsurerTemporaryError, "HTML error page"),
        ("html", 200, InsurerProtocolError, "an HTML page"),
    ],
)
def test_errors_of_the_api(fake, fault, arg, error, message):
    fake.server.faults.add(fault, arg=arg, path="/credit-insurance/cover-management")
    with pytest.raises(error, match=message) as raised:
        provider(fake).request_limit(cover_request(10_000))
    if fault == "429":
        assert raised.value.retry_after == 120
        assert not raised.value.may_have_been_received
    else:
        assert raised.value.may_have_been_received  # a write: look it up first


def test_dropped_answer_proves_exactly_once(fake):
    atradius = provider(fake)
    request = cover_request(30_000, "ODOO-LR-DROP")
    fake.server.faults.add(
        "drop", method="POST", path="/credit-insurance/cover-management"
    )
    with pytest.raises(InsurerTemporaryError) as lost:
        atradius.submit_limit_request(request, may_have_been_sent=False)
    assert lost.value.may_have_been_received
    answer = atradius.submit_limit_request(request, may_have_been_sent=True)
    assert answer.reconciled and answer.decision.granted_amount == 30_000
    assert len(fake.with_ref("ODOO-LR-DROP")) == 1
    assert fake.count("POST", "/credit-insurance/cover-management/v1/covers") == 1


def test_non_payments_are_unavailable_with_a_clear_message(fake):
    declaration = OverdueDeclaration(
        idempotency_key="K",
        category="overdue",
        buyer_ref="7001",
        invoice_reference="INV/1",
        amount=1000,
        currency="EUR",
        due_date=date.today(),
    )
    with pytest.raises(ProviderOperationUnavailable) as unavailable:
        provider(fake).declare_overdue(declaration)
    assert "Atradius: declaring an overdue is not available" in str(unavailable.value)
    assert "non-payments API contract is not public" in str(unavailable.value)
    with pytest.raises(ProviderOperationUnavailable, match="pulling claims"):
        provider(fake).fetch_claims(None)
    assert fake.calls == []
