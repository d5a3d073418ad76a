#!/usr/bin/env python3
"""The sandbox insurer: a small credit insurer speaking JSON over HTTP.

    python3 credit_insurance/sandbox/server.py --port 8070 --data-dir .sandbox-data

Underwriting is deterministic (amount thresholds and the last digit of the
buyer's SIREN), state is kept in ``<data-dir>/state.json``, and faults can be
injected per server (options) or per call (``/_admin/faults`` or the
``X-Sandbox-Fault`` header). Under ``/allianz``, ``/atradius`` and ``/coface``
it speaks each insurer's own dialect (``dialects.py``). The API is documented
in README.md beside this file. Plain Python and werkzeug only: it runs without
Odoo.
"""

import argparse
import contextlib
import hashlib
import json
import logging
import math
import os
import random
import re
import secrets
import socket
import threading
import time
from datetime import date, datetime, timedelta, timezone

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

if __package__:
    from .dialects import Allianz, ApiError, Atradius, Coface, json_response
else:  # run as a script: python3 credit_insurance/sandbox/server.py
    from dialects import Allianz, ApiError, Atradius, Coface, json_response

_logger = logging.getLogger("sandbox_insurer")

DEFAULT_PORT = 8070
AUTO_DECISION_MAX = 50_000  # decided at once up to this amount
PENDING_MAX = 200_000  # a job answered at the next poll(s) up to this amount
REFERRAL_CAP = 200_000  # what the underwriter grants at most
NOTICE_DAYS = 30  # notice before a spontaneous reduction or withdrawal
LIMIT_TYPES = ("new", "increase", "reduce", "cancel", "renew")
OVERDUE_CATEGORIES = ("OVD", "EXP", "RES")
MAX_EXTENSION_DAYS = 60


def error_response(status, code, message, headers=None):
    return json_response(
        status, {"error": {"code": code, "message": message}}, headers=headers
    )


# ------------------------------------------------------------------ underwriting


def rule_digit(buyer):
    """The digit that drives the sandbox's underwriting for a buyer."""
    digits = re.sub(r"\D", "", buyer.get("siren") or buyer.get("duns") or "")
    if not digits:
        digits = str(int(hashlib.sha256(buyer["buyerId"].encode()).hexdigest(), 16))
    return int(digits[-1])


def round_down(amount, step=1000):
    return float(math.floor(amount / step) * step)


def underwrite(request, buyer):
    """``(status, decision values or None)`` for a new limit request.

    - cancel: cancelled at once; reduce: reduced at once to the amount asked;
    - last SIREN digit 0: refused at once;
    - up to 50,000: decided at once (digit 1: half granted; digit 2: granted
      with conditions; otherwise granted in full);
    - up to 200,000: pending, granted at the next poll;
    - above: referred to an underwriter, answered after two polls.
    """
    amount, kind, digit = request["amount"], request["type"], rule_digit(buyer)
    if kind == "cancel":
        return "decided", {"code": "CANCELLED", "amount": 0.0}
    if kind == "reduce":
        return "decided", {"code": "REDUCED", "amount": amount}
    if digit == 0:
        return "decided", {
            "code": "REFUSED",
            "amount": 0.0,
            "conditions": "Insufficient financial information on the buyer.",
        }
    if amount > PENDING_MAX:
        return "referred", None
    if amount > AUTO_DECISION_MAX:
        return "pending", None
    return "decided", grant(amount, digit)


def grant(amount, digit):
    if digit == 1:
        return {
            "code": "PARTIAL",
            "amount": round_down(amount / 2),
            "conditions": "Partly granted in view of the buyer's size.",
        }
    if digit == 2:
        return {
            "code": "CONDITIONAL",
            "amount": amount,
            "conditions": "Payment terms of at most 60 days.",
        }
    return {"code": "APPROVED", "amount": amount}


def underwriter_answer(request, buyer):
    """What the underwriter decides on a referred request."""
    if rule_digit(buyer) == 3:
        return {
            "code": "REFUSED",
            "amount": 0.0,
            "conditions": "Refused by the underwriter: exposure too high.",
        }
    if request["amount"] > REFERRAL_CAP:
        return {
            "code": "PARTIAL",
            "amount": float(REFERRAL_CAP),
            "conditions": "Granted up to the underwriter's authority.",
        }
    return grant(request["amount"], rule_digit(buyer))


def spontaneous_cut(decision, buyer):
    """Digit 9: halved; digit 8: withdrawn — both with 30 days' notice."""
    digit = rule_digit(buyer)
    if decision["code"] not in ("APPROVED", "PARTIAL", "CONDITIONAL"):
        return None
    if digit == 9:
        return {
            "code": "REDUCED",
            "amount": round_down(decision["amount"] / 2),
            "conditions": "Reduced by the insurer: the buyer pays later than agreed.",
        }
    if digit == 8:
        return {
            "code": "WITHDRAWN",
            "amount": 0.0,
            "conditions": "Withdrawn by the insurer: adverse information on the buyer.",
        }
    return None


# ------------------------------------------------------------------------ state


class SandboxStore:
    """All the sandbox's data, saved to ``state.json`` after every change."""

    def __init__(self, data_dir=None):
        self.lock = threading.RLock()
        self.path = os.path.join(data_dir, "state.json") if data_dir else None
        self.state = self._empty()
        if self.path and os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as handle:
                self.state = {**self.state, **json.load(handle)}
        if data_dir:
            os.makedirs(data_dir, exist_ok=True)

    @staticmethod
    def _empty():
        return {
            "counters": {},
            "last_stamp": "",
            "buyers": {},
            "requests": {},
            "decisions": [],
            "overdues": {},
            "claims": {},
            "turnovers": {},
            "stats": {
                "logins": 0,
                "submissions": {},
                "declarations": {},
                "declaration_updates": {},
                "duplicates": 0,
            },
        }

    def reset(self):
        with self.lock:
            self.state = self._empty()
            self.save()

    def save(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.state, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def next_id(self, prefix):
        counters = self.state["counters"]
        counters[prefix] = counters.get(prefix, 0) + 1
        return f"{prefix}-{counters[prefix]:06d}"

    def stamp(self):
        """Now, in UTC, strictly after any earlier stamp (feeds are ordered)."""
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        last = self.state["last_stamp"]
        if last:
            previous = datetime.fromisoformat(last)
            if now <= previous:
                now = previous + timedelta(microseconds=1)
        self.state["last_stamp"] = now.isoformat(timespec="microseconds")
        return self.state["last_stamp"]


# -------------------------------------------------------------------------- API


class SandboxInsurer:
    """The WSGI application of the sandbox insurer."""

    def __init__(
        self,
        store=None,
        *,
        api_key="",
        token_ttl=3600,
        pending_polls=1,
        referral_polls=2,
        collection_polls=1,
    ):
        self.store = store or SandboxStore()
        self.api_key = api_key
        self.token_ttl = token_ttl
        self.pending_polls = pending_polls
        self.referral_polls = referral_polls
        self.collection_polls = collection_polls
        self.tokens = {}  # token -> expiry (time.time()); not kept across restarts
        self.routes = [
            ("GET", r"/health", self.health),
            ("GET", r"/", self.index),
            ("POST", r"/v1/token", self.token),
            ("POST", r"/v1/buyers/search", self.search_buyers),
            ("POST", r"/v1/limit-requests", self.create_limit_request),
            ("GET", r"/v1/limit-requests", self.find_limit_requests),
            ("GET", r"/v1/limit-requests/(?P<ident>[\w-]+)", self.get_limit_request),
            ("GET", r"/v1/decisions", self.decision_feed),
            ("POST", r"/v1/overdues", self.create_overdue),
            ("GET", r"/v1/overdues", self.find_overdues),
            ("GET", r"/v1/overdues/(?P<ident>[\w-]+)", self.get_overdue),
            ("PUT", r"/v1/overdues/(?P<ident>[\w-]+)", self.update_overdue),
            ("GET", r"/v1/claims", self.claim_feed),
            (
                "PUT",
                r"/v1/turnover-declarations/(?P<key>[\w-]+)",
                self.put_turnover_declaration,
            ),
            ("GET", r"/v1/claims/(?P<ident>[\w-]+)", self.get_claim),
            ("GET", r"/_admin/stats", self.admin_stats),
            ("POST", r"/_admin/expire-tokens", self.admin_expire_tokens),
            ("POST", r"/_admin/decisions", self.admin_decision),
            ("POST", r"/_admin/reset", self.admin_reset),
        ]
        # The insurers' own dialects, under /allianz, /atradius and /coface.
        self.dialects = {
            dialect.prefix: dialect(self) for dialect in (Allianz, Atradius, Coface)
        }

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except ApiError as exc:
            response = error_response(exc.status, exc.code, exc.message, exc.headers)
        return response(environ, start_response)

    def dispatch(self, request):
        path = request.path.rstrip("/") or "/"
        prefix, __, rest = path[1:].partition("/")
        if prefix in self.dialects:
            return self.dialects[prefix].dispatch(request, "/" + rest)
        allowed = []
        for method, pattern, handler in self.routes:
            match = re.fullmatch(pattern, path)
            if match:
                if method == request.method:
                    if path.startswith("/v1/") and path != "/v1/token":
                        self.check_token(request)
                    return handler(request, **match.groupdict())
                allowed.append(method)
        if allowed:
            raise ApiError(405, "method_not_allowed", f"Use {', '.join(allowed)}.")
        raise ApiError(404, "not_found", f"No such endpoint: {path}.")

    # -- helpers ---------------------------------------------------------------

    @staticmethod
    def body(request):
        try:
            data = json.loads(request.get_data(as_text=True) or "{}")
        except ValueError:
            raise ApiError(400, "invalid_json", "The body is not JSON.") from None
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_json", "The body must be a JSON object.")
        return data

    @staticmethod
    def amount(data, key, positive=True):
        try:
            value = float(data.get(key))
        except (TypeError, ValueError):
            raise ApiError(422, "invalid_request", f"{key} must be a number.") from None
        if value < 0 or (positive and value <= 0):
            raise ApiError(422, "invalid_request", f"{key} must be positive.")
        return value

    @staticmethod
    def day(data, key, required=True):
        value = data.get(key)
        if not value and not required:
            return None
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ApiError(
                422, "invalid_request", f"{key} must be a date (YYYY-MM-DD)."
            ) from None

    def check_token(self, request):
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if not token or self.tokens.get(token, 0) < time.time():
            raise ApiError(
                401,
                "invalid_token",
                "The access token is missing, invalid or expired.",
                {"WWW-Authenticate": "Bearer"},
            )

    def buyer(self, buyer_id):
        buyer = self.store.state["buyers"].get(buyer_id)
        if not buyer:
            raise ApiError(404, "unknown_buyer", f"No buyer {buyer_id}.")
        return buyer

    @staticmethod
    def _since(request):
        since = request.args.get("since") or ""
        try:
            return (
                datetime.fromisoformat(since.replace("Z", "+00:00"))
                .astimezone(timezone.utc)
                .replace(tzinfo=None)
                .isoformat(timespec="microseconds")
                if since
                else ""
            )
        except ValueError:
            raise ApiError(400, "invalid_request", "since must be ISO 8601.") from None

    # -- service ---------------------------------------------------------------

    def health(self, request):
        return json_response(200, {"status": "ok", "name": "Sandbox insurer"})

    def index(self, request):
        return json_response(
            200,
            {
                "name": "Sandbox insurer",
                "endpoints": [f"{m} {p}" for m, p, __ in self.routes],
            },
        )

    def token(self, request):
        data = self.body(request)
        key = str(data.get("apiKey") or "")
        if not key or (self.api_key and key != self.api_key):
            raise ApiError(401, "invalid_api_key", "Unknown API key.")
        token = secrets.token_urlsafe(24)
        with self.store.lock:
            self.tokens[token] = time.time() + self.token_ttl
            self.store.state["stats"]["logins"] += 1
        return json_response(
            200,
            {"accessToken": token, "tokenType": "Bearer", "expiresIn": self.token_ttl},
        )

    # -- buyers ----------------------------------------------------------------

    def search_buyers(self, request):
        data = self.body(request)
        buyer = self.buyer_for(
            siren=data.get("siren") or data.get("siret"),
            vat=data.get("vat"),
            duns=data.get("duns"),
            name=data.get("name"),
            country=data.get("country"),
        )
        return json_response(200, {"buyers": [buyer] if buyer else []})

    def buyer_for(self, *, siren="", vat="", duns="", name="", country=""):
        """The sandbox's buyer for these identifiers, recorded at the first
        search; None when unknown to the insurer (SIREN or DUNS 999...).

        :raises ApiError: 422 when nothing identifies it.
        """
        country = str(country or "").upper()
        siren = re.sub(r"\D", "", str(siren or ""))[:9]
        vat = re.sub(r"[\s.-]", "", str(vat or "")).upper()
        if not siren and re.fullmatch(r"FR[0-9A-Z]{2}\d{9}", vat):
            siren = vat[4:]
        duns = re.sub(r"\D", "", str(duns or ""))
        name = str(name or "").strip()
        if siren:
            buyer_id, country = f"SBX-FR-{siren}", country or "FR"
        elif duns:
            buyer_id = f"SBX-DUNS-{duns}"
        elif vat:
            buyer_id, country = f"SBX-VAT-{vat}", country or vat[:2]
        elif name and country:
            digest = hashlib.sha256(f"{country}:{name.lower()}".encode()).hexdigest()
            buyer_id = f"SBX-{country}-{digest[:8].upper()}"
        else:
            raise ApiError(
                422,
                "invalid_request",
                "Give a SIREN, SIRET, VAT number, DUNS, or a name and a country.",
            )
        if (siren or duns).startswith("999"):
            return None  # unknown to the insurer
        with self.store.lock:
            buyers = self.store.state["buyers"]
            buyer = buyers.setdefault(
                buyer_id,
                {
                    "buyerId": buyer_id,
                    "name": name or buyer_id,
                    "country": country,
                    "siren": siren,
                    "vat": vat,
                    "duns": duns,
                },
            )
            self.store.save()
        return buyer

    # -- limit requests --------------------------------------------------------

    def create_limit_request(self, request):
        data = self.body(request)
        reference = str(data.get("customerReference") or "").strip()
        if not reference:
            raise ApiError(422, "invalid_request", "customerReference is required.")
        kind = data.get("type")
        if kind not in LIMIT_TYPES:
            raise ApiError(
                422, "invalid_request", f"type must be one of {', '.join(LIMIT_TYPES)}."
            )
        amount = self.amount(data, "amount", positive=kind != "cancel")
        currency = str(data.get("currency") or "")
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise ApiError(422, "invalid_request", "currency must be an ISO 4217 code.")
        with self.store.lock:
            limit_request = self.submit_request(
                reference=reference,
                buyer_id=str(data.get("buyerId") or ""),
                kind=kind,
                amount=amount,
                currency=currency,
                policy=str(data.get("policyNumber") or ""),
                reason=str(data.get("reason") or ""),
            )
            body = self.request_view(limit_request)
        status = 201 if limit_request["status"] == "decided" else 202
        return json_response(status, body)

    def submit_request(
        self,
        *,
        reference,
        buyer_id,
        kind,
        amount,
        currency,
        policy="",
        reason="",
        dialect="",
        duplicates_refused=True,
    ):
        """Record and underwrite a limit request (the sandbox's own API and
        the insurers' dialects). Every submission is counted by reference;
        a reference already used is a duplicate (refused with 409 unless
        ``duplicates_refused`` is False: the dialects' insurers keep no
        reference of ours)."""
        state = self.store.state
        submissions = state["stats"]["submissions"]
        submissions[reference] = submissions.get(reference, 0) + 1
        existing = [
            r for r in state["requests"].values() if r["customerReference"] == reference
        ]
        if existing:
            state["stats"]["duplicates"] += 1
            self.store.save()
            if duplicates_refused:
                raise ApiError(
                    409,
                    "duplicate_reference",
                    f"Customer reference {reference} was already used by request "
                    f"{existing[0]['requestId']}.",
                )
        buyer = self.buyer(buyer_id)
        limit_request = {
            "requestId": self.store.next_id("SBX-R"),
            "customerReference": reference,
            "buyerId": buyer["buyerId"],
            "type": kind,
            "amount": amount,
            "currency": currency,
            "policyNumber": policy,
            "reason": reason,
            "dialect": dialect,
            "createdAt": self.store.stamp(),
            "polls": 0,
            "decisionId": None,
        }
        status, values = underwrite(limit_request, buyer)
        limit_request["status"] = status
        state["requests"][limit_request["requestId"]] = limit_request
        if values:
            self.decide(limit_request, buyer, values)
        self.store.save()
        return limit_request

    def decide(self, limit_request, buyer, values):
        limit_request["status"] = "decided"
        decision = self.add_decision(
            buyer,
            values,
            request=limit_request,
            requested=limit_request["amount"],
            currency=limit_request["currency"],
        )
        limit_request["decisionId"] = decision["decisionId"]
        return decision

    def add_decision(
        self, buyer, values, *, request=None, requested=0.0, currency="EUR", days=0
    ):
        """Record a decision; spontaneous cuts take effect after ``days``."""
        today = date.today()
        expiry = None
        if values["code"] in ("APPROVED", "PARTIAL", "CONDITIONAL") and (
            rule_digit(buyer) == 4 or (request and request["type"] == "renew")
        ):
            expiry = (today + timedelta(days=365)).isoformat()
        decision = {
            "decisionId": self.store.next_id("SBX-D"),
            "buyerId": buyer["buyerId"],
            "buyer": {
                key: buyer.get(key) for key in ("name", "country", "siren", "vat")
            },
            "requestId": request["requestId"] if request else None,
            "customerReference": request["customerReference"] if request else None,
            "policyNumber": request["policyNumber"] if request else "",
            "code": values["code"],
            "requestedAmount": requested,
            "amount": values["amount"],
            "currency": currency,
            "effectiveDate": values.get("effectiveDate")
            or (today + timedelta(days=days)).isoformat(),
            "expiryDate": expiry,
            "conditions": values.get("conditions", ""),
            "createdAt": self.store.stamp(),
            "cutDone": False,
            # Which API the decision belongs to ("" the sandbox's own, else a
            # dialect) and the request whose cover it changes.
            "dialect": request.get("dialect", "") if request else "",
            "coverOf": request["requestId"] if request else None,
        }
        self.store.state["decisions"].append(decision)
        return decision

    def request_view(self, limit_request):
        decision = self.decision_of(limit_request)
        view = {k: v for k, v in limit_request.items() if k not in ("polls", "dialect")}
        view["decision"] = self.decision_view(decision) if decision else None
        return view

    @staticmethod
    def decision_view(decision):
        return {
            k: v
            for k, v in decision.items()
            if k not in ("cutDone", "dialect", "coverOf")
        }

    def find_by(self, request, collection, field, view):
        """The records of ``collection`` whose ``field`` is the (required)
        query parameter of that name: how a client finds what it sent."""
        value = request.args.get(field, "")
        if not value:
            raise ApiError(400, "invalid_request", f"{field} is required.")
        with self.store.lock:
            found = [
                view(record)
                for record in self.store.state[collection].values()
                if record[field] == value
            ]
        return json_response(200, {collection: found})

    def get_or_404(self, collection, ident, label):
        """The record ``ident`` of ``collection`` (call with the lock held)."""
        record = self.store.state[collection].get(ident)
        if not record:
            raise ApiError(404, "not_found", f"No {label} {ident}.")
        return record

    def find_limit_requests(self, request):
        return self.find_by(request, "requests", "customerReference", self.request_view)

    def get_limit_request(self, request, ident):
        with self.store.lock:
            limit_request = self.get_or_404("requests", ident, "limit request")
            self.poll_request(limit_request)
            return json_response(200, self.request_view(limit_request))

    def poll_request(self, limit_request):
        """One check of a pending or referred request: decided after
        ``pending_polls`` / ``referral_polls`` checks (call with the lock)."""
        if limit_request["status"] not in ("pending", "referred"):
            return
        limit_request["polls"] += 1
        buyer = self.buyer(limit_request["buyerId"])
        if (
            limit_request["status"] == "pending"
            and limit_request["polls"] >= self.pending_polls
        ):
            self.decide(
                limit_request, buyer, grant(limit_request["amount"], rule_digit(buyer))
            )
        elif (
            limit_request["status"] == "referred"
            and limit_request["polls"] >= self.referral_polls
        ):
            self.decide(limit_request, buyer, underwriter_answer(limit_request, buyer))
        self.store.save()

    def decision_of(self, limit_request):
        """The decision answering a request, or None."""
        return next(
            (
                d
                for d in self.store.state["decisions"]
                if d["decisionId"] == limit_request["decisionId"]
            ),
            None,
        )

    def decision_feed(self, request):
        since = self._since(request)
        try:
            limit = max(1, min(int(request.args.get("limit", 500)), 1000))
        except ValueError:
            raise ApiError(400, "invalid_request", "limit must be a number.") from None
        with self.store.lock:
            self.make_spontaneous_cuts()
            changed = [
                d
                for d in self.store.state["decisions"]
                if d["createdAt"] >= since and not d.get("dialect")
            ]
            page = changed[:limit]
            has_more = len(changed) > limit
            until = page[-1]["createdAt"] if has_more else self.store.stamp()
            self.store.save()
            body = {
                "decisions": [self.decision_view(d) for d in page],
                "until": until + "Z",
                "hasMore": has_more,
            }
        return json_response(200, body)

    def make_spontaneous_cuts(self):
        """The insurer's own reductions and withdrawals, once per grant."""
        for decision in list(self.store.state["decisions"]):
            if decision["cutDone"]:
                continue
            decision["cutDone"] = True
            buyer = self.store.state["buyers"].get(decision["buyerId"])
            cut = buyer and spontaneous_cut(decision, buyer)
            if cut:
                notice = self.add_decision(
                    buyer,
                    cut,
                    requested=decision["amount"],
                    currency=decision["currency"],
                    days=NOTICE_DAYS,
                )
                notice["cutDone"] = True
                notice["policyNumber"] = decision["policyNumber"]
                notice["dialect"] = decision.get("dialect", "")
                notice["coverOf"] = decision.get("coverOf")

    # -- overdues and claims ---------------------------------------------------

    def create_overdue(self, request):
        data = self.body(request)
        key = str(data.get("idempotencyKey") or "").strip()
        if not key:
            raise ApiError(422, "invalid_request", "idempotencyKey is required.")
        category = data.get("category") or "OVD"
        if category not in OVERDUE_CATEGORIES:
            raise ApiError(422, "invalid_request", "category must be OVD, EXP or RES.")
        amount = self.amount(data, "amount")
        due_date = self.day(data, "dueDate")
        requested_due_date = self.day(data, "requestedDueDate", required=False)
        if category == "EXP" and not requested_due_date:
            raise ApiError(
                422, "invalid_request", "An extension needs a requestedDueDate."
            )
        invoices = self.invoices(data)
        with self.store.lock:
            state = self.store.state
            counts = state["stats"]["declarations"]
            counts[key] = counts.get(key, 0) + 1
            existing = [
                o for o in state["overdues"].values() if o["idempotencyKey"] == key
            ]
            if existing:
                state["stats"]["duplicates"] += 1
                self.store.save()
                raise ApiError(
                    409,
                    "duplicate_reference",
                    f"Idempotency key {key} was already used by overdue "
                    f"{existing[0]['overdueId']}.",
                )
            buyer = self.buyer(str(data.get("buyerId") or ""))
            overdue = self.record_overdue(
                key=key,
                buyer=buyer,
                category=category,
                amount=amount,
                currency=str(data.get("currency") or "EUR"),
                due_date=due_date,
                requested_due_date=requested_due_date,
                invoice=str(
                    data.get("invoiceNumber")
                    or (invoices[0]["invoiceNumber"] if invoices else "")
                ),
                policy=str(data.get("policyNumber") or ""),
                invoices=invoices,
            )
            body = self.overdue_view(overdue)
        return json_response(201, body)

    def record_overdue(
        self,
        *,
        key,
        buyer,
        category,
        amount,
        currency,
        due_date,
        requested_due_date,
        invoice,
        policy,
        invoices=(),
    ):
        """Record an overdue (the sandbox's own API and the dialects; call
        with the lock held)."""
        overdue = {
            "overdueId": self.store.next_id("SBX-O"),
            "idempotencyKey": key,
            "buyerId": buyer["buyerId"],
            "policyNumber": policy,
            "category": category,
            "invoiceNumber": invoice,
            "invoices": list(invoices),
            "amount": amount,
            "currency": currency,
            "dueDate": due_date,
            "requestedDueDate": requested_due_date,
            "status": "RECEIVED",
            "claimId": None,
            "polls": 0,
            "createdAt": self.store.stamp(),
            "updatedAt": self.store.state["last_stamp"],
        }
        self.store.state["overdues"][overdue["overdueId"]] = overdue
        self.store.save()
        return overdue

    def invoices(self, data):
        """The invoices of an overdue (optional: one invoice by default)."""
        invoices = data.get("invoices") or []
        if not isinstance(invoices, list):
            raise ApiError(422, "invalid_request", "invoices must be a list.")
        checked = []
        for invoice in invoices:
            if not isinstance(invoice, dict) or not invoice.get("invoiceNumber"):
                raise ApiError(
                    422, "invalid_request", "Each invoice needs an invoiceNumber."
                )
            checked.append(
                {
                    "invoiceNumber": str(invoice["invoiceNumber"]),
                    "amount": self.amount(invoice, "amount", positive=False),
                    "dueDate": self.day(invoice, "dueDate"),
                    "invoiceDate": self.day(invoice, "invoiceDate", required=False),
                    "invoiceAmount": float(invoice.get("invoiceAmount") or 0),
                    "invoiceCurrency": str(invoice.get("invoiceCurrency") or ""),
                }
            )
        return checked

    def update_overdue(self, request, ident):
        """The seller reports the overdue as it is now (payments, new invoices):
        the whole state is sent, so the same update twice changes nothing."""
        data = self.body(request)
        amount = self.amount(data, "amount", positive=False)
        invoices = self.invoices(data)
        with self.store.lock:
            overdue = self.get_or_404("overdues", ident, "overdue")
            updates = self.store.state["stats"]["declaration_updates"]
            updates[ident] = updates.get(ident, 0) + 1
            overdue["amount"] = amount
            overdue["invoices"] = invoices
            if not amount and overdue["status"] in ("RECEIVED", "IN_COLLECTION"):
                overdue["status"] = "SETTLED"  # paid: nothing left to collect
            overdue["updatedAt"] = self.store.stamp()
            self.store.save()
            return json_response(200, self.overdue_view(overdue))

    @staticmethod
    def overdue_view(overdue):
        return {
            k: v for k, v in overdue.items() if k not in ("polls", "dialect", "jobId")
        }

    def find_overdues(self, request):
        return self.find_by(request, "overdues", "idempotencyKey", self.overdue_view)

    def get_overdue(self, request, ident):
        with self.store.lock:
            overdue = self.get_or_404("overdues", ident, "overdue")
            self.advance_overdue(overdue)
            self.store.save()
            return json_response(200, self.overdue_view(overdue))

    def advance_overdue(self, overdue):
        """One step per poll: see README (collection, then settled or claim)."""
        overdue["polls"] += 1
        status, buyer = overdue["status"], self.buyer(overdue["buyerId"])
        if overdue["polls"] < self.collection_polls:
            return
        new = status
        if overdue["category"] == "EXP" and status == "RECEIVED":
            days = (
                date.fromisoformat(overdue["requestedDueDate"])
                - date.fromisoformat(overdue["dueDate"])
            ).days
            new = "ACCEPTED" if days <= MAX_EXTENSION_DAYS else "REFUSED"
        elif overdue["category"] == "RES" and status == "RECEIVED":
            new = "ACCEPTED"
        elif status == "RECEIVED":
            new = "IN_COLLECTION"
        elif status == "IN_COLLECTION":
            if rule_digit(buyer) % 2 == 0:
                new = "SETTLED"
            else:
                new = "CLAIM_OPENED"
                claim = {
                    "claimId": self.store.next_id("SBX-C"),
                    "overdueId": overdue["overdueId"],
                    "buyerId": overdue["buyerId"],
                    "status": "OPEN",
                    "claimedAmount": overdue["amount"],
                    "indemnityAmount": 0.0,
                    "currency": overdue["currency"],
                    "openedOn": date.today().isoformat(),
                    "paidOn": None,
                    "polls": 0,
                    "updatedAt": self.store.stamp(),
                }
                self.store.state["claims"][claim["claimId"]] = claim
                overdue["claimId"] = claim["claimId"]
        if new != status:
            overdue["status"] = new
            overdue["polls"] = 0
            overdue["updatedAt"] = self.store.stamp()

    @staticmethod
    def claim_view(claim):
        return {k: v for k, v in claim.items() if k != "polls"}

    def get_claim(self, request, ident):
        with self.store.lock:
            claim = self.get_or_404("claims", ident, "claim")
            claim["polls"] += 1
            if claim["status"] == "OPEN" and claim["polls"] >= self.collection_polls:
                claim.update(
                    status="INDEMNIFIED",
                    indemnityAmount=round(claim["claimedAmount"] * 0.9, 2),
                    paidOn=date.today().isoformat(),
                    updatedAt=self.store.stamp(),
                )
            self.store.save()
            return json_response(200, self.claim_view(claim))

    def claim_feed(self, request):
        since = self._since(request)
        with self.store.lock:
            claims = sorted(
                (
                    c
                    for c in self.store.state["claims"].values()
                    if c["updatedAt"] >= since
                ),
                key=lambda c: c["updatedAt"],
            )
            body = {
                "claims": [self.claim_view(c) for c in claims],
                "until": self.store.stamp() + "Z",
                "hasMore": False,
            }
            self.store.save()
        return json_response(200, body)

    def put_turnover_declaration(self, request, key):
        """Declare a period's turnover under the client's key: 201 the first
        time, 200 with the same declaration when it is sent again."""
        data = self.body(request)
        period = (self.day(data, "periodStart"), self.day(data, "periodEnd"))
        if period[1] < period[0]:
            raise ApiError(422, "invalid_request", "periodEnd is before periodStart.")
        by_country = data.get("turnoverByCountry")
        if not isinstance(by_country, dict):
            raise ApiError(
                422, "invalid_request", "turnoverByCountry must be an object."
            )
        try:  # a country's credit notes may outweigh its invoices
            amounts = {str(c): float(v) for c, v in by_country.items()}
        except (TypeError, ValueError):
            raise ApiError(
                422, "invalid_request", "turnoverByCountry amounts must be numbers."
            ) from None
        with self.store.lock:
            state = self.store.state
            counts = state["stats"].setdefault("turnover_declarations", {})
            counts[key] = counts.get(key, 0) + 1
            existing = state["turnovers"].get(key)
            if existing:
                state["stats"]["duplicates"] += 1
                self.store.save()
                return json_response(200, existing)
            declaration = {
                "declarationId": self.store.next_id("SBX-T"),
                "idempotencyKey": key,
                "policyNumber": str(data.get("policyNumber") or ""),
                "periodStart": period[0],
                "periodEnd": period[1],
                "currency": str(data.get("currency") or "EUR"),
                "turnoverByCountry": amounts,
                "turnover": round(sum(amounts.values()), 2),
                "premium": self.amount(data, "premium", positive=False),
                "receivedAt": self.store.stamp(),
            }
            state["turnovers"][key] = declaration
            self.store.save()
        return json_response(201, declaration)

    # -- admin (tests and demos; the server listens on localhost) -------------

    def admin_stats(self, request):
        with self.store.lock:
            stats = json.loads(json.dumps(self.store.state["stats"]))
            stats["requests"] = len(self.store.state["requests"])
            stats["decisions"] = len(self.store.state["decisions"])
            stats["overdues"] = len(self.store.state["overdues"])
            stats["turnovers"] = len(self.store.state["turnovers"])
        return json_response(200, stats)

    def admin_expire_tokens(self, request):
        with self.store.lock:
            self.tokens.clear()
        return json_response(200, {"expired": True})

    def admin_decision(self, request):
        """Inject a decision of the insurer's own (e.g. a reduction)."""
        data = self.body(request)
        code = data.get("code") or "REDUCED"
        with self.store.lock:
            buyer = self.buyer(str(data.get("buyerId") or ""))
            decision = self.add_decision(
                buyer,
                {
                    "code": code,
                    "amount": self.amount(data, "amount", positive=False),
                    "conditions": str(data.get("conditions") or ""),
                    "effectiveDate": self.day(data, "effectiveDate", required=False),
                },
                currency=str(data.get("currency") or "EUR"),
            )
            decision["policyNumber"] = str(data.get("policyNumber") or "")
            decision["cutDone"] = True
            decision["dialect"] = str(data.get("dialect") or "")
            self.store.save()
            body = self.decision_view(decision)
        return json_response(201, body)

    def admin_reset(self, request):
        self.store.reset()
        self.tokens.clear()
        return json_response(200, {"reset": True})


# ---------------------------------------------------------------- fault injection


class FaultInjector:
    """WSGI middleware injecting latency, errors and dropped answers.

    Server-wide: ``latency`` (seconds before each call), ``error_rate`` (share
    of calls answered 503) and ``drop_rate`` (share of calls processed, then
    left without answer), drawn from a seeded random generator.

    One-shot faults, queued by ``POST /_admin/faults`` or :meth:`add`, or
    asked by a call's ``X-Sandbox-Fault`` header (``name`` or ``name:arg``):

    - ``drop``: process the call, then close the connection without answering;
    - ``slow:S``: process the call, then wait S seconds before answering;
    - ``latency:S``: wait S seconds, then process the call;
    - ``error:STATUS``: answer STATUS (default 500) without processing;
    - ``429:S``: answer 429 with ``Retry-After: S`` without processing;
    - ``html:STATUS``: answer an HTML page (default 503) without processing;
    - ``malformed``: answer 200 with broken JSON without processing.

    Paths under ``/_admin`` and ``/health`` are never faulted.
    """

    NAMES = ("drop", "slow", "latency", "error", "429", "html", "malformed")

    def __init__(self, app, *, latency=0.0, error_rate=0.0, drop_rate=0.0, seed=0):
        self.app = app
        self.latency = latency
        self.error_rate = error_rate
        self.drop_rate = drop_rate
        self.random = random.Random(seed)
        self.rules = []
        self.lock = threading.Lock()

    def add(self, fault, *, method=None, path="", times=1, arg=None):
        """Queue ``fault`` for the next ``times`` calls matching method/path."""
        if fault not in self.NAMES:
            raise ValueError(f"unknown fault {fault!r}")
        with self.lock:
            self.rules.append(
                {
                    "fault": fault,
                    "method": (method or "").upper(),
                    "path": path,
                    "times": int(times),
                    "arg": arg,
                }
            )

    def clear(self):
        with self.lock:
            self.rules.clear()

    def _take(self, method, path):
        with self.lock:
            for rule in self.rules:
                if (not rule["method"] or rule["method"] == method) and path.startswith(
                    rule["path"]
                ):
                    rule["times"] -= 1
                    if rule["times"] <= 0:
                        self.rules.remove(rule)
                    return rule["fault"], rule["arg"]
        return None, None

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path.rstrip("/") == "/_admin/faults":
            return self.admin(Request(environ))(environ, start_response)
        if path.startswith(("/_admin", "/health")):
            return self.app(environ, start_response)
        fault, arg = self._take(method, path)
        header = environ.get("HTTP_X_SANDBOX_FAULT", "")
        if not fault and header:
            fault, __, arg = header.partition(":")
        if not fault:
            with self.lock:
                draw_error, draw_drop = self.random.random(), self.random.random()
            if draw_error < self.error_rate:
                fault, arg = "error", 503
            elif draw_drop < self.drop_rate:
                fault = "drop"
        if self.latency:
            time.sleep(self.latency)
        return self.apply(fault, arg, environ, start_response)

    def apply(self, fault, arg, environ, start_response):
        if fault == "latency":
            time.sleep(float(arg or 1))
        elif fault == "error":
            status = int(arg or 500)
            return error_response(
                status, "injected_failure", "Injected failure, please retry."
            )(environ, start_response)
        elif fault == "429":
            return error_response(
                429,
                "rate_limited",
                "Too many requests.",
                {"Retry-After": str(int(float(arg or 30)))},
            )(environ, start_response)
        elif fault == "html":
            status = int(arg or 503)
            page = (
                "<!DOCTYPE html><html><head><title>Service Unavailable</title>"
                "</head><body><h1>Maintenance</h1></body></html>"
            )
            return Response(page, status=status, mimetype="text/html")(
                environ, start_response
            )
        elif fault == "malformed":
            return Response(
                '{"status": "decid', status=200, mimetype="application/json"
            )(environ, start_response)
        elif fault in ("drop", "slow"):
            # Process the call completely, then lose or delay the answer.
            captured = {}

            def capture(status, headers, exc_info=None):
                captured["status"], captured["headers"] = status, headers
                return lambda data: None

            body = b"".join(self.app(environ, capture))
            if fault == "slow":
                time.sleep(float(arg or 1))
                start_response(captured["status"], captured["headers"])
                return [body]
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed by the client
                    sock.shutdown(socket.SHUT_RDWR)
            raise ConnectionAbortedError("answer dropped by fault injection")
        return self.app(environ, start_response)

    def admin(self, request):
        if request.method == "DELETE":
            self.clear()
            return json_response(200, {"faults": []})
        if request.method == "POST":
            try:
                data = json.loads(request.get_data(as_text=True) or "{}")
                self.add(
                    data.get("fault", ""),
                    method=data.get("method"),
                    path=data.get("path", ""),
                    times=data.get("times", 1),
                    arg=data.get("arg"),
                )
            except (ValueError, TypeError, AttributeError) as exc:
                return error_response(422, "invalid_fault", str(exc))
        with self.lock:
            return json_response(200, {"faults": list(self.rules)})


# ------------------------------------------------------------------- serving


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


class RunningServer:
    """A server running in a thread, for tests: ``url``, ``faults``, ``stop()``."""

    def __init__(self, server, thread, app, faults):
        self.server, self.thread, self.app, self.faults = server, thread, app, faults
        self.url = f"http://{server.host}:{server.port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_in_thread(app, *, host="127.0.0.1", port=0, **fault_options):
    """Serve ``app`` (wrapped in a :class:`FaultInjector`) from a thread."""
    faults = FaultInjector(app, **fault_options)
    server = make_server(
        host, port, faults, threaded=True, request_handler=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever, name=f"insurer-{server.port}", daemon=True
    )
    thread.start()
    return RunningServer(server, thread, app, faults)


def start_sandbox(data_dir=None, **options):
    """The sandbox insurer in a thread on a free localhost port (tests)."""
    fault_options = {
        key: options.pop(key)
        for key in ("latency", "error_rate", "drop_rate", "seed")
        if key in options
    }
    app = SandboxInsurer(SandboxStore(data_dir), **options)
    return start_in_thread(app, **fault_options)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--data-dir",
        default=".sandbox-data",
        help="where the state is saved ('' keeps it in memory only)",
    )
    parser.add_argument("--api-key", default="", help="accept only this API key")
    parser.add_argument("--token-ttl", type=int, default=3600)
    parser.add_argument("--pending-polls", type=int, default=1)
    parser.add_argument("--referral-polls", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--drop-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s sandbox %(message)s")
    app = SandboxInsurer(
        SandboxStore(args.data_dir),
        api_key=args.api_key,
        token_ttl=args.token_ttl,
        pending_polls=args.pending_polls,
        referral_polls=args.referral_polls,
    )
    faults = FaultInjector(
        app,
        latency=args.latency,
        error_rate=args.error_rate,
        drop_rate=args.drop_rate,
        seed=args.seed,
    )
    server = make_server(args.host, args.port, faults, threaded=True)
    _logger.info(
        "Sandbox insurer on http://%s:%s (data in %s)",
        args.host,
        server.port,
        os.path.abspath(args.data_dir) if args.data_dir else "memory only",
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        _logger.info("Sandbox insurer stopped")
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
