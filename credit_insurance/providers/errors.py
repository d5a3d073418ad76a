"""The few errors a provider raises, whatever the insurer.

Every message is meant to be shown to a credit manager and stored on a record:
it names the insurer and what went wrong, and never contains a credential
(providers redact them before raising).
"""


class InsurerError(Exception):
    """Base of every provider error.

    :param message: safe to show and store (no secret in it).
    :param provider: label of the insurer's connection, e.g. ``"Atradius"``.
    :param status: HTTP status of the answer, when there was one.
    :param may_have_been_received: the insurer may have received and processed
        the call although we got no usable answer (timeout, dropped connection,
        5xx or unreadable answer to a write). The caller must look the request
        up at the insurer before sending it again.
    """

    retryable = False

    def __init__(
        self, message, *, provider=None, status=None, may_have_been_received=False
    ):
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status
        self.may_have_been_received = may_have_been_received

    def __str__(self):
        return self.message


class InsurerAuthError(InsurerError):
    """The insurer refused our credentials (or their rights on a resource).

    Not retried automatically: some insurers lock the account after a few
    failed logins (Coface: five).
    """


class InsurerTemporaryError(InsurerError):
    """Timeout, connection error, 5xx or 429: try again later.

    :param retry_after: seconds the insurer asked us to wait (``Retry-After``),
        or ``None``. The caller schedules the retry; providers never sleep.
    """

    retryable = True

    def __init__(self, message, *, retry_after=None, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InsurerRejected(InsurerError):
    """The insurer refused the call with its own message (validation, business
    rule, unknown buyer...). Sending the same thing again will fail again."""


class InsurerProtocolError(InsurerError):
    """The answer is not what the contract says: malformed JSON, an HTML page,
    a missing field, an unknown code. Retried later: it is often a maintenance
    page in front of the API."""

    retryable = True


class ProviderOperationUnavailable(InsurerError):
    """This provider cannot do this operation, usually because the insurer's
    contract for it is not public. Do it in the insurer's portal."""

    def __init__(self, provider, operation, reason):
        super().__init__(
            f"{provider}: {operation} is not available through this connection "
            f"({reason}). Do it in the insurer's portal.",
            provider=provider,
        )
        self.operation = operation
        self.reason = reason


class DeliveryUnconfirmed(InsurerError):
    """An earlier attempt may have reached the insurer, and this provider
    cannot look it up by our reference: a person must check in the insurer's
    portal before anything is sent again (so that nothing is filed twice)."""
