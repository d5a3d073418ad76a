"""Claims (sinistres): from an overdue declaration to the indemnity, its
accounting and the recoveries shared back with the insurer.

Accounting, in the company currency (see readme/USAGE.md):

- indemnity confirmed: debit the insurer's account (partner: the insurer),
  credit the buyer's receivable, reconciled with the claim's invoices, oldest
  first; what the indemnity does not cover stays open on the invoices for the
  accountant to write off;
- the insurer's payment is registered on the insurer's line and reconciles it;
- a recovery from the buyer after the indemnity: the insurer's share (the
  indemnified part of the loss) is debited to the recoveries account and
  credited to the insurer's account, which then shows what is owed back.
"""

import logging

import requests

from odoo import Command, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import format_date

from ..providers import InsurerError, InsurerProvider, get_provider_class
from .credit_insurance_insurer import can_commit

_logger = logging.getLogger(__name__)

CAUSES = [
    ("insolvency", "Insolvency"),
    ("protracted_default", "Protracted default"),
    ("political", "Political risk"),
]
STATES = [
    ("draft", "Draft"),
    ("submitted", "Submitted"),
    ("under_review", "Under review"),
    ("approved", "Accepted"),
    ("partial", "Partly accepted"),
    ("rejected", "Rejected"),
    ("paid", "Indemnity paid"),
    ("closed", "Closed"),
]
# Whether the indemnity is confirmed (and counts against the annual maximum).
INDEMNIFIED_STATES = ("approved", "partial", "paid", "closed")
OPEN_STATES = ("draft", "submitted", "under_review")
# providers' claim statuses -> our states, in one place ("indemnified" is
# approved or partially approved, depending on the amount admitted).
INSURER_STATES = {
    "open": "under_review",
    "indemnified": "approved",
    "rejected": "rejected",
    "closed": "closed",
}
CLAIMS_PER_BATCH = 200


class CreditInsuranceClaim(models.Model):
    """A claim on the insurer for a buyer's unpaid invoices, followed to the
    indemnity and beyond (recoveries)."""

    _name = "credit.insurance.claim"
    _description = "Credit insurance claim"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(
        string="Reference", required=True, readonly=True, copy=False, default="/"
    )
    declaration_id = fields.Many2one(
        "credit.insurance.declaration",
        string="Overdue declaration",
        index=True,
        check_company=True,
        tracking=True,
        ondelete="restrict",
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
        "credit.insurance.policy", required=True, check_company=True, tracking=True
    )
    insurer_id = fields.Many2one(related="policy_id.insurer_id", store=True, index=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(
        related="company_id.currency_id", string="Currency", store=True
    )
    state = fields.Selection(
        STATES,
        default="draft",
        required=True,
        readonly=True,
        copy=False,
        index=True,
        tracking=True,
        group_expand=True,
    )
    cause = fields.Selection(
        CAUSES, required=True, default="protracted_default", tracking=True
    )
    invoice_ids = fields.Many2many(
        "account.move",
        string="Invoices",
        check_company=True,
        domain="[('move_type', '=', 'out_invoice'), ('state', '=', 'posted'), "
        "('commercial_partner_id', '=', partner_id)]",
    )
    claim_ref = fields.Char(
        string="Claim reference",
        copy=False,
        index=True,
        tracking=True,
        help="The insurer's reference of the claim.",
    )
    insurer_status = fields.Char(
        string="Status at the insurer", readonly=True, copy=False
    )
    date_declared = fields.Date(
        string="Declaration date",
        required=True,
        default=fields.Date.context_today,
        tracking=True,
        help="When the overdue was declared to the insurer.",
    )
    date_insolvency = fields.Date(
        string="Insolvency date",
        tracking=True,
        help="Opening of the insolvency proceedings (insolvency claims).",
    )
    date_expected = fields.Date(
        string="Expected indemnity date",
        compute="_compute_date_expected",
        store=True,
        help="Declaration (or insolvency) date plus the policy's waiting period "
        "for the cause (political risks wait as protracted defaults do).",
    )
    date_indemnity = fields.Date(
        string="Indemnity confirmed on", readonly=True, copy=False, tracking=True
    )
    # Amounts (company currency)
    claimed_amount = fields.Monetary(tracking=True)
    admitted_amount = fields.Monetary(
        string="Amount admitted",
        tracking=True,
        help="The part of the claimed amount the insurer admits.",
    )
    insured_loss = fields.Monetary(
        compute="_compute_insured_loss",
        store=True,
        help="The amount admitted by the insurer, or the claimed amount until "
        "it admits one.",
    )
    limit_amount = fields.Monetary(
        string="Cover at delivery",
        compute="_compute_cover",
        store=True,
        readonly=False,
        help="Insured part of the claim's invoices, each under the limit (named "
        "or discretionary) in force when it was delivered: a later reduction "
        "or withdrawal does not change it. Invoices whose cover was lost are "
        "not claimed.",
    )
    coverage_pct = fields.Float(
        string="Coverage %",
        compute="_compute_cover",
        store=True,
        readonly=False,
        help="The share of the loss the insurer pays (quotité garantie), as on "
        "the delivery of the claim's invoices; the policy's political coverage "
        "for a political cause when it has one.",
    )
    left_out_note = fields.Text(
        string="Left out of the claim",
        compute="_compute_left_out_note",
        store=True,
        help="What the insurer does not indemnify, and why: invoices whose "
        "cover was lost (reported for information only), parts above the limit "
        "at delivery, under a stop of deliveries or in dispute.",
    )
    indemnity_computed = fields.Monetary(
        string="Computed indemnity",
        compute="_compute_indemnity_computed",
        help="min(insured loss, cover at delivery) × coverage % − deductible, "
        "capped by what remains of the policy's annual maximum liability.",
    )
    indemnity_amount = fields.Monetary(
        string="Indemnity",
        tracking=True,
        copy=False,
        help="The indemnity confirmed by the insurer (the computed one when "
        "approved without another amount).",
    )
    indemnity_received = fields.Monetary(
        compute="_compute_indemnity_received",
        store=True,
        help="Paid by the insurer: the reconciled part of its line in the "
        "indemnity entry.",
    )
    uncovered_amount = fields.Monetary(
        string="Not covered",
        compute="_compute_indemnity_received",
        store=True,
        help="The part of the insured loss the indemnity does not cover: left "
        "open on the invoices for the accountant to write off.",
    )
    indemnity_move_id = fields.Many2one(
        "account.move",
        string="Indemnity entry",
        readonly=True,
        copy=False,
        index=True,
        check_company=True,
    )
    recovery_ids = fields.One2many(
        "credit.insurance.claim.recovery", "claim_id", string="Recoveries"
    )
    recovered_amount = fields.Monetary(
        string="Recovered", compute="_compute_recoveries", store=True
    )
    recovery_owed_amount = fields.Monetary(
        string="Insurer's share of recoveries",
        compute="_compute_recoveries",
        store=True,
        help="Owed back to the insurer out of what the buyer paid after the indemnity.",
    )
    note = fields.Html()

    _sql_constraints = [
        (
            "claim_ref_uniq",
            "unique(insurer_id, claim_ref)",
            "This insurer already has a claim with this reference.",
        ),
    ]

    # ------------------------------------------------------------ computes

    @api.depends(
        "cause",
        "date_declared",
        "date_insolvency",
        "policy_id.waiting_days_insolvency",
        "policy_id.waiting_days_protracted_default",
    )
    def _compute_date_expected(self):
        for claim in self:
            policy = claim.policy_id
            if claim.cause == "insolvency":
                start = claim.date_insolvency or claim.date_declared
                days = policy.waiting_days_insolvency
            else:
                start = claim.date_declared
                days = policy.waiting_days_protracted_default
            claim.date_expected = start and fields.Date.add(start, days=days)

    @api.depends("claimed_amount", "admitted_amount")
    def _compute_insured_loss(self):
        for claim in self:
            claim.insured_loss = claim.admitted_amount or claim.claimed_amount

    @api.depends("invoice_ids", "cause")
    def _compute_cover(self):
        """The cover fixed at the delivery of the claim's invoices: the sum of
        their insured parts (each under the limit in force on its delivery
        date, see CreditInsuranceCover._allocate_insured_amounts) and their
        coverage %, weighted by those parts. Never the limit in force on the
        declaration date."""
        for claim in self:
            invoices = claim.invoice_ids._origin.sudo()
            insured = {
                invoice: invoice.credit_insurance_insured_amount for invoice in invoices
            }
            total = sum(insured.values())
            claim.limit_amount = claim.currency_id.round(total)
            if total:
                claim.coverage_pct = (
                    sum(
                        amount * claim._invoice_coverage_pct(invoice)
                        for invoice, amount in insured.items()
                    )
                    / total
                )
            else:
                claim.coverage_pct = (
                    claim._invoice_coverage_pct(invoices[:1]) if invoices else 0.0
                )

    def _invoice_coverage_pct(self, invoice):
        """The share of the loss the insurer pays on ``invoice`` for this
        claim's cause: the policy's own political coverage where it has one,
        else the coverage at delivery."""
        self.ensure_one()
        political = invoice.credit_insurance_policy_id.political_coverage_pct
        if self.cause == "political" and political:
            return political
        return invoice.credit_insurance_coverage_pct

    @api.depends("invoice_ids", "declaration_id")
    def _compute_left_out_note(self):
        labels = dict(
            self.env["account.move"]
            ._fields["credit_insurance_cover_state"]
            ._description_selection(self.env)
        )
        for claim in self:
            currency = claim.currency_id
            notes = []
            lost = claim.declaration_id.line_ids.move_id.filtered(
                "credit_insurance_cover_lost"
            ).sudo()
            for invoice in lost:
                notes.append(
                    self.env._(
                        "%(invoice)s (%(amount)s): cover lost, not declared by its "
                        "deadline %(deadline)s; reported to the insurer for "
                        "information only.",
                        invoice=invoice.name,
                        amount=currency.format(invoice.amount_residual_signed),
                        deadline=format_date(
                            self.env, invoice.credit_insurance_declaration_deadline
                        ),
                    )
                )
            for invoice in claim.invoice_ids._origin.sudo():
                owed = invoice._credit_insurance_open_base()
                uninsured = owed - invoice.credit_insurance_insured_amount
                if currency.compare_amounts(uninsured, 0.0) > 0:
                    notes.append(
                        self.env._(
                            "%(invoice)s: %(amount)s of %(owed)s not insured "
                            "(%(reason)s).",
                            invoice=invoice.name,
                            amount=currency.format(uninsured),
                            owed=currency.format(owed),
                            reason=labels.get(invoice.credit_insurance_cover_state)
                            or "-",
                        )
                    )
            claim.left_out_note = "\n".join(notes) or False

    @api.depends(
        "insured_loss",
        "limit_amount",
        "coverage_pct",
        "policy_id.deductible",
        "policy_id.annual_max_liability",
        "date_indemnity",
    )
    def _compute_indemnity_computed(self):
        for claim in self:
            claim.indemnity_computed = claim._indemnity_from_policy()

    def _indemnity_from_policy(self):
        """min(insured loss, limit) × coverage % − deductible, capped by the
        policy's remaining annual maximum liability (other claims only)."""
        self.ensure_one()
        covered = min(self.insured_loss, self.limit_amount) * self.coverage_pct / 100
        indemnity = max(covered - self.policy_id.deductible, 0.0)
        remaining = self.policy_id._remaining_max_liability(
            self.date_indemnity or fields.Date.context_today(self), exclude=self
        )
        if remaining is not None:
            indemnity = min(indemnity, remaining)
        return self.currency_id.round(indemnity)

    @api.depends(
        "state",
        "indemnity_amount",
        "insured_loss",
        "indemnity_move_id.line_ids.amount_residual",
    )
    def _compute_indemnity_received(self):
        for claim in self:
            line = claim._insurer_line()
            claim.indemnity_received = (
                claim.indemnity_amount - line.amount_residual if line else 0.0
            )
            claim.uncovered_amount = (
                max(claim.insured_loss - claim.indemnity_amount, 0.0)
                if claim.state in INDEMNIFIED_STATES
                else 0.0
            )

    @api.depends("recovery_ids.amount", "recovery_ids.insurer_share")
    def _compute_recoveries(self):
        for claim in self:
            claim.recovered_amount = sum(claim.recovery_ids.mapped("amount"))
            claim.recovery_owed_amount = sum(claim.recovery_ids.mapped("insurer_share"))

    @api.depends("name", "partner_id")
    def _compute_display_name(self):
        for claim in self:
            claim.display_name = (
                f"{claim.name} - {claim.partner_id.name}"
                if claim.partner_id
                else claim.name
            )

    # ------------------------------------------------------------ rules

    @api.constrains("claimed_amount", "policy_id")
    def _check_minimum_claim(self):
        for claim in self:
            minimum = claim.policy_id.minimum_claim_amount
            if claim.claimed_amount < 0:
                raise ValidationError(
                    self.env._(
                        "Claim %(claim)s: the claimed amount cannot be negative.",
                        claim=claim.name,
                    )
                )
            if minimum and claim.claimed_amount < minimum:
                raise ValidationError(
                    self.env._(
                        "The claimed amount (%(amount)s) is below the minimum "
                        "claim of policy %(policy)s (%(minimum)s): the insurer "
                        "does not take claims this small.",
                        amount=claim.currency_id.format(claim.claimed_amount),
                        policy=claim.policy_id.display_name,
                        minimum=claim.currency_id.format(minimum),
                    )
                )

    @api.constrains("invoice_ids")
    def _check_invoices_covered(self):
        """Lost cover is final: a claim never carries an invoice whose
        overdue was not declared in time."""
        for claim in self:
            lost = claim.invoice_ids.filtered("credit_insurance_cover_lost")
            if lost:
                raise ValidationError(
                    self.env._(
                        "Claim %(claim)s: invoice(s) %(invoices)s lost their "
                        "cover (not declared to the insurer by their deadline) "
                        "and cannot be claimed.",
                        claim=claim.name,
                        invoices=", ".join(lost.mapped("name")),
                    )
                )

    @api.constrains("admitted_amount", "indemnity_amount", "claimed_amount")
    def _check_amounts(self):
        for claim in self:
            if claim.admitted_amount < 0 or claim.indemnity_amount < 0:
                raise ValidationError(
                    self.env._(
                        "Claim %(claim)s: amounts cannot be negative.",
                        claim=claim.name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("name", "/") == "/":
                vals["name"] = self.env["ir.sequence"].next_by_code(
                    "credit.insurance.claim"
                )
        claims = super().create(vals_list)
        claims._stop_on_insolvency()
        return claims

    def write(self, vals):
        result = super().write(vals)
        if vals.get("cause") == "insolvency" or vals.get("date_insolvency"):
            self._stop_on_insolvency()
        return result

    def _stop_on_insolvency(self):
        """An insolvency stops deliveries to the buyer."""
        for claim in self.filtered(lambda c: c.cause == "insolvency"):
            claim.partner_id._credit_insurance_stop_deliveries(
                claim.company_id,
                self.env._(
                    "Insolvency of the buyer (claim %(claim)s)", claim=claim.name
                ),
            )

    @api.ondelete(at_uninstall=False)
    def _unlink_except_draft(self):
        if any(claim.state != "draft" for claim in self):
            raise UserError(
                self.env._("Only draft claims can be deleted; close the others.")
            )

    def _check_manager(self):
        self.env.company._check_credit_insurance_manager(
            self.env._("Only credit insurance managers can move a claim on.")
        )

    def _check_state(self, allowed, action):
        for claim in self:
            if claim.state not in allowed:
                raise UserError(
                    self.env._(
                        "Claim %(claim)s is %(state)s: it cannot be %(action)s.",
                        claim=claim.name,
                        state=claim._state_label(),
                        action=action,
                    )
                )

    def _state_label(self):
        return dict(self._fields["state"]._description_selection(self.env))[self.state]

    # ------------------------------------------------------------ workflow
    # Manual insurers: the credit manager follows the insurer's letters with
    # these buttons; connected insurers move the same states (cron).

    def action_submit(self):
        self._check_manager()
        self._check_state(("draft",), self.env._("submitted"))
        self._check_minimum_claim()
        self.write({"state": "submitted"})
        # The declaration it came from ends here (connected insurers say so
        # themselves, through the declaration's status).
        for claim in self.filtered(
            lambda c: (
                c.declaration_id.state in ("filed", "acknowledged", "in_collection")
            )
        ):
            if claim.claim_ref and not claim.declaration_id.claim_ref:
                claim.declaration_id.claim_ref = claim.claim_ref
            claim.declaration_id._close("claim_opened")

    def action_review(self):
        self._check_manager()
        self._check_state(("submitted",), self.env._("put under review"))
        self.write({"state": "under_review"})

    def action_approve(self):
        """The insurer confirmed the indemnity: record it and its entry."""
        self._check_manager()
        self._check_state(("submitted", "under_review"), self.env._("approved"))
        for claim in self:
            claim._approve(claim.indemnity_amount or claim._indemnity_from_policy())

    def action_reject(self):
        self._check_manager()
        self._check_state(("submitted", "under_review"), self.env._("rejected"))
        self.write({"state": "rejected"})

    def action_close(self):
        self._check_manager()
        self._check_state(
            ("approved", "partial", "paid", "rejected"), self.env._("closed")
        )
        self.write({"state": "closed"})

    def action_reset_to_draft(self):
        self._check_manager()
        self._check_state(("submitted", "under_review"), self.env._("reset"))
        self.write({"state": "draft"})

    def _approve(self, indemnity, date=None):
        """Confirm ``indemnity``; approved in full unless the insurer admits
        less than claimed."""
        self.ensure_one()
        admitted = self.admitted_amount or self.claimed_amount
        self.write(
            {
                "admitted_amount": admitted,
                "indemnity_amount": indemnity,
                "date_indemnity": date or fields.Date.context_today(self),
            }
        )
        self.state = self._indemnified_state()
        if not self.currency_id.is_zero(indemnity):
            self._post_indemnity_entry()

    def _indemnified_state(self):
        """Approved in full, unless the insurer admits less than claimed."""
        admitted = self.admitted_amount or self.claimed_amount
        if self.currency_id.compare_amounts(admitted, self.claimed_amount) >= 0:
            return "approved"
        return "partial"

    def _mark_unpaid(self):
        """Paid claims whose insurer's payment was unreconciled: the
        indemnity is awaited again."""
        for claim in self.filtered(
            lambda c: (
                c.state == "paid"
                and not c.currency_id.is_zero(c._insurer_line().amount_residual)
            )
        ):
            claim.state = claim._indemnified_state()
            claim.message_post(
                body=self.env._(
                    "The insurer's payment is no longer reconciled with the "
                    "indemnity: the claim waits for it again."
                )
            )

    def _mark_paid(self):
        """Approved claims whose indemnity the insurer has paid in full."""
        for claim in self.filtered(
            lambda c: (
                c.state in ("approved", "partial")
                and c.indemnity_move_id
                and c.currency_id.is_zero(c._insurer_line().amount_residual)
            )
        ):
            claim.state = "paid"

    # ------------------------------------------------------------ accounting

    def _insurer_line(self):
        self.ensure_one()
        account = self.policy_id._claim_insurer_account()
        return self.indemnity_move_id.line_ids.filtered(
            lambda line: line.account_id == account and line.debit
        )[:1]

    def _post_indemnity_entry(self):
        """Move the indemnified part of the buyer's receivable to the insurer,
        reconciled with the claim's invoices, oldest due date first."""
        self.ensure_one()
        if self.indemnity_move_id:
            return self.indemnity_move_id
        policy = self.policy_id
        currency = self.currency_id
        insurer_partner = self.insurer_id._get_accounting_partner()
        receivables = self.invoice_ids.line_ids.filtered(
            lambda line: (
                line.account_id.account_type == "asset_receivable"
                and not line.reconciled
                and line.amount_residual > 0
            )
        ).sorted(lambda line: (line.date_maturity or line.date, line.id))
        open_amount = sum(receivables.mapped("amount_residual"))
        if currency.compare_amounts(self.indemnity_amount, open_amount) > 0:
            raise UserError(
                self.env._(
                    "Claim %(claim)s: the indemnity (%(indemnity)s) is more than "
                    "the buyer still owes on the claim's invoices (%(open)s): "
                    "add the missing invoices to the claim or correct the "
                    "indemnity.",
                    claim=self.name,
                    indemnity=currency.format(self.indemnity_amount),
                    open=currency.format(open_amount),
                )
            )
        label = self.env._(
            "Indemnity of claim %(claim)s (%(buyer)s)",
            claim=self.name,
            buyer=self.partner_id.name,
        )
        to_allocate = self.indemnity_amount
        credits = []
        for line in receivables:
            amount = currency.round(min(to_allocate, line.amount_residual))
            if currency.is_zero(amount):
                break
            credits.append((line, amount))
            to_allocate -= amount
        move = (
            self.env["account.move"]
            .with_company(self.company_id)
            .create(
                {
                    "move_type": "entry",
                    "journal_id": policy._claim_journal().id,
                    "date": self.date_indemnity,
                    "ref": label,
                    "line_ids": [
                        Command.create(
                            {
                                "name": label,
                                "account_id": policy._claim_insurer_account().id,
                                "partner_id": insurer_partner.id,
                                "debit": self.indemnity_amount,
                            }
                        ),
                        *(
                            Command.create(
                                {
                                    "name": label,
                                    "account_id": line.account_id.id,
                                    "partner_id": line.partner_id.id,
                                    "credit": amount,
                                }
                            )
                            for line, amount in credits
                        ),
                    ],
                }
            )
        )
        move.action_post()
        self.indemnity_move_id = move
        for line, __ in credits:
            (
                move.line_ids.filtered(
                    lambda credit, line=line: (
                        credit.credit
                        and credit.account_id == line.account_id
                        and not credit.reconciled
                    )
                )[:1]
                | line
            ).reconcile()
        self.message_post(
            body=self.env._(
                "Indemnity of %(amount)s confirmed: %(entry)s moves it from the "
                "buyer's receivable to %(insurer)s; %(uncovered)s is not covered.",
                amount=currency.format(self.indemnity_amount),
                entry=move.name,
                insurer=insurer_partner.name,
                uncovered=currency.format(
                    max(self.insured_loss - self.indemnity_amount, 0.0)
                ),
            )
        )
        return move

    def action_register_insurer_payment(self):
        """Open the standard payment form on the insurer's line of the
        indemnity entry: the payment reconciles it."""
        self.ensure_one()
        line = self._insurer_line()
        if not line or line.reconciled:
            raise UserError(
                self.env._(
                    "Claim %(claim)s has no indemnity waiting for the insurer's "
                    "payment.",
                    claim=self.name,
                )
            )
        return line.action_register_payment()

    def _register_insurer_payment(self, amount=None, date=None, journal=None):
        """Record the insurer's payment (as the payment form does)."""
        self.ensure_one()
        line = self._insurer_line()
        wizard = (
            self.env["account.payment.register"]
            .with_company(self.company_id)
            .with_context(active_model="account.move.line", active_ids=line.ids)
            .create(
                {
                    "amount": amount or line.amount_residual,
                    "payment_date": date or fields.Date.context_today(self),
                    **({"journal_id": journal.id} if journal else {}),
                }
            )
        )
        return wizard._create_payments()

    def action_view_indemnity_move(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "account.move",
            "res_id": self.indemnity_move_id.id,
            "view_mode": "form",
        }

    def _recovery_ratio(self):
        """The insurer's share of a recovery: the indemnified part of the loss."""
        self.ensure_one()
        if not self.insured_loss:
            return 0.0
        return min(self.indemnity_amount / self.insured_loss, 1.0)

    def _record_recovery(self, amount, date=None, payment=None):
        """The buyer paid ``amount`` after the indemnity."""
        self.ensure_one()
        return self.env["credit.insurance.claim.recovery"].create(
            {
                "claim_id": self.id,
                "amount": amount,
                "date": date or fields.Date.context_today(self),
                "payment_id": payment.id if payment else False,
            }
        )

    # ------------------------------------------------------------ from the insurer

    @api.model
    def _record_insurer_claim(self, insurer, status):
        """Create or update the claim the insurer reports (ClaimStatus).

        Matched by the insurer's claim reference, else by the declaration it
        came from; a claim on an unknown declaration is not recorded.
        :return: the claim, or an empty recordset.
        """
        claim = self.search(
            [("insurer_id", "=", insurer.id), ("claim_ref", "=", status.claim_ref)],
            limit=1,
        )
        if not claim and status.declaration_ref:
            declaration = self.env["credit.insurance.declaration"].search(
                [
                    ("insurer_id", "=", insurer.id),
                    ("insurer_reference", "=", status.declaration_ref),
                ],
                limit=1,
            )
            if declaration:
                claim = declaration.claim_ids.filtered(
                    lambda c: c.state not in ("rejected", "closed")
                )[:1]
                if not claim:
                    claim = self.create(
                        declaration._claim_values(
                            claimed_amount=status.claimed_amount or None
                        )
                    )
                    claim.message_post(
                        body=self.env._(
                            "Claim opened by %(insurer)s.", insurer=insurer.name
                        )
                    )
                if not declaration.claim_ref:
                    declaration.claim_ref = status.claim_ref
        if claim:
            claim._apply_insurer_status(status)
        return claim

    def _apply_insurer_status(self, status):
        self.ensure_one()
        vals = {"insurer_status": status.status}
        if not self.claim_ref:
            vals["claim_ref"] = status.claim_ref
        if status.claimed_amount and self.state in OPEN_STATES:
            vals["admitted_amount"] = status.claimed_amount
        self.write(vals)
        state = INSURER_STATES.get(status.status)
        if not state or state == self.state:
            return
        if state == "approved":
            if self.state in OPEN_STATES:
                indemnity = status.indemnity_amount or self._indemnity_from_policy()
                computed = self._indemnity_from_policy()
                self._approve(indemnity, date=status.date_paid)
                if self.currency_id.compare_amounts(indemnity, computed):
                    self.message_post(
                        body=self.env._(
                            "The insurer's indemnity (%(insurer)s) differs from "
                            "the one computed from the policy (%(computed)s).",
                            insurer=self.currency_id.format(indemnity),
                            computed=self.currency_id.format(computed),
                        )
                    )
        elif state == "under_review":
            if self.state in ("draft", "submitted"):
                self.state = state
        elif state == "rejected":
            if self.state in OPEN_STATES:
                self.state = state
                self.message_post(
                    body=self.env._(
                        "Rejected by %(insurer)s: %(message)s",
                        insurer=self.insurer_id.name,
                        message=status.message or "-",
                    )
                )
        elif state == "closed" and self.state != "closed":
            self.state = state

    @api.model
    def _cron_pull_claims(self, batch_size=CLAIMS_PER_BATCH):
        """Pull claim changes from each insurer whose API exposes claims, follow
        the open ones, and mark paid the indemnities the insurer has paid."""
        insurers = (
            self.env["credit.insurance.insurer"]
            .search([("provider", "!=", "manual")])
            .filtered(lambda i: i._is_reachable_now() and i._exposes_claims())
        )
        more = 0
        for insurer in insurers:
            try:
                with self.env.cr.savepoint(), requests.Session() as session:
                    provider = insurer._get_provider(session)
                    more += bool(
                        insurer.with_company(insurer.company_id)._pull_claims(
                            provider, batch_size
                        )
                    )
            except Exception as error:  # the other insurers go on
                _logger.exception("%s: pulling claims failed", insurer.name)
                insurer.claims_sync_error = self.env._(
                    "Unexpected error: %(error)s", error=error
                )
            if can_commit():
                self.env.cr.commit()  # pylint: disable=invalid-commit
        self.search(
            [
                ("state", "in", ("approved", "partial")),
                ("indemnity_move_id", "!=", False),
            ]
        )._mark_paid()
        self.env["ir.cron"]._notify_progress(done=len(insurers), remaining=more)
        if more:
            self.env.ref("credit_insurance.ir_cron_pull_claims")._trigger()


class CreditInsuranceDeclaration(models.Model):
    """Claims opened from overdue declarations."""

    _inherit = "credit.insurance.declaration"

    claim_ids = fields.One2many("credit.insurance.claim", "declaration_id")
    claim_count = fields.Integer(compute="_compute_claim_count")

    @api.depends("claim_ids")
    def _compute_claim_count(self):
        for declaration in self:
            declaration.claim_count = len(declaration.claim_ids)

    def _claim_values(self, claimed_amount=None, cause="protracted_default"):
        """A claim prefilled from this declaration: its invoices whose cover
        was not lost (those are left out, and the claim says so)."""
        self.ensure_one()
        lines = self.line_ids.filtered(
            lambda line: line.included and not line.cover_lost
        )
        invoices = lines.move_id
        if claimed_amount is None:
            claimed_amount = sum(lines.mapped("amount_declared"))
            total = sum(invoices.mapped("amount_total_signed"))
            if not self.policy_id.vat_covered and total:
                # VAT is not insured (it is recovered from the State): claim
                # the untaxed part of what is still owed.
                untaxed = sum(invoices.mapped("amount_untaxed_signed"))
                claimed_amount = claimed_amount * untaxed / total
            claimed_amount = self.currency_id.round(claimed_amount)
        return {
            "declaration_id": self.id,
            "partner_id": self.partner_id.id,
            "policy_id": self.policy_id.id,
            "company_id": self.company_id.id,
            "cause": cause,
            "claim_ref": self.claim_ref or False,
            "invoice_ids": [Command.set(invoices.ids)],
            "date_declared": (
                fields.Date.to_date(self.date_filed)
                if self.date_filed
                else fields.Date.context_today(self)
            ),
            "claimed_amount": claimed_amount,
        }

    def action_open_claim(self):
        """Open a claim on the declared invoices (one open claim per declaration)."""
        self.ensure_one()
        self.env["credit.insurance.claim"]._check_manager()
        if self.category != "overdue" or self.state not in (
            "filed",
            "acknowledged",
            "in_collection",
            "claim_opened",
        ):
            raise UserError(
                self.env._(
                    "A claim is opened on an overdue declared to the insurer; "
                    "%(declaration)s is not.",
                    declaration=self.display_name,
                )
            )
        claim = self.claim_ids.filtered(lambda c: c.state not in ("rejected", "closed"))
        if not claim:
            claim = self.env["credit.insurance.claim"].create(self._claim_values())
        return {
            "type": "ir.actions.act_window",
            "res_model": "credit.insurance.claim",
            "res_id": claim[:1].id,
            "view_mode": "form",
        }

    def action_view_claims(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "credit_insurance.credit_insurance_claim_action"
        )
        action["domain"] = [("declaration_id", "=", self.id)]
        action["context"] = {}
        return action


class CreditInsuranceInsurer(models.Model):
    """What claims need from the insurer: its partner in the books and the
    cursor of the claim feed."""

    _inherit = "credit.insurance.insurer"

    partner_id = fields.Many2one(
        "res.partner",
        string="Partner in the books",
        check_company=True,
        help="The insurer as a partner of journal entries: indemnities it owes, "
        "its payments, recoveries owed back. Created when first needed.",
    )
    claims_sync_error = fields.Text(
        string="Last claim synchronisation problem", readonly=True, copy=False
    )
    claims_synced_until = fields.Datetime(
        string="Claims pulled up to",
        readonly=True,
        copy=False,
        help="Claims changed at the insurer after this moment are pulled at the "
        "next synchronisation.",
    )

    def _get_accounting_partner(self):
        self.ensure_one()
        if not self.partner_id:
            self.sudo().partner_id = self.env["res.partner"].create(
                {"name": self.name, "is_company": True, "company_id": False}
            )
        return self.partner_id

    def _exposes_claims(self):
        """Whether the insurer's API gives claim statuses (the others are
        updated by hand)."""
        self.ensure_one()
        provider_class = get_provider_class(self.provider)
        return provider_class.fetch_claims is not InsurerProvider.fetch_claims

    def _pull_claims(self, provider, batch_size=CLAIMS_PER_BATCH):
        """One page of claim changes, then a look at the open claims the page
        did not bring. Return True when more changes are waiting."""
        self.ensure_one()
        try:
            batch = provider.fetch_claims(self.claims_synced_until, limit=batch_size)
        except InsurerError as error:
            if not self._record_call_failure(error):
                self.claims_sync_error = self._error_text(error)
            return False
        Claim = self.env["credit.insurance.claim"]
        problems = []
        seen = set()
        for status in batch.claims:
            seen.add(status.claim_ref)
            try:
                with self.env.cr.savepoint():
                    claim = Claim._record_insurer_claim(self, status)
            except Exception as error:  # the other claims go on
                _logger.exception(
                    "%s: claim %s not recorded", self.name, status.claim_ref
                )
                problems.append(f"{status.claim_ref}: {error}")
                continue
            if not claim:
                problems.append(
                    self.env._(
                        "%(ref)s: no declaration %(declaration)s in Odoo",
                        ref=status.claim_ref,
                        declaration=status.declaration_ref or "-",
                    )
                )
        # Claims under way the feed did not mention: ask for each of them.
        for claim in Claim.search(
            [
                ("insurer_id", "=", self.id),
                ("claim_ref", "!=", False),
                ("claim_ref", "not in", list(seen)),
                ("state", "in", OPEN_STATES),
            ],
            limit=batch_size,
        ):
            try:
                with self.env.cr.savepoint():
                    claim._apply_insurer_status(provider.fetch_claim(claim.claim_ref))
            except InsurerError as error:
                if self._record_call_failure(error):
                    break
                problems.append(f"{claim.claim_ref}: {self._error_text(error)}")
            except Exception as error:  # the other claims go on
                _logger.exception("%s: claim %s not followed", self.name, claim.name)
                problems.append(f"{claim.claim_ref}: {error}")
        self.write(
            {
                "claims_synced_until": batch.next_since,
                "last_sync_date": fields.Datetime.now(),
                # Kept apart from the decisions' problems: each sync clears its own.
                "claims_sync_error": self.env._(
                    "Claims not recorded:\n%(list)s", list="\n".join(problems)
                )
                if problems
                else False,
            }
        )
        return batch.has_more
