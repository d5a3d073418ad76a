from collections import defaultdict
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

TOP = 5
DEADLINE_HORIZON_DAYS = 30
TURNOVER_ACTION = "credit_insurance.credit_insurance_turnover_declaration_action"


class CreditInsuranceDashboard(models.AbstractModel):
    """Figures of the credit insurance dashboard, for the current company.

    Everything is read with the user's own rights; each figure names a
    *section* that :meth:`open_section` turns into the list behind it.
    """

    _name = "credit.insurance.dashboard"
    _description = "Credit insurance dashboard"

    @api.model
    def _check_access(self):
        if not self.env.user.has_group("credit_insurance.group_credit_insurance_user"):
            raise AccessError(
                self.env._(
                    "The credit insurance dashboard is for credit insurance users."
                )
            )

    @api.model
    def get_dashboard_data(self):
        self._check_access()
        company = self.env.company
        currency = company.currency_id
        buyers = self.env["res.partner"]._credit_insurance_buyers()
        covers = self.env["credit.insurance.cover"]._get_buyer_covers(buyers)
        insured = [c for c in covers.values() if c.policy]
        names = dict(buyers.mapped(lambda b: (b.id, b.display_name)))
        countries = dict(buyers.mapped(lambda b: (b.id, b.country_id.name or "")))
        by_country = defaultdict(lambda: [0.0, 0.0])
        for cover in insured:
            by_country[countries[cover.buyer_id]][0] += cover.limit
            by_country[countries[cover.buyer_id]][1] += cover.exposure
        top_uninsured = sorted(
            (c for c in insured if c.uninsured > 0), key=lambda c: -c.uninsured
        )[:TOP]
        today = fields.Date.context_today(self)
        deadlines = self.env["account.move"].search(
            self._deadline_domain(today), order="credit_insurance_declaration_deadline"
        )
        Request = self.env["credit.insurance.limit.request"]
        Turnover = self.env["credit.insurance.turnover.declaration"]
        Declaration = self.env["credit.insurance.declaration"]
        Claim = self.env["credit.insurance.claim"]
        open_claims = Claim.search(self._section_domain("claims"))
        year_start = today.replace(month=1, day=1)
        return {
            "company": company.name,
            "currency_id": currency.id,
            "totals": {
                "buyers": len(insured),
                "limits": sum(c.limit for c in insured),
                "exposure": sum(c.exposure for c in insured),
                "uninsured": sum(c.uninsured for c in insured),
                "over_limit": sum(1 for c in insured if c.uninsured > 0),
                "stopped": self.env["res.partner"].search_count(
                    [("id", "in", buyers.ids), ("credit_insurance_stop", "=", True)]
                ),
            },
            "by_country": [
                {"country": country, "limit": limit, "exposure": exposure}
                for country, (limit, exposure) in sorted(
                    by_country.items(), key=lambda item: -item[1][1]
                )
            ][:8],
            "top_uninsured": [
                {
                    "id": cover.buyer_id,
                    "name": names[cover.buyer_id],
                    "limit": cover.limit,
                    "exposure": cover.exposure,
                    "uninsured": cover.uninsured,
                }
                for cover in top_uninsured
            ],
            "deadlines": {
                "count": len(deadlines),
                "late": len(
                    deadlines.filtered(
                        lambda m: m.credit_insurance_declaration_deadline < today
                    )
                ),
                "next": [
                    {
                        "id": move.id,
                        "name": move.name,
                        "buyer": move.commercial_partner_id.display_name,
                        "deadline": fields.Date.to_string(
                            move.credit_insurance_declaration_deadline
                        ),
                        "amount": move.amount_residual_signed,
                    }
                    for move in deadlines[:TOP]
                ],
            },
            "requests": {
                "waiting": Request.search_count(self._section_domain("requests")),
                "errors": Request.search_count(self._section_domain("request_errors")),
                "drafts": Request.search_count(self._section_domain("request_drafts")),
            },
            "declarations": {
                "to_file": Declaration.search_count(
                    self._section_domain("declarations_to_file")
                ),
                "filed": Declaration.search_count(
                    self._section_domain("declarations_filed")
                ),
            },
            "claims": {
                "open": len(open_claims),
                "by_state": [
                    {"state": state, "label": label, "count": count}
                    for state, label in Claim._fields["state"]._description_selection(
                        self.env
                    )
                    if (
                        count := len(
                            open_claims.filtered(lambda c, s=state: c.state == s)
                        )
                    )
                ],
                "expected": sum(
                    open_claims.filtered(
                        lambda c: c.state in ("approved", "partial")
                    ).mapped("indemnity_amount")
                ),
                "received_this_year": sum(
                    Claim.search(
                        self._section_domain("claims_paid")
                        + [("date_indemnity", ">=", year_start)]
                    ).mapped("indemnity_received")
                ),
            },
            "turnover": {
                "to_declare": Turnover.search_count(self._section_domain("turnover")),
                "late": Turnover.search_count(self._section_domain("turnover_late")),
            },
        }

    @api.model
    def _deadline_domain(self, today):
        """Insured invoices with an instalment overdue and unpaid, whose
        declaration deadline (the next instalment's) is near."""
        return [
            ("company_id", "=", self.env.company.id),
            ("move_type", "=", "out_invoice"),
            ("state", "=", "posted"),
            ("payment_state", "in", ("not_paid", "partial")),
            ("credit_insurance_policy_id", "!=", False),
            (
                "line_ids",
                "any",
                [
                    ("account_id.account_type", "=", "asset_receivable"),
                    ("reconciled", "=", False),
                    ("date_maturity", "<", today),
                ],
            ),
            (
                "credit_insurance_declaration_deadline",
                "<=",
                today + timedelta(days=DEADLINE_HORIZON_DAYS),
            ),
        ]

    @api.model
    def _section_domain(self, section):
        today = fields.Date.context_today(self)
        company = [("company_id", "=", self.env.company.id)]
        domains = {
            "requests": [("state", "in", ("sent", "pending", "referred"))],
            "request_errors": [("state", "=", "error")],
            "request_drafts": [("state", "=", "draft")],
            "turnover": [("state", "=", "draft")],
            "turnover_late": [("state", "=", "draft"), ("date_due", "<", today)],
            "deadlines": self._deadline_domain(today),
            "declarations_to_file": [("state", "in", ("draft", "to_file", "error"))],
            "declarations_filed": [
                ("state", "in", ("filed", "acknowledged", "in_collection"))
            ],
            "claims": [("state", "not in", ("rejected", "paid", "closed"))],
            "claims_paid": [("state", "in", ("paid", "closed"))],
        }
        return company + domains[section]

    # Dashboard section -> the action listing its records.
    SECTIONS = {
        "buyers": "credit_insurance.res_partner_action_credit_insurance",
        "over_limit": "credit_insurance.res_partner_action_credit_insurance",
        "stopped": "credit_insurance.res_partner_action_credit_insurance",
        "requests": "credit_insurance.credit_insurance_limit_request_action",
        "request_errors": "credit_insurance.credit_insurance_limit_request_action",
        "request_drafts": "credit_insurance.credit_insurance_limit_request_action",
        "turnover": TURNOVER_ACTION,
        "turnover_late": TURNOVER_ACTION,
        "deadlines": "account.action_move_out_invoice_type",
        "declarations_to_file": "credit_insurance.credit_insurance_declaration_action",
        "declarations_filed": "credit_insurance.credit_insurance_declaration_action",
        "claims": "credit_insurance.credit_insurance_claim_action",
        "claims_paid": "credit_insurance.credit_insurance_claim_action",
    }

    @api.model
    def open_section(self, section, record_id=None):
        """The window action listing the records behind a dashboard figure."""
        self._check_access()
        if section not in self.SECTIONS:
            raise UserError(
                self.env._("Unknown dashboard section: %(name)s", name=section)
            )
        action = self.env["ir.actions.act_window"]._for_xml_id(self.SECTIONS[section])
        if record_id:
            action.update(
                {
                    "res_id": int(record_id),
                    "views": [(False, "form")],
                    "view_mode": "form",
                }
            )
            return action
        filters = {
            "buyers": [("credit_insurance_policy_id", "!=", False)],
            "over_limit": [("credit_insurance_uninsured", ">", 0)],
            "stopped": [("credit_insurance_stop", "=", True)],
        }
        domain = filters.get(section) or self._section_domain(section)
        action["domain"] = domain
        action["context"] = {}
        return action
