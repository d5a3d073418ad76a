import contextlib
import contextvars

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import plaintext2html

from .access_groups import SALES, check_search_access
from .credit_insurance_cover import ExposureDocument

# Orders whose limit check is settled for the current call only: overridden by
# a credit manager in the limit dialog. A context variable and not a context
# key: an RPC caller can send any context, but only the server sets this,
# around one call.
_SETTLED_ORDERS = contextvars.ContextVar(
    "credit_insurance_settled_orders", default=frozenset()
)


@contextlib.contextmanager
def settled_orders(orders):
    """Within the block, ``action_confirm`` does not check ``orders`` again."""
    token = _SETTLED_ORDERS.set(_SETTLED_ORDERS.get() | frozenset(orders.ids))
    try:
        yield
    finally:
        _SETTLED_ORDERS.reset(token)


class SaleOrder(models.Model):
    _inherit = "sale.order"

    credit_insurance_warning = fields.Text(
        string="Credit insurance warning",
        compute="_compute_credit_insurance_warning",
        help="Shown on a quotation that would take its buyer over the insured "
        "limit, or whose buyer is under a stop of deliveries.",
        groups=SALES,
    )

    @api.depends_context("lang", "company")
    @api.depends(
        "state",
        "partner_invoice_id",
        "company_id",
        "currency_id",
        "amount_total",
        "amount_untaxed",
        "commitment_date",
    )
    def _compute_credit_insurance_warning(self):
        quotations = self.filtered(
            lambda o: (
                o.state in ("draft", "sent") and o.partner_invoice_id and o.company_id
            )
        )
        self.credit_insurance_warning = False
        # Quotations do not add up: each is checked alone.
        for check in quotations._credit_insurance_checks(cumulative=False):
            order = check.document.record
            order.credit_insurance_warning = (
                order._credit_insurance_message(check, "quotation")
                if check.refused or check.warned
                else False
            )

    @api.model
    def _search(self, domain, *args, **kwargs):
        check_search_access(self, domain)
        return super()._search(domain, *args, **kwargs)

    # --------------------------------------------------------------- checks

    def _credit_insurance_checks(self, lock=False, cumulative=True):
        """Check each order against its buyer's insured limit.

        A quotation counts for its total; a confirmed order for what is not
        invoiced yet. Amounts are converted at the order date (today for a
        quotation, which is confirmed today). The limit is the one in force on
        the delivery date promised to the customer (today without one): an
        order delivered after an announced reduction must fit the reduced one.
        """
        Cover = self.env["credit.insurance.cover"]
        confirmed = self.filtered(lambda o: o.state == "sale")._origin
        remaining = Cover._uninvoiced_order_amounts(confirmed) if confirmed else {}
        today = fields.Date.context_today(self)
        checks = []
        for company, orders in self.grouped("company_id").items():
            documents = [
                ExposureDocument(
                    record=order,
                    partner=order.partner_invoice_id,
                    date=fields.Date.context_today(self, order.date_order)
                    if order.state == "sale"
                    else today,
                    amounts=remaining.get(order._origin.id, {})
                    if order.state == "sale"
                    else {
                        order.currency_id.id: (order.amount_total, order.amount_untaxed)
                    },
                    delivery_date=order._credit_insurance_delivery_date(),
                )
                for order in orders
            ]
            checks += Cover.with_company(company)._check_documents(
                documents,
                exclude_orders=orders._origin,
                lock=lock,
                cumulative=cumulative,
            )
        return checks

    def _credit_insurance_delivery_date(self):
        """The day the goods are to be delivered: the commitment date, or
        today (never before today)."""
        self.ensure_one()
        today = fields.Date.context_today(self)
        if not self.commitment_date:
            return today
        return max(today, fields.Date.context_today(self, self.commitment_date))

    def _credit_insurance_message(self, check, situation):
        """What the check means for this order, with its figures.

        ``situation``: ``quotation`` (the warning on the form), ``confirm`` or
        ``increase`` (a refusal).
        """
        self.ensure_one()
        Cover = self.env["credit.insurance.cover"]
        env = Cover._user_env()
        buyer = check.buyer.display_name
        if check.stopped:
            reason = check.buyer.credit_insurance_stop_reason or env._(
                "no reason given"
            )
            return {
                "quotation": env._(
                    "Stop of deliveries on %(buyer)s (%(reason)s): this quotation "
                    "cannot be confirmed.",
                    buyer=buyer,
                    reason=reason,
                ),
                "confirm": env._(
                    "Order %(order)s cannot be confirmed: deliveries to %(buyer)s "
                    "are stopped (%(reason)s).",
                    order=self.name,
                    buyer=buyer,
                    reason=reason,
                ),
                "increase": env._(
                    "Order %(order)s cannot be increased: deliveries to %(buyer)s "
                    "are stopped (%(reason)s).",
                    order=self.name,
                    buyer=buyer,
                    reason=reason,
                ),
            }[situation]
        if situation == "quotation":
            headline = (
                env._(
                    "This quotation would take %(buyer)s over its insured limit: "
                    "it cannot be confirmed unless the limit is raised or a credit "
                    "manager confirms it anyway.",
                    buyer=buyer,
                )
                if check.refused
                else env._(
                    "This quotation takes %(buyer)s over its insured limit: it can "
                    "be confirmed, but the excess is not insured.",
                    buyer=buyer,
                )
            )
            label = env._("This order")
        elif situation == "confirm":
            headline = env._(
                "Order %(order)s cannot be confirmed: it would take %(buyer)s over "
                "its insured limit.",
                order=self.name,
                buyer=buyer,
            )
            label = env._("This order")
        else:
            headline = env._(
                "Order %(order)s cannot be increased: it would take %(buyer)s over "
                "its insured limit.",
                order=self.name,
                buyer=buyer,
            )
            label = env._("This order, not yet invoiced")
        return f"{headline}\n{Cover._check_figures(check, label)}"

    def _credit_insurance_refusal(self, checks, situation):
        """The error refusing ``checks`` of the orders in ``self``: a plain
        ``UserError`` for every caller (scripts, RPC, other modules). When a
        single order was being confirmed, its id rides in the error's context:
        the web client then opens the order's limit dialog instead of the
        message (static/src/limit_dialog/limit_dialog.js)."""
        if self.env.user.share:
            # A customer confirming online: the insured limit is not theirs
            # to read.
            return UserError(
                self.env["credit.insurance.cover"]
                ._user_env()
                ._(
                    "This order cannot be confirmed online. Please contact us to "
                    "complete it."
                )
            )
        error = UserError(
            "\n\n".join(
                check.document.record._credit_insurance_message(check, situation)
                for check in checks
            )
        )
        if situation == "confirm" and len(self) == 1:
            error.context = {
                "credit_insurance_limit_order_id": checks[0].document.record.id
            }
        return error

    def _credit_insurance_log_warnings(self, checks):
        """Keep a trace of what a warning-only policy let through."""
        for check in checks:
            if check.warned:
                order = check.document.record
                order._message_log(
                    body=plaintext2html(
                        self.env._(
                            "Accepted above the insured limit of %(buyer)s (the "
                            "policy only warns):\n%(figures)s",
                            buyer=check.buyer.display_name,
                            figures=self.env["credit.insurance.cover"]._check_figures(
                                check, self.env._("This order")
                            ),
                        )
                    )
                )

    def _credit_insurance_check_confirmation(self):
        """Refuse the orders that would exceed their buyer's insured limit.

        Buyers are locked until the transaction ends: two confirmations
        running at the same time cannot together exceed a limit.
        """
        settled = _SETTLED_ORDERS.get()
        orders = self.filtered(
            lambda o: o.state in ("draft", "sent") and o.id not in settled
        )
        if not orders:
            return []
        checks = orders._credit_insurance_checks(lock=True)
        refused = [check for check in checks if check.refused]
        if refused:
            raise self._credit_insurance_refusal(refused, "confirm")
        self._credit_insurance_log_warnings(checks)
        return checks

    def _credit_insurance_check_increase(self, amounts_before):
        """Check confirmed orders whose total grew (``{order id: total}``
        before the change): the order's part not yet invoiced, after the
        change, is what must fit."""
        increased = self.filtered(
            lambda o: (
                o.state == "sale"
                and o.currency_id.compare_amounts(
                    o.amount_total, amounts_before.get(o.id, 0.0)
                )
                > 0
            )
        )
        if not increased:
            return
        checks = increased._credit_insurance_checks(lock=True)
        refused = [check for check in checks if check.refused]
        if refused:
            raise self._credit_insurance_refusal(refused, "increase")
        self._credit_insurance_log_warnings(checks)

    # -------------------------------------------------------------- actions

    def action_confirm(self):
        self._credit_insurance_check_confirmation()
        return super().action_confirm()

    def action_credit_insurance_limit_dialog(self):
        """The limit dialog of an order whose confirmation was refused: the
        figures, a limit increase to request, a credit manager's override. The
        web client opens it when Confirm is refused (see
        :meth:`_credit_insurance_refusal`); its buttons check again."""
        self.ensure_one()
        wizard = self.env["credit.insurance.limit.exceeded"].create(
            {"order_id": self.id}
        )
        return wizard._action_open()
