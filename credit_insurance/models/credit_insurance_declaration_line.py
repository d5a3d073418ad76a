from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from .credit_insurance_declaration import log_note


class CreditInsuranceDeclarationLine(models.Model):
    """One invoice of an overdue declaration (or of an extension request).

    Open amounts follow the invoice (payments, credit notes): they are related
    stored fields, recomputed when the invoice's residual changes, so that the
    declaration always knows what is still owed and what it last told the
    insurer.
    """

    _name = "credit.insurance.declaration.line"
    _description = "Invoice of an overdue declaration"
    _order = "due_date, id"
    _check_company_auto = True

    declaration_id = fields.Many2one(
        "credit.insurance.declaration",
        required=True,
        index=True,
        ondelete="cascade",
    )
    move_id = fields.Many2one(
        "account.move",
        string="Invoice",
        required=True,
        index=True,
        ondelete="restrict",
        check_company=True,
        domain="[('move_type', '=', 'out_invoice'), ('state', '=', 'posted')]",
    )
    company_id = fields.Many2one(
        related="declaration_id.company_id", store=True, index=True
    )
    category = fields.Selection(related="declaration_id.category", store=True)
    # Kept on the line for the partial unique index: an invoice is in at most
    # one open declaration of each category.
    declaration_open = fields.Boolean(related="declaration_id.is_open", store=True)
    declaration_state = fields.Selection(related="declaration_id.state")
    currency_id = fields.Many2one(related="move_id.currency_id", string="Currency")
    company_currency_id = fields.Many2one(
        related="move_id.company_currency_id", string="Company currency"
    )
    invoice_date = fields.Date(related="move_id.invoice_date", string="Invoice date")
    due_date = fields.Date(
        string="Due date",
        compute="_compute_due_date",
        store=True,
        help="The invoice's due date, or the extended one.",
    )
    deadline = fields.Date(
        string="Declaration deadline",
        related="move_id.credit_insurance_declaration_deadline",
        store=True,
    )
    amount_residual = fields.Monetary(
        string="Open amount (invoice currency)",
        related="move_id.amount_residual",
        store=True,
        currency_field="currency_id",
    )
    amount_residual_company = fields.Monetary(
        string="Open amount",
        related="move_id.amount_residual_signed",
        store=True,
        currency_field="company_currency_id",
    )
    disputed = fields.Boolean(related="move_id.credit_insurance_disputed", store=True)
    cover_lost = fields.Boolean(
        string="Cover lost", related="move_id.credit_insurance_cover_lost", store=True
    )
    included = fields.Boolean(
        string="Declared",
        compute="_compute_included",
        store=True,
        help="Unpaid and not disputed: part of the amount declared.",
    )
    amount_declared = fields.Monetary(
        string="Declared amount",
        compute="_compute_included",
        store=True,
        currency_field="company_currency_id",
        help="Open amount counted in the declaration (nothing while disputed).",
    )
    date_filed = fields.Datetime(
        string="Reported on",
        readonly=True,
        copy=False,
        help="When the insurer was first told about this invoice.",
    )
    amount_filed = fields.Monetary(
        string="Amount reported",
        readonly=True,
        copy=False,
        currency_field="company_currency_id",
        help="Open amount of the invoice when it was reported to the insurer.",
    )

    def init(self):
        # The ORM's _sql_constraints cannot be partial: one open declaration
        # per invoice and category, whatever the number of workers.
        self.env.cr.execute(
            SQL(
                "CREATE UNIQUE INDEX IF NOT EXISTS "
                "credit_insurance_declaration_line_open_move_uniq "
                "ON credit_insurance_declaration_line (move_id, category) "
                "WHERE declaration_open"
            )
        )

    @api.depends(
        "move_id.invoice_date_due",
        "move_id.credit_insurance_extended_due_date",
        "declaration_id.previous_due_date",
    )
    def _compute_due_date(self):
        for line in self:
            # An extension request reports the due date it changes.
            line.due_date = (
                line.declaration_id.previous_due_date
                or line.move_id.credit_insurance_extended_due_date
                or line.move_id.invoice_date_due
            )

    @api.depends("disputed", "amount_residual_company")
    def _compute_included(self):
        for line in self:
            line.included = not line.disputed and (
                line.company_currency_id.compare_amounts(
                    line.amount_residual_company, 0.0
                )
                > 0
            )
            line.amount_declared = (
                line.amount_residual_company if line.included else 0.0
            )

    @api.constrains("move_id", "declaration_id")
    def _check_invoice(self):
        open_lines = self.search(
            [
                ("move_id", "in", self.move_id.ids),
                ("declaration_open", "=", True),
                ("id", "not in", self.ids),
            ]
        )
        taken = {(line.move_id.id, line.category): line for line in open_lines}
        for line in self:
            move, declaration = line.move_id, line.declaration_id
            if move.move_type != "out_invoice" or move.state != "posted":
                raise ValidationError(
                    self.env._(
                        "%(invoice)s is not a posted customer invoice: only those "
                        "can be declared to the insurer.",
                        invoice=move.display_name,
                    )
                )
            if move.commercial_partner_id != declaration.partner_id:
                raise ValidationError(
                    self.env._(
                        "Invoice %(invoice)s is addressed to %(customer)s, not to "
                        "%(buyer)s, the buyer of declaration %(declaration)s.",
                        invoice=move.name,
                        customer=move.commercial_partner_id.display_name,
                        buyer=declaration.partner_id.display_name,
                        declaration=declaration.name,
                    )
                )
            other = taken.get((move.id, line.category))
            if line.declaration_open and other:
                raise ValidationError(
                    self.env._(
                        "Invoice %(invoice)s is already in %(declaration)s: an "
                        "invoice is declared once.",
                        invoice=move.name,
                        declaration=other.declaration_id.name,
                    )
                )
            if line.declaration_open:
                taken[move.id, line.category] = line

    def _log_dispute_change(self):
        """Say on the declaration that a declared invoice went into (or out
        of) dispute; the amount reported to the insurer follows."""
        for line in self.filtered(
            lambda line: line.declaration_open and line.category == "overdue"
        ):
            log_note(
                line.declaration_id,
                self.env._(
                    "Invoice %(invoice)s is disputed: it leaves the declared "
                    "amount until the dispute is cleared.",
                    invoice=line.move_id.name,
                )
                if line.disputed
                else self.env._(
                    "The dispute on invoice %(invoice)s is cleared: it is "
                    "declared again.",
                    invoice=line.move_id.name,
                ),
            )
