"""Atradius (production api.atradius.com; UAT api-uat.atradius.com).

Every shape below is taken from public client code that runs against the real
API (see the table in ``providers/README.md``): tsauron262/GLE
``htdocs/bimpapi/classes/apis/AtradiusAPI.php`` (GLE below) and bdantech/
jobsiteOS ``apps/worker/src/jobs/credito/atradius.ts`` (jobsiteOS below).

- token ``POST /authenticate/v2/tokens`` with ``Atradius-App-Key`` and HTTP
  Basic client id / secret, no body; answer ``{"data": {"access_token",
  "token_type", "expires_in": 1800}}`` (GLE ``connect``, jobsiteOS
  ``tokenDaResposta``);
- every call: Bearer token, ``Atradius-App-Key`` and an
  ``Atradius-Correlation-Id`` of its own (jobsiteOS ``chamar``);
- buyers ``GET .../buyers?country=FRA&uid=<SIREN>&uidType=SN`` ->
  ``data[0].buyerId`` (GLE ``getBuyerIdBySiren``); uidType ``VAT`` for a VAT
  number (jobsiteOS ``buyerPorIdentificador``);
- covers ``POST .../covers`` with ``customerId`` and ``policyId`` in the body,
  ``coverType`` credit-limit (``creditLimitAmount``, a multiple of 1000) or
  credit-check (no amount), ``customerRefNumber``; 201 decided, 202 referred;
  answer ``{"data": [{"coverId", "response"}]}``; ``PUT .../covers`` with
  ``action`` supersede / reduce / cancel answers ``{"data": [{"response"}]}``
  (GLE ``createCover``, ``updateCover``, ``setCover``; jobsiteOS
  ``pedirCobertura``);
- a cover: ``coverStatus`` DECISION / REFERRED, ``decisionCode`` DC01-DC22,
  ``historicCode``, ``totalDecision`` / ``firstAmtDecision`` /
  ``secondAmtDecision`` (``decisionAmtInPolicyCurrency`` as a string,
  ``decisionExpiryDate``, ``decisionConditions[].conditionDescription``),
  ``decisionDate``, ``effectFromDate``, ``withdrawalDate``,
  ``creditLimitApplicationAmountInPolicyCurrency``, ``uniqueIdentifiers[]``
  (GLE ``getCover``; jobsiteOS ``DecisaoBruta``, ``mapearEstagio``);
- changes ``GET .../covers?fromDate=YYYY-MM-DDTHH:MM:SS`` (GLE
  ``testRequest``), in Atradius' time, UTC+01:00 (jobsiteOS
  ``dataDaAtradius``);
- errors ``{"errors": [{"detail", "source": {"parameter"}}]}`` (GLE
  ``getError``); an address outside the contract answers 403, before the
  credentials are looked at (jobsiteOS ``ROTAS.token``).

The non-payments (overdue and claim) API exists but its contract is not
public: those operations are unavailable.
"""

import uuid
from datetime import datetime, timedelta, timezone

from .base import (
    ALPHA3,
    BuyerIdentity,
    BuyerMatch,
    Decision,
    DecisionBatch,
    InsurerProvider,
    LimitAnswer,
    insurer_time,
)
from .errors import InsurerProtocolError, InsurerRejected

TOKENS = "/authenticate/v2/tokens"
BUYERS = "/credit-insurance/organisation-management/v1/buyers"
COVERS = "/credit-insurance/cover-management/v1/covers"
AMOUNT_STEP = 1000
# Atradius gives and takes times at UTC+01:00 (jobsiteOS, "dataDaAtradius").
ATRADIUS_TZ = timezone(timedelta(hours=1))
# Decisions of the last minutes are read again: clocks differ a little, and a
# decision already recorded is recognised by its reference.
FEED_OVERLAP = timedelta(minutes=5)
# Our identifiers -> uidType, in order of preference. SN and VAT are used by
# the public clients; DB (Dun & Bradstreet) is our reading of the list
# VAT, NRN, CR, DB, FC, SN, TK.
UID_TYPES = {"siren": "SN", "vat": "VAT", "duns": "DB"}
COVER_TYPES = {"limit": "credit-limit", "check": "credit-check"}
# Our request types -> (HTTP method, PUT action) (GLE setCover, deleteCover).
REQUEST_ACTIONS = {
    "new": ("POST", None),
    "increase": ("PUT", "supersede"),
    "renew": ("PUT", "supersede"),
    "reduce": ("PUT", "reduce"),
    "cancel": ("PUT", "cancel"),
}
# coverStatus -> answer status (GLE STATUS_VALID, STATUS_EN_COURS).
COVER_STATUSES = {"DECISION": "decided", "REFERRED": "referred"}
# decisionCode -> decision type, from the "Cover Codes" appendix as jobsiteOS
# lists it. None: granted, typed by its amount and conditions (revised
# terms, a re-issue, a pre-notification of withdrawal: the cover stands
# today). DC12-DC20 are not in public material: an unknown code is a
# protocol error, never guessed.
DECISION_CODES = {
    "DC01": "approved",  # fully approved
    "DC02": "conditional",  # approved with conditions and/or comments
    "DC03": "refused",  # refused
    "DC04": "partial",  # partially approved
    "DC05": "refused",  # increase refused, current cover unchanged
    "DC06": "partial",  # partially approved, preliminary
    "DC07": "refused",  # preliminary refusal
    "DC08": "cancelled",  # withdrawal decided by Atradius
    "DC09": "reduced",  # reduction in cover
    "DC10": None,  # revised terms of cover
    "DC11": None,  # re-issue of the limit
    "DC21": None,  # pre-notification of withdrawal (see withdrawalDate)
    "DC22": "reduced",  # reduction due to partial expiry
}
# historicCode of a cover ended by Atradius or the policy (jobsiteOS).
ENDED_HISTORIC_CODES = ("WCLD", "CCLD", "PCLD")
# A search that finds no buyer is answered with this error (GLE translateError).
NO_MATCH = "No buyer match found"
# PUT answered 201/202 with this text: the change was not made (GLE).
REFUSED_ACTION = "Action has been refused."
NOT_PUBLIC = "not_public"


class AtradiusProvider(InsurerProvider):
    code = "atradius"
    label = "Atradius"
    base_url_defaults = {
        "sandbox": "https://api-uat.atradius.com",
        "production": "https://api.atradius.com",
    }

    # -- authentication ----------------------------------------------------

    def _fetch_token(self):
        __, body = self._call(
            "POST",
            TOKENS,
            headers={"Atradius-App-Key": self.config.api_key},
            basic_auth=(self.config.client_id, self.config.client_secret),
            authenticated=False,
            login=True,
        )
        return (
            self._field(body, "data", "access_token", what="token answer"),
            self._field(body, "data", "expires_in", what="token answer"),
        )

    def _auth_headers(self):
        return {
            "Authorization": f"Bearer {self._token}",
            "Atradius-App-Key": self.config.api_key,
        }

    def _call(self, method, path, *, headers=None, **kwargs):
        # One correlation id per call, kept when the call is repeated after a
        # new login: Atradius traces the call by it.
        headers = {"Atradius-Correlation-Id": str(uuid.uuid4()), **(headers or {})}
        return super()._call(method, path, headers=headers, **kwargs)

    def _login_error(self, response):
        if response.status_code == 403:
            # The gateway answers 403 to an address outside the contract
            # before it looks at the credentials.
            return self._error(
                InsurerRejected,
                f"{self.name} refused the call POST {TOKENS} (HTTP 403): this "
                "address is not open to the account; check the API base URL. "
                f"{self._error_detail(response)}",
                code="route_refused",
                status=403,
                method="POST",
                path=TOKENS,
                detail=self._error_detail(response),
            )
        return super()._login_error(response)

    def _message_from_body(self, body):
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors:
            parts = []
            for error in errors:
                if not isinstance(error, dict):
                    continue
                detail = str(error.get("detail") or error.get("title") or "")
                parameter = (error.get("source") or {}).get("parameter")
                parts.append(f"{detail} ({parameter})" if parameter else detail)
            return "; ".join(parts)
        return super()._message_from_body(body)

    # -- buyers --------------------------------------------------------------

    def find_buyer(self, buyer):
        identifier = buyer.identifier(UID_TYPES)
        if not identifier:
            raise self._unavailable("find_buyer_without_siren", "siren_only")
        kind, value = identifier
        country = buyer.country_code or (value[:2] if kind == "vat" else "FR")
        try:
            __, body = self._call(
                "GET",
                BUYERS,
                params={
                    "country": ALPHA3.get(country, country),
                    "uid": value,
                    "uidType": UID_TYPES[kind],
                },
            )
        except InsurerRejected as error:
            if error.status == 404 and NO_MATCH in error.message:
                return None  # unknown to Atradius
            raise
        buyers = self._list(body, "data", what="buyer search answer")
        if not buyers:
            return None
        return BuyerMatch(
            buyer_ref=str(self._field(buyers[0], "buyerId", what="buyer")),
            name=buyers[0].get("buyerName") or "",
            country_code=country,
        )

    # -- covers --------------------------------------------------------------

    def request_limit(self, request):
        method, action = REQUEST_ACTIONS[request.request_type]
        cover_type = COVER_TYPES[request.cover_kind]
        payload = {
            # Numbers, as the public clients send them (GLE casts to int,
            # jobsiteOS sends Number(...)); the policy id stays a string.
            "customerId": _number(self.config.customer_number),
            "policyId": request.policy_number,
            "buyerId": _number(request.buyer_ref),
            "coverType": cover_type,
            "customerRefNumber": request.customer_reference,
        }
        if cover_type == "credit-limit" and request.request_type != "cancel":
            payload.update(
                creditLimitAmount=self._checked_amount(request.amount),
                currencyCode=request.currency,
            )
        if action:
            payload["action"] = action
        status, body = self._call(method, COVERS, json_body=payload, ok=(201, 202))
        answer = self._first(body, "cover answer")
        if action and answer.get("response") == REFUSED_ACTION:
            raise self._error(
                InsurerRejected,
                f"{self.name} refused to {action} the cover of buyer "
                f"{request.buyer_ref}: {REFUSED_ACTION}",
                code="action_refused",
                reference=request.buyer_ref,
                detail=REFUSED_ACTION,
            )
        cover_id = str(answer.get("coverId") or "")
        if status == 202:
            if not cover_id:
                cover_id = str(self._find_cover(request)["coverId"])
            return LimitAnswer(status="referred", insurer_reference=cover_id)
        # 201: decided. The decision itself is read from the buyer's covers.
        cover = self._find_cover(request, cover_id)
        if cover is None:
            return LimitAnswer(status="pending", insurer_reference=cover_id)
        return self._answer(cover, request)

    def _checked_amount(self, amount):
        if amount % AMOUNT_STEP:
            asked = (amount // AMOUNT_STEP + 1) * AMOUNT_STEP
            raise self._error(
                InsurerRejected,
                f"{self.name} grants limits in multiples of {AMOUNT_STEP}: ask for "
                f"{asked:,.0f} rather than {amount:,.2f}.",
                code="amount_step",
                step=f"{AMOUNT_STEP:,}",
                suggested=f"{asked:,.0f}",
                amount=f"{amount:,.2f}",
            )
        return int(amount)

    def _first(self, body, what):
        items = self._list(body, "data", what=what)
        if not items or not isinstance(items[0], dict):
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: the {what} has no item in data.",
                code="missing_field",
                field="data[0]",
            )
        return items[0]

    def find_limit_request(self, request):
        cover = self._find_cover(request, reference=request.customer_reference)
        return self._answer(cover, request) if cover else None

    def poll_limit_request(self, request, insurer_reference):
        cover = self._find_cover(request, insurer_reference)
        if cover is None:
            raise self._error(
                InsurerProtocolError,
                f"{self.name} no longer lists cover {insurer_reference} on buyer "
                f"{request.buyer_ref}.",
                code="cover_not_listed",
                reference=insurer_reference,
                buyer=request.buyer_ref,
            )
        return self._answer(cover, request)

    def _find_cover(self, request, cover_id="", reference=""):
        """The buyer's cover with this id (or our reference, or of the
        request's type); None if Atradius does not list it."""
        __, body = self._call(
            "GET",
            COVERS,
            params={
                "customerId": self.config.customer_number,
                "policyId": request.policy_number,
                "buyerId": request.buyer_ref,
            },
        )
        covers = self._list(body, "data", what="cover list")
        for cover in covers:
            if cover_id and str(cover.get("coverId")) == cover_id:
                return cover
            if reference and cover.get("customerRefNumber") == reference:
                return cover
        if not (cover_id or reference):
            cover_type = COVER_TYPES[request.cover_kind]
            typed = [c for c in covers if c.get("coverType") == cover_type]
            return typed[-1] if typed else None
        return None

    def fetch_decisions(self, since, limit=200):
        started = datetime.now(timezone.utc).replace(tzinfo=None)
        params = {"customerId": self.config.customer_number}
        if since:
            params["fromDate"] = insurer_time(since - FEED_OVERLAP, ATRADIUS_TZ)
        __, body = self._call("GET", COVERS, params=params)
        decisions = [
            self._decision(cover)
            for cover in self._list(body, "data", what="cover list")
            if COVER_STATUSES.get(cover.get("coverStatus")) == "decided"
        ]
        decisions.sort(key=lambda d: d.date_effective)
        return DecisionBatch(decisions=decisions, next_since=started)

    def _answer(self, cover, request=None):
        status = COVER_STATUSES.get(cover.get("coverStatus"))
        if status is None:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: unknown cover status {cover.get('coverStatus')!r}.",
                code="unknown_code",
                field="coverStatus",
                value=str(cover.get("coverStatus")),
            )
        return LimitAnswer(
            status=status,
            insurer_reference=str(self._field(cover, "coverId", what="cover")),
            decision=self._decision(cover, request) if status == "decided" else None,
        )

    def _decision(self, cover, request=None):
        """A decided cover as one decision, typed in one place.

        A withdrawal (``withdrawalDate``, announced or decided) is a
        cancellation from that date; otherwise the decisionCode types it,
        and a code that leaves it open is typed by amount and conditions.
        """
        cover_id = str(self._field(cover, "coverId", what="cover"))
        code = str(cover.get("decisionCode") or "")
        if code not in DECISION_CODES:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: unknown decisionCode {code!r} on cover {cover_id}.",
                code="unknown_code",
                field="decisionCode",
                value=code,
            )
        total = cover.get("totalDecision") or {}
        parts = [
            total,
            cover.get("firstAmtDecision") or {},
            cover.get("secondAmtDecision") or {},
        ]
        withdrawal = self._date(cover.get("withdrawalDate"), "withdrawalDate", False)
        ended = withdrawal or cover.get("historicCode") in ENDED_HISTORIC_CODES
        amount = self._amount(
            total.get("decisionAmtInPolicyCurrency"),
            "totalDecision.decisionAmtInPolicyCurrency",
            required=not ended and DECISION_CODES[code] not in ("refused",),
        )
        requested = self._amount(
            cover.get("creditLimitApplicationAmountInPolicyCurrency"),
            "creditLimitApplicationAmountInPolicyCurrency",
            required=False,
        )
        if requested is None:
            requested = request.amount if request else 0.0
        conditions = []
        for part in parts:
            for condition in part.get("decisionConditions") or []:
                text = (
                    condition.get("conditionDescription")
                    or condition.get("conditionCategoryDescription")
                    if isinstance(condition, dict)
                    else condition
                )
                if text and str(text).strip() not in conditions:
                    conditions.append(str(text).strip())
        expiries = [
            self._date(part.get("decisionExpiryDate"), "decisionExpiryDate", False)
            for part in parts
        ]
        expiry = min((day for day in expiries if day), default=None)
        kind = DECISION_CODES[code]
        if ended:
            kind = "cancelled"
        elif kind is None:
            if not amount:
                kind = "refused"
            elif conditions:
                kind = "conditional"
            elif requested and amount < requested:
                kind = "partial"
            else:
                kind = "approved"
        effective = withdrawal or self._date(
            cover.get("effectFromDate") or cover.get("decisionDate"),
            "effectFromDate",
        )
        if kind in ("cancelled", "refused"):
            amount = 0.0
        return Decision(
            decision_ref=f"{cover_id}/{code}/{effective.isoformat()}/{amount:.0f}",
            buyer_ref=str(self._field(cover, "buyerId", what="cover")),
            decision=kind,
            granted_amount=amount,
            requested_amount=requested,
            currency=cover.get("policyCurrencyCode") or "",
            date_effective=effective,
            date_expiry=expiry,
            conditions="\n".join(conditions),
            policy_number=str(cover.get("policyId") or ""),
            customer_reference=cover.get("customerRefNumber") or "",
            request_ref=cover_id,
            buyer=self._buyer_of(cover),
        )

    @staticmethod
    def _buyer_of(cover):
        """The buyer's identifiers as the cover gives them
        (``uniqueIdentifiers[]``: ``{uid, uidType}``, jobsiteOS)."""
        values = {}
        for item in cover.get("uniqueIdentifiers") or []:
            if isinstance(item, dict):
                kind = {"SN": "siren", "VAT": "vat"}.get(item.get("uidType"))
                if kind and item.get("uid"):
                    values.setdefault(kind, str(item["uid"]))
        return BuyerIdentity(
            name=cover.get("buyerName") or "",
            country_code="FR" if values.get("siren") else "",
            **values,
        )

    # -- not public ------------------------------------------------------------

    def declare_overdue(self, declaration):
        raise self._unavailable("declare_overdue", NOT_PUBLIC)

    def find_declaration(self, declaration):
        raise self._unavailable("find_declaration", NOT_PUBLIC)

    def fetch_declaration_status(self, insurer_reference):
        raise self._unavailable("follow_declaration", NOT_PUBLIC)

    def update_declaration(self, insurer_reference, declaration):
        raise self._unavailable("update_declaration", NOT_PUBLIC)

    def fetch_claims(self, since, limit=200):
        raise self._unavailable("pull_claims", NOT_PUBLIC)

    def fetch_claim(self, claim_ref):
        raise self._unavailable("follow_claim", NOT_PUBLIC)


def _number(value):
    """Atradius ids are numbers; anything else is sent as it is."""
    return int(value) if str(value).isdigit() else value
