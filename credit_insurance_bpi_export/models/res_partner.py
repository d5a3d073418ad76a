from odoo import api, fields, models

from odoo.addons.credit_insurance.models.access_groups import CREDIT_STAFF, SALES

from .credit_insurance_cover import ExportBuyerCover

BLOCK_REASONS = [
    ("political_event", "Political event in the country"),
    ("excluded_country", "Country excluded by the export policy"),
    ("not_covered", "Country not covered by the export policy"),
    ("excluded_category", "OECD category excluded by the export policy"),
    ("country_cap", "Country cap reached"),
]


class ResPartner(models.Model):
    _inherit = "res.partner"

    credit_insurance_oecd_category_id = fields.Many2one(
        related="country_id.oecd_risk_category_id", groups=CREDIT_STAFF
    )
    credit_insurance_export_block = fields.Selection(
        BLOCK_REASONS,
        string="Export cover stopped",
        compute="_compute_credit_insurance_export",
        help="Why the export policy refuses any new cover on this buyer.",
        groups=SALES,
    )
    credit_insurance_political_event_id = fields.Many2one(
        "credit.insurance.political.event",
        string="Political event",
        compute="_compute_credit_insurance_export",
        groups=SALES,
    )
    credit_insurance_country_available = fields.Monetary(
        string="Available under the country cap",
        currency_field="credit_insurance_currency_id",
        compute="_compute_credit_insurance_export",
        help="Country cap minus the exposure on all the buyers of the country.",
        groups=SALES,
    )
    credit_insurance_has_country_cap = fields.Boolean(
        string="Country cap set",
        compute="_compute_credit_insurance_export",
        groups=SALES,
    )

    @api.depends_context("company")
    @api.depends("commercial_partner_id", "country_id")
    def _compute_credit_insurance_export(self):
        covers = self.env["credit.insurance.cover"]._get_buyer_covers(self)
        for partner in self:
            cover = covers.get(partner._origin.commercial_partner_id.id)
            export = cover if isinstance(cover, ExportBuyerCover) else None
            partner.credit_insurance_export_block = (
                export and export.block_reason
            ) or False
            partner.credit_insurance_political_event_id = (
                export and export.political_event
            ) or False
            partner.credit_insurance_has_country_cap = bool(
                export and export.country_cap is not None
            )
            partner.credit_insurance_country_available = (
                export.country_available
                if export and export.country_cap is not None
                else 0.0
            )
