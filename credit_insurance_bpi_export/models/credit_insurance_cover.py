"""Export rules on top of the core cover computation.

A buyer in another country than the company's falls under the company's export
policy when one is in force. On top of the buyer's own limit, the export policy
may exclude the buyer's country (by name, by not listing it, or by its OECD
risk category), cap the exposure on all the buyers of the country together,
and a political event in the country stops any new cover. Everything stays
set-based: a fixed number of queries for any batch of buyers.
"""

import dataclasses
from dataclasses import dataclass

from odoo import api, fields, models
from odoo.tools import SQL

from odoo.addons.credit_insurance.models.credit_insurance_cover import BuyerCover


@dataclass(frozen=True)
class ExportBuyerCover(BuyerCover):
    """A buyer's cover under an export policy (amounts in company currency).

    ``available`` is the smallest of what the buyer's limit and the country cap
    leave, and never positive while a political event lasts in the country.
    """

    country_id: int = 0
    exclusion: str = ""  # excluded_country | not_covered | excluded_category
    political_event: models.BaseModel = None  # event in force in the country
    political_coverage_pct: float = 0.0
    country_cap: float | None = None  # None: no cap on the country
    country_receivables: float = 0.0
    country_uninvoiced: float = 0.0

    @property
    def country_exposure(self):
        return self.country_receivables + self.country_uninvoiced

    @property
    def country_available(self):
        if self.country_cap is None:
            return None
        return self.country_cap - self.country_exposure

    @property
    def available(self):
        available = self.limit - self.exposure
        if self.country_cap is not None:
            available = min(available, self.country_available)
        if self.political_event:
            available = min(available, 0.0)
        return available

    @property
    def block_reason(self):
        """Why new orders to this buyer are refused whatever their amount, or ''."""
        if self.political_event:
            return "political_event"
        if self.exclusion:
            return self.exclusion
        if self.country_cap is not None and self.country_available <= 0:
            return "country_cap"
        return ""


class CreditInsuranceCover(models.AbstractModel):
    _inherit = "credit.insurance.cover"

    @api.model
    def _get_buyer_covers(
        self, partners, date=None, exclude_moves=None, exclude_orders=None
    ):
        covers = super()._get_buyer_covers(
            partners,
            date=date,
            exclude_moves=exclude_moves,
            exclude_orders=exclude_orders,
        )
        export = {
            buyer_id: cover
            for buyer_id, cover in covers.items()
            if cover.policy.policy_type == "export"
        }
        if not export:
            return covers
        company = self.env.company
        date = fields.Date.to_date(date) or fields.Date.context_today(self)
        buyers = self.env["res.partner"].browse(export)
        country_of = {buyer.id: buyer.country_id for buyer in buyers}
        countries = buyers.country_id
        events = self.env["credit.insurance.political.event"]._events_in_force(
            countries, date
        )
        for policy, policy_covers in self._group_by_policy(export).items():
            caps = self._country_caps(
                policy, countries, company, date, exclude_moves, exclude_orders
            )
            for cover in policy_covers:
                country = country_of[cover.buyer_id]
                exclusion = policy._export_exclusion(country)
                cap, receivables, uninvoiced = caps.get(country.id, (None, 0.0, 0.0))
                values = {
                    field.name: getattr(cover, field.name)
                    for field in dataclasses.fields(BuyerCover)
                }
                if exclusion:
                    values.update(limit=0.0, coverage_pct=0.0)
                covers[cover.buyer_id] = ExportBuyerCover(
                    **values,
                    country_id=country.id,
                    exclusion=exclusion,
                    political_event=events.get(country.id),
                    political_coverage_pct=(
                        0.0 if exclusion else policy.political_coverage_pct
                    ),
                    country_cap=cap,
                    country_receivables=receivables,
                    country_uninvoiced=uninvoiced,
                )
        return covers

    @staticmethod
    def _group_by_policy(covers):
        grouped = {}
        for cover in covers.values():
            grouped.setdefault(cover.policy, []).append(cover)
        return grouped

    # ------------------------------------------------------ which policy

    @api.model
    def _export_policy(self, company, date):
        Policy = self.env["credit.insurance.policy"].sudo()
        return Policy.search(
            [
                ("company_id", "=", company.id),
                ("policy_type", "=", "export"),
                *Policy._in_force_domain(date),
            ],
            limit=1,
        )

    @api.model
    def _foreign_buyers(self, buyers, company):
        """Buyers located in another country than the company's."""
        located = buyers.filtered("country_id")
        if not located:
            return located  # without reading the company's country (a query)
        home = company.country_id
        return located.filtered(lambda b: b.country_id != home)

    @api.model
    def _decisions_in_force(self, buyers, company, date):
        """Buyers abroad count only the decisions of the export policy in force."""
        decisions = super()._decisions_in_force(buyers, company, date)
        foreign = self._foreign_buyers(buyers, company)
        export_policy = foreign and self._export_policy(company, date)
        if not export_policy:
            return decisions
        for buyer in foreign:
            decisions.pop(buyer.id, None)
        Limit = self.env["credit.insurance.limit"].sudo()
        for decision in Limit.search(
            [
                ("partner_id", "in", foreign.ids),
                ("policy_id", "=", export_policy.id),
                *Limit._in_force_domain(date),
            ],
            order="date_effective desc, id desc",
        ):
            decisions.setdefault(decision.partner_id.id, decision)
        return decisions

    @api.model
    def _default_policies(self, buyers, company, date):
        """Buyers abroad without a named decision fall under the export policy."""
        policies = super()._default_policies(buyers, company, date)
        foreign = self._foreign_buyers(buyers, company)
        export_policy = foreign and self._export_policy(company, date)
        if export_policy:
            policies.update(dict.fromkeys(foreign.ids, export_policy))
        return policies

    # ------------------------------------------------------ country caps

    @api.model
    def _country_caps(
        self, policy, countries, company, date, exclude_moves=None, exclude_orders=None
    ):
        """``{country id: (cap, receivables, uninvoiced)}`` for the capped countries
        among ``countries``, in company currency, over all the buyers of each
        country (VAT included or not as the policy says)."""
        caps = policy.sudo().country_cap_ids.filtered(
            lambda cap: cap.country_id in countries
        )
        if not caps:
            return {}
        rows = self.env.execute_query(
            SQL(
                """
                SELECT id, country_id
                  FROM res_partner
                 WHERE id = commercial_partner_id
                   AND country_id = ANY(%(country_ids)s)
                """,
                country_ids=caps.country_id.ids,
            )
        )
        country_of = dict(rows)
        buyers = self.env["res.partner"].browse(country_of)
        receivables = self._open_receivables(buyers, company, exclude_moves)
        uninvoiced = self._uninvoiced_orders(buyers, company, exclude_orders)
        to_company = self._conversion_rates(
            company,
            date,
            {currency_id for rows in receivables.values() for currency_id in rows}
            | {currency_id for rows in uninvoiced.values() for currency_id in rows}
            | {policy.currency_id.id},
        )
        by_country = {}
        for buyer_id, country_id in country_of.items():
            for index, amounts in enumerate((receivables, uninvoiced)):
                total = self._sum_converted(
                    amounts.get(buyer_id, {}), to_company, policy.vat_covered, company
                )
                by_country.setdefault(country_id, [0.0, 0.0])[index] += total
        result = {}
        for cap in caps:
            country_receivables, country_uninvoiced = by_country.get(
                cap.country_id.id, (0.0, 0.0)
            )
            result[cap.country_id.id] = (
                company.currency_id.round(
                    cap.cap_amount * to_company[policy.currency_id.id]
                ),
                company.currency_id.round(country_receivables),
                company.currency_id.round(country_uninvoiced),
            )
        return result
