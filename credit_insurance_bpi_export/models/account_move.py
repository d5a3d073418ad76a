from collections import defaultdict

from odoo import api, fields, models

from odoo.addons.credit_insurance.models.access_groups import CREDIT_STAFF

from .credit_insurance_cover import ExportBuyerCover


class AccountMove(models.Model):
    _inherit = "account.move"

    credit_insurance_cover_state = fields.Selection(
        selection_add=[
            ("political", "Not insured (political event)"),
            ("country", "Not insured (country excluded)"),
        ],
        ondelete={"political": "set null", "country": "set null"},
    )
    # Set with the cover at posting, by the same computation.
    credit_insurance_export_exclusion = fields.Selection(
        [
            ("political", "Political event in the country"),
            ("country", "Country excluded by the export policy"),
        ],
        string="Export exclusion",
        compute="_compute_credit_insurance_cover",
        store=True,
        copy=False,
        groups=CREDIT_STAFF,
    )

    @api.depends("state")
    def _compute_credit_insurance_cover(self):
        """Under an export policy, the country cap and political events on
        the invoice (delivery) date also bound the insurable part of invoices
        posted to buyers abroad."""
        res = super()._compute_credit_insurance_cover()
        self.credit_insurance_export_exclusion = False
        export = self.filtered(
            lambda m: m.credit_insurance_policy_id.policy_type == "export"
        )
        for company, moves in export.grouped("company_id").items():
            covers_on = {
                day: self.env["credit.insurance.cover"]
                .with_company(company)
                ._get_buyer_covers(
                    day_moves.commercial_partner_id, date=day, exclude_moves=moves
                )
                for day, day_moves in moves.grouped(
                    lambda m: m.invoice_date or m.date
                ).items()
            }
            consumed = defaultdict(float)  # by country, in date order
            for move in moves.sorted(lambda m: (m.invoice_date, m.id)):
                cover = covers_on[move.invoice_date or move.date].get(
                    move.commercial_partner_id.id
                )
                if not isinstance(cover, ExportBuyerCover):
                    continue
                if cover.political_event or cover.exclusion:
                    move.credit_insurance_export_exclusion = (
                        "political" if cover.political_event else "country"
                    )
                    move.credit_insurance_insurable_amount = 0.0
                    continue
                if cover.country_cap is None:
                    continue
                base = move._credit_insurance_base(cover.policy)
                room = (
                    cover.country_cap
                    - cover.country_receivables
                    - consumed[cover.country_id]
                )
                consumed[cover.country_id] += base
                move.credit_insurance_insurable_amount = min(
                    move.credit_insurance_insurable_amount, max(room, 0.0)
                )
        return res

    @api.depends("credit_insurance_export_exclusion")
    def _compute_credit_insurance_cover_state(self):
        return super()._compute_credit_insurance_cover_state()

    def _credit_insurance_cover_state(self):
        state = super()._credit_insurance_cover_state()
        exclusion = self.credit_insurance_export_exclusion
        if exclusion and state in ("over_limit", "no_limit", "full"):
            return exclusion
        return state
