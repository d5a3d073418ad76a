from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL, format_date

from .access_groups import (
    CREDIT_MANAGER,
    CREDIT_STAFF,
    INVOICE,
    INVOICING,
    check_search_access,
)
from .credit_insurance_cover import ExposureDocument

# Cover states in which an invoice is (or may become) insured: the deadline
# to declare its overdue applies, and missing it loses the cover.
COVERED_STATES = ("full", "partial", "over_limit")


class AccountMove(models.Model):
    _inherit = "account.move"

    # The terms of the cover are fixed when the invoice is posted, from the
    # limit and policy in force on its invoice (delivery) date (computed on
    # the state change, in one batch per date); cleared when reset to draft.
    credit_insurance_policy_id = fields.Many2one(
        "credit.insurance.policy",
        string="Credit insurance policy",
        compute="_compute_credit_insurance_cover",
        store=True,
        copy=False,
        index="btree_not_null",
        check_company=True,
        help="Policy covering the buyer on the invoice (delivery) date.",
        groups=CREDIT_STAFF,
    )
    credit_insurance_limit_id = fields.Many2one(
        "credit.insurance.limit",
        string="Limit decision at delivery",
        compute="_compute_credit_insurance_cover",
        store=True,
        copy=False,
        groups=CREDIT_STAFF,
        help="The named limit in force on the invoice (delivery) date; empty: "
        "the policy's discretionary limit.",
    )
    credit_insurance_delivery_limit = fields.Monetary(
        string="Insured limit at delivery",
        currency_field="company_currency_id",
        compute="_compute_credit_insurance_cover",
        store=True,
        copy=False,
        groups=CREDIT_STAFF,
        help="The buyer's insured limit (named or discretionary) in force on the "
        "invoice (delivery) date, in company currency. Later reductions and "
        "withdrawals do not change it.",
    )
    credit_insurance_coverage_pct = fields.Float(
        string="Coverage % at delivery",
        compute="_compute_credit_insurance_cover",
        store=True,
        copy=False,
        groups=CREDIT_STAFF,
        help="Share of the loss the insurer pays on this invoice (quotité "
        "garantie), as on the invoice (delivery) date.",
    )
    credit_insurance_stopped = fields.Boolean(
        string="Invoiced under a stop of deliveries",
        compute="_compute_credit_insurance_cover",
        store=True,
        copy=False,
        groups=INVOICE,
        help="Deliveries to the buyer were stopped on the invoice date: nothing "
        "of this invoice is insured.",
    )
    credit_insurance_insurable_amount = fields.Monetary(
        string="Insurable part",
        currency_field="company_currency_id",
        compute="_compute_credit_insurance_cover",
        store=True,
        copy=False,
        help="The most of this invoice the policy may insure (company currency, "
        "VAT as the policy says), before the buyer's limit is shared among its "
        "open invoices.",
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
    credit_insurance_dispute_cleared_date = fields.Date(
        string="Dispute settled on",
        readonly=True,
        copy=False,
        tracking=True,
        groups=INVOICE,
        help="A fresh declaration period (policy parameter) runs from this day.",
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
        readonly=True,
        copy=False,
        help="Insured part of what the buyer still owes on this invoice "
        "(company currency, VAT as the policy says): the buyer's limit in force "
        "when each invoice was delivered is shared among its open invoices, "
        "oldest first, so that an invoice over the limit becomes insured as "
        "earlier ones are paid. Nothing while disputed, under a stop of "
        "deliveries, when the term exceeds the policy's maximum or once the "
        "cover is lost.",
        groups=CREDIT_STAFF,
    )
    credit_insurance_cover_state = fields.Selection(
        [
            ("none", "Not insured (no policy)"),
            ("full", "Insured"),
            ("partial", "Partly insured"),
            ("over_limit", "Not insured (limit exhausted)"),
            ("no_limit", "Not insured (no limit at delivery)"),
            ("stopped", "Not insured (stop of deliveries)"),
            ("term", "Not insured (term too long)"),
            ("disputed", "Not insured (disputed)"),
            ("lost", "Cover lost (not declared in time)"),
        ],
        string="Cover",
        compute="_compute_credit_insurance_cover_state",
        store=True,
        groups=INVOICE,
    )
    credit_insurance_declaration_deadline = fields.Date(
        string="Declaration deadline",
        compute="_compute_credit_insurance_declaration_deadline",
        store=True,
        help="Last day to declare the next instalment still unpaid if it stays "
        "unpaid, as the policy's deadline model counts it (each instalment has "
        "its own).",
        groups=INVOICE,
    )
    credit_insurance_warning = fields.Text(
        string="Credit insurance warning",
        compute="_compute_credit_insurance_warning",
        groups=INVOICE,
        help="Shown on a draft invoice whose buyer is under a stop of deliveries.",
    )
    # --- overdue declarations (models/credit_insurance_declaration.py) ---
    credit_insurance_extended_due_date = fields.Date(
        string="Extended due date",
        compute="_compute_credit_insurance_extended_due_date",
        help="New due date of the next unpaid instalment, granted by an "
        "extension (prorogation).",
        groups=INVOICE,
    )
    credit_insurance_cover_lost = fields.Boolean(
        string="Cover lost",
        readonly=True,
        copy=False,
        tracking=True,
        help="The overdue was not declared to the insurer before its deadline: "
        "the invoice is no longer insured, for good.",
        groups=INVOICE,
    )
    credit_insurance_declaration_line_ids = fields.One2many(
        "credit.insurance.declaration.line",
        "move_id",
        string="Declared in",
        readonly=True,
        groups=CREDIT_STAFF,
    )
    credit_insurance_extension_line_ids = fields.Many2many(
        "credit.insurance.declaration.line",
        string="Extensions",
        compute="_compute_credit_insurance_extension_line_ids",
        groups=CREDIT_STAFF,
        help="Every extension asked for the due dates of this invoice, with the "
        "due date before and after and the insurer's answer.",
    )
    credit_insurance_instalment_ids = fields.Many2many(
        "account.move.line",
        string="Instalments",
        compute="_compute_credit_insurance_instalment_ids",
        groups=INVOICE,
    )
    credit_insurance_declaration_id = fields.Many2one(
        "credit.insurance.declaration",
        string="Overdue declaration",
        compute="_compute_credit_insurance_declaration_id",
        help="The latest declaration of this invoice's overdue to the insurer.",
        groups=CREDIT_STAFF,
    )

    def init(self):
        # The cover of a batch of buyers reads their posted invoices.
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS credit_insurance_move_buyer_idx "
                "ON account_move (commercial_partner_id, company_id) "
                "WHERE move_type = 'out_invoice' AND state = 'posted'"
            )
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
        "credit_insurance_delivery_limit",
        "credit_insurance_stopped",
        "credit_insurance_insurable_amount",
        "credit_insurance_insured_amount",
        "credit_insurance_disputed",
        "credit_insurance_term_exceeded",
        "credit_insurance_cover_lost",
        "credit_insurance_policy_id.vat_covered",
        "amount_residual_signed",
        "amount_total_signed",
        "amount_untaxed_signed",
    )
    def _compute_credit_insurance_cover_state(self):
        for move in self:
            move.credit_insurance_cover_state = move._credit_insurance_cover_state()

    def _credit_insurance_cover_state(self):
        """Why the invoice is (not) insured, the first reason first."""
        self.ensure_one()
        currency = self.company_currency_id
        if not self.credit_insurance_policy_id:
            return "none"
        if self.credit_insurance_term_exceeded:
            return "term"
        if self.credit_insurance_stopped:
            return "stopped"
        if self.credit_insurance_cover_lost:
            return "lost"
        if self.credit_insurance_disputed:
            return "disputed"
        if currency.is_zero(self.credit_insurance_delivery_limit):
            return "no_limit"
        insured = self.credit_insurance_insured_amount
        owed = self._credit_insurance_open_base()
        if currency.compare_amounts(insured, owed) >= 0:
            return "full"
        return "over_limit" if currency.is_zero(insured) else "partial"

    @api.depends(
        "line_ids.credit_insurance_declaration_deadline",
        "line_ids.reconciled",
    )
    def _compute_credit_insurance_declaration_deadline(self):
        for move in self:
            lines = move.line_ids.filtered("credit_insurance_declaration_deadline")
            unpaid = lines.filtered(lambda line: not line.reconciled)
            deadlines = (unpaid or lines).mapped(
                "credit_insurance_declaration_deadline"
            )
            move.credit_insurance_declaration_deadline = (
                min(deadlines) if deadlines else False
            )

    @api.depends("line_ids.credit_insurance_extended_due_date", "line_ids.reconciled")
    def _compute_credit_insurance_extended_due_date(self):
        for move in self:
            extended = move._credit_insurance_instalments().filtered(
                "credit_insurance_extended_due_date"
            )
            unpaid = extended.filtered(lambda line: not line.reconciled)
            move.credit_insurance_extended_due_date = (unpaid or extended)[
                :1
            ].credit_insurance_extended_due_date or False

    @api.depends("credit_insurance_declaration_line_ids.category")
    def _compute_credit_insurance_extension_line_ids(self):
        for move in self:
            move.credit_insurance_extension_line_ids = (
                move.sudo()
                .credit_insurance_declaration_line_ids.filtered(
                    lambda line: line.category == "extension"
                )
                .with_env(self.env)
            )

    @api.depends("line_ids.date_maturity", "line_ids.account_id")
    def _compute_credit_insurance_instalment_ids(self):
        for move in self:
            move.credit_insurance_instalment_ids = move._credit_insurance_instalments()

    def _credit_insurance_instalments(self):
        """The receivable lines of a customer invoice, one per due date
        (instalment), earliest first."""
        self.ensure_one()
        if self.move_type != "out_invoice":
            return self.env["account.move.line"]
        return self.line_ids.filtered(
            lambda line: line.account_type == "asset_receivable"
        ).sorted(lambda line: (line.date_maturity or line.date, line.id))

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

    def _credit_insurance_open_base(self):
        """What the buyer still owes on the invoice, as the policy insures it
        (company currency, VAT as the policy says): see
        :meth:`CreditInsuranceCover._allocate_insured_amounts`."""
        self.ensure_one()
        owed = self.amount_residual_signed
        policy = self.credit_insurance_policy_id
        if policy and not policy.vat_covered and self.amount_total_signed:
            owed = owed * self.amount_untaxed_signed / self.amount_total_signed
        return self.company_currency_id.round(owed)

    # ---------------------------------------------------------------- posting

    @api.depends("state")
    def _compute_credit_insurance_cover(self):
        """Fix the terms of each invoice's cover when it is posted: the
        policy, the limit (named or discretionary) and coverage in force on
        its invoice (delivery) date, and whether deliveries were stopped.

        How much of it is insured then follows the buyer's open invoices
        (:meth:`CreditInsuranceCover._allocate_insured_amounts`).
        """
        posted = self.filtered(
            lambda m: m.state == "posted" and m.move_type == "out_invoice"
        )
        (self - posted).update(self._credit_insurance_no_terms())
        for (company, day), moves in posted.grouped(
            lambda m: (m.company_id, m.invoice_date or m.date)
        ).items():
            covers = (
                self.env["credit.insurance.cover"]
                .with_company(company)
                ._get_buyer_covers(moves.commercial_partner_id, date=day)
            )
            for move in moves:
                cover = covers.get(move.commercial_partner_id.id)
                if not cover or not cover.policy:
                    move.update(self._credit_insurance_no_terms())
                    continue
                stopped = cover.stopped_on(day)
                move.update(
                    {
                        "credit_insurance_policy_id": cover.policy,
                        "credit_insurance_limit_id": cover.decision,
                        "credit_insurance_delivery_limit": cover.limit,
                        "credit_insurance_coverage_pct": cover.coverage_pct,
                        "credit_insurance_stopped": stopped,
                        "credit_insurance_insurable_amount": 0.0
                        if stopped
                        else move._credit_insurance_base(cover.policy),
                    }
                )

    @api.model
    def _credit_insurance_no_terms(self):
        return {
            "credit_insurance_policy_id": False,
            "credit_insurance_limit_id": False,
            "credit_insurance_delivery_limit": 0.0,
            "credit_insurance_coverage_pct": 0.0,
            "credit_insurance_stopped": False,
            "credit_insurance_insurable_amount": 0.0,
        }

    def _credit_insurance_refresh_terms(self):
        """Fix the terms of these posted invoices again (a decision recorded
        late, with an effective date before their delivery), then share the
        limits again."""
        invoices = self.filtered(
            lambda m: m.state == "posted" and m.move_type == "out_invoice"
        )
        if not invoices:
            return
        fields_to_compute = [
            self._fields[name] for name in self._credit_insurance_no_terms()
        ]
        for field in fields_to_compute:
            self.env.add_to_compute(field, invoices)
        invoices._recompute_recordset([field.name for field in fields_to_compute])
        self.env["credit.insurance.cover"]._allocate_insured_amounts(
            invoices.commercial_partner_id
        )

    @api.depends_context("lang", "company")
    @api.depends("state", "partner_id", "move_type", "invoice_date")
    def _compute_credit_insurance_warning(self):
        drafts = self.filtered(
            lambda m: (
                m.state == "draft"
                and m.move_type == "out_invoice"
                and m.partner_id
                and m.company_id
            )
        )
        (self - drafts).credit_insurance_warning = False
        env = self.env["credit.insurance.cover"]._user_env()
        for (company, day), moves in drafts.grouped(
            lambda m: (m.company_id, m.invoice_date)
        ).items():
            today = fields.Date.context_today(self)
            covers = (
                self.env["credit.insurance.cover"]
                .with_company(company)
                ._get_buyer_covers(moves.partner_id, date=day or today)
            )
            for move in moves:
                cover = covers.get(move.partner_id.commercial_partner_id.id)
                move.credit_insurance_warning = (
                    env._(
                        "Deliveries to %(buyer)s are stopped (%(reason)s): this "
                        "invoice will not be insured.",
                        buyer=move.partner_id.commercial_partner_id.display_name,
                        reason=move.partner_id.commercial_partner_id.with_company(
                            company
                        ).credit_insurance_stop_reason
                        or env._("no reason given"),
                    )
                    if cover and cover.policy and cover.stopped_on(day or today)
                    else False
                )

    @api.model
    def _search(self, domain, *args, **kwargs):
        check_search_access(self, domain)
        return super()._search(domain, *args, **kwargs)

    def _post(self, soft=True):
        self._credit_insurance_check_posting(soft)
        posted = super()._post(soft)
        posted._credit_insurance_log_stopped()
        return posted

    def _credit_insurance_log_stopped(self):
        """Posted under a stop of deliveries: posted all the same (the goods
        may be gone), but not insured, and said so on the invoice."""
        for move in self.filtered(
            lambda m: m.move_type == "out_invoice" and m.sudo().credit_insurance_stopped
        ):
            buyer = move.commercial_partner_id.with_company(move.company_id).sudo()
            move._message_log(
                body=self.env._(
                    "Posted under a stop of deliveries to %(buyer)s (%(reason)s): "
                    "this invoice is not insured.",
                    buyer=buyer.display_name,
                    reason=buyer.credit_insurance_stop_reason
                    or self.env._("no reason given"),
                )
            )

    def _credit_insurance_check_posting(self, soft):
        """Refuse customer invoices that would exceed the buyer's insured limit.

        Lines invoicing a confirmed order were checked with the order; only
        the other lines add to the exposure. Buyers are locked as for orders.
        Under a stop of deliveries an invoice is posted, not insured (see
        :meth:`_credit_insurance_log_stopped`).
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
            refused += [check for check in checks if check.refused_invoice]
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
        headline = env._(
            "Invoice %(invoice)s cannot be posted: it would take %(buyer)s over its "
            "insured limit.",
            invoice=invoice,
            buyer=check.buyer.display_name,
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
        cleared = (
            self.filtered("credit_insurance_disputed")
            if "credit_insurance_disputed" in vals
            and not vals["credit_insurance_disputed"]
            else self.browse()
        )
        result = super().write(vals)
        if cleared:
            # A fresh declaration period runs from the settlement.
            cleared.sudo().credit_insurance_dispute_cleared_date = (
                fields.Date.context_today(self)
            )
        if "credit_insurance_disputed" in vals:
            # A declared invoice in dispute leaves the declared amount (and
            # comes back when the dispute is cleared): the insurer is told.
            # Invoicing users set the flag but do not read declarations.
            self.sudo().credit_insurance_declaration_line_ids._log_dispute_change()
        if {"state", "credit_insurance_disputed", "credit_insurance_cover_lost"} & set(
            vals
        ):
            invoices = self.filtered(lambda m: m.move_type == "out_invoice")
            if invoices:
                self.env["credit.insurance.cover"]._allocate_insured_amounts(
                    invoices.commercial_partner_id
                )
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


class AccountMoveLine(models.Model):
    """Each receivable line of a customer invoice is one instalment (payment
    term line): its own due date, declaration trigger and deadline."""

    _inherit = "account.move.line"

    credit_insurance_extended_due_date = fields.Date(
        string="Extended due date",
        readonly=True,
        copy=False,
        groups=INVOICE,
        help="New due date of this instalment granted by an extension "
        "(prorogation) in force: free, or accepted by the insurer.",
    )
    credit_insurance_due_date = fields.Date(
        string="Due date in force",
        compute="_compute_credit_insurance_due_date",
        groups=INVOICE,
    )
    credit_insurance_declaration_deadline = fields.Date(
        string="Declaration deadline",
        compute="_compute_credit_insurance_declaration_deadline",
        store=True,
        groups=INVOICE,
        help="Last day to declare this instalment to the insurer if it stays "
        "unpaid, as the policy's deadline model counts it.",
    )

    @api.depends("date_maturity", "credit_insurance_extended_due_date")
    def _compute_credit_insurance_due_date(self):
        for line in self:
            line.credit_insurance_due_date = (
                line.credit_insurance_extended_due_date or line.date_maturity
            )

    @api.depends(
        "date_maturity",
        "credit_insurance_extended_due_date",
        "account_id",
        "move_id.move_type",
        "move_id.invoice_date",
        "move_id.credit_insurance_policy_id",
        "move_id.credit_insurance_dispute_cleared_date",
        "move_id.credit_insurance_policy_id.deadline_model",
        "move_id.credit_insurance_policy_id.declaration_days",
        "move_id.credit_insurance_policy_id.max_credit_days",
        "move_id.credit_insurance_policy_id.max_extension_days",
        "move_id.credit_insurance_policy_id.dispute_declaration_days",
    )
    def _compute_credit_insurance_declaration_deadline(self):
        for line in self:
            deadline = line._credit_insurance_deadline()
            line.credit_insurance_declaration_deadline = (
                deadline.deadline if deadline else False
            )

    def _credit_insurance_deadline(self):
        """The :class:`DeclarationDeadline` of this instalment, None when it
        is not the receivable of an insured customer invoice."""
        self.ensure_one()
        move = self.move_id
        policy = move.credit_insurance_policy_id
        if (
            not policy
            or move.move_type != "out_invoice"
            or self.account_type != "asset_receivable"
        ):
            return None
        return policy._declaration_deadline(
            self.credit_insurance_extended_due_date or self.date_maturity,
            self.date_maturity,
            move.invoice_date,
            move.credit_insurance_dispute_cleared_date,
        )

    def _credit_insurance_overdue_line(self):
        """The line of an open overdue declaration holding this instalment
        (empty when none)."""
        self.ensure_one()
        return (
            self.env["credit.insurance.declaration.line"]
            .sudo()
            .search(
                [
                    ("move_line_id", "=", self.id),
                    ("category", "=", "overdue"),
                    ("declaration_open", "=", True),
                ],
                limit=1,
            )
        )

    def _credit_insurance_deadline_basis(self):
        """How the deadline was counted, in words (the user's language)."""
        self.ensure_one()
        deadline = self._credit_insurance_deadline()
        if not deadline:
            return ""
        env = self.env["credit.insurance.cover"]._user_env()
        start = format_date(env, deadline.start)
        texts = {
            "due_date": env._(
                "%(days)s days after the due date (%(start)s)",
                days=deadline.days,
                start=start,
            ),
            "max_credit_period": env._(
                "%(days)s days after the end of the maximum credit period (%(start)s)",
                days=deadline.days,
                start=start,
            ),
            "max_extension_period": env._(
                "%(days)s days after the end of the maximum extension period "
                "(%(start)s)",
                days=deadline.days,
                start=start,
            ),
            "dispute": env._(
                "%(days)s days after the dispute was settled (%(start)s)",
                days=deadline.days,
                start=start,
            ),
        }
        return texts[deadline.basis]
