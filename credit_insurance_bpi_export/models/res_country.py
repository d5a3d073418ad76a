from odoo import fields, models

from odoo.addons.credit_insurance.models.access_groups import INTERNAL


class ResCountry(models.Model):
    _inherit = "res.country"

    oecd_risk_category_id = fields.Many2one(
        "credit.insurance.oecd.category",
        string="OECD country risk category",
        help="Classification of the country's risk by the OECD (0 lowest, 7 highest); "
        "high-income OECD and euro area countries are in category 0.",
        groups=INTERNAL,
    )
    oecd_risk_date = fields.Date(
        string="Classified on",
        help="Date of the OECD classification the category was taken from.",
        groups=INTERNAL,
    )
    oecd_risk_source = fields.Char(
        string="Classification source",
        help="Where the category comes from (OECD list and its date, or who set it).",
        groups=INTERNAL,
    )
