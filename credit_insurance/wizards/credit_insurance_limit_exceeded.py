import math

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import plaintext2html

from ..models.sale_order import settled_orders

MANAGER_GROUP = "credit_insurance.group_credit_insurance_manager"
# Limits are granted in round amounts (Atradius: multiples of 1,000).
LIMIT_STEP = 1000


class CreditInsuranceLimitExceeded(models.TransientModel):
    """The dialog shown when the Confirm button of an order is refused.

    Its figures are computed from the order each time they are read, never
    taken from the client; its buttons check again on the server.
    """

    _name = "credit.insurance.limit.exceeded"
    _description = "Order above the insured limit"

    order_id = fields.Many2one(
        "sale.order", required=True, readonly=True, ondelete="cascade"
    )
    partner_id = fields.Many2one(
        "res.partner", string="Buyer", compute="_compute_figures"
    )
    policy_id = fields.Many2one("credit.insurance.policy", compute="_compute_figures")
    currency_id = fields.Many2one("res.currency", compute="_compute_figures")
    limit_amount = fields.Monetary(string="Insured limit", compute="_compute_figures")
    exposure_amount = fields.Monetary(
        string="Current exposure",
        compute="_compute_figures",
        help="Open receivables and confirmed orders not yet invoiced, without "
        "this order.",
    )
    order_amount = fields.Monetary(string="This order", compute="_compute_figures")
    shortfall_amount = fields.Monetary(string="Shortfall", compute="_compute_figures")
    stopped = fields.Boolean(string="Stop of deliveries", compute="_compute_figures")
    message = fields.Text(compute="_compute_figures")
    can_request_limit = fields.Boolean(compute="_compute_figures")
    can_override = fields.Boolean(compute="_compute_figures")
    reason = fields.Text(
        string="Reason for confirming anyway",
        help="Required to confirm above the insured limit; kept in the chatter of "
        "the order and of the buyer.",
    )

    @api.depends("order_id")
    @api.depends_context("uid", "lang")
    def _compute_figures(self):
        is_manager = self.env.user.has_group(MANAGER_GROUP)
        for wizard in self:
            check = wizard._check()
            wizard.update(
                {
                    "partner_id": check.buyer,
                    "policy_id": check.policy,
                    "currency_id": check.currency,
                    "limit_amount": check.limit,
                    "exposure_amount": check.exposure,
                    "order_amount": check.amount,
                    "shortfall_amount": check.shortfall,
                    "stopped": check.stopped,
                    "message": wizard.order_id._credit_insurance_message(
                        check, "confirm"
                    ),
                    "can_request_limit": bool(
                        check.policy and check.shortfall and not check.stopped
                    ),
                    "can_override": is_manager and not check.stopped,
                }
            )

    def _check(self):
        self.ensure_one()
        [check] = self.order_id._credit_insurance_checks()
        return check

    def _action_open(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Insured limit exceeded"),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            # Opened by the web client's error handler (a plain RPC call, not
            # a button): it needs the views spelled out.
            "views": [(False, "form")],
            "target": "new",
        }

    # -------------------------------------------------------------- buttons

    def action_request_limit_increase(self):
        """Ask the insurer for a limit that fits this order (a draft request,
        sent by the exchange with the insurer)."""
        self.ensure_one()
        check = self._check()
        order = self.order_id
        Request = self.env["credit.insurance.limit.request"]
        if check.stopped or not check.policy or not check.shortfall:
            raise UserError(
                self.env._(
                    "Order %(order)s needs no limit increase: %(buyer)s is under "
                    "a stop of deliveries, has no policy, or the order fits.",
                    order=order.name,
                    buyer=check.buyer.display_name,
                )
            )
        request = Request.search(
            [
                ("sale_order_id", "=", order.id),
                ("state", "not in", ("decided", "cancelled")),
            ],
            limit=1,
        )
        if not request:
            request = Request.create(self._limit_request_values(check))
            order.message_post(
                body=plaintext2html(
                    self.env._(
                        "Limit increase requested for %(buyer)s: %(request)s.",
                        buyer=check.buyer.display_name,
                        request=request.name,
                    )
                ),
                subtype_xmlid="mail.mt_note",
            )
        return {
            "type": "ir.actions.act_window",
            "res_model": "credit.insurance.limit.request",
            "res_id": request.id,
            "view_mode": "form",
            "target": "current",
        }

    def _limit_request_values(self, check):
        """A limit that covers the exposure with this order, rounded up.

        Insurers take the limit asked for, not the difference: the request
        is for the current limit plus the shortfall.
        """
        decision = check.cover.decision
        currency = decision.currency_id or check.policy.currency_id
        company = self.order_id.company_id
        needed = check.currency._convert(
            check.limit + check.shortfall,
            currency,
            company,
            fields.Date.context_today(self),
            round=False,
        )
        return {
            "partner_id": check.buyer.id,
            "policy_id": check.policy.id,
            "company_id": company.id,
            "request_type": "increase" if decision.insured_amount else "new",
            "requested_amount": math.ceil(needed / LIMIT_STEP) * LIMIT_STEP,
            "currency_id": currency.id,
            "sale_order_id": self.order_id.id,
            "reason": self.env._(
                "Order %(order)s could not be confirmed.\n%(figures)s",
                order=self.order_id.name,
                figures=self.env["credit.insurance.cover"]._check_figures(
                    check, self.env._("This order")
                ),
            ),
        }

    def action_confirm_anyway(self):
        """A credit manager confirms this one order above the limit."""
        self.ensure_one()
        if not self.env.user.has_group(MANAGER_GROUP):
            raise AccessError(
                self.env._(
                    "Only credit insurance managers can confirm an order above "
                    "the insured limit."
                )
            )
        order = self.order_id
        reason = (self.reason or "").strip()
        if not reason:
            raise UserError(
                self.env._(
                    "Say why order %(order)s is confirmed above the insured limit.",
                    order=order.name,
                )
            )
        check = self._check()
        if check.stopped:
            raise UserError(order._credit_insurance_message(check, "confirm"))
        with settled_orders(order):
            order.action_confirm()
        note = plaintext2html(
            self.env._(
                "Order %(order)s confirmed above the insured limit of %(buyer)s by "
                "%(user)s.\nReason: %(reason)s\n%(figures)s",
                order=order.name,
                buyer=check.buyer.display_name,
                user=self.env.user.name,
                reason=reason,
                figures=self.env["credit.insurance.cover"]._check_figures(
                    check, self.env._("This order")
                ),
            )
        )
        order.message_post(body=note, subtype_xmlid="mail.mt_note")
        check.buyer.sudo().message_post(body=note, subtype_xmlid="mail.mt_note")
        return {"type": "ir.actions.act_window_close"}
