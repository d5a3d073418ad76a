from odoo import fields, models


class CreditInsurancePremiumRate(models.Model):
    """A premium rate of a policy for the turnover made with buyers of some
    countries (a segment of the policy, e.g. export). Turnover with buyers of
    other countries pays the policy's rate."""

    _name = "credit.insurance.premium.rate"
    _description = "Premium rate by buyer country"
    _order = "policy_id, sequence, id"

    policy_id = fields.Many2one(
        "credit.insurance.policy", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="policy_id.company_id", store=True)
    sequence = fields.Integer(default=10)
    name = fields.Char(string="Segment", required=True)
    country_ids = fields.Many2many(
        "res.country",
        string="Buyer countries",
        required=True,
        help="Turnover with buyers of these countries pays this rate.",
    )
    rate = fields.Float(
        string="Premium rate (%)",
        digits=(16, 4),
        required=True,
        help="Premium as a percentage of the insured turnover of the segment.",
    )

    _sql_constraints = [
        ("rate_positive", "CHECK(rate >= 0)", "A premium rate cannot be negative.")
    ]
