"""Coface provider against a local fake of its documented exchange.

Only authentication and the company lookup are public, so the limit
scenarios (referral, refusal, dropped answer of a request) do not apply: the
tests prove those operations say so instead of guessing a payload.
"""

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
    ProviderConfig,
    ProviderOperationUnavailable,
)

API_KEY, POLICY, USER, PASSWORD = "cof-key-31", "POL-77", "durand", "pa55-word-x"
MOREAU = BuyerIdentity.build(
    name="Textiles Moreau SAS", vat="FR19389456716", registry="38945671600015"
)


@pytest.fixture
def fake(serve):
    insurer = FakeCoface(API_KEY, POLICY, USER, PASSWORD)
    insurer.companies[("SIREN", "389456716")] = ("EN-1234567", "TEXTILES MOREAU")
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


def test_happy_path_company_by_siren_gives_the_easy_number(fake):
    coface = provider(fake)
    assert coface.find_buyer(MOREAU).buyer_ref == "EN-1234567"
    assert coface.find_buyer(BuyerIdentity.build(registry="111222333")) is None
    assert fake.logins == 1


def test_token_expiry_mid_batch(fake):
    coface = provider(fake)
    coface.find_buyer(MOREAU)
    fake.expire_tokens()
    assert coface.find_buyer(MOREAU).buyer_ref == "EN-1234567"
    assert fake.logins == 2


def test_failed_login_is_not_retried_so_the_account_does_not_lock(fake):
    coface = provider(fake, password="wrong-pass-0000")
    for __ in range(3):  # three batches, one login attempt each
        with pytest.raises(InsurerAuthError) as refused:
            coface.find_buyer(MOREAU)
    assert fake.failed_logins == 3
    assert "wrong-pass-0000" not in str(refused.value)
    assert "Incorrect username or password" in str(refused.value)


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


def test_operations_without_a_public_contract_say_so(fake):
    coface = provider(fake)
    request = LimitRequest(
        customer_reference="R",
        request_type="new",
        amount=1000,
        currency="EUR",
        buyer_ref="EN-1234567",
    )
    with pytest.raises(ProviderOperationUnavailable) as unavailable:
        coface.request_limit(request)
    assert str(unavailable.value) == (
        "Coface: requesting a limit is not available through this connection "
        "(the CofaServe PRODUCT payload is not public). Do it in the insurer's "
        "portal."
    )
    with pytest.raises(ProviderOperationUnavailable, match="NOTIFICATION"):
        coface.fetch_decisions(None)
    declaration = OverdueDeclaration(
        idempotency_key="K",
        category="overdue",
        buyer_ref="EN-1234567",
        invoice_reference="INV/1",
        amount=1000,
        currency="EUR",
        due_date=date.today(),
    )
    with pytest.raises(ProviderOperationUnavailable, match="OVERDUE payload"):
        coface.declare_overdue(declaration)
    assert fake.calls == []
