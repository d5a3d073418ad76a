"""Allianz Trade (developers.allianz-trade.com).

Shapes from the public getting-started guide and API design guidelines of
developers.allianz-trade.com and from public client code that runs against
the real API, ts-droid/pim-vendora-railway-test ``app/Services/Allianz/*``
and ``config/allianz.php`` (pim-vendora below); see the table in
``providers/README.md``:

- each API has its own base URL, and the sandbox puts its environment marker
  at a different place in each (``/uatm/v1/idp``, ``/uatm/riskinfo/v3``, but
  ``/search/uatm-v2``): ``API_URL_DEFAULTS``, one setting per API;
- token ``POST {idp}/oauth2/authorize`` with ``{"apiKey"}`` -> ``access_token``,
  ``expires_in`` 3600, not renewable (getting started);
- company matching ``POST {search}/companies/matching`` -> ``results[].company
  .companyId`` (getting started; pim-vendora ``AllianzCompanySearch``);
- cover request ``POST {riskinfo}/covers`` (``requestTypeCode`` Primary or
  GradeCover, ``policy{businessUnitCode, policyId, extensionId}``,
  ``creditLimitDetails``, ``companyId``, ``isRequestUrgent``) answered by a
  bare JSON string, the jobId (pim-vendora ``requestGradeCover``); ``GET
  {riskinfo}/jobs/{id}`` until ``jobStatusCode`` PROCESSED, then
  ``resourceUrl`` (design guidelines; pim-vendora ``checkStatus``);
- the cover: ``coverStatusCode`` (Agreement, CheckPolicy) and
  ``creditLimitsAggregation.creditLimits[]`` (``technicalDecisionStatusCode``,
  ``amount``, ``startDate``);
- portfolio ``POST {riskinfo}/covers/search`` with ``{policies, pagination
  {page, pageSize, isTotalRequired}}`` answered by a bare array of flat covers
  (``companyId``, ``companyName``, ``coverStatusCode``,
  ``gradePolicyCoverGradeCode``), HTTP 206 while pages remain (pim-vendora
  ``gradeSearch``; design guidelines);
- pending requests ``POST {riskinfo}/coverRequests/search`` -> ``requestId``,
  ``creditLimitDetails``, ``creationDate``, ``lastUpdateDate``, ``coverId``.

*Our reading*, to confirm at onboarding (each in one place below): the
technical decision codes other than ``AlreadyAgreed`` and the cover status
codes other than Agreement / CheckPolicy, a credit limit's ``endDate`` and
``conditions``, the flat cover's ``coverId`` and ``lastUpdateDate``, the
``{riskinfo}/covers/{coverId}`` address (a job's ``resourceUrl``), the
``companyIdentifiers`` id type codes, the filter of
``coverRequests/search``, the time zone of Allianz Trade's dates
(Europe/Paris), and the whole payment overdue exchange (``OVERDUE_PATH``,
``_extension_payload``): its field list is not public.
"""

from datetime import datetime, timedelta, timezone
from urllib.parse import quote
from zoneinfo import ZoneInfo

from .base import (
    BuyerMatch,
    Decision,
    DecisionBatch,
    DeclarationAnswer,
    InsurerProvider,
    LimitAnswer,
)
from .errors import DeliveryUnconfirmed, InsurerProtocolError, InsurerRejected

# Each API's base URL per environment: getting started (idp), pim-vendora
# config/allianz.php (riskinfo, company-referential) and AllianzCompanySearch
# (search: "/search/uatm-v2" in the sandbox, "/search/v2" in production).
UAT = "https://api-services.uat.1placedessaisons.com"
PROD = "https://api.allianz-trade.com"
API_URL_DEFAULTS = {
    "sandbox": {
        "idp": f"{UAT}/uatm/v1/idp",
        "search": f"{UAT}/search/uatm-v2",
        "riskinfo": f"{UAT}/uatm/riskinfo/v3",
    },
    "production": {
        "idp": f"{PROD}/v1/idp",
        "search": f"{PROD}/search/v2",
        "riskinfo": f"{PROD}/riskinfo/v3",
    },
}
# Our request types -> requestTypeCode: Primary asks for a credit limit,
# GradeCover for a grade (a check within the discretionary limit).
REQUEST_TYPE_CODES = {"new": "Primary", "increase": "Primary", "renew": "Primary"}
GRADE_COVER = "GradeCover"
# technicalDecisionStatusCode -> decision type; None means "granted":
# approved, partial or with conditions depending on the amount and the
# conditions. Only "AlreadyAgreed" appears in public material; the others
# are our reading, to confirm at onboarding.
DECISION_CODES = {
    "AlreadyAgreed": None,
    "Agreed": None,
    "Refused": "refused",
    "Reduced": "reduced",
    "Cancelled": "cancelled",
    "Withdrawn": "cancelled",
}
# coverStatusCode of a cover still with an underwriter (our reading); the
# public ones, Agreement and CheckPolicy, are decided covers.
REFERRED_STATUS_CODES = ("Pending", "UnderReview", "Referred")
GRADE_STATUS_CODE = "CheckPolicy"
# jobStatusCode, compared in lower case: "pending" -> "processed" (design
# guidelines, pim-vendora PROCESSED); the failures are our reading.
JOB_DONE, JOB_WAITING, JOB_FAILED = (
    ("processed",),
    ("pending", "inprogress", "in_progress"),
    ("failed", "rejected", "error"),
)
# Our identifiers -> idTypeCode of companyIdentifiers (our reading).
ID_TYPE_CODES = {"siren": "SIREN", "siret": "SIRET", "vat": "VAT", "duns": "DUNS"}
# The time zone of Allianz Trade's dates and times (our reading).
ALLIANZ_TZ = ZoneInfo("Europe/Paris")
FEED_OVERLAP = timedelta(minutes=5)
PORTFOLIO_PAGE_SIZE = 100
PORTFOLIO_MAX_PAGES = 200
# A cover request found by coverRequests/search is followed under this prefix
# (its jobId was lost with the answer).
REQUEST_PREFIX = "request:"
# Payment overdues (public categories; the endpoint and fields are our reading).
OVERDUE_CATEGORY_CODES = {"overdue": "OVD", "extension": "EXP", "rescheduling": "RES"}
OVERDUE_PATH = "/overdues"


class AllianzTradeProvider(InsurerProvider):
    code = "allianz_trade"
    label = "Allianz Trade"
    api_url_defaults = API_URL_DEFAULTS
    unconfirmed_operations = ("declare_overdue",)

    def _fetch_token(self):
        __, body = self._call(
            "POST",
            "/oauth2/authorize",
            api="idp",
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
        identifiers = [
            {"idTypeCode": code, "idValue": getattr(buyer, kind)}
            for kind, code in ID_TYPE_CODES.items()
            if getattr(buyer, kind)
        ]
        __, body = self._call(
            "POST",
            "/companies/matching",
            api="search",
            json_body={
                "requestedSize": 1,
                "companyName": buyer.name,
                "countryCode": buyer.country_code,
                "postalCode": buyer.zip,
                "town": buyer.city,
                "streetName": buyer.street,
                "companyIdentifiers": identifiers,
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

    def _policy(self, number, extension):
        return {
            "businessUnitCode": self.config.customer_number,
            "policyId": number,
            "extensionId": extension,
        }

    def request_limit(self, request):
        type_code = (
            GRADE_COVER
            if request.cover_kind == "check"
            else REQUEST_TYPE_CODES.get(request.request_type)
        )
        if not type_code:
            raise self._unavailable(f"request_{request.request_type}", "request_type")
        payload = {
            "requestTypeCode": type_code,
            "policy": self._policy(request.policy_number, request.policy_extension),
            "companyId": request.buyer_ref,
            "isRequestUrgent": request.urgent,
        }
        if type_code != GRADE_COVER:
            payload["creditLimitDetails"] = {
                "requestedAmount": request.amount,
                "currencyCode": request.currency,
            }
        __, body = self._call(
            "POST", "/covers", api="riskinfo", json_body=payload, ok=(200, 201, 202)
        )
        return LimitAnswer(status="pending", insurer_reference=self._job_id(body))

    def _job_id(self, body):
        """Every write is answered by its jobId as a bare JSON string."""
        if not isinstance(body, str) or not body:
            raise self._error(
                InsurerProtocolError,
                f"{self.name} did not answer with a job id ({type(body).__name__}).",
                code="unexpected_shape",
                field="jobId",
            )
        return body

    def poll_limit_request(self, request, insurer_reference):
        if insurer_reference.startswith(REQUEST_PREFIX):
            return self._follow_cover_request(request, insurer_reference)
        job = self._job(insurer_reference)
        status = str(self._field(job, "jobStatusCode", what="job")).lower()
        if status in JOB_WAITING:
            return LimitAnswer(status="pending", insurer_reference=insurer_reference)
        if status in JOB_FAILED:
            detail = str(job.get("message") or status)
            raise self._error(
                InsurerRejected,
                f"{self.name} did not process cover request {insurer_reference}: "
                f"{detail}.",
                code="job_failed",
                reference=insurer_reference,
                detail=detail,
            )
        __, cover = self._call("GET", self._field(job, "resourceUrl", what="job"))
        return self._cover_answer(cover, request, insurer_reference)

    def _job(self, job_id):
        __, job = self._call("GET", f"/jobs/{quote(job_id, safe='')}", api="riskinfo")
        status = str(self._field(job, "jobStatusCode", what="job")).lower()
        if status not in JOB_DONE + JOB_WAITING + JOB_FAILED:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: unknown job status {status!r}.",
                code="unknown_code",
                field="jobStatusCode",
                value=status,
            )
        return job

    def _cover_answer(self, cover, request, insurer_reference):
        if cover.get("coverStatusCode") in REFERRED_STATUS_CODES:
            return LimitAnswer(status="referred", insurer_reference=insurer_reference)
        return LimitAnswer(
            status="decided",
            insurer_reference=insurer_reference,
            decision=self._decision(cover, request.amount, request),
        )

    # -- a request whose answer was lost -------------------------------------

    def find_limit_request(self, request):
        """The cover request Allianz Trade received for this buyer, amount and
        policy since the request was made in Odoo (Allianz Trade keeps no
        reference of ours). None found is no proof that nothing arrived (a
        request decided at once leaves no pending request): a person checks."""
        found = self._cover_request(request)
        if found is None:
            raise self._error(
                DeliveryUnconfirmed,
                f"{self.name} may already have received request "
                f"{request.customer_reference} (an earlier attempt got no answer) "
                "and lists no pending request like it. Check the insurer's "
                "portal: record its answer if the request is there, otherwise "
                "send it again.",
                code="request_unconfirmed",
                reference=request.customer_reference,
            )
        return self._request_answer(request, found)

    def _follow_cover_request(self, request, insurer_reference):
        """A request found among the pending ones: still there, or processed,
        its cover then being the buyer's cover in the portfolio."""
        request_id = insurer_reference.removeprefix(REQUEST_PREFIX)
        found = self._cover_request(request, request_id)
        if found is not None:
            return self._request_answer(request, found)
        for cover in self._portfolio():
            if str(cover.get("companyId")) == request.buyer_ref:
                cover_id = str(self._field(cover, "coverId", what="portfolio cover"))
                __, detail = self._call(
                    "GET", f"/covers/{quote(cover_id, safe='')}", api="riskinfo"
                )
                return self._cover_answer(detail, request, insurer_reference)
        raise self._error(
            InsurerProtocolError,
            f"{self.name} no longer lists cover request {request_id} on buyer "
            f"{request.buyer_ref}.",
            code="cover_not_listed",
            reference=request_id,
            buyer=request.buyer_ref,
        )

    def _request_answer(self, request, found):
        reference = REQUEST_PREFIX + str(
            self._field(found, "requestId", what="request")
        )
        if found.get("coverId"):
            __, cover = self._call(
                "GET",
                f"/covers/{quote(str(found['coverId']), safe='')}",
                api="riskinfo",
            )
            return self._cover_answer(cover, request, reference)
        return LimitAnswer(status="pending", insurer_reference=reference)

    def _cover_request(self, request, request_id=""):
        """The pending cover request matching ``request`` (or ``request_id``)."""
        __, body = self._call(
            "POST",
            "/coverRequests/search",
            api="riskinfo",
            json_body={
                "policies": [
                    self._policy(request.policy_number, request.policy_extension)
                ],
                "companyId": request.buyer_ref,
                "pagination": {"page": 1, "pageSize": 100, "isTotalRequired": False},
            },
            ok=(200, 206),
        )
        since = (request.created_at or datetime.min) - FEED_OVERLAP
        for item in self._list(body, what="cover request list"):
            if request_id:
                if str(item.get("requestId")) == request_id:
                    return item
                continue
            details = item.get("creditLimitDetails") or {}
            created = self._datetime(
                self._field(item, "creationDate", what="cover request"),
                "creationDate",
                ALLIANZ_TZ,
            )
            if (
                str(item.get("companyId") or request.buyer_ref) == request.buyer_ref
                and self._amount(details.get("requestedAmount"), "requestedAmount")
                == request.amount
                and details.get("currencyCode", request.currency) == request.currency
                and created >= since
            ):
                return item
        return None

    # -- decisions -------------------------------------------------------------

    def fetch_decisions(self, since, limit=200):
        """The covers of the portfolio changed since ``since``, read to the
        last page; each changed one is read whole for its credit limits."""
        started = datetime.now(timezone.utc).replace(tzinfo=None)
        changed_after = since - FEED_OVERLAP if since else None
        decisions = []
        for cover in self._portfolio():
            if cover.get("coverStatusCode") in REFERRED_STATUS_CODES + (
                GRADE_STATUS_CODE,
            ):
                continue  # nothing decided yet, or a grade without a limit
            updated = cover.get("lastUpdateDate")
            if (
                changed_after
                and updated
                and self._datetime(updated, "lastUpdateDate", ALLIANZ_TZ)
                < changed_after
            ):
                continue
            cover_id = str(self._field(cover, "coverId", what="portfolio cover"))
            __, detail = self._call(
                "GET", f"/covers/{quote(cover_id, safe='')}", api="riskinfo"
            )
            decisions.append(self._decision(detail, 0.0))
        decisions.sort(key=lambda d: d.date_effective)
        return DecisionBatch(decisions=decisions, next_since=started)

    def _portfolio(self):
        """Every flat cover of the insurer's policies: 206 while pages remain,
        200 for the last one."""
        policies = [self._policy(number, ext) for number, ext in self.config.policies]
        for page in range(1, PORTFOLIO_MAX_PAGES + 1):
            status, body = self._call(
                "POST",
                "/covers/search",
                api="riskinfo",
                json_body={
                    "policies": policies,
                    "pagination": {
                        "page": page,
                        "pageSize": PORTFOLIO_PAGE_SIZE,
                        "isTotalRequired": True,
                    },
                },
                ok=(200, 206),
            )
            covers = self._list(body or [], what="portfolio")
            yield from covers
            if status == 200 or not covers:
                return
        raise self._error(
            InsurerProtocolError,
            f"{self.name}: the portfolio has more than {PORTFOLIO_MAX_PAGES} pages.",
            code="unexpected_shape",
            field="pagination",
        )

    def _limits(self, cover):
        return self._list(
            cover, "creditLimitsAggregation", "creditLimits", what="cover"
        )

    def _decision(self, cover, requested, request=None):
        """A cover's latest credit limit as a decision, typed in one place."""
        company_id = str(self._field(cover, "companyId", what="cover"))
        if cover.get("coverStatusCode") == GRADE_STATUS_CODE:
            return self._grade_decision(cover, company_id, request)
        limits = self._limits(cover)
        if not limits:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: the cover of {company_id} has no credit limit.",
                code="no_credit_limit",
                reference=company_id,
            )
        latest = max(limits, key=lambda item: str(item.get("startDate") or ""))
        code = latest.get("technicalDecisionStatusCode")
        if code not in DECISION_CODES:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: unknown technicalDecisionStatusCode {code!r}.",
                code="unknown_code",
                field="technicalDecisionStatusCode",
                value=str(code),
            )
        amount = self._amount(latest.get("amount"), "the credit limit amount")
        conditions = "\n".join(
            str(c.get("description") if isinstance(c, dict) else c)
            for c in latest.get("conditions") or []
        )
        kind = DECISION_CODES[code]
        if kind is None:
            if conditions:
                kind = "conditional"
            elif requested and amount < requested:
                kind = "partial"
            else:
                kind = "approved"
        effective = self._date(latest.get("startDate"), "the start date")
        return Decision(
            decision_ref=f"{company_id}/{effective.isoformat()}/{code}/{amount:.0f}",
            buyer_ref=company_id,
            decision=kind,
            granted_amount=0.0 if kind in ("refused", "cancelled") else amount,
            requested_amount=requested,
            currency=latest.get("currencyCode") or cover.get("currencyCode") or "",
            date_effective=effective,
            date_expiry=self._date(
                latest.get("endDate"), "the end date", required=False
            ),
            conditions=conditions,
            policy_number=str((cover.get("policy") or {}).get("policyId") or ""),
        )

    def _grade_decision(self, cover, company_id, request):
        """A grade cover: the check asked within the discretionary limit is
        granted, with the grade Allianz Trade gave (our reading)."""
        grade = str(cover.get("gradePolicyCoverGradeCode") or "")
        today = datetime.now(ALLIANZ_TZ).date()
        amount = request.amount if request else 0.0
        return Decision(
            decision_ref=f"{company_id}/{today.isoformat()}/grade/{grade}",
            buyer_ref=company_id,
            decision="approved",
            granted_amount=amount,
            requested_amount=amount,
            currency=request.currency if request else "",
            date_effective=today,
            conditions=f"Allianz Trade grade {grade}" if grade else "",
            policy_number=str((cover.get("policy") or {}).get("policyId") or ""),
        )

    # -- overdues and claims (our reading) -------------------------------------

    def declare_overdue(self, declaration):
        if declaration.category != "extension":
            operation = (
                "declare_rescheduling"
                if declaration.category == "rescheduling"
                else "declare_default"
            )
            raise self._unavailable(operation, "several_invoices")
        __, body = self._call(
            "POST",
            OVERDUE_PATH,
            api="riskinfo",
            json_body=self._extension_payload(declaration),
            ok=(200, 201, 202),
        )
        return DeclarationAnswer(
            insurer_reference=self._job_id(body), status="received"
        )

    def _extension_payload(self, declaration):
        """An extension period (EXP) for one invoice, in one place.

        ``policy`` and ``companyId`` are shaped as for a cover request; the
        other field names are our reading, to confirm at onboarding.
        """
        return {
            "overdueCategoryTypeCode": OVERDUE_CATEGORY_CODES["extension"],
            "policy": self._policy(declaration.policy_number, ""),
            "companyId": declaration.buyer_ref,
            "invoiceReference": declaration.invoice_reference,
            "overdueAmount": declaration.amount,
            "currencyCode": declaration.currency,
            "dueDate": declaration.due_date.isoformat(),
            "extendedDueDate": declaration.requested_due_date.isoformat(),
        }

    def find_declaration(self, declaration):
        raise self._unavailable("find_declaration", "no_lookup")

    def fetch_declaration_status(self, insurer_reference):
        """Where an extension request stands: its job, processed or not."""
        job = self._job(insurer_reference)
        status = str(job["jobStatusCode"]).lower()
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
        return DeclarationAnswer(insurer_reference=insurer_reference, status="accepted")

    def fetch_claims(self, since, limit=200):
        raise self._unavailable("pull_claims", "not_public")

    def fetch_claim(self, claim_ref):
        raise self._unavailable("follow_claim", "not_public")
