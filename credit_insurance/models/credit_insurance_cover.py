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
    stopped: bool = False  # stop of deliveries

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


# Up to this many buyers, the exposure query runs with a plan kept by the
# connection (see CreditInsuranceCover._exposure).
PLANNED_BATCH = 50


class CreditInsuranceCover(models.AbstractModel):
    _name = "credit.insurance.cover"
    _description = "Credit insurance cover computation"

    @api.model
    def _get_buyer_covers(
        self,
        partners,
        date=None,
        exclude_moves=None,
        exclude_orders=None,
        insured_only=False,
        lock=False,
    ):
        """Return ``{commercial partner id: BuyerCover}`` for the current company.

        :param partners: res.partner records; contacts count for their company.
        :param date: date of the limits in force and of the currency rates.
        :param exclude_moves: account.move whose receivables are left out.
        :param exclude_orders: sale.order whose uninvoiced amounts are left out.
        :param insured_only: leave the exposure of buyers without a policy at
            zero (the checks need none).
        :param lock: lock the buyers under a blocking policy until the end of
            the transaction (see :meth:`_lock_query`).
        """
        # Only what is needed, without record rules: this runs on every order
        # confirmation.
        company = self.env.company.sudo()
        date = fields.Date.to_date(date) or fields.Date.context_today(self)
        partners = partners._origin.sudo()
        partners.fetch(["commercial_partner_id"])
        buyers = partners.commercial_partner_id
        if not buyers:
            return {}
        policies = self._policies_in_force(company, date)
        decisions = self._decisions_in_force(buyers, company, date, policies)
        default_policies = self._default_policies(
            buyers.filtered(lambda buyer: buyer.id not in decisions),
            company,
            date,
            policies,
        )
        exposed = (
            buyers.filtered(
                lambda buyer: buyer.id in decisions or buyer.id in default_policies
            )
            if insured_only
            else buyers
        )
        blocking = [
            buyer_id
            for buyer_id, policy in (
                *((d.partner_id.id, d.policy_id) for d in decisions.values()),
                *default_policies.items(),
            )
            if lock and policy.enforcement_mode == "block"
        ]
        receivables, uninvoiced, stopped = self._exposure(
            exposed,
            company,
            exclude_moves=exclude_moves,
            exclude_orders=exclude_orders,
            read_stop_ids=buyers.ids,
            lock_ids=blocking,
        )
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
                stopped=buyer.id in stopped,
            )
        return covers

    # ------------------------------------------------------------ limits

    @api.model
    def _policies_in_force(self, company, date):
        """The company's active policies in force on ``date``, with the fields
        the cover needs (one query)."""
        Policy = self.env["credit.insurance.policy"].sudo()
        return Policy.search_fetch(
            [("company_id", "=", company.id), *Policy._in_force_domain(date)],
            [
                "policy_type",
                "currency_id",
                "discretionary_limit",
                "discretionary_coverage_pct",
                "vat_covered",
                "enforcement_mode",
            ],
        )

    @api.model
    def _decisions_in_force(self, buyers, company, date, policies=None):
        """``{buyer id: decision}`` for named decisions in force on ``date``
        under a policy in force."""
        if policies is None:
            policies = self._policies_in_force(company, date)
        if not policies:
            return {}
        Limit = self.env["credit.insurance.limit"].sudo()
        candidates = Limit.search_fetch(
            [
                ("partner_id", "in", buyers.ids),
                ("company_id", "=", company.id),
                ("policy_id", "in", policies.ids),
                *Limit._in_force_domain(date),
            ],
            [
                "partner_id",
                "policy_id",
                "insured_amount",
                "currency_id",
                "coverage_pct",
            ],
            order="date_effective desc, id desc",
        )
        decisions = {}
        for decision in candidates:
            # Several policies may name the buyer: the latest decision wins.
            decisions.setdefault(decision.partner_id.id, decision)
        return decisions

    @api.model
    def _default_policies(self, buyers, company, date, policies=None):
        """``{buyer id: policy}`` covering buyers without a named decision.

        The company's global policy covers them with its discretionary limit.
        """
        if policies is None:
            policies = self._policies_in_force(company, date)
        policy = policies.filtered(lambda p: p.policy_type == "global")[:1]
        return dict.fromkeys(buyers.ids, policy) if policy else {}

    # ---------------------------------------------------------- exposure

    @api.model
    def _exposure(
        self,
        buyers,
        company,
        exclude_moves=None,
        exclude_orders=None,
        read_stop_ids=(),
        lock_ids=(),
    ):
        """Open receivables and orders not yet invoiced of ``buyers``, the ids
        among ``read_stop_ids`` under a stop of deliveries, and the lock of
        ``lock_ids`` (see :meth:`_lock_query`).

        Returns ``(receivables, uninvoiced, stopped ids)``, the first two as
        :meth:`_open_receivables` and :meth:`_uninvoiced_orders`.

        This runs on every order confirmation. For a few buyers, planning the
        query costs PostgreSQL more than running it: small batches go through
        the function ``credit_insurance_exposure`` (see :meth:`init`), the same
        query with its plan kept by each database connection.
        """
        self._flush_exposure()
        self.env["res.partner"].flush_model(["credit_insurance_stop"])
        arguments = {
            "company_id": company.id,
            "buyer_ids": buyers.ids,
            "excluded_moves": exclude_moves.ids if exclude_moves else [],
            "excluded_orders": exclude_orders.ids if exclude_orders else [],
            "stop_ids": list(read_stop_ids),
        }
        if len(buyers) <= PLANNED_BATCH and len(read_stop_ids) <= PLANNED_BATCH:
            rows = self.env.execute_query(
                SQL(
                    "SELECT * FROM credit_insurance_exposure(%s, %s, %s, %s, %s, %s)",
                    *arguments.values(),
                    sorted(lock_ids),
                )
            )
        else:
            if lock_ids:
                self.env.cr.execute(self._lock_query(sorted(lock_ids)))
            rows = self.env.execute_query(self._exposure_query(**arguments))
        rows_by_kind = {"receivable": [], "order": [], "stop": []}
        for kind, *row in rows:
            rows_by_kind[kind].append(row)
        return (
            self._rows_by_buyer(rows_by_kind["receivable"]),
            self._rows_by_buyer(rows_by_kind["order"]),
            {buyer_id for buyer_id, *__ in rows_by_kind["stop"]},
        )

    @api.model
    def _exposure_query(
        self, company_id, buyer_ids, excluded_moves, excluded_orders, stop_ids
    ):
        """Rows ``(kind, buyer id, currency id, with VAT, without VAT)``; the
        arguments are values, or the function's parameters (SQL)."""
        return SQL(
            """
            SELECT 'receivable'::text, * FROM (%(receivables)s) AS receivable
             UNION ALL
            SELECT 'order', * FROM (%(orders)s) AS uninvoiced
             UNION ALL
            SELECT 'stop', id, NULL::integer, NULL::numeric, NULL::numeric
              FROM res_partner
             WHERE id = ANY(%(stop_ids)s)
               -- company-dependent: one value per company id
               AND (credit_insurance_stop ->> %(company_id)s::text)::boolean
            """,
            receivables=self._open_receivables_query(
                company_id, buyer_ids, excluded_moves
            ),
            orders=self._uninvoiced_orders_query(
                company_id, buyer_ids, excluded_orders
            ),
            stop_ids=stop_ids,
            company_id=company_id,
        )

    def init(self):
        """(Re)create the function behind :meth:`_exposure` from the same
        queries. Its plans are generic: they do not depend on the buyers."""
        self.env.cr.execute(
            SQL(
                """
                CREATE OR REPLACE FUNCTION credit_insurance_exposure(
                    p_company integer, p_buyers integer[], p_moves integer[],
                    p_orders integer[], p_stops integer[], p_lock integer[])
                RETURNS TABLE (kind text, ref_id integer, currency integer,
                               gross numeric, net numeric)
                LANGUAGE plpgsql VOLATILE
                SET plan_cache_mode = force_generic_plan
                AS $function$
                #variable_conflict use_column
                BEGIN
                    IF cardinality(p_lock) > 0 THEN
                        %(lock)s;
                    END IF;
                    RETURN QUERY %(select)s;
                END
                $function$
                """,
                lock=self._lock_query(SQL("p_lock")),
                select=self._exposure_query(
                    SQL("p_company"),
                    SQL("p_buyers"),
                    SQL("p_moves"),
                    SQL("p_orders"),
                    SQL("p_stops"),
                ),
            )
        )

    @api.model
    def _lock_query(self, buyer_ids):
        """Serialize the limit checks of these buyers until the transaction ends.

        Odoo transactions are REPEATABLE READ: after waiting on a mere
        ``SELECT ... FOR UPDATE``, a second transaction would go on with its
        old snapshot, blind to the order the first one just committed. Writing
        the row instead makes PostgreSQL abort the second one with a
        serialization failure; Odoo then retries the whole request with a
        fresh snapshot, in which the first order counts. Rows are locked in id
        order so that two batches cannot deadlock.
        """
        return SQL(
            """
            UPDATE res_partner SET write_date = write_date
             WHERE id IN (SELECT id FROM res_partner
                           WHERE id = ANY(%s) ORDER BY id FOR UPDATE)
            """,
            buyer_ids,
        )

    @api.model
    def _flush_exposure(self):
        self.env["account.move.line"].flush_model(
            [
                "amount_residual_currency",
                "reconciled",
                "parent_state",
                "partner_id",
                "account_id",
            ]
        )
        self.env["account.move"].flush_model(
            ["amount_untaxed", "amount_total", "state", "move_type"]
        )
        self.env["sale.order.line"].flush_model(
            ["price_total", "price_subtotal", "product_uom_qty", "order_id"]
        )
        self.env["sale.order"].flush_model(["state", "partner_invoice_id"])

    @api.model
    def _open_receivables(self, buyers, company, exclude_moves=None):
        """``{buyer id: {currency id: (with VAT, without VAT)}}`` still due.

        Amounts are in the receivable's own currency; the part without VAT is
        pro rata of the invoice's untaxed total.
        """
        self._flush_exposure()
        return self._rows_by_buyer(
            self.env.execute_query(
                self._open_receivables_query(
                    company.id,
                    buyers.ids,
                    exclude_moves.ids if exclude_moves else [],
                )
            )
        )

    @api.model
    def _open_receivables_query(self, company_id, buyer_ids, excluded_move_ids):
        return SQL(
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
            company_id=company_id,
            buyer_ids=buyer_ids,
            excluded=excluded_move_ids,
        )

    @api.model
    def _uninvoiced_orders(self, buyers, company, exclude_orders=None):
        """``{buyer id: {currency id: (with VAT, without VAT)}}`` of confirmed
        orders not yet invoiced by a posted invoice.

        Draft invoices do not count as invoiced: until posted, the order still
        carries the exposure.
        """
        self._flush_exposure()
        return self._rows_by_buyer(
            self.env.execute_query(
                self._uninvoiced_orders_query(
                    company.id,
                    buyers.ids,
                    exclude_orders.ids if exclude_orders else [],
                )
            )
        )

    @api.model
    def _uninvoiced_orders_query(self, company_id, buyer_ids, excluded_order_ids):
        return self._uninvoiced_query(
            SQL("partner.commercial_partner_id"),
            SQL(
                """so.company_id = %(company_id)s
                   AND so.state = 'sale'
                   AND partner.commercial_partner_id = ANY(%(buyer_ids)s)
                   AND so.id != ALL(%(excluded)s)""",
                company_id=company_id,
                buyer_ids=buyer_ids,
                excluded=excluded_order_ids,
            ),
        )

    @api.model
    def _uninvoiced_order_amounts(self, orders):
        """``{order id: {currency id: (with VAT, without VAT)}}`` not yet
        invoiced on each order, counted as in the exposure."""
        self._flush_exposure()
        return self._rows_by_buyer(
            self.env.execute_query(
                self._uninvoiced_query(SQL("so.id"), SQL("so.id = ANY(%s)", orders.ids))
            )
        )

    @api.model
    def _uninvoiced_query(self, key, condition):
        """Rows ``(key, currency id, with VAT, without VAT)`` of order lines
        not yet invoiced by a posted invoice: the one place for that rule."""
        return SQL(
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
        currency_ids = set(currency_ids) | {company_currency.id}
        if currency_ids == {company_currency.id}:
            return {company_currency.id: 1.0}
        currencies = self.env["res.currency"].browse(currency_ids)
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
            a limit (see :meth:`_lock_query`).
        :param cumulative: documents of one buyer are added one after the
            other (they will all count); otherwise each is checked alone.
        """
        if not documents:
            return []
        company = self.env.company.sudo()
        partners = self.env["res.partner"].union(
            *(document.partner for document in documents)
        )
        covers = self._get_buyer_covers(
            partners,
            date=fields.Date.context_today(self),
            exclude_moves=exclude_moves,
            exclude_orders=exclude_orders,
            insured_only=True,
            lock=lock,
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
                    stopped=cover.stopped,
                    currency=company.currency_id,
                )
            )
            if cumulative:
                consumed[buyer.id] += amount
        return checks

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
