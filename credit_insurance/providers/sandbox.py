"""The built-in sandbox insurer (``credit_insurance/sandbox/server.py``).

Every operation of the contract is implemented, so that the whole flow —
limits, decisions, declarations, claims — can be tried and tested without an
insurer contract. API documented in ``credit_insurance/sandbox/README.md``.
"""

from urllib.parse import quote

from .base import (
    ANSWER_STATUSES,
    BuyerIdentity,
    BuyerMatch,
    ClaimBatch,
    ClaimStatus,
    Decision,
    DecisionBatch,
    DeclarationAnswer,
    InsurerProvider,
    LimitAnswer,
    TurnoverAnswer,
    utc_iso,
)
from .errors import InsurerProtocolError

# The sandbox's codes -> the shared vocabulary (base.py), in one place.
DECISION_CODES = {
    "APPROVED": "approved",
    "PARTIAL": "partial",
    "CONDITIONAL": "conditional",
    "REFUSED": "refused",
    "REDUCED": "reduced",
    "WITHDRAWN": "cancelled",
    "CANCELLED": "cancelled",
}
DECLARATION_CODES = {
    "RECEIVED": "received",
    "IN_COLLECTION": "in_collection",
    "ACCEPTED": "accepted",
    "REFUSED": "refused",
    "SETTLED": "settled",
    "CLAIM_OPENED": "claim_opened",
    "CLOSED": "closed",
}
CLAIM_CODES = {
    "OPEN": "open",
    "INDEMNIFIED": "indemnified",
    "REJECTED": "rejected",
    "CLOSED": "closed",
}
OVERDUE_CATEGORIES = {"overdue": "OVD", "extension": "EXP", "rescheduling": "RES"}


class SandboxProvider(InsurerProvider):
    code = "sandbox"
    label = "Sandbox insurer"

    # -- authentication ----------------------------------------------------

    def _fetch_token(self):
        __, body = self._call(
            "POST",
            "/v1/token",
            json_body={"apiKey": self.config.api_key or "sandbox"},
            authenticated=False,
            login=True,
        )
        return (
            self._field(body, "accessToken", what="login answer"),
            self._field(body, "expiresIn", what="login answer"),
        )

    # -- buyers and limits -------------------------------------------------

    def find_buyer(self, buyer):
        __, body = self._call(
            "POST",
            "/v1/buyers/search",
            json_body={
                "siren": buyer.siren,
                "siret": buyer.siret,
                "vat": buyer.vat,
                "duns": buyer.duns,
                "name": buyer.name,
                "country": buyer.country_code,
            },
        )
        buyers = self._list(body, "buyers", what="buyer search answer")
        if not buyers:
            return None
        return BuyerMatch(
            buyer_ref=self._field(buyers[0], "buyerId", what="buyer"),
            name=buyers[0].get("name") or "",
            country_code=buyers[0].get("country") or "",
        )

    def request_limit(self, request):
        __, body = self._call(
            "POST",
            "/v1/limit-requests",
            json_body={
                "customerReference": request.customer_reference,
                "buyerId": request.buyer_ref,
                "type": request.request_type,
                "amount": request.amount,
                "currency": request.currency,
                "policyNumber": request.policy_number,
                "reason": request.reason,
            },
            ok=(201, 202),
        )
        return self._answer(body)

    def find_limit_request(self, request):
        __, body = self._call(
            "GET",
            "/v1/limit-requests",
            params={"customerReference": request.customer_reference},
        )
        found = self._list(body, "requests", what="request lookup answer")
        return self._answer(found[0]) if found else None

    def poll_limit_request(self, request, insurer_reference):
        __, body = self._call(
            "GET", f"/v1/limit-requests/{quote(insurer_reference, safe='')}"
        )
        return self._answer(body)

    def fetch_decisions(self, since, limit=200):
        params = {"limit": limit}
        if since:
            params["since"] = utc_iso(since)
        __, body = self._call("GET", "/v1/decisions", params=params)
        return DecisionBatch(
            decisions=[
                self._decision(item)
                for item in self._list(body, "decisions", what="decision feed")
            ],
            next_since=self._datetime(self._field(body, "until"), "until"),
            has_more=bool(body.get("hasMore")),
        )

    def _answer(self, body):
        status = self._check_choice(
            self._field(body, "status", what="request"),
            ANSWER_STATUSES,
            "request status",
        )
        return LimitAnswer(
            status=status,
            insurer_reference=self._field(body, "requestId", what="request"),
            decision=(
                self._decision(self._field(body, "decision", what="request"))
                if status == "decided"
                else None
            ),
        )

    def _decision(self, data):
        code = self._field(data, "code", what="decision")
        if code not in DECISION_CODES:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: unknown decision code {code!r}.",
                code="unknown_code",
                field="code",
                value=str(code),
            )
        buyer = data.get("buyer") or {}
        return Decision(
            decision_ref=self._field(data, "decisionId", what="decision"),
            buyer_ref=self._field(data, "buyerId", what="decision"),
            decision=DECISION_CODES[code],
            granted_amount=self._amount(data.get("amount"), "the granted amount"),
            requested_amount=self._amount(
                data.get("requestedAmount") or 0, "the requested amount"
            ),
            currency=self._field(data, "currency", what="decision"),
            date_effective=self._date(data.get("effectiveDate"), "the effective date"),
            date_expiry=self._date(
                data.get("expiryDate"), "the expiry date", required=False
            ),
            conditions=data.get("conditions") or "",
            policy_number=data.get("policyNumber") or "",
            customer_reference=data.get("customerReference") or "",
            request_ref=data.get("requestId") or "",
            buyer=BuyerIdentity(
                name=buyer.get("name") or "",
                country_code=buyer.get("country") or "",
                siren=buyer.get("siren") or "",
                vat=buyer.get("vat") or "",
            ),
        )

    # -- overdues and claims (used by the declaration and claim features) ----

    def declare_overdue(self, declaration):
        __, body = self._call(
            "POST",
            "/v1/overdues",
            json_body={
                "idempotencyKey": declaration.idempotency_key,
                "buyerId": declaration.buyer_ref,
                "policyNumber": declaration.policy_number,
                "category": OVERDUE_CATEGORIES[declaration.category],
                "invoiceNumber": declaration.invoice_reference,
                "amount": declaration.amount,
                "currency": declaration.currency,
                "dueDate": declaration.due_date.isoformat(),
                "requestedDueDate": declaration.requested_due_date.isoformat()
                if declaration.requested_due_date
                else None,
                "comment": declaration.comment,
                "invoices": self._invoices(declaration),
            },
            ok=(201,),
        )
        return self._declaration(body)

    def update_declaration(self, insurer_reference, declaration):
        __, body = self._call(
            "PUT",
            f"/v1/overdues/{quote(insurer_reference, safe='')}",
            json_body={
                "amount": declaration.amount,
                "currency": declaration.currency,
                "invoices": self._invoices(declaration),
            },
            ok=(200,),
        )
        return self._declaration(body)

    @staticmethod
    def _invoices(declaration):
        return [
            {
                "invoiceNumber": invoice.reference,
                "amount": invoice.amount,
                "dueDate": invoice.due_date.isoformat(),
                "invoiceDate": invoice.invoice_date.isoformat()
                if invoice.invoice_date
                else None,
                "invoiceAmount": invoice.invoice_amount,
                "invoiceCurrency": invoice.invoice_currency,
            }
            for invoice in declaration.invoices
        ]

    def find_declaration(self, declaration):
        __, body = self._call(
            "GET",
            "/v1/overdues",
            params={"idempotencyKey": declaration.idempotency_key},
        )
        found = self._list(body, "overdues", what="overdue lookup answer")
        return self._declaration(found[0]) if found else None

    def fetch_declaration_status(self, insurer_reference):
        __, body = self._call(
            "GET", f"/v1/overdues/{quote(insurer_reference, safe='')}"
        )
        return self._declaration(body)

    def _declaration(self, body):
        code = self._field(body, "status", what="overdue")
        if code not in DECLARATION_CODES:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: unknown overdue status {code!r}.",
                code="unknown_code",
                field="status",
                value=str(code),
            )
        return DeclarationAnswer(
            insurer_reference=self._field(body, "overdueId", what="overdue"),
            status=DECLARATION_CODES[code],
            claim_ref=body.get("claimId") or "",
        )

    def declare_turnover(self, declaration):
        # PUT on our own key: sending again returns the declaration received.
        status, body = self._call(
            "PUT",
            f"/v1/turnover-declarations/{quote(declaration.idempotency_key)}",
            json_body={
                "policyNumber": declaration.policy_number,
                "periodStart": declaration.date_from.isoformat(),
                "periodEnd": declaration.date_to.isoformat(),
                "currency": declaration.currency,
                "turnoverByCountry": declaration.by_country,
                "premium": declaration.premium,
            },
            ok=(200, 201),
        )
        return TurnoverAnswer(
            insurer_reference=self._field(
                body, "declarationId", what="turnover declaration"
            ),
            duplicate=status == 200,
        )

    def fetch_claims(self, since, limit=200):
        params = {"limit": limit}
        if since:
            params["since"] = utc_iso(since)
        __, body = self._call("GET", "/v1/claims", params=params)
        return ClaimBatch(
            claims=[
                self._claim(item)
                for item in self._list(body, "claims", what="claim feed")
            ],
            next_since=self._datetime(self._field(body, "until"), "until"),
            has_more=bool(body.get("hasMore")),
        )

    def fetch_claim(self, claim_ref):
        __, body = self._call("GET", f"/v1/claims/{quote(claim_ref, safe='')}")
        return self._claim(body)

    def _claim(self, body):
        code = self._field(body, "status", what="claim")
        if code not in CLAIM_CODES:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: unknown claim status {code!r}.",
                code="unknown_code",
                field="status",
                value=str(code),
            )
        return ClaimStatus(
            claim_ref=self._field(body, "claimId", what="claim"),
            status=CLAIM_CODES[code],
            declaration_ref=body.get("overdueId") or "",
            buyer_ref=body.get("buyerId") or "",
            claimed_amount=self._amount(body.get("claimedAmount") or 0, "the claim"),
            indemnity_amount=self._amount(
                body.get("indemnityAmount") or 0, "the indemnity"
            ),
            currency=body.get("currency") or "",
            date_opened=self._date(body.get("openedOn"), "the opening date", False),
            date_paid=self._date(body.get("paidOn"), "the payment date", False),
        )
