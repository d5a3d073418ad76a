"""Coface CofaServe (JSON services COMPANY, PRODUCT, NOTIFICATION, OVERDUE...).

Public (see the table in ``providers/README.md``):

- token ``POST /authentication/v1/token`` with the ``x-api-key`` header and
  the body ``{"grantType": "password", "username", "password"}``; the answer's
  ``idToken`` goes as it is, without "Bearer", in the ``authorization``
  header of every later call, beside ``x-api-key`` (coface/coface.github.io
  ``postman/v2/*`` and its environments: ``https://api.coface.com/
  authentication/v1``);
- CofaServe (biz.coface.com/Cofaserve): every call carries the contract id;
  five failed logins lock the account, then each further failure doubles a
  temporary lockout from 1 s up to about 15 minutes: a refused login is
  therefore never tried again by itself, and a lockout pauses the insurer.

*Our reading*, in one place each, to confirm at onboarding: the
``x-cof-policy-number`` header, the token's ``expiresIn``, the company
lookup by identifier (``COMPANY_PATH``, ``IDENTIFIER_TYPES``,
``{companies, count}``, ``easyNumber``), and the PRODUCT (limit requests,
``PRODUCT_PATH``, ``_order_payload``, ``DECISION_CODES``) and OVERDUE
(declarations, ``OVERDUE_PATH``, ``_overdue_payload``, ``OVERDUE_STATUSES``)
exchanges, whose field lists are not public: the insurer form says they are
not confirmed against the insurer until a user confirmed one exchange.
NOTIFICATION (decision changes) and claims stay unavailable.
"""

from datetime import date
from urllib.parse import quote

from .base import (
    BuyerMatch,
    Decision,
    DeclarationAnswer,
    InsurerProvider,
    LimitAnswer,
)
from .errors import InsurerAuthError, InsurerProtocolError

TOKEN_PATH = "/authentication/v1/token"
COMPANY_PATH = "/company/v1/companies/identifier"
PRODUCT_PATH = "/product/v1/orders"
OVERDUE_PATH = "/overdue/v1/overdues"
# The longest temporary lockout (CofaServe page: "up to about 15 minutes").
LOCKOUT_SECONDS = 15 * 60
# Words of a lockout answer (our reading: the identity provider's message).
LOCKOUT_WORDS = ("locked", "attempts exceeded")
# Our identifiers -> identifierType, in order of preference (our reading).
IDENTIFIER_TYPES = {"siren": "SIREN", "siret": "SIRET", "vat": "VAT"}
# Our request types -> productCode of an order (our reading).
PRODUCT_CODES = {
    "new": "CREDIT_LIMIT",
    "increase": "CREDIT_LIMIT",
    "renew": "CREDIT_LIMIT",
    "reduce": "CREDIT_LIMIT",
    "cancel": "CANCELLATION",
}
CHECK_PRODUCT = "CREDIT_CHECK"
ORDER_STATUSES = {"DECIDED": "decided", "PENDING": "pending", "REFERRED": "referred"}
DECISION_CODES = {
    "APPROVED": "approved",
    "PARTIAL": "partial",
    "CONDITIONAL": "conditional",
    "REFUSED": "refused",
    "REDUCED": "reduced",
    "WITHDRAWN": "cancelled",
    "CANCELLED": "cancelled",
}
OVERDUE_CATEGORIES = {
    "overdue": "OVERDUE",
    "extension": "EXTENSION",
    "rescheduling": "RESCHEDULING",
}
OVERDUE_STATUSES = {
    "RECEIVED": "received",
    "IN_COLLECTION": "in_collection",
    "ACCEPTED": "accepted",
    "REFUSED": "refused",
    "SETTLED": "settled",
    "CLAIM_OPENED": "claim_opened",
    "CLOSED": "closed",
}


class CofaceProvider(InsurerProvider):
    code = "coface"
    label = "Coface"
    base_url_defaults = {
        "sandbox": "https://api.coface.com",
        "production": "https://api.coface.com",
    }
    lockout_after = 5
    has_decision_feed = False
    unconfirmed_operations = ("request_limit", "declare_overdue")

    # -- authentication ----------------------------------------------------

    def _fetch_token(self):
        __, body = self._call(
            "POST",
            TOKEN_PATH,
            headers=self._service_headers(),
            json_body={
                "grantType": "password",
                "username": self.config.login,
                "password": self.config.password,
            },
            authenticated=False,
            login=True,
        )
        return (
            self._field(body, "idToken", what="token answer"),
            self._field(body, "expiresIn", what="token answer"),
        )

    def _service_headers(self):
        return {
            "x-api-key": self.config.api_key,
            "x-cof-policy-number": self.config.customer_number,
        }

    def _auth_headers(self):
        # The idToken as it is: CofaServe refuses "Bearer <token>".
        return {"authorization": self._token, **self._service_headers()}

    def _login_error(self, response):
        detail = self._error_detail(response)
        if any(word in detail.lower() for word in LOCKOUT_WORDS):
            return self._error(
                InsurerAuthError,
                f"{self.name} locked the account after failed logins "
                f"(HTTP {response.status_code}): {detail}",
                code="account_locked",
                status=response.status_code,
                retry_after=LOCKOUT_SECONDS,
                minutes=str(LOCKOUT_SECONDS // 60),
                detail=detail,
            )
        return self._error(
            InsurerAuthError,
            f"{self.name} refused the login (HTTP {response.status_code}): "
            f"{detail} It is not tried again until the credentials change (the "
            "account locks after five failed logins).",
            code="login_refused",
            status=response.status_code,
            detail=detail,
        )

    # -- company -------------------------------------------------------------

    def find_buyer(self, buyer):
        identifier = buyer.identifier(IDENTIFIER_TYPES)
        if not identifier or not buyer.country_code:
            raise self._unavailable("find_buyer_without_identifier", "identifier_only")
        kind, value = identifier
        __, body = self._call(
            "GET",
            COMPANY_PATH,
            params={
                "countryCode": buyer.country_code,
                "identifierType": IDENTIFIER_TYPES[kind],
                "identifierValue": value,
            },
        )
        companies = self._list(body, "companies", what="company answer")
        if not companies:
            return None
        return BuyerMatch(
            buyer_ref=str(self._field(companies[0], "easyNumber", what="company")),
            name=companies[0].get("name") or "",
            country_code=buyer.country_code,
        )

    # -- PRODUCT: limit requests (our reading) -------------------------------

    def _order_payload(self, request):
        """A limit request as a PRODUCT order, in one place (our reading)."""
        product = (
            CHECK_PRODUCT
            if request.cover_kind == "check"
            else PRODUCT_CODES[request.request_type]
        )
        payload = {
            "contractId": request.policy_number or self.config.customer_number,
            "easyNumber": request.buyer_ref,
            "productCode": product,
            "customerReference": request.customer_reference,
        }
        if product == "CREDIT_LIMIT":
            payload.update(amount=request.amount, currencyCode=request.currency)
        return payload

    def request_limit(self, request):
        __, body = self._call(
            "POST",
            PRODUCT_PATH,
            json_body=self._order_payload(request),
            ok=(201, 202),
        )
        return self._order_answer(body, request)

    def find_limit_request(self, request):
        __, body = self._call(
            "GET",
            PRODUCT_PATH,
            params={"customerReference": request.customer_reference},
        )
        orders = self._list(body, "orders", what="order lookup answer")
        return self._order_answer(orders[0], request) if orders else None

    def poll_limit_request(self, request, insurer_reference):
        __, body = self._call(
            "GET", f"{PRODUCT_PATH}/{quote(insurer_reference, safe='')}"
        )
        return self._order_answer(body, request)

    def _order_answer(self, order, request):
        status = ORDER_STATUSES.get(self._field(order, "status", what="order"))
        if status is None:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: unknown order status {order.get('status')!r}.",
                code="unknown_code",
                field="status",
                value=str(order.get("status")),
            )
        reference = str(self._field(order, "orderId", what="order"))
        return LimitAnswer(
            status=status,
            insurer_reference=reference,
            decision=self._decision(order, request) if status == "decided" else None,
        )

    def _decision(self, order, request):
        data = self._field(order, "decision", what="order")
        code = data.get("code")
        if code not in DECISION_CODES:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: unknown decision code {code!r}.",
                code="unknown_code",
                field="decision.code",
                value=str(code),
            )
        kind = DECISION_CODES[code]
        amount = self._amount(
            data.get("amount"),
            "decision.amount",
            required=kind not in ("refused", "cancelled"),
        )
        effective = self._date(data.get("effectiveDate"), "decision.effectiveDate")
        conditions = "\n".join(str(c) for c in data.get("conditions") or [])
        reference = str(order.get("orderId"))
        return Decision(
            decision_ref=f"{reference}/{code}/{effective.isoformat()}",
            buyer_ref=str(order.get("easyNumber") or request.buyer_ref),
            decision=kind,
            granted_amount=amount or 0.0,
            requested_amount=request.amount,
            currency=data.get("currencyCode") or request.currency,
            date_effective=effective,
            date_expiry=self._date(
                data.get("expiryDate"), "decision.expiryDate", required=False
            ),
            conditions=conditions,
            policy_number=request.policy_number,
            customer_reference=order.get("customerReference") or "",
            request_ref=reference,
        )

    # -- OVERDUE: declarations (our reading) ---------------------------------

    def _overdue_payload(self, declaration):
        """An overdue declaration as CofaServe OVERDUE takes it, in one place
        (our reading)."""
        return {
            "contractId": declaration.policy_number or self.config.customer_number,
            "easyNumber": declaration.buyer_ref,
            "customerReference": declaration.idempotency_key,
            "category": OVERDUE_CATEGORIES[declaration.category],
            "amount": declaration.amount,
            "currencyCode": declaration.currency,
            "dueDate": declaration.due_date.isoformat(),
            "requestedDueDate": _iso(declaration.requested_due_date),
            "invoices": [
                {
                    "invoiceNumber": invoice.reference,
                    "amount": invoice.amount,
                    "dueDate": invoice.due_date.isoformat(),
                    "invoiceDate": _iso(invoice.invoice_date),
                }
                for invoice in declaration.invoices
            ]
            or [
                {
                    "invoiceNumber": declaration.invoice_reference,
                    "amount": declaration.amount,
                    "dueDate": declaration.due_date.isoformat(),
                    "invoiceDate": _iso(declaration.invoice_date),
                }
            ],
        }

    def declare_overdue(self, declaration):
        __, body = self._call(
            "POST",
            OVERDUE_PATH,
            json_body=self._overdue_payload(declaration),
            ok=(201,),
        )
        return self._overdue_answer(body)

    def find_declaration(self, declaration):
        __, body = self._call(
            "GET",
            OVERDUE_PATH,
            params={"customerReference": declaration.idempotency_key},
        )
        found = self._list(body, "overdues", what="overdue lookup answer")
        return self._overdue_answer(found[0]) if found else None

    def fetch_declaration_status(self, insurer_reference):
        __, body = self._call(
            "GET", f"{OVERDUE_PATH}/{quote(insurer_reference, safe='')}"
        )
        return self._overdue_answer(body)

    def update_declaration(self, insurer_reference, declaration):
        payload = self._overdue_payload(declaration)
        __, body = self._call(
            "PUT",
            f"{OVERDUE_PATH}/{quote(insurer_reference, safe='')}",
            json_body={key: payload[key] for key in ("amount", "invoices")},
            ok=(200,),
        )
        return self._overdue_answer(body)

    def _overdue_answer(self, body):
        code = self._field(body, "status", what="overdue")
        if code not in OVERDUE_STATUSES:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: unknown overdue status {code!r}.",
                code="unknown_code",
                field="status",
                value=str(code),
            )
        return DeclarationAnswer(
            insurer_reference=str(self._field(body, "overdueId", what="overdue")),
            status=OVERDUE_STATUSES[code],
            claim_ref=str(body.get("claimId") or ""),
            message=str(body.get("message") or ""),
        )

    # -- not public ------------------------------------------------------------

    def fetch_decisions(self, since, limit=200):
        raise self._unavailable("pull_decisions", "not_public")

    def fetch_claims(self, since, limit=200):
        raise self._unavailable("pull_claims", "not_public")

    def fetch_claim(self, claim_ref):
        raise self._unavailable("follow_claim", "not_public")


def _iso(day):
    return day.isoformat() if isinstance(day, date) else None
