from odoo import fields, models


class CreditInsuranceOecdCategory(models.Model):
    """One of the eight OECD country risk categories (0 = lowest risk, 7 = highest).

    A model rather than a selection so that a policy can exclude several of them.
    """

    _name = "credit.insurance.oecd.category"
    _description = "OECD country risk category"
    _order = "code"

    code = fields.Integer(required=True)
    name = fields.Char(required=True, translate=True)
    country_ids = fields.One2many("res.country", "oecd_risk_category_id")

    _sql_constraints = [
        ("code_uniq", "unique(code)", "This OECD category already exists."),
        (
            "code_range",
            "CHECK(code BETWEEN 0 AND 7)",
            "OECD country risk categories go from 0 to 7.",
        ),
    ]
