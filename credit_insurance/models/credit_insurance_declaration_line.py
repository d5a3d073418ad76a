from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL, format_date

from .credit_insurance_declaration import log_note


class CreditInsuranceDeclarationLine(models.Model):
    """One due date (instalment) of an invoice in an overdue declaration (or
    in an extension request).

    Open amounts follow the instalment (payments, credit notes): they are
    related stored fields, recomputed when its residual changes, so that the
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
    move_line_id = fields.Many2one(
        "account.move.line",
        string="Instalment",
        index=True,
        ondelete="restrict",
        check_company=True,
        help="The invoice's receivable line: one per due date of its payment "
        "terms, each with its own deadline.",
    )
    instalment_label = fields.Char(
        string="Instalment no.", compute="_compute_instalment_label"
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
        help="The instalment's due date, or the extended one.",
    )
    deadline = fields.Date(
        string="Declaration deadline",
        related="move_line_id.credit_insurance_declaration_deadline",
        store=True,
    )
    deadline_basis = fields.Char(
        string="Deadline counted from", compute="_compute_deadline_basis"
    )
    amount_residual = fields.Monetary(
        string="Open amount (invoice currency)",
        related="move_line_id.amount_residual_currency",
        store=True,
        currency_field="currency_id",
    )
    amount_residual_company = fields.Monetary(
        string="Open amount",
        related="move_line_id.amount_residual",
        store=True,
        currency_field="company_currency_id",
    )
    # The cover of the invoice, fixed at its delivery (never the limit of
    # the declaration date).
    delivery_limit = fields.Monetary(
        string="Limit at delivery",
        related="move_id.credit_insurance_delivery_limit",
        currency_field="company_currency_id",
    )
    insured_amount = fields.Monetary(
        string="Insured",
        related="move_id.credit_insurance_insured_amount",
        currency_field="company_currency_id",
    )
    cover_state = fields.Selection(
        related="move_id.credit_insurance_cover_state", string="Cover"
    )
    requested_due_date = fields.Date(related="declaration_id.requested_due_date")
    extension_status = fields.Selection(related="declaration_id.extension_status")
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
        # per instalment and category, whatever the number of workers.
        self.env.cr.execute(
            SQL(
                "CREATE UNIQUE INDEX IF NOT EXISTS "
                "credit_insurance_declaration_line_open_instalment_uniq "
                "ON credit_insurance_declaration_line (move_line_id, category) "
                "WHERE declaration_open"
            )
        )

    @api.model_create_multi
    def create(self, vals_list):
        """An invoice given without its instalment declares each of its open
        instalments (all of them when none is open)."""
        expanded = []
        Move = self.env["account.move"]
        for vals in vals_list:
            if vals.get("move_line_id") or not vals.get("move_id"):
                expanded.append(vals)
                continue
            instalments = Move.browse(vals["move_id"])._credit_insurance_instalments()
            unpaid = instalments.filtered(lambda line: not line.reconciled)
            expanded += [
                {**vals, "move_line_id": instalment.id}
                for instalment in (unpaid or instalments)
            ] or [vals]
        return super().create(expanded)

    @api.depends(
        "move_line_id.date_maturity",
        "move_line_id.credit_insurance_extended_due_date",
        "declaration_id.previous_due_date",
    )
    def _compute_due_date(self):
        for line in self:
            # An extension request reports the due date it changes.
            line.due_date = (
                line.declaration_id.previous_due_date
                or line.move_line_id.credit_insurance_extended_due_date
                or line.move_line_id.date_maturity
            )

    @api.depends("move_line_id", "move_id.line_ids")
    def _compute_instalment_label(self):
        for line in self:
            instalments = line.move_id._credit_insurance_instalments()
            line.instalment_label = (
                f"{list(instalments).index(line.move_line_id) + 1}/{len(instalments)}"
                if line.move_line_id in instalments
                else ""
            )

    @api.depends_context("lang")
    @api.depends("move_line_id", "deadline")
    def _compute_deadline_basis(self):
        for line in self:
            line.deadline_basis = (
                line.move_line_id.sudo()._credit_insurance_deadline_basis() or False
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

    @api.constrains("move_id", "move_line_id", "declaration_id")
    def _check_invoice(self):
        open_lines = self.search(
            [
                ("move_line_id", "in", self.move_line_id.ids),
                ("declaration_open", "=", True),
                ("id", "not in", self.ids),
            ]
        )
        taken = {(line.move_line_id.id, line.category): line for line in open_lines}
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
            if line.move_line_id.move_id != move:
                raise ValidationError(
                    self.env._(
                        "The instalment of a line of declaration %(declaration)s "
                        "is not one of invoice %(invoice)s.",
                        declaration=declaration.name,
                        invoice=move.name,
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
            other = taken.get((line.move_line_id.id, line.category))
            if line.declaration_open and other:
                raise ValidationError(
                    self.env._(
                        "Invoice %(invoice)s (due on %(due)s) is already in "
                        "%(declaration)s: an invoice is declared once.",
                        invoice=move.name,
                        due=format_date(self.env, line.move_line_id.date_maturity),
                        declaration=other.declaration_id.name,
                    )
                )
            if line.declaration_open:
                taken[line.move_line_id.id, line.category] = line

    def _log_dispute_change(self):
        """Say on the declaration that a declared invoice went into (or out
        of) dispute; the amount reported to the insurer follows."""
        lines = self.filtered(
            lambda line: line.declaration_open and line.category == "overdue"
        )
        # One note per invoice, whatever its number of instalments.
        for (declaration, move), group in lines.grouped(
            lambda line: (line.declaration_id, line.move_id)
        ).items():
            log_note(
                declaration,
                self.env._(
                    "Invoice %(invoice)s is disputed: it leaves the declared "
                    "amount until the dispute is cleared.",
                    invoice=move.name,
                )
                if group[0].disputed
                else self.env._(
                    "The dispute on invoice %(invoice)s is cleared: it is "
                    "declared again.",
                    invoice=move.name,
                ),
            )

    def _reopen_bounced(self):
        """A payment undone after the declaration closed as paid: the overdue
        is open again. The job declares it again within its deadline; past
        it (or on its last day) the credit managers are alerted at once."""
        today = fields.Date.context_today(self)
        reopened = self.filtered(
            lambda line: (
                not line.company_currency_id.is_zero(line.move_line_id.amount_residual)
            )
        )
        for line in reopened:
            declaration = line.declaration_id
            late = line.deadline and line.deadline <= today
            log_note(
                declaration,
                self.env._(
                    "The payment of invoice %(invoice)s (due on %(due)s) was "
                    "undone: the overdue is open again and is declared again.",
                    invoice=line.move_id.name,
                    due=format_date(self.env, line.due_date),
                ),
            )
            if not late:
                continue
            for user in declaration.company_id._credit_insurance_managers():
                declaration.activity_schedule(
                    "mail.mail_activity_data_todo",
                    date_deadline=today,
                    summary=self.env._(
                        "Payment undone: declare %(invoice)s again at once",
                        invoice=line.move_id.name,
                    ),
                    note=self.env._(
                        "The payment of invoice %(invoice)s of %(buyer)s was "
                        "undone after its declaration deadline (%(deadline)s): "
                        "declare the overdue to %(insurer)s now.",
                        invoice=line.move_id.name,
                        buyer=declaration.partner_id.name,
                        deadline=format_date(self.env, line.deadline),
                        insurer=declaration.insurer_id.name,
                    ),
                    user_id=user.id,
                )
        if reopened:
            self.env.ref("credit_insurance.ir_cron_declare_overdues")._trigger()
