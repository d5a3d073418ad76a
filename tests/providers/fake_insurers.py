"""Local fake servers reproducing each insurer's documented exchange.

Each fake is a small WSGI application holding its data in memory; tests serve
it with the sandbox's ``start_in_thread`` so that the sandbox's fault
injection (timeouts, 5xx, 429, HTML pages, malformed JSON, dropped answers)
applies to it too. Error bodies follow each insurer's documented format.
What each fake reproduces, and from which source, is listed in
``credit_insurance/providers/README.md``.
"""

import base64
import json
import re
import secrets
import time
from datetime import date, timedelta

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

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.calls.append((request.method, request.path))
        for method, pattern, name in self.routes:
            match = re.fullmatch(pattern, request.path)
            if match and method == request.method:
                response = getattr(self, name)(request, **match.groupdict())
                break
        else:
            response = self.error(404, "not found")
        return response(environ, start_response)

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

    def valid_token(self, request):
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ")
        return self.tokens.get(token, 0) > time.time()

    def expire_tokens(self):
        self.tokens.clear()

    def count(self, method, path):
        return sum(1 for call in self.calls if call == (method, path))


# --------------------------------------------------------------------- Atradius


class FakeAtradius(FakeInsurer):
    """Atradius: app key + client credentials, buyers by SIREN, covers."""

    routes = (
        ("POST", r"/authenticate/v2/tokens", "token"),
        ("GET", r"/credit-insurance/organisation-management/v1/buyers", "buyers"),
        ("GET", r"/credit-insurance/cover-management/v1/covers", "list_covers"),
        ("POST", r"/credit-insurance/cover-management/v1/covers", "create_cover"),
        ("PUT", r"/credit-insurance/cover-management/v1/covers", "update_cover"),
    )

    def __init__(self, app_key, client_id, client_secret):
        super().__init__()
        self.app_key, self.client_id, self.client_secret = (
            app_key,
            client_id,
            client_secret,
        )
        self.known_buyers = {}  # SIREN -> (buyerId, name)
        self.underwriting = {}  # buyerId -> "grant" | "partial" | "refuse" | "refer"
        self.covers = {}  # coverId -> cover
        self.next_cover = 5001

    def error(self, status, message):
        return self.json(
            status,
            {"errors": [{"status": str(status), "title": "Error", "detail": message}]},
        )

    def token(self, request):
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
                "access_token": self.issue_token(),
                "token_type": "Bearer",
                "expires_in": self.token_ttl,
            },
        )

    def authorised(self, request):
        return (
            self.valid_token(request)
            and request.headers.get("Atradius-App-Key") == self.app_key
        )

    def buyers(self, request):
        if not self.authorised(request):
            return self.error(401, "Access token expired or invalid")
        args = request.args
        if (args.get("country"), args.get("uidType")) != ("FRA", "SN"):
            return self.error(400, "country=FRA and uidType=SN expected")
        found = self.known_buyers.get(args.get("uid", ""))
        data = [{"buyerId": found[0], "buyerName": found[1]}] if found else []
        return self.json(200, {"data": data})

    def list_covers(self, request):
        if not self.authorised(request):
            return self.error(401, "Access token expired or invalid")
        buyer_id = request.args.get("buyerId")
        from_date = request.args.get("fromDate")
        covers = [
            cover
            for cover in self.covers.values()
            if (not buyer_id or str(cover["buyerId"]) == buyer_id)
            and (not from_date or cover["changedOn"] >= from_date)
        ]
        return self.json(200, {"data": covers})

    def create_cover(self, request):
        if not self.authorised(request):
            return self.error(401, "Access token expired or invalid")
        body = request.get_json()
        amount = body.get("creditLimitAmount") or 0
        if amount % 1000:
            return self.error(400, "creditLimitAmount must be a multiple of 1000")
        if body.get("coverType") not in ("credit-check", "credit-limit"):
            return self.error(400, "coverType must be credit-check or credit-limit")
        cover = {
            "coverId": self.next_cover,
            "buyerId": body["buyerId"],
            "coverType": body["coverType"],
            "creditLimitAmount": amount,
            "currencyCode": body["currencyCode"],
            "policyCurrencyCode": "EUR",
            "customerRefNumber": body.get("customerRefNumber"),
            "coverStatus": "REFERRED",
            "decisions": [],
            "changedOn": date.today().isoformat(),
        }
        self.next_cover += 1
        self.covers[cover["coverId"]] = cover
        outcome = self.underwriting.get(body["buyerId"], "grant")
        if outcome == "refer":
            return self.json(
                202, {"coverId": cover["coverId"], "coverStatus": "REFERRED"}
            )
        granted = {"grant": amount, "partial": amount // 2 // 1000 * 1000, "refuse": 0}
        self.decide(cover["coverId"], granted[outcome])
        return self.json(201, cover)

    def update_cover(self, request):
        if not self.authorised(request):
            return self.error(401, "Access token expired or invalid")
        body = request.get_json()
        covers = [
            c for c in self.covers.values() if c["buyerId"] == body.get("buyerId")
        ]
        if not covers:
            return self.error(404, "No cover on this buyer")
        cover = covers[-1]
        cover["customerRefNumber"] = body.get("customerRefNumber")
        amount = 0 if body.get("action") == "cancel" else body["creditLimitAmount"]
        self.decide(cover["coverId"], amount)
        return self.json(201, cover)

    def decide(self, cover_id, amount, *, conditions=(), effective=None, expiry=None):
        """The underwriter's (or the insurer's own) decision on a cover."""
        cover = self.covers[cover_id]
        effective = effective or date.today()
        cover["decisions"].append(
            {
                "decisionAmtInPolicyCurrency": amount,
                "decisionEffectiveDate": effective.isoformat(),
                "decisionExpiryDate": expiry.isoformat() if expiry else None,
                "decisionConditions": [{"conditionText": c} for c in conditions],
            }
        )
        cover["totalDecision"] = {"decisionAmtInPolicyCurrency": amount}
        cover["coverStatus"] = "DECISION"
        cover["changedOn"] = date.today().isoformat()

    def with_ref(self, reference):
        return [c for c in self.covers.values() if c["customerRefNumber"] == reference]


# ---------------------------------------------------------------- Allianz Trade


class FakeAllianzTrade(FakeInsurer):
    """Allianz Trade: API-key token, company matching, covers v3 via jobs."""

    routes = (
        ("POST", r"/v1/idp/oauth2/authorize", "token"),
        ("POST", r"/search/v2/companies/matching", "matching"),
        ("POST", r"/riskinfo/v3/covers", "create_cover"),
        ("POST", r"/riskinfo/v3/covers/search", "portfolio"),
        ("GET", r"/riskinfo/v3/covers/(?P<cover_id>\w+)", "get_cover"),
        ("GET", r"/riskinfo/v3/jobs/(?P<job_id>\w+)", "get_job"),
        ("POST", r"/riskinfo/v3/overdues", "create_overdue"),
    )
    max_extension_days = 60  # extensions beyond are refused (the job fails)

    def __init__(self, api_key, job_polls=1):
        super().__init__()
        self.api_key = api_key
        self.job_polls = job_polls
        self.companies = {}  # name (lower) -> companyId
        self.underwriting = {}  # companyId -> "grant" | "partial" | "refuse" | "refer"
        self.jobs = {}
        self.covers = {}
        self.requests_received = []  # bodies of POST /riskinfo/v3/covers
        self.overdues_received = []  # bodies of POST /riskinfo/v3/overdues
        self.page_size_seen = None

    def error(self, status, message):
        return self.json(status, {"code": status, "message": message})

    def token(self, request):
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

    def matching(self, request):
        if not self.valid_token(request):
            return self.error(401, "Unauthorized")
        body = request.get_json()
        company_id = self.companies.get((body.get("companyName") or "").lower())
        results = (
            [
                {
                    "company": {
                        "companyId": company_id,
                        "legalData": {"companyName": body["companyName"]},
                    }
                }
            ]
            if company_id
            else []
        )
        return self.json(200, {"results": results})

    def create_cover(self, request):
        if not self.valid_token(request):
            return self.error(401, "Unauthorized")
        body = request.get_json()
        if body.get("requestTypeCode") != "Primary" or not body.get("companyId"):
            return self.error(400, "requestTypeCode and companyId are required")
        self.requests_received.append(body)
        job_id = f"J{len(self.jobs) + 1}"
        cover_id = f"C{len(self.covers) + 1}"
        amount = body["creditLimitDetails"]["requestedAmount"]
        outcome = self.underwriting.get(body["companyId"], "grant")
        code, granted = {
            "grant": ("AlreadyAgreed", amount),
            "partial": ("AlreadyAgreed", amount / 2),
            "refuse": ("Refused", 0),
            "refer": ("Pending", 0),
        }[outcome]
        self.covers[cover_id] = {
            "coverId": cover_id,
            "companyId": body["companyId"],
            "policy": body["policy"],
            "creditLimitsAggregation": {
                "creditLimits": [
                    {
                        "technicalDecisionStatusCode": code,
                        "amount": granted,
                        "currencyCode": body["creditLimitDetails"]["currencyCode"],
                        "startDate": date.today().isoformat(),
                    }
                ]
            },
        }
        self.jobs[job_id] = {"polls": 0, "cover_id": cover_id}
        return self.json(202, {"jobId": job_id})

    def get_job(self, request, job_id):
        if not self.valid_token(request):
            return self.error(401, "Unauthorized")
        job = self.jobs.get(job_id)
        if not job:
            return self.error(404, f"Job {job_id} not found")
        job["polls"] += 1
        if job["polls"] < self.job_polls:
            return self.json(200, {"jobId": job_id, "jobStatusCode": "Pending"})
        if "refusal" in job:
            return self.json(
                200,
                {"jobId": job_id, "jobStatusCode": "Failed", "message": job["refusal"]},
            )
        if "overdue" in job:
            return self.json(200, {"jobId": job_id, "jobStatusCode": "Processed"})
        return self.json(
            200,
            {
                "jobId": job_id,
                "jobStatusCode": "Processed",
                "resourceUrl": f"{request.host_url.rstrip('/')}/riskinfo/v3/covers/"
                f"{job['cover_id']}",
            },
        )

    def create_overdue(self, request):
        """An extension period (EXP) for one invoice: a job, failed when the
        new due date is more than ``max_extension_days`` after the old one."""
        if not self.valid_token(request):
            return self.error(401, "Unauthorized")
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
        return self.json(202, {"jobId": job_id})

    def get_cover(self, request, cover_id):
        if not self.valid_token(request):
            return self.error(401, "Unauthorized")
        return self.json(200, self.covers[cover_id])

    def portfolio(self, request):
        if not self.valid_token(request):
            return self.error(401, "Unauthorized")
        body = request.get_json()
        page, size = body.get("pageNumber", 1), body.get("pageSize", 100)
        self.page_size_seen = size
        covers = list(self.covers.values())
        return self.json(
            200,
            {
                "covers": covers[(page - 1) * size : page * size],
                "totalPages": max(1, -(-len(covers) // size)),
            },
        )

    def underwrite_referral(self, cover_id, amount):
        """The underwriter answers a referred cover (a new credit limit line)."""
        limits = self.covers[cover_id]["creditLimitsAggregation"]["creditLimits"]
        limits.append(
            {
                "technicalDecisionStatusCode": "AlreadyAgreed",
                "amount": amount,
                "currencyCode": limits[0]["currencyCode"],
                "startDate": (date.today() + timedelta(days=1)).isoformat(),
            }
        )


# ----------------------------------------------------------------------- Coface


class FakeCoface(FakeInsurer):
    """Coface CofaServe: token with API key + policy number, company lookup."""

    routes = (
        ("POST", r"/authentication/v1/token", "token"),
        ("GET", r"/company/v1/companies/identifier", "company"),
    )
    max_failed_logins = 5

    def __init__(self, api_key, policy_number, username, password):
        super().__init__()
        self.api_key, self.policy_number = api_key, policy_number
        self.username, self.password = username, password
        self.companies = {}  # (identifierType, value) -> (easyNumber, name)

    def token(self, request):
        if self.failed_logins >= self.max_failed_logins:
            return self.error(403, "Account locked after too many failed logins")
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
        token = self.issue_token()
        return self.json(
            200,
            {
                "accessToken": token,
                "idToken": token,
                "expiresIn": self.token_ttl,
                "tokenType": "Bearer",
            },
        )

    def company(self, request):
        if (
            not self.valid_token(request)
            or request.headers.get("x-api-key") != self.api_key
        ):
            return self.error(401, "Unauthorized")
        args = request.args
        found = self.companies.get(
            (args.get("identifierType"), args.get("identifierValue"))
        )
        companies = [{"easyNumber": found[0], "name": found[1]}] if found else []
        return self.json(200, {"companies": companies, "count": len(companies)})
