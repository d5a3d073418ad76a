"""Atradius (api.atradius.com; UAT api-uat.atradius.com).

Implemented from the public contract recorded in DOMAIN.md (see
``providers/README.md`` for what is taken from where):

- token ``POST /authenticate/v2/tokens`` with the ``Atradius-App-Key`` header
  and HTTP Basic client id / secret; then Bearer + app key on every call;
- buyers ``GET /credit-insurance/organisation-management/v1/buyers`` by SIREN
  (``country=FRA&uid=<SIREN>&uidType=SN``) -> ``buyerId``;
- covers ``GET|POST|PUT /credit-insurance/cover-management/v1/covers``
  (``coverType``, ``buyerId``, ``creditLimitAmount`` in multiples of 1000,
  ``currencyCode``, ``customerRefNumber``; PUT ``action`` supersede / reduce /
  cancel). 201 = decided (``coverStatus`` DECISION, ``totalDecision``,
  ``decisions[]`` with expiry and conditions), 202 = referred to an
  underwriter; changed covers by ``fromDate``; errors in ``errors[].detail``.

The non-payments (overdue and claim) API exists but its contract is not
public: those operations are unavailable.
"""

from datetime import datetime, timedelta, timezone

from .base import (
    ALPHA3,
    BuyerMatch,
    Decision,
    DecisionBatch,
    InsurerProvider,
    LimitAnswer,
)
from .errors import InsurerProtocolError, InsurerRejected

BUYERS = "/credit-insurance/organisation-management/v1/buyers"
COVERS = "/credit-insurance/cover-management/v1/covers"
AMOUNT_STEP = 1000
# Our request types -> (HTTP method, PUT action), in one place.
REQUEST_ACTIONS = {
    "new": ("POST", None),
    "increase": ("PUT", "supersede"),
    "renew": ("PUT", "supersede"),
    "reduce": ("PUT", "reduce"),
    "cancel": ("PUT", "cancel"),
}
# coverStatus -> answer status. 201 carries DECISION, 202 a referral.
COVER_STATUSES = {"DECISION": "decided", "REFERRED": "referred", "PENDING": "pending"}
NOT_PUBLIC = "the Atradius non-payments API contract is not public"


class AtradiusProvider(InsurerProvider):
    code = "atradius"
    label = "Atradius"

    # -- authentication ----------------------------------------------------

    def _fetch_token(self):
        __, body = self._call(
            "POST",
            "/authenticate/v2/tokens",
            headers={"Atradius-App-Key": self.config.api_key},
            basic_auth=(self.config.client_id, self.config.client_secret),
            authenticated=False,
            login=True,
        )
        return (
            self._field(body, "access_token", what="token answer"),
            self._field(body, "expires_in", what="token answer"),
        )

    def _auth_headers(self):
        return {
            "Authorization": f"Bearer {self._token}",
            "Atradius-App-Key": self.config.api_key,
        }

    def _scope(self, policy_number):
        return {"customerId": self.config.customer_number, "policyId": policy_number}

    def _message_from_body(self, body):
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(errors, list) and errors:
            return "; ".join(
                str(error.get("detail") or error.get("title") or error)
                for error in errors
                if isinstance(error, dict)
            )
        return super()._message_from_body(body)

    # -- buyers --------------------------------------------------------------

    def find_buyer(self, buyer):
        if buyer.country_code != "FR" or not buyer.siren:
            raise self._unavailable(
                "finding a buyer without a French SIREN",
                "only the SIREN search (uidType SN) is in the public contract",
            )
        __, body = self._call(
            "GET",
            BUYERS,
            params={
                "country": ALPHA3["FR"],
                "uid": buyer.siren,
                "uidType": "SN",
                "customerId": self.config.customer_number,
            },
        )
        buyers = self._list(body, "data", what="buyer search answer")
        if not buyers:
            return None
        return BuyerMatch(
            buyer_ref=str(self._field(buyers[0], "buyerId", what="buyer")),
            name=buyers[0].get("buyerName") or "",
            country_code="FR",
        )

    # -- covers --------------------------------------------------------------

    def request_limit(self, request):
        method, action = REQUEST_ACTIONS[request.request_type]
        if request.request_type != "cancel" and request.amount % AMOUNT_STEP:
            raise self._error(
                InsurerRejected,
                f"{self.name} grants limits in multiples of {AMOUNT_STEP}: ask for "
                f"{(request.amount // AMOUNT_STEP + 1) * AMOUNT_STEP:,.0f} rather "
                f"than {request.amount:,.2f}.",
            )
        payload = {
            "coverType": "credit-limit",
            "buyerId": request.buyer_ref,
            "creditLimitAmount": int(request.amount),
            "currencyCode": request.currency,
            "customerRefNumber": request.customer_reference,
        }
        if action:
            payload["action"] = action
        status, body = self._call(
            method,
            COVERS,
            json_body=payload,
            params=self._scope(request.policy_number),
            ok=(200, 201, 202),
        )
        if status == 202:
            return LimitAnswer(
                status="referred",
                insurer_reference=str(self._field(body, "coverId", what="cover")),
            )
        return self._answer(body, request)

    def find_limit_request(self, request):
        for cover in self._covers_of(request):
            if cover.get("customerRefNumber") == request.customer_reference:
                return self._answer(cover, request)
        return None

    def poll_limit_request(self, request, insurer_reference):
        for cover in self._covers_of(request):
            if str(cover.get("coverId")) == insurer_reference:
                return self._answer(cover, request)
        raise self._error(
            InsurerProtocolError,
            f"{self.name} no longer lists cover {insurer_reference} on buyer "
            f"{request.buyer_ref}.",
        )

    def _covers_of(self, request):
        __, body = self._call(
            "GET",
            COVERS,
            params={"buyerId": request.buyer_ref, **self._scope(request.policy_number)},
        )
        return self._list(body, "data", what="cover list")

    def fetch_decisions(self, since, limit=200):
        # Atradius filters by day: the same day is read again next time, and
        # decisions already recorded are recognised by their reference.
        started = datetime.now(timezone.utc).replace(tzinfo=None)
        from_date = (since or started - timedelta(days=3650)).date()
        __, body = self._call(
            "GET",
            COVERS,
            params={
                "fromDate": from_date.isoformat(),
                "customerId": self.config.customer_number,
            },
        )
        decisions = []
        for cover in self._list(body, "data", what="cover list"):
            if COVER_STATUSES.get(cover.get("coverStatus")) == "decided":
                decisions.append(self._decision(cover))
        return DecisionBatch(decisions=decisions, next_since=started)

    def _answer(self, cover, request=None):
        status = COVER_STATUSES.get(cover.get("coverStatus"))
        if status is None:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: unknown cover status {cover.get('coverStatus')!r}.",
            )
        return LimitAnswer(
            status=status,
            insurer_reference=str(self._field(cover, "coverId", what="cover")),
            decision=self._decision(cover) if status == "decided" else None,
        )

    def _decision(self, cover):
        """The cover's latest decision, typed in one place.

        A decision below the previous one on the same cover is a reduction
        (a withdrawal when nothing is left); otherwise it is compared with the
        amount asked for.
        """
        history = sorted(
            self._list(cover, "decisions", what="cover"),
            key=lambda d: str(d.get("decisionEffectiveDate") or ""),
        )
        if not history:
            raise self._error(
                InsurerProtocolError, f"{self.name}: a decided cover has no decision."
            )
        latest = history[-1]
        cover_id = str(self._field(cover, "coverId", what="cover"))
        amount = self._amount(
            self._field(
                cover, "totalDecision", "decisionAmtInPolicyCurrency", what="cover"
            ),
            "the decided amount",
        )
        requested = self._amount(cover.get("creditLimitAmount") or 0, "the request")
        conditions = [
            str(c.get("conditionText") or c) if isinstance(c, dict) else str(c)
            for c in latest.get("decisionConditions") or []
        ]
        previous = (
            self._amount(history[-2].get("decisionAmtInPolicyCurrency"), "a decision")
            if len(history) > 1
            else None
        )
        if previous is not None and amount < previous:
            kind = "cancelled" if not amount else "reduced"
        elif not amount:
            kind = "refused"
        elif conditions:
            kind = "conditional"
        elif amount < requested:
            kind = "partial"
        else:
            kind = "approved"
        effective = self._date(
            latest.get("decisionEffectiveDate"), "the effective date"
        )
        return Decision(
            decision_ref=f"{cover_id}/{effective.isoformat()}/{amount:.0f}",
            buyer_ref=str(self._field(cover, "buyerId", what="cover")),
            decision=kind,
            granted_amount=amount,
            requested_amount=requested,
            currency=cover.get("policyCurrencyCode") or cover.get("currencyCode") or "",
            date_effective=effective,
            date_expiry=self._date(
                latest.get("decisionExpiryDate"), "the expiry date", required=False
            ),
            conditions="\n".join(conditions),
            customer_reference=cover.get("customerRefNumber") or "",
            request_ref=cover_id,
        )

    # -- not public ------------------------------------------------------------

    def declare_overdue(self, declaration):
        raise self._unavailable("declaring an overdue", NOT_PUBLIC)

    def find_declaration(self, declaration):
        raise self._unavailable("looking a declaration up", NOT_PUBLIC)

    def fetch_declaration_status(self, insurer_reference):
        raise self._unavailable("following a declaration", NOT_PUBLIC)

    def fetch_claims(self, since, limit=200):
        raise self._unavailable("pulling claims", NOT_PUBLIC)

    def fetch_claim(self, claim_ref):
        raise self._unavailable("following a claim", NOT_PUBLIC)
