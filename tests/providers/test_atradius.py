"""Atradius provider over real HTTP against a fake built from the public
client shapes (``fake_insurers.FakeAtradius``, sources named there)."""

import json
from datetime import date, datetime, timedelta

import pytest
import requests
from fake_insurers import A_BUYERS, A_COVERS, A_TOKENS, FakeAtradius

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
# A German buyer: no SIREN, found by its VAT number.
KRAUSE = BuyerIdentity.build(name="Krause GmbH", vat="DE136695976", country_code="DE")


@pytest.fixture
def fake(serve):
    insurer = FakeAtradius(APP_KEY, CLIENT_ID, SECRET)
    insurer.known_buyers[("SN", "404833048")] = (7001, "BOUTIQUE LUMIERE")
    insurer.known_buyers[("SN", "303265045")] = (7002, "MAISON BERTHIER")
    insurer.known_buyers[("VAT", "DE136695976")] = (7003, "KRAUSE GMBH")
    insurer.server = serve(insurer)
    return insurer


def provider(fake, timeout=2, base="", **credentials):
    return AtradiusProvider(
        ProviderConfig(
            base_url=fake.server.url + base,
            api_key=credentials.get("api_key", APP_KEY),
            client_id=credentials.get("client_id", CLIENT_ID),
            client_secret=credentials.get("client_secret", SECRET),
            customer_number="1234",
            timeout=timeout,
        ),
        requests.Session(),
    )


def cover_request(amount, reference="ODOO-LR-1", buyer_ref="7001", **values):
    return LimitRequest(
        customer_reference=reference,
        amount=amount,
        currency="EUR",
        buyer_ref=buyer_ref,
        policy_number="POL-9",
        **{"request_type": "new", **values},
    )


# ------------------------------------------------------------------- login


def test_login_token_under_data_and_a_correlation_id_on_every_call(fake):
    atradius = provider(fake)
    assert atradius.find_buyer(LUMIERE).buyer_ref == "7001"
    assert atradius.find_buyer(KRAUSE).buyer_ref == "7003"
    assert fake.logins == 1, "one token for the batch"
    ids = [headers.get("Atradius-Correlation-Id") for headers in fake.headers_seen]
    assert all(ids) and len(set(ids)) == 3, "the login and each call have their own"
    assert fake.headers_seen[1]["Atradius-App-Key"] == APP_KEY


def test_refused_credentials_are_an_auth_error_tried_once_without_any_secret(fake):
    atradius = provider(fake, api_key="wrong-app-key-1234", client_secret="oops-5678")
    for __ in range(2):  # two operations of the same batch
        with pytest.raises(InsurerAuthError) as refused:
            atradius.find_buyer(LUMIERE)
    assert refused.value.code == "auth_refused"
    message = str(refused.value)
    assert "Invalid client credentials" in message
    assert "wrong-app-key-1234" not in message and "oops-5678" not in message
    assert "wrong-app-key-1234" not in str(refused.value.params)
    assert fake.failed_logins == 1, "a refused login is not tried again"


def test_a_wrong_route_is_not_reported_as_refused_credentials(fake):
    """Atradius answers 403 to an address outside the contract (a base URL
    with a wrong path), before it looks at the credentials."""
    with pytest.raises(InsurerRejected) as wrong:
        provider(fake, base="/v1").find_buyer(LUMIERE)
    assert not isinstance(wrong.value, InsurerAuthError)
    assert wrong.value.code == "route_refused"
    assert wrong.value.params["path"] == A_TOKENS
    assert "check the API base URL" in str(wrong.value)


def test_token_answer_without_data_is_a_protocol_error(fake):
    original = fake.token

    def flat(request):
        response = original(request)
        body = json.loads(response.get_data())
        response.set_data(json.dumps(body["data"]))  # the token at top level
        return response

    fake.token = flat
    with pytest.raises(InsurerProtocolError) as garbage:
        provider(fake).find_buyer(LUMIERE)
    assert garbage.value.code == "missing_field"
    assert garbage.value.params["field"] == "data.access_token"


# -------------------------------------------------------------------- buyers


def test_buyer_matched_by_siren_or_vat_and_unknown_ones_are_none(fake):
    atradius = provider(fake)
    assert atradius.find_buyer(LUMIERE).buyer_ref == "7001"
    assert atradius.find_buyer(KRAUSE).buyer_ref == "7003"
    unknown = BuyerIdentity.build(registry="552100505")
    assert atradius.find_buyer(unknown) is None
    queries = [
        call for call in fake.calls if call == ("GET", A_BUYERS)
    ]  # three searches
    assert len(queries) == 3
    with pytest.raises(ProviderOperationUnavailable):
        atradius.find_buyer(BuyerIdentity(name="Sans numéro", country_code="FR"))


# ------------------------------------------------------------------- covers


def test_decided_at_once_with_customer_and_policy_in_the_body(fake):
    answer = provider(fake).request_limit(cover_request(30_000))
    assert answer.status == "decided"
    assert (answer.decision.decision, answer.decision.granted_amount) == (
        "approved",
        30_000,
    )
    assert answer.decision.customer_reference == "ODOO-LR-1"
    assert answer.insurer_reference == "5001"
    [body] = fake.bodies
    assert body == {
        "customerId": 1234,
        "policyId": "POL-9",
        "buyerId": 7001,
        "coverType": "credit-limit",
        "customerRefNumber": "ODOO-LR-1",
        "creditLimitAmount": 30_000,
        "currencyCode": "EUR",
    }


def test_partial_and_refused_decisions(fake):
    atradius = provider(fake)
    fake.underwriting[7001] = "DC04"  # partially approved
    partial = atradius.request_limit(cover_request(30_000, "R-P"))
    # the fake grants half, rounded down to the thousand: 30,000 / 2 = 15,000
    assert (partial.decision.decision, partial.decision.granted_amount) == (
        "partial",
        15_000,
    )
    fake.underwriting[7002] = "DC03"  # refused
    refused = atradius.request_limit(cover_request(30_000, "R-R", buyer_ref="7002"))
    assert (refused.decision.decision, refused.decision.granted_amount) == (
        "refused",
        0,
    )


def test_referred_then_decided_with_conditions_and_expiry(fake):
    atradius = provider(fake)
    fake.underwriting[7001] = "refer"
    request = cover_request(120_000, "R-REF")
    answer = atradius.request_limit(request)
    assert (answer.status, answer.insurer_reference) == ("referred", "5001")
    assert atradius.poll_limit_request(request, "5001").status == "referred"
    expiry = date.today() + timedelta(days=365)
    fake.decide(
        5001,
        100_000,
        code="DC02",
        conditions=["Payment within 60 days", "Bank guarantee"],
        expiry=expiry,
    )
    decided = atradius.poll_limit_request(request, "5001")
    assert decided.status == "decided"
    assert decided.decision.decision == "conditional"
    assert decided.decision.granted_amount == 100_000
    assert decided.decision.requested_amount == 120_000
    assert decided.decision.conditions == "Payment within 60 days\nBank guarantee"
    assert decided.decision.date_expiry == expiry


def test_a_credit_check_asks_for_no_amount(fake):
    answer = provider(fake).request_limit(cover_request(5_000, cover_kind="check"))
    assert answer.status == "decided"
    body = fake.bodies[0]
    assert body["coverType"] == "credit-check"
    assert "creditLimitAmount" not in body
    # GLE: a credit check is limited to 7,000 EUR.
    assert answer.decision.granted_amount == 7_000


def test_increase_reduction_and_cancellation_by_put(fake):
    atradius = provider(fake)
    atradius.request_limit(cover_request(30_000, "R-1"))
    increased = atradius.request_limit(
        cover_request(50_000, "R-2", request_type="increase")
    )
    assert fake.bodies[-1]["action"] == "supersede"
    assert (increased.decision.decision, increased.decision.granted_amount) == (
        "approved",
        50_000,
    )
    with pytest.raises(InsurerRejected) as refused:
        atradius.request_limit(cover_request(60_000, "R-3", request_type="reduce"))
    assert refused.value.code == "action_refused"
    cancelled = atradius.request_limit(cover_request(0, "R-4", request_type="cancel"))
    assert fake.bodies[-1]["action"] == "cancel"
    assert "creditLimitAmount" not in fake.bodies[-1]
    assert (cancelled.decision.decision, cancelled.decision.granted_amount) == (
        "cancelled",
        0,
    )


def test_amounts_must_be_multiples_of_1000_before_anything_is_sent(fake):
    with pytest.raises(InsurerRejected, match="multiples of 1000: ask for 13,000"):
        provider(fake).request_limit(cover_request(12_500))
    assert fake.count("POST", A_COVERS) == 0


def test_insurer_rejection_carries_its_message_and_parameter(fake):
    atradius = provider(fake)
    original = fake.create_cover

    def refusing(request):
        return fake.error(
            400, "Must be positive number greater than zero.", "creditLimitAmount"
        )

    fake.create_cover = refusing
    with pytest.raises(InsurerRejected) as rejected:
        atradius.request_limit(cover_request(10_000))
    assert rejected.value.params["detail"] == (
        "Must be positive number greater than zero. (creditLimitAmount)"
    )
    fake.create_cover = original


# ------------------------------------------------------------ decision feed


def test_withdrawal_and_reduction_in_the_feed_take_effect_at_their_date(fake):
    atradius = provider(fake)
    atradius.request_limit(cover_request(40_000, "R-1"))
    atradius.request_limit(cover_request(20_000, "R-2", buyer_ref="7002"))
    notice = date.today() + timedelta(days=30)
    fake.decide(5001, 25_000, code="DC09", effective=notice)  # reduction
    # pre-notification of a withdrawal (jobsiteOS DC21), from withdrawalDate
    fake.decide(5002, 20_000, code="DC21", withdrawal=notice)
    batch = atradius.fetch_decisions(None)
    latest = {d.buyer_ref: d for d in batch.decisions}
    assert (latest["7001"].decision, latest["7001"].granted_amount) == (
        "reduced",
        25_000,
    )
    assert latest["7001"].date_effective == notice
    assert (latest["7002"].decision, latest["7002"].granted_amount) == ("cancelled", 0)
    assert latest["7002"].date_effective == notice
    again = atradius.fetch_decisions(None)
    assert {d.decision_ref for d in again.decisions} == {
        d.decision_ref for d in batch.decisions
    }, "read again, the same references: recorded once"


def test_changes_since_a_date_across_the_time_zone_boundary(fake):
    """Odoo's clock is UTC, Atradius' UTC+01:00: at 23:30 UTC it is already
    the next day at Atradius."""
    atradius = provider(fake)
    atradius.request_limit(cover_request(10_000, "R-1"))
    atradius.request_limit(cover_request(20_000, "R-2", buyer_ref="7002"))
    # changed at 00:10 and 00:40 on 2 March, Atradius' time
    fake.decide(5001, 10_000, changed_at="2026-03-02T00:10:00")
    fake.decide(5002, 20_000, changed_at="2026-03-02T00:40:00")
    batch = atradius.fetch_decisions(datetime(2026, 3, 1, 23, 30))
    # 23:30 UTC - 5 min of overlap = 23:25 UTC = 00:25 on 2 March at UTC+01:00
    assert fake.from_dates == ["2026-03-02T00:25:00"]
    assert [d.buyer_ref for d in batch.decisions] == ["7002"]


def test_unknown_codes_and_garbage_amounts_are_protocol_errors(fake):
    atradius = provider(fake)
    atradius.request_limit(cover_request(10_000))
    fake.covers[5001]["decisionCode"] = "DC15"
    with pytest.raises(InsurerProtocolError) as unknown:
        atradius.fetch_decisions(None)
    assert (unknown.value.code, unknown.value.params["value"]) == (
        "unknown_code",
        "DC15",
    )
    fake.covers[5001]["decisionCode"] = "DC01"
    fake.covers[5001]["totalDecision"]["decisionAmtInPolicyCurrency"] = "ten k"
    with pytest.raises(InsurerProtocolError) as garbage:
        atradius.fetch_decisions(None)
    assert garbage.value.code == "bad_amount"


# ----------------------------------------------------------------- errors


def test_token_expiry_mid_batch(fake):
    atradius = provider(fake)
    atradius.request_limit(cover_request(10_000, "B-1"))
    fake.expire_tokens()
    atradius.request_limit(cover_request(10_000, "B-2", buyer_ref="7002"))
    assert fake.logins == 2
    assert len(fake.with_ref("B-1")) == len(fake.with_ref("B-2")) == 1


def test_timeout(fake):
    fake.server.faults.add("latency", arg=2, path="/credit-insurance/organisation")
    with pytest.raises(InsurerTemporaryError, match="did not answer within 0.5 s"):
        provider(fake, timeout=0.5).find_buyer(LUMIERE)


@pytest.mark.parametrize(
    "fault, arg, error, code",
    [
        ("error", 500, InsurerTemporaryError, "server_error"),
        ("429", 120, InsurerTemporaryError, "rate_limited"),
        ("malformed", None, InsurerProtocolError, "malformed_json"),
        ("html", 503, InsurerTemporaryError, "server_error"),
        ("html", 200, InsurerProtocolError, "html_page"),
    ],
)
def test_errors_of_the_api(fake, fault, arg, error, code):
    fake.server.faults.add(
        fault, arg=arg, method="POST", path="/credit-insurance/cover-management"
    )
    with pytest.raises(error) as raised:
        provider(fake).request_limit(cover_request(10_000))
    assert raised.value.code == code
    if fault == "429":
        assert raised.value.retry_after == 120
        assert not raised.value.may_have_been_received
    else:
        assert raised.value.may_have_been_received  # a write: look it up first


def test_dropped_answer_is_found_by_our_reference_not_sent_twice(fake):
    atradius = provider(fake)
    request = cover_request(30_000, "ODOO-LR-DROP")
    fake.server.faults.add("drop", method="POST", path=A_COVERS)
    with pytest.raises(InsurerTemporaryError) as lost:
        atradius.submit_limit_request(request, may_have_been_sent=False)
    assert lost.value.may_have_been_received
    answer = atradius.submit_limit_request(request, may_have_been_sent=True)
    assert answer.reconciled and answer.decision.granted_amount == 30_000
    assert len(fake.with_ref("ODOO-LR-DROP")) == 1
    assert fake.count("POST", A_COVERS) == 1


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
    assert (unavailable.value.operation, unavailable.value.reason) == (
        "declare_overdue",
        "not_public",
    )
    with pytest.raises(ProviderOperationUnavailable, match="pulling claims"):
        provider(fake).fetch_claims(None)
    assert fake.calls == []
