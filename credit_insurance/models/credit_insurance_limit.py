from collections import defaultdict

from odoo import api, fields, models
from odoo.exceptions import ValidationError

# Decisions that leave an insured amount; the others insure nothing.
GRANTING_DECISIONS = ("approved", "partial", "conditional", "reduced")


class CreditInsuranceLimit(models.Model):
    """One insurer decision on one buyer under one policy (limite de crédit).

    Decisions of a buyer under a policy form a history ordered by effective date:
    each decision is in force from its effective date until the next decision's
    effective date (or its own expiry), so at most one is in force on any day.
    """

    _name = "credit.insurance.limit"
    _description = "Insured credit limit decision"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "date_effective desc, id desc"
    _check_company_auto = True

    partner_id = fields.Many2one(
        "res.partner",
        string="Buyer",
        required=True,
        index=True,
        check_company=True,
        tracking=True,
        ondelete="restrict",
        domain="[('is_company', '=', True)]",
    )
    policy_id = fields.Many2one(
        "credit.insurance.policy",
        required=True,
        index=True,
        check_company=True,
        tracking=True,
        ondelete="restrict",
    )
    company_id = fields.Many2one(
        related="policy_id.company_id", store=True, index=True, precompute=True
    )
    insurer_id = fields.Many2one(related="policy_id.insurer_id", store=True)
    insurer_buyer_ref = fields.Char(
        string="Buyer reference at the insurer",
        tracking=True,
        help="Identifier of the buyer at the insurer (EasyNumber, buyerId, companyId).",
    )
    requested_amount = fields.Monetary(tracking=True)
    granted_amount = fields.Monetary(tracking=True)
    currency_id = fields.Many2one(
        "res.currency",
        required=True,
        compute="_compute_currency_id",
        store=True,
        readonly=False,
        precompute=True,
    )
    coverage_pct = fields.Float(
        string="Coverage %",
        compute="_compute_coverage_pct",
        store=True,
        readonly=False,
        precompute=True,
        tracking=True,
    )
    decision = fields.Selection(
        [
            ("approved", "Approved"),
            ("partial", "Partially approved"),
            ("conditional", "Approved with conditions"),
            ("refused", "Refused"),
            ("reduced", "Reduced"),
            ("cancelled", "Cancelled"),
        ],
        required=True,
        default="approved",
        tracking=True,
    )
    conditions = fields.Text(tracking=True)
    date_effective = fields.Date(
        string="Effective date",
        required=True,
        default=fields.Date.context_today,
        tracking=True,
    )
    date_expiry = fields.Date(string="Expiry date", tracking=True)
    date_superseded = fields.Date(
        string="Superseded on",
        readonly=True,
        copy=False,
        help="Effective date of the next decision on this buyer under this policy.",
    )
    state = fields.Selection(
        [
            ("scheduled", "Scheduled"),
            ("active", "In force"),
            ("superseded", "Superseded"),
            ("expired", "Expired"),
        ],
        readonly=True,
        copy=False,
        default="active",
        index=True,
        tracking=True,
    )
    insured_amount = fields.Monetary(
        compute="_compute_insured_amount",
        store=True,
        help="Amount this decision insures: the granted amount, or nothing for a "
        "refusal or a cancellation.",
    )
    insurer_decision_ref = fields.Char(
        string="Decision reference at the insurer",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="Set on decisions pulled from the insurer: the same decision pulled "
        "again is recognised and not recorded twice.",
    )
    request_id = fields.Many2one(
        "credit.insurance.limit.request",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="The limit request this decision answers.",
    )
    history_ids = fields.Many2many(
        "credit.insurance.limit",
        compute="_compute_history_ids",
        string="Decision history",
    )

    _sql_constraints = [
        (
            "one_decision_per_day",
            "unique(partner_id, policy_id, date_effective)",
            "This buyer already has a decision taking effect on that date.",
        ),
        (
            "insurer_decision_uniq",
            "unique(policy_id, insurer_decision_ref)",
            "This insurer decision is already recorded.",
        ),
    ]

    @api.depends("policy_id")
    def _compute_currency_id(self):
        for limit in self:
            if not limit.currency_id:
                limit.currency_id = (
                    limit.policy_id.currency_id or self.env.company.currency_id
                )

    @api.depends("policy_id")
    def _compute_coverage_pct(self):
        for limit in self:
            limit.coverage_pct = limit.policy_id.coverage_pct

    @api.depends("decision", "granted_amount")
    def _compute_insured_amount(self):
        for limit in self:
            limit.insured_amount = (
                limit.granted_amount if limit.decision in GRANTING_DECISIONS else 0.0
            )

    @api.depends("partner_id", "policy_id", "date_effective")
    def _compute_history_ids(self):
        for limit in self:
            limit.history_ids = (
                self.search(
                    [
                        ("partner_id", "=", limit.partner_id.id),
                        ("policy_id", "=", limit.policy_id.id),
                    ]
                )
                if limit.partner_id and limit.policy_id
                else False
            )

    @api.depends("partner_id", "insured_amount", "currency_id", "decision")
    def _compute_display_name(self):
        decisions = dict(self._fields["decision"]._description_selection(self.env))
        for limit in self:
            amount = limit.currency_id.format(limit.insured_amount or 0.0)
            limit.display_name = (
                f"{limit.partner_id.name or ''} - {amount} "
                f"({decisions.get(limit.decision, '')})"
            )

    # ------------------------------------------------------------------ checks

    @api.constrains(
        "requested_amount",
        "granted_amount",
        "coverage_pct",
        "date_effective",
        "date_expiry",
        "decision",
        "partner_id",
    )
    def _check_decision(self):
        for limit in self:
            buyer = limit.partner_id.display_name
            if limit.requested_amount < 0 or limit.granted_amount < 0:
                raise ValidationError(
                    self.env._(
                        "Limit on %(buyer)s: the requested and granted amounts "
                        "cannot be negative.",
                        buyer=buyer,
                    )
                )
            if not 0 <= limit.coverage_pct <= 100:
                raise ValidationError(
                    self.env._(
                        "Limit on %(buyer)s: Coverage %% must be between 0 and 100.",
                        buyer=buyer,
                    )
                )
            if limit.date_expiry and limit.date_expiry < limit.date_effective:
                raise ValidationError(
                    self.env._(
                        "Limit on %(buyer)s: the expiry date (%(expiry)s) is before "
                        "the effective date (%(effective)s).",
                        buyer=buyer,
                        expiry=limit.date_expiry,
                        effective=limit.date_effective,
                    )
                )
            if limit.decision in ("refused", "cancelled") and limit.granted_amount:
                raise ValidationError(
                    self.env._(
                        "Limit on %(buyer)s: a refused or cancelled decision grants "
                        "nothing; set the granted amount to 0.",
                        buyer=buyer,
                    )
                )
            if not limit.partner_id.is_company:
                raise ValidationError(
                    self.env._(
                        "Buyer: insured limits are granted on companies, and "
                        "%(buyer)s is a contact. Choose the company it belongs to.",
                        buyer=buyer,
                    )
                )

    def _check_one_decision_per_day(self, keys):
        """Refuse two decisions of a buyer under a policy taking effect the same day.

        Checked before writing, so that the user gets this message rather than
        the database's unique constraint (which still guards concurrent writes).

        :param keys: ``[(partner id, policy id, effective date, own id or None)]``
        """
        seen = set()
        for partner_id, policy_id, date_effective, own_id in keys:
            key = (partner_id, policy_id, fields.Date.to_date(date_effective))
            clash = key in seen or self.search_count(
                [
                    ("id", "!=", own_id),
                    ("partner_id", "=", partner_id),
                    ("policy_id", "=", policy_id),
                    ("date_effective", "=", key[2]),
                ],
                limit=1,
            )
            seen.add(key)
            if clash:
                raise ValidationError(
                    self.env._(
                        "Effective date: %(buyer)s already has a decision under "
                        "policy %(policy)s taking effect on %(date)s. Two decisions "
                        "cannot take effect on the same day; change the effective "
                        "date or edit the existing decision.",
                        buyer=self.env["res.partner"].browse(partner_id).display_name,
                        policy=self.env["credit.insurance.policy"]
                        .browse(policy_id)
                        .display_name,
                        date=key[2],
                    )
                )

    # ----------------------------------------------------------------- history

    @api.model_create_multi
    def create(self, vals_list):
        today = fields.Date.context_today(self)
        self._check_one_decision_per_day(
            [
                (
                    vals.get("partner_id"),
                    vals.get("policy_id"),
                    vals.get("date_effective") or today,
                    None,
                )
                for vals in vals_list
            ]
        )
        limits = super().create(vals_list)
        limits._refresh_history()
        for limit in limits.filtered("request_id"):
            limit.request_id._mark_decided(limit)
        limits._refresh_delivered_invoices()
        limits.filtered(lambda lim: lim.state == "active")._stop_on_withdrawal()
        return limits

    def write(self, vals):
        if {"partner_id", "policy_id", "date_effective"} & set(vals):
            self._check_one_decision_per_day(
                [
                    (
                        vals.get("partner_id", limit.partner_id.id),
                        vals.get("policy_id", limit.policy_id.id),
                        vals.get("date_effective", limit.date_effective),
                        limit.id,
                    )
                    for limit in self
                ]
            )
        moved = {"partner_id", "policy_id"} & set(vals)
        before = self._history_keys() if moved else set()
        earliest = min(self.mapped("date_effective"), default=None)
        res = super().write(vals)
        if {"partner_id", "policy_id", "date_effective", "date_expiry"} & set(vals):
            self._refresh_history(extra_keys=before)
        if {
            "partner_id",
            "policy_id",
            "date_effective",
            "date_expiry",
            "granted_amount",
            "decision",
            "coverage_pct",
            "currency_id",
        } & set(vals):
            self._refresh_delivered_invoices(extra_keys=before, since=earliest)
        return res

    def unlink(self):
        keys = self._history_keys()
        earliest = min(self.mapped("date_effective"), default=None)
        res = super().unlink()
        self.browse()._refresh_history(extra_keys=keys)
        self.browse()._refresh_delivered_invoices(extra_keys=keys, since=earliest)
        return res

    def _refresh_delivered_invoices(self, extra_keys=(), since=None):
        """A decision recorded (or corrected) with an effective date in the
        past changes the cover of the invoices delivered since that date: fix
        their terms again. Invoices delivered before keep theirs."""
        keys = self._history_keys() | set(extra_keys)
        dates = [day for day in [*self.mapped("date_effective"), since] if day]
        if not keys or not dates:
            return
        today = fields.Date.context_today(self)
        since = min(dates)
        if since > today:
            return  # announced: only deliveries to come
        invoices = (
            self.env["account.move"]
            .sudo()
            .search(
                [
                    ("move_type", "=", "out_invoice"),
                    ("state", "=", "posted"),
                    ("commercial_partner_id", "in", [key[0] for key in keys]),
                    ("invoice_date", ">=", since),
                ]
            )
        )
        invoices._credit_insurance_refresh_terms()

    def _stop_on_withdrawal(self):
        """A limit withdrawn or reduced to nothing stops deliveries to the
        buyer (DOMAIN.md: stops come from a withdrawn limit)."""
        for limit in self:
            if not limit.currency_id.is_zero(limit.insured_amount):
                continue
            previous = limit.history_ids.filtered(
                lambda d, lim=limit: d.date_effective < lim.date_effective
            )[:1]
            if not previous or previous.currency_id.is_zero(previous.insured_amount):
                continue  # nothing withdrawn: a first refusal
            limit.partner_id._credit_insurance_stop_deliveries(
                limit.company_id,
                self.env._(
                    "Insured limit withdrawn by %(insurer)s from %(date)s",
                    insurer=limit.insurer_id.name,
                    date=fields.Date.to_string(limit.date_effective),
                ),
                day=limit.date_effective,
            )

    def _history_keys(self):
        return {(limit.partner_id.id, limit.policy_id.id) for limit in self}

    def _refresh_history(self, extra_keys=()):
        """Chain the decisions of each (buyer, policy) touched by ``self``.

        Sets each decision's superseded date to the next decision's effective
        date and its state as of today.
        """
        keys = self._history_keys() | set(extra_keys)
        if not keys:
            return
        partner_ids = {partner_id for partner_id, __ in keys}
        policy_ids = {policy_id for __, policy_id in keys}
        decisions = (
            self.sudo()
            .with_context(active_test=False)
            .search(
                [
                    ("partner_id", "in", list(partner_ids)),
                    ("policy_id", "in", list(policy_ids)),
                ],
                order="date_effective, id",
            )
        )
        chains = defaultdict(list)
        for decision in decisions:
            key = (decision.partner_id.id, decision.policy_id.id)
            if key in keys:
                chains[key].append(decision)
        today = fields.Date.context_today(self)
        for chain in chains.values():
            following = chain[1:] + [None]
            for decision, successor in zip(chain, following, strict=True):
                superseded = successor.date_effective if successor else False
                state = decision._state_on(today, superseded)
                if (decision.date_superseded, decision.state) != (superseded, state):
                    decision.write({"date_superseded": superseded, "state": state})

    def _state_on(self, date, superseded):
        self.ensure_one()
        if self.date_effective > date:
            return "scheduled"
        if superseded and superseded <= date:
            return "superseded"
        if self.date_expiry and self.date_expiry < date:
            return "expired"
        return "active"

    @api.model
    def _cron_refresh_states(self):
        """Daily: scheduled decisions come into force, others expire."""
        today = fields.Date.context_today(self)
        started = self.browse()
        for decision in self.search([("state", "in", ("scheduled", "active"))]):
            state = decision._state_on(today, decision.date_superseded)
            if state != decision.state:
                if state == "active":
                    started |= decision
                decision.state = state
        started._stop_on_withdrawal()

    # ------------------------------------------------- decisions from insurers

    @api.model
    def _record_insurer_decision(self, insurer, decision, request=None):
        """Record a decision pulled from ``insurer`` (a providers.Decision).

        The same decision is never recorded twice (its reference at the insurer
        is kept); a later decision of the same day replaces the earlier one.
        Reductions and withdrawals the seller did not ask for are announced to
        the buyer's salesperson and the credit managers.

        :param request: the limit request it answers, when known.
        :return: ``(decision record or empty if the buyer is unknown, created)``
        """
        Limit = self.sudo().with_company(insurer.company_id)
        existing = Limit.search(
            [
                ("insurer_id", "=", insurer.id),
                ("insurer_decision_ref", "=", decision.decision_ref),
            ],
            limit=1,
        )
        request = request or self.env["credit.insurance.limit.request"]._answered_by(
            insurer, decision
        )
        if existing:
            if request and request.state not in ("decided", "cancelled"):
                existing.request_id = request
                request._mark_decided(existing)
            return existing, False
        partner = request.partner_id or self._partner_for_insurer_buyer(
            insurer, decision
        )
        policy = request.policy_id or self._policy_for_insurer_decision(
            insurer, decision, partner
        )
        if not partner or not policy:
            return self.browse(), False
        currency = (
            self.env["res.currency"]
            .with_context(active_test=False)
            .search([("name", "=", decision.currency)], limit=1)
        ) or policy.currency_id
        granting = decision.decision not in ("refused", "cancelled")
        expiry = decision.date_expiry
        vals = {
            "partner_id": partner.id,
            "policy_id": policy.id,
            "insurer_buyer_ref": decision.buyer_ref,
            "insurer_decision_ref": decision.decision_ref,
            "decision": decision.decision,
            "requested_amount": decision.requested_amount
            or (request.requested_amount if request else 0.0),
            "granted_amount": decision.granted_amount if granting else 0.0,
            "currency_id": currency.id,
            "conditions": decision.conditions or False,
            "date_effective": decision.date_effective,
            "date_expiry": expiry
            if expiry and expiry >= decision.date_effective
            else False,
            **(
                {"coverage_pct": decision.coverage_pct}
                if decision.coverage_pct is not None
                else {}
            ),
        }
        same_day = Limit.search(
            [
                ("partner_id", "=", partner.id),
                ("policy_id", "=", policy.id),
                ("date_effective", "=", decision.date_effective),
            ],
            limit=1,
        )
        if same_day:
            same_day.write(vals)
            limit = same_day
            if request and request.state not in ("decided", "cancelled"):
                limit.request_id = request
                request._mark_decided(limit)
        else:
            limit = Limit.create(
                {**vals, "request_id": request.id if request else False}
            )
        asked = request and request.request_type in ("reduce", "cancel")
        if decision.decision in ("reduced", "cancelled") and not asked:
            limit._notify_limit_cut()
        return limit.with_env(self.env), True

    @api.model
    def _partner_for_insurer_buyer(self, insurer, decision):
        """The buyer a decision is about: by the insurer's reference already
        known in Odoo, else by SIREN or VAT number."""
        for model in ("credit.insurance.limit", "credit.insurance.limit.request"):
            known = (
                self.env[model]
                .sudo()
                .search(
                    [
                        ("insurer_id", "=", insurer.id),
                        ("insurer_buyer_ref", "=", decision.buyer_ref),
                    ],
                    limit=1,
                )
            )
            if known:
                return known.partner_id
        identity = decision.buyer
        if not identity or not (identity.siren or identity.vat):
            return self.env["res.partner"]
        domain = [("vat", "=", identity.vat)] if identity.vat else []
        if identity.siren:
            siren_domain = [("company_registry", "=like", f"{identity.siren}%")]
            domain = ["|", *siren_domain, *domain] if domain else siren_domain
        return (
            self.env["res.partner"]
            .sudo()
            .search(
                [
                    ("is_company", "=", True),
                    ("company_id", "in", [False, insurer.company_id.id]),
                    *domain,
                ],
                limit=1,
            )
        )

    @api.model
    def _policy_for_insurer_decision(self, insurer, decision, partner):
        policies = insurer.policy_ids.filtered("active")
        by_number = policies.filtered(lambda p: p.name == decision.policy_number)
        if by_number:
            return by_number[:1]
        if partner:
            latest = self.sudo().search(
                [("partner_id", "=", partner.id), ("insurer_id", "=", insurer.id)],
                limit=1,
            )
            if latest:
                return latest.policy_id
        return policies if len(policies) == 1 else policies.browse()

    def _notify_limit_cut(self):
        """Tell the buyer's salesperson and the credit managers that the
        insurer cuts a limit, before it takes effect."""
        for limit in self:
            users = (
                limit.partner_id.user_id | limit.company_id._credit_insurance_managers()
            ).filtered("active")
            previous = limit.history_ids.filtered(
                lambda d, lim=limit: d.date_effective < lim.date_effective
            )[:1]
            summary = (
                self.env._(
                    "Insured limit withdrawn: %(buyer)s", buyer=limit.partner_id.name
                )
                if limit.decision == "cancelled"
                else self.env._(
                    "Insured limit reduced: %(buyer)s", buyer=limit.partner_id.name
                )
            )
            note = self.env._(
                "%(insurer)s decided on %(buyer)s: %(amount)s insured from "
                "%(date)s (before: %(previous)s). Deliveries after that date are "
                "insured up to the new amount only.",
                insurer=limit.insurer_id.name,
                buyer=limit.partner_id.name,
                amount=limit.currency_id.format(limit.insured_amount),
                date=limit.date_effective,
                previous=limit.currency_id.format(previous.insured_amount)
                if previous
                else "-",
            )
            for user in users:
                limit.activity_schedule(
                    "mail.mail_activity_data_todo",
                    date_deadline=fields.Date.context_today(self),
                    summary=summary,
                    note=note,
                    user_id=user.id,
                )

    @api.model
    def _in_force_domain(self, date):
        """Decisions in force on ``date`` (at most one per buyer and policy)."""
        return [
            ("date_effective", "<=", date),
            "|",
            ("date_superseded", "=", False),
            ("date_superseded", ">", date),
            "|",
            ("date_expiry", "=", False),
            ("date_expiry", ">=", date),
        ]
