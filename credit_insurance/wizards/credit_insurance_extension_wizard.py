from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import format_date

from ..models.credit_insurance_declaration import log_note


class CreditInsuranceExtensionWizard(models.TransientModel):
    """Extension (prorogation) of an insured invoice's due date, within the
    policy's maximum, reported to the insurer."""

    _name = "credit.insurance.extension.wizard"
    _description = "Extension of an invoice's due date"

    move_id = fields.Many2one("account.move", string="Invoice", required=True)
    policy_id = fields.Many2one(related="move_id.credit_insurance_policy_id")
    insurer_id = fields.Many2one(related="policy_id.insurer_id")
    original_due_date = fields.Date(
        related="move_id.invoice_date_due", string="Original due date"
    )
    current_due_date = fields.Date(string="Current due date", compute="_compute_dates")
    max_due_date = fields.Date(
        string="Latest due date allowed",
        compute="_compute_dates",
        help="Original due date plus the policy's maximum extension.",
    )
    new_due_date = fields.Date(string="New due date", required=True)
    reason = fields.Text(help="Why the buyer is given more time, for the insurer.")

    @api.depends("move_id", "policy_id.max_extension_days")
    def _compute_dates(self):
        for wizard in self:
            move = wizard.move_id
            wizard.current_due_date = (
                move.credit_insurance_extended_due_date or move.invoice_date_due
            )
            wizard.max_due_date = (
                move.invoice_date_due
                + timedelta(days=wizard.policy_id.max_extension_days)
                if move.invoice_date_due and wizard.policy_id
                else False
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
        Declaration = self.env["credit.insurance.declaration"]
        self._release_from_unfiled_declaration()
        extension = Declaration.create(
            {
                "category": "extension",
                "company_id": move.company_id.id,
                "partner_id": move.commercial_partner_id.id,
                "policy_id": move.credit_insurance_policy_id.id,
                "state": "to_file",
                "requested_due_date": self.new_due_date,
                "previous_due_date": self.current_due_date,
                "line_ids": [(0, 0, {"move_id": move.id})],
            }
        )
        move.sudo().credit_insurance_extended_due_date = self.new_due_date
        log_note(
            move,
            self.env._(
                "Due date extended to %(date)s (extension %(extension)s); the "
                "declaration deadline is now %(deadline)s.",
                date=format_date(self.env, self.new_due_date),
                extension=extension.name,
                deadline=format_date(
                    self.env, move.credit_insurance_declaration_deadline
                ),
            ),
        )
        if self.reason:
            extension.message_post(body=self.reason)
        extension._ask_portal_filing()
        if extension._files_through_api():
            self.env.ref("credit_insurance.ir_cron_declare_overdues")._trigger()
        return extension.get_formview_action()

    def _check_extension(self):
        move = self.move_id
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
        if move.currency_id.is_zero(move.amount_residual):
            raise UserError(
                self.env._("Invoice %(invoice)s is paid.", invoice=move.name)
            )
        if move.credit_insurance_cover_lost:
            raise UserError(
                self.env._(
                    "Invoice %(invoice)s lost its cover (not declared in time): "
                    "an extension cannot restore it.",
                    invoice=move.name,
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
        pending = move.credit_insurance_declaration_line_ids.filtered(
            lambda line: line.category == "extension" and line.declaration_open
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

    def _release_from_unfiled_declaration(self):
        """An overdue not yet declared is postponed by the extension; one
        already at the insurer cannot be."""
        line = self.move_id.credit_insurance_declaration_line_ids.filtered(
            lambda line: line.category == "overdue" and line.declaration_open
        )
        if not line:
            return
        declaration = line.declaration_id
        if line.date_filed or declaration.delivery_uncertain:
            raise UserError(
                self.env._(
                    "Invoice %(invoice)s is already declared to the insurer as an "
                    "overdue (%(declaration)s): its due date can no longer be "
                    "extended.",
                    invoice=self.move_id.name,
                    declaration=declaration.name,
                )
            )
        line.sudo().unlink()
        log_note(
            declaration,
            self.env._(
                "Invoice %(invoice)s removed: its due date is extended to %(date)s.",
                invoice=self.move_id.name,
                date=format_date(self.env, self.new_due_date),
            ),
        )
        if not declaration.line_ids:
            declaration.sudo().write({"state": "cancelled"})
            declaration.activity_ids.unlink()
