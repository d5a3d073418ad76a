from odoo import api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.credit_insurance.models.access_groups import CREDIT_STAFF


class CreditInsurancePolicy(models.Model):
    """Export parameters of a policy of type export.

    The core fields keep their meaning on an export policy: ``coverage_pct`` is
    the coverage of the commercial risk on named buyers,
    ``political_coverage_pct`` that of the political risk, ``max_credit_days``
    the maximum credit period for export.
    """

    _inherit = "credit.insurance.policy"

    political_waiting_days = fields.Integer(
        string="Waiting period, political risk (days)",
        default=180,
        tracking=True,
        help="Days between the political event's effect on a debt and the "
        "indemnity (délai constitutif de sinistre politique).",
        groups=CREDIT_STAFF,
    )
    covered_country_ids = fields.Many2many(
        "res.country",
        "credit_insurance_policy_covered_country_rel",
        string="Covered countries",
        help="Countries of the buyers this export policy covers; empty: every "
        "country other than the company's, except the excluded ones.",
        groups=CREDIT_STAFF,
    )
    excluded_country_ids = fields.Many2many(
        "res.country",
        "credit_insurance_policy_excluded_country_rel",
        string="Excluded countries",
        help="Buyers in these countries are not insured: no cover, new orders blocked.",
        groups=CREDIT_STAFF,
    )
    excluded_oecd_category_ids = fields.Many2many(
        "credit.insurance.oecd.category",
        string="Excluded OECD categories",
        help="Buyers in countries of these OECD risk categories are not insured.",
        groups=CREDIT_STAFF,
    )
    country_cap_ids = fields.One2many(
        "credit.insurance.country.cap",
        "policy_id",
        string="Caps per country",
        groups=CREDIT_STAFF,
    )
    export_soap_url = fields.Char(
        string="SOAP intermediary address",
        tracking=True,
        help="Address of the SOAP service of the intermediary (broker, "
        "credit-management platform) that receives this policy's documents. "
        "Empty: documents are uploaded by hand to the Bpifrance extranet.",
        groups=CREDIT_STAFF,
    )

    @api.constrains("political_waiting_days")
    def _check_export_parameters(self):
        for policy in self:
            if policy.political_waiting_days < 0:
                raise ValidationError(
                    self.env._(
                        "Policy %(policy)s: the political risk waiting period "
                        "cannot be negative.",
                        policy=policy.name,
                    )
                )

    @api.constrains("policy_type", "company_id", "date_start", "date_end", "active")
    def _check_single_export_policy(self):
        """Buyers abroad must fall under one export policy at a time."""
        for policy in self.filtered(lambda p: p.policy_type == "export" and p.active):
            others = self.search(
                [
                    ("id", "!=", policy.id),
                    ("policy_type", "=", "export"),
                    ("company_id", "=", policy.company_id.id),
                ]
            )
            for other in others:
                if policy._overlaps(other):
                    raise ValidationError(
                        self.env._(
                            "Policies %(policy)s and %(other)s are both export "
                            "policies of %(company)s over the same dates: end one "
                            "before the other starts.",
                            policy=policy.display_name,
                            other=other.display_name,
                            company=policy.company_id.name,
                        )
                    )

    def _export_exclusion(self, country):
        """Why this export policy does not insure buyers of ``country``, or ''.

        Returns a code: ``excluded_country``, ``not_covered`` or
        ``excluded_category``.
        """
        self.ensure_one()
        if country in self.excluded_country_ids:
            return "excluded_country"
        if self.covered_country_ids and country not in self.covered_country_ids:
            return "not_covered"
        if (
            country.oecd_risk_category_id
            and country.oecd_risk_category_id in self.excluded_oecd_category_ids
        ):
            return "excluded_category"
        return ""
