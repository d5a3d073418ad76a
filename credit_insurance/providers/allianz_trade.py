"""Allianz Trade (developers.allianz-trade.com).

Implemented from the public contract recorded in DOMAIN.md and the public
getting-started guide (see ``providers/README.md``):

- token ``POST /v1/idp/oauth2/authorize`` with ``{"apiKey": ...}``, valid
  3600 s and not renewable: a new one is asked when it expires;
- company matching ``POST /search/v2/companies/matching`` -> ``companyId``;
- cover request ``POST /riskinfo/v3/covers`` (``requestTypeCode``,
  ``policy{businessUnitCode, policyId}``, ``creditLimitDetails``,
  ``companyId``, ``isRequestUrgent``): asynchronous, it returns a ``jobId``;
  ``GET /riskinfo/v3/jobs/{id}`` until processed, then ``resourceUrl`` gives
  the cover with ``creditLimitsAggregation.creditLimits[]``;
- portfolio ``POST /riskinfo/v3/covers/search`` (paginated) for decisions.

- payment overdues: the public *Payment Overdues* page says the API declares,
  updates and follows overdues with ``overdueCategoryTypeCode`` OVD (a state
  of default), EXP (an extension period: a new due date for a single invoice)
  and RES (a rescheduling).

Extension requests (EXP) are sent; their endpoint and payload fields are *our
reading* (see ``OVERDUE_PATH`` and ``_extension_payload``), to confirm against
the API catalogue at onboarding. They are asynchronous like every write: the
``jobId`` is the reference followed at ``/riskinfo/v3/jobs/{id}``.

Not public, hence unavailable: looking a cover request or an overdue up by our
own reference (so a call whose answer was lost is never re-sent
automatically: a person checks the portal), the request type codes other than
a new cover, the declaration of a state of default covering several invoices
and its updates (filed in the portal), and claims.
"""

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from .base import (
    BuyerMatch,
    Decision,
    DecisionBatch,
    DeclarationAnswer,
    InsurerProvider,
    LimitAnswer,
)
from .errors import InsurerProtocolError, InsurerRejected

# Our request types -> requestTypeCode, in one place. Only the code of a new
# cover request ("Primary") appears in public material.
REQUEST_TYPE_CODES = {"new": "Primary", "increase": "Primary"}
# technicalDecisionStatusCode -> decision type; None means "granted": approved
# or partial depending on the amount. Only "AlreadyAgreed" appears in public
# material; the other codes are our reading, to confirm at onboarding.
DECISION_CODES = {
    "AlreadyAgreed": None,
    "Agreed": None,
    "Refused": "refused",
    "Reduced": "reduced",
    "Cancelled": "cancelled",
    "Withdrawn": "cancelled",
}
REFERRED_CODES = ("Pending", "UnderReview", "Referred")
# Payment overdue categories (public).
OVERDUE_CATEGORY_CODES = {"overdue": "OVD", "extension": "EXP", "rescheduling": "RES"}
# Our reading of the Payment Overdues endpoint (not in the public material).
OVERDUE_PATH = "/riskinfo/v3/overdues"
JOB_DONE, JOB_WAITING, JOB_FAILED = (
    ("processed",),
    ("pending", "inprogress"),
    (
        "failed",
        "rejected",
        "error",
    ),
)
PORTFOLIO_PAGE_SIZE = 100
PORTFOLIO_MAX_PAGES = 50


class AllianzTradeProvider(InsurerProvider):
    code = "allianz_trade"
    label = "Allianz Trade"

    def _fetch_token(self):
        __, body = self._call(
            "POST",
            "/v1/idp/oauth2/authorize",
            json_body={"apiKey": self.config.api_key},
            authenticated=False,
            login=True,
        )
        return (
            self._field(body, "access_token", what="token answer"),
            self._field(body, "expires_in", what="token answer"),
        )

    # -- buyers ----------------------------------------------------------------

    def find_buyer(self, buyer):
        __, body = self._call(
            "POST",
            "/search/v2/companies/matching",
            json_body={
                "requestedSize": 1,
                "companyName": buyer.name,
                "countryCode": buyer.country_code,
                "postalCode": buyer.zip,
                "town": buyer.city,
                "streetName": buyer.street,
            },
        )
        results = self._list(body, "results", what="company matching answer")
        if not results:
            return None
        company = self._field(results[0], "company", what="company matching answer")
        return BuyerMatch(
            buyer_ref=str(self._field(company, "companyId", what="company")),
            name=(company.get("legalData") or {}).get("companyName") or "",
            country_code=buyer.country_code,
        )

    # -- covers ------------------------------------------------------------------

    def request_limit(self, request):
        type_code = REQUEST_TYPE_CODES.get(request.request_type)
        if not type_code:
            raise self._unavailable(
                f"a '{request.request_type}' request",
                "its request type code is not in the public documentation",
            )
        __, body = self._call(
            "POST",
            "/riskinfo/v3/covers",
            json_body={
                "requestTypeCode": type_code,
                "policy": {
                    "businessUnitCode": self.config.customer_number,
                    "policyId": request.policy_number,
                },
                "creditLimitDetails": {
                    "requestedAmount": request.amount,
                    "currencyCode": request.currency,
                },
                "companyId": request.buyer_ref,
                "isRequestUrgent": request.urgent,
            },
            ok=(200, 201, 202),
        )
        return LimitAnswer(
            status="pending",
            insurer_reference=str(
                self._field(body, "jobId", what="cover request answer")
            ),
        )

    def find_limit_request(self, request):
        raise self._unavailable(
            "looking a cover request up by our reference",
            "the public contract has no such lookup",
        )

    def poll_limit_request(self, request, insurer_reference):
        __, job = self._call(
            "GET", f"/riskinfo/v3/jobs/{quote(insurer_reference, safe='')}"
        )
        status = str(self._field(job, "jobStatusCode", what="job")).lower()
        if status in JOB_WAITING:
            return LimitAnswer(status="pending", insurer_reference=insurer_reference)
        if status in JOB_FAILED:
            raise self._error(
                InsurerRejected,
                f"{self.name} did not process cover request {insurer_reference}: "
                f"{job.get('message') or status}.",
            )
        if status not in JOB_DONE:
            raise self._error(
                InsurerProtocolError, f"{self.name}: unknown job status {status!r}."
            )
        __, cover = self._call("GET", self._field(job, "resourceUrl", what="job"))
        latest = self._latest_limit(cover)
        if latest.get("technicalDecisionStatusCode") in REFERRED_CODES:
            return LimitAnswer(status="referred", insurer_reference=insurer_reference)
        return LimitAnswer(
            status="decided",
            insurer_reference=insurer_reference,
            decision=self._decision(cover, latest, request.amount),
        )

    def fetch_decisions(self, since, limit=200):
        # The portfolio has no "changed since" filter in the public contract:
        # read it whole and keep the limits starting from the day before
        # ``since``; decisions already recorded are recognised by reference.
        started = datetime.now(timezone.utc).replace(tzinfo=None)
        from_date = since.date() - timedelta(days=1) if since else None
        decisions = []
        for page in range(1, PORTFOLIO_MAX_PAGES + 1):
            __, body = self._call(
                "POST",
                "/riskinfo/v3/covers/search",
                json_body={"pageNumber": page, "pageSize": PORTFOLIO_PAGE_SIZE},
                ok=(200,),
            )
            for cover in self._list(body, "covers", what="portfolio"):
                for credit_limit in self._limits(cover):
                    if (
                        credit_limit.get("technicalDecisionStatusCode")
                        in REFERRED_CODES
                    ):
                        continue
                    decision = self._decision(cover, credit_limit, 0.0)
                    if not from_date or decision.date_effective >= from_date:
                        decisions.append(decision)
            if page >= int(body.get("totalPages") or 1):
                break
        decisions.sort(key=lambda d: d.date_effective)
        return DecisionBatch(decisions=decisions, next_since=started)

    def _limits(self, cover):
        return self._list(
            cover, "creditLimitsAggregation", "creditLimits", what="cover"
        )

    def _latest_limit(self, cover):
        limits = self._limits(cover)
        if not limits:
            raise self._error(
                InsurerProtocolError, f"{self.name}: the cover has no credit limit."
            )
        return max(limits, key=lambda item: str(item.get("startDate") or ""))

    def _decision(self, cover, credit_limit, requested):
        """One credit limit of a cover as a decision, typed in one place."""
        code = credit_limit.get("technicalDecisionStatusCode")
        if code not in DECISION_CODES:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: unknown technicalDecisionStatusCode {code!r}.",
            )
        amount = self._amount(credit_limit.get("amount"), "the credit limit amount")
        kind = DECISION_CODES[code]
        if kind is None:
            kind = "partial" if requested and amount < requested else "approved"
        company_id = str(self._field(cover, "companyId", what="cover"))
        effective = self._date(credit_limit.get("startDate"), "the start date")
        return Decision(
            decision_ref=f"{company_id}/{effective.isoformat()}/{code}/{amount:.0f}",
            buyer_ref=company_id,
            decision=kind,
            granted_amount=0.0 if kind in ("refused", "cancelled") else amount,
            requested_amount=requested,
            currency=credit_limit.get("currencyCode")
            or cover.get("currencyCode")
            or "",
            date_effective=effective,
            date_expiry=self._date(
                credit_limit.get("endDate"), "the end date", required=False
            ),
            policy_number=str((cover.get("policy") or {}).get("policyId") or ""),
        )

    # -- overdues and claims ---------------------------------------------------

    def declare_overdue(self, declaration):
        category = OVERDUE_CATEGORY_CODES.get(declaration.category, "?")
        if declaration.category != "extension":
            raise self._unavailable(
                f"declaring a payment overdue (category {category})",
                "a state of default covering several invoices and its updates "
                "are not in the public documentation",
            )
        __, body = self._call(
            "POST",
            OVERDUE_PATH,
            json_body=self._extension_payload(declaration),
            ok=(200, 201, 202),
        )
        return DeclarationAnswer(
            insurer_reference=str(
                self._field(body, "jobId", what="extension request answer")
            ),
            status="received",
        )

    def _extension_payload(self, declaration):
        """An extension period (EXP) for one invoice, in one place.

        ``policy`` and ``companyId`` are shaped as for a cover request; the
        other field names are our reading, to confirm at onboarding.
        """
        return {
            "overdueCategoryTypeCode": OVERDUE_CATEGORY_CODES["extension"],
            "policy": {
                "businessUnitCode": self.config.customer_number,
                "policyId": declaration.policy_number,
            },
            "companyId": declaration.buyer_ref,
            "invoiceReference": declaration.invoice_reference,
            "overdueAmount": declaration.amount,
            "currencyCode": declaration.currency,
            "dueDate": declaration.due_date.isoformat(),
            "extendedDueDate": declaration.requested_due_date.isoformat(),
        }

    def find_declaration(self, declaration):
        raise self._unavailable(
            "looking a payment overdue up by our reference",
            "the public contract has no such lookup",
        )

    def fetch_declaration_status(self, insurer_reference):
        """Where an extension request stands: its job, processed or not."""
        __, job = self._call(
            "GET", f"/riskinfo/v3/jobs/{quote(insurer_reference, safe='')}"
        )
        status = str(self._field(job, "jobStatusCode", what="job")).lower()
        if status in JOB_WAITING:
            return DeclarationAnswer(
                insurer_reference=insurer_reference, status="received"
            )
        if status in JOB_FAILED:
            return DeclarationAnswer(
                insurer_reference=insurer_reference,
                status="refused",
                message=str(job.get("message") or status),
            )
        if status not in JOB_DONE:
            raise self._error(
                InsurerProtocolError, f"{self.name}: unknown job status {status!r}."
            )
        return DeclarationAnswer(insurer_reference=insurer_reference, status="accepted")

    def fetch_claims(self, since, limit=200):
        raise self._unavailable("pulling claims", "the claims contract is not public")

    def fetch_claim(self, claim_ref):
        raise self._unavailable(
            "following a claim", "the claims contract is not public"
        )
