"""No API: the credit manager files requests in the insurer's portal and
records its answers by hand, with the same workflow in Odoo."""

from .base import InsurerProvider


class ManualProvider(InsurerProvider):
    code = "manual"
    label = "Manual entry"
    connected = False
    has_decision_feed = False

    def _unavailable(self, operation, reason="manual"):
        return super()._unavailable(operation, "manual")
