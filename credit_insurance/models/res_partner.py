import operator

from markupsafe import escape

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from .access_groups import (
    CREDIT_MANAGER,
    CREDIT_STAFF,
    DELIVERY_STOP,
    SALES,
    check_search_access,
)
from .credit_insurance_cover import NO_COVER_REASONS

SEARCH_OPERATORS = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
# Written by credit managers only (and by the system, e.g. a declaration).
MANAGED_FIELDS = (
    "credit_insurance_stop",
    "credit_insurance_stop_reason",
    "credit_insurance_stop_date",
)
# What the discretionary cover depends on: set by credit managers only.
PROFILE_FIELDS = (
    "credit_insurance_public_buyer",
    "credit_insurance_affiliate",
    "credit_insurance_credit_report_date",
    "credit_insurance_insolvency_date",
)


class ResPartner(models.Model):
    _inherit = "res.partner"

    # Figures for the current company, always those of the commercial partner.
    credit_insurance_policy_id = fields.Many2one(
        "credit.insurance.policy",
        string="Credit insurance policy",
        compute="_compute_credit_insurance",
        search="_search_credit_insurance_policy_id",
        groups=CREDIT_STAFF,
    )
    credit_insurance_cover_type = fields.Selection(
        [
            ("named", "Named limit"),
            ("discretionary", "Discretionary cover"),
            ("none", "No cover"),
        ],
        string="Cover",
        compute="_compute_credit_insurance",
        groups=CREDIT_STAFF,
    )
    credit_insurance_currency_id = fields.Many2one(
        "res.currency", compute="_compute_credit_insurance", groups=SALES
    )
    credit_insurance_limit = fields.Monetary(
        string="Insured limit",
        currency_field="credit_insurance_currency_id",
        compute="_compute_credit_insurance",
        search="_search_credit_insurance_limit",
        help="Insured limit in force today, in the company currency: the named "
        "limit, or the policy's discretionary limit for an unnamed buyer.",
        groups=CREDIT_STAFF,
    )
    credit_insurance_exposure = fields.Monetary(
        string="Exposure",
        currency_field="credit_insurance_currency_id",
        compute="_compute_credit_insurance",
        help="Open receivables plus confirmed orders not yet invoiced, VAT "
        "included or not as the policy says.",
        groups=CREDIT_STAFF,
    )
    credit_insurance_available = fields.Monetary(
        string="Available cover",
        currency_field="credit_insurance_currency_id",
        compute="_compute_credit_insurance",
        help="Insured limit minus exposure; negative when over the limit.",
        groups=SALES,
    )
    credit_insurance_uninsured = fields.Monetary(
        string="Uninsured exposure",
        currency_field="credit_insurance_currency_id",
        compute="_compute_credit_insurance",
        search="_search_credit_insurance_uninsured",
        help="Exposure above the insured limit.",
        groups=CREDIT_STAFF,
    )
    credit_insurance_coverage_pct = fields.Float(
        string="Coverage %", compute="_compute_credit_insurance", groups=CREDIT_STAFF
    )
    credit_insurance_stop = fields.Boolean(
        string="Stop of deliveries",
        company_dependent=True,
        tracking=True,
        help="Set when the insurer orders, or a credit manager decides, to stop "
        "deliveries to this buyer: new orders are refused.",
        groups=DELIVERY_STOP,
    )
    credit_insurance_stop_reason = fields.Char(
        string="Stop reason",
        company_dependent=True,
        tracking=True,
        groups=DELIVERY_STOP,
    )
    credit_insurance_stop_date = fields.Date(
        string="Stopped since",
        company_dependent=True,
        groups=DELIVERY_STOP,
        help="Invoices dated from this day are not insured while the stop lasts.",
    )
    credit_insurance_no_cover_reason = fields.Selection(
        NO_COVER_REASONS,
        string="Why no discretionary cover",
        compute="_compute_credit_insurance",
        groups=SALES,
    )
    credit_insurance_public_buyer = fields.Boolean(
        string="Public buyer",
        groups=CREDIT_STAFF,
        help="Administration or public body: some policies give them no "
        "discretionary cover.",
    )
    credit_insurance_affiliate = fields.Boolean(
        string="Affiliate of the seller",
        groups=CREDIT_STAFF,
        help="A company of the seller's group (the companies in Odoo count "
        "anyway): some policies give them no discretionary cover.",
    )
    credit_insurance_credit_report_date = fields.Date(
        string="Credit report of",
        groups=CREDIT_STAFF,
        help="Date of the latest credit report on the buyer: recent enough, it "
        "stands for the payment experience the policy asks for discretionary "
        "cover.",
    )
    credit_insurance_insolvency_date = fields.Date(
        string="Insolvency proceedings opened on",
        groups=CREDIT_STAFF,
        tracking=True,
        help="Setting it stops deliveries to the buyer.",
    )
    credit_insurance_limit_ids = fields.One2many(
        "credit.insurance.limit",
        "partner_id",
        string="Insured limit decisions",
        groups=CREDIT_STAFF,
    )
    # Overdue declarations (models/credit_insurance_declaration.py), current company.
    credit_insurance_declaration_count = fields.Integer(
        string="Open declarations",
        compute="_compute_credit_insurance_declarations",
        groups=CREDIT_STAFF,
    )
    credit_insurance_cover_lost_count = fields.Integer(
        string="Invoices with cover lost",
        compute="_compute_credit_insurance_declarations",
        help="Open invoices of this buyer not declared to the insurer by their "
        "deadline: they are no longer insured.",
        groups=CREDIT_STAFF,
    )
    # Claims (models/credit_insurance_claim.py), current company.
    credit_insurance_claim_count = fields.Integer(
        string="Claims",
        compute="_compute_credit_insurance_claim_count",
        groups=CREDIT_STAFF,
    )

    @api.depends_context("company")
    @api.depends("commercial_partner_id")
    def _compute_credit_insurance(self):
        covers = self.env["credit.insurance.cover"]._get_buyer_covers(self)
        currency = self.env.company.currency_id
        for partner in self:
            cover = covers.get(partner._origin.commercial_partner_id.id)
            partner.credit_insurance_currency_id = currency
            if not cover:
                partner.update(
                    {
                        "credit_insurance_policy_id": False,
                        "credit_insurance_cover_type": "none",
                        "credit_insurance_limit": 0.0,
                        "credit_insurance_exposure": 0.0,
                        "credit_insurance_available": 0.0,
                        "credit_insurance_uninsured": 0.0,
                        "credit_insurance_coverage_pct": 0.0,
                        "credit_insurance_no_cover_reason": False,
                    }
                )
                continue
            partner.update(
                {
                    "credit_insurance_policy_id": cover.policy,
                    "credit_insurance_cover_type": (
                        "named"
                        if cover.decision
                        else (
                            "discretionary"
                            if cover.policy and not cover.no_cover_reason
                            else "none"
                        )
                    ),
                    "credit_insurance_no_cover_reason": cover.no_cover_reason or False,
                    "credit_insurance_limit": cover.limit,
                    "credit_insurance_exposure": cover.exposure,
                    "credit_insurance_available": cover.available,
                    "credit_insurance_uninsured": cover.uninsured,
                    "credit_insurance_coverage_pct": cover.coverage_pct,
                }
            )

    @api.depends_context("company")
    def _compute_credit_insurance_declarations(self):
        company = self.env.company
        buyers = self._origin.commercial_partner_id
        # Counts only, for the credit staff (who may not read every declaration).
        declarations = dict(
            self.env["credit.insurance.declaration"]
            .sudo()
            ._read_group(
                [
                    ("partner_id", "in", buyers.ids),
                    ("company_id", "=", company.id),
                    ("is_open", "=", True),
                ],
                ["partner_id"],
                ["__count"],
            )
        )
        lost = dict(
            self.env["account.move"]
            .sudo()
            ._read_group(
                [
                    ("commercial_partner_id", "in", buyers.ids),
                    ("company_id", "=", company.id),
                    ("credit_insurance_cover_lost", "=", True),
                    ("amount_residual", ">", 0),
                ],
                ["commercial_partner_id"],
                ["__count"],
            )
        )
        for partner in self:
            buyer = partner._origin.commercial_partner_id
            partner.credit_insurance_declaration_count = declarations.get(buyer, 0)
            partner.credit_insurance_cover_lost_count = lost.get(buyer, 0)

    # ------------------------------------------------------------- searches

    @api.model
    def _search(self, domain, *args, **kwargs):
        check_search_access(self, domain)
        return super()._search(domain, *args, **kwargs)

    @api.model
    def _credit_insurance_buyers(self):
        """The current company's buyers: customers and named buyers (companies,
        or people on their own)."""
        return self.search(
            [
                "|",
                ("is_company", "=", True),
                ("parent_id", "=", False),
                "|",
                ("customer_rank", ">", 0),
                ("credit_insurance_limit_ids", "!=", False),
            ]
        )

    def _credit_insurance_buyers_where(self, keep):
        """Domain on buyers (customers or named buyers) whose cover passes ``keep``."""
        buyers = self._credit_insurance_buyers()
        covers = self.env["credit.insurance.cover"]._get_buyer_covers(buyers)
        return [("id", "in", [i for i, cover in covers.items() if keep(cover)])]

    def _search_amount(self, operator_name, value, amount):
        if operator_name not in SEARCH_OPERATORS:
            raise UserError(
                self.env._("Operation %(op)s is not supported here.", op=operator_name)
            )
        compare = SEARCH_OPERATORS[operator_name]
        return self._credit_insurance_buyers_where(
            lambda cover: compare(amount(cover), value or 0.0)
        )

    def _search_credit_insurance_limit(self, operator_name, value):
        return self._search_amount(operator_name, value, lambda cover: cover.limit)

    def _search_credit_insurance_uninsured(self, operator_name, value):
        return self._search_amount(operator_name, value, lambda cover: cover.uninsured)

    def _search_credit_insurance_policy_id(self, operator_name, value):
        if operator_name in ("=", "!=") and not value:
            has_policy = operator_name == "!="
            return self._credit_insurance_buyers_where(
                lambda cover: bool(cover.policy) == has_policy
            )
        if operator_name in ("=", "in"):
            policy_ids = set(value if isinstance(value, list | tuple) else [value])
            return self._credit_insurance_buyers_where(
                lambda cover: cover.policy.id in policy_ids
            )
        raise UserError(
            self.env._("Operation %(op)s is not supported here.", op=operator_name)
        )

    # --------------------------------------------------------------- writes

    @api.model_create_multi
    def create(self, vals_list):
        if any(
            vals.get(name)
            for vals in vals_list
            for name in (*MANAGED_FIELDS, *PROFILE_FIELDS)
        ):
            self._check_credit_insurance_manager()
        partners = super().create(vals_list)
        partners.filtered("credit_insurance_insolvency_date")._stop_on_insolvency()
        return partners

    def write(self, vals):
        changed = {
            name
            for name in (*MANAGED_FIELDS, *PROFILE_FIELDS)
            if name in vals
            and any(
                (partner[name] or False) != (vals[name] or False) for partner in self
            )
        }
        if changed:
            self._check_credit_insurance_manager()
        stopping = lifting = self.browse()
        if "credit_insurance_stop" in changed:
            stopping = self.filtered(
                lambda p: not p.credit_insurance_stop and vals["credit_insurance_stop"]
            )
            lifting = self.filtered(
                lambda p: p.credit_insurance_stop and not vals["credit_insurance_stop"]
            )
            if stopping and "credit_insurance_stop_date" not in vals:
                vals = {
                    **vals,
                    "credit_insurance_stop_date": fields.Date.context_today(self),
                }
        result = super().write(vals)
        if "credit_insurance_insolvency_date" in changed and vals.get(
            "credit_insurance_insolvency_date"
        ):
            self._stop_on_insolvency()
        lifting._log_stop_lifted()
        return result

    def _check_credit_insurance_manager(self):
        """The stop of deliveries, and what the discretionary cover depends
        on, are a credit manager's decision."""
        if not self.env.su and not self.env.user.has_group(CREDIT_MANAGER):
            raise AccessError(
                self.env._(
                    "Only credit insurance managers can set or lift a stop of "
                    "deliveries, or change what the discretionary cover of a "
                    "buyer depends on."
                )
            )

    # ------------------------------------------------- stop of deliveries

    def _credit_insurance_stop_deliveries(self, company, reason, day=None):
        """Stop deliveries to these buyers in ``company`` (the system's own
        stops: declaration filed, limit withdrawn, insolvency, long overdue).

        Buyers already stopped keep their stop and its reason. Lifting a stop
        is a credit manager's act (see :meth:`write`).
        :return: the buyers stopped now.
        """
        stopped = self.browse()
        for buyer in self.with_company(company).sudo():
            # Only these (a partner's other fields are costly to read).
            buyer.fetch(MANAGED_FIELDS)
            if buyer.credit_insurance_stop:
                continue
            # Logged below with the reason: no tracking message besides.
            buyer.with_context(tracking_disable=True).write(
                {
                    "credit_insurance_stop": True,
                    "credit_insurance_stop_reason": reason,
                    "credit_insurance_stop_date": day
                    or fields.Date.context_today(self),
                }
            )
            buyer._message_log(
                body=escape(
                    self.env._(
                        "Stop of deliveries (%(company)s): %(reason)s. New orders "
                        "are refused and new invoices are not insured until a "
                        "credit manager lifts it.",
                        company=company.name,
                        reason=reason,
                    )
                )
            )
            stopped |= buyer
        return stopped.with_env(self.env)

    def _stop_on_insolvency(self):
        """Insolvency proceedings stop deliveries (in the user's companies)."""
        for partner in self:
            for company in self.env.companies:
                partner._credit_insurance_stop_deliveries(
                    company,
                    self.env._(
                        "Insolvency proceedings opened on %(date)s",
                        date=fields.Date.to_string(
                            partner.credit_insurance_insolvency_date
                        ),
                    ),
                )

    def _log_stop_lifted(self):
        """Who lifted a stop, and when, stays in the buyer's chatter."""
        for partner in self:
            partner._message_log(
                body=escape(
                    self.env._(
                        "Stop of deliveries lifted (%(company)s) by %(user)s.",
                        company=self.env.company.name,
                        user=self.env.user.name,
                    )
                )
            )

    def action_request_credit_insurance_limit(self):
        """Open a new limit request on the buyer (the commercial partner)."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Request a limit"),
            "res_model": "credit.insurance.limit.request",
            "view_mode": "form",
            "target": "new",
            "context": {"default_partner_id": self.commercial_partner_id.id},
        }

    def action_view_credit_insurance_limits(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "credit_insurance.credit_insurance_limit_action"
        )
        action["domain"] = [("partner_id", "=", self.commercial_partner_id.id)]
        action["context"] = {"default_partner_id": self.commercial_partner_id.id}
        return action

    @api.depends_context("company")
    def _compute_credit_insurance_claim_count(self):
        buyers = self._origin.commercial_partner_id
        counts = dict(
            self.env["credit.insurance.claim"]
            .sudo()
            ._read_group(
                [
                    ("partner_id", "in", buyers.ids),
                    ("company_id", "=", self.env.company.id),
                ],
                ["partner_id"],
                ["__count"],
            )
        )
        for partner in self:
            partner.credit_insurance_claim_count = counts.get(
                partner._origin.commercial_partner_id, 0
            )

    def action_view_credit_insurance_claims(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "credit_insurance.credit_insurance_claim_action"
        )
        action["domain"] = [("partner_id", "=", self.commercial_partner_id.id)]
        action["context"] = {"default_partner_id": self.commercial_partner_id.id}
        return action

    def action_view_credit_insurance_declarations(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "credit_insurance.credit_insurance_declaration_action"
        )
        action["domain"] = [("partner_id", "=", self.commercial_partner_id.id)]
        action["context"] = {"search_default_open": 1}
        return action
