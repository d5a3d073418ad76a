from collections import defaultdict
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from .access_groups import (
    CREDIT_MANAGER,
    CREDIT_STAFF,
    INVOICE,
    INVOICING,
    check_search_access,
)
from .credit_insurance_cover import ExposureDocument


class AccountMove(models.Model):
    _inherit = "account.move"

    # Set when the invoice is posted (computed on the state change, in one batch:
    # cheaper than writing each posted invoice), cleared when reset to draft.
    credit_insurance_policy_id = fields.Many2one(
        "credit.insurance.policy",
        string="Credit insurance policy",
        compute="_compute_credit_insurance_cover",
        store=True,
        copy=False,
        index="btree_not_null",
        check_company=True,
        help="Policy covering the buyer when the invoice was posted.",
        groups=CREDIT_STAFF,
    )
    credit_insurance_insurable_amount = fields.Monetary(
        string="Cover at posting",
        currency_field="company_currency_id",
        compute="_compute_credit_insurance_cover",
        store=True,
        copy=False,
        help="Part of the invoice that fitted within the buyer's insured limit "
        "when it was posted (company currency).",
        groups=CREDIT_STAFF,
    )
    credit_insurance_disputed = fields.Boolean(
        string="Disputed",
        copy=False,
        tracking=True,
        help="Litige: a disputed invoice is excluded from cover until the "
        "dispute is cleared.",
        groups=INVOICE,
    )
    credit_insurance_term_exceeded = fields.Boolean(
        string="Term above maximum credit period",
        compute="_compute_credit_insurance_term_exceeded",
        store=True,
        groups=INVOICE,
    )
    credit_insurance_insured_amount = fields.Monetary(
        string="Insured amount",
        currency_field="company_currency_id",
        compute="_compute_credit_insurance_insured_amount",
        store=True,
        help="Covered part of the invoice in company currency: within the limit "
        "in force when posted, VAT excluded unless the policy covers it, "
        "nothing while disputed or when the term exceeds the policy's maximum.",
        groups=CREDIT_STAFF,
    )
    credit_insurance_cover_state = fields.Selection(
        [
            ("none", "Not insured (no policy)"),
            ("full", "Insured"),
            ("partial", "Partly insured"),
            ("over_limit", "Not insured (limit exhausted)"),
            ("term", "Not insured (term too long)"),
            ("disputed", "Not insured (disputed)"),
            ("lost", "Cover lost (not declared in time)"),
        ],
        string="Cover",
        compute="_compute_credit_insurance_insured_amount",
        store=True,
        groups=INVOICE,
    )
    credit_insurance_declaration_deadline = fields.Date(
        string="Declaration deadline",
        compute="_compute_credit_insurance_declaration_deadline",
        store=True,
        help="Last day to declare this invoice to the insurer if it stays unpaid: "
        "due date (extended, if it was) plus the policy's declaration period.",
        groups=INVOICE,
    )
    # --- overdue declarations (models/credit_insurance_declaration.py) ---
    credit_insurance_extended_due_date = fields.Date(
        string="Extended due date",
        readonly=True,
        copy=False,
        tracking=True,
        help="New due date granted by an extension (prorogation) reported to "
        "the insurer; the declaration deadline counts from it.",
        groups=INVOICE,
    )
    credit_insurance_cover_lost = fields.Boolean(
        string="Cover lost",
        readonly=True,
        copy=False,
        tracking=True,
        help="The overdue was not declared to the insurer before its deadline: "
        "the invoice is no longer insured.",
        groups=INVOICE,
    )
    credit_insurance_declaration_line_ids = fields.One2many(
        "credit.insurance.declaration.line",
        "move_id",
        string="Declared in",
        readonly=True,
        groups=CREDIT_STAFF,
    )
    credit_insurance_declaration_id = fields.Many2one(
        "credit.insurance.declaration",
        string="Overdue declaration",
        compute="_compute_credit_insurance_declaration_id",
        help="The latest declaration of this invoice's overdue to the insurer.",
        groups=CREDIT_STAFF,
    )

    @api.depends(
        "invoice_date",
        "invoice_date_due",
        "credit_insurance_policy_id.max_credit_days",
    )
    def _compute_credit_insurance_term_exceeded(self):
        for move in self:
            maximum = move.credit_insurance_policy_id.max_credit_days
            move.credit_insurance_term_exceeded = bool(
                maximum
                and move.invoice_date
                and move.invoice_date_due
                and (move.invoice_date_due - move.invoice_date).days > maximum
            )

    @api.depends(
        "credit_insurance_policy_id",
        "credit_insurance_insurable_amount",
        "credit_insurance_disputed",
        "credit_insurance_term_exceeded",
        "credit_insurance_cover_lost",
        "amount_total_signed",
        "amount_untaxed_signed",
    )
    def _compute_credit_insurance_insured_amount(self):
        for move in self:
            policy = move.credit_insurance_policy_id
            insurable = move.credit_insurance_insurable_amount
            if not policy:
                state = "none"
            elif move.credit_insurance_term_exceeded:
                state = "term"
            elif move.credit_insurance_cover_lost:
                state = "lost"
            elif move.credit_insurance_disputed:
                state = "disputed"
            elif move.company_currency_id.is_zero(insurable):
                state = "over_limit"
            elif (
                move.company_currency_id.compare_amounts(
                    insurable, move._credit_insurance_base(policy)
                )
                < 0
            ):
                state = "partial"
            else:
                state = "full"
            move.credit_insurance_cover_state = state
            move.credit_insurance_insured_amount = (
                insurable if state in ("full", "partial") else 0.0
            )

    @api.depends(
        "invoice_date_due",
        "credit_insurance_extended_due_date",
        "credit_insurance_policy_id.declaration_days",
    )
    def _compute_credit_insurance_declaration_deadline(self):
        for move in self:
            policy = move.credit_insurance_policy_id
            due = move.credit_insurance_extended_due_date or move.invoice_date_due
            move.credit_insurance_declaration_deadline = (
                due + timedelta(days=policy.declaration_days)
                if policy and due
                else False
            )

    @api.depends(
        "credit_insurance_declaration_line_ids.declaration_id.state",
        "credit_insurance_declaration_line_ids.category",
    )
    def _compute_credit_insurance_declaration_id(self):
        for move in self:
            lines = move.credit_insurance_declaration_line_ids.filtered(
                lambda line: line.category == "overdue"
            )
            open_lines = lines.filtered("declaration_open")
            move.credit_insurance_declaration_id = (
                (open_lines or lines).sorted("id")[-1:].declaration_id
            )

    def _credit_insurance_base(self, policy):
        """Amount of the invoice the policy would insure (company currency)."""
        self.ensure_one()
        return (
            self.amount_total_signed
            if policy.vat_covered
            else self.amount_untaxed_signed
        )

    @api.model
    def _search(self, domain, *args, **kwargs):
        check_search_access(self, domain)
        return super()._search(domain, *args, **kwargs)

    # ---------------------------------------------------------------- posting

    @api.depends("state")
    def _compute_credit_insurance_cover(self):
        """Record the policy and the part of each invoice within the limit.

        Runs when invoices are posted (or reset to draft). Invoices posted
        together consume the buyer's availability in date order.
        """
        posted = self.filtered(
            lambda m: m.state == "posted" and m.move_type == "out_invoice"
        )
        (self - posted).update(
            {
                "credit_insurance_policy_id": False,
                "credit_insurance_insurable_amount": 0,
            }
        )
        for company, moves in posted.grouped("company_id").items():
            covers = (
                self.env["credit.insurance.cover"]
                .with_company(company)
                ._get_buyer_covers(moves.commercial_partner_id, exclude_moves=moves)
            )
            consumed = defaultdict(float)
            # An imported move may be posted without an invoice date.
            for move in moves.sorted(lambda m: (m.invoice_date or m.date, m.id)):
                cover = covers.get(move.commercial_partner_id.id)
                if not cover or not cover.policy:
                    move.credit_insurance_policy_id = False
                    move.credit_insurance_insurable_amount = 0.0
                    continue
                base = move._credit_insurance_base(cover.policy)
                room = cover.limit - cover.receivables - consumed[cover.buyer_id]
                consumed[cover.buyer_id] += base
                move.credit_insurance_policy_id = cover.policy
                move.credit_insurance_insurable_amount = min(base, max(room, 0.0))

    def _post(self, soft=True):
        self._credit_insurance_check_posting(soft)
        return super()._post(soft)

    def _credit_insurance_check_posting(self, soft):
        """Refuse customer invoices that would exceed the buyer's insured limit.

        Lines invoicing a confirmed order were checked with the order; only
        the other lines add to the exposure. Buyers are locked as for orders.
        """
        today = fields.Date.context_today(self)
        invoices = self.filtered(
            lambda m: (
                m.move_type == "out_invoice"
                and m.state == "draft"
                # Posted later by the scheduler, checked then.
                and not (soft and m.date and m.date > today)
            )
        )
        refused = []
        for company, moves in invoices.grouped("company_id").items():
            documents = []
            for move in moves:
                lines = move.invoice_line_ids.filtered(
                    lambda line: (
                        line.display_type == "product"
                        and not any(
                            sale_line.order_id.state == "sale"
                            for sale_line in line.sale_line_ids
                        )
                    )
                )
                if lines:
                    documents.append(
                        ExposureDocument(
                            record=move,
                            partner=move.partner_id,
                            date=move.invoice_date or today,
                            amounts={
                                move.currency_id.id: (
                                    sum(lines.mapped("price_total")),
                                    sum(lines.mapped("price_subtotal")),
                                )
                            },
                        )
                    )
            checks = (
                self.env["credit.insurance.cover"]
                .with_company(company)
                ._check_documents(documents, exclude_moves=moves, lock=True)
            )
            refused += [check for check in checks if check.refused]
        if refused:
            raise UserError(
                "\n\n".join(self._credit_insurance_refusal(check) for check in refused)
            )

    @api.model
    def _credit_insurance_refusal(self, check):
        Cover = self.env["credit.insurance.cover"]
        env = Cover._user_env()
        move = check.document.record
        invoice = move.name if move.name and move.name != "/" else move.display_name
        buyer = check.buyer.display_name
        if check.stopped:
            return env._(
                "Invoice %(invoice)s cannot be posted: deliveries to %(buyer)s are "
                "stopped (%(reason)s).",
                invoice=invoice,
                buyer=buyer,
                reason=check.buyer.credit_insurance_stop_reason
                or env._("no reason given"),
            )
        headline = env._(
            "Invoice %(invoice)s cannot be posted: it would take %(buyer)s over its "
            "insured limit.",
            invoice=invoice,
            buyer=buyer,
        )
        figures = Cover._check_figures(check, env._("This invoice"))
        return f"{headline}\n{figures}"

    def write(self, vals):
        if "credit_insurance_disputed" in vals and not self.env.su:
            user = self.env.user
            if not (user.has_group(INVOICING) or user.has_group(CREDIT_MANAGER)):
                raise AccessError(
                    self.env._(
                        "Only invoicing users and credit insurance managers can "
                        "mark an invoice as disputed or clear the dispute."
                    )
                )
        result = super().write(vals)
        if "credit_insurance_disputed" in vals:
            # A declared invoice in dispute leaves the declared amount (and
            # comes back when the dispute is cleared): the insurer is told.
            # Invoicing users set the flag but do not read declarations.
            self.sudo().credit_insurance_declaration_line_ids._log_dispute_change()
        return result

    # ------------------------------------------------- declarations, extensions

    def action_view_credit_insurance_declaration(self):
        self.ensure_one()
        return self.credit_insurance_declaration_id._get_formview_action()

    def action_request_credit_insurance_extension(self):
        """Open the extension (prorogation) request for this invoice."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Request an extension"),
            "res_model": "credit.insurance.extension.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_move_id": self.id},
        }
