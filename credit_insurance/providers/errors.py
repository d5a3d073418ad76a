"""The few errors a provider raises, whatever the insurer.

Each error carries a ``code`` (what went wrong, see ``CODES``) and ``params``
(the values a sentence about it needs: the insurer, the call, the insurer's
own message...). The Odoo side turns code and params into the sentence a
user reads, in the user's language (``credit.insurance.insurer._error_text``);
``message`` is the same sentence in English, for logs and developers. Neither
ever contains a credential (providers redact them before raising).
"""

# code -> what it means (the Odoo side has one translated sentence per code).
CODES = {
    "auth_refused": "the insurer refused the credentials",
    "login_refused": "the insurer refused the login (an account that locks)",
    "account_locked": "the insurer locked the account after failed logins",
    "route_refused": "the insurer refused the address (not the credentials)",
    "rate_limited": "HTTP 429, wait retry_after seconds",
    "timeout": "no answer within the timeout",
    "unreachable": "no connection could be made",
    "connection_closed": "the connection was closed before the answer",
    "call_failed": "the HTTP client failed otherwise",
    "server_error": "HTTP 5xx",
    "rejected": "HTTP 4xx with the insurer's own message",
    "action_refused": "the insurer answered that it refused the change",
    "unexpected_status": "an HTTP status the contract does not have",
    "malformed_json": "the body is not JSON",
    "html_page": "an HTML page instead of JSON",
    "unexpected_shape": "JSON, but not the shape of the contract",
    "missing_field": "a field of the contract is missing",
    "not_a_list": "a field that must be a list is not",
    "bad_amount": "a field that must be an amount is not",
    "bad_date": "a field that must be a date is not",
    "unknown_code": "a code the contract does not list",
    "foreign_host": "a URL of the insurer points to another site",
    "no_token": "the login answer has no token",
    "no_credit_limit": "a cover without any credit limit",
    "job_failed": "an asynchronous job of the insurer failed",
    "cover_not_listed": "a cover the insurer no longer lists",
    "amount_step": "an amount that is not a multiple of the insurer's step",
    "unavailable": "the operation is not available through this connection",
    "request_unconfirmed": "a request may have been received, no lookup",
    "declaration_unconfirmed": "a declaration may have been received, no lookup",
    "odoo": "a message written by Odoo, already in the user's language",
}


class InsurerError(Exception):
    """Base of every provider error.

    :param message: in English, safe to log and store (no secret in it).
    :param provider: label of the insurer's connection, e.g. ``"Atradius"``.
    :param status: HTTP status of the answer, when there was one.
    :param may_have_been_received: the insurer may have received and processed
        the call although we got no usable answer (timeout, dropped connection,
        5xx or unreadable answer to a write). The caller must look the request
        up at the insurer before sending it again.
    :param code: one of ``CODES``.
    :param params: the values of the sentence (``insurer`` is always set).
    """

    retryable = False
    default_code = "odoo"

    def __init__(
        self,
        message,
        *,
        provider=None,
        status=None,
        may_have_been_received=False,
        code=None,
        params=None,
    ):
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.may_have_been_received = may_have_been_received
        # Errors Odoo raises itself carry no provider: their message is
        # already written for the user.
        self.code = code or (self.default_code if provider else "odoo")
        self.params = {
            "insurer": provider or "",
            "status": status or "",
            **(params or {}),
        }

    def __str__(self):
        return self.message


class InsurerAuthError(InsurerError):
    """The insurer refused our credentials.

    Not retried automatically: some insurers lock the account after a few
    failed logins (Coface: five). ``retry_after`` is set when the insurer
    says when the account opens again (a lockout).
    """

    default_code = "auth_refused"

    def __init__(self, message, *, retry_after=None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InsurerTemporaryError(InsurerError):
    """Timeout, connection error, 5xx or 429: try again later.

    :param retry_after: seconds the insurer asked us to wait (``Retry-After``),
        or ``None``. The caller schedules the retry; providers never sleep.
    """

    retryable = True
    default_code = "server_error"

    def __init__(self, message, *, retry_after=None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InsurerRejected(InsurerError):
    """The insurer refused the call with its own message (validation, business
    rule, unknown buyer, an address outside the contract...). Sending the same
    thing again will fail again."""

    default_code = "rejected"


class InsurerProtocolError(InsurerError):
    """The answer is not what the contract says: malformed JSON, an HTML page,
    a missing field, an unknown code. Retried later: it is often a maintenance
    page in front of the API."""

    retryable = True
    default_code = "unexpected_shape"


class ProviderOperationUnavailable(InsurerError):
    """This provider cannot do this operation, usually because the insurer's
    contract for it is not public. Do it in the insurer's portal.

    :param operation: a code of ``OPERATIONS``.
    :param reason: a code of ``REASONS``.
    """

    default_code = "unavailable"

    def __init__(self, provider, operation, reason):
        super().__init__(
            f"{provider}: {OPERATIONS.get(operation, operation)} is not available "
            f"through this connection ({REASONS.get(reason, reason)}). Do it in "
            "the insurer's portal.",
            provider=provider,
            params={"operation": operation, "reason": reason},
        )
        self.operation = operation
        self.reason = reason


class DeliveryUnconfirmed(InsurerError):
    """An earlier attempt may have reached the insurer, and this provider
    cannot look it up by our reference: a person must check in the insurer's
    portal before anything is sent again (so that nothing is filed twice)."""

    default_code = "request_unconfirmed"


# The operations of the contract and why one may be unavailable, in English
# (the Odoo side has their translations, by code).
OPERATIONS = {
    "find_buyer": "finding a buyer",
    "find_buyer_without_siren": "finding a buyer without a French SIREN",
    "find_buyer_without_identifier": "finding a buyer without a SIREN, SIRET or "
    "VAT number",
    "request_limit": "requesting a limit",
    "request_reduce": "a 'reduce' request",
    "request_cancel": "a 'cancel' request",
    "request_renew": "a 'renew' request",
    "find_request": "looking a request up by our reference",
    "follow_request": "following a pending request",
    "pull_decisions": "pulling decision changes",
    "declare_overdue": "declaring an overdue",
    "declare_default": "declaring a payment overdue (category OVD)",
    "declare_rescheduling": "declaring a rescheduling (category RES)",
    "find_declaration": "looking a declaration up by our reference",
    "follow_declaration": "following a declaration",
    "update_declaration": "updating a declaration",
    "pull_claims": "pulling claims",
    "follow_claim": "following a claim",
    "declare_turnover": "declaring the turnover",
}
REASONS = {
    "not_implemented": "not implemented",
    "not_public": "the insurer's contract for it is not public",
    "no_lookup": "the public contract has no such lookup",
    "request_type": "its request type code is not in the public documentation",
    "several_invoices": "a state of default covering several invoices and its "
    "updates are not in the public documentation",
    "siren_only": "only a search by SIREN or VAT number is in the public contract",
    "identifier_only": "the insurer finds companies by identifier",
    "manual": "requests and decisions are entered by hand",
}
