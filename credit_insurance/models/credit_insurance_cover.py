"""Where an insured limit meets the exposure: the one place both are computed.

Everything that needs a buyer's cover (partner fields, invoice posting, order
confirmation, declarations) asks :meth:`CreditInsuranceCover._get_buyer_covers`,
which answers for any batch of buyers with a fixed number of SQL queries.
"""

import datetime
from collections import defaultdict
from dataclasses import dataclass

from odoo import api, fields, models
from odoo.tools import SQL
from odoo.tools.misc import format_amount


@dataclass(frozen=True)
class BuyerCover:
    """A buyer's cover on a date, amounts in the company currency.

    ``receivables`` and ``uninvoiced`` include VAT or not, as the policy says
    (with VAT when there is no policy).
    """

    buyer_id: int
    policy: models.BaseModel  # credit.insurance.policy, empty when none applies
    decision: models.BaseModel  # credit.insurance.limit in force, empty if unnamed
    limit: float
    coverage_pct: float
    receivables: float
    uninvoiced: float
    vat_included: bool

    @property
    def exposure(self):
        return self.receivables + self.uninvoiced

    @property
    def available(self):
        return self.limit - self.exposure

    @property
    def uninsured(self):
        return max(self.exposure - self.limit, 0.0)


@dataclass(frozen=True)
class ExposureDocument:
    """A document that adds to its buyer's exposure: an order being confirmed
    or increased, an invoice being posted.

    ``amounts`` is ``{currency id: (with VAT, without VAT)}``, converted to
    the company currency at ``date``.
    """

    record: models.BaseModel
    partner: models.BaseModel
    date: datetime.date
    amounts: dict


@dataclass(frozen=True)
class ExposureCheck:
    """Whether a document fits within its buyer's insured limit.

    ``exposure`` is the buyer's exposure without the document (but with the
    documents before it in the same batch), ``amount`` the document's, both
    in the company currency, VAT as the policy says.
    """

    document: ExposureDocument
    buyer: models.BaseModel  # res.partner, the commercial partner
    cover: BuyerCover
    exposure: float
    amount: float
    stopped: bool
    currency: models.BaseModel  # the company currency

    @property
    def policy(self):
        return self.cover.policy

    @property
    def limit(self):
        return self.cover.limit

    @property
    def shortfall(self):
        return self.currency.round(max(self.exposure + self.amount - self.limit, 0.0))

    @property
    def over_limit(self):
        """Only an insured buyer has a limit to exceed."""
        return bool(self.policy) and (
            self.currency.compare_amounts(self.exposure + self.amount, self.limit) > 0
        )

    @property
    def refused(self):
        """A stop of deliveries refuses everything; a blocking policy refuses
        what exceeds the limit."""
        return self.stopped or (
            self.over_limit and self.policy.enforcement_mode == "block"
        )

    @property
    def warned(self):
        return (
            not self.stopped
            and self.over_limit
            and self.policy.enforcement_mode == "warn"
        )


class CreditInsuranceCover(models.AbstractModel):
    _name = "credit.insurance.cover"
    _description = "Credit insurance cover computation"

    @api.model
    def _get_buyer_covers(
        self, partners, date=None, exclude_moves=None, exclude_orders=None
    ):
        """Return ``{commercial partner id: BuyerCover}`` for the current company.

        :param partners: res.partner records; contacts count for their company.
        :param date: date of the limits in force and of the currency rates.
        :param exclude_moves: account.move whose receivables are left out.
        :param exclude_orders: sale.order whose uninvoiced amounts are left out.
        """
        company = self.env.company
        date = fields.Date.to_date(date) or fields.Date.context_today(self)
        buyers = partners._origin.commercial_partner_id
        if not buyers:
            return {}
        decisions = self._decisions_in_force(buyers, company, date)
        default_policies = self._default_policies(
            buyers.filtered(lambda buyer: buyer.id not in decisions), company, date
        )
        receivables = self._open_receivables(buyers, company, exclude_moves)
        uninvoiced = self._uninvoiced_orders(buyers, company, exclude_orders)
        to_company = self._conversion_rates(
            company,
            date,
            {currency_id for rows in receivables.values() for currency_id in rows}
            | {currency_id for rows in uninvoiced.values() for currency_id in rows}
            | {decision.currency_id.id for decision in decisions.values()}
            | {policy.currency_id.id for policy in default_policies.values()},
        )

        covers = {}
        for buyer in buyers:
            decision = decisions.get(buyer.id, self.env["credit.insurance.limit"])
            policy = decision.policy_id or default_policies.get(
                buyer.id, self.env["credit.insurance.policy"]
            )
            if decision:
                limit = decision.insured_amount * to_company[decision.currency_id.id]
                coverage = decision.coverage_pct
            elif policy:
                limit = policy.discretionary_limit * to_company[policy.currency_id.id]
                coverage = policy.discretionary_coverage_pct
            else:
                limit = coverage = 0.0
            vat_included = not policy or policy.vat_covered
            covers[buyer.id] = BuyerCover(
                buyer_id=buyer.id,
                policy=policy,
                decision=decision,
                limit=company.currency_id.round(limit),
                coverage_pct=coverage,
                receivables=self._sum_converted(
                    receivables.get(buyer.id, {}), to_company, vat_included, company
                ),
                uninvoiced=self._sum_converted(
                    uninvoiced.get(buyer.id, {}), to_company, vat_included, company
                ),
                vat_included=vat_included,
            )
        return covers

    # ------------------------------------------------------------ limits

    @api.model
    def _decisions_in_force(self, buyers, company, date):
        """``{buyer id: decision}`` for named decisions in force on ``date``."""
        Limit = self.env["credit.insurance.limit"].sudo()
        candidates = Limit.search(
            [
                ("partner_id", "in", buyers.ids),
                ("company_id", "=", company.id),
                ("policy_id.active", "=", True),
                *Limit._in_force_domain(date),
            ],
            order="date_effective desc, id desc",
        )
        decisions = {}
        for decision in candidates:
            if decision.policy_id._is_in_force(date):
                # Several policies may name the buyer: the latest decision wins.
                decisions.setdefault(decision.partner_id.id, decision)
        return decisions

    @api.model
    def _default_policies(self, buyers, company, date):
        """``{buyer id: policy}`` covering buyers without a named decision.

        The company's global policy covers them with its discretionary limit.
        """
        Policy = self.env["credit.insurance.policy"].sudo()
        policy = Policy.search(
            [
                ("company_id", "=", company.id),
                ("policy_type", "=", "global"),
                *Policy._in_force_domain(date),
            ],
            limit=1,
        )
        return dict.fromkeys(buyers.ids, policy) if policy else {}

    # ---------------------------------------------------------- exposure

    @api.model
    def _open_receivables(self, buyers, company, exclude_moves=None):
        """``{buyer id: {currency id: (with VAT, without VAT)}}`` still due.

        Amounts are in the receivable's own currency; the part without VAT is
        pro rata of the invoice's untaxed total.
        """
        self.env["account.move.line"].flush_model(
            [
                "amount_residual_currency",
                "reconciled",
                "parent_state",
                "partner_id",
                "account_id",
            ]
        )
        self.env["account.move"].flush_model(["amount_untaxed", "amount_total"])
        rows = self.env.execute_query(
            SQL(
                """
                SELECT partner.commercial_partner_id,
                       line.currency_id,
                       SUM(line.amount_residual_currency),
                       SUM(line.amount_residual_currency
                           * CASE WHEN move.amount_total != 0
                                  THEN move.amount_untaxed / move.amount_total
                                  ELSE 1 END)
                  FROM account_move_line line
                  JOIN account_move move ON move.id = line.move_id
                  JOIN account_account account ON account.id = line.account_id
                  JOIN res_partner partner ON partner.id = line.partner_id
                 WHERE line.company_id = %(company_id)s
                   AND line.parent_state = 'posted'
                   AND account.account_type = 'asset_receivable'
                   AND NOT line.reconciled
                   AND partner.commercial_partner_id = ANY(%(buyer_ids)s)
                   AND line.move_id != ALL(%(excluded)s)
              GROUP BY partner.commercial_partner_id, line.currency_id
                """,
                company_id=company.id,
                buyer_ids=buyers.ids,
                excluded=exclude_moves.ids if exclude_moves else [],
            )
        )
        return self._rows_by_buyer(rows)

    @api.model
    def _uninvoiced_orders(self, buyers, company, exclude_orders=None):
        """``{buyer id: {currency id: (with VAT, without VAT)}}`` of confirmed
        orders not yet invoiced by a posted invoice.

        Draft invoices do not count as invoiced: until posted, the order still
        carries the exposure.
        """
        return self._rows_by_buyer(
            self._uninvoiced_rows(
                SQL("partner.commercial_partner_id"),
                SQL(
                    """so.company_id = %(company_id)s
                       AND so.state = 'sale'
                       AND partner.commercial_partner_id = ANY(%(buyer_ids)s)
                       AND so.id != ALL(%(excluded)s)""",
                    company_id=company.id,
                    buyer_ids=buyers.ids,
                    excluded=exclude_orders.ids if exclude_orders else [],
                ),
            )
        )

    @api.model
    def _uninvoiced_order_amounts(self, orders):
        """``{order id: {currency id: (with VAT, without VAT)}}`` not yet
        invoiced on each order, counted as in the exposure."""
        return self._rows_by_buyer(
            self._uninvoiced_rows(SQL("so.id"), SQL("so.id = ANY(%s)", orders.ids))
        )

    @api.model
    def _uninvoiced_rows(self, key, condition):
        """Rows ``(key, currency id, with VAT, without VAT)`` of order lines
        not yet invoiced by a posted invoice: the one place for that rule."""
        self.env["sale.order.line"].flush_model(
            ["price_total", "price_subtotal", "product_uom_qty", "order_id"]
        )
        self.env["sale.order"].flush_model(["state", "partner_invoice_id"])
        self.env["account.move"].flush_model(["state", "move_type"])
        return self.env.execute_query(
            SQL(
                """
                SELECT %(key)s,
                       sol.currency_id,
                       SUM(sol.price_total * remaining.ratio),
                       SUM(sol.price_subtotal * remaining.ratio)
                  FROM sale_order_line sol
                  JOIN sale_order so ON so.id = sol.order_id
                  JOIN res_partner partner ON partner.id = so.partner_invoice_id
                  LEFT JOIN LATERAL (
                        SELECT SUM(CASE WHEN move.move_type = 'out_refund'
                                        THEN -aml.quantity
                                        ELSE aml.quantity END) AS quantity
                          FROM sale_order_line_invoice_rel rel
                          JOIN account_move_line aml ON aml.id = rel.invoice_line_id
                          JOIN account_move move ON move.id = aml.move_id
                         WHERE rel.order_line_id = sol.id
                           AND move.state = 'posted'
                       ) invoiced ON TRUE
                 CROSS JOIN LATERAL (
                        SELECT GREATEST(sol.product_uom_qty
                                        - COALESCE(invoiced.quantity, 0), 0)
                               / sol.product_uom_qty AS ratio
                       ) remaining
                 WHERE sol.product_uom_qty > 0
                   AND %(condition)s
              GROUP BY 1, sol.currency_id
                """,
                key=key,
                condition=condition,
            )
        )

    @staticmethod
    def _rows_by_buyer(rows):
        amounts = {}
        for buyer_id, currency_id, gross, net in rows:
            amounts.setdefault(buyer_id, {})[currency_id] = (gross or 0.0, net or 0.0)
        return amounts

    @api.model
    def _conversion_rates(self, company, date, currency_ids):
        """``{currency id: factor}`` converting to the company currency."""
        company_currency = company.currency_id
        currencies = self.env["res.currency"].browse(
            set(currency_ids) | {company_currency.id}
        )
        rates = currencies._get_rates(company, date)
        return {
            currency_id: rates[company_currency.id] / rate
            for currency_id, rate in rates.items()
        }

    @staticmethod
    def _sum_converted(amounts, to_company, vat_included, company):
        """Sum ``{currency id: (with VAT, without VAT)}`` in company currency."""
        total = sum(
            (gross if vat_included else net) * to_company[currency_id]
            for currency_id, (gross, net) in amounts.items()
        )
        return company.currency_id.round(total)

    # ------------------------------------------------------------- checks

    @api.model
    def _check_documents(
        self,
        documents,
        exclude_moves=None,
        exclude_orders=None,
        lock=False,
        cumulative=True,
    ):
        """Check documents of the current company against their buyers' limits.

        Returns one :class:`ExposureCheck` per document, in the same order.
        The documents themselves must be left out of the exposure
        (``exclude_moves`` / ``exclude_orders``): their amounts are added here.

        :param lock: lock the buyers under a blocking policy until the end of
            the transaction, so that concurrent checks cannot together exceed
            a limit (see :meth:`_lock_buyers`).
        :param cumulative: documents of one buyer are added one after the
            other (they will all count); otherwise each is checked alone.
        """
        if not documents:
            return []
        company = self.env.company
        partners = self.env["res.partner"].union(
            *(document.partner for document in documents)
        )
        covers = self._get_buyer_covers(
            partners, exclude_moves=exclude_moves, exclude_orders=exclude_orders
        )
        if lock:
            self._lock_buyers(
                [
                    cover.buyer_id
                    for cover in covers.values()
                    if cover.policy.enforcement_mode == "block"
                ]
            )
        rates = {
            date: self._conversion_rates(
                company,
                date,
                {
                    currency_id
                    for document in documents
                    if document.date == date
                    for currency_id in document.amounts
                },
            )
            for date in {document.date for document in documents}
        }
        consumed = defaultdict(float)
        checks = []
        for document in documents:
            buyer = document.partner._origin.commercial_partner_id.with_company(company)
            cover = covers[buyer.id]
            amount = self._sum_converted(
                document.amounts, rates[document.date], cover.vat_included, company
            )
            checks.append(
                ExposureCheck(
                    document=document,
                    buyer=buyer,
                    cover=cover,
                    exposure=cover.exposure + consumed[buyer.id],
                    amount=amount,
                    stopped=buyer.credit_insurance_stop,
                    currency=company.currency_id,
                )
            )
            if cumulative:
                consumed[buyer.id] += amount
        return checks

    @api.model
    def _lock_buyers(self, buyer_ids):
        """Serialize the limit checks of these buyers until the transaction ends.

        Odoo transactions are REPEATABLE READ: after waiting on a mere
        ``SELECT ... FOR UPDATE``, a second transaction would go on with its
        old snapshot, blind to the order the first one just committed. Writing
        the row instead makes PostgreSQL abort the second one with a
        serialization failure; Odoo then retries the whole request with a
        fresh snapshot, in which the first order counts. Rows are locked in id
        order so that two batches cannot deadlock.
        """
        if buyer_ids:
            self.env.cr.execute(
                SQL(
                    """
                    UPDATE res_partner SET write_date = write_date
                     WHERE id IN (SELECT id FROM res_partner
                                   WHERE id = ANY(%s) ORDER BY id FOR UPDATE)
                    """,
                    sorted(buyer_ids),
                )
            )

    @api.model
    def _user_env(self):
        """The environment in the user's language, also over external RPC
        (which may send no language)."""
        lang = self.env.lang or self.env.user.lang
        return self.env(context=dict(self.env.context, lang=lang))

    @api.model
    def _check_figures(self, check, amount_label):
        """The figures of a check, one per line, in the user's language."""
        env = self._user_env()

        def amount(value):
            return format_amount(env, value, check.currency)

        return env._(
            "Insured limit: %(limit)s\n"
            "Current exposure: %(exposure)s\n"
            "%(label)s: %(amount)s\n"
            "Shortfall: %(shortfall)s",
            limit=amount(check.limit),
            exposure=amount(check.exposure),
            label=amount_label,
            amount=amount(check.amount),
            shortfall=amount(check.shortfall),
        )
