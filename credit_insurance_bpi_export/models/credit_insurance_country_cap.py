from odoo import api, fields, models
from odoo.exceptions import ValidationError


class CreditInsuranceCountryCap(models.Model):
    """Most the export policy insures on all buyers of one country together."""

    _name = "credit.insurance.country.cap"
    _description = "Exposure cap per country"
    _order = "country_id"
    _check_company_auto = True

    policy_id = fields.Many2one(
        "credit.insurance.policy",
        required=True,
        index=True,
        ondelete="cascade",
        check_company=True,
    )
    company_id = fields.Many2one(related="policy_id.company_id", store=True)
    currency_id = fields.Many2one(related="policy_id.currency_id")
    country_id = fields.Many2one("res.country", required=True, ondelete="restrict")
    cap_amount = fields.Monetary(
        string="Cap",
        required=True,
        help="Most the policy insures on all the buyers of this country together.",
    )
    exposure = fields.Monetary(
        string="Exposure in the country",
        compute="_compute_exposure",
        currency_field="company_currency_id",
        help="Exposure on all the buyers of the country today, in the company "
        "currency.",
    )
    company_currency_id = fields.Many2one(
        related="company_id.currency_id", string="Company currency"
    )

    _sql_constraints = [
        (
            "policy_country_uniq",
            "unique(policy_id, country_id)",
            "This policy already has a cap for this country.",
        ),
    ]

    @api.constrains("cap_amount")
    def _check_cap_amount(self):
        for cap in self:
            if cap.cap_amount < 0:
                raise ValidationError(
                    self.env._(
                        "The cap for %(country)s cannot be negative.",
                        country=cap.country_id.name,
                    )
                )

    @api.depends_context("company")
    def _compute_exposure(self):
        Cover = self.env["credit.insurance.cover"]
        for (company, policy), caps in self.grouped(
            lambda cap: (cap.company_id, cap.policy_id)
        ).items():
            figures = Cover.with_company(company)._country_caps(
                policy, caps.country_id, company, fields.Date.context_today(self)
            )
            for cap in caps:
                _cap, receivables, uninvoiced = figures.get(
                    cap.country_id.id, (0.0, 0.0, 0.0)
                )
                cap.exposure = receivables + uninvoiced
