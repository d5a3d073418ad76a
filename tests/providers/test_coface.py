"""Coface provider over real HTTP against a fake built from the public
shapes (``fake_insurers.FakeCoface``): the postman token and headers, the
CofaServe lockout, and our reading of the company lookup, PRODUCT and
OVERDUE (unverified: the fake checks that our reading is applied, and the
insurer form says these exchanges are not confirmed)."""

from dataclasses import replace
from datetime import date

import pytest
import requests
from fake_insurers import FakeCoface

from odoo.addons.credit_insurance.providers import (
    BuyerIdentity,
    CofaceProvider,
    InsurerAuthError,
    InsurerProtocolError,
    InsurerTemporaryError,
    LimitRequest,
    OverdueDeclaration,
    OverdueInvoice,
    ProviderConfig,
    ProviderOperationUnavailable,
)

API_KEY, POLICY, USER, PASSWORD = "cof-key-31", "POL-77", "durand", "pa55-word-x"
MOREAU = BuyerIdentity.build(
    name="Textiles Moreau SAS", vat="FR19389456716", registry="38945671600015"
)
EASY = "EN-1234567"


@pytest.fixture
def fake(serve):
    insurer = FakeCoface(API_KEY, POLICY, USER, PASSWORD)
    insurer.companies[("SIREN", "389456716")] = (EASY, "TEXTILES MOREAU")
    insurer.companies[("VAT", "DE136695976")] = ("EN-7654321", "KRAUSE GMBH")
    insurer.server = serve(insurer)
    return insurer


def provider(fake, timeout=2, password=PASSWORD):
    return CofaceProvider(
        ProviderConfig(
            base_url=fake.server.url,
            api_key=API_KEY,
            login=USER,
            password=password,
            customer_number=POLICY,
            timeout=timeout,
        ),
        requests.Session(),
    )


def limit_request(amount, reference="ODOO-LR-1", **values):
    return LimitRequest(
        customer_reference=reference,
        amount=amount,
        currency="EUR",
        buyer_ref=EASY,
        policy_number=POLICY,
        **{"request_type": "new", **values},
    )


# ------------------------------------------------------------------- login


def test_the_id_token_goes_as_it_is_with_the_api_key(fake):
    coface = provider(fake)
    assert coface.find_buyer(MOREAU).buyer_ref == EASY
    token_call, company_call = fake.headers_seen
    assert token_call["X-Api-Key"] == API_KEY
    assert token_call["X-Cof-Policy-Number"] == POLICY
    [id_token] = fake.id_tokens
    assert company_call["Authorization"] == id_token, "no 'Bearer', the idToken"
    assert company_call["X-Api-Key"] == API_KEY
    assert fake.logins == 1


def test_a_refused_login_is_tried_once_per_batch_never_in_a_storm(fake):
    coface = provider(fake, password="wrong-pass-0000")
    for __ in range(3):  # three operations of one batch
        with pytest.raises(InsurerAuthError) as refused:
            coface.find_buyer(MOREAU)
    assert refused.value.code == "login_refused"
    assert fake.failed_logins == 1
    assert "wrong-pass-0000" not in str(refused.value)
    assert "Incorrect username or password" in str(refused.value)
    assert refused.value.retry_after is None


def test_a_locked_account_says_when_to_try_again(fake):
    """Five failed logins lock the account (CofaServe): the fifth batch's
    refusal, then the lockout, which pauses the insurer for 15 minutes."""
    for __ in range(5):
        with pytest.raises(InsurerAuthError):
            provider(fake, password="wrong").authenticate()
    with pytest.raises(InsurerAuthError) as locked:
        provider(fake).authenticate()
    assert locked.value.code == "account_locked"
    assert locked.value.retry_after == 15 * 60


# -------------------------------------------------------------------- buyers


def test_company_found_by_siren_then_vat_and_unknown_ones_are_none(fake):
    coface = provider(fake)
    assert coface.find_buyer(MOREAU).buyer_ref == EASY
    krause = BuyerIdentity.build(vat="DE136695976", country_code="DE")
    assert coface.find_buyer(krause).buyer_ref == "EN-7654321"
    assert coface.find_buyer(BuyerIdentity.build(registry="552100505")) is None
    with pytest.raises(ProviderOperationUnavailable):
        coface.find_buyer(BuyerIdentity(name="Sans numéro", country_code="FR"))


# ------------------------------------------------ PRODUCT (our reading)


def test_limit_orders_decided_partial_refused_conditional(fake):
    coface = provider(fake)
    fake.order_outcomes = ["APPROVED", "PARTIAL", "REFUSED", "CONDITIONAL"]
    approved, partial, refused, conditional = (
        coface.request_limit(limit_request(30_000, f"R-{n}")).decision for n in range(4)
    )
    assert (approved.decision, approved.granted_amount) == ("approved", 30_000)
    # the fake grants half: 30,000 / 2 = 15,000
    assert (partial.decision, partial.granted_amount) == ("partial", 15_000)
    assert (refused.decision, refused.granted_amount) == ("refused", 0)
    assert conditional.decision == "conditional"
    sent = fake.orders["O1"]["request"]
    assert sent == {
        "contractId": POLICY,
        "easyNumber": EASY,
        "productCode": "CREDIT_LIMIT",
        "customerReference": "R-0",
        "amount": 30_000,
        "currencyCode": "EUR",
    }


def test_referred_order_then_withdrawn(fake):
    coface = provider(fake)
    fake.order_outcomes = ["REFERRED"]
    request = limit_request(80_000)
    answer = coface.request_limit(request)
    assert (answer.status, answer.insurer_reference) == ("referred", "O1")
    fake.decide("O1", "WITHDRAWN", conditions=["Adverse information"])
    withdrawn = coface.poll_limit_request(request, "O1").decision
    assert (withdrawn.decision, withdrawn.granted_amount) == ("cancelled", 0)
    assert withdrawn.conditions == "Adverse information"


def test_dropped_answer_found_by_our_reference_not_sent_twice(fake):
    coface = provider(fake)
    request = limit_request(30_000, "ODOO-LR-DROP")
    fake.server.faults.add("drop", method="POST", path="/product")
    with pytest.raises(InsurerTemporaryError) as lost:
        coface.submit_limit_request(request, may_have_been_sent=False)
    assert lost.value.may_have_been_received
    found = coface.submit_limit_request(request, may_have_been_sent=True)
    assert found.reconciled and found.decision.granted_amount == 30_000
    assert len(fake.orders) == 1


def test_unknown_order_status_is_a_protocol_error(fake):
    coface = provider(fake)
    coface.request_limit(limit_request(30_000))
    fake.orders["O1"]["status"] = "SOMETHING"
    with pytest.raises(InsurerProtocolError) as garbage:
        coface.poll_limit_request(limit_request(30_000), "O1")
    assert garbage.value.code == "unknown_code"


# ------------------------------------------------ OVERDUE (our reading)


def test_overdue_declared_looked_up_and_updated(fake):
    coface = provider(fake)
    declaration = OverdueDeclaration(
        idempotency_key="ODOO-DECL-1",
        category="overdue",
        buyer_ref=EASY,
        invoice_reference="FAC/1",
        amount=1200,
        currency="EUR",
        due_date=date(2026, 1, 31),
        policy_number=POLICY,
        invoices=(
            OverdueInvoice(reference="FAC/1", amount=1200, due_date=date(2026, 1, 31)),
        ),
    )
    answer = coface.declare_overdue(declaration)
    assert (answer.insurer_reference, answer.status) == ("D1", "received")
    body = fake.overdues["D1"]["body"]
    assert (body["category"], body["amount"], body["invoices"][0]["dueDate"]) == (
        "OVERDUE",
        1200,
        "2026-01-31",
    )
    found = coface.submit_declaration(declaration, may_have_been_sent=True)
    assert found.reconciled and len(fake.overdues) == 1
    paid = coface.update_declaration("D1", replace(declaration, amount=0))
    assert paid.status == "settled"


# ----------------------------------------------------------------- errors


def test_token_expiry_mid_batch(fake):
    coface = provider(fake)
    coface.find_buyer(MOREAU)
    fake.expire_tokens()
    assert coface.find_buyer(MOREAU).buyer_ref == EASY
    assert fake.logins == 2


def test_timeout(fake):
    fake.server.faults.add("latency", arg=2, path="/company")
    with pytest.raises(InsurerTemporaryError, match="did not answer within 0.5 s"):
        provider(fake, timeout=0.5).find_buyer(MOREAU)


@pytest.mark.parametrize(
    "fault, arg, error, message",
    [
        ("error", 500, InsurerTemporaryError, "HTTP 500"),
        ("429", 5, InsurerTemporaryError, "retry after 5 s"),
        ("malformed", None, InsurerProtocolError, "malformed JSON"),
        ("html", 503, InsurerTemporaryError, "HTML error page"),
        ("drop", None, InsurerTemporaryError, "closed the connection"),
    ],
)
def test_errors_of_the_api(fake, fault, arg, error, message):
    fake.server.faults.add(fault, arg=arg, path="/company")
    with pytest.raises(error, match=message):
        provider(fake).find_buyer(MOREAU)


def test_decision_changes_are_unavailable_and_the_rest_unconfirmed(fake):
    coface = provider(fake)
    with pytest.raises(ProviderOperationUnavailable, match="pulling decision"):
        coface.fetch_decisions(None)
    assert coface.unconfirmed_operations == ("request_limit", "declare_overdue")
    assert fake.calls == []
