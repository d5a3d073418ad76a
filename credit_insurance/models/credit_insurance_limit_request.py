import uuid

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

# UN/EDIFACT 4505 request purposes, as insurers know them.
REQUEST_TYPES = [
    ("new", "New limit"),
    ("increase", "Increase"),
    ("reduce", "Reduction"),
    ("cancel", "Cancellation"),
    ("renew", "Renewal"),
]


class CreditInsuranceLimitRequest(models.Model):
    """A request to the insurer for a limit on a buyer, followed to its decision.

    With a manual insurer the credit manager files it in the insurer's portal
    and records the answer; connectors send and follow it automatically.
    """

    _name = "credit.insurance.limit.request"
    _description = "Credit limit request"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(
        string="Reference", required=True, readonly=True, copy=False, default="/"
    )
    partner_id = fields.Many2one(
        "res.partner",
        string="Buyer",
        required=True,
        index=True,
        check_company=True,
        tracking=True,
        domain="[('is_company', '=', True)]",
    )
    policy_id = fields.Many2one(
        "credit.insurance.policy",
        required=True,
        check_company=True,
        tracking=True,
        compute="_compute_policy_id",
        store=True,
        readonly=False,
        precompute=True,
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    insurer_id = fields.Many2one(related="policy_id.insurer_id", store=True)
    request_type = fields.Selection(
        REQUEST_TYPES, string="Type", required=True, default="new", tracking=True
    )
    requested_amount = fields.Monetary(tracking=True)
    currency_id = fields.Many2one(
        "res.currency",
        required=True,
        compute="_compute_currency_id",
        store=True,
        readonly=False,
        precompute=True,
    )
    reason = fields.Text(help="Why the limit is needed, for the insurer's underwriter.")
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("sent", "Sent"),
            ("pending", "Pending"),
            ("referred", "Referred to an underwriter"),
            ("decided", "Decided"),
            ("error", "Error"),
            ("cancelled", "Cancelled"),
        ],
        default="draft",
        required=True,
        readonly=True,
        copy=False,
        index=True,
        tracking=True,
    )
    customer_reference = fields.Char(
        readonly=True,
        copy=False,
        index=True,
        help="Our reference sent to the insurer with the request; used to find "
        "the request at the insurer before any re-send, so it is never filed twice.",
    )
    insurer_reference = fields.Char(
        readonly=True,
        copy=False,
        tracking=True,
        help="The insurer's reference of the request (job, cover or case number).",
    )
    date_sent = fields.Datetime(string="Sent on", readonly=True, copy=False)
    date_decided = fields.Datetime(string="Decided on", readonly=True, copy=False)
    last_error = fields.Text(readonly=True, copy=False)
    retry_count = fields.Integer(readonly=True, copy=False)
    next_retry_date = fields.Datetime(readonly=True, copy=False)
    decision_id = fields.Many2one("credit.insurance.limit", readonly=True, copy=False)
    sale_order_id = fields.Many2one(
        "sale.order",
        string="Blocked order",
        readonly=True,
        copy=False,
        check_company=True,
        help="The order whose confirmation needed this limit.",
    )

    _sql_constraints = [
        (
            "customer_reference_uniq",
            "unique(customer_reference)",
            "Each request carries its own customer reference.",
        ),
    ]

    @api.depends("partner_id", "company_id")
    def _compute_policy_id(self):
        for request in self:
            if request.partner_id and not request.policy_id:
                cover = (
                    self.env["credit.insurance.cover"]
                    .with_company(request.company_id)
                    ._get_buyer_covers(request.partner_id)
                    .get(request.partner_id._origin.commercial_partner_id.id)
                )
                request.policy_id = cover.policy if cover else False

    @api.depends("policy_id")
    def _compute_currency_id(self):
        for request in self:
            if not request.currency_id:
                request.currency_id = (
                    request.policy_id.currency_id or request.company_id.currency_id
                )

    @api.constrains("requested_amount", "request_type", "partner_id")
    def _check_request(self):
        for request in self:
            if request.requested_amount < 0:
                raise ValidationError(
                    self.env._(
                        "Requested amount: a limit request for %(buyer)s cannot be "
                        "negative.",
                        buyer=request.partner_id.display_name,
                    )
                )
            if request.request_type != "cancel" and not request.requested_amount:
                raise ValidationError(
                    self.env._(
                        "Requested amount: say how much cover to ask for on %(buyer)s.",
                        buyer=request.partner_id.display_name,
                    )
                )
            if not request.partner_id.is_company:
                raise ValidationError(
                    self.env._(
                        "Buyer: limits are requested on companies, and %(buyer)s "
                        "is a contact. Choose the company it belongs to.",
                        buyer=request.partner_id.display_name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("name", "/") == "/":
                vals["name"] = (
                    self.env["ir.sequence"]
                    .sudo()
                    .next_by_code("credit.insurance.limit.request")
                )
            # Unique and known before the first send: the idempotency key.
            vals["customer_reference"] = f"ODOO-LR-{uuid.uuid4().hex[:16].upper()}"
        return super().create(vals_list)

    # ------------------------------------------------------------- workflow

    def action_send(self):
        """File the requests: manual insurers are filed by hand in the portal."""
        for request in self:
            if request.state not in ("draft", "error"):
                raise UserError(
                    self.env._(
                        "Request %(name)s has already been sent.", name=request.name
                    )
                )
        self._send()
        return True

    def _send(self):
        """Hook for connectors; the manual insurer only records the filing."""
        for request in self:
            request.write({"state": "sent", "date_sent": fields.Datetime.now()})
            request.message_post(
                body=self.env._(
                    "Request filed by hand in the insurer's portal; record the "
                    "insurer's answer with 'Record decision'."
                )
            )

    def action_record_decision(self):
        """Open a new decision prefilled from the request (manual insurers)."""
        self.ensure_one()
        if self.state in ("decided", "cancelled"):
            raise UserError(
                self.env._("Request %(name)s is already closed.", name=self.name)
            )
        return {
            "type": "ir.actions.act_window",
            "res_model": "credit.insurance.limit",
            "view_mode": "form",
            "target": "new",
            "context": {
                "default_partner_id": self.partner_id.id,
                "default_policy_id": self.policy_id.id,
                "default_requested_amount": self.requested_amount,
                "default_granted_amount": self.requested_amount,
                "default_currency_id": self.currency_id.id,
                "default_request_id": self.id,
            },
        }

    def _mark_decided(self, decision):
        """Close the request with the decision the insurer gave."""
        self.write(
            {
                "state": "decided",
                "decision_id": decision.id,
                "date_decided": fields.Datetime.now(),
                "last_error": False,
                "next_retry_date": False,
            }
        )
        for request in self:
            request.message_post(
                body=self.env._(
                    "Decision recorded: %(decision)s.", decision=decision.display_name
                )
            )

    def action_cancel(self):
        if any(request.state == "decided" for request in self):
            raise UserError(self.env._("A decided request cannot be cancelled."))
        self.write({"state": "cancelled"})
        return True

    def action_reset_to_draft(self):
        self.filtered(lambda r: r.state in ("cancelled", "error")).write(
            {"state": "draft"}
        )
        return True
