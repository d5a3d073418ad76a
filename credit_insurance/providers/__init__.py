"""How to talk to each insurer: plain Python, no ORM.

``PROVIDERS`` maps the value of ``credit.insurance.insurer.provider`` to the
class that speaks that insurer's API. A new insurer is one new module here,
one entry below and one selection value on the insurer model.
"""

from . import errors
from .allianz_trade import AllianzTradeProvider
from .atradius import AtradiusProvider
from .base import (
    BuyerIdentity,
    BuyerMatch,
    ClaimBatch,
    ClaimStatus,
    Decision,
    DecisionBatch,
    DeclarationAnswer,
    InsurerProvider,
    LimitAnswer,
    LimitRequest,
    OverdueDeclaration,
    OverdueInvoice,
    ProviderConfig,
)
from .coface import CofaceProvider
from .errors import (
    DeliveryUnconfirmed,
    InsurerAuthError,
    InsurerError,
    InsurerProtocolError,
    InsurerRejected,
    InsurerTemporaryError,
    ProviderOperationUnavailable,
)
from .manual import ManualProvider
from .sandbox import SandboxProvider

PROVIDERS = {
    provider.code: provider
    for provider in (
        ManualProvider,
        SandboxProvider,
        AllianzTradeProvider,
        AtradiusProvider,
        CofaceProvider,
    )
}


def get_provider_class(code):
    """The provider class for an insurer's ``provider`` value."""
    try:
        return PROVIDERS[code]
    except KeyError:
        raise ValueError(f"No provider for {code!r}.") from None
