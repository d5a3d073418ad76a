"""The sandbox insurer's dialects: Allianz Trade, Atradius and Coface.

Under ``/allianz``, ``/atradius`` and ``/coface`` the sandbox answers in each
insurer's own shapes, as public client code shows them (the sources are named
at each shape; "our reading" marks what no public source shows), so that
``make demo`` runs the same parsing code as production. Underneath, the
sandbox's own store and underwriting rules decide (``server.py``, README):
the last digit of the buyer's SIREN, the amount thresholds, the insurer's own
reductions and withdrawals announced in the feeds.
"""

import base64
import json
import re
import secrets
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Response

# Atradius times are UTC+01:00 (jobsiteOS atradius.ts, "dataDaAtradius");
# Allianz Trade's are read in Europe/Paris (our reading).
ATRADIUS_TZ = timezone(timedelta(hours=1))
ALLIANZ_TZ = ZoneInfo("Europe/Paris")
# A credit-check cover is limited to 7,000 EUR (GLE AtradiusAPI.php, CREDIT_CHECK).
CREDIT_CHECK_AMOUNT = 7000.0
COFACE_LOCKOUT_AFTER = 5  # failed logins (biz.coface.com/Cofaserve)
COFACE_LOCKOUT_MAX = 15 * 60  # seconds, "up to about 15 minutes"


class ApiError(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def json_response(status, body, headers=None):
    return Response(
        json.dumps(body), status=status, headers=headers, mimetype="application/json"
    )


def local_time(stamp, tz):
    """A sandbox stamp (naive UTC ISO) as wall-clock time in ``tz``."""
    moment = datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc)
    return moment.astimezone(tz).replace(tzinfo=None).isoformat(timespec="seconds")


def utc_stamp(text, tz):
    """A wall-clock time in ``tz`` (or with an offset) as a sandbox stamp."""
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    utc = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds")


def request_number(request_id):
    return int(request_id.rsplit("-", 1)[-1])


class Dialect:
    """Routing, tokens and errors shared by the dialects."""

    prefix = ""
    routes = ()

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.store = sandbox.store

    def dispatch(self, request, path):
        try:
            for method, pattern, name in self.routes:
                match = re.fullmatch(pattern, path)
                if match and method == request.method:
                    return getattr(self, name)(request, **match.groupdict())
            return self.unknown_route(request, path)
        except ApiError as exc:
            return self.error(exc.status, exc.message, exc.headers)

    def unknown_route(self, request, path):
        return self.error(404, f"No such endpoint: {self.prefix}{path}.")

    def error(self, status, message, headers=None):
        raise NotImplementedError

    @staticmethod
    def body(request):
        try:
            data = json.loads(request.get_data(as_text=True) or "{}")
        except ValueError:
            raise ApiError(400, "invalid_json", "The body is not JSON.") from None
        return data

    def issue_token(self):
        token = secrets.token_urlsafe(24)
        with self.store.lock:
            self.sandbox.tokens[token] = time.time() + self.sandbox.token_ttl
            self.store.state["stats"]["logins"] += 1
        return token

    def valid(self, token):
        return bool(token) and self.sandbox.tokens.get(token, 0) > time.time()

    def key_accepted(self, key):
        return bool(key) and (not self.sandbox.api_key or key == self.sandbox.api_key)

    def buyer_of(self, field, value):
        """The sandbox buyer whose dialect id ``field`` is ``value``."""
        for buyer in self.store.state["buyers"].values():
            if str(buyer.get(field)) == str(value):
                return buyer
        raise ApiError(404, "unknown_buyer", f"No buyer {value}.")

    def requests_of(self, buyer=None):
        return [
            r
            for r in self.store.state["requests"].values()
            if r.get("dialect") == self.prefix
            and (buyer is None or r["buyerId"] == buyer["buyerId"])
        ]

    def feed(self, since):
        """This dialect's decisions stamped at or after ``since`` (a sandbox
        stamp), the insurer's own cuts included."""
        self.sandbox.make_spontaneous_cuts()
        return [
            d
            for d in self.store.state["decisions"]
            if d.get("dialect") == self.prefix and d["createdAt"] >= since
        ]


# ---------------------------------------------------------------------- Atradius


class Atradius(Dialect):
    """Atradius, from tsauron262/GLE AtradiusAPI.php (GLE) and bdantech/
    jobsiteOS atradius.ts (jobsiteOS)."""

    prefix = "atradius"
    routes = (
        ("POST", r"/authenticate/v2/tokens", "token"),
        ("GET", r"/credit-insurance/organisation-management/v1/buyers", "buyers"),
        ("GET", r"/credit-insurance/cover-management/v1/covers", "list_covers"),
        ("POST", r"/credit-insurance/cover-management/v1/covers", "create_cover"),
        ("PUT", r"/credit-insurance/cover-management/v1/covers", "update_cover"),
    )
    # Sandbox codes -> decisionCode (the "Cover Codes" appendix, as jobsiteOS
    # lists it).
    DECISION_CODES = {
        "APPROVED": "DC01",
        "CONDITIONAL": "DC02",
        "REFUSED": "DC03",
        "PARTIAL": "DC04",
        "WITHDRAWN": "DC08",
        "REDUCED": "DC09",
        "CANCELLED": "DC01",  # our cancellation: historicCode CCLD ends it
    }

    def error(self, status, message, headers=None, parameter=None):
        # {"errors": [{"detail", "source": {"parameter"}}]} (GLE getError)
        error = {"status": str(status), "detail": message}
        if parameter:
            error["source"] = {"parameter": parameter}
        return json_response(status, {"errors": [error]}, headers)

    def unknown_route(self, request, path):
        # The gateway refuses an address outside the contract with 403,
        # before it looks at the credentials (jobsiteOS ROTAS.token).
        return self.error(403, "Forbidden")

    def token(self, request):
        # Atradius-App-Key + HTTP Basic client id/secret, no body; the token is
        # under "data" and lasts 1800 s (GLE connect, jobsiteOS obterToken).
        basic = request.headers.get("Authorization", "").removeprefix("Basic ")
        try:
            client_id, __, secret = base64.b64decode(basic).decode().partition(":")
        except ValueError:
            client_id = secret = ""
        if not (
            self.key_accepted(request.headers.get("Atradius-App-Key"))
            and client_id
            and secret
        ):
            return self.error(401, "Invalid client credentials.")
        return json_response(
            200,
            {
                "data": {
                    "access_token": self.issue_token(),
                    "token_type": "Bearer",
                    "expires_in": self.sandbox.token_ttl,
                }
            },
        )

    def check(self, request):
        header = request.headers.get("Authorization", "")
        if not (
            header.startswith("Bearer ") and self.valid(header.removeprefix("Bearer "))
        ) or not self.key_accepted(request.headers.get("Atradius-App-Key")):
            raise ApiError(401, "invalid_token", "Access token expired or invalid.")
        if not request.headers.get("Atradius-Correlation-Id"):
            # Sent on every call by the public clients (jobsiteOS chamar).
            raise ApiError(400, "invalid_request", "Atradius-Correlation-Id missing.")

    def atradius_buyer(self, buyer):
        if not buyer.get("atradiusId"):
            digits = re.sub(r"\D", "", buyer["buyerId"]) or "0"
            buyer["atradiusId"] = int(digits[-9:])
        return buyer

    def buyers(self, request):
        # GET buyers?country=FRA&uid=<SIREN>&uidType=SN -> data[0].buyerId
        # (GLE getBuyerIdBySiren); uidType VAT (jobsiteOS).
        self.check(request)
        args = request.args
        uid, uid_type = args.get("uid", ""), args.get("uidType", "")
        if not args.get("country") or uid_type not in ("SN", "VAT", "DB"):
            return self.error(400, "country and uidType are required.", None, "uidType")
        kinds = {"SN": "siren", "VAT": "vat", "DB": "duns"}
        buyer = self.sandbox.buyer_for(**{kinds[uid_type]: uid})
        if not buyer:
            return self.error(404, "No buyer match found")  # GLE translateError
        with self.store.lock:
            self.atradius_buyer(buyer)
            self.store.save()
        return json_response(200, {"data": [self.buyer_view(buyer)]})

    @staticmethod
    def buyer_view(buyer):
        identifiers = []
        if buyer.get("siren"):
            identifiers.append(
                {"uid": buyer["siren"], "uidType": "SN", "uidTypeDescription": "SIREN"}
            )
        if buyer.get("vat"):
            identifiers.append(
                {"uid": buyer["vat"], "uidType": "VAT", "uidTypeDescription": "VAT"}
            )
        return {
            "buyerId": buyer["atradiusId"],
            "buyerName": buyer["name"],
            "uniqueIdentifiers": identifiers,  # jobsiteOS cnpjDosIdentificadores
        }

    def list_covers(self, request):
        self.check(request)
        args = request.args
        with self.store.lock:
            if args.get("fromDate"):
                # Covers changed since a date-time in Atradius' time (GLE
                # testRequest: fromDate=Y-m-d\TH:i:s).
                try:
                    since = utc_stamp(args["fromDate"], ATRADIUS_TZ)
                except ValueError:
                    return self.error(400, "Invalid date.", None, "fromDate")
                covers = [
                    self.cover_view(self.store.state["requests"][d["coverOf"]], d)
                    for d in self.feed(since)
                    if d.get("coverOf") in self.store.state["requests"]
                ]
            else:
                buyer = (
                    self.buyer_of("atradiusId", args["buyerId"])
                    if args.get("buyerId")
                    else None
                )
                covers = []
                for limit_request in self.requests_of(buyer):
                    self.sandbox.poll_request(limit_request)
                    covers.append(self.cover_view(limit_request))
            self.store.save()
        return json_response(200, {"data": covers})

    def cover_view(self, limit_request, decision=None):
        """A cover as GLE getCover and jobsiteOS DecisaoBruta read it."""
        buyer = self.atradius_buyer(self.sandbox.buyer(limit_request["buyerId"]))
        decision = decision or self.sandbox.decision_of(limit_request)
        check = limit_request.get("coverType") == "credit-check"
        cover = {
            "coverId": request_number(limit_request["requestId"]),
            "buyerId": buyer["atradiusId"],
            "buyerName": buyer["name"],
            "uniqueIdentifiers": self.buyer_view(buyer)["uniqueIdentifiers"],
            "coverType": limit_request.get("coverType", "credit-limit"),
            "customerRefNumber": limit_request["customerReference"],
            "policyCurrencyCode": limit_request["currency"],
            "creditLimitApplicationAmountInPolicyCurrency": ""
            if check
            else f"{limit_request['amount']:.0f}",
            "applicationDate": local_time(limit_request["createdAt"], ATRADIUS_TZ),
            "coverStatus": "DECISION" if decision else "REFERRED",
        }
        if not decision:
            return cover
        conditions = [
            {"conditionDescription": text}
            for text in [decision.get("conditions")]
            if text and decision["code"] not in ("REFUSED", "CANCELLED")
        ]
        amount = f"{decision['amount']:.0f}"  # amounts come as strings (jobsiteOS)
        cover.update(
            decisionCode=self.DECISION_CODES[decision["code"]],
            decisionDate=local_time(decision["createdAt"], ATRADIUS_TZ),
            effectFromDate=decision["effectiveDate"],
            totalDecision={
                "decisionAmtInPolicyCurrency": amount,
                "decisionConditions": conditions,
            },
            firstAmtDecision={
                "decisionAmtInPolicyCurrency": amount,
                "decisionExpiryDate": decision.get("expiryDate"),
                "decisionConditions": conditions,
            },
        )
        if decision["code"] == "WITHDRAWN":
            cover["withdrawalDate"] = decision["effectiveDate"]
        if decision["code"] == "CANCELLED":
            cover["historicCode"] = "CCLD"
        return cover

    def active_cover(self, buyer, cover_type):
        for limit_request in reversed(self.requests_of(buyer)):
            if limit_request.get("coverType") != cover_type:
                continue
            decision = self.sandbox.decision_of(limit_request)
            if decision is None or decision["code"] not in ("REFUSED", "CANCELLED"):
                return limit_request, decision
        return None, None

    def cover_input(self, request):
        self.check(request)
        data = self.body(request)
        for key in ("customerId", "policyId", "buyerId", "coverType"):
            if not data.get(key):
                raise ApiError(400, "invalid_request", f"{key} is required.")
        if data["coverType"] not in ("credit-limit", "credit-check"):
            raise ApiError(400, "invalid_request", "Unknown coverType.")
        return data

    def amount(self, data):
        if data["coverType"] == "credit-check":
            return CREDIT_CHECK_AMOUNT
        amount = data.get("creditLimitAmount")
        if not isinstance(amount, int | float) or amount <= 0 or amount % 1000:
            # GLE translateError
            raise ApiError(
                400,
                "invalid_request",
                "Must be positive number greater than zero and a multiple of 1000.",
            )
        return float(amount)

    def submit(self, data, buyer, kind, amount):
        limit_request = self.sandbox.submit_request(
            reference=str(data.get("customerRefNumber") or self.store.next_id("ATR")),
            buyer_id=buyer["buyerId"],
            kind=kind,
            amount=amount,
            currency=str(data.get("currencyCode") or "EUR"),
            policy=str(data["policyId"]),
            dialect=self.prefix,
            duplicates_refused=False,
        )
        limit_request["coverType"] = data["coverType"]
        self.store.save()
        return limit_request

    def create_cover(self, request):
        try:
            data = self.cover_input(request)
            with self.store.lock:
                buyer = self.buyer_of("atradiusId", data["buyerId"])
                if self.active_cover(buyer, data["coverType"])[0]:
                    return self.error(
                        400, "Credit limit/credit check already exists for this buyer."
                    )
                limit_request = self.submit(data, buyer, "new", self.amount(data))
        except ApiError as exc:
            parameter = "creditLimitAmount" if "multiple" in exc.message else None
            return self.error(exc.status, exc.message, exc.headers, parameter)
        # 201 decided, 202 referred; {"data": [{"coverId", "response"}]}
        # (GLE createCover; jobsiteOS pedirCobertura).
        status = 201 if limit_request["status"] == "decided" else 202
        answer = {
            "coverId": request_number(limit_request["requestId"]),
            "response": "Action successful",
        }
        return json_response(status, {"data": [answer]})

    def update_cover(self, request):
        # PUT with action supersede | reduce | cancel (GLE setCover, deleteCover)
        data = self.cover_input(request)
        actions = {"supersede": "increase", "reduce": "reduce", "cancel": "cancel"}
        if data.get("action") not in actions:
            return self.error(400, "Unknown action.", None, "action")
        kind = actions[data["action"]]
        with self.store.lock:
            buyer = self.buyer_of("atradiusId", data["buyerId"])
            current, decision = self.active_cover(buyer, data["coverType"])
            if not current:
                return self.error(404, "No cover on this buyer.")
            amount = 0.0 if kind == "cancel" else self.amount(data)
            granted = decision["amount"] if decision else 0.0
            if kind == "reduce" and amount >= granted:
                # Our reading of a refused change (GLE: "Action has been refused.").
                return json_response(
                    201, {"data": [{"response": "Action has been refused."}]}
                )
            limit_request = self.submit(data, buyer, kind, amount)
        status = 201 if limit_request["status"] == "decided" else 202
        return json_response(status, {"data": [{"response": "Action successful"}]})


# ----------------------------------------------------------------- Allianz Trade


class Allianz(Dialect):
    """Allianz Trade, from developers.allianz-trade.com (getting started, API
    design guidelines) and ts-droid/pim-vendora-railway-test
    app/Services/Allianz/* (pim-vendora). Each API under its own base, with
    the environment marker where the sandbox host puts it: /uatm/v1/idp,
    /search/uatm-v2, /uatm/riskinfo/v3 (production paths work as well)."""

    prefix = "allianz"
    IDP = r"/(?:uatm/)?v1/idp"
    SEARCH = r"/search/(?:uatm-)?v2"
    RISK = r"/(?:uatm/)?riskinfo/v3"
    routes = (
        ("POST", IDP + r"/oauth2/authorize", "token"),
        ("POST", SEARCH + r"/companies/matching", "matching"),
        ("POST", RISK + r"/covers", "create_cover"),
        ("POST", RISK + r"/covers/search", "portfolio"),
        ("POST", RISK + r"/coverRequests/search", "cover_requests"),
        ("GET", RISK + r"/covers/(?P<cover_id>[\w-]+)", "get_cover"),
        ("GET", RISK + r"/jobs/(?P<job_id>[\w-]+)", "get_job"),
        ("POST", RISK + r"/overdues", "create_overdue"),
    )
    # Sandbox codes -> technicalDecisionStatusCode: "AlreadyAgreed" is public,
    # the others our reading.
    DECISION_CODES = {
        "APPROVED": "AlreadyAgreed",
        "PARTIAL": "AlreadyAgreed",
        "CONDITIONAL": "AlreadyAgreed",
        "REFUSED": "Refused",
        "REDUCED": "Reduced",
        "WITHDRAWN": "Withdrawn",
        "CANCELLED": "Cancelled",
    }
    ID_TYPES = {"SIREN": "siren", "SIRET": "siren", "VAT": "vat", "DUNS": "duns"}

    def error(self, status, message, headers=None):
        return json_response(status, {"code": status, "message": message}, headers)

    def token(self, request):
        # {"apiKey"} -> access_token, token_type, expires_in (getting started)
        data = self.body(request)
        if not self.key_accepted(str(data.get("apiKey") or "")):
            return self.error(401, "Invalid API key")
        return json_response(
            200,
            {
                "access_token": self.issue_token(),
                "token_type": "Bearer",
                "expires_in": self.sandbox.token_ttl,
            },
        )

    def check(self, request):
        header = request.headers.get("Authorization", "")
        if not (
            header.startswith("Bearer ") and self.valid(header.removeprefix("Bearer "))
        ):
            raise ApiError(401, "invalid_token", "Unauthorized")

    def allianz_buyer(self, buyer):
        digits = re.sub(r"\D", "", buyer["buyerId"]) or "0"
        buyer.setdefault("allianzId", f"AT{int(digits[-9:]):09d}")
        return buyer

    def matching(self, request):
        # results[].company.companyId (getting started, pim-vendora); the
        # companyIdentifiers[{idTypeCode, idValue}] id type codes are our reading.
        self.check(request)
        data = self.body(request)
        values = {}
        for identifier in data.get("companyIdentifiers") or []:
            kind = self.ID_TYPES.get(identifier.get("idTypeCode"))
            if kind and identifier.get("idValue"):
                values.setdefault(kind, identifier["idValue"])
        buyer = self.sandbox.buyer_for(
            name=data.get("companyName"), country=data.get("countryCode"), **values
        )
        if not buyer:
            return json_response(200, {"results": []})
        with self.store.lock:
            self.allianz_buyer(buyer)
            self.store.save()
        company = {
            "companyId": buyer["allianzId"],
            "legalData": {"companyName": buyer["name"]},
        }
        return json_response(200, {"results": [{"company": company}]})

    def create_cover(self, request):
        # requestTypeCode Primary | GradeCover, policy{businessUnitCode,
        # policyId, extensionId}, creditLimitDetails, companyId; answered by
        # the jobId as a bare JSON string (pim-vendora requestGradeCover).
        self.check(request)
        data = self.body(request)
        type_code = data.get("requestTypeCode")
        policy = data.get("policy") or {}
        if type_code not in ("Primary", "GradeCover") or not data.get("companyId"):
            return self.error(400, "requestTypeCode and companyId are required")
        if not policy.get("policyId"):
            return self.error(400, "policy.policyId is required")
        details = data.get("creditLimitDetails") or {}
        with self.store.lock:
            buyer = self.buyer_of("allianzId", data["companyId"])
            grade = type_code == "GradeCover"
            amount = CREDIT_CHECK_AMOUNT if grade else details.get("requestedAmount")
            if not isinstance(amount, int | float) or amount <= 0:
                return self.error(400, "creditLimitDetails.requestedAmount is required")
            limit_request = self.sandbox.submit_request(
                reference=self.store.next_id("ALZ"),
                buyer_id=buyer["buyerId"],
                kind="new",
                amount=float(amount),
                currency=str(details.get("currencyCode") or "EUR"),
                policy=str(policy["policyId"]),
                dialect=self.prefix,
                duplicates_refused=False,
            )
            limit_request["grade"] = grade
            limit_request["jobId"] = self.store.next_id("JOB")
            self.store.save()
        return json_response(202, limit_request["jobId"])

    def get_job(self, request, job_id):
        # jobStatusCode PENDING -> PROCESSED, then resourceUrl (design
        # guidelines; pim-vendora checkStatus).
        self.check(request)
        with self.store.lock:
            found = [r for r in self.requests_of() if r.get("jobId") == job_id] or [
                o
                for o in self.store.state["overdues"].values()
                if o.get("jobId") == job_id
            ]
            if not found:
                return self.error(404, f"Job {job_id} not found")
            record = found[0]
            if "overdueId" in record:
                return json_response(200, self.overdue_job(record, job_id))
            if record["status"] == "pending":
                self.sandbox.poll_request(record)
            if record["status"] == "pending":
                body = {"jobId": job_id, "jobStatusCode": "PENDING"}
            else:
                base = request.host_url.rstrip("/") + request.path.split("/jobs/")[0]
                body = {
                    "jobId": job_id,
                    "jobStatusCode": "PROCESSED",
                    "resourceUrl": f"{base}/covers/{self.cover_id(record)}",
                }
        return json_response(200, body)

    @staticmethod
    def cover_id(limit_request):
        return f"CV{request_number(limit_request['requestId']):06d}"

    def get_cover(self, request, cover_id):
        self.check(request)
        with self.store.lock:
            found = [r for r in self.requests_of() if self.cover_id(r) == cover_id]
            if not found:
                return self.error(404, f"Cover {cover_id} not found")
            self.sandbox.poll_request(found[0])  # a referral moves on each read
            body = self.cover_view(found[0])
            self.store.save()
        return json_response(200, body)

    def cover_view(self, limit_request):
        """A cover: coverStatusCode and creditLimitsAggregation.creditLimits[]
        (technicalDecisionStatusCode, amount, startDate); endDate and
        conditions are our reading."""
        buyer = self.allianz_buyer(self.sandbox.buyer(limit_request["buyerId"]))
        decisions = [
            d
            for d in self.store.state["decisions"]
            if d.get("coverOf") == limit_request["requestId"]
        ]
        if limit_request["status"] == "referred":
            status_code = "Pending"  # our reading
        elif limit_request.get("grade"):
            status_code = "CheckPolicy"
        else:
            status_code = "Agreement"
        return {
            "coverId": self.cover_id(limit_request),
            "companyId": buyer["allianzId"],
            "companyName": buyer["name"],
            "coverStatusCode": status_code,
            "gradePolicyCoverGradeCode": "4" if limit_request.get("grade") else None,
            "policy": {"policyId": limit_request["policyNumber"]},
            "creditLimitsAggregation": {
                "creditLimits": [
                    {
                        "technicalDecisionStatusCode": self.DECISION_CODES[d["code"]],
                        "amount": d["amount"],
                        "currencyCode": d["currency"],
                        "startDate": d["effectiveDate"],
                        "endDate": d.get("expiryDate"),
                        "conditions": [{"description": d["conditions"]}]
                        if d.get("conditions")
                        and d["code"] in ("CONDITIONAL", "PARTIAL")
                        else [],
                    }
                    for d in decisions
                ]
            },
        }

    def pagination(self, data):
        pagination = data.get("pagination") or {}
        try:
            page, size = int(pagination.get("page", 1)), int(pagination["pageSize"])
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "invalid_request", "pagination.pageSize") from None
        return max(page, 1), max(size, 1)

    def portfolio(self, request):
        # {policies, pagination{page, pageSize, isTotalRequired}} -> a bare
        # array of flat covers (pim-vendora gradeSearch), HTTP 206 while pages
        # remain (design guidelines); coverId and lastUpdateDate our reading.
        self.check(request)
        data = self.body(request)
        page, size = self.pagination(data)
        with self.store.lock:
            self.sandbox.make_spontaneous_cuts()
            covers = []
            for limit_request in self.requests_of():
                if limit_request["status"] == "pending":
                    continue  # no cover until the job is processed
                view = self.cover_view(limit_request)
                stamps = [
                    d["createdAt"]
                    for d in self.store.state["decisions"]
                    if d.get("coverOf") == limit_request["requestId"]
                ] or [limit_request["createdAt"]]
                covers.append(
                    {
                        "coverId": view["coverId"],
                        "companyId": view["companyId"],
                        "companyName": view["companyName"],
                        "companyCountryCode": "FR",
                        "coverStatusCode": view["coverStatusCode"],
                        "gradePolicyCoverGradeCode": view["gradePolicyCoverGradeCode"],
                        "lastUpdateDate": local_time(max(stamps), ALLIANZ_TZ),
                    }
                )
            self.store.save()
        chunk = covers[(page - 1) * size : page * size]
        return json_response(206 if page * size < len(covers) else 200, chunk)

    def cover_requests(self, request):
        # Pending requests: requestId, creditLimitDetails, creationDate,
        # lastUpdateDate, coverId (DOMAIN.md); the companyId filter is our
        # reading.
        self.check(request)
        data = self.body(request)
        page, size = self.pagination(data)
        with self.store.lock:
            found, checked = [], []
            for limit_request in self.requests_of():
                buyer = self.allianz_buyer(self.sandbox.buyer(limit_request["buyerId"]))
                if data.get("companyId") and buyer["allianzId"] != data["companyId"]:
                    continue
                if limit_request["status"] == "decided":
                    continue  # no longer pending: its cover is in the portfolio
                checked.append(limit_request)
                found.append(
                    {
                        "requestId": request_number(limit_request["requestId"]),
                        "companyId": buyer["allianzId"],
                        "creditLimitDetails": {
                            "requestedAmount": limit_request["amount"],
                            "currencyCode": limit_request["currency"],
                        },
                        "creationDate": local_time(
                            limit_request["createdAt"], ALLIANZ_TZ
                        ),
                        "lastUpdateDate": local_time(
                            limit_request["createdAt"], ALLIANZ_TZ
                        ),
                        "coverId": self.cover_id(limit_request)
                        if limit_request["status"] == "referred"
                        else None,
                    }
                )
            # Answered as they stood; each search is a check that moves them.
            for limit_request in checked:
                self.sandbox.poll_request(limit_request)
            self.store.save()
        chunk = found[(page - 1) * size : page * size]
        return json_response(206 if page * size < len(found) else 200, chunk)

    def create_overdue(self, request):
        """An extension period (EXP) of one invoice, as a job (our reading:
        the overdue field list is not public)."""
        self.check(request)
        data = self.body(request)
        required = ("overdueCategoryTypeCode", "companyId", "dueDate", "policy")
        if any(not data.get(key) for key in required):
            return self.error(400, f"{', '.join(required)} are required")
        if data["overdueCategoryTypeCode"] != "EXP" or not data.get("extendedDueDate"):
            return self.error(400, "Only an extension (EXP) with extendedDueDate")
        with self.store.lock:
            buyer = self.buyer_of("allianzId", data["companyId"])
            overdue = self.sandbox.record_overdue(
                key=self.store.next_id("ALZ-O"),
                buyer=buyer,
                category="EXP",
                amount=float(data.get("overdueAmount") or 0),
                currency=str(data.get("currencyCode") or "EUR"),
                due_date=str(data["dueDate"]),
                requested_due_date=str(data["extendedDueDate"]),
                invoice=str(data.get("invoiceReference") or ""),
                policy=str((data.get("policy") or {}).get("policyId") or ""),
            )
            overdue["jobId"] = self.store.next_id("JOB")
            self.store.save()
        return json_response(202, overdue["jobId"])

    def overdue_job(self, overdue, job_id):
        self.sandbox.advance_overdue(overdue)
        if overdue["status"] == "RECEIVED":
            return {"jobId": job_id, "jobStatusCode": "PENDING"}
        if overdue["status"] == "REFUSED":
            return {
                "jobId": job_id,
                "jobStatusCode": "FAILED",
                "message": "The extension exceeds the policy's maximum.",
            }
        return {"jobId": job_id, "jobStatusCode": "PROCESSED"}


# ------------------------------------------------------------------------ Coface


class Coface(Dialect):
    """Coface: the token of coface/coface.github.io postman/v2 (x-api-key,
    password grant, idToken sent as it is) and the lockout of the CofaServe
    page; the company lookup, PRODUCT and OVERDUE shapes are our reading."""

    prefix = "coface"
    routes = (
        ("POST", r"/authentication/v1/token", "token"),
        ("GET", r"/company/v1/companies/identifier", "company"),
        ("POST", r"/product/v1/orders", "create_order"),
        ("GET", r"/product/v1/orders", "find_orders"),
        ("GET", r"/product/v1/orders/(?P<order_id>[\w-]+)", "get_order"),
        ("POST", r"/overdue/v1/overdues", "create_overdue"),
        ("GET", r"/overdue/v1/overdues", "find_overdues"),
        ("GET", r"/overdue/v1/overdues/(?P<overdue_id>[\w-]+)", "get_overdue"),
        ("PUT", r"/overdue/v1/overdues/(?P<overdue_id>[\w-]+)", "update_overdue"),
    )
    CATEGORIES = {"OVERDUE": "OVD", "EXTENSION": "EXP", "RESCHEDULING": "RES"}
    # The sandbox refuses this password, so that a demo can show a refused
    # login and the lockout that follows repeated ones.
    WRONG_PASSWORD = "wrong"

    def __init__(self, sandbox):
        super().__init__(sandbox)
        self.failures = {}  # username -> (failed logins, locked until)

    def error(self, status, message, headers=None):
        return json_response(status, {"message": message}, headers)

    def token(self, request):
        # POST {grantType: password, username, password} with x-api-key ->
        # {idToken, accessToken, refreshToken, expiresIn} (postman/v2).
        data = self.body(request)
        username = str(data.get("username") or "")
        count, locked_until = self.failures.get(username, (0, 0.0))
        if locked_until > time.time():
            return self.error(400, "Password attempts exceeded: the account is locked.")
        if (
            not self.key_accepted(request.headers.get("x-api-key"))
            or data.get("grantType") != "password"
            or not username
            or data.get("password") in (None, "", self.WRONG_PASSWORD)
        ):
            count += 1
            wait = (
                min(2 ** (count - COFACE_LOCKOUT_AFTER), COFACE_LOCKOUT_MAX)
                if count >= COFACE_LOCKOUT_AFTER
                else 0
            )
            self.failures[username] = (count, time.time() + wait)
            return self.error(401, "Incorrect username or password.")
        self.failures.pop(username, None)
        token = self.issue_token()
        return json_response(
            200,
            {
                "idToken": token,
                "accessToken": secrets.token_urlsafe(24),
                "refreshToken": secrets.token_urlsafe(24),
                "expiresIn": self.sandbox.token_ttl,
                "tokenType": "Bearer",
            },
        )

    def check(self, request):
        # authorization: <idToken> as it is, with x-api-key (postman/v2).
        if not self.valid(request.headers.get("authorization", "")):
            raise ApiError(401, "invalid_token", "Unauthorized")
        if not self.key_accepted(request.headers.get("x-api-key")):
            raise ApiError(403, "forbidden", "Forbidden")

    def coface_buyer(self, buyer):
        digits = re.sub(r"\D", "", buyer["buyerId"]) or "0"
        buyer.setdefault("easyNumber", f"EN{int(digits[-9:]):09d}")
        return buyer

    def company(self, request):
        self.check(request)
        args = request.args
        kinds = {"SIREN": "siren", "SIRET": "siren", "VAT": "vat"}
        kind = kinds.get(args.get("identifierType", ""))
        if not kind or not args.get("identifierValue") or not args.get("countryCode"):
            return self.error(400, "countryCode, identifierType, identifierValue")
        buyer = self.sandbox.buyer_for(
            **{kind: args["identifierValue"]}, country=args["countryCode"]
        )
        if not buyer:
            return json_response(200, {"companies": [], "count": 0})
        with self.store.lock:
            self.coface_buyer(buyer)
            self.store.save()
        company = {
            "easyNumber": buyer["easyNumber"],
            "name": buyer["name"],
            "countryCode": buyer["country"],
        }
        return json_response(200, {"companies": [company], "count": 1})

    def create_order(self, request):
        self.check(request)
        data = self.body(request)
        product = data.get("productCode")
        if product not in ("CREDIT_LIMIT", "CREDIT_CHECK", "CANCELLATION"):
            return self.error(400, "Unknown productCode.")
        for key in ("contractId", "easyNumber", "customerReference"):
            if not data.get(key):
                return self.error(400, f"{key} is required.")
        amount = {"CREDIT_CHECK": CREDIT_CHECK_AMOUNT, "CANCELLATION": 0.0}.get(
            product, data.get("amount")
        )
        if not isinstance(amount, int | float) or (
            amount <= 0 and product != "CANCELLATION"
        ):
            return self.error(400, "amount must be positive.")
        with self.store.lock:
            buyer = self.buyer_of("easyNumber", data["easyNumber"])
            current = [
                r
                for r in self.requests_of(buyer)
                if r["status"] == "decided" and r["type"] != "cancel"
            ]
            kind = "cancel" if product == "CANCELLATION" else "new"
            if kind == "new" and current:
                granted = self.sandbox.decision_of(current[-1])["amount"]
                kind = "increase" if amount > granted else "reduce"
            limit_request = self.sandbox.submit_request(
                reference=str(data["customerReference"]),
                buyer_id=buyer["buyerId"],
                kind=kind,
                amount=float(amount),
                currency=str(data.get("currencyCode") or "EUR"),
                policy=str(data["contractId"]),
                dialect=self.prefix,
                duplicates_refused=False,
            )
            body = self.order_view(limit_request)
        return json_response(201 if body["status"] == "DECIDED" else 202, body)

    def order_view(self, limit_request):
        buyer = self.coface_buyer(self.sandbox.buyer(limit_request["buyerId"]))
        decision = self.sandbox.decision_of(limit_request)
        view = {
            "orderId": f"ORD{request_number(limit_request['requestId']):06d}",
            "easyNumber": buyer["easyNumber"],
            "customerReference": limit_request["customerReference"],
            "status": limit_request["status"].upper(),
            "decision": None,
        }
        if decision:
            view["decision"] = {
                "code": decision["code"],
                "amount": decision["amount"],
                "currencyCode": decision["currency"],
                "effectiveDate": decision["effectiveDate"],
                "expiryDate": decision.get("expiryDate"),
                "conditions": [decision["conditions"]]
                if decision.get("conditions")
                else [],
            }
        return view

    def find_orders(self, request):
        self.check(request)
        reference = request.args.get("customerReference", "")
        with self.store.lock:
            orders = [
                self.order_view(r)
                for r in self.requests_of()
                if r["customerReference"] == reference
            ]
        return json_response(200, {"orders": orders})

    def get_order(self, request, order_id):
        self.check(request)
        with self.store.lock:
            found = [
                r
                for r in self.requests_of()
                if self.order_view(r)["orderId"] == order_id
            ]
            if not found:
                return self.error(404, f"No order {order_id}.")
            self.sandbox.poll_request(found[0])
            body = self.order_view(found[0])
        return json_response(200, body)

    def create_overdue(self, request):
        self.check(request)
        data = self.body(request)
        category = self.CATEGORIES.get(data.get("category"))
        if not category:
            return self.error(400, "Unknown category.")
        for key in ("contractId", "easyNumber", "customerReference", "dueDate"):
            if not data.get(key):
                return self.error(400, f"{key} is required.")
        with self.store.lock:
            buyer = self.buyer_of("easyNumber", data["easyNumber"])
            counts = self.store.state["stats"]["declarations"]
            key = str(data["customerReference"])
            counts[key] = counts.get(key, 0) + 1
            invoices = data.get("invoices") or []
            overdue = self.sandbox.record_overdue(
                key=key,
                buyer=buyer,
                category=category,
                amount=float(data.get("amount") or 0),
                currency=str(data.get("currencyCode") or "EUR"),
                due_date=str(data["dueDate"]),
                requested_due_date=data.get("requestedDueDate"),
                invoice=str(invoices[0].get("invoiceNumber") if invoices else ""),
                policy=str(data["contractId"]),
                invoices=invoices,
            )
            overdue["dialect"] = self.prefix
            self.store.save()
            body = self.overdue_view(overdue)
        return json_response(201, body)

    def overdue_view(self, overdue):
        return {
            "overdueId": overdue["overdueId"],
            "customerReference": overdue["idempotencyKey"],
            "status": overdue["status"],
            "claimId": overdue.get("claimId"),
            "amount": overdue["amount"],
            "invoices": overdue.get("invoices") or [],
        }

    def overdues(self):
        return [
            o
            for o in self.store.state["overdues"].values()
            if o.get("dialect") == self.prefix
        ]

    def find_overdues(self, request):
        self.check(request)
        key = request.args.get("customerReference", "")
        with self.store.lock:
            found = [
                self.overdue_view(o)
                for o in self.overdues()
                if o["idempotencyKey"] == key
            ]
        return json_response(200, {"overdues": found})

    def get_overdue(self, request, overdue_id):
        self.check(request)
        with self.store.lock:
            overdue = self.sandbox.get_or_404("overdues", overdue_id, "overdue")
            self.sandbox.advance_overdue(overdue)
            self.store.save()
            return json_response(200, self.overdue_view(overdue))

    def update_overdue(self, request, overdue_id):
        self.check(request)
        data = self.body(request)
        with self.store.lock:
            overdue = self.sandbox.get_or_404("overdues", overdue_id, "overdue")
            overdue["amount"] = float(data.get("amount") or 0)
            overdue["invoices"] = data.get("invoices") or []
            if not overdue["amount"] and overdue["status"] in (
                "RECEIVED",
                "IN_COLLECTION",
            ):
                overdue["status"] = "SETTLED"
            overdue["updatedAt"] = self.store.stamp()
            self.store.save()
            return json_response(200, self.overdue_view(overdue))
