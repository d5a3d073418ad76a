"""Export rules on top of the core cover computation.

A buyer in another country than the company's falls under the company's export
policy when one is in force and insures its country. The export cover adds to
the global policy's and never removes it: the buyer's limit is the export
policy's (its named decision, or its discretionary limit) plus what the global
policy gives it (its named decision, or its discretionary limit); a buyer in a
country the export policy does not insure (by name, by not listing it, or by
its OECD risk category) keeps the global policy's cover as if there were no
export policy. On top of that, the export policy may cap the exposure on all
the buyers of a country together, and a political event in the country stops
any new cover. Under an export policy alone, an excluded country has no cover.
Everything stays set-based: a fixed number of queries for any batch of buyers.
"""

import dataclasses
from collections import defaultdict
from dataclasses import dataclass

from odoo import api, fields, models
from odoo.tools import SQL

from odoo.addons.credit_insurance.models.credit_insurance_cover import (
    BuyerCover,
    ExposureCheck,
)


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


@dataclass(frozen=True)
class ExportExposureCheck(ExposureCheck):
    """An order to a buyer abroad, checked against the export rules too.

    ``country_exposure`` is the exposure of the buyer's country without the
    order (but with the orders before it in the same batch), None when the
    country has no cap.
    """

    country_exposure: float | None = None

    @property
    def block_reason(self):
        """Why the export policy refuses the order whatever its limit, or ''."""
        cover = self.cover
        if cover.political_event or cover.exclusion:
            return cover.block_reason
        if self.country_exposure is not None and (
            self.currency.compare_amounts(
                self.country_exposure + self.amount, cover.country_cap
            )
            > 0
        ):
            return "country_cap"
        return ""

    @property
    def shortfall(self):
        if self.cover.political_event or self.cover.exclusion:
            return self.currency.round(self.amount)
        shortfall = super().shortfall
        if self.country_exposure is not None:
            country = self.country_exposure + self.amount - self.cover.country_cap
            shortfall = max(shortfall, self.currency.round(country))
        return shortfall

    @property
    def over_limit(self):
        return super().over_limit or bool(self.block_reason)


class CreditInsuranceCover(models.AbstractModel):
    _inherit = "credit.insurance.cover"

    # ------------------------------------------------------ which policy

    @api.model
    def _cover_terms(self, buyer_ids, policies, decisions, company, date):
        """Buyers abroad whose country the export policy in force insures fall
        under it: its decision (without one, its discretionary limit), with
        the global policy's cover added. The others keep their terms."""
        terms = super()._cover_terms(buyer_ids, policies, decisions, company, date)
        export_policy = max(
            (policy for policy in policies if policy["policy_type"] == "export"),
            key=lambda p: (p["date_start"], p["id"]),
            default=None,
        )
        if not export_policy:
            return terms
        global_policy = self._global_policy(policies)
        export_record = (
            self.env["credit.insurance.policy"].sudo().browse(export_policy["id"])
        )
        buyers = self.env["res.partner"].sudo().browse(buyer_ids)
        for buyer in self._foreign_buyers(buyers, company):
            if global_policy and export_record._export_exclusion(buyer.country_id):
                continue  # the export policy adds nothing, removes nothing
            buyer_decisions = decisions.get(buyer.id, ())
            decision = self._latest_decision(
                d for d in buyer_decisions if d["policy_id"] == export_policy["id"]
            )
            added = ()
            if global_policy:
                added = (
                    (
                        global_policy,
                        self._latest_decision(
                            d
                            for d in buyer_decisions
                            if d["policy_id"] == global_policy["id"]
                        ),
                    ),
                )
            terms[buyer.id] = (export_policy, decision, added)
        return terms

    @api.model
    def _blanket_policy_types(self):
        """An export policy covers buyers abroad on its discretionary limit."""
        return [*super()._blanket_policy_types(), "export"]

    @api.model
    def _foreign_buyers(self, buyers, company):
        """Buyers located in another country than the company's."""
        located = buyers.filtered("country_id")
        if not located:
            return located  # without reading the company's country (a query)
        home = company.country_id
        return located.filtered(lambda b: b.country_id != home)

    # ------------------------------------------------------ export rules

    @api.model
    def _compute_covers(
        self,
        partners,
        date=None,
        exclude_moves=None,
        exclude_orders=None,
        insured_only=False,
        lock=False,
        rate_date=None,
    ):
        """Covers under the export policy become :class:`ExportBuyerCover`:
        exclusions, political events and country caps applied."""
        covers, buyer_of = super()._compute_covers(
            partners,
            date,
            exclude_moves,
            exclude_orders,
            insured_only,
            lock,
            rate_date,
        )
        export = {
            buyer_id: cover
            for buyer_id, cover in covers.items()
            if cover.policy.policy_type == "export"
        }
        if not export:
            return covers, buyer_of
        company = self.env.company
        date = fields.Date.to_date(date) or fields.Date.context_today(self)
        buyers = self.env["res.partner"].sudo().browse(export)
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
                        0.0
                        if exclusion
                        else policy.political_coverage_pct or cover.coverage_pct
                    ),
                    country_cap=cap,
                    country_receivables=receivables,
                    country_uninvoiced=uninvoiced,
                )
        return covers, buyer_of

    @staticmethod
    def _group_by_policy(covers):
        grouped = {}
        for cover in covers.values():
            grouped.setdefault(cover.policy, []).append(cover)
        return grouped

    @api.model
    def _check_documents(
        self,
        documents,
        exclude_moves=None,
        exclude_orders=None,
        lock=False,
        cumulative=True,
    ):
        """Orders to buyers abroad must also fit the export rules: no new
        cover under a political event or in an excluded country, and orders
        of one country add up against its cap.

        Invoices keep the core check: one posted beyond these rules is
        recorded as not (fully) insured by its cover state, not refused.
        """
        checks = super()._check_documents(
            documents, exclude_moves, exclude_orders, lock, cumulative
        )
        consumed = defaultdict(float)
        result = []
        for check in checks:
            cover = check.cover
            if check.document.record._name != "sale.order" or not isinstance(
                cover, ExportBuyerCover
            ):
                result.append(check)
                continue
            country_exposure = None
            if cover.country_cap is not None:
                country_exposure = cover.country_exposure + consumed[cover.country_id]
                if cumulative:
                    consumed[cover.country_id] += check.amount
            result.append(
                ExportExposureCheck(
                    **{
                        field.name: getattr(check, field.name)
                        for field in dataclasses.fields(ExposureCheck)
                    },
                    country_exposure=country_exposure,
                )
            )
        return result

    # ------------------------------------------------------ country caps

    @api.model
    def _country_caps(
        self, policy, countries, company, date, exclude_moves=None, exclude_orders=None
    ):
        """``{country id: (cap, receivables, uninvoiced)}`` for the capped countries
        among ``countries``, in company currency, over all the buyers of each
        country (VAT included or not as the policy says). One query, through
        the core's exposure queries."""
        caps = policy.sudo().country_cap_ids.filtered(
            lambda cap: cap.country_id in countries
        )
        if not caps:
            return {}
        buyer_ids = SQL(
            """ARRAY(SELECT id FROM res_partner
                      WHERE id = commercial_partner_id
                        AND country_id = ANY(%s))""",
            caps.country_id.ids,
        )
        moves = exclude_moves.ids if exclude_moves else []
        orders = exclude_orders.ids if exclude_orders else []
        rows = self.env.execute_query(
            SQL(
                """
                SELECT amounts.kind, partner.country_id, amounts.currency_id,
                       SUM(amounts.gross), SUM(amounts.net)
                  FROM (SELECT 'receivable', * FROM (%(receivables)s) AS r
                         UNION ALL
                        SELECT 'order', * FROM (%(orders)s) AS o
                       ) AS amounts(kind, buyer_id, currency_id, gross, net)
                  JOIN res_partner partner ON partner.id = amounts.buyer_id
              GROUP BY 1, 2, 3
                """,
                receivables=self._open_receivables_query(company.id, buyer_ids, moves),
                orders=self._uninvoiced_orders_query(company.id, buyer_ids, orders),
            )
        )
        to_company = self._conversion_rates(
            company,
            date,
            {row[2] for row in rows} | {policy.currency_id.id},
        )
        amounts = defaultdict(dict)  # {(kind, country id): {currency id: ...}}
        for kind, country_id, currency_id, gross, net in rows:
            amounts[kind, country_id][currency_id] = (gross or 0.0, net or 0.0)
        result = {}
        for cap in caps:
            country_id = cap.country_id.id
            result[country_id] = (
                company.currency_id.round(
                    cap.cap_amount * to_company[policy.currency_id.id]
                ),
                *(
                    self._sum_converted(
                        amounts[kind, country_id],
                        to_company,
                        policy.vat_covered,
                        company,
                    )
                    for kind in ("receivable", "order")
                ),
            )
        return result
