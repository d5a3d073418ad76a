from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import format_date


class CreditInsuranceExtensionWizard(models.TransientModel):
    """Extension (prorogation) of one due date (instalment) of an insured
    invoice, within the policy's maximum, reported to the insurer.

    Within the policy's free extension days the new due date takes effect at
    once; beyond, only when the insurer accepts it; never once the deadline
    of the due date it extends has passed (DOMAIN.md, "Rules the policies
    state": free ones within the policy's days, others only once the insurer
    accepts, none after the deadline).
    """

    _name = "credit.insurance.extension.wizard"
    _description = "Extension of an invoice's due date"

    move_id = fields.Many2one("account.move", string="Invoice", required=True)
    move_line_id = fields.Many2one(
        "account.move.line",
        string="Instalment",
        compute="_compute_move_line_id",
        store=True,
        readonly=False,
        domain="[('move_id', '=', move_id), ('account_type', '=', 'asset_receivable'), "
        "('reconciled', '=', False)]",
        help="The due date to extend (the next unpaid one by default).",
    )
    policy_id = fields.Many2one(related="move_id.credit_insurance_policy_id")
    insurer_id = fields.Many2one(related="policy_id.insurer_id")
    original_due_date = fields.Date(
        related="move_line_id.date_maturity", string="Original due date"
    )
    current_due_date = fields.Date(string="Current due date", compute="_compute_dates")
    current_deadline = fields.Date(
        string="Declaration deadline", compute="_compute_dates"
    )
    free_due_date = fields.Date(
        string="Free extension up to",
        compute="_compute_dates",
        help="Original due date plus the policy's free extension: up to this "
        "date the new due date takes effect at once.",
    )
    max_due_date = fields.Date(
        string="Latest due date allowed",
        compute="_compute_dates",
        help="Original due date plus the policy's maximum extension.",
    )
    new_due_date = fields.Date(string="New due date", required=True)
    free = fields.Boolean(
        string="Takes effect at once",
        compute="_compute_dates",
        help="Within the free extension: no need to wait for the insurer.",
    )
    reason = fields.Text(help="Why the buyer is given more time, for the insurer.")

    @api.depends("move_id")
    def _compute_move_line_id(self):
        for wizard in self:
            instalments = wizard.move_id._credit_insurance_instalments()
            wizard.move_line_id = (
                instalments.filtered(lambda line: not line.reconciled) or instalments
            )[:1]

    @api.depends(
        "move_line_id",
        "new_due_date",
        "policy_id.max_extension_days",
        "policy_id.free_extension_days",
    )
    def _compute_dates(self):
        for wizard in self:
            line = wizard.move_line_id
            original = line.date_maturity
            policy = wizard.policy_id
            wizard.current_due_date = line.credit_insurance_due_date
            wizard.current_deadline = line.credit_insurance_declaration_deadline
            wizard.max_due_date = (
                original + timedelta(days=policy.max_extension_days)
                if original and policy
                else False
            )
            wizard.free_due_date = (
                original + timedelta(days=policy.free_extension_days)
                if original and policy and policy.free_extension_days
                else False
            )
            wizard.free = bool(
                wizard.free_due_date
                and wizard.new_due_date
                and wizard.new_due_date <= wizard.free_due_date
            )

    def action_request(self):
        self.ensure_one()
        if not self.env.user.has_group(
            "credit_insurance.group_credit_insurance_manager"
        ):
            raise AccessError(
                self.env._("Only credit insurance managers can extend a due date.")
            )
        move = self.move_id
        self._check_extension()
        extension = self.env["credit.insurance.declaration"].create(
            {
                "category": "extension",
                "company_id": move.company_id.id,
                "partner_id": move.commercial_partner_id.id,
                "policy_id": move.credit_insurance_policy_id.id,
                "state": "to_file",
                "requested_due_date": self.new_due_date,
                "previous_due_date": self.current_due_date,
                "extension_free": self.free,
                "line_ids": [
                    (0, 0, {"move_id": move.id, "move_line_id": self.move_line_id.id})
                ],
            }
        )
        if self.free:
            extension._apply_extension()
        else:
            extension.message_post(
                body=self.env._(
                    "Beyond the free extension (%(days)s days): the due date stays "
                    "%(due)s and its deadline %(deadline)s until %(insurer)s "
                    "accepts.",
                    days=self.policy_id.free_extension_days,
                    due=format_date(self.env, self.current_due_date),
                    deadline=format_date(self.env, self.current_deadline),
                    insurer=self.insurer_id.name,
                )
            )
        if self.reason:
            extension.message_post(body=self.reason)
        extension._ask_portal_filing()
        if extension._files_through_api():
            self.env.ref("credit_insurance.ir_cron_declare_overdues")._trigger()
        return extension.get_formview_action()

    def _check_extension(self):
        move = self.move_id
        line = self.move_line_id
        if (
            move.move_type != "out_invoice"
            or move.state != "posted"
            or not move.credit_insurance_policy_id
        ):
            raise UserError(
                self.env._(
                    "%(invoice)s is not an insured posted customer invoice: there "
                    "is nothing to extend with the insurer.",
                    invoice=move.display_name,
                )
            )
        if not line or line.move_id != move:
            raise UserError(
                self.env._(
                    "Choose the due date (instalment) of invoice %(invoice)s to "
                    "extend.",
                    invoice=move.name,
                )
            )
        if line.reconciled or move.currency_id.is_zero(line.amount_residual_currency):
            raise UserError(
                self.env._(
                    "Invoice %(invoice)s is paid for the due date of %(date)s.",
                    invoice=move.name,
                    date=format_date(self.env, line.date_maturity),
                )
            )
        if move.credit_insurance_cover_lost:
            raise UserError(
                self.env._(
                    "Invoice %(invoice)s lost its cover (not declared in time): "
                    "an extension cannot restore it.",
                    invoice=move.name,
                )
            )
        today = fields.Date.context_today(self)
        if self.current_deadline and today > self.current_deadline:
            raise UserError(
                self.env._(
                    "The declaration deadline of the due date %(due)s of invoice "
                    "%(invoice)s passed on %(deadline)s: no extension can be "
                    "granted after it.",
                    due=format_date(self.env, self.current_due_date),
                    invoice=move.name,
                    deadline=format_date(self.env, self.current_deadline),
                )
            )
        if self.new_due_date <= self.current_due_date:
            raise UserError(
                self.env._(
                    "The new due date must be after the current one (%(date)s).",
                    date=format_date(self.env, self.current_due_date),
                )
            )
        if self.new_due_date > self.max_due_date:
            raise UserError(
                self.env._(
                    "Policy %(policy)s allows extensions of %(days)s days at most: "
                    "invoice %(invoice)s can be due on %(date)s at the latest.",
                    policy=self.policy_id.display_name,
                    days=self.policy_id.max_extension_days,
                    invoice=move.name,
                    date=format_date(self.env, self.max_due_date),
                )
            )
        pending = self.env["credit.insurance.declaration.line"].search(
            [
                ("move_line_id", "=", line.id),
                ("category", "=", "extension"),
                ("declaration_open", "=", True),
            ],
            limit=1,
        )
        if pending:
            raise UserError(
                self.env._(
                    "An extension of invoice %(invoice)s is already under way "
                    "(%(extension)s).",
                    invoice=move.name,
                    extension=pending.declaration_id.name,
                )
            )
        overdue = line._credit_insurance_overdue_line()
        if overdue and (
            overdue.date_filed or overdue.declaration_id.delivery_uncertain
        ):
            raise UserError(
                self.env._(
                    "Invoice %(invoice)s is already declared to the insurer as an "
                    "overdue (%(declaration)s): its due date can no longer be "
                    "extended.",
                    invoice=move.name,
                    declaration=overdue.declaration_id.name,
                )
            )
