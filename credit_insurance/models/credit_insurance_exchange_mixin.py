"""What a record sent to the insurer keeps of the exchange, in one place: the
last error, the retries with their backoff, whether a sending may have reached
the insurer without its answer, and when to ask the insurer again."""

from datetime import timedelta

from odoo import fields, models

from ..providers import DeliveryUnconfirmed

# Minutes before trying again after the n-th failure; then once a day.
RETRY_DELAYS = (5, 15, 60, 240, 720, 1440)


class CreditInsuranceExchangeMixin(models.AbstractModel):
    _name = "credit.insurance.exchange.mixin"
    _description = "Exchange with the insurer"

    last_error = fields.Text(readonly=True, copy=False)
    retry_count = fields.Integer(readonly=True, copy=False)
    next_retry_date = fields.Datetime(readonly=True, copy=False)
    next_check_date = fields.Datetime(
        string="Next check at the insurer", readonly=True, copy=False
    )
    delivery_uncertain = fields.Boolean(
        string="Sent without answer", readonly=True, copy=False
    )
    insurer_buyer_ref = fields.Char(
        string="Buyer reference at the insurer", readonly=True, copy=False
    )

    def _retry_delay(self, error):
        """How long to wait before trying again after ``error``: the backoff
        of this record's failures, or longer if the insurer asks."""
        self.ensure_one()
        delay = timedelta(
            minutes=RETRY_DELAYS[min(self.retry_count, len(RETRY_DELAYS) - 1)]
        )
        if getattr(error, "retry_after", None):
            delay = max(delay, timedelta(seconds=error.retry_after))
        return delay

    def _not_retried_message(self, error):
        """What the chatter says of an error that is not tried again."""
        text = self.insurer_id._error_text(error)
        if isinstance(error, DeliveryUnconfirmed):
            return text
        return self.env._("Not retried automatically: %(error)s", error=text)
