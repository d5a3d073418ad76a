"""The sandbox insurer, served over real HTTP, through its provider."""

import json
from dataclasses import replace
from datetime import date, timedelta

import pytest
import requests

from odoo.addons.credit_insurance.providers import (
    PROVIDERS,
    BuyerIdentity,
    DeliveryUnconfirmed,
    InsurerAuthError,
    InsurerProtocolError,
    InsurerRejected,
    InsurerTemporaryError,
    LimitRequest,
    OverdueDeclaration,
    OverdueInvoice,
    ProviderConfig,
    SandboxProvider,
    get_provider_class,
)
from odoo.addons.credit_insurance.sandbox.server import start_sandbox

BERTHIER = BuyerIdentity.build(
    name="Maison Berthier SA", vat="FR40303265045", registry="30326504500011"
)


def provider(server, **config):
    return SandboxProvider(
        ProviderConfig(base_url=server.url, api_key="demo", timeout=2, **config),
        requests.Session(),
    )


def limit_request(buyer_ref, amount, reference="REF-1", kind="new"):
    return LimitRequest(
        customer_reference=reference,
        request_type=kind,
        amount=amount,
        currency="EUR",
        buyer_ref=buyer_ref,
        policy_number="POL-1",
    )


def buyer_ref(siren, server):
    """The sandbox's reference of a buyer whose SIREN ends as the rule needs."""
    match = provider(server).find_buyer(
        BuyerIdentity.build(name=f"Buyer {siren}", registry=siren)
    )
    return match.buyer_ref


def stats(server):
    return requests.get(f"{server.url}/_admin/stats", timeout=5).json()


def test_registry_maps_every_provider_code_to_its_class():
    assert set(PROVIDERS) == {
        "manual",
        "sandbox",
        "allianz_trade",
        "atradius",
        "coface",
    }
    assert get_provider_class("sandbox") is SandboxProvider
    assert not get_provider_class("manual").connected
    with pytest.raises(ValueError):
        get_provider_class("lloyds")


def test_buyer_identity_from_french_registry_and_vat():
    assert (BERTHIER.siren, BERTHIER.siret, BERTHIER.country_code) == (
        "303265045",
        "30326504500011",
        "FR",
    )
    from_vat = BuyerIdentity.build(vat="FR 40 303 265 045")
    assert (from_vat.siren, from_vat.vat) == ("303265045", "FR40303265045")
    assert BuyerIdentity.build(vat="DE136695976", country_code="de").siren == ""


def test_only_identifiers_that_pass_their_check_are_kept():
    """A mistyped number is never sent as an identifier: it is named instead."""
    # The VAT key of SIREN 303265045 is 40: 41 is a typo.
    typo = BuyerIdentity.build(vat="FR41303265045", registry="303265045")
    assert (typo.vat, typo.siren, typo.invalid) == ("", "303265045", ("FR41303265045",))
    # The SIRET's Luhn key fails, its SIREN passes: the SIREN is kept.
    siret_typo = BuyerIdentity.build(registry="30326504500013")
    assert (siret_typo.siren, siret_typo.siret) == ("303265045", "")
    # A SIREN whose Luhn key fails gives nothing.
    wrong = BuyerIdentity.build(registry="303265046")
    assert (wrong.siren, wrong.invalid) == ("", ("303265046",))
    # A foreign company's registry number is not read as a SIREN.
    foreign = BuyerIdentity.build(
        registry="HRB 12345", vat="DE136695976", country_code="DE"
    )
    assert (foreign.siren, foreign.vat, foreign.invalid) == ("", "DE136695976", ())
    assert foreign.identifier(("siren", "vat")) == ("vat", "DE136695976")


def test_buyer_found_by_siren_vat_or_name_and_unknown_buyer(sandbox):
    sandbox_provider = provider(sandbox)
    assert sandbox_provider.find_buyer(BERTHIER).buyer_ref == "SBX-FR-303265045"
    assert (
        sandbox_provider.find_buyer(BuyerIdentity.build(vat="FR40303265045")).buyer_ref
        == "SBX-FR-303265045"
    )
    foreign = sandbox_provider.find_buyer(
        BuyerIdentity(name="Müller GmbH", country_code="DE")
    )
    assert foreign.buyer_ref.startswith("SBX-DE-")
    assert (
        sandbox_provider.find_buyer(BuyerIdentity.build(registry="999000151")) is None
    )


@pytest.mark.parametrize(
    "siren, amount, status, decision, granted",
    [
        ("303265045", 30_000, "decided", "approved", 30_000),
        ("303265011", 30_000, "decided", "partial", 15_000),
        ("303265052", 30_000, "decided", "conditional", 30_000),
        ("303265060", 30_000, "decided", "refused", 0),
        ("303265045", 80_000, "pending", None, None),
        ("303265045", 250_000, "referred", None, None),
    ],
)
def test_deterministic_underwriting(sandbox, siren, amount, status, decision, granted):
    answer = provider(sandbox).request_limit(
        limit_request(buyer_ref(siren, sandbox), amount)
    )
    assert answer.status == status
    if decision:
        assert (answer.decision.decision, answer.decision.granted_amount) == (
            decision,
            granted,
        )
        assert answer.decision.date_effective == date.today()
    else:
        assert answer.decision is None


def test_pending_then_decided_and_referral_answered_after_two_polls(sandbox):
    sandbox_provider = provider(sandbox)
    ref = buyer_ref("303265045", sandbox)
    pending = limit_request(ref, 80_000, "REF-P")
    answer = sandbox_provider.request_limit(pending)
    decided = sandbox_provider.poll_limit_request(pending, answer.insurer_reference)
    assert (decided.status, decided.decision.granted_amount) == ("decided", 80_000)

    referred = limit_request(ref, 250_000, "REF-R")
    answer = sandbox_provider.request_limit(referred)
    assert answer.status == "referred"
    first = sandbox_provider.poll_limit_request(referred, answer.insurer_reference)
    assert first.status == "referred"
    second = sandbox_provider.poll_limit_request(referred, answer.insurer_reference)
    assert second.status == "decided"
    assert (second.decision.decision, second.decision.granted_amount) == (
        "partial",
        200_000,
    )
    assert second.decision.customer_reference == "REF-R"


def test_decision_feed_with_spontaneous_reduction_and_withdrawal(sandbox):
    sandbox_provider = provider(sandbox)
    reduced_ref, withdrawn_ref = (
        buyer_ref("512345679", sandbox),
        buyer_ref("404833048", sandbox),
    )
    sandbox_provider.request_limit(limit_request(reduced_ref, 20_000, "REF-9"))
    sandbox_provider.request_limit(limit_request(withdrawn_ref, 40_000, "REF-8"))
    batch = sandbox_provider.fetch_decisions(None)
    cuts = {
        d.buyer_ref: d
        for d in batch.decisions
        if d.decision in ("reduced", "cancelled")
    }
    notice = date.today() + timedelta(days=30)
    assert (cuts[reduced_ref].decision, cuts[reduced_ref].granted_amount) == (
        "reduced",
        10_000,
    )
    assert (cuts[withdrawn_ref].decision, cuts[withdrawn_ref].granted_amount) == (
        "cancelled",
        0,
    )
    assert cuts[reduced_ref].date_effective == notice
    assert cuts[reduced_ref].buyer.siren == "512345679"
    # Read again from where it stopped: nothing new, nothing lost.
    again = sandbox_provider.fetch_decisions(batch.next_since)
    assert [d.decision_ref for d in again.decisions] == []


def test_decision_feed_is_paged(sandbox):
    sandbox_provider = provider(sandbox)
    ref = buyer_ref("303265045", sandbox)
    for index in range(3):
        sandbox_provider.request_limit(
            limit_request(ref, 1000 * (index + 1), f"R{index}")
        )
    first = sandbox_provider.fetch_decisions(None, limit=2)
    assert first.has_more and len(first.decisions) == 2
    rest = sandbox_provider.fetch_decisions(first.next_since, limit=2)
    refs = {d.decision_ref for d in first.decisions + rest.decisions}
    assert len(refs) == 3 and not rest.has_more


def test_state_is_kept_on_disk_across_restarts(tmp_path):
    data_dir = str(tmp_path / "state")
    first = start_sandbox(data_dir)
    try:
        answer = provider(first).request_limit(
            limit_request(buyer_ref("303265045", first), 250_000, "REF-DISK")
        )
    finally:
        first.stop()
    with open(f"{data_dir}/state.json", encoding="utf-8") as handle:
        assert "REF-DISK" in json.dumps(json.load(handle))
    second = start_sandbox(data_dir)
    try:
        found = provider(second).find_limit_request(
            limit_request("SBX-FR-303265045", 250_000, "REF-DISK")
        )
        assert found.insurer_reference == answer.insurer_reference
    finally:
        second.stop()


def test_dropped_answer_is_reconciled_not_sent_twice(sandbox):
    """The insurer processes the request, the answer is lost: exactly once."""
    sandbox_provider = provider(sandbox)
    request = limit_request(buyer_ref("303265045", sandbox), 20_000, "REF-DROP")
    sandbox.faults.add("drop", method="POST", path="/v1/limit-requests")
    with pytest.raises(InsurerTemporaryError) as lost:
        sandbox_provider.submit_limit_request(request, may_have_been_sent=False)
    assert lost.value.may_have_been_received
    answer = sandbox_provider.submit_limit_request(request, may_have_been_sent=True)
    assert answer.reconciled and answer.decision.granted_amount == 20_000
    assert stats(sandbox)["submissions"] == {"REF-DROP": 1}
    assert stats(sandbox)["duplicates"] == 0


def test_answer_after_the_timeout_is_reconciled_too(sandbox):
    sandbox_provider = provider(sandbox)
    request = limit_request(buyer_ref("303265045", sandbox), 20_000, "REF-SLOW")
    sandbox.faults.add("slow", arg=3, method="POST", path="/v1/limit-requests")
    with pytest.raises(
        InsurerTemporaryError, match="did not answer within 2 s"
    ) as late:
        sandbox_provider.submit_limit_request(request, may_have_been_sent=False)
    assert late.value.may_have_been_received
    answer = sandbox_provider.submit_limit_request(request, may_have_been_sent=True)
    assert answer.reconciled
    assert stats(sandbox)["submissions"] == {"REF-SLOW": 1}


def test_a_second_send_would_be_seen_as_a_duplicate(sandbox):
    """What the reconciliation prevents: the sandbox counts duplicates."""
    sandbox_provider = provider(sandbox)
    request = limit_request(buyer_ref("303265045", sandbox), 20_000, "REF-TWICE")
    sandbox_provider.request_limit(request)
    with pytest.raises(InsurerRejected, match="already used"):
        sandbox_provider.request_limit(request)
    assert stats(sandbox)["duplicates"] == 1


def test_request_never_received_is_sent_after_lookup(sandbox):
    sandbox_provider = provider(sandbox)
    request = limit_request(buyer_ref("303265045", sandbox), 20_000, "REF-500")
    sandbox.faults.add("error", arg=500, method="POST", path="/v1/limit-requests")
    with pytest.raises(InsurerTemporaryError, match="HTTP 500"):
        sandbox_provider.submit_limit_request(request, may_have_been_sent=False)
    answer = sandbox_provider.submit_limit_request(request, may_have_been_sent=True)
    assert not answer.reconciled and answer.status == "decided"
    assert stats(sandbox)["submissions"] == {"REF-500": 1}


def test_token_expiry_mid_batch_logs_in_again(sandbox):
    sandbox_provider = provider(sandbox)
    ref = buyer_ref("303265045", sandbox)
    sandbox_provider.request_limit(limit_request(ref, 1000, "T1"))
    logins = stats(sandbox)["logins"]
    requests.post(f"{sandbox.url}/_admin/expire-tokens", timeout=5)
    answer = sandbox_provider.request_limit(limit_request(ref, 2000, "T2"))
    assert answer.status == "decided"
    assert stats(sandbox)["logins"] == logins + 1
    assert stats(sandbox)["submissions"] == {"T1": 1, "T2": 1}


def test_wrong_api_key_is_an_auth_error_without_the_key(tmp_path):
    server = start_sandbox(str(tmp_path / "s"), api_key="the-right-key")
    try:
        with pytest.raises(InsurerAuthError) as refused:
            SandboxProvider(
                ProviderConfig(base_url=server.url, api_key="s3cr3t-wrong", timeout=2)
            ).find_buyer(BERTHIER)
        assert "s3cr3t-wrong" not in str(refused.value)
        assert "refused the credentials" in str(refused.value)
    finally:
        server.stop()


@pytest.mark.parametrize(
    "fault, arg, error, message",
    [
        ("error", 500, InsurerTemporaryError, "HTTP 500"),
        ("error", 503, InsurerTemporaryError, "HTTP 503"),
        ("html", 502, InsurerTemporaryError, "HTML error page"),
        ("html", 200, InsurerProtocolError, "HTML page"),
        ("malformed", None, InsurerProtocolError, "malformed JSON"),
        ("429", 45, InsurerTemporaryError, "retry after 45 s"),
    ],
)
def test_faults_are_mapped_to_errors(sandbox, fault, arg, error, message):
    sandbox_provider = provider(sandbox)
    sandbox_provider.authenticate()
    sandbox.faults.add(fault, arg=arg, path="/v1/decisions")
    with pytest.raises(error, match=message) as raised:
        sandbox_provider.fetch_decisions(None)
    if fault == "429":
        assert raised.value.retry_after == 45
    assert not raised.value.may_have_been_received  # a read changes nothing


def test_fault_header_and_server_wide_error_rate(tmp_path):
    server = start_sandbox(str(tmp_path / "s"), error_rate=1.0)
    try:
        with pytest.raises(InsurerTemporaryError, match="HTTP 503"):
            provider(server).find_buyer(BERTHIER)
    finally:
        server.stop()


def test_unreachable_insurer_is_temporary_and_never_received():
    unreachable = SandboxProvider(
        ProviderConfig(base_url="http://127.0.0.1:9", api_key="k", timeout=1)
    )
    with pytest.raises(InsurerTemporaryError, match="could not be reached") as error:
        unreachable.request_limit(limit_request("SBX-FR-1", 1000))
    assert not error.value.may_have_been_received


def test_overdue_declared_exactly_once_then_followed_to_the_claim(sandbox):
    sandbox_provider = provider(sandbox)
    odd_buyer = buyer_ref("303265045", sandbox)  # odd digit: ends in a claim
    declaration = OverdueDeclaration(
        idempotency_key="ODOO-DECL-1",
        category="overdue",
        buyer_ref=odd_buyer,
        invoice_reference="INV/2026/0042",
        amount=12_000,
        currency="EUR",
        due_date=date.today() - timedelta(days=20),
        policy_number="POL-1",
    )
    sandbox.faults.add("drop", method="POST", path="/v1/overdues")
    with pytest.raises(InsurerTemporaryError):
        sandbox_provider.submit_declaration(declaration, may_have_been_sent=False)
    answer = sandbox_provider.submit_declaration(declaration, may_have_been_sent=True)
    assert answer.reconciled and answer.status == "received"
    assert stats(sandbox)["declarations"] == {"ODOO-DECL-1": 1}

    statuses = [
        sandbox_provider.fetch_declaration_status(answer.insurer_reference)
        for __ in range(2)
    ]
    assert [s.status for s in statuses] == ["in_collection", "claim_opened"]
    claim_ref = statuses[-1].claim_ref
    claims = sandbox_provider.fetch_claims(None).claims
    assert [(c.claim_ref, c.status) for c in claims] == [(claim_ref, "open")]
    paid = sandbox_provider.fetch_claim(claim_ref)
    assert (paid.status, paid.indemnity_amount) == ("indemnified", 10_800)


def test_declaration_of_several_invoices_updated_then_settled(sandbox):
    """One buyer's overdue invoices in one declaration; payments and later
    overdues are reported by sending the whole state again (idempotent)."""
    sandbox_provider = provider(sandbox)
    due = date.today() - timedelta(days=10)
    invoices = (
        OverdueInvoice(reference="FAC/1", amount=1200, due_date=due),
        OverdueInvoice(
            reference="FAC/2",
            amount=600,
            due_date=due + timedelta(days=5),
            invoice_amount=1200,
            invoice_currency="USD",
        ),
    )
    declaration = OverdueDeclaration(
        idempotency_key="ODOO-DECL-MULTI",
        category="overdue",
        buyer_ref=buyer_ref("404833048", sandbox),
        invoice_reference="FAC/1",
        amount=1800,
        currency="EUR",
        due_date=due,
        invoices=invoices,
    )
    answer = sandbox_provider.declare_overdue(declaration)
    assert answer.status == "received"
    [overdue] = requests.get(
        f"{sandbox.url}/v1/overdues",
        params={"idempotencyKey": "ODOO-DECL-MULTI"},
        headers={"Authorization": f"Bearer {sandbox_provider._token}"},
        timeout=5,
    ).json()["overdues"]
    assert [(i["invoiceNumber"], i["amount"]) for i in overdue["invoices"]] == [
        ("FAC/1", 1200),
        ("FAC/2", 600),
    ]
    assert overdue["invoices"][1]["invoiceCurrency"] == "USD"

    partly_paid = replace(declaration, amount=600, invoices=invoices[1:])
    for __ in range(2):  # the same update twice changes nothing
        updated = sandbox_provider.update_declaration(
            answer.insurer_reference, partly_paid
        )
        assert updated.status == "received"
    paid = replace(declaration, amount=0, invoices=())
    settled = sandbox_provider.update_declaration(answer.insurer_reference, paid)
    assert settled.status == "settled"
    assert stats(sandbox)["declarations"] == {"ODOO-DECL-MULTI": 1}
    assert stats(sandbox)["declaration_updates"] == {answer.insurer_reference: 3}


def test_provider_copies_share_the_login(sandbox):
    sandbox_provider = provider(sandbox)
    sandbox_provider.ensure_authenticated()
    copy = sandbox_provider.copy_for_thread(requests.Session())
    copy.find_buyer(BERTHIER)
    assert copy.session is not sandbox_provider.session
    assert stats(sandbox)["logins"] == 1


def test_extension_request_accepted_within_sixty_days(sandbox):
    sandbox_provider = provider(sandbox)
    due = date.today()
    extension = OverdueDeclaration(
        idempotency_key="ODOO-EXT-1",
        category="extension",
        buyer_ref=buyer_ref("303265045", sandbox),
        invoice_reference="INV/2026/0043",
        amount=5000,
        currency="EUR",
        due_date=due,
        requested_due_date=due + timedelta(days=45),
    )
    answer = sandbox_provider.declare_overdue(extension)
    assert sandbox_provider.fetch_declaration_status(
        answer.insurer_reference
    ).status == ("accepted")


def test_delivery_unconfirmed_when_no_lookup(sandbox):
    """A provider without lookup never re-sends on its own (see Allianz Trade)."""

    class NoLookup(SandboxProvider):
        def find_limit_request(self, request):
            raise self._unavailable("looking a request up", "no lookup")

    no_lookup = NoLookup(ProviderConfig(base_url=sandbox.url, api_key="k", timeout=2))
    request = limit_request(buyer_ref("303265045", sandbox), 1000, "REF-NL")
    with pytest.raises(DeliveryUnconfirmed, match="Check the insurer's portal"):
        no_lookup.submit_limit_request(request, may_have_been_sent=True)
    assert stats(sandbox)["submissions"] == {}


# ------------------------------------------------------- the insurers' dialects


def test_the_atradius_dialect_speaks_atradius(sandbox):
    url = f"{sandbox.url}/atradius"
    login = requests.post(
        f"{url}/authenticate/v2/tokens",
        headers={"Atradius-App-Key": "k"},
        auth=("client", "secret"),
        timeout=5,
    )
    token = login.json()["data"]["access_token"]  # under data (GLE, jobsiteOS)
    headers = {"Authorization": f"Bearer {token}", "Atradius-App-Key": "k"}
    buyers = f"{url}/credit-insurance/organisation-management/v1/buyers"
    query = {"country": "FRA", "uid": "303265045", "uidType": "SN"}
    without_id = requests.get(buyers, params=query, headers=headers, timeout=5)
    assert without_id.status_code == 400, "Atradius-Correlation-Id on every call"
    headers["Atradius-Correlation-Id"] = "c-1"
    found = requests.get(buyers, params=query, headers=headers, timeout=5).json()
    assert found["data"][0]["buyerId"] == 303265045
    covers = f"{url}/credit-insurance/cover-management/v1/covers"
    body = {
        "customerId": 10042,
        "policyId": "P",
        "buyerId": 303265045,
        "coverType": "credit-limit",
        "creditLimitAmount": 12_500,
        "currencyCode": "EUR",
    }
    refused = requests.post(covers, json=body, headers=headers, timeout=5).json()
    assert refused["errors"][0]["source"] == {"parameter": "creditLimitAmount"}
    body["creditLimitAmount"] = 20_000
    created = requests.post(covers, json=body, headers=headers, timeout=5)
    assert created.status_code == 201
    assert created.json() == {"data": [{"coverId": 1, "response": "Action successful"}]}
    listed = requests.get(
        covers, params={"buyerId": 303265045}, headers=headers, timeout=5
    ).json()["data"][0]
    assert (
        listed["decisionCode"],
        listed["totalDecision"]["decisionAmtInPolicyCurrency"],
    ) == (
        "DC01",
        "20000",
    )
    wrong = requests.get(f"{url}/v2/covers", headers=headers, timeout=5)
    assert wrong.status_code == 403, "an address outside the contract"


def test_the_allianz_dialect_speaks_allianz_trade(sandbox):
    url = f"{sandbox.url}/allianz"
    token = requests.post(
        f"{url}/uatm/v1/idp/oauth2/authorize", json={"apiKey": "k"}, timeout=5
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    company = requests.post(
        f"{url}/search/uatm-v2/companies/matching",
        json={"companyIdentifiers": [{"idTypeCode": "SIREN", "idValue": "303265045"}]},
        headers=headers,
        timeout=5,
    ).json()["results"][0]["company"]["companyId"]
    jobs = []
    for amount in (10_000, 20_000, 30_000):
        answer = requests.post(
            f"{url}/uatm/riskinfo/v3/covers",
            json={
                "requestTypeCode": "Primary",
                "policy": {"businessUnitCode": "B", "policyId": "P", "extensionId": ""},
                "creditLimitDetails": {
                    "requestedAmount": amount,
                    "currencyCode": "EUR",
                },
                "companyId": company,
            },
            headers=headers,
            timeout=5,
        )
        assert isinstance(answer.json(), str), "the jobId as a bare JSON string"
        jobs.append(answer.json())
    job = requests.get(
        f"{url}/uatm/riskinfo/v3/jobs/{jobs[0]}", headers=headers, timeout=5
    ).json()
    assert job["jobStatusCode"] == "PROCESSED"
    assert job["resourceUrl"].startswith(f"{url}/uatm/riskinfo/v3/covers/")
    pages = []
    for page in (1, 2, 3):
        answer = requests.post(
            f"{url}/uatm/riskinfo/v3/covers/search",
            json={
                "policies": [{"businessUnitCode": "B", "policyId": "P"}],
                "pagination": {"page": page, "pageSize": 1, "isTotalRequired": True},
            },
            headers=headers,
            timeout=5,
        )
        pages.append((answer.status_code, len(answer.json())))
    assert pages == [(206, 1), (206, 1), (200, 1)]


def test_the_coface_dialect_takes_the_id_token_as_it_is(sandbox):
    url = f"{sandbox.url}/coface"
    tokens = requests.post(
        f"{url}/authentication/v1/token",
        headers={"x-api-key": "k"},
        json={"grantType": "password", "username": "u", "password": "p"},
        timeout=5,
    ).json()
    query = {
        "countryCode": "FR",
        "identifierType": "SIREN",
        "identifierValue": "303265045",
    }
    path = f"{url}/company/v1/companies/identifier"
    for authorization, status in (
        (f"Bearer {tokens['idToken']}", 401),
        (tokens["accessToken"], 401),
        (tokens["idToken"], 200),
    ):
        answer = requests.get(
            path,
            params=query,
            headers={"authorization": authorization, "x-api-key": "k"},
            timeout=5,
        )
        assert answer.status_code == status, authorization
    assert answer.json()["count"] == 1
    # Locked after five failures, for 1 s doubling with each one: 10 failures
    # lock it for 2 ** 5 = 32 s.
    for __ in range(10):
        requests.post(
            f"{url}/authentication/v1/token",
            headers={"x-api-key": "k"},
            json={"grantType": "password", "username": "v", "password": "wrong"},
            timeout=5,
        )
    locked = requests.post(
        f"{url}/authentication/v1/token",
        headers={"x-api-key": "k"},
        json={"grantType": "password", "username": "v", "password": "right"},
        timeout=5,
    )
    assert "attempts exceeded" in locked.json()["message"]
