"""Overdue declarations (déclarations de menace de sinistre / d'impayé) and
extension requests (prorogations), filed with the insurer exactly once.

One scheduled job does everything, in bounded batches committed one by one:

1. *prepare*: insured overdue invoices whose policy trigger is reached are
   gathered per buyer and policy into the buyer's open declaration;
2. *watch*: declarations still unfiled near their deadline alert the credit
   managers; overdues whose deadline passed unfiled lose their cover;
3. *exchange*: declarations are filed through the insurer's API (or left to a
   credit manager for the insurer's portal), then kept up to date (payments,
   later overdues, disputes) and followed at the insurer.

Exactly once: the idempotency key exists (and is committed) before the first
call; a call whose outcome is unknown marks the declaration, and the next
attempt looks it up at the insurer before sending anything; rows are locked
with ``SKIP LOCKED`` so that concurrent workers never take the same one.
"""

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

import requests
from markupsafe import escape

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression
from odoo.tools import SQL, format_date

from ..providers import (
    DeclarationAnswer,
    InsurerAuthError,
    InsurerError,
    OverdueDeclaration,
    OverdueInvoice,
    ProviderOperationUnavailable,
)
from .account_move import COVERED_STATES
from .credit_insurance_insurer import can_commit

_logger = logging.getLogger(__name__)


def log_note(record, text):
    """A note of the system in ``record``'s chatter (no notification sent).

    The scheduled job gives its author once in the context
    (``credit_insurance_author``: partner id, email) rather than once per note.
    """
    author_id, email_from = record.env.context.get(
        "credit_insurance_author", (None, None)
    )
    record._message_log(body=escape(text), author_id=author_id, email_from=email_from)


def log_notes(records, texts):
    """The same for many records at once: ``texts`` is ``{record id: text}``."""
    if records:
        records._message_log_batch(
            {record_id: escape(text) for record_id, text in texts.items()}
        )


CATEGORIES = [("overdue", "Overdue"), ("extension", "Extension")]
STATES = [
    ("draft", "Draft"),
    ("to_file", "To file"),
    ("filed", "Filed"),
    ("acknowledged", "Acknowledged"),
    ("in_collection", "In collection"),
    ("settled", "Settled"),
    ("claim_opened", "Claim opened"),
    ("refused", "Refused by the insurer"),
    ("cancelled", "Abandoned"),
    ("error", "Error"),
]
UNFILED_STATES = ("draft", "to_file", "error")
FILED_STATES = ("filed", "acknowledged", "in_collection")
# An acknowledged extension is done; an acknowledged overdue is being handled.
OPEN_STATES = {
    "overdue": (*UNFILED_STATES, *FILED_STATES),
    "extension": (*UNFILED_STATES, "filed"),
}
# providers' declaration statuses -> our states, in one place.
INSURER_STATES = {
    "received": "filed",
    "accepted": "acknowledged",
    "in_collection": "in_collection",
    "settled": "settled",
    "closed": "settled",
    "claim_opened": "claim_opened",
    "refused": "refused",
}
DECLARATIONS_PER_BATCH = 100
# Answers recorded between two commits. Each commit empties the ORM cache: one
# per answer would read everything again; a crash before a commit loses at most
# these answers, and their declarations are looked up (never re-sent) next run.
RESULTS_PER_COMMIT = 10
INVOICES_PER_RUN = 2000  # overdue invoices gathered into declarations per run
# Hours between two checks of a filed declaration at the insurer.
CHECK_DELAYS = {"overdue": 24, "extension": 1}
# Serialises the gathering of invoices into declarations across workers.
PREPARE_LOCK = 0x43_49_44_45_43  # "CIDEC"


@dataclass
class FilingOutcome:
    """What one filing call brought back (built in a worker thread)."""

    buyer_ref: str = ""
    answer: DeclarationAnswer | None = None
    error: Exception | None = None
    sent: bool = False  # the declaration itself went out (outcome maybe unknown)
    unknown_buyer: bool = False


class CreditInsuranceDeclaration(models.Model):
    """An overdue of one buyer declared to the insurer, or an extension of an
    invoice's due date, followed from filing to its end."""

    _name = "credit.insurance.declaration"
    _description = "Overdue declaration"
    _inherit = [
        "mail.thread",
        "mail.activity.mixin",
        "credit.insurance.exchange.mixin",
    ]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(
        string="Reference", required=True, readonly=True, copy=False, default="/"
    )
    category = fields.Selection(
        CATEGORIES, required=True, default="overdue", readonly=True, index=True
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
    insurer_connected = fields.Boolean(related="insurer_id.connected")
    exchange_unconfirmed = fields.Boolean(
        string="Not confirmed against the insurer",
        compute="_compute_exchange_unconfirmed",
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(
        related="company_id.currency_id", string="Currency", store=True
    )
    line_ids = fields.One2many(
        "credit.insurance.declaration.line",
        "declaration_id",
        string="Invoices",
        copy=False,
    )
    state = fields.Selection(
        STATES,
        default="draft",
        required=True,
        readonly=True,
        copy=False,
        index=True,
        tracking=True,
    )
    is_open = fields.Boolean(
        compute="_compute_is_open", store=True, index=True, string="Open"
    )
    amount_total = fields.Monetary(
        string="Declared amount",
        compute="_compute_amounts",
        store=True,
        help="Open amount of the invoices not in dispute (company currency).",
    )
    amount_open = fields.Monetary(
        string="Still owed",
        compute="_compute_amounts",
        store=True,
        help="Open amount of all the invoices, disputed ones included.",
    )
    amount_filed = fields.Monetary(
        string="Amount filed",
        readonly=True,
        copy=False,
        help="Amount declared when the declaration was filed.",
    )
    amount_reported = fields.Monetary(
        string="Amount last reported",
        readonly=True,
        copy=False,
        help="Declared amount the insurer knows of (after the last update).",
    )
    payment_status = fields.Selection(
        [("unpaid", "Unpaid"), ("partial", "Partly paid"), ("paid", "Paid")],
        string="Payments",
        compute="_compute_amounts",
        store=True,
        help="Payments and credit notes received since the filing.",
    )
    deadline = fields.Date(
        compute="_compute_deadlines",
        store=True,
        help="The earliest declaration deadline of its invoices.",
    )
    next_deadline = fields.Date(
        string="Deadline to meet",
        compute="_compute_deadlines",
        store=True,
        index=True,
        help="The earliest deadline among the invoices not yet reported to the "
        "insurer; empty when all are.",
    )
    alert_date = fields.Date(
        string="Alert from",
        compute="_compute_deadlines",
        store=True,
        help="From this day the credit managers are alerted if the invoices "
        "are still not reported.",
    )
    alerted_deadline = fields.Date(
        string="Alerted for the deadline",
        readonly=True,
        copy=False,
        help="Deadline for which the credit managers were last alerted (alerts "
        "are never repeated for the same deadline).",
    )
    cover_lost = fields.Boolean(
        string="Cover lost",
        compute="_compute_cover_lost",
        store=True,
        help="At least one invoice was not declared by its deadline and is no "
        "longer insured.",
    )
    requested_due_date = fields.Date(
        string="New due date",
        readonly=True,
        copy=False,
        tracking=True,
        help="Extension: the due date asked for.",
    )
    previous_due_date = fields.Date(
        string="Due date before the extension", readonly=True, copy=False
    )
    extension_free = fields.Boolean(
        string="Free extension",
        readonly=True,
        copy=False,
        help="Within the policy's free extension days: the new due date took "
        "effect at once; the insurer is told. Other extensions take effect "
        "once the insurer accepts them.",
    )
    extension_applied_date = fields.Date(
        string="New due date in force since",
        readonly=True,
        copy=False,
        tracking=True,
    )
    extension_status = fields.Selection(
        [
            ("in_force", "In force"),
            ("awaiting", "Awaiting the insurer"),
            ("refused", "Not granted"),
            ("not_applied", "Accepted too late: not applied"),
        ],
        string="Extension",
        compute="_compute_extension_status",
    )
    deadline_model = fields.Selection(
        related="policy_id.deadline_model", string="Deadline counted from"
    )
    deadline_basis = fields.Char(
        string="How the deadline is counted",
        compute="_compute_deadline_basis",
        help="The instalment whose deadline comes first, and what its deadline "
        "counts from.",
    )
    # Exchange with the insurer
    idempotency_key = fields.Char(
        string="Idempotency key",
        readonly=True,
        copy=False,
        index=True,
        help="Our reference of the declaration, sent with it: the insurer is "
        "asked for it before anything is sent again, so it is never filed twice.",
    )
    insurer_reference = fields.Char(
        copy=False,
        tracking=True,
        help="The insurer's reference of the declaration.",
    )
    insurer_status = fields.Char(
        string="Status at the insurer", readonly=True, copy=False
    )
    claim_ref = fields.Char(
        string="Claim reference", readonly=True, copy=False, tracking=True
    )
    date_filed = fields.Datetime(string="Filed on", readonly=True, copy=False)
    filed_through_api = fields.Boolean(
        string="Filed through the API", readonly=True, copy=False
    )
    manual_filing = fields.Boolean(
        string="Filed in the insurer's portal",
        readonly=True,
        copy=False,
        help="The insurer's API cannot take it: a credit manager files it in "
        "the insurer's portal, then marks it filed.",
    )
    delivery_uncertain = fields.Boolean(
        help="A sending may have reached the insurer without its answer "
        "reaching Odoo: the declaration is looked up at the insurer by its "
        "idempotency key before anything is sent again.",
    )
    update_due = fields.Boolean(
        string="Insurer to update",
        compute="_compute_update_due",
        store=True,
        index=True,
        help="Payments, credit notes, disputes or new overdue invoices since "
        "the last report to the insurer.",
    )
    manual_update_needed = fields.Boolean(
        string="Update in the portal",
        readonly=True,
        copy=False,
        help="The insurer's API cannot take updates: report the amounts below "
        "in the insurer's portal, then confirm.",
    )
    abandoned = fields.Boolean(
        readonly=True,
        copy=False,
        help="A credit manager chose not to file it: its invoices are not "
        "declared again.",
    )
    stop_reason = fields.Char(
        string="Stop of deliveries set",
        readonly=True,
        copy=False,
        help="The stop of deliveries this declaration set on the buyer, if any "
        "(lifted with the declaration unless changed since).",
    )

    def init(self):
        # One open overdue declaration per buyer and policy, whatever the
        # number of workers (the ORM's constraints cannot be partial).
        self.env.cr.execute(
            SQL(
                "CREATE UNIQUE INDEX IF NOT EXISTS "
                "credit_insurance_declaration_open_buyer_uniq "
                "ON credit_insurance_declaration (company_id, partner_id, policy_id) "
                "WHERE is_open AND category = 'overdue'"
            )
        )

    _sql_constraints = [
        (
            "idempotency_key_uniq",
            "unique(idempotency_key)",
            "Each declaration carries its own idempotency key.",
        ),
    ]

    # ------------------------------------------------------------ computes

    @api.depends("state", "category")
    def _compute_is_open(self):
        for declaration in self:
            declaration.is_open = declaration.state in OPEN_STATES.get(
                declaration.category, ()
            )

    @api.depends(
        "line_ids.amount_declared", "line_ids.amount_residual_company", "amount_filed"
    )
    def _compute_amounts(self):
        for declaration in self:
            currency = declaration.currency_id
            total = sum(declaration.line_ids.mapped("amount_declared"))
            declaration.amount_total = total
            declaration.amount_open = sum(
                declaration.line_ids.mapped("amount_residual_company")
            )
            if currency.is_zero(total) and declaration.line_ids:
                declaration.payment_status = (
                    "paid"
                    if currency.is_zero(declaration.amount_open)
                    else "unpaid"  # all in dispute
                )
            elif currency.compare_amounts(total, declaration.amount_filed) < 0:
                declaration.payment_status = "partial"
            else:
                declaration.payment_status = "unpaid"

    @api.depends(
        "line_ids.deadline",
        "line_ids.date_filed",
        "line_ids.included",
        "line_ids.cover_lost",
        "policy_id.declaration_alert_days",
    )
    def _compute_deadlines(self):
        for declaration in self:
            deadlines = declaration.line_ids.filtered("deadline").mapped("deadline")
            declaration.deadline = min(deadlines) if deadlines else False
            to_meet = declaration.line_ids.filtered(
                lambda line: (
                    line.included
                    and line.deadline
                    and not line.date_filed
                    and not line.cover_lost
                )
            ).mapped("deadline")
            declaration.next_deadline = min(to_meet) if to_meet else False
            declaration.alert_date = (
                declaration.next_deadline
                - timedelta(days=declaration.policy_id.declaration_alert_days)
                if declaration.next_deadline
                else False
            )

    @api.depends("category", "state", "extension_free", "extension_applied_date")
    def _compute_extension_status(self):
        for declaration in self:
            if declaration.category != "extension":
                status = False
            elif declaration.extension_applied_date:
                status = "in_force"
            elif declaration.state in ("refused", "cancelled"):
                status = "refused"
            elif declaration.state in ("acknowledged", "settled"):
                status = "not_applied"
            else:
                status = "awaiting"
            declaration.extension_status = status

    @api.depends_context("lang")
    @api.depends("line_ids.deadline", "next_deadline", "deadline")
    def _compute_deadline_basis(self):
        for declaration in self:
            target = declaration.next_deadline or declaration.deadline
            line = declaration.line_ids.filtered(
                lambda line, target=target: line.deadline == target
            )[:1]
            declaration.deadline_basis = (
                self.env._(
                    "%(invoice)s, instalment %(instalment)s: %(basis)s",
                    invoice=line.move_id.name,
                    instalment=line.instalment_label,
                    basis=line.move_line_id.sudo()._credit_insurance_deadline_basis(),
                )
                if line and line.move_line_id
                else False
            )

    @api.depends("line_ids.cover_lost")
    def _compute_cover_lost(self):
        for declaration in self:
            declaration.cover_lost = any(declaration.line_ids.mapped("cover_lost"))

    @api.depends(
        "state",
        "amount_total",
        "amount_reported",
        "line_ids.included",
        "line_ids.date_filed",
    )
    def _compute_update_due(self):
        for declaration in self:
            declaration.update_due = declaration.state in FILED_STATES and (
                declaration.currency_id.compare_amounts(
                    declaration.amount_total, declaration.amount_reported
                )
                != 0
                or any(
                    line.included and not line.date_filed
                    for line in declaration.line_ids
                )
            )

    @api.depends("name", "partner_id")
    def _compute_display_name(self):
        for declaration in self:
            declaration.display_name = (
                f"{declaration.name} - {declaration.partner_id.name}"
                if declaration.partner_id
                else declaration.name
            )

    # ------------------------------------------------------------ create

    @api.model_create_multi
    def create(self, vals_list):
        Sequence = self.env["ir.sequence"].sudo()
        sequences = {}  # looked up once per batch (next_by_code searches each time)
        for vals in vals_list:
            if vals.get("name", "/") == "/":
                code = (
                    "credit.insurance.extension"
                    if vals.get("category") == "extension"
                    else "credit.insurance.declaration"
                )
                company_id = vals.get("company_id") or self.env.company.id
                if (code, company_id) not in sequences:
                    sequences[code, company_id] = Sequence.search(
                        [
                            ("code", "=", code),
                            ("company_id", "in", [company_id, False]),
                        ],
                        order="company_id",
                        limit=1,
                    )
                vals["name"] = sequences[code, company_id]._next()
            # Known before the first sending: the idempotency key.
            vals["idempotency_key"] = f"ODOO-DECL-{uuid.uuid4().hex[:16].upper()}"
        self._check_no_open_declaration(
            [
                (
                    vals.get("company_id") or self.env.company.id,
                    vals.get("partner_id"),
                    vals.get("policy_id"),
                )
                for vals in vals_list
                if vals.get("category", "overdue") == "overdue"
                and vals.get("state", "draft") in OPEN_STATES["overdue"]
            ]
        )
        return super().create(vals_list)

    def write(self, vals):
        if {"partner_id", "policy_id", "company_id"} & set(vals):
            opening = self.filtered(lambda d: d.category == "overdue" and d.is_open)
            self._check_no_open_declaration(
                [
                    (
                        vals.get("company_id", d.company_id.id),
                        vals.get("partner_id", d.partner_id.id),
                        vals.get("policy_id", d.policy_id.id),
                    )
                    for d in opening
                ],
                exclude=opening,
            )
        return super().write(vals)

    def _check_no_open_declaration(self, keys, exclude=None):
        """One open overdue declaration per buyer and policy: said with names
        before the unique index refuses it."""
        if not keys:
            return
        if len(set(keys)) < len(keys):
            raise ValidationError(
                self.env._("Two declarations of the same buyer and policy.")
            )
        existing = self.search(
            [
                ("category", "=", "overdue"),
                ("is_open", "=", True),
                ("partner_id", "in", [key[1] for key in keys]),
                ("policy_id", "in", [key[2] for key in keys]),
                ("id", "not in", (exclude or self.browse()).ids),
            ]
        )
        taken = {
            (d.company_id.id, d.partner_id.id, d.policy_id.id): d for d in existing
        }
        for key in keys:
            if key in taken:
                declaration = taken[key]
                raise ValidationError(
                    self.env._(
                        "%(buyer)s already has an open declaration under policy "
                        "%(policy)s (%(declaration)s): its overdue invoices are "
                        "added to it.",
                        buyer=declaration.partner_id.display_name,
                        policy=declaration.policy_id.display_name,
                        declaration=declaration.name,
                    )
                )

    @api.ondelete(at_uninstall=False)
    def _unlink_except_filed(self):
        if any(
            declaration.date_filed or declaration.delivery_uncertain
            for declaration in self
        ):
            raise UserError(
                self.env._(
                    "A declaration that reached (or may have reached) the insurer "
                    "cannot be deleted: cancel it instead."
                )
            )

    # ------------------------------------------------------------ actions

    def _check_manager(self):
        """Workflow buttons write with sudo in places: check the group here."""
        self.env.company._check_credit_insurance_manager(
            self.env._(
                "Only credit insurance managers can file, update or cancel "
                "declarations."
            )
        )

    def _check_unfiled(self):
        for declaration in self:
            if declaration.state not in UNFILED_STATES:
                raise UserError(
                    self.env._(
                        "Declaration %(name)s has already been filed.",
                        name=declaration.name,
                    )
                )

    def action_send(self):
        """Queue for the insurer (the exchange runs at once); with a manual
        insurer, ask the credit managers to file it in the portal."""
        self._check_manager()
        self._check_unfiled()
        for declaration in self:
            if not declaration.line_ids:
                raise UserError(
                    self.env._(
                        "Declaration %(name)s has no invoice to declare.",
                        name=declaration.name,
                    )
                )
        drafts = self.filtered(lambda d: d.state == "draft")
        self.write(
            {
                "state": "to_file",
                "last_error": False,
                "retry_count": 0,
                "next_retry_date": False,
            }
        )
        drafts._ask_portal_filing()
        if self.filtered(lambda d: d._files_through_api()):
            self.env.ref("credit_insurance.ir_cron_declare_overdues")._trigger()
        return True

    def action_mark_filed(self):
        """A credit manager filed it in the insurer's portal (or found it
        there): record the filing."""
        self._check_manager()
        self._check_unfiled()
        for declaration in self:
            declaration._record_filing(
                declaration.insurer_reference or "",
                "accepted" if declaration.category == "extension" else "received",
                through_api=False,
            )
            log_note(
                declaration,
                self.env._(
                    "Filed by hand in the portal of %(insurer)s.",
                    insurer=declaration.insurer_id.name,
                ),
            )
        return True

    def action_confirm_not_received(self):
        """Checked in the insurer's portal: not there, so it may be sent again."""
        self._check_manager()
        for declaration in self.filtered(lambda d: d.state == "error"):
            declaration.write({"delivery_uncertain": False, "last_error": False})
            log_note(
                declaration,
                self.env._(
                    "Checked in the portal of %(insurer)s: the declaration is not "
                    "there. It is sent again.",
                    insurer=declaration.insurer_id.name,
                ),
            )
        return self.action_send()

    def action_mark_updated(self):
        """The credit manager reported the current amounts in the portal."""
        self._check_manager()
        now = fields.Datetime.now()
        for declaration in self.filtered("manual_update_needed"):
            new_lines = declaration.line_ids.filtered(
                lambda line: line.included and not line.date_filed
            )
            for line in new_lines:
                line.write({"date_filed": now, "amount_filed": line.amount_declared})
            declaration.write(
                {
                    "manual_update_needed": False,
                    "amount_reported": declaration.amount_total,
                }
            )
            # Updating the insurer also declares the invoices added since.
            declaration.activity_ids.action_feedback(
                feedback=self.env._("Insurer updated.")
            )
        return True

    def action_cancel(self):
        self._check_manager()
        for declaration in self:
            if declaration.date_filed or declaration.delivery_uncertain:
                raise UserError(
                    self.env._(
                        "Declaration %(name)s is at the insurer (or may be): "
                        "withdraw it in the insurer's portal first; it closes "
                        "when the insurer says so or the invoices are paid.",
                        name=declaration.name,
                    )
                )
        self.write({"state": "cancelled", "abandoned": True})
        self.filtered(lambda d: d.category == "extension")._revert_extension()
        self.activity_ids.unlink()
        return True

    def action_lift_stop(self):
        """The insurer allows deliveries again: a credit manager lifts the
        stop this declaration set."""
        self._check_manager()
        self._lift_stop()
        return True

    # ------------------------------------------------------ scheduled job

    @api.model
    def _cron_declare_overdues(self, batch_size=DECLARATIONS_PER_BATCH):
        """Prepare, watch, then file / update / follow one batch.

        Re-triggers itself while work remains; each step commits its work.
        :return: number of declarations exchanged with an insurer.
        """
        prepared, more_to_prepare = self._prepare_overdue_declarations()
        self._commit()
        self._cancel_paid_before_filing()
        self._flag_manual_updates()
        more_to_watch = self._watch_deadlines()
        self._stop_long_overdues()
        self._commit()
        done = self._exchange_batch(batch_size)
        remaining = self.search_count(self._exchange_due_domain())
        self.env["ir.cron"]._notify_progress(
            done=prepared + done, remaining=remaining + more_to_prepare
        )
        if (remaining and done) or more_to_prepare or more_to_watch:
            self.env.ref("credit_insurance.ir_cron_declare_overdues")._trigger()
        return done

    def _commit(self):
        """Commit the work done so far (never in tests, as Odoo core does)."""
        if can_commit() and not self.env.context.get("credit_insurance_no_commit"):
            self.env.cr.commit()  # pylint: disable=invalid-commit
            return True
        return False

    # ------------------------------------------------------------ prepare

    @api.model
    def _overdue_invoices_to_declare(self, limit):
        """``[(instalment, invoice, company, buyer, policy ids)]``: the due
        dates (instalments, the receivable lines) of posted customer invoices
        of an insured buyer (a limit at delivery), whatever part of them is
        insured, not disputed, still open, whose trigger (due date + the
        policy's days) is reached, and never declared: no declaration holds
        them that is open, reached the insurer (whatever became of it since:
        claim, refusal) or was abandoned by a credit manager. A declaration
        closed because the instalment was paid (before its filing, or after,
        settled) leaves it free, should that payment be undone (a bounced
        cheque)."""
        today = fields.Date.context_today(self)
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
                SELECT line.id, m.id, m.company_id, m.commercial_partner_id,
                       m.credit_insurance_policy_id
                  FROM account_move_line line
                  JOIN account_move m ON m.id = line.move_id
                  JOIN account_account account
                    ON account.id = line.account_id
                   AND account.account_type = 'asset_receivable'
                  JOIN credit_insurance_policy p
                    ON p.id = m.credit_insurance_policy_id AND p.active
                 WHERE m.move_type = 'out_invoice'
                   AND m.state = 'posted'
                   AND line.amount_residual > 0
                   AND m.credit_insurance_delivery_limit > 0
                   AND NOT COALESCE(m.credit_insurance_disputed, FALSE)
                   AND COALESCE(line.credit_insurance_extended_due_date,
                                line.date_maturity)
                       + GREATEST(p.declaration_trigger_days, 1) <= %(today)s
                   AND NOT EXISTS (
                        SELECT 1 FROM credit_insurance_declaration_line l
                          JOIN credit_insurance_declaration d
                            ON d.id = l.declaration_id
                         WHERE l.move_line_id = line.id AND l.category = 'overdue'
                           AND (d.is_open OR d.abandoned
                                OR (l.date_filed IS NOT NULL
                                    AND d.state != 'settled')))
                 ORDER BY line.credit_insurance_declaration_deadline, line.id
                 LIMIT %(limit)s
                """,
                today=today,
                limit=limit,
            )
        )
        return self.env.cr.fetchall()

    @api.model
    def _prepare_overdue_declarations(self, limit=INVOICES_PER_RUN):
        """Gather the overdue instalments to declare into their buyer's open
        declaration (created when there is none).

        :return: ``(declarations touched, more instalments waiting)``.
        """
        self.env.cr.execute(SQL("SELECT pg_try_advisory_xact_lock(%s)", PREPARE_LOCK))
        if not self.env.cr.fetchone()[0]:
            return 0, False  # another worker is gathering
        rows = self._overdue_invoices_to_declare(limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        if not rows:
            return 0, False
        groups = {}
        for line_id, move_id, company_id, partner_id, policy_id in rows:
            groups.setdefault((company_id, partner_id, policy_id), []).append(
                {"move_id": move_id, "move_line_id": line_id}
            )
        existing = self.search(
            [
                ("category", "=", "overdue"),
                ("is_open", "=", True),
                ("partner_id", "in", list({key[1] for key in groups})),
                ("policy_id", "in", list({key[2] for key in groups})),
            ]
        )
        by_key = {
            (d.company_id.id, d.partner_id.id, d.policy_id.id): d for d in existing
        }
        Line = self.env["credit.insurance.declaration.line"]
        new_vals, added = [], {}  # {declaration id: invoice ids added}
        line_vals = []
        for key, instalments in groups.items():
            declaration = by_key.get(key)
            if declaration:
                line_vals += [
                    {"declaration_id": declaration.id, **instalment}
                    for instalment in instalments
                ]
                added.setdefault(declaration.id, []).extend(
                    instalment["move_id"] for instalment in instalments
                )
            else:
                new_vals.append(
                    {
                        "company_id": key[0],
                        "partner_id": key[1],
                        "policy_id": key[2],
                        "state": "to_file",
                        "line_ids": instalments,
                    }
                )
        Line.create(line_vals)
        # Nobody follows a declaration made by the job: the credit managers
        # hear of it through activities.
        created = self.with_context(
            mail_create_nolog=True, mail_create_nosubscribe=True
        ).create(
            [
                {**vals, "line_ids": [(0, 0, line) for line in vals["line_ids"]]}
                for vals in new_vals
            ]
        )
        created._ask_portal_filing()
        names = {
            move.id: move.name
            for move in self.env["account.move"].browse(
                move_id for move_ids in added.values() for move_id in move_ids
            )
        }
        log_notes(
            self.browse(added),
            {
                declaration_id: self.env._(
                    "Overdue invoices of the buyer added: %(invoices)s.",
                    invoices=", ".join(
                        dict.fromkeys(names[move_id] for move_id in move_ids)
                    ),
                )
                for declaration_id, move_ids in added.items()
            },
        )
        _logger.info(
            "Overdue declarations: %s created, %s completed (%s instalments)",
            len(created),
            len(added),
            len(rows),
        )
        return len(created) + len(added), more

    @api.model
    def _cancel_paid_before_filing(self):
        """Nothing is declared for invoices paid before the filing."""
        paid = self.search(
            [
                ("state", "in", UNFILED_STATES),
                ("delivery_uncertain", "=", False),
                ("amount_open", "=", 0),
                ("line_ids", "!=", False),
            ]
        )
        for declaration in paid:
            declaration.write({"state": "cancelled", "next_retry_date": False})
            declaration.activity_ids.unlink()
            log_note(
                declaration,
                self.env._(
                    "Paid before it was filed: nothing is declared to %(insurer)s.",
                    insurer=declaration.insurer_id.name,
                ),
            )
            if declaration.category == "extension":
                declaration._revert_extension()

    # -------------------------------------------------------------- watch

    @api.model
    def _watch_deadlines(self, limit=INVOICES_PER_RUN):
        """Alert before the deadlines, record the cover lost after them.

        :return: True when more invoices lost their cover than one run handles.
        """
        today = fields.Date.context_today(self)
        to_alert = self.search(
            [
                ("is_open", "=", True),
                ("category", "=", "overdue"),
                ("alert_date", "<=", today),
                ("next_deadline", ">=", today),
            ]
        ).filtered(lambda d: d.alerted_deadline != d.next_deadline)
        to_alert._alert_deadline()
        return self._record_cover_lost(limit)

    @api.model
    def _stop_long_overdues(self):
        """Stop deliveries to the buyers still owing an instalment the
        policy's months after its due date (Atradius: "usually 2 months after
        the oldest unpaid due date"; a policy parameter, 0 for none)."""
        today = fields.Date.context_today(self)
        self.env.flush_all()
        rows = self.env.execute_query(
            SQL(
                """
                SELECT m.company_id, m.commercial_partner_id, p.id,
                       MIN(COALESCE(line.credit_insurance_extended_due_date,
                                    line.date_maturity))
                  FROM account_move_line line
                  JOIN account_move m ON m.id = line.move_id
                  JOIN account_account account
                    ON account.id = line.account_id
                   AND account.account_type = 'asset_receivable'
                  JOIN credit_insurance_policy p
                    ON p.id = m.credit_insurance_policy_id
                   AND p.active AND p.stop_after_months > 0
                  JOIN res_partner buyer ON buyer.id = m.commercial_partner_id
                 WHERE m.move_type = 'out_invoice'
                   AND m.state = 'posted'
                   AND line.amount_residual > 0
                   AND NOT COALESCE(m.credit_insurance_disputed, FALSE)
                   AND NOT COALESCE(
                        (buyer.credit_insurance_stop ->> m.company_id::text)::boolean,
                        FALSE)
              GROUP BY m.company_id, m.commercial_partner_id, p.id, p.stop_after_months
                HAVING MIN(COALESCE(line.credit_insurance_extended_due_date,
                                    line.date_maturity))
                       + make_interval(months => p.stop_after_months) <= %(today)s
                """,
                today=today,
            )
        )
        Company = self.env["res.company"]
        Partner = self.env["res.partner"]
        Policy = self.env["credit.insurance.policy"]
        for company_id, buyer_id, policy_id, oldest in rows:
            policy = Policy.browse(policy_id)
            Partner.browse(buyer_id)._credit_insurance_stop_deliveries(
                Company.browse(company_id),
                self.env._(
                    "Unpaid since %(date)s: policy %(policy)s stops deliveries "
                    "%(months)s months after the oldest unpaid due date",
                    date=format_date(self.env, oldest),
                    policy=policy.display_name,
                    months=policy.stop_after_months,
                ),
            )

    def _alert_deadline(self):
        """An activity and an e-mail for each credit manager, once per deadline."""
        template = self.env.ref("credit_insurance.mail_template_declaration_deadline")
        for declaration in self:
            managers = declaration.company_id._credit_insurance_managers()
            summary = self.env._(
                "Overdue declaration to file by %(deadline)s: %(buyer)s",
                deadline=format_date(self.env, declaration.next_deadline),
                buyer=declaration.partner_id.name,
            )
            for user in managers:
                declaration.activity_schedule(
                    "mail.mail_activity_data_todo",
                    date_deadline=declaration.next_deadline,
                    summary=summary,
                    note=declaration._alert_note(),
                    user_id=user.id,
                )
                template.with_context(lang=user.lang).send_mail(
                    declaration.id,
                    email_values={
                        "recipient_ids": [(6, 0, user.partner_id.ids)],
                        "email_to": False,
                    },
                )
            declaration.alerted_deadline = declaration.next_deadline
            log_note(
                declaration,
                self.env._(
                    "Deadline %(deadline)s approaching with invoices not yet "
                    "declared: credit managers alerted.",
                    deadline=format_date(self.env, declaration.next_deadline),
                ),
            )

    def _alert_note(self):
        self.ensure_one()
        if self.state == "error":
            return self.env._(
                "Filing with %(insurer)s failed: %(error)s Correct it, or file it "
                "in the insurer's portal and mark it filed.",
                insurer=self.insurer_id.name,
                error=self.last_error or "",
            )
        return self.env._(
            "Declare the overdue of %(buyer)s (%(amount)s) to %(insurer)s before "
            "%(deadline)s, or the invoices lose their cover.",
            buyer=self.partner_id.name,
            amount=self.currency_id.format(self.amount_total),
            insurer=self.insurer_id.name,
            deadline=format_date(self.env, self.next_deadline),
        )

    @api.model
    def _record_cover_lost(self, limit):
        """Invoices with an instalment whose deadline passed without being
        declared lose their cover, for good: said on the invoice, the buyer
        and the declaration. Disputed invoices wait for the dispute's end."""
        today = fields.Date.context_today(self)
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
                SELECT DISTINCT m.id
                  FROM account_move_line line
                  JOIN account_move m ON m.id = line.move_id
                  JOIN account_account account
                    ON account.id = line.account_id
                   AND account.account_type = 'asset_receivable'
                  JOIN credit_insurance_policy p
                    ON p.id = m.credit_insurance_policy_id AND p.active
                 WHERE m.move_type = 'out_invoice'
                   AND m.state = 'posted'
                   AND line.amount_residual > 0
                   AND m.credit_insurance_cover_state IN %(covered)s
                   AND line.credit_insurance_declaration_deadline < %(today)s
                   AND NOT EXISTS (
                        SELECT 1 FROM credit_insurance_declaration_line l
                         WHERE l.move_line_id = line.id AND l.category = 'overdue'
                           AND l.date_filed IS NOT NULL)
                 ORDER BY m.id
                 LIMIT %(limit)s
                """,
                today=today,
                covered=COVERED_STATES,
                limit=limit + 1,
            )
        )
        ids = [row[0] for row in self.env.cr.fetchall()]
        moves = self.env["account.move"].browse(ids[:limit]).sudo()
        if not moves:
            return False
        moves.write({"credit_insurance_cover_lost": True})
        log_notes(
            moves,
            {
                move.id: self.env._(
                    "Cover lost: this overdue was not declared to %(insurer)s by "
                    "its deadline (%(deadline)s). The invoice is no longer "
                    "insured.",
                    insurer=move.credit_insurance_policy_id.insurer_id.name,
                    deadline=format_date(
                        self.env, move.credit_insurance_declaration_deadline
                    ),
                )
                for move in moves
            },
        )
        for (company, buyer), buyer_moves in moves.grouped(
            lambda m: (m.company_id, m.commercial_partner_id)
        ).items():
            log_note(
                buyer,
                self.env._(
                    "Cover lost (%(company)s) on invoices %(invoices)s: not "
                    "declared to the insurer by their deadline.",
                    company=company.name,
                    invoices=", ".join(buyer_moves.mapped("name")),
                ),
            )
        lines = moves.credit_insurance_declaration_line_ids.filtered(
            lambda line: line.category == "overdue" and line.declaration_open
        )
        for declaration, declaration_lines in lines.grouped("declaration_id").items():
            log_note(
                declaration,
                self.env._(
                    "Cover lost on %(invoices)s: deadline passed before the "
                    "filing. File the declaration all the same so that the "
                    "insurer collects.",
                    invoices=", ".join(declaration_lines.move_id.mapped("name")),
                ),
            )
            for user in declaration.company_id._credit_insurance_managers():
                declaration.activity_schedule(
                    "mail.mail_activity_data_todo",
                    summary=self.env._(
                        "Cover lost: %(buyer)s", buyer=declaration.partner_id.name
                    ),
                    user_id=user.id,
                )
        return len(ids) > limit

    # ------------------------------------------------------ manual insurers

    def _files_through_api(self):
        self.ensure_one()
        return self.insurer_connected and not self.manual_filing

    def _ask_portal_filing(self):
        """Insurers without API (or without this operation): a credit manager
        files in the insurer's portal."""
        for declaration in self.filtered(
            lambda d: d.state == "to_file" and not d._files_through_api()
        ):
            summary = (
                self.env._(
                    "Report the extension to %(insurer)s: %(buyer)s",
                    insurer=declaration.insurer_id.name,
                    buyer=declaration.partner_id.name,
                )
                if declaration.category == "extension"
                else self.env._(
                    "File the overdue declaration with %(insurer)s: %(buyer)s",
                    insurer=declaration.insurer_id.name,
                    buyer=declaration.partner_id.name,
                )
            )
            for user in declaration.company_id._credit_insurance_managers():
                declaration.activity_schedule(
                    "mail.mail_activity_data_todo",
                    date_deadline=declaration.next_deadline
                    or fields.Date.context_today(self),
                    summary=summary,
                    note=declaration._portal_filing_note(),
                    user_id=user.id,
                )

    def _portal_filing_note(self):
        """What the credit manager does to file this declaration by hand."""
        return self.env._(
            "File it in the insurer's portal, enter the insurer's "
            "reference and press 'Mark as filed'."
        )

    @api.model
    def _flag_manual_updates(self):
        """Changes the insurer's API cannot take are left to a credit manager."""
        todo = self.search(
            [
                ("update_due", "=", True),
                ("manual_update_needed", "=", False),
                "|",
                "|",
                ("insurer_id.provider", "=", "manual"),
                ("insurer_reference", "=", False),
                ("filed_through_api", "=", False),
            ]
        )
        todo._ask_manual_update()

    def _ask_manual_update(self, reason=""):
        for declaration in self:
            declaration.manual_update_needed = True
            note = self.env._(
                "Report in the portal of %(insurer)s the declared amount "
                "%(amount)s (invoices %(invoices)s), then press 'Insurer updated'.",
                insurer=declaration.insurer_id.name,
                amount=declaration.currency_id.format(declaration.amount_total),
                invoices=", ".join(
                    declaration.line_ids.filtered("included").move_id.mapped("name")
                )
                or "-",
            )
            for user in declaration.company_id._credit_insurance_managers():
                declaration.activity_schedule(
                    "mail.mail_activity_data_todo",
                    summary=self.env._(
                        "Update the declaration at %(insurer)s: %(buyer)s",
                        insurer=declaration.insurer_id.name,
                        buyer=declaration.partner_id.name,
                    ),
                    note=f"{reason}\n{note}" if reason else note,
                    user_id=user.id,
                )
            if declaration.currency_id.is_zero(declaration.amount_open):
                declaration._close("settled")

    # ------------------------------------------------------------ exchange

    @api.model
    def _exchange_due_domain(self):
        """Declarations of reachable insurers with a call to make now: to
        file (or retry), to update, or to follow."""
        now = fields.Datetime.now()
        reachable = [
            ("insurer_id.provider", "!=", "manual"),
            ("insurer_id.active", "=", True),
            ("insurer_id.credentials_refused", "=", False),
            "|",
            ("insurer_id.paused_until", "=", False),
            ("insurer_id.paused_until", "<=", now),
        ]
        to_file = expression.AND(
            [
                [("manual_filing", "=", False), ("amount_total", ">", 0)],
                expression.OR(
                    [
                        [("state", "=", "to_file")],
                        [("state", "=", "error"), ("next_retry_date", "<=", now)],
                    ]
                ),
            ]
        )
        to_update = [
            ("state", "in", FILED_STATES),
            ("update_due", "=", True),
            ("manual_update_needed", "=", False),
            ("filed_through_api", "=", True),
            "|",
            ("next_retry_date", "=", False),
            ("next_retry_date", "<=", now),
        ]
        to_follow = [
            ("state", "in", FILED_STATES),
            ("filed_through_api", "=", True),
            ("next_check_date", "<=", now),
        ]
        return expression.AND(
            [reachable, expression.OR([to_file, to_update, to_follow])]
        )

    @api.model
    def _lock_due(self, batch_size, insurer=None):
        """The next due declarations (of ``insurer``, or all), locked; those
        another worker holds are skipped, not waited for: workers share the
        work."""
        domain = self._exchange_due_domain()
        if insurer:
            domain = expression.AND([domain, [("insurer_id", "=", insurer.id)]])
        query = self._search(domain, order="next_deadline, id", limit=batch_size)
        self.env.cr.execute(
            SQL(
                "%s FOR NO KEY UPDATE OF credit_insurance_declaration SKIP LOCKED",
                query.select(SQL.identifier("credit_insurance_declaration", "id")),
            )
        )
        return self.browse(row[0] for row in self.env.cr.fetchall())

    def _lock(self):
        """Lock these declarations again; return those still ours."""
        if not self:
            return self
        self.env.cr.execute(
            SQL(
                "SELECT id FROM credit_insurance_declaration WHERE id = ANY(%s) "
                "FOR NO KEY UPDATE SKIP LOCKED",
                self.ids,
            )
        )
        return self.browse(row[0] for row in self.env.cr.fetchall())

    def _commit_and_relock(self):
        """Commit what was recorded (not in tests); keep the rest of the batch."""
        return self._lock() if self._commit() else self

    @api.model
    def _exchange_batch(self, batch_size=DECLARATIONS_PER_BATCH, insurer=None):
        """File, update or follow one batch; return how many were exchanged."""
        locked = self._lock_due(batch_size, insurer)
        done = 0
        author = (self.env.user.partner_id.id, self.env.user.partner_id.email_formatted)
        for batch_insurer, declarations in locked.grouped("insurer_id").items():
            declarations.invalidate_recordset()
            declarations = declarations.filtered_domain(self._exchange_due_domain())
            if declarations:
                # The job writes its own notes: no tracking messages on top.
                done += declarations.with_context(
                    mail_notrack=True, credit_insurance_author=author
                )._exchange_with_insurer(batch_insurer)
        return done

    def _exchange_with_insurer(self, insurer):
        """File, update and follow these (locked) declarations of one insurer.

        The sendings are marked and committed first; then the batch's calls
        run concurrently; then each result is recorded and committed on its
        own, so that one declaration's failure never undoes another's.
        :return: the number of declarations exchanged.
        """
        with requests.Session() as session:
            provider = insurer._get_provider(session)
            try:
                provider.ensure_authenticated()  # a refused login sends nothing
            except InsurerError as error:
                if not insurer._record_call_failure(error):
                    for declaration in self:
                        declaration._record_failure(error)
                return 0
            payloads = self.filtered(
                lambda d: d.state in UNFILED_STATES
            )._mark_sending()
            ours = self._commit_and_relock()
            calls, handlers = [], []
            for declaration in ours:
                if declaration.state in UNFILED_STATES:
                    if declaration not in payloads:
                        continue
                    call, handler = declaration._filing_call(payloads[declaration])
                elif declaration.update_due:
                    call, handler = declaration._update_call()
                else:
                    call, handler = declaration._status_call()
                calls.append(call)
                handlers.append((declaration, handler))
            results = insurer._run_concurrently(provider, calls)
        done = 0
        stop = False
        outcomes = {
            declaration.id: (handler, result)
            for (declaration, handler), result in zip(handlers, results, strict=True)
        }
        ids = list(outcomes)
        for start in range(0, len(ids), RESULTS_PER_COMMIT):
            # Those another worker took while we committed are left to it. A
            # prefetch of their own: after a commit (which empties the cache)
            # a chunk reads its records only, not the whole batch's.
            chunk = ours & self.browse(ids[start : start + RESULTS_PER_COMMIT])
            for declaration in chunk.with_prefetch(chunk.ids):
                # Every answer is recorded, even after the insurer asked to stop:
                # the calls were made.
                stop = declaration._handle_result(*outcomes[declaration.id]) or stop
            done += len(chunk)
            ours = (ours - chunk)._commit_and_relock()
        if stop and insurer.paused_until:
            self.env.ref("credit_insurance.ir_cron_declare_overdues")._trigger(
                at=insurer.paused_until
            )
        return done

    def _handle_result(self, handler, result):
        """Record one call's result with ``handler`` (a method name and its
        other arguments); return True when the insurer must not be called
        again now (refused credentials, too many calls)."""
        self.ensure_one()
        method, args = handler
        try:
            with self.env.cr.savepoint():
                return getattr(self, method)(result, *args)
        except Exception as error:  # one declaration never stops the batch
            _logger.exception("Declaration %s: exchange failed", self.name)
            self._record_failure(
                InsurerError(
                    self.env._("Unexpected error: %(error)s", error=error),
                    provider=self.insurer_id.name,
                ),
                retryable=True,
            )
        return False

    def _record_call_error(self, error):
        """An insurer's error on a call about this declaration.

        :return: True when the insurer must not be called again now.
        """
        if not isinstance(error, InsurerError):
            raise error  # a bug: recorded as unexpected by _handle_result
        stop = self.insurer_id._record_call_failure(error)
        if not isinstance(error, InsurerAuthError):  # the login's fault, not ours
            self._record_failure(error)
        return stop

    # -- filing

    def _mark_sending(self):
        """Record that these declarations are being sent (committed by the
        caller before any call), and what each sending will carry.

        :return: ``{declaration: (payload, identity, buyer ref, may have been
            sent, [(line id, amount)])}``.
        """
        known = {}
        for insurer, declarations in self.grouped("insurer_id").items():
            known.update(insurer._known_buyer_refs(declarations.partner_id))
        # Read at once for the batch (each declaration's own recordsets would
        # fetch them one declaration at a time).
        self.line_ids.move_id.fetch(["name", "invoice_date", "currency_id"])
        payloads = {}
        for declaration in self:
            lines = declaration.line_ids.filtered("included")
            if not lines:
                continue  # nothing declarable (paid, or all in dispute)
            identity = self.env["credit.insurance.insurer"]._buyer_identity(
                declaration.partner_id
            )
            buyer_ref = declaration.insurer_buyer_ref or known.get(
                declaration.partner_id.id, ""
            )
            if not buyer_ref:
                try:
                    declaration.insurer_id._check_buyer_identifiable(
                        declaration.partner_id, identity
                    )
                except InsurerError as error:
                    declaration._record_failure(error)
                    continue
            payloads[declaration] = (
                declaration._provider_declaration(buyer_ref, lines, identity),
                identity,
                buyer_ref,
                declaration.delivery_uncertain,
                [(line.id, line.amount_declared) for line in lines],
            )
        self.browse([declaration.id for declaration in payloads]).write(
            {"delivery_uncertain": True, "last_error": False, "next_retry_date": False}
        )
        return payloads

    def _filing_call(self, prepared):
        """The filing as a function of a provider (run in a worker thread,
        without the ORM), and the handler recording its outcome."""
        payload, identity, buyer_ref, may_have_been_sent, sent = prepared

        def call(provider):
            ref = buyer_ref
            if not ref:
                try:
                    match = provider.find_buyer(identity)
                except InsurerError as error:
                    return FilingOutcome(error=error)
                if match is None:
                    return FilingOutcome(unknown_buyer=True)
                ref = match.buyer_ref
            try:
                answer = provider.submit_declaration(
                    replace(payload, buyer_ref=ref),
                    may_have_been_sent=may_have_been_sent,
                )
            except InsurerError as error:
                return FilingOutcome(buyer_ref=ref, error=error, sent=True)
            return FilingOutcome(buyer_ref=ref, answer=answer, sent=True)

        return call, ("_apply_filing", (sent, may_have_been_sent))

    def _provider_declaration(self, buyer_ref, lines, identity):
        self.ensure_one()
        first = lines.sorted(lambda line: (line.due_date, line.id))[0]
        return OverdueDeclaration(
            idempotency_key=self.idempotency_key,
            category=self.category,
            buyer_ref=buyer_ref or "",
            invoice_reference=first.move_id.name,
            amount=self.currency_id.round(sum(lines.mapped("amount_declared"))),
            currency=self.currency_id.name,
            due_date=first.due_date,
            buyer=identity,
            policy_number=self.policy_id.name,
            invoice_date=first.move_id.invoice_date,
            requested_due_date=self.requested_due_date or None,
            invoices=tuple(
                OverdueInvoice(
                    reference=line.move_id.name,
                    amount=line.amount_declared,
                    due_date=line.due_date,
                    invoice_date=line.move_id.invoice_date,
                    invoice_amount=line.amount_residual,
                    invoice_currency=line.move_id.currency_id.name,
                )
                for line in lines
            ),
        )

    def _apply_filing(self, outcome, sent, may_have_been_sent):
        """Record a filing call's outcome (a FilingOutcome, or an exception).

        :return: True when the insurer must not be called again now.
        """
        self.ensure_one()
        if isinstance(outcome, Exception):  # a bug, or a failure not mapped
            raise outcome
        if outcome.buyer_ref:
            self.insurer_buyer_ref = outcome.buyer_ref
        error = outcome.error
        if outcome.unknown_buyer:
            error = self.insurer_id._unknown_buyer_error(
                self.partner_id,
                self.env["credit.insurance.insurer"]._buyer_identity(self.partner_id),
            )
        if error:
            if not (
                may_have_been_sent or (outcome.sent and error.may_have_been_received)
            ):
                self.delivery_uncertain = False  # certainly not at the insurer
            if isinstance(error, ProviderOperationUnavailable):
                self._switch_to_portal(error)
                return False
            return self._record_call_error(error)
        answer = outcome.answer
        if answer.reconciled:
            log_note(
                self,
                self.env._(
                    "Found at %(insurer)s under %(reference)s: an earlier sending "
                    "reached the insurer although its answer never reached Odoo. "
                    "It was not sent again.",
                    insurer=self.insurer_id.name,
                    reference=answer.insurer_reference,
                ),
            )
        self._record_filing(answer.insurer_reference, answer.status, sent=sent)
        return False

    def _record_filing(self, reference, status, sent=None, through_api=True):
        """The insurer has the declaration: record it, stop deliveries."""
        self.ensure_one()
        now = fields.Datetime.now()
        # What was sent (``[(line id, amount)]``), even if paid since.
        amounts = (
            dict(sent)
            if sent is not None
            else {
                line.id: line.amount_declared
                for line in self.line_ids.filtered("included")
            }
        )
        for line in self.line_ids.filtered(lambda line: line.id in amounts):
            line.write({"date_filed": now, "amount_filed": amounts[line.id]})
        total = self.currency_id.round(sum(amounts.values()))
        self.write(
            {
                "state": INSURER_STATES.get(status, "filed"),
                "insurer_reference": reference or self.insurer_reference,
                "insurer_status": status,
                "date_filed": now,
                "amount_filed": total,
                "amount_reported": total,
                "filed_through_api": through_api,
                "delivery_uncertain": False,
                "last_error": False,
                "retry_count": 0,
                "next_retry_date": False,
                "next_check_date": now + timedelta(hours=CHECK_DELAYS[self.category])
                if through_api
                else False,
            }
        )
        if self.activity_ids:
            self.activity_ids.action_feedback(
                feedback=self.env._("Filed with the insurer.")
            )
        if through_api:
            log_note(
                self,
                self.env._(
                    "Filed with %(insurer)s under reference %(reference)s: "
                    "%(count)s invoice(s), %(amount)s.",
                    insurer=self.insurer_id.name,
                    reference=reference or "-",
                    count=len(amounts),
                    amount=self.currency_id.format(total),
                ),
            )
        if self.category == "overdue":
            self._stop_deliveries()
        elif self.state == "refused":
            self._revert_extension()
        elif self.state == "acknowledged":
            self._apply_extension()

    @api.depends("insurer_id.exchanges_confirmed", "insurer_id.provider")
    def _compute_exchange_unconfirmed(self):
        # Read as the related fields are: salespeople do not read insurers.
        for declaration in self:
            declaration.exchange_unconfirmed = bool(
                declaration.insurer_id
            ) and declaration.insurer_id.sudo()._exchange_unconfirmed("declare_overdue")

    def _switch_to_portal(self, error):
        """The insurer's API cannot take it: a credit manager files it."""
        text = self.insurer_id._error_text(error)
        self.write(
            {
                "manual_filing": True,
                "state": "to_file",
                "last_error": text,
                "next_retry_date": False,
            }
        )
        log_note(self, text)
        self._ask_portal_filing()

    # -- updates

    def _update_call(self):
        """Report the declaration as it is now (an idempotent call)."""
        self.ensure_one()
        lines = self.line_ids.filtered("included")
        identity = self.env["credit.insurance.insurer"]._buyer_identity(self.partner_id)
        payload = (
            self._provider_declaration(self.insurer_buyer_ref, lines, identity)
            if lines
            else OverdueDeclaration(
                idempotency_key=self.idempotency_key,
                category=self.category,
                buyer_ref=self.insurer_buyer_ref or "",
                invoice_reference="",
                amount=0.0,
                currency=self.currency_id.name,
                due_date=self.deadline or fields.Date.context_today(self),
            )
        )
        reported = {line.id: line.amount_declared for line in lines}
        reference = self.insurer_reference

        def call(provider):
            return provider.update_declaration(reference, payload)

        return call, ("_apply_update", (reported,))

    def _apply_update(self, answer, reported):
        self.ensure_one()
        if isinstance(answer, ProviderOperationUnavailable):
            self._ask_manual_update(reason=answer.message)
            return False
        if isinstance(answer, Exception):
            return self._record_call_error(answer)
        now = fields.Datetime.now()
        for line in self.line_ids.filtered(
            lambda line: line.id in reported and not line.date_filed
        ):
            line.write({"date_filed": now, "amount_filed": reported[line.id]})
        total = self.currency_id.round(sum(reported.values()))
        self.write(
            {
                "amount_reported": total,
                "insurer_status": answer.status,
                "last_error": False,
                "retry_count": 0,
                "next_retry_date": False,
            }
        )
        log_note(
            self,
            self.env._(
                "Reported to %(insurer)s: %(amount)s still declared "
                "(%(count)s invoice(s)).",
                insurer=self.insurer_id.name,
                amount=self.currency_id.format(total),
                count=len(reported),
            ),
        )
        if self.currency_id.is_zero(self.amount_open):
            self._close("settled")
            return False
        return self._apply_status(answer)

    # -- follow-up

    def _status_call(self):
        self.ensure_one()
        reference = self.insurer_reference

        def call(provider):
            return provider.fetch_declaration_status(reference)

        return call, ("_apply_status", ())

    def _apply_status(self, answer):
        """Where the declaration stands at the insurer (DeclarationAnswer)."""
        self.ensure_one()
        if isinstance(answer, Exception):
            return self._record_call_error(answer)
        state = INSURER_STATES.get(answer.status, self.state)
        self.write(
            {
                "insurer_status": answer.status,
                "claim_ref": answer.claim_ref or self.claim_ref,
                "last_error": False,
                "retry_count": 0,
                "next_check_date": fields.Datetime.now()
                + timedelta(hours=CHECK_DELAYS[self.category]),
            }
        )
        if state != self.state:
            if state in OPEN_STATES[self.category]:
                self.state = state
                log_note(
                    self,
                    self.env._(
                        "Status at %(insurer)s: %(state)s.",
                        insurer=self.insurer_id.name,
                        state=self._state_label(),
                    ),
                )
            else:
                self._close(state, message=answer.message)
        return False

    def _close(self, state, message=""):
        """The declaration ends (settled, claim opened, refused, accepted)."""
        self.ensure_one()
        self.write({"state": state, "next_check_date": False, "next_retry_date": False})
        body = {
            "settled": self.env._("Settled: nothing is owed any more."),
            "claim_opened": self.env._(
                "%(insurer)s opened a claim (%(claim)s).",
                insurer=self.insurer_id.name,
                claim=self.claim_ref or "-",
            ),
            "refused": self.env._(
                "Refused by %(insurer)s: %(message)s",
                insurer=self.insurer_id.name,
                message=message or "-",
            ),
            "acknowledged": self.env._(
                "Accepted by %(insurer)s.", insurer=self.insurer_id.name
            ),
        }[state]
        log_note(self, body)
        if state == "settled":
            self._propose_lifting_stop()
        if state == "refused" and self.category == "extension":
            self._revert_extension()
        if state == "acknowledged" and self.category == "extension":
            self._apply_extension()

    # -- failures

    def _record_failure(self, error, retryable=None):
        """Keep the error on the declaration and retry later with backoff.

        A failed filing goes to *Error*; a failed update or check of a filed
        declaration keeps its state and is tried again later.
        """
        self.ensure_one()
        retryable = error.retryable if retryable is None else retryable
        now = fields.Datetime.now()
        delay = self._retry_delay(error)
        text = self.insurer_id._error_text(error)
        vals = {"last_error": text, "retry_count": self.retry_count + 1}
        if self.state in FILED_STATES:
            vals["next_check_date"] = now + delay
            if self.update_due and retryable:
                vals["next_retry_date"] = now + delay
            elif self.update_due:  # refused: a person reports it in the portal
                self._ask_manual_update(reason=text)
        else:
            vals["state"] = "error"
            vals["next_retry_date"] = now + delay if retryable else False
        self.write(vals)
        if not retryable:
            log_note(self, self._not_retried_message(error))

    # ------------------------------------------------- stop of deliveries

    def _stop_deliveries(self):
        """A declared overdue stops deliveries to the buyer (orders refused,
        new invoices not insured)."""
        for declaration in self.filtered(lambda d: d.category == "overdue"):
            reason = self.env._(
                "Overdue declared to %(insurer)s (%(declaration)s)",
                insurer=declaration.insurer_id.name,
                declaration=declaration.name,
            )
            if declaration.partner_id._credit_insurance_stop_deliveries(
                declaration.company_id, reason
            ):
                declaration.stop_reason = reason

    def _propose_lifting_stop(self):
        """Settled: lifting the stop this declaration set is a credit
        manager's act (when the insurer allows), not the system's."""
        for declaration in self.filtered("stop_reason"):
            buyer = declaration.partner_id.with_company(declaration.company_id).sudo()
            if (
                not buyer.credit_insurance_stop
                or buyer.credit_insurance_stop_reason != declaration.stop_reason
            ):
                continue
            for user in declaration.company_id._credit_insurance_managers():
                declaration.activity_schedule(
                    "mail.mail_activity_data_todo",
                    summary=self.env._(
                        "Lift the stop of deliveries? %(buyer)s",
                        buyer=declaration.partner_id.name,
                    ),
                    note=self.env._(
                        "Declaration %(declaration)s is settled. If %(insurer)s "
                        "allows deliveries to %(buyer)s again, press 'Lift the "
                        "stop of deliveries' on the declaration.",
                        declaration=declaration.name,
                        insurer=declaration.insurer_id.name,
                        buyer=declaration.partner_id.name,
                    ),
                    user_id=user.id,
                )

    def _lift_stop(self):
        """A credit manager lifts the stop this declaration set (the insurer
        allows deliveries again); traced on the buyer by who did it."""
        for declaration in self.filtered("stop_reason"):
            buyer = declaration.partner_id.with_company(declaration.company_id)
            reason, declaration.stop_reason = declaration.stop_reason, False
            if buyer.credit_insurance_stop:
                buyer.with_context(tracking_disable=True).write(
                    {
                        "credit_insurance_stop": False,
                        "credit_insurance_stop_reason": False,
                        "credit_insurance_stop_date": False,
                    }
                )
                log_note(
                    declaration,
                    self.env._(
                        "Stop of deliveries lifted by %(user)s (it was: %(reason)s).",
                        user=self.env.user.name,
                        reason=reason,
                    ),
                )

    def _state_label(self):
        self.ensure_one()
        return dict(self._fields["state"]._description_selection(self.env))[self.state]

    # ------------------------------------------------------------ extensions

    def _revert_extension(self):
        """An extension refused or withdrawn: a due date it had moved (a free
        extension) goes back to what it was, and the deadline with it."""
        for declaration in self.filtered(lambda d: d.category == "extension"):
            instalment = declaration.line_ids.move_line_id.sudo()
            if not declaration.extension_applied_date:
                log_note(
                    instalment.move_id,
                    self.env._(
                        "Extension to %(date)s not granted (%(declaration)s): the "
                        "due date stays %(due)s.",
                        date=format_date(self.env, declaration.requested_due_date),
                        declaration=declaration.name,
                        due=format_date(self.env, declaration.previous_due_date),
                    ),
                )
                continue
            declaration.extension_applied_date = False
            if (
                instalment.credit_insurance_extended_due_date
                != declaration.requested_due_date
            ):
                continue  # another extension since
            previous = declaration.previous_due_date
            instalment.credit_insurance_extended_due_date = (
                previous if previous != instalment.date_maturity else False
            )
            log_note(
                instalment.move_id,
                self.env._(
                    "Extension to %(date)s not granted (%(declaration)s): the due "
                    "date is %(due)s again.",
                    date=format_date(self.env, declaration.requested_due_date),
                    declaration=declaration.name,
                    due=format_date(self.env, previous),
                ),
            )

    def _apply_extension(self):
        """The new due date takes effect: at once for a free extension, on
        the insurer's acceptance for the others; never once the deadline of
        the due date it extends has passed."""
        today = fields.Date.context_today(self)
        for declaration in self.filtered(
            lambda d: d.category == "extension" and not d.extension_applied_date
        ):
            instalment = declaration.line_ids.move_line_id.sudo()
            move = instalment.move_id
            deadline = instalment.credit_insurance_declaration_deadline
            overdue = instalment._credit_insurance_overdue_line()
            if (
                move.credit_insurance_cover_lost
                or (deadline and today > deadline)
                or (overdue and overdue.date_filed)
            ):
                log_note(
                    declaration,
                    self.env._(
                        "Accepted on %(date)s, but the due date of %(invoice)s is "
                        "not moved: its declaration deadline (%(deadline)s) has "
                        "passed or its overdue is already declared. An extension "
                        "never restores a cover.",
                        date=format_date(self.env, today),
                        invoice=move.name,
                        deadline=format_date(self.env, deadline),
                    ),
                )
                continue
            instalment.credit_insurance_extended_due_date = (
                declaration.requested_due_date
            )
            declaration.extension_applied_date = today
            if overdue:
                overdue.declaration_id._release_extended(overdue)
            log_note(
                move,
                self.env._(
                    "Due date %(previous)s extended to %(date)s (extension "
                    "%(extension)s); the declaration deadline is now %(deadline)s.",
                    previous=format_date(self.env, declaration.previous_due_date),
                    date=format_date(self.env, declaration.requested_due_date),
                    extension=declaration.name,
                    deadline=format_date(
                        self.env, instalment.credit_insurance_declaration_deadline
                    ),
                ),
            )

    def _release_extended(self, line):
        """An instalment whose due date is extended leaves this unfiled
        overdue declaration (cancelled when nothing is left in it)."""
        self.ensure_one()
        name = line.move_id.name
        line.sudo().unlink()
        log_note(
            self,
            self.env._(
                "Invoice %(invoice)s removed: its due date is extended.",
                invoice=name,
            ),
        )
        if not self.line_ids:
            self.sudo().write({"state": "cancelled"})
            self.activity_ids.unlink()
