"""Where an insured limit meets the exposure: the one place both are computed.

Everything that needs a buyer's cover (partner fields, invoice posting, order
confirmation, declarations) asks :meth:`CreditInsuranceCover._get_buyer_covers`,
which answers for any batch of buyers with one SQL statement; order
confirmations and invoice postings go through
:meth:`CreditInsuranceCover._check_documents`, which adds the documents to it.
"""

import datetime
import logging
from collections import defaultdict
from dataclasses import dataclass

from odoo import api, fields, models
from odoo.tools import SQL
from odoo.tools.misc import format_amount

_logger = logging.getLogger(__name__)


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
    enforcement_mode: str | bool = False  # the policy's, for over-limit orders

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
            self.over_limit and self.cover.enforcement_mode == "block"
        )

    @property
    def warned(self):
        return (
            not self.stopped
            and self.over_limit
            and self.cover.enforcement_mode == "warn"
        )


# Up to this many partners, the cover's statement runs with a plan kept by the
# database connection (see CreditInsuranceCover._cover_rows).
PLANNED_BATCH = 50
# What the cover's SQL reads, flushed before it runs.
COVER_FIELDS = {
    "res.partner": ["commercial_partner_id", "credit_insurance_stop"],
    "credit.insurance.policy": [
        "company_id",
        "active",
        "date_start",
        "date_end",
        "policy_type",
        "currency_id",
        "discretionary_limit",
        "discretionary_coverage_pct",
        "vat_covered",
        "enforcement_mode",
    ],
    "credit.insurance.limit": [
        "partner_id",
        "company_id",
        "policy_id",
        "date_effective",
        "date_superseded",
        "date_expiry",
        "insured_amount",
        "currency_id",
        "coverage_pct",
    ],
    "account.move.line": [
        "amount_residual_currency",
        "reconciled",
        "parent_state",
        "partner_id",
        "account_id",
        "company_id",
        "currency_id",
        "move_id",
        "quantity",
    ],
    "account.move": ["amount_untaxed", "amount_total", "state", "move_type"],
    "sale.order.line": [
        "price_total",
        "price_subtotal",
        "product_uom_qty",
        "order_id",
        "currency_id",
        "invoice_lines",
    ],
    "sale.order": ["state", "partner_invoice_id", "company_id"],
}


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
        :param lock: when the company blocks over-limit orders, lock the buyers
            until the end of the transaction (see :meth:`_lock_query`).
        """
        return self._compute_covers(
            partners, date, exclude_moves, exclude_orders, insured_only, lock
        )[0]

    @api.model
    def _compute_covers(
        self,
        partners,
        date=None,
        exclude_moves=None,
        exclude_orders=None,
        insured_only=False,
        lock=False,
    ):
        """``(covers, {partner id: buyer id})``, see :meth:`_get_buyer_covers`."""
        partners = partners._origin
        if not partners:
            return {}, {}
        company = self.env.company.sudo()
        date = fields.Date.to_date(date) or fields.Date.context_today(self)
        rows = self._cover_rows(
            company, date, partners, exclude_moves, exclude_orders, insured_only, lock
        )
        buyer_of, policies, decisions, stopped = {}, [], {}, set()
        receivables, uninvoiced = defaultdict(dict), defaultdict(dict)
        for kind, buyer_id, currency_id, gross, net, data in rows:
            if kind == "buyer":
                buyer_of[data["partner_id"]] = buyer_id
            elif kind == "policy":
                policies.append(data)
            elif kind == "decision":
                decisions.setdefault(buyer_id, []).append(data)
            elif kind == "stop":
                stopped.add(buyer_id)
            else:
                amounts = receivables if kind == "receivable" else uninvoiced
                amounts[buyer_id][currency_id] = (gross or 0.0, net or 0.0)
        terms = self._cover_terms(
            sorted(set(buyer_of.values())), policies, decisions, company, date
        )
        to_company = self._conversion_rates(
            company,
            date,
            {
                currency_id
                for amounts in (*receivables.values(), *uninvoiced.values())
                for currency_id in amounts
            }
            | {
                row["currency_id"]
                for policy, decision in terms.values()
                for row in (policy, decision)
                if row
            },
        )
        Policy = self.env["credit.insurance.policy"].sudo()
        Limit = self.env["credit.insurance.limit"].sudo()
        covers = {}
        for buyer_id, (policy, decision) in terms.items():
            if decision:
                limit = (decision["insured_amount"] or 0.0) * to_company[
                    decision["currency_id"]
                ]
                coverage = decision["coverage_pct"]
            elif policy:
                limit = (policy["discretionary_limit"] or 0.0) * to_company[
                    policy["currency_id"]
                ]
                coverage = policy["discretionary_coverage_pct"]
            else:
                limit = coverage = 0.0
            vat_included = not policy or policy["vat_covered"]
            covers[buyer_id] = BuyerCover(
                buyer_id=buyer_id,
                policy=Policy.browse(policy["id"] if policy else ()),
                decision=Limit.browse(decision["id"] if decision else ()),
                limit=company.currency_id.round(limit),
                coverage_pct=coverage or 0.0,
                receivables=self._sum_converted(
                    receivables[buyer_id], to_company, vat_included, company
                ),
                uninvoiced=self._sum_converted(
                    uninvoiced[buyer_id], to_company, vat_included, company
                ),
                vat_included=vat_included,
                stopped=buyer_id in stopped,
                enforcement_mode=policy["enforcement_mode"] if policy else False,
            )
        return covers, buyer_of

    @api.model
    def _cover_terms(self, buyer_ids, policies, decisions, company, date):
        """``{buyer id: (policy, decision)}``: which policy and which named
        decision (rows of :meth:`_cover_query`, ``None`` when none) give each
        buyer its cover, in ``buyer_ids`` order.

        ``policies`` are the policies in force; ``decisions`` maps a buyer to
        its decisions in force, the latest of each policy. A buyer's latest
        decision applies; without one, the global policy covers it.
        """
        policy_of = {policy["id"]: policy for policy in policies}
        global_policy = max(
            (policy for policy in policies if policy["policy_type"] == "global"),
            key=lambda p: (p["date_start"], p["id"]),
            default=None,
        )
        terms = {}
        for buyer_id in buyer_ids:
            decision = self._latest_decision(decisions.get(buyer_id, ()))
            terms[buyer_id] = (
                (policy_of[decision["policy_id"]], decision)
                if decision
                else (global_policy, None)
            )
        return terms

    @api.model
    def _blanket_policy_types(self):
        """Policy types that cover buyers without a named decision (with their
        discretionary limit): while one is in force, the exposure of every
        buyer is needed, even for a check on insured buyers only."""
        return ["global"]

    @staticmethod
    def _latest_decision(decisions):
        """The latest of decision rows (the last one taking effect), or None."""
        return max(
            decisions, key=lambda d: (d["date_effective"], d["id"]), default=None
        )

    # ------------------------------------------------------------ queries

    @api.model
    def _cover_rows(
        self, company, date, partners, exclude_moves, exclude_orders, insured_only, lock
    ):
        """Rows ``(kind, buyer id, currency id, with VAT, without VAT, data)``
        of :meth:`_cover_query`, after the lock if asked.

        This runs on every order confirmation. For a few buyers, planning the
        query costs PostgreSQL more than running it: small batches go through
        the function ``credit_insurance_cover`` (see :meth:`init`), the same
        statements with plans kept by each database connection.
        """
        for model, field_names in COVER_FIELDS.items():
            self.env[model].flush_model(field_names)
        arguments = (
            company.id,
            date,
            partners.ids,
            exclude_moves.ids if exclude_moves else [],
            exclude_orders.ids if exclude_orders else [],
            insured_only,
        )
        if len(partners) <= PLANNED_BATCH:
            return self.env.execute_query(
                SQL(
                    "SELECT * FROM credit_insurance_cover(%s, %s, %s, %s, %s, %s, %s)",
                    *arguments,
                    lock,
                )
            )
        if lock:
            self.env.cr.execute(self._lock_query(*arguments[:3]))
        return self.env.execute_query(self._cover_query(*arguments))

    def init(self):
        """(Re)create the function behind :meth:`_cover_rows` from the same
        statements. Its plans are generic: they do not depend on the buyers."""
        arguments = (
            SQL("p_company"),
            SQL("p_date"),
            SQL("p_partners"),
            SQL("p_moves"),
            SQL("p_orders"),
            SQL("p_insured_only"),
        )
        self.env.cr.execute(
            SQL(
                """
                CREATE OR REPLACE FUNCTION credit_insurance_cover(
                    p_company integer, p_date date, p_partners integer[],
                    p_moves integer[], p_orders integer[],
                    p_insured_only boolean, p_lock boolean)
                RETURNS TABLE (kind text, buyer_id integer, currency_id integer,
                               gross numeric, net numeric, data jsonb)
                LANGUAGE plpgsql VOLATILE
                SET plan_cache_mode = force_generic_plan
                AS $function$
                #variable_conflict use_column
                BEGIN
                    IF p_lock THEN
                        %(lock)s;
                    END IF;
                    RETURN QUERY %(cover)s;
                END
                $function$
                """,
                lock=self._lock_query(*arguments[:3]),
                cover=self._cover_query(*arguments),
            )
        )

    @api.model
    def _policies_query(self, company_id, date):
        """Active policies of the company in force on ``date``."""
        Policy = self.env["credit.insurance.policy"].sudo()
        return Policy._search(
            [("company_id", "=", company_id), *Policy._in_force_domain(date)]
        ).subselect()

    @api.model
    def _lock_query(self, company_id, date, partner_ids):
        """Serialize the limit checks of these buyers until the transaction
        ends, when a policy of the company blocks over-limit orders.

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
                           WHERE id IN (SELECT commercial_partner_id
                                          FROM res_partner
                                         WHERE id = ANY(%(partner_ids)s))
                             AND EXISTS (SELECT FROM credit_insurance_policy
                                          WHERE id IN %(policies)s
                                            AND enforcement_mode = 'block')
                        ORDER BY id FOR UPDATE)
            """,
            partner_ids=partner_ids,
            policies=self._policies_query(company_id, date),
        )

    @api.model
    def _cover_query(
        self,
        company_id,
        date,
        partner_ids,
        excluded_moves,
        excluded_orders,
        insured_only,
    ):
        """Everything a cover needs, in one statement: the buyer of each
        partner, the policies and named decisions in force (the latest of each
        policy naming a buyer; :meth:`_cover_terms` chooses), open receivables,
        orders not yet invoiced and stops of deliveries. The arguments are
        values, or the function's parameters (SQL)."""
        Limit = self.env["credit.insurance.limit"].sudo()
        decisions = Limit._search(
            [
                ("partner_id", "in", SQL("(SELECT buyer_id FROM buyer)")),
                ("company_id", "=", company_id),
                ("policy_id", "in", SQL("(SELECT id FROM policy)")),
                *Limit._in_force_domain(date),
            ]
        ).subselect()
        exposed = SQL(
            """ARRAY(SELECT buyer_id FROM buyer
                      WHERE NOT %(insured_only)s
                         OR buyer_id IN (SELECT partner_id FROM decision)
                         OR EXISTS (SELECT FROM policy
                                     WHERE policy_type IN %(blanket)s))""",
            insured_only=insured_only,
            blanket=tuple(self._blanket_policy_types()),
        )
        return SQL(
            """
            WITH buyer AS (
                SELECT id AS partner_id, commercial_partner_id AS buyer_id
                  FROM res_partner WHERE id = ANY(%(partner_ids)s)
            ), policy AS (
                SELECT id, policy_type, date_start, currency_id,
                       discretionary_limit, discretionary_coverage_pct,
                       vat_covered, enforcement_mode
                  FROM credit_insurance_policy WHERE id IN %(policies)s
            ), decision AS (
                SELECT DISTINCT ON (partner_id, policy_id)
                       id, partner_id, policy_id, date_effective, insured_amount,
                       currency_id, coverage_pct
                  FROM credit_insurance_limit WHERE id IN %(decisions)s
              ORDER BY partner_id, policy_id, date_effective DESC, id DESC
            )
            SELECT 'buyer'::text, buyer_id, NULL::integer, NULL::numeric,
                   NULL::numeric, jsonb_build_object('partner_id', partner_id)
              FROM buyer
             UNION ALL
            SELECT 'policy', NULL, NULL, NULL, NULL, to_jsonb(policy) FROM policy
             UNION ALL
            SELECT 'decision', partner_id, NULL, NULL, NULL, to_jsonb(decision)
              FROM decision
             UNION ALL
            SELECT 'receivable', *, NULL FROM (%(receivables)s) AS receivable
             UNION ALL
            SELECT 'order', *, NULL FROM (%(orders)s) AS uninvoiced
             UNION ALL
            SELECT 'stop', id, NULL, NULL, NULL, NULL
              FROM res_partner
             WHERE id IN (SELECT buyer_id FROM buyer)
               -- company-dependent: one value per company id
               AND (credit_insurance_stop ->> %(company_id)s::text)::boolean
            """,
            partner_ids=partner_ids,
            policies=self._policies_query(company_id, date),
            decisions=decisions,
            receivables=self._open_receivables_query(
                company_id, exposed, excluded_moves
            ),
            orders=self._uninvoiced_orders_query(company_id, exposed, excluded_orders),
            company_id=company_id,
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
        for model, field_names in COVER_FIELDS.items():
            self.env[model].flush_model(field_names)
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

        Returns one :class:`ExposureCheck` per document with a customer, in
        the same order.
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
        covers, buyer_of = self._compute_covers(
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
        Partner = self.env["res.partner"].with_company(company)
        consumed = defaultdict(float)
        checks = []
        for document in documents:
            buyer_id = buyer_of.get(document.partner._origin.id)
            if not buyer_id:
                # No saved customer yet, which Odoo refuses by itself: a check
                # never crashes a posting, a confirmation or the job running
                # them.
                _logger.info(
                    "Credit insurance: %s not checked, it has no customer.",
                    document.record,
                )
                continue
            buyer = Partner.browse(buyer_id)
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
