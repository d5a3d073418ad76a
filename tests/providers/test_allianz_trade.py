"""Allianz Trade provider over real HTTP against a fake built from the public
client shapes (``fake_insurers.FakeAllianzTrade``, sources named there)."""

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
import requests
from fake_insurers import Z_IDP, Z_RISK, Z_SEARCH, FakeAllianzTrade

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
    allianz_trade,
)

API_KEY = "allianz-api-key-0042"
BERTHIER = BuyerIdentity.build(
    name="Maison Berthier SA",
    vat="FR40303265045",
    registry="30326504500011",
    zip="75009",
    city="Paris",
)
COMPANY = "EH-303265045"


@pytest.fixture
def fake(serve):
    insurer = FakeAllianzTrade(API_KEY)
    insurer.companies[("SIREN", "303265045")] = (COMPANY, "MAISON BERTHIER")
    insurer.server = serve(insurer)
    return insurer


def provider(fake, timeout=2, api_key=API_KEY, api_urls=None):
    url = fake.server.url
    return AllianzTradeProvider(
        ProviderConfig(
            base_url="",
            api_urls=api_urls
            or {"idp": url + Z_IDP, "search": url + Z_SEARCH, "riskinfo": url + Z_RISK},
            api_key=api_key,
            customer_number="ACI",
            policies=(("5121840", "DCL"), ("5121841", "")),
            timeout=timeout,
        ),
        requests.Session(),
    )


def cover_request(amount, reference="ODOO-LR-1", **values):
    return LimitRequest(
        customer_reference=reference,
        amount=amount,
        currency="EUR",
        buyer_ref=COMPANY,
        policy_number="5121840",
        policy_extension="DCL",
        **{"request_type": "new", **values},
    )


def decided(allianz, fake, amount, outcome, reference="R"):
    fake.underwriting[COMPANY] = outcome
    request = cover_request(amount, reference)
    job = allianz.request_limit(request).insurer_reference
    return allianz.poll_limit_request(request, job)


# ----------------------------------------------------------- login and URLs


def test_each_api_has_its_own_base_and_its_sandbox_marker():
    """The sandbox puts its environment marker at a different place in each
    API's path: one base URL cannot serve them all."""
    sandbox = allianz_trade.API_URL_DEFAULTS["sandbox"]
    assert sandbox["idp"].endswith("/uatm/v1/idp")
    assert sandbox["riskinfo"].endswith("/uatm/riskinfo/v3")
    assert sandbox["search"].endswith("/search/uatm-v2")
    production = allianz_trade.API_URL_DEFAULTS["production"]
    assert production == {
        "idp": "https://api.allianz-trade.com/v1/idp",
        "search": "https://api.allianz-trade.com/search/v2",
        "riskinfo": "https://api.allianz-trade.com/riskinfo/v3",
    }


def test_one_base_for_every_api_does_not_reach_the_search_api(fake):
    url = fake.server.url
    one_base = {
        "idp": url + Z_IDP,
        "search": url + "/uatm/v2",
        "riskinfo": url + Z_RISK,
    }
    with pytest.raises(InsurerRejected) as wrong:
        provider(fake, api_urls=one_base).find_buyer(BERTHIER)
    assert wrong.value.status == 404


def test_login_then_matching_by_identifier(fake):
    allianz = provider(fake)
    match = allianz.find_buyer(BERTHIER)
    assert (match.buyer_ref, match.name) == (COMPANY, "MAISON BERTHIER")
    assert fake.calls[0] == ("POST", Z_IDP + "/oauth2/authorize")
    [body] = fake.matching_received
    assert body["companyIdentifiers"] == [
        {"idTypeCode": "SIREN", "idValue": "303265045"},
        {"idTypeCode": "SIRET", "idValue": "30326504500011"},
        {"idTypeCode": "VAT", "idValue": "FR40303265045"},
    ]
    assert allianz.find_buyer(BuyerIdentity.build(registry="552100505")) is None
    assert fake.logins == 1


def test_bad_api_key_is_an_auth_error_tried_once_without_the_key(fake):
    allianz = provider(fake, api_key="nope-nope-1234")
    for __ in range(2):
        with pytest.raises(InsurerAuthError) as refused:
            allianz.find_buyer(BERTHIER)
    assert "Invalid API key" in str(refused.value)
    assert "nope-nope-1234" not in str(refused.value)
    assert fake.failed_logins == 1


# ------------------------------------------------------------------- covers


def test_cover_request_answered_by_a_bare_job_id_then_its_cover(fake):
    allianz = provider(fake)
    request = cover_request(40_000)
    answer = allianz.request_limit(request)
    assert (answer.status, answer.insurer_reference) == ("pending", "J1")
    [sent] = fake.requests_received
    assert sent == {
        "requestTypeCode": "Primary",
        "policy": {
            "businessUnitCode": "ACI",
            "policyId": "5121840",
            "extensionId": "DCL",
        },
        "companyId": COMPANY,
        "isRequestUrgent": False,
        "creditLimitDetails": {"requestedAmount": 40_000, "currencyCode": "EUR"},
    }
    result = allianz.poll_limit_request(request, "J1")
    assert result.status == "decided"
    assert (result.decision.decision, result.decision.granted_amount) == (
        "approved",
        40_000,
    )
    assert result.decision.buyer_ref == COMPANY


def test_job_still_pending_is_polled_again(serve):
    fake = FakeAllianzTrade(API_KEY, job_polls=2)
    fake.server = serve(fake)
    allianz = provider(fake)
    request = cover_request(40_000)
    allianz.request_limit(request)
    assert allianz.poll_limit_request(request, "J1").status == "pending"
    assert allianz.poll_limit_request(request, "J1").status == "decided"


def test_partial_refused_conditional_and_withdrawn(fake):
    allianz = provider(fake)
    partial = decided(allianz, fake, 40_000, "partial", "R-1").decision
    # the fake grants half: 40,000 / 2 = 20,000
    assert (partial.decision, partial.granted_amount) == ("partial", 20_000)
    refused = decided(allianz, fake, 40_000, "refuse", "R-2").decision
    assert (refused.decision, refused.granted_amount) == ("refused", 0)
    conditional = decided(allianz, fake, 40_000, "conditions", "R-3").decision
    assert (conditional.decision, conditional.granted_amount) == (
        "conditional",
        40_000,
    )
    assert conditional.conditions == "Payment within 60 days"
    withdrawn = decided(allianz, fake, 40_000, "withdraw", "R-4").decision
    assert (withdrawn.decision, withdrawn.granted_amount) == ("cancelled", 0)


def test_referral_then_the_underwriter_decides(fake):
    allianz = provider(fake)
    fake.underwriting[COMPANY] = "refer"
    request = cover_request(300_000)
    allianz.request_limit(request)
    assert allianz.poll_limit_request(request, "J1").status == "referred"
    start = date.today() + timedelta(days=1)
    fake.add_limit("C1", 250_000 * 2, "partial", start=start)  # half of 500,000
    result = allianz.poll_limit_request(request, "J1")
    assert (result.decision.decision, result.decision.granted_amount) == (
        "partial",
        250_000,
    )
    assert result.decision.date_effective == start


def test_a_check_within_the_discretionary_limit_is_a_grade_cover(fake):
    allianz = provider(fake)
    request = cover_request(4_000, cover_kind="check")
    allianz.request_limit(request)
    sent = fake.requests_received[0]
    assert sent["requestTypeCode"] == "GradeCover"
    assert "creditLimitDetails" not in sent
    result = allianz.poll_limit_request(request, "J1")
    assert result.decision.decision == "approved"
    assert result.decision.granted_amount == 4_000
    assert result.decision.conditions == "Allianz Trade grade 4"


def test_reduce_and_cancel_requests_are_unavailable(fake):
    allianz = provider(fake)
    for kind in ("reduce", "cancel"):
        with pytest.raises(ProviderOperationUnavailable) as unavailable:
            allianz.request_limit(cover_request(1000, request_type=kind))
        assert unavailable.value.operation == f"request_{kind}"
    assert fake.calls == []


# ---------------------------------------------------------------- portfolio


def flat_cover(cover_id, updated):
    return {
        "coverId": cover_id,
        "companyId": COMPANY,
        "companyName": "MAISON BERTHIER",
        "coverStatusCode": "Agreement",
        "gradePolicyCoverGradeCode": "3",
        "lastUpdateDate": updated,
    }


def test_portfolio_read_page_by_page_to_the_last_one(fake, monkeypatch):
    monkeypatch.setattr(allianz_trade, "PORTFOLIO_PAGE_SIZE", 2)
    allianz = provider(fake)
    for reference in ("R-1", "R-2", "R-3"):
        decided(allianz, fake, 10_000, "grant", reference)
    fake.portfolio_covers = [
        flat_cover(cover_id, "2026-01-10T10:00:00") for cover_id in ("C1", "C2", "C3")
    ]
    batch = allianz.fetch_decisions(None)
    assert len(batch.decisions) == 3
    # pages of 2: the first answered 206 (partial), the second 200 (the last)
    assert [p["page"] for p in fake.pages_asked] == [1, 2]
    assert fake.pages_asked[0] == {"page": 1, "pageSize": 2, "isTotalRequired": True}
    assert fake.portfolio_policies == [
        {"businessUnitCode": "ACI", "policyId": "5121840", "extensionId": "DCL"},
        {"businessUnitCode": "ACI", "policyId": "5121841", "extensionId": ""},
    ]


def test_changes_since_a_date_across_the_time_zone_boundary(fake):
    """Odoo's clock is UTC; Allianz Trade's dates are Paris time (our
    reading): at 23:30 UTC on 31 January it is 00:30 on 1 February there."""
    allianz = provider(fake)
    decided(allianz, fake, 10_000, "grant", "R-1")
    decided(allianz, fake, 20_000, "grant", "R-2")
    fake.portfolio_covers = [
        # 00:20 in Paris = 23:20 UTC: before 23:30 - 5 min of overlap
        flat_cover("C1", "2026-02-01T00:20:00"),
        # 00:40 in Paris = 23:40 UTC: after
        flat_cover("C2", "2026-02-01T00:40:00"),
    ]
    batch = allianz.fetch_decisions(datetime(2026, 1, 31, 23, 30))
    assert [d.granted_amount for d in batch.decisions] == [20_000]
    assert fake.count("GET", Z_RISK + "/covers/C1") == 1, "only when it was decided"
    assert fake.count("GET", Z_RISK + "/covers/C2") == 2, "and again from the feed"


# ---------------------------------------------------------- lost answers


def test_lost_answer_found_among_pending_requests_then_followed(fake):
    allianz = provider(fake)
    fake.underwriting[COMPANY] = "refer"
    request = replace(cover_request(300_000), created_at=datetime(2026, 3, 1, 9, 0))
    fake.server.faults.add("drop", method="POST", path=Z_RISK + "/covers")
    with pytest.raises(InsurerTemporaryError) as lost:
        allianz.submit_limit_request(request, may_have_been_sent=False)
    assert lost.value.may_have_been_received
    fake.pending_requests = [
        {
            "requestId": 881,
            "companyId": COMPANY,
            "creditLimitDetails": {"requestedAmount": 300_000, "currencyCode": "EUR"},
            "creationDate": "2026-03-01T10:00:05",  # 09:00:05 UTC, Paris time
            "lastUpdateDate": "2026-03-01T10:00:05",
            "coverId": None,
        }
    ]
    found = allianz.submit_limit_request(request, may_have_been_sent=True)
    assert (found.reconciled, found.status, found.insurer_reference) == (
        True,
        "pending",
        "request:881",
    )
    assert len(fake.requests_received) == 1, "not sent again"
    fake.add_limit("C1", 400_000, "partial")  # the fake grants half: 200,000
    fake.pending_requests[0]["coverId"] = "C1"
    result = allianz.poll_limit_request(request, "request:881")
    assert (result.status, result.decision.granted_amount) == ("decided", 200_000)
    # Processed, it leaves the pending requests: its cover is in the portfolio.
    fake.pending_requests = []
    fake.portfolio_covers = [flat_cover("C1", "2026-03-01T10:30:00")]
    result = allianz.poll_limit_request(request, "request:881")
    assert (result.status, result.decision.decision) == ("decided", "partial")


def test_lost_answer_not_among_pending_requests_asks_a_person(fake):
    allianz = provider(fake)
    request = replace(cover_request(30_000), created_at=datetime(2026, 3, 1, 9, 0))
    fake.server.faults.add("drop", method="POST", path=Z_RISK + "/covers")
    with pytest.raises(InsurerTemporaryError):
        allianz.submit_limit_request(request, may_have_been_sent=False)
    with pytest.raises(DeliveryUnconfirmed, match="Check the insurer's portal"):
        allianz.submit_limit_request(request, may_have_been_sent=True)
    assert len(fake.requests_received) == 1


# -------------------------------------------------------- garbage answers


def test_an_object_instead_of_the_bare_job_id_is_a_protocol_error(fake):
    allianz = provider(fake)
    original = fake.create_cover

    def wrapped(request):
        response = original(request)
        response.set_data(b'{"jobId": "J1"}')
        return response

    fake.create_cover = wrapped
    with pytest.raises(InsurerProtocolError) as garbage:
        allianz.request_limit(cover_request(1000))
    assert (garbage.value.code, garbage.value.params["field"]) == (
        "unexpected_shape",
        "jobId",
    )


def test_unknown_decision_code_is_a_protocol_error(fake):
    allianz = provider(fake)
    allianz.request_limit(cover_request(40_000))
    fake.covers["C1"]["creditLimitsAggregation"]["creditLimits"][0][
        "technicalDecisionStatusCode"
    ] = "Mystery"
    with pytest.raises(InsurerProtocolError, match="unknown technicalDecisionStatus"):
        allianz.poll_limit_request(cover_request(40_000), "J1")


def test_resource_url_on_another_host_is_not_followed(fake):
    allianz = provider(fake)
    request = cover_request(10_000)
    allianz.request_limit(request)
    original = fake.get_job

    def elsewhere(http_request, job_id):
        response = original(http_request, job_id)
        response.set_data(response.get_data().replace(b"127.0.0.1", b"evil.example"))
        return response

    fake.get_job = elsewhere
    with pytest.raises(InsurerProtocolError, match="another site") as raised:
        allianz.poll_limit_request(request, "J1")
    assert raised.value.code == "foreign_host"


# ----------------------------------------------------------------- errors


def test_token_expiry_mid_batch(fake):
    allianz = provider(fake)
    allianz.request_limit(cover_request(10_000, "B-1"))
    fake.expire_tokens()
    allianz.request_limit(cover_request(20_000, "B-2"))
    assert fake.logins == 2
    assert len(fake.requests_received) == 2


def test_timeout(fake):
    fake.server.faults.add("latency", arg=2, path=Z_SEARCH)
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
    fake.server.faults.add(fault, arg=arg, path=Z_RISK + "/jobs")
    with pytest.raises(error, match=message) as raised:
        allianz.poll_limit_request(cover_request(1000), "J1")
    assert not raised.value.may_have_been_received  # a read
    if fault == "429":
        assert raised.value.retry_after == 60


# -------------------------------------- payment overdues (unverified shapes)


def extension(days, due=None, key="ODOO-EXT-1"):
    due = due or date.today()
    return OverdueDeclaration(
        idempotency_key=key,
        category="extension",
        buyer_ref=COMPANY,
        invoice_reference="FAC/2026/0042",
        amount=12_000,
        currency="EUR",
        due_date=due,
        requested_due_date=due + timedelta(days=days),
        policy_number="5121840",
    )


def test_extension_period_requested_then_followed_through_its_job(fake):
    allianz = provider(fake)
    due = date.today()
    answer = allianz.declare_overdue(extension(45, due))
    assert (answer.status, answer.insurer_reference) == ("received", "J1")
    body = fake.overdues_received[0]
    assert body["overdueCategoryTypeCode"] == "EXP"
    assert (body["companyId"], body["invoiceReference"]) == (
        COMPANY,
        "FAC/2026/0042",
    )
    assert body["extendedDueDate"] == (due + timedelta(days=45)).isoformat()
    assert allianz.fetch_declaration_status("J1").status == "accepted"
    refused = allianz.declare_overdue(extension(90, due, key="ODOO-EXT-2"))
    status = allianz.fetch_declaration_status(refused.insurer_reference)
    assert status.status == "refused"
    assert "exceeds the policy maximum" in status.message


def test_overdues_other_than_extensions_are_unavailable(fake):
    allianz = provider(fake)
    declaration = replace(extension(30), category="overdue")
    with pytest.raises(ProviderOperationUnavailable) as unavailable:
        allianz.declare_overdue(declaration)
    assert "Allianz Trade: declaring a payment overdue (category OVD)" in str(
        unavailable.value
    )
    with pytest.raises(ProviderOperationUnavailable, match="updating a declaration"):
        allianz.update_declaration("J1", declaration)
    assert fake.calls == []
    assert allianz.unconfirmed_operations == ("declare_overdue",)


def test_lost_extension_answer_is_never_sent_again(fake):
    allianz = provider(fake)
    fake.server.faults.add("drop", method="POST", path=Z_RISK + "/overdues")
    with pytest.raises(InsurerTemporaryError) as lost:
        allianz.submit_declaration(extension(30), may_have_been_sent=False)
    assert lost.value.may_have_been_received
    with pytest.raises(DeliveryUnconfirmed, match="Check the insurer's portal"):
        allianz.submit_declaration(extension(30), may_have_been_sent=True)
    assert len(fake.overdues_received) == 1
