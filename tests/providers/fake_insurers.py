"""Local fakes of the insurers' APIs, built from public client code that runs
against the real APIs, not from our connectors.

Each shape names its public source in a comment:

- Atradius: tsauron262/GLE ``htdocs/bimpapi/classes/apis/AtradiusAPI.php``
  ("GLE") and bdantech/jobsiteOS ``apps/worker/src/jobs/credito/atradius.ts``
  ("jobsiteOS");
- Allianz Trade: developers.allianz-trade.com getting-started guide and API
  design guidelines ("getting started", "guidelines") and
  ts-droid/pim-vendora-railway-test ``app/Services/Allianz/*`` and
  ``config/allianz.php`` ("pim-vendora");
- Coface: coface/coface.github.io ``postman/v2/*`` ("postman") and the
  CofaServe page biz.coface.com/Cofaserve ("CofaServe").

What no public source shows is marked "unverified, our reading": it tests
that our reading is applied consistently, not that the insurer agrees.

Each fake is a small WSGI application holding its data in memory; tests serve
it with the sandbox's ``start_in_thread`` (the ``serve`` fixture) so that the
sandbox's fault injection (timeouts, 5xx, 429, HTML pages, malformed JSON,
dropped answers) applies to it too.
"""

import base64
import json
import re
import secrets
import time
from datetime import date, datetime, timedelta, timezone

from werkzeug.wrappers import Request, Response


class FakeInsurer:
    """Routing, tokens and a log of calls, shared by the fakes."""

    routes = ()
    token_ttl = 3600

    def __init__(self):
        self.tokens = {}
        self.logins = 0
        self.failed_logins = 0
        self.calls = []  # (method, path) of every call, in order
        self.headers_seen = []  # the headers of every call, in order

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.calls.append((request.method, request.path))
        self.headers_seen.append(dict(request.headers))
        for method, pattern, name in self.routes:
            match = re.fullmatch(pattern, request.path)
            if match and method == request.method:
                response = getattr(self, name)(request, **match.groupdict())
                break
        else:
            response = self.unknown_route(request)
        return response(environ, start_response)

    def unknown_route(self, request):
        return self.error(404, "not found")

    @staticmethod
    def json(status, body, headers=None):
        return Response(
            json.dumps(body),
            status=status,
            mimetype="application/json",
            headers=headers,
        )

    def error(self, status, message):
        return self.json(status, {"message": message})

    def issue_token(self):
        token = secrets.token_urlsafe(16)
        self.tokens[token] = time.time() + self.token_ttl
        self.logins += 1
        return token

    def expire_tokens(self):
        self.tokens.clear()

    def count(self, method, path):
        return sum(1 for call in self.calls if call == (method, path))


# --------------------------------------------------------------------- Atradius

ATRADIUS_TZ = timezone(timedelta(hours=1))  # jobsiteOS: "UTC+01:00"
A_TOKENS = "/authenticate/v2/tokens"
A_BUYERS = "/credit-insurance/organisation-management/v1/buyers"
A_COVERS = "/credit-insurance/cover-management/v1/covers"


class FakeAtradius(FakeInsurer):
    """Atradius: app key + client credentials, buyers by SIREN or VAT,
    covers with their decisions."""

    routes = (
        ("POST", A_TOKENS, "token"),
        ("GET", A_BUYERS, "buyers"),
        ("GET", A_COVERS, "list_covers"),
        ("POST", A_COVERS, "create_cover"),
        ("PUT", A_COVERS, "update_cover"),
    )
    token_ttl = 1800  # jobsiteOS: "expires_in": 1800

    def __init__(self, app_key, client_id, client_secret):
        super().__init__()
        self.app_key, self.client_id, self.client_secret = (
            app_key,
            client_id,
            client_secret,
        )
        self.known_buyers = {}  # (uidType, uid) -> (buyerId, buyerName)
        # buyerId -> decisionCode given to a new cover, or "refer" (202).
        self.underwriting = {}
        self.covers = {}  # coverId -> cover, as GET covers lists it
        self.bodies = []  # bodies of POST / PUT covers
        self.from_dates = []  # the fromDate of each changes query
        self.next_cover = 5001

    def error(self, status, message, parameter=None):
        # {"errors": [{"detail", "source": {"parameter"}}]} (GLE getError)
        error = {"status": str(status), "title": "Error", "detail": message}
        if parameter:
            error["source"] = {"parameter": parameter}
        return self.json(status, {"errors": [error]})

    def unknown_route(self, request):
        # An address outside the contract: 403, whatever the credentials
        # (jobsiteOS ROTAS.token: "rendeu 403").
        return self.error(403, "Forbidden")

    def token(self, request):
        # App key + HTTP Basic, no body (GLE getDefaultRequestsHeaders,
        # jobsiteOS obterToken); the token under "data" (GLE connect reads
        # data.access_token; jobsiteOS tokenDaResposta).
        basic = request.headers.get("Authorization", "").removeprefix("Basic ")
        try:
            client_id, __, secret = base64.b64decode(basic).decode().partition(":")
        except ValueError:
            client_id = secret = ""
        key = request.headers.get("Atradius-App-Key", "")
        if (key, client_id, secret) != (
            self.app_key,
            self.client_id,
            self.client_secret,
        ):
            self.failed_logins += 1
            # Echoes what it got, as some gateways do: the provider must redact.
            return self.error(401, f"Invalid client credentials for app key {key}")
        return self.json(
            200,
            {
                "data": {
                    "access_token": self.issue_token(),
                    "token_type": "Bearer",
                    "expires_in": self.token_ttl,
                }
            },
        )

    def refused(self, request):
        """None when authorised: Bearer + app key (GLE), and the correlation
        id every call carries (jobsiteOS chamar)."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.tokens.get(token, 0) < time.time():
            return self.error(401, "Access token expired or invalid")
        if request.headers.get("Atradius-App-Key") != self.app_key:
            return self.error(401, "Unknown application key")
        if not request.headers.get("Atradius-Correlation-Id"):
            return self.error(400, "Atradius-Correlation-Id is required")
        return None

    def buyers(self, request):
        # GET buyers?country=FRA&uid=<SIREN>&uidType=SN -> data[0].buyerId
        # (GLE getBuyerIdBySiren); uidType VAT (jobsiteOS buyerPorIdentificador).
        if refused := self.refused(request):
            return refused
        args = request.args
        if not args.get("country") or args.get("uidType") not in ("SN", "VAT"):
            return self.error(400, "Invalid uidType", "uidType")
        found = self.known_buyers.get((args["uidType"], args.get("uid", "")))
        if not found or (args["uidType"] == "SN" and args["country"] != "FRA"):
            return self.error(404, "No buyer match found")  # GLE translateError
        return self.json(200, {"data": [{"buyerId": found[0], "buyerName": found[1]}]})

    def list_covers(self, request):
        # GET covers?customerId&policyId&buyerId -> {"data": [cover]} (GLE
        # getCover, execCurlCustom); fromDate=Y-m-d\TH:i:s (GLE testRequest),
        # in Atradius' time, UTC+01:00 (jobsiteOS).
        if refused := self.refused(request):
            return refused
        args = request.args
        if not args.get("customerId"):
            return self.error(400, "customerId is required", "customerId")
        buyer_id = args.get("buyerId")
        from_date = args.get("fromDate")
        if from_date:
            self.from_dates.append(from_date)
        covers = [
            cover
            for cover in self.covers.values()
            if (not buyer_id or str(cover["buyerId"]) == buyer_id)
            and (not from_date or cover["changedAt"] >= from_date)
        ]
        return self.json(200, {"data": covers})

    def create_cover(self, request):
        # customerId and policyId in the body (GLE execCurlCustom "POSTFIELD";
        # jobsiteOS: "customerId é OBRIGATÓRIO no corpo do POST"); credit-limit
        # with creditLimitAmount, credit-check without (GLE createCover).
        if refused := self.refused(request):
            return refused
        body = request.get_json()
        self.bodies.append(body)
        for key in ("customerId", "policyId", "buyerId", "coverType"):
            if not body.get(key):
                return self.error(400, f"{key} is required", key)
        if body["coverType"] == "credit-limit":
            amount = body.get("creditLimitAmount")
            if not isinstance(amount, int) or amount <= 0 or amount % 1000:
                # GLE translateError
                return self.error(
                    400,
                    "Must be positive number greater than zero and a multiple of 1000.",
                    "creditLimitAmount",
                )
        elif body["coverType"] == "credit-check":
            amount = 7000  # GLE: "Limité à 7000 euros"
        else:
            return self.error(400, "Invalid coverType", "coverType")
        if any(
            c["buyerId"] == body["buyerId"] and c["coverType"] == body["coverType"]
            for c in self.covers.values()
        ):
            return self.error(
                400, "Credit limit/credit check already exists for this buyer."
            )
        cover_id = self.add_cover(body, amount)
        outcome = self.underwriting.get(body["buyerId"], "DC01")
        if outcome == "refer":
            # 202: referred to an underwriter (GLE createCover)
            return self.json(
                202, {"data": [{"coverId": cover_id, "response": "Action successful"}]}
            )
        granted = {"DC04": amount // 2 // 1000 * 1000, "DC03": 0}.get(outcome, amount)
        self.decide(cover_id, granted, code=outcome)
        # 201: decided; {"data": [{"coverId", "response"}]} (jobsiteOS
        # pedirCobertura: "Action successful")
        return self.json(
            201, {"data": [{"coverId": cover_id, "response": "Action successful"}]}
        )

    def add_cover(self, body, amount):
        cover_id = self.next_cover
        self.next_cover += 1
        self.covers[cover_id] = {
            "coverId": cover_id,
            "buyerId": body["buyerId"],
            "buyerName": "",
            "coverType": body["coverType"],
            "coverStatus": "REFERRED",  # GLE STATUS_EN_COURS
            "customerRefNumber": body.get("customerRefNumber"),
            "policyCurrencyCode": "EUR",
            # amounts come as strings (jobsiteOS numeroOuNull: "50000")
            "creditLimitApplicationAmountInPolicyCurrency": str(amount),
            "applicationDate": self.now(),
            "changedAt": self.now(),  # not a field of Atradius: the fake's clock
        }
        return cover_id

    @staticmethod
    def now():
        return datetime.now(ATRADIUS_TZ).replace(tzinfo=None).isoformat("T", "seconds")

    def update_cover(self, request):
        # PUT with action supersede | reduce | cancel, answered
        # {"data": [{"response": ...}]} (GLE updateCover, deleteCover).
        if refused := self.refused(request):
            return refused
        body = request.get_json()
        self.bodies.append(body)
        covers = [
            c
            for c in self.covers.values()
            if c["buyerId"] == body.get("buyerId")
            and c["coverType"] == body.get("coverType")
        ]
        if not body.get("customerId") or not body.get("policyId"):
            return self.error(400, "customerId and policyId are required")
        if not covers:
            return self.error(404, "No cover on this buyer")
        cover = covers[-1]
        if body.get("action") == "reduce" and body["creditLimitAmount"] >= int(
            cover["totalDecision"]["decisionAmtInPolicyCurrency"]
        ):
            # GLE updateCover: 'Action has been refused.'
            return self.json(201, {"data": [{"response": "Action has been refused."}]})
        cover["customerRefNumber"] = body.get("customerRefNumber")
        if body.get("action") == "cancel":
            self.decide(cover["coverId"], 0, code="DC01", historic="CCLD")
        else:
            self.decide(cover["coverId"], body["creditLimitAmount"], code="DC01")
        return self.json(201, {"data": [{"response": "Action successful"}]})

    def decide(
        self,
        cover_id,
        amount,
        *,
        code="DC01",
        conditions=(),
        expiry=None,
        effective=None,
        withdrawal=None,
        historic=None,
        changed_at=None,
    ):
        """The underwriter's (or Atradius' own) decision on a cover, in the
        shape GLE getCover and jobsiteOS mapearDecisao read: decisionCode,
        total / first amount decisions with conditions and expiry."""
        cover = self.covers[cover_id]
        decided = {
            "decisionAmtInPolicyCurrency": str(amount),
            "decisionConditions": [
                {"conditionDescription": text, "conditionCode": f"C{i}"}
                for i, text in enumerate(conditions, 1)
            ],
        }
        cover.update(
            coverStatus="DECISION",  # GLE STATUS_VALID
            decisionCode=code,
            decisionDate=self.now(),
            effectFromDate=(effective or date.today()).isoformat(),
            totalDecision=decided,
            firstAmtDecision={
                **decided,
                "decisionExpiryDate": expiry.isoformat() if expiry else None,
            },
            changedAt=changed_at or self.now(),
        )
        if withdrawal:
            cover["withdrawalDate"] = withdrawal.isoformat()
        if historic:
            cover["historicCode"] = historic

    def with_ref(self, reference):
        return [c for c in self.covers.values() if c["customerRefNumber"] == reference]


# ---------------------------------------------------------------- Allianz Trade

# The sandbox host puts its environment marker at a different place per API
# (getting started: /uatm/v1/idp; pim-vendora config/allianz.php:
# /uatm/riskinfo/v3 and /company-referential/uatm-v1; AllianzCompanySearch:
# /search/uatm-v2).
Z_IDP = "/uatm/v1/idp"
Z_SEARCH = "/search/uatm-v2"
Z_RISK = "/uatm/riskinfo/v3"


class FakeAllianzTrade(FakeInsurer):
    """Allianz Trade's sandbox host: API-key token, company matching, covers
    v3 through jobs, the portfolio in pages."""

    routes = (
        ("POST", Z_IDP + r"/oauth2/authorize", "token"),
        ("POST", Z_SEARCH + r"/companies/matching", "matching"),
        ("POST", Z_RISK + r"/covers", "create_cover"),
        ("POST", Z_RISK + r"/covers/search", "portfolio"),
        ("POST", Z_RISK + r"/coverRequests/search", "cover_requests"),
        ("GET", Z_RISK + r"/covers/(?P<cover_id>\w+)", "get_cover"),
        ("GET", Z_RISK + r"/jobs/(?P<job_id>\w+)", "get_job"),
        ("POST", Z_RISK + r"/overdues", "create_overdue"),
    )
    max_extension_days = 60  # unverified, our reading: extensions refused beyond

    def __init__(self, api_key, job_polls=1):
        super().__init__()
        self.api_key = api_key
        self.job_polls = job_polls
        self.companies = {}  # (idTypeCode, idValue) -> (companyId, name)
        # companyId -> "grant" | "partial" | "refuse" | "refer" | "conditions"
        self.underwriting = {}
        self.jobs = {}
        self.covers = {}  # coverId -> cover
        self.portfolio_covers = []  # the flat covers of covers/search
        self.pending_requests = []  # the items of coverRequests/search
        self.requests_received = []  # bodies of POST covers
        self.matching_received = []  # bodies of POST companies/matching
        self.pages_asked = []  # the pagination of each covers/search
        self.portfolio_policies = []  # the policies of the last covers/search
        self.overdues_received = []  # bodies of POST overdues

    def error(self, status, message):
        # unverified, our reading: Allianz Trade's error body is not public.
        return self.json(status, {"code": status, "message": message})

    def token(self, request):
        # POST {"apiKey"} -> access_token, token_type, expires_in 3600
        # (getting started).
        body = request.get_json(silent=True) or {}
        if body.get("apiKey") != self.api_key:
            self.failed_logins += 1
            return self.error(401, "Invalid API key")
        return self.json(
            200,
            {
                "access_token": self.issue_token(),
                "token_type": "Bearer",
                "expires_in": self.token_ttl,
            },
        )

    def refused(self, request):
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.tokens.get(token, 0) < time.time():
            return self.error(401, "Unauthorized")
        return None

    def matching(self, request):
        # results[].company.companyId (getting started; pim-vendora
        # AllianzCompanySearch: results[0].company); companyIdentifiers
        # [{idTypeCode, idValue}] (DOMAIN.md) - the idTypeCode values are
        # unverified, our reading.
        if refused := self.refused(request):
            return refused
        body = request.get_json()
        self.matching_received.append(body)
        found = None
        for identifier in body.get("companyIdentifiers") or []:
            found = found or self.companies.get(
                (identifier.get("idTypeCode"), identifier.get("idValue"))
            )
        results = (
            [
                {
                    "company": {
                        "companyId": found[0],
                        "legalData": {"companyName": found[1]},
                    }
                }
            ]
            if found
            else []
        )
        return self.json(200, {"results": results})

    def create_cover(self, request):
        # requestTypeCode Primary | GradeCover, policy{businessUnitCode,
        # policyId, extensionId}, companyId, isRequestUrgent; answered by
        # the jobId as a bare JSON string (pim-vendora requestGradeCover:
        # "$jobID = $this->makeRequest(...)").
        if refused := self.refused(request):
            return refused
        body = request.get_json()
        policy = body.get("policy") or {}
        if body.get("requestTypeCode") not in ("Primary", "GradeCover") or not body.get(
            "companyId"
        ):
            return self.error(400, "requestTypeCode and companyId are required")
        if not {"businessUnitCode", "policyId", "extensionId"} <= set(policy):
            return self.error(400, "policy.businessUnitCode, policyId, extensionId")
        self.requests_received.append(body)
        job_id = f"J{len(self.jobs) + 1}"
        cover_id = f"C{len(self.covers) + 1}"
        grade = body["requestTypeCode"] == "GradeCover"
        amount = 0 if grade else body["creditLimitDetails"]["requestedAmount"]
        outcome = self.underwriting.get(body["companyId"], "grant")
        self.covers[cover_id] = {
            "coverId": cover_id,
            "companyId": body["companyId"],
            "policy": policy,
            # Agreement / CheckPolicy (pim-vendora importGradeCover); "Pending"
            # for a referral is unverified, our reading.
            "coverStatusCode": "CheckPolicy"
            if grade
            else ("Pending" if outcome == "refer" else "Agreement"),
            "gradePolicyCoverGradeCode": "4" if grade else None,
            "creditLimitsAggregation": {"creditLimits": []},
        }
        if not grade and outcome != "refer":
            self.add_limit(cover_id, amount, outcome)
        self.jobs[job_id] = {"polls": 0, "cover_id": cover_id}
        return self.json(202, job_id)

    def add_limit(self, cover_id, requested, outcome, start=None, end=None):
        """A credit limit line: technicalDecisionStatusCode, amount, startDate
        ("AlreadyAgreed" is public; "Refused", "Withdrawn", endDate and
        conditions are unverified, our reading)."""
        code, amount, conditions = {
            "grant": ("AlreadyAgreed", requested, []),
            "partial": ("AlreadyAgreed", requested / 2, []),
            "conditions": (
                "AlreadyAgreed",
                requested,
                [{"description": "Payment within 60 days"}],
            ),
            "refuse": ("Refused", 0, []),
            "withdraw": ("Withdrawn", 0, []),
        }[outcome]
        limits = self.covers[cover_id]["creditLimitsAggregation"]["creditLimits"]
        limits.append(
            {
                "technicalDecisionStatusCode": code,
                "amount": amount,
                "currencyCode": "EUR",
                "startDate": (start or date.today()).isoformat(),
                "endDate": end.isoformat() if end else None,
                "conditions": conditions,
            }
        )
        self.covers[cover_id]["coverStatusCode"] = "Agreement"

    def get_job(self, request, job_id):
        # jobStatusCode PENDING -> PROCESSED with a resourceUrl (guidelines:
        # "from 'pending' into 'processed'", "ressourceUrl"; pim-vendora
        # checkStatus: 'PROCESSED'); FAILED and its message are unverified.
        if refused := self.refused(request):
            return refused
        job = self.jobs.get(job_id)
        if not job:
            return self.error(404, f"Job {job_id} not found")
        job["polls"] += 1
        if job["polls"] < self.job_polls:
            return self.json(200, {"jobId": job_id, "jobStatusCode": "PENDING"})
        if "refusal" in job:
            return self.json(
                200,
                {"jobId": job_id, "jobStatusCode": "FAILED", "message": job["refusal"]},
            )
        if "overdue" in job:
            return self.json(200, {"jobId": job_id, "jobStatusCode": "PROCESSED"})
        return self.json(
            200,
            {
                "jobId": job_id,
                "jobStatusCode": "PROCESSED",
                "resourceUrl": f"{request.host_url.rstrip('/')}{Z_RISK}/covers/"
                f"{job['cover_id']}",
            },
        )

    def get_cover(self, request, cover_id):
        if refused := self.refused(request):
            return refused
        if cover_id not in self.covers:
            return self.error(404, f"Cover {cover_id} not found")
        return self.json(200, self.covers[cover_id])

    def portfolio(self, request):
        # {policies:[{businessUnitCode, policyId, extensionId}], pagination:
        # {page, pageSize, isTotalRequired}} -> a bare array of flat covers
        # (pim-vendora gradeSearch, importGradeCover: companyId, companyName,
        # coverStatusCode, gradePolicyCoverGradeCode); 206 for a partial page,
        # 200 for the last (DOMAIN.md, guidelines). coverId and lastUpdateDate
        # of a flat cover are unverified, our reading.
        if refused := self.refused(request):
            return refused
        body = request.get_json()
        pagination = body.get("pagination") or {}
        if not body.get("policies") or "pageSize" not in pagination:
            return self.error(400, "policies and pagination are required")
        self.pages_asked.append(pagination)
        self.portfolio_policies = body["policies"]
        page, size = pagination.get("page", 1), pagination["pageSize"]
        covers = self.portfolio_covers
        chunk = covers[(page - 1) * size : page * size]
        return self.json(206 if page * size < len(covers) else 200, chunk)

    def cover_requests(self, request):
        # coverRequests/search -> requestId, creditLimitDetails, creationDate,
        # lastUpdateDate, coverId (DOMAIN.md); its companyId filter is
        # unverified, our reading.
        if refused := self.refused(request):
            return refused
        body = request.get_json()
        found = [
            item
            for item in self.pending_requests
            if not body.get("companyId") or item["companyId"] == body["companyId"]
        ]
        return self.json(200, found)

    def create_overdue(self, request):
        """An extension period (EXP) for one invoice, as a job: unverified,
        our reading (the Payment Overdues field list is not public)."""
        if refused := self.refused(request):
            return refused
        body = request.get_json()
        required = ("overdueCategoryTypeCode", "companyId", "dueDate", "policy")
        if any(not body.get(key) for key in required):
            return self.error(400, f"{', '.join(required)} are required")
        self.overdues_received.append(body)
        job_id = f"J{len(self.jobs) + 1}"
        job = {"polls": 0, "overdue": body}
        days = (
            date.fromisoformat(body["extendedDueDate"])
            - date.fromisoformat(body["dueDate"])
        ).days
        if days > self.max_extension_days:
            job["refusal"] = f"Extension of {days} days exceeds the policy maximum"
        self.jobs[job_id] = job
        return self.json(202, job_id)


# ----------------------------------------------------------------------- Coface


class FakeCoface(FakeInsurer):
    """Coface: the postman token and headers, the CofaServe lockout, and our
    reading of the company lookup, PRODUCT and OVERDUE."""

    routes = (
        ("POST", r"/authentication/v1/token", "token"),
        ("GET", r"/company/v1/companies/identifier", "company"),
        ("POST", r"/product/v1/orders", "create_order"),
        ("GET", r"/product/v1/orders", "find_orders"),
        ("GET", r"/product/v1/orders/(?P<order_id>\w+)", "get_order"),
        ("POST", r"/overdue/v1/overdues", "create_overdue"),
        ("GET", r"/overdue/v1/overdues", "find_overdues"),
        ("GET", r"/overdue/v1/overdues/(?P<overdue_id>\w+)", "get_overdue"),
        ("PUT", r"/overdue/v1/overdues/(?P<overdue_id>\w+)", "update_overdue"),
    )
    lockout_after = 5  # CofaServe: "We allow five failed authentication attempts"

    def __init__(self, api_key, policy_number, username, password):
        super().__init__()
        self.api_key, self.policy_number = api_key, policy_number
        self.username, self.password = username, password
        self.id_tokens = {}  # idToken -> accessToken (both issued by a login)
        self.companies = {}  # (identifierType, value) -> (easyNumber, name)
        self.orders = {}  # orderId -> order
        self.order_outcomes = []  # the next orders' outcomes, in order
        self.overdues = {}  # overdueId -> overdue
        self.locked = False

    def token(self, request):
        # POST {password, grantType: "password", username} with x-api-key ->
        # idToken (postman "Retrieve a token": pm.environment.set("idToken",
        # ... .idToken)). x-cof-policy-number, accessToken, refreshToken and
        # expiresIn are unverified, our reading (DOMAIN.md).
        if self.locked or self.failed_logins >= self.lockout_after:
            # unverified, our reading of a lockout answer (the identity
            # provider's "Password attempts exceeded").
            self.locked = True
            return self.error(400, "Password attempts exceeded")
        body = request.get_json(silent=True) or {}
        if (
            request.headers.get("x-api-key") != self.api_key
            or request.headers.get("x-cof-policy-number") != self.policy_number
            or body.get("grantType") != "password"
            or (body.get("username"), body.get("password"))
            != (self.username, self.password)
        ):
            self.failed_logins += 1
            return self.error(401, "Incorrect username or password.")
        self.failed_logins = 0
        id_token = self.issue_token()
        access_token = secrets.token_urlsafe(16)
        self.id_tokens[id_token] = access_token
        return self.json(
            200,
            {
                "idToken": id_token,
                "accessToken": access_token,
                "refreshToken": secrets.token_urlsafe(16),
                "expiresIn": self.token_ttl,
                "tokenType": "Bearer",
            },
        )

    def refused(self, request):
        # authorization: {{idToken}} as it is, and x-api-key (postman, every
        # request of "Data API Customer").
        token = request.headers.get("authorization", "")
        if self.tokens.get(token, 0) < time.time():
            return self.error(401, "Unauthorized")
        if request.headers.get("x-api-key") != self.api_key:
            return self.error(403, "Forbidden")
        return None

    def company(self, request):
        # unverified, our reading: identifierType / identifierValue /
        # countryCode -> {companies, count} (DOMAIN.md), easyNumber.
        if refused := self.refused(request):
            return refused
        args = request.args
        found = self.companies.get(
            (args.get("identifierType"), args.get("identifierValue"))
        )
        companies = [{"easyNumber": found[0], "name": found[1]}] if found else []
        return self.json(200, {"companies": companies, "count": len(companies)})

    def create_order(self, request):
        # unverified, our reading of a PRODUCT order (field lists not public).
        if refused := self.refused(request):
            return refused
        body = request.get_json()
        for key in ("contractId", "easyNumber", "productCode", "customerReference"):
            if not body.get(key):
                return self.error(400, f"{key} is required")
        order_id = f"O{len(self.orders) + 1}"
        outcome = self.order_outcomes.pop(0) if self.order_outcomes else "APPROVED"
        order = {
            "orderId": order_id,
            "easyNumber": body["easyNumber"],
            "customerReference": body["customerReference"],
            "status": "DECIDED",
            "request": body,
            "decision": None,
        }
        self.orders[order_id] = order
        if outcome == "REFERRED":
            order["status"] = "REFERRED"
        else:
            self.decide(order_id, outcome)
        return self.json(201 if order["status"] == "DECIDED" else 202, order)

    def decide(self, order_id, code, amount=None, conditions=(), effective=None):
        order = self.orders[order_id]
        asked = order["request"].get("amount") or 0
        order["status"] = "DECIDED"
        order["decision"] = {
            "code": code,
            "amount": amount
            if amount is not None
            else {"PARTIAL": asked / 2, "REFUSED": 0, "WITHDRAWN": 0}.get(code, asked),
            "currencyCode": "EUR",
            "effectiveDate": (effective or date.today()).isoformat(),
            "expiryDate": None,
            "conditions": list(conditions),
        }

    def find_orders(self, request):
        if refused := self.refused(request):
            return refused
        reference = request.args.get("customerReference")
        found = [o for o in self.orders.values() if o["customerReference"] == reference]
        return self.json(200, {"orders": found})

    def get_order(self, request, order_id):
        if refused := self.refused(request):
            return refused
        if order_id not in self.orders:
            return self.error(404, f"No order {order_id}")
        return self.json(200, self.orders[order_id])

    def create_overdue(self, request):
        # unverified, our reading of an OVERDUE declaration.
        if refused := self.refused(request):
            return refused
        body = request.get_json()
        for key in ("contractId", "easyNumber", "customerReference", "category"):
            if not body.get(key):
                return self.error(400, f"{key} is required")
        overdue_id = f"D{len(self.overdues) + 1}"
        self.overdues[overdue_id] = {
            "overdueId": overdue_id,
            "customerReference": body["customerReference"],
            "status": "RECEIVED",
            "claimId": None,
            "body": body,
        }
        return self.json(201, self.overdues[overdue_id])

    def find_overdues(self, request):
        if refused := self.refused(request):
            return refused
        reference = request.args.get("customerReference")
        found = [
            o for o in self.overdues.values() if o["customerReference"] == reference
        ]
        return self.json(200, {"overdues": found})

    def get_overdue(self, request, overdue_id):
        if refused := self.refused(request):
            return refused
        return self.json(200, self.overdues[overdue_id])

    def update_overdue(self, request, overdue_id):
        if refused := self.refused(request):
            return refused
        overdue = self.overdues[overdue_id]
        overdue["body"] = {**overdue["body"], **request.get_json()}
        if not overdue["body"]["amount"]:
            overdue["status"] = "SETTLED"
        return self.json(200, overdue)
