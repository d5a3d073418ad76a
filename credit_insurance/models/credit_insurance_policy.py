from dataclasses import dataclass
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from .access_groups import CREDIT_STAFF

# How the deadline to declare an overdue is counted, as the policies word it
# (DOMAIN.md, glossary: "Délai de déclaration de menace de sinistre").
DEADLINE_MODELS = [
    # Allianz Trade: "usually 15 days max" after the default (the due date).
    ("due_date", "N days after the due date"),
    # Coface: "30 days after the max credit period".
    ("max_credit_period", "N days after the end of the maximum credit period"),
    # Atradius UK: "30 days after the maximum extension period".
    ("max_extension_period", "N days after the end of the maximum extension period"),
]
DISCRETIONARY_CONDITIONS = [
    ("companies", "Companies"),
    ("experience", "Companies with payment experience or a recent credit report"),
]

POLICY_TYPES = [
    ("global", "Global (whole turnover)"),
    ("selective", "Selective (chosen buyers)"),
    ("export", "Export"),
    ("single_risk", "Single risk"),
]


@dataclass(frozen=True)
class DeclarationDeadline:
    """The last day to declare one due date (an instalment) and what it was
    counted from: ``start`` + ``days``, ``basis`` one of the policy's
    deadline models or ``dispute`` (a fresh period after a dispute)."""

    deadline: date
    start: date
    days: int
    basis: str


def in_force_domain(date):
    """Records dated from ``date_start`` to ``date_end`` (empty: open-ended)
    in force on ``date``."""
    return [
        ("date_start", "<=", date),
        "|",
        ("date_end", "=", False),
        ("date_end", ">=", date),
    ]


class CreditInsurancePolicy(models.Model):
    """A credit-insurance contract and the parameters the insurer applies.

    Salespeople read a policy's number, insurer, type, currency and dates (on
    limit requests and the refused-order dialog); its terms, premium and
    claims are the credit staff's (``groups=CREDIT_STAFF`` on every other
    field).
    """

    _name = "credit.insurance.policy"
    _description = "Credit insurance policy"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "date_start desc, id desc"
    _check_company_auto = True
    _rec_names_search = ["name", "insurer_id.name"]

    name = fields.Char(string="Policy number", required=True, tracking=True)
    active = fields.Boolean(default=True, tracking=True)
    insurer_id = fields.Many2one(
        "credit.insurance.insurer",
        required=True,
        check_company=True,
        tracking=True,
        ondelete="restrict",
    )
    policy_type = fields.Selection(
        POLICY_TYPES, string="Type", required=True, default="global", tracking=True
    )
    insurer_extension = fields.Char(
        string="Extension at the insurer",
        tracking=True,
        help="The policy's extension at the insurer, sent with each request "
        "(Allianz Trade extensionId, e.g. DCL or CAP); empty for the main "
        "policy.",
        groups=CREDIT_STAFF,
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(
        "res.currency",
        required=True,
        default=lambda self: self.env.company.currency_id,
        tracking=True,
    )
    date_start = fields.Date(
        string="Start date",
        required=True,
        default=fields.Date.context_today,
        tracking=True,
    )
    date_end = fields.Date(string="End date", tracking=True)

    # Cover
    coverage_pct = fields.Float(
        string="Coverage % (named limits)",
        default=90.0,
        tracking=True,
        help="Share of the insured loss the insurer pays on buyers with a named "
        "limit (quotité garantie).",
        groups=CREDIT_STAFF,
    )
    discretionary_limit = fields.Monetary(
        string="Discretionary limit",
        tracking=True,
        help="Amount the seller may insure on any buyer without a named decision "
        "(non dénommé). Applies under a global policy only.",
        groups=CREDIT_STAFF,
    )
    discretionary_coverage_pct = fields.Float(
        string="Coverage % (discretionary)",
        default=70.0,
        tracking=True,
        groups=CREDIT_STAFF,
    )
    # Conditions of the discretionary cover (never on private persons).
    discretionary_condition = fields.Selection(
        DISCRETIONARY_CONDITIONS,
        string="Discretionary cover for",
        required=True,
        default="companies",
        tracking=True,
        help="Companies: any company without a named limit. With payment "
        "experience: only those that paid at least one invoice of the minimum "
        "amount within the days allowed after its due date in the last "
        "months, or that have a credit report recent enough.",
        groups=CREDIT_STAFF,
    )
    discretionary_exclude_public = fields.Boolean(
        string="Not on public buyers",
        tracking=True,
        help="Public buyers (administrations, public bodies) get no "
        "discretionary cover.",
        groups=CREDIT_STAFF,
    )
    discretionary_exclude_affiliates = fields.Boolean(
        string="Not on affiliates",
        tracking=True,
        help="The seller's own companies and affiliates get no discretionary cover.",
        groups=CREDIT_STAFF,
    )
    experience_min_amount = fields.Monetary(
        string="Paid invoice of at least",
        tracking=True,
        help="Payment experience: smallest invoice (VAT included, company "
        "currency) whose payment counts.",
        groups=CREDIT_STAFF,
    )
    experience_payment_days = fields.Integer(
        string="Paid within (days after its due date)",
        default=30,
        tracking=True,
        groups=CREDIT_STAFF,
    )
    experience_months = fields.Integer(
        string="Payment experience of the last (months)",
        default=12,
        tracking=True,
        groups=CREDIT_STAFF,
    )
    credit_report_months = fields.Integer(
        string="Credit report valid for (months)",
        default=12,
        tracking=True,
        help="A credit report dated within this many months stands for the "
        "payment experience.",
        groups=CREDIT_STAFF,
    )
    political_coverage_pct = fields.Float(
        string="Coverage % (political risk)",
        tracking=True,
        help="Share of the loss the insurer pays when the cause is political "
        "(moratorium, non-transfer, war or catastrophe). 0: the coverage of "
        "the commercial risk applies.",
        groups=CREDIT_STAFF,
    )
    vat_covered = fields.Boolean(
        string="VAT covered",
        tracking=True,
        help="When set, insured amounts and exposure include VAT.",
        groups=CREDIT_STAFF,
    )
    enforcement_mode = fields.Selection(
        [("block", "Block"), ("warn", "Warn")],
        string="Over-limit orders",
        required=True,
        default="block",
        tracking=True,
        help="Block: an order that would exceed the insured limit cannot be "
        "confirmed. Warn: it can, with a visible warning.",
        groups=CREDIT_STAFF,
    )

    # Terms and deadlines (days)
    max_credit_days = fields.Integer(
        string="Maximum credit period (days)",
        default=120,
        tracking=True,
        help="Invoices with a longer payment term are not insured. 0: no maximum.",
        groups=CREDIT_STAFF,
    )
    declaration_days = fields.Integer(
        string="Declaration period (days)",
        default=30,
        tracking=True,
        help="An overdue must be declared to the insurer within this many days "
        "(counted as the deadline model says), or the cover is lost.",
        groups=CREDIT_STAFF,
    )
    deadline_model = fields.Selection(
        DEADLINE_MODELS,
        string="Declaration deadline counted from",
        required=True,
        default="due_date",
        tracking=True,
        help="After the due date: the period runs from each due date (Allianz "
        "Trade's usual wording). After the maximum credit period: from the "
        "delivery date plus the maximum credit period (Coface). After the "
        "maximum extension period: from the due date plus the maximum "
        "extension (Atradius).",
        groups=CREDIT_STAFF,
    )
    max_extension_days = fields.Integer(
        string="Maximum extension (days)",
        default=60,
        tracking=True,
        help="Longest extension (prorogation) of a due date, counted from the "
        "original due date, with the insurer's approval.",
        groups=CREDIT_STAFF,
    )
    free_extension_days = fields.Integer(
        string="Free extension (days)",
        default=0,
        tracking=True,
        help="Extensions up to this many days after the original due date need "
        "no approval: the deadline moves at once. Longer ones move it only "
        "once the insurer accepts them. 0: every extension needs approval.",
        groups=CREDIT_STAFF,
    )
    dispute_declaration_days = fields.Integer(
        string="Declaration period after a dispute (days)",
        default=30,
        tracking=True,
        help="A disputed invoice may be declared within this many days after "
        "the dispute is settled, even when its usual deadline has passed.",
        groups=CREDIT_STAFF,
    )
    stop_after_months = fields.Integer(
        string="Stop of deliveries after (months)",
        default=0,
        tracking=True,
        help="Deliveries to a buyer stop this many months after its oldest "
        "unpaid due date (Atradius: usually 2). 0: no automatic stop.",
        groups=CREDIT_STAFF,
    )
    # Overdue declarations (see credit.insurance.declaration).
    declaration_trigger_days = fields.Integer(
        string="Declare after (days overdue)",
        default=7,
        tracking=True,
        help="An unpaid insured invoice is declared to the insurer this many "
        "days after its due date, well before the declaration deadline.",
        groups=CREDIT_STAFF,
    )
    declaration_alert_days = fields.Integer(
        string="Alert before the deadline (days)",
        default=5,
        tracking=True,
        help="Credit managers are alerted (activity and e-mail) this many days "
        "before a declaration deadline when the overdue is still not filed.",
        groups=CREDIT_STAFF,
    )
    waiting_days_insolvency = fields.Integer(
        string="Waiting period, insolvency (days)",
        default=30,
        tracking=True,
        groups=CREDIT_STAFF,
    )
    waiting_days_protracted_default = fields.Integer(
        string="Waiting period, protracted default (days)",
        default=150,
        tracking=True,
        groups=CREDIT_STAFF,
    )

    # Claims and premium
    minimum_claim_amount = fields.Monetary(tracking=True, groups=CREDIT_STAFF)
    deductible = fields.Monetary(tracking=True, groups=CREDIT_STAFF)
    annual_max_liability = fields.Monetary(
        string="Annual maximum liability",
        tracking=True,
        help="Most the insurer pays per policy year (plafond d'indemnisation). "
        "0: no cap.",
        groups=CREDIT_STAFF,
    )
    premium_rate = fields.Float(
        string="Premium rate (%)",
        digits=(16, 4),
        tracking=True,
        help="Premium as a percentage of the insured turnover (of the buyers "
        "of countries without a rate of their own).",
        groups=CREDIT_STAFF,
    )
    premium_rate_ids = fields.One2many(
        "credit.insurance.premium.rate",
        "policy_id",
        string="Premium rates by buyer country",
        help="Segments of the policy with a rate of their own, e.g. export.",
        groups=CREDIT_STAFF,
    )
    minimum_premium = fields.Monetary(
        tracking=True,
        help="Least premium of a policy year: the premiums of its periods are "
        "advances; the declaration closing the policy year adds what they "
        "lack to reach it (year-end adjustment).",
        groups=CREDIT_STAFF,
    )
    private_buyers_insured = fields.Boolean(
        string="Private persons insured",
        tracking=True,
        help="Sales to private persons (buyers that are not companies) are "
        "insured, on named limits only (never discretionary cover), and count "
        "in the insured turnover. Most policies exclude them.",
        groups=CREDIT_STAFF,
    )
    turnover_periodicity = fields.Selection(
        [("monthly", "Monthly"), ("quarterly", "Quarterly"), ("yearly", "Yearly")],
        string="Turnover declaration",
        required=True,
        default="monthly",
        tracking=True,
        groups=CREDIT_STAFF,
    )
    turnover_declaration_days = fields.Integer(
        string="Turnover due within (days)",
        default=15,
        tracking=True,
        help="Days after the end of a period to declare its insured turnover.",
        groups=CREDIT_STAFF,
    )
    turnover_declaration_ids = fields.One2many(
        "credit.insurance.turnover.declaration",
        "policy_id",
        groups=CREDIT_STAFF,
    )

    limit_ids = fields.One2many(
        "credit.insurance.limit", "policy_id", groups=CREDIT_STAFF
    )
    limit_count = fields.Integer(compute="_compute_limit_count", groups=CREDIT_STAFF)
    note = fields.Html(groups=CREDIT_STAFF)

    # --- Claims: accounting and remaining maximum liability (issue 6) -------
    claim_journal_id = fields.Many2one(
        "account.journal",
        string="Claims journal",
        check_company=True,
        domain="[('type', '=', 'general')]",
        tracking=True,
        help="Journal of the indemnity and recovery entries. Empty: the "
        "company's first miscellaneous journal.",
        groups=CREDIT_STAFF,
    )
    insurer_receivable_account_id = fields.Many2one(
        "account.account",
        string="Insurer account",
        check_company=True,
        domain="[('account_type', '=', 'asset_receivable'), ('reconcile', '=', True)]",
        tracking=True,
        help="Receivable account where the indemnity the insurer owes waits for "
        "its payment, and where recoveries owed back to it are credited. Empty: "
        "the insurer partner's receivable account.",
        groups=CREDIT_STAFF,
    )
    claim_recovery_account_id = fields.Many2one(
        "account.account",
        string="Recoveries passed back account",
        check_company=True,
        domain="[('account_type', 'in', ('expense', 'expense_other'))]",
        tracking=True,
        help="Expense account debited with the insurer's share of what a buyer "
        "pays after the indemnity.",
        groups=CREDIT_STAFF,
    )
    claim_ids = fields.One2many(
        "credit.insurance.claim", "policy_id", groups=CREDIT_STAFF
    )
    claim_count = fields.Integer(compute="_compute_claim_count", groups=CREDIT_STAFF)
    remaining_max_liability = fields.Monetary(
        string="Remaining maximum liability",
        compute="_compute_remaining_max_liability",
        help="Annual maximum liability less the indemnities of the current "
        "policy year (0 when the policy has no maximum).",
        groups=CREDIT_STAFF,
    )

    _sql_constraints = [
        (
            "name_insurer_uniq",
            "unique(name, insurer_id)",
            "This insurer already has a policy with this number.",
        ),
    ]

    @api.depends("limit_ids")
    def _compute_limit_count(self):
        for policy in self:
            policy.limit_count = len(policy.limit_ids)

    @api.depends("claim_ids")
    def _compute_claim_count(self):
        for policy in self:
            policy.claim_count = len(policy.claim_ids)

    @api.depends(
        "annual_max_liability", "claim_ids.indemnity_amount", "claim_ids.state"
    )
    def _compute_remaining_max_liability(self):
        today = fields.Date.context_today(self)
        for policy in self:
            policy.remaining_max_liability = (
                policy._remaining_max_liability(today) or 0.0
            )

    def _policy_year(self, day):
        """First and last day of the policy year containing ``day`` (years run
        from the anniversary of the start date)."""
        self.ensure_one()
        start = self.date_start
        years = max(
            day.year - start.year - ((day.month, day.day) < (start.month, start.day)), 0
        )
        first = start + relativedelta(years=years)
        return first, first + relativedelta(years=1, days=-1)

    def _premium_rate(self, country):
        """The premium rate of the turnover made with buyers of ``country``:
        the rate of its segment, or the policy's."""
        self.ensure_one()
        segment = self.premium_rate_ids.filtered(lambda r: country in r.country_ids)
        return segment[:1].rate if segment else self.premium_rate

    def _remaining_max_liability(self, day, exclude=None):
        """What the insurer may still pay in the policy year of ``day``; None
        without a maximum. ``exclude``: claims not to count (the one computed)."""
        self.ensure_one()
        if not self.annual_max_liability:
            return None
        first, last = self._policy_year(day)
        domain = [
            ("policy_id", "=", self._origin.id),
            ("state", "in", ("approved", "partial", "paid", "closed")),
            ("date_indemnity", ">=", first),
            ("date_indemnity", "<=", last),
        ]
        if exclude:
            domain.append(("id", "not in", exclude._origin.ids))
        [(paid,)] = (
            self.env["credit.insurance.claim"]
            .sudo()
            ._read_group(domain, aggregates=["indemnity_amount:sum"])
        )
        return max(self.annual_max_liability - paid, 0.0)

    def _claim_journal(self):
        self.ensure_one()
        journal = self.claim_journal_id or self.env["account.journal"].search(
            [
                *self.env["account.journal"]._check_company_domain(self.company_id),
                ("type", "=", "general"),
            ],
            limit=1,
        )
        if not journal:
            raise UserError(
                self.env._(
                    "Policy %(policy)s: choose the journal of claim entries.",
                    policy=self.display_name,
                )
            )
        return journal

    def _claim_insurer_account(self):
        self.ensure_one()
        return (
            self.insurer_receivable_account_id
            or self.insurer_id._get_accounting_partner()
            .with_company(self.company_id)
            .property_account_receivable_id
        )

    def _claim_recovery_account(self):
        self.ensure_one()
        if not self.claim_recovery_account_id:
            raise UserError(
                self.env._(
                    "Policy %(policy)s: choose the account of recoveries passed "
                    "back to the insurer (Claims and premium tab).",
                    policy=self.display_name,
                )
            )
        return self.claim_recovery_account_id

    def action_view_claims(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "credit_insurance.credit_insurance_claim_action"
        )
        action["domain"] = [("policy_id", "=", self.id)]
        action["context"] = {"default_policy_id": self.id}
        return action

    @api.depends("name", "insurer_id")
    def _compute_display_name(self):
        for policy in self:
            policy.display_name = (
                f"{policy.insurer_id.name} - {policy.name}"
                if policy.insurer_id
                else policy.name
            )

    @api.constrains(
        "coverage_pct",
        "discretionary_coverage_pct",
        "discretionary_limit",
        "minimum_claim_amount",
        "deductible",
        "annual_max_liability",
        "premium_rate",
        "minimum_premium",
        "max_credit_days",
        "declaration_days",
        "max_extension_days",
        "declaration_trigger_days",
        "declaration_alert_days",
        "waiting_days_insolvency",
        "waiting_days_protracted_default",
        "free_extension_days",
        "dispute_declaration_days",
        "stop_after_months",
        "political_coverage_pct",
        "experience_min_amount",
        "experience_payment_days",
        "experience_months",
        "credit_report_months",
        "date_start",
        "date_end",
    )
    def _check_parameters(self):
        percentages = (
            "coverage_pct",
            "discretionary_coverage_pct",
            "political_coverage_pct",
        )
        non_negative = (
            "discretionary_limit",
            "minimum_claim_amount",
            "deductible",
            "annual_max_liability",
            "premium_rate",
            "minimum_premium",
            "max_credit_days",
            "declaration_days",
            "max_extension_days",
            "declaration_trigger_days",
            "declaration_alert_days",
            "waiting_days_insolvency",
            "waiting_days_protracted_default",
            "free_extension_days",
            "dispute_declaration_days",
            "stop_after_months",
            "experience_min_amount",
            "experience_payment_days",
            "experience_months",
            "credit_report_months",
        )
        for policy in self:
            for name in percentages:
                if not 0 <= policy[name] <= 100:
                    raise ValidationError(
                        self.env._(
                            "Policy %(policy)s: %(field)s must be between 0 and 100.",
                            policy=policy.name,
                            field=policy._fields[name].get_description(self.env)[
                                "string"
                            ],
                        )
                    )
            for name in non_negative:
                if policy[name] < 0:
                    raise ValidationError(
                        self.env._(
                            "Policy %(policy)s: %(field)s cannot be negative.",
                            policy=policy.name,
                            field=policy._fields[name].get_description(self.env)[
                                "string"
                            ],
                        )
                    )
            if (
                policy.declaration_trigger_days + policy.declaration_alert_days
                >= policy.declaration_days
                > 0
            ):
                # The alert is the safety net of the filing: it must come after.
                raise ValidationError(
                    self.env._(
                        "Policy %(policy)s: overdues are declared %(trigger)s "
                        "days after their due date and credit managers alerted "
                        "%(alert)s days before the deadline of %(period)s days: "
                        "both must fit within the declaration period (%(trigger)s "
                        "+ %(alert)s must be less than %(period)s).",
                        policy=policy.name,
                        trigger=policy.declaration_trigger_days,
                        alert=policy.declaration_alert_days,
                        period=policy.declaration_days,
                    )
                )
            if policy.free_extension_days > policy.max_extension_days:
                raise ValidationError(
                    self.env._(
                        "Policy %(policy)s: the free extension (%(free)s days) "
                        "cannot be longer than the maximum extension (%(max)s "
                        "days).",
                        policy=policy.name,
                        free=policy.free_extension_days,
                        max=policy.max_extension_days,
                    )
                )
            if policy.date_end and policy.date_end < policy.date_start:
                raise ValidationError(
                    self.env._(
                        "Policy %(policy)s: the end date (%(end)s) is before the "
                        "start date (%(start)s).",
                        policy=policy.name,
                        end=policy.date_end,
                        start=policy.date_start,
                    )
                )

    @api.constrains("policy_type", "company_id", "date_start", "date_end", "active")
    def _check_single_global_policy(self):
        """Discretionary cover must come from one place: one global policy at a time."""
        for policy in self.filtered(lambda p: p.policy_type == "global" and p.active):
            others = self.search(
                [
                    ("id", "!=", policy.id),
                    ("policy_type", "=", "global"),
                    ("company_id", "=", policy.company_id.id),
                ]
            )
            for other in others:
                if policy._overlaps(other):
                    raise ValidationError(
                        self.env._(
                            "Policies %(policy)s and %(other)s are both global "
                            "policies of %(company)s over the same dates: end one "
                            "before the other starts.",
                            policy=policy.display_name,
                            other=other.display_name,
                            company=policy.company_id.name,
                        )
                    )

    def _overlaps(self, other):
        self.ensure_one()
        starts_before_other_ends = (
            not other.date_end or self.date_start <= other.date_end
        )
        ends_after_other_starts = not self.date_end or self.date_end >= other.date_start
        return starts_before_other_ends and ends_after_other_starts

    # ----------------------------------------------------------- deadlines

    def _declaration_deadline(
        self, due_date, original_due_date, delivery_date, dispute_settled=None
    ):
        """The deadline to declare one due date (an instalment) if it stays
        unpaid: the one place where the policy's deadline model is applied.

        :param due_date: the due date in force (extended, if it was).
        :param original_due_date: the due date of the invoice's payment terms.
        :param delivery_date: the invoice (delivery) date.
        :param dispute_settled: the day a dispute on the invoice was settled;
            a fresh declaration period runs from it.
        :return: a :class:`DeclarationDeadline`, or None without a due date.
        """
        self.ensure_one()
        if not due_date:
            return None
        days = self.declaration_days
        start, basis = due_date, "due_date"
        if self.deadline_model == "max_credit_period" and self.max_credit_days:
            # Coface: from the end of the maximum credit period, counted from
            # the delivery; an extension granted beyond it moves it along.
            start = max(
                due_date,
                (delivery_date or due_date) + timedelta(days=self.max_credit_days),
            )
            basis = "max_credit_period"
        elif self.deadline_model == "max_extension_period":
            # Atradius: from the end of the longest extension the policy
            # allows, counted from the original due date.
            start = max(
                due_date,
                (original_due_date or due_date)
                + timedelta(days=self.max_extension_days),
            )
            basis = "max_extension_period"
        result = DeclarationDeadline(start + timedelta(days=days), start, days, basis)
        if dispute_settled:
            fresh_days = self.dispute_declaration_days
            fresh = dispute_settled + timedelta(days=fresh_days)
            if fresh > result.deadline:
                result = DeclarationDeadline(
                    fresh, dispute_settled, fresh_days, "dispute"
                )
        return result

    def _is_in_force(self, date):
        self.ensure_one()
        return (
            self.active
            and self.date_start <= date
            and (not self.date_end or date <= self.date_end)
        )

    @api.model
    def _in_force_domain(self, date):
        return in_force_domain(date)

    def action_view_turnover_declarations(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "credit_insurance.credit_insurance_turnover_declaration_action"
        )
        action["domain"] = [("policy_id", "=", self.id)]
        action["context"] = {"default_policy_id": self.id}
        return action

    def action_view_limits(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "credit_insurance.credit_insurance_limit_action"
        )
        action["domain"] = [("policy_id", "=", self.id)]
        action["context"] = {"default_policy_id": self.id, "search_default_in_force": 1}
        return action
