"""The adapter contract between Odoo and one insurer's API.

The Odoo side decides *what* to send and records *what happened*; a provider
only knows *how* to talk to one insurer. It takes and returns the small
dataclasses below, maps every failure to one of the errors of :mod:`.errors`,
puts a timeout on every call and never lets a credential reach a log line or
an error message.

Vocabulary shared by all providers (each provider maps its insurer's codes to
it in one place):

- request types (UN/EDIFACT 4505): ``new``, ``increase``, ``reduce``,
  ``cancel``, ``renew``;
- answer statuses: ``decided`` (now), ``pending`` (a job to poll),
  ``referred`` (to an underwriter, answered later);
- decision types (UN/EDIFACT 4507), the values of ``credit.insurance.limit``:
  ``approved``, ``partial``, ``conditional``, ``refused``, ``reduced``,
  ``cancelled`` (a withdrawal is a cancellation by the insurer);
- overdue categories: ``overdue``, ``extension``, ``rescheduling``;
- declaration statuses: ``received``, ``in_collection``, ``accepted``,
  ``refused``, ``settled``, ``claim_opened``, ``closed``;
- claim statuses: ``open``, ``indemnified``, ``rejected``, ``closed``.
"""

import json
import logging
import re
import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests
from stdnum import vatin
from stdnum.fr import siren as fr_siren
from stdnum.fr import siret as fr_siret
from urllib3.exceptions import NewConnectionError

from .errors import (
    DeliveryUnconfirmed,
    InsurerAuthError,
    InsurerProtocolError,
    InsurerRejected,
    InsurerTemporaryError,
    ProviderOperationUnavailable,
)

_logger = logging.getLogger(__name__)

REQUEST_TYPES = ("new", "increase", "reduce", "cancel", "renew")
ANSWER_STATUSES = ("decided", "pending", "referred")
DECISION_TYPES = (
    "approved",
    "partial",
    "conditional",
    "refused",
    "reduced",
    "cancelled",
)
OVERDUE_CATEGORIES = ("overdue", "extension", "rescheduling")
DECLARATION_STATUSES = (
    "received",
    "in_collection",
    "accepted",
    "refused",
    "settled",
    "claim_opened",
    "closed",
)
CLAIM_STATUSES = ("open", "indemnified", "rejected", "closed")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# ISO 3166 alpha-2 -> alpha-3, for insurers that want the latter.
ALPHA3 = {
    "AT": "AUT", "BE": "BEL", "BG": "BGR", "CH": "CHE", "CY": "CYP", "CZ": "CZE",
    "DE": "DEU", "DK": "DNK", "EE": "EST", "ES": "ESP", "FI": "FIN", "FR": "FRA",
    "GB": "GBR", "GR": "GRC", "HR": "HRV", "HU": "HUN", "IE": "IRL", "IT": "ITA",
    "LT": "LTU", "LU": "LUX", "LV": "LVA", "MA": "MAR", "MC": "MCO", "MT": "MLT",
    "NL": "NLD", "NO": "NOR", "PL": "POL", "PT": "PRT", "RO": "ROU", "SE": "SWE",
    "SI": "SVN", "SK": "SVK", "TN": "TUN", "TR": "TUR", "US": "USA", "CA": "CAN",
}  # fmt: skip
DEFAULT_TIMEOUT = 30.0


# ---------------------------------------------------------------- dataclasses


@dataclass(frozen=True, kw_only=True)
class ProviderConfig:
    """How to reach one insurer account. Secrets are kept out of ``repr``.

    ``api_urls`` gives the base URL of each of the insurer's APIs when they
    do not share one (Allianz Trade: ``{"idp": ..., "search": ...,
    "riskinfo": ...}``); the others use ``base_url``.
    """

    base_url: str
    label: str = ""
    api_urls: dict = field(default_factory=dict)
    api_key: str = field(default="", repr=False)
    client_id: str = field(default="", repr=False)
    client_secret: str = field(default="", repr=False)
    login: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    customer_number: str = ""
    # The insurer's policies as (policy number, extension at the insurer).
    policies: tuple = ()
    timeout: float = DEFAULT_TIMEOUT

    def secrets(self):
        return tuple(
            value
            for value in (
                self.api_key,
                self.client_id,
                self.client_secret,
                self.login,
                self.password,
            )
            if value
        )


@dataclass(frozen=True, kw_only=True)
class BuyerIdentity:
    """What we know of a buyer to find it at the insurer.

    Only identifiers that pass their check digits are kept (``build``):
    a mistyped SIREN or VAT number is never sent as one, it is listed in
    ``invalid`` so that the user is told which one to correct.
    """

    name: str = ""
    country_code: str = ""  # ISO 3166-1 alpha-2
    siren: str = ""
    siret: str = ""
    vat: str = ""
    duns: str = ""
    street: str = ""
    zip: str = ""
    city: str = ""
    invalid: tuple = ()  # the identifiers given that failed their check

    @classmethod
    def build(cls, *, vat="", registry="", country_code="", **values):
        """Choose the identifiers from a partner's VAT number and registry.

        ``registry`` is the SIRET (14 digits) or SIREN (9 digits) of a French
        company; a French VAT number is ``FR`` + 2 check characters + the
        SIREN. Each is checked (python-stdnum: the Luhn key of SIREN and
        SIRET, the key of the VAT number); a SIRET whose key fails still
        gives its SIREN when that one passes.
        """
        country_code = (country_code or "").upper()
        invalid = []
        vat = vatin.compact(vat or "") if vat else ""
        if vat and not vatin.is_valid(vat):
            invalid.append(vat)
            vat = ""
        digits = re.sub(r"\D", "", registry or "")
        siren = siret = ""
        if digits and country_code in ("", "FR"):
            if len(digits) == 14 and fr_siret.is_valid(digits):
                siret, siren = digits, digits[:9]
            elif len(digits) in (9, 14) and fr_siren.is_valid(digits[:9]):
                siren = digits[:9]
            else:
                invalid.append(registry.strip())
        if not siren and vat.startswith("FR") and fr_siren.is_valid(vat[4:]):
            siren = vat[4:]
        if siren and not country_code:
            country_code = "FR"
        return cls(
            vat=vat,
            siren=siren,
            siret=siret,
            country_code=country_code,
            invalid=tuple(invalid),
            **values,
        )

    def identifier(self, kinds):
        """The first of ``kinds`` ("siren", "siret", "vat", "duns") this buyer
        has, as ``(kind, value)``; ``None`` when it has none of them."""
        for kind in kinds:
            if getattr(self, kind):
                return kind, getattr(self, kind)
        return None


@dataclass(frozen=True, kw_only=True)
class BuyerMatch:
    """The insurer's buyer reference (companyId, buyerId, EasyNumber...)."""

    buyer_ref: str
    name: str = ""
    country_code: str = ""


@dataclass(frozen=True, kw_only=True)
class LimitRequest:
    """A limit request as sent; ``customer_reference`` is our idempotency key.

    ``cover_kind`` is ``"limit"`` (a named limit of ``amount``) or ``"check"``
    (a check of the buyer within the policy's discretionary limit: Atradius
    credit-check, Allianz Trade GradeCover; no amount is asked).
    ``policy_extension`` is the policy's extension at the insurer (Allianz
    Trade ``extensionId``, e.g. DCL or CAP). ``created_at`` (naive UTC) is
    when the request was made in Odoo: nothing the insurer received for it
    is older.
    """

    customer_reference: str
    request_type: str  # one of REQUEST_TYPES
    amount: float
    currency: str
    buyer_ref: str
    buyer: BuyerIdentity = field(default_factory=BuyerIdentity)
    policy_number: str = ""
    policy_extension: str = ""
    cover_kind: str = "limit"
    reason: str = ""
    urgent: bool = False
    created_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Decision:
    """One insurer decision on one buyer.

    ``decision_ref`` identifies it at the insurer: the same decision pulled
    twice has the same reference, so it is recorded once.
    """

    decision_ref: str
    buyer_ref: str
    decision: str  # one of DECISION_TYPES
    granted_amount: float
    currency: str
    date_effective: date
    requested_amount: float = 0.0
    date_expiry: date | None = None
    conditions: str = ""
    coverage_pct: float | None = None
    policy_number: str = ""
    customer_reference: str = ""
    request_ref: str = ""
    buyer: BuyerIdentity | None = None


@dataclass(frozen=True, kw_only=True)
class LimitAnswer:
    """Where a limit request stands at the insurer.

    ``reconciled`` is set when the request was found at the insurer by its
    customer reference instead of being sent (an earlier attempt got there).
    """

    status: str  # one of ANSWER_STATUSES
    insurer_reference: str
    decision: Decision | None = None
    message: str = ""
    reconciled: bool = False


@dataclass(frozen=True, kw_only=True)
class DecisionBatch:
    """Decisions changed since a date, oldest first.

    Pass ``next_since`` to the next call; ``has_more`` says a next page is
    already waiting (the feed was cut to bound the batch).
    """

    decisions: list
    next_since: datetime
    has_more: bool = False


@dataclass(frozen=True, kw_only=True)
class OverdueInvoice:
    """One invoice of a declaration.

    ``amount`` is its open amount in the declaration's currency;
    ``invoice_amount`` the same in the invoice's own currency.
    """

    reference: str
    amount: float
    due_date: date
    invoice_date: date | None = None
    invoice_amount: float = 0.0
    invoice_currency: str = ""


@dataclass(frozen=True, kw_only=True)
class OverdueDeclaration:
    """An overdue (or extension / rescheduling) declared to the insurer.

    A declaration covers one buyer; ``invoices`` lists its invoices (empty for
    a single invoice described by ``invoice_reference``). ``amount`` is the
    total open amount and ``due_date`` the earliest due date.
    """

    idempotency_key: str
    category: str  # one of OVERDUE_CATEGORIES
    buyer_ref: str
    invoice_reference: str
    amount: float
    currency: str
    due_date: date
    buyer: BuyerIdentity = field(default_factory=BuyerIdentity)
    policy_number: str = ""
    invoice_date: date | None = None
    requested_due_date: date | None = None
    comment: str = ""
    invoices: tuple = ()  # of OverdueInvoice


@dataclass(frozen=True, kw_only=True)
class DeclarationAnswer:
    """Where a declaration stands at the insurer."""

    insurer_reference: str
    status: str  # one of DECLARATION_STATUSES
    claim_ref: str = ""
    message: str = ""
    reconciled: bool = False


@dataclass(frozen=True, kw_only=True)
class ClaimStatus:
    """A claim (sinistre) at the insurer and its indemnity."""

    claim_ref: str
    status: str  # one of CLAIM_STATUSES
    declaration_ref: str = ""
    buyer_ref: str = ""
    claimed_amount: float = 0.0
    indemnity_amount: float = 0.0
    currency: str = ""
    date_opened: date | None = None
    date_paid: date | None = None
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class ClaimBatch:
    claims: list
    next_since: datetime
    has_more: bool = False


@dataclass(frozen=True, kw_only=True)
class TurnoverDeclaration:
    """The insured turnover of one period, by buyer country.

    ``idempotency_key`` names the declaration at the insurer: sending it again
    returns the one already received instead of declaring twice.
    """

    idempotency_key: str
    policy_number: str
    date_from: date
    date_to: date
    currency: str
    by_country: dict  # ISO country code ("" when unknown) -> amount
    premium: float = 0.0


@dataclass(frozen=True, kw_only=True)
class TurnoverAnswer:
    insurer_reference: str
    duplicate: bool = False  # the insurer had it already from an earlier attempt


# ------------------------------------------------------------------- contract


class InsurerProvider:
    """One insurer's API behind the contract. Subclass per insurer.

    Instances are cheap: build one per batch with the batch's
    ``requests.Session``; the provider keeps its token for the batch and logs
    in again when it expires. A refused login is remembered for the batch (and
    its threads): it is never tried again by the same batch.
    """

    code = ""  # the value of credit.insurance.insurer.provider
    label = ""  # the insurer's name in messages
    connected = True  # False when there is no API (manual entry)
    token_margin = 60  # renew a token expiring in less than this (seconds)
    # Operations whose payloads follow our reading of a contract that is not
    # public: the insurer form says so until a user confirmed one exchange.
    unconfirmed_operations = ()
    # The insurer's APIs when they have a base URL each, with their defaults
    # per environment: {"sandbox": {api: url}, "production": {api: url}}.
    api_url_defaults = {}
    # Where the insurer's API lives by default, per environment.
    base_url_defaults = {}
    # Failed logins after which the insurer locks the account (0: none known).
    lockout_after = 0
    # Whether fetch_decisions gives the insurer's decision changes.
    has_decision_feed = True

    def __init__(self, config, session=None):
        self.config = config
        self.session = session if session is not None else requests.Session()
        self._token = None
        self._token_expires = 0.0
        self._shared = {"login_refusal": None}

    @property
    def name(self):
        return self.config.label or self.label

    def copy_for_thread(self, session):
        """A provider for another thread: its own session, the same login.

        ``requests.Session`` is not thread-safe; the token is shared so that
        concurrent calls do not each log in, and so is a refused login, so
        that no thread tries it again.
        """
        clone = type(self)(self.config, session)
        clone._token, clone._token_expires = self._token, self._token_expires
        clone._shared = self._shared
        return clone

    # -- operations (override what the insurer's public contract allows) ----

    def authenticate(self):
        """Log in now (the other operations log in by themselves)."""
        self._token = None
        self._ensure_token()

    def ensure_authenticated(self):
        """Log in unless the current token is still good."""
        self._ensure_token()

    def find_buyer(self, buyer):
        """Find a buyer from its legal identifiers.

        :param BuyerIdentity buyer:
        :return: :class:`BuyerMatch`, or ``None`` when the insurer knows no
            such company.
        """
        raise self._unavailable("find_buyer", "not_implemented")

    def request_limit(self, request):
        """Send a limit request (new / increase / reduce / cancel / renew).

        :param LimitRequest request:
        :rtype: LimitAnswer
        """
        raise self._unavailable("request_limit", "not_implemented")

    def find_limit_request(self, request):
        """Look a request up at the insurer by its customer reference.

        :param LimitRequest request:
        :return: :class:`LimitAnswer`, or ``None`` when the insurer never
            received it.
        """
        raise self._unavailable("find_request", "not_implemented")

    def poll_limit_request(self, request, insurer_reference):
        """Where a pending or referred request stands now.

        :param LimitRequest request: the request as it was sent.
        :param str insurer_reference: from the answer to the request.
        :rtype: LimitAnswer
        """
        raise self._unavailable("follow_request", "not_implemented")

    def fetch_decisions(self, since, limit=200):
        """Decisions changed since ``since`` (UTC datetime, or None: all).

        :rtype: DecisionBatch
        """
        raise self._unavailable("pull_decisions", "not_implemented")

    def declare_overdue(self, declaration):
        """Declare an overdue (or ask for an extension / a rescheduling).

        :param OverdueDeclaration declaration:
        :rtype: DeclarationAnswer
        """
        raise self._unavailable("declare_overdue", "not_implemented")

    def find_declaration(self, declaration):
        """Look a declaration up by its idempotency key (None: never received).

        :param OverdueDeclaration declaration:
        """
        raise self._unavailable("find_declaration", "not_implemented")

    def fetch_declaration_status(self, insurer_reference):
        """:rtype: DeclarationAnswer"""
        raise self._unavailable("follow_declaration", "not_implemented")

    def update_declaration(self, insurer_reference, declaration):
        """Report a declaration's invoices and open amounts as they are now
        (payments, credit notes, later overdues of the buyer, disputes).

        Sends the whole current state, so sending it again is harmless.

        :param str insurer_reference: from the answer to the declaration.
        :param OverdueDeclaration declaration: the declaration as it is now.
        :rtype: DeclarationAnswer
        """
        raise self._unavailable("update_declaration", "not_implemented")

    def fetch_claims(self, since, limit=200):
        """Claims changed since ``since``. :rtype: ClaimBatch"""
        raise self._unavailable("pull_claims", "not_implemented")

    def fetch_claim(self, claim_ref):
        """:rtype: ClaimStatus"""
        raise self._unavailable("follow_claim", "not_implemented")

    def declare_turnover(self, declaration):
        """Declare a period's insured turnover; idempotent on its key.

        :param TurnoverDeclaration declaration:
        :rtype: TurnoverAnswer
        """
        raise self._unavailable("declare_turnover", "not_implemented")

    # -- exactly once --------------------------------------------------------

    def submit_limit_request(self, request, *, may_have_been_sent):
        """Send ``request`` unless an earlier attempt already reached the insurer.

        :param bool may_have_been_sent: an earlier attempt was started and its
            outcome is unknown (timeout, dropped answer, crash before it was
            recorded). The request is then looked up by its customer reference
            first and only sent if the insurer does not have it.
        :raises DeliveryUnconfirmed: when the insurer offers no lookup: a
            person must check its portal; nothing is sent.
        """
        if may_have_been_sent:
            try:
                found = self.find_limit_request(request)
            except ProviderOperationUnavailable as exc:
                raise self._error(
                    DeliveryUnconfirmed,
                    f"{self.name} may already have received request "
                    f"{request.customer_reference} (an earlier attempt got no "
                    "answer) and cannot look it up by our reference. Check the "
                    "insurer's portal: record its answer if the request is "
                    "there, otherwise send it again.",
                    code="request_unconfirmed",
                    reference=request.customer_reference,
                ) from exc
            if found is not None:
                return replace(found, reconciled=True)
        return self.request_limit(request)

    def submit_declaration(self, declaration, *, may_have_been_sent):
        """Same as :meth:`submit_limit_request` for an overdue declaration."""
        if may_have_been_sent:
            try:
                found = self.find_declaration(declaration)
            except ProviderOperationUnavailable as exc:
                raise self._error(
                    DeliveryUnconfirmed,
                    f"{self.name} may already have received declaration "
                    f"{declaration.idempotency_key} and cannot look it up by "
                    "our reference. Check the insurer's portal before declaring "
                    "it again.",
                    code="declaration_unconfirmed",
                    reference=declaration.idempotency_key,
                ) from exc
            if found is not None:
                return replace(found, reconciled=True)
        return self.declare_overdue(declaration)

    # -- errors --------------------------------------------------------------

    def _unavailable(self, operation, reason):
        """:param operation: a code of errors.OPERATIONS; reason: of REASONS."""
        return ProviderOperationUnavailable(self.name, operation, reason)

    def _redact(self, text):
        text = str(text or "")
        for secret in (*self.config.secrets(), self._token or ""):
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        return re.sub(r"(?i)(bearer|basic)\s+[\w.~+/=-]+", r"\1 ***", text)

    def _error(self, cls, message, *, code=None, status=None, **kwargs):
        """An error of class ``cls``; keyword arguments that are not the
        error's own (retry_after, may_have_been_received) are the params of
        its sentence."""
        own = {
            key: kwargs.pop(key)
            for key in ("retry_after", "may_have_been_received")
            if key in kwargs
        }
        params = {key: self._redact(value) for key, value in kwargs.items()}
        return cls(
            self._redact(message),
            provider=self.name,
            code=code,
            status=status,
            params=params,
            **own,
        )

    # -- authentication ------------------------------------------------------

    def _fetch_token(self):
        """Log in; return ``(token, lifetime in seconds)``. Per insurer."""
        raise NotImplementedError

    def _auth_headers(self):
        return {"Authorization": f"Bearer {self._token}"}

    def _ensure_token(self):
        """Have a valid token; return True when it was just obtained.

        A login refused once in this batch is not tried again: the same
        error is raised (insurers lock accounts after a few failed logins).
        """
        if self._shared["login_refusal"] is not None:
            raise self._shared["login_refusal"]
        if self._token and time.monotonic() < self._token_expires - self.token_margin:
            return False
        self._token = None
        try:
            token, lifetime = self._fetch_token()
        except (InsurerAuthError, InsurerRejected) as error:
            self._shared["login_refusal"] = error
            raise
        if not token:
            raise self._error(
                InsurerProtocolError,
                f"{self.name} gave no token when logging in.",
                code="no_token",
            )
        self._token = token
        self._token_expires = time.monotonic() + float(lifetime or 0)
        return True

    # -- HTTP ----------------------------------------------------------------

    def _base(self, api=None):
        if api:
            url = self.config.api_urls.get(api)
            if not url:
                raise self._error(
                    InsurerProtocolError,
                    f"{self.name}: no URL is set for its {api} API.",
                    code="missing_field",
                    field=f"{api} API URL",
                )
            return url.rstrip("/")
        return self.config.base_url.rstrip("/")

    def _url(self, path, api=None):
        if not path.startswith(("http://", "https://")):
            return self._base(api) + path
        # A URL given by the insurer (e.g. a job's resourceUrl) gets our token:
        # only ever follow it on one of the insurer's own hosts.
        hosts = {
            urlsplit(url)[:2]
            for url in (self.config.base_url, *self.config.api_urls.values())
            if url
        }
        if urlsplit(path)[:2] not in hosts:
            host = urlsplit(path).netloc
            raise self._error(
                InsurerProtocolError,
                f"{self.name} pointed to another site ({host}); not followed.",
                code="foreign_host",
                host=host,
            )
        return path

    def _call(
        self,
        method,
        path,
        *,
        api=None,
        json_body=None,
        params=None,
        headers=None,
        authenticated=True,
        basic_auth=None,
        ok=(200, 201, 202),
        login=False,
    ):
        """One HTTP exchange; return ``(status, parsed JSON body)``.

        Logs in first when ``authenticated``, and once more if the insurer
        says the token is no longer valid (a 401 means the call was not
        processed, so repeating it is safe).
        """
        url = self._url(path, api)
        for attempt in (1, 2):
            all_headers = {"Accept": "application/json", **(headers or {})}
            fresh = False
            if authenticated:
                fresh = self._ensure_token()
                all_headers.update(self._auth_headers())
            response = self._send(
                method, url, path, json_body, params, all_headers, basic_auth
            )
            if (
                response.status_code == 401
                and authenticated
                and attempt == 1
                and not fresh
            ):
                _logger.info("%s: token refused, logging in again", self.name)
                self._token = None
                continue
            return self._handle(method, path, response, ok, login)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method, url, path, json_body, params, headers, basic_auth):
        write = method in WRITE_METHODS
        timeout = self.config.timeout
        call = {"method": method, "path": path}
        try:
            response = self.session.request(
                method,
                url,
                json=json_body,
                params=params,
                headers=headers,
                auth=basic_auth,
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise self._error(
                InsurerTemporaryError,
                f"{self.name} did not answer within {timeout:g} s ({method} {path}).",
                code="timeout",
                seconds=f"{timeout:g}",
                may_have_been_received=write
                and not isinstance(exc, requests.ConnectTimeout),
                **call,
            ) from None
        except requests.ConnectionError as exc:
            never_connected = self._never_connected(exc)
            raise self._error(
                InsurerTemporaryError,
                f"{self.name} could not be reached ({method} {path})."
                if never_connected
                else f"{self.name} closed the connection without answering "
                f"({method} {path}).",
                code="unreachable" if never_connected else "connection_closed",
                may_have_been_received=write and not never_connected,
                **call,
            ) from None
        except requests.RequestException as exc:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: the call {method} {path} failed ({type(exc).__name__}).",
                code="call_failed",
                error=type(exc).__name__,
                may_have_been_received=write,
                **call,
            ) from None
        _logger.debug("%s %s %s -> %s", self.name, method, path, response.status_code)
        return response

    @staticmethod
    def _never_connected(exc):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)
        return isinstance(reason, NewConnectionError)

    def _handle(self, method, path, response, ok, login):
        status = response.status_code
        write = method in WRITE_METHODS
        call = {"method": method, "path": path}
        if status == 429:
            retry_after = self._retry_after(response)
            raise self._error(
                InsurerTemporaryError,
                f"{self.name} limits the rate of calls (HTTP 429)"
                + (f"; retry after {retry_after:g} s." if retry_after else "."),
                code="rate_limited",
                retry_after=retry_after,
                seconds=f"{retry_after:g}" if retry_after else "?",
                status=status,
                **call,
            )
        if login and 400 <= status < 500:
            raise self._login_error(response)
        if status == 401:
            raise self._error(
                InsurerAuthError,
                f"{self.name} refused the credentials (HTTP {status}): "
                f"{self._error_detail(response)}",
                code="auth_refused",
                status=status,
                detail=self._error_detail(response),
            )
        if status == 403:
            # The login worked: the address or the operation is outside what
            # the account may call (Atradius answers 403 to an unknown route).
            raise self._error(
                InsurerRejected,
                f"{self.name} refused the call {method} {path} (HTTP 403): this "
                "address is not open to the account; the credentials were "
                f"accepted. {self._error_detail(response)}",
                code="route_refused",
                status=status,
                detail=self._error_detail(response),
                **call,
            )
        if status >= 500:
            raise self._error(
                InsurerTemporaryError,
                f"{self.name} failed to process {method} {path} (HTTP {status}): "
                f"{self._error_detail(response)}",
                code="server_error",
                status=status,
                detail=self._error_detail(response),
                may_have_been_received=write,
                **call,
            )
        if 400 <= status < 500:
            raise self._error(
                InsurerRejected,
                f"{self.name} refused the call (HTTP {status}): "
                f"{self._error_detail(response)}",
                code="rejected",
                status=status,
                detail=self._error_detail(response),
                **call,
            )
        # An HTML page or broken JSON says more than its status.
        body = (
            None
            if status == 204 or not response.content
            else self._json(response, method, path)
        )
        if status not in ok:
            raise self._error(
                InsurerProtocolError,
                f"{self.name} answered {method} {path} with an unexpected HTTP "
                f"{status}.",
                code="unexpected_status",
                status=status,
                may_have_been_received=write,
                **call,
            )
        return status, body

    def _login_error(self, response):
        """The error for a refused login (4xx on the login call)."""
        status = response.status_code
        return self._error(
            InsurerAuthError,
            f"{self.name} refused the credentials (HTTP {status}): "
            f"{self._error_detail(response)}",
            code="auth_refused",
            status=status,
            detail=self._error_detail(response),
        )

    def _json(self, response, method, path):
        text = response.text
        try:
            return json.loads(text)
        except ValueError:
            title = _html_title(text)
        what = (
            f"an HTML page{f' ({title})' if title else ''}"
            if title is not None
            else "malformed JSON"
        )
        raise self._error(
            InsurerProtocolError,
            f"{self.name} answered {method} {path} (HTTP {response.status_code}) "
            f"with {what} instead of JSON.",
            code="html_page" if title is not None else "malformed_json",
            title=title or "",
            status=response.status_code,
            may_have_been_received=method in WRITE_METHODS,
            method=method,
            path=path,
        )

    def _error_detail(self, response):
        """The insurer's own message from an error answer (per insurer)."""
        text = response.text or ""
        try:
            body = json.loads(text)
        except ValueError:
            title = _html_title(text)
            if title is not None:
                return f"an HTML error page{f' ({title})' if title else ''}"
            return _shorten(text) or "no details"
        return _shorten(self._message_from_body(body)) or "no details"

    def _message_from_body(self, body):
        if isinstance(body, dict):
            for key in ("message", "detail", "error_description", "title", "error"):
                value = body.get(key)
                if isinstance(value, str) and value:
                    return value
                if isinstance(value, dict):
                    return self._message_from_body(value)
        return json.dumps(body)[:300]

    @staticmethod
    def _retry_after(response):
        value = (response.headers.get("Retry-After") or "").strip()
        if not value:
            return None
        if value.isdigit():
            return float(value)
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)

    # -- reading answers defensively ----------------------------------------

    def _field(self, data, *keys, required=True, what="answer"):
        """``data[k1][k2]...``, or a protocol error naming the missing field."""
        value = data
        for key in keys:
            if isinstance(value, dict) and value.get(key) is not None:
                value = value[key]
            elif required:
                name = ".".join(str(k) for k in keys)
                raise self._error(
                    InsurerProtocolError,
                    f"{self.name}: the {what} lacks {name}.",
                    code="missing_field",
                    field=name,
                )
            else:
                return None
        return value

    def _list(self, data, *keys, what="answer"):
        value = self._field(data, *keys, what=what) if keys else data
        if not isinstance(value, list):
            name = ".".join(map(str, keys)) or "the body"
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: in the {what}, {name} is not a list.",
                code="not_a_list",
                field=name,
            )
        return value

    def _amount(self, value, what, required=True):
        """An amount; insurers send numbers or strings ("50000", "")."""
        if value in (None, ""):
            if not required:
                return None
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: the answer lacks {what}.",
                code="missing_field",
                field=what,
            )
        try:
            return float(value)
        except (TypeError, ValueError):
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: {what} is not an amount.",
                code="bad_amount",
                field=what,
                value=str(value)[:40],
            ) from None

    def _date(self, value, what, required=True):
        if not value:
            if required:
                raise self._error(
                    InsurerProtocolError,
                    f"{self.name}: the answer lacks {what}.",
                    code="missing_field",
                    field=what,
                )
            return None
        try:
            return date.fromisoformat(str(value)[:10])
        except ValueError:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: {what} is not a date.",
                code="bad_date",
                field=what,
                value=str(value)[:40],
            ) from None

    def _datetime(self, value, what, tz=timezone.utc):
        """A date and time as naive UTC; one without offset is in ``tz``."""
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: {what} is not a date and time.",
                code="bad_date",
                field=what,
                value=str(value)[:40],
            ) from None
        return utc_naive(when, tz)

    def _check_choice(self, value, choices, what):
        if value not in choices:
            raise self._error(
                InsurerProtocolError,
                f"{self.name}: unknown {what} {value!r} in the answer.",
                code="unknown_code",
                field=what,
                value=str(value)[:40],
            )
        return value


def _html_title(text):
    """None if ``text`` is not HTML, else the page title ('' if none)."""
    head = (text or "").lstrip()[:200].lower()
    if not head.startswith(("<!doctype html", "<html", "<head", "<body", "<?xml")):
        return None
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    return _shorten(match.group(1)) if match else ""


def _shorten(text, size=300):
    text = " ".join(str(text or "").split())
    return text if len(text) <= size else text[: size - 1] + "…"


def utc_iso(when):
    """A naive UTC datetime as ISO 8601 with a Z."""
    return when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def utc_naive(when, tz=timezone.utc):
    """``when`` as a naive UTC datetime; a naive ``when`` is read in ``tz``."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(timezone.utc).replace(tzinfo=None)


def insurer_time(when, tz):
    """A naive UTC datetime as the insurer's wall-clock time in ``tz``,
    ``YYYY-MM-DDTHH:MM:SS`` without offset (as insurers take them)."""
    local = when.replace(tzinfo=timezone.utc).astimezone(tz)
    return local.replace(tzinfo=None).isoformat(timespec="seconds")
