"""Where an insured limit meets the exposure: the one place both are computed.

Everything that needs a buyer's cover (partner fields, invoice posting, order
confirmation, declarations, claims) asks
:meth:`CreditInsuranceCover._get_buyer_covers`, which answers for any batch of
buyers with one SQL statement; order confirmations and invoice postings go
through :meth:`CreditInsuranceCover._check_documents`, which adds the
documents to it; :meth:`CreditInsuranceCover._allocate_insured_amounts` shares
each buyer's limit among its open invoices.
"""

import datetime
import logging
from collections import defaultdict
from dataclasses import dataclass

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.tools import SQL
from odoo.tools.misc import format_amount

_logger = logging.getLogger(__name__)

# Why a buyer without a named limit gets no discretionary cover (DOMAIN.md,
# "Rules the policies state": DCL needs the policy's conditions; never private
# persons; affiliates and public buyers as the policy says). The first three
# put the buyer outside the policy altogether.
NO_COVER_REASONS = [
    ("private_person", "Private person: no discretionary cover"),
    ("public_buyer", "Public buyer: no discretionary cover under this policy"),
    ("affiliate", "Affiliate of the seller: no discretionary cover"),
    (
        "no_experience",
        "No discretionary cover: no payment experience nor recent credit report",
    ),
]
EXCLUDED_BUYERS = ("private_person", "public_buyer", "affiliate")


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
    stopped_since: datetime.date | None = None
    no_cover_reason: str = ""  # see NO_COVER_REASONS
    added_limit: float = 0.0  # part of ``limit`` another policy adds

    def stopped_on(self, day):
        """Whether deliveries of ``day`` fall under the stop of deliveries."""
        return self.stopped and (not self.stopped_since or self.stopped_since <= day)

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
    the company currency at ``date``; the limit checked is the one in force on
    ``delivery_date`` (today when empty): an order delivered after an
    announced reduction is checked against the reduced amount.
    """

    record: models.BaseModel
    partner: models.BaseModel
    date: datetime.date
    amounts: dict
    delivery_date: datetime.date | None = None


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
    def refused_invoice(self):
        """An invoice is refused above the limit of a blocking policy; under a
        stop of deliveries it is posted, and not insured."""
        return (
            not self.stopped
            and self.over_limit
            and self.cover.enforcement_mode == "block"
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
    "res.partner": [
        "commercial_partner_id",
        "is_company",
        "credit_insurance_stop",
        "credit_insurance_stop_date",
        "credit_insurance_public_buyer",
        "credit_insurance_affiliate",
        "credit_insurance_credit_report_date",
    ],
    "res.company": ["partner_id"],
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
        "discretionary_condition",
        "discretionary_exclude_public",
        "discretionary_exclude_affiliates",
        "experience_min_amount",
        "experience_payment_days",
        "experience_months",
        "credit_report_months",
        "private_buyers_insured",
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
    "account.move": [
        "amount_untaxed",
        "amount_total",
        "amount_total_signed",
        "state",
        "move_type",
        "payment_state",
        "invoice_date_due",
        "commercial_partner_id",
        "company_id",
    ],
    "account.partial.reconcile": ["debit_move_id", "max_date"],
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
        rate_date=None,
    ):
        """``(covers, {partner id: buyer id})``, see :meth:`_get_buyer_covers`;
        ``rate_date`` converts the exposure at another date than the limits'."""
        partners = partners._origin
        if not partners:
            return {}, {}
        company = self.env.company.sudo()
        date = fields.Date.to_date(date) or fields.Date.context_today(self)
        rate_date = fields.Date.to_date(rate_date) or date
        rows = self._cover_rows(
            company, date, partners, exclude_moves, exclude_orders, insured_only, lock
        )
        buyer_of, policies, decisions, stopped = {}, [], {}, {}
        profiles, experience = {}, {}
        receivables, uninvoiced = defaultdict(dict), defaultdict(dict)
        for kind, buyer_id, currency_id, gross, net, data in rows:
            if kind == "buyer":
                buyer_of[data["partner_id"]] = buyer_id
            elif kind == "policy":
                policies.append(data)
            elif kind == "decision":
                decisions.setdefault(buyer_id, []).append(data)
            elif kind == "stop":
                stopped[buyer_id] = fields.Date.to_date(data["date"])
            elif kind == "profile":
                profiles[buyer_id] = data
            elif kind == "experience":
                experience[buyer_id, data["policy_id"]] = gross or 0.0
            else:
                amounts = receivables if kind == "receivable" else uninvoiced
                amounts[buyer_id][currency_id] = (gross or 0.0, net or 0.0)
        terms = self._cover_terms(
            sorted(set(buyer_of.values())), policies, decisions, company, date
        )
        currency_ids = {
            row["currency_id"]
            for policy, decision, added in terms.values()
            for row in (policy, decision, *(row for pair in added for row in pair))
            if row
        }
        to_company = self._conversion_rates(company, date, currency_ids)
        exposure_rates = self._conversion_rates(
            company,
            rate_date,
            {
                currency_id
                for amounts in (*receivables.values(), *uninvoiced.values())
                for currency_id in amounts
            },
        )
        Policy = self.env["credit.insurance.policy"].sudo()
        Limit = self.env["credit.insurance.limit"].sudo()
        covers = {}
        for buyer_id, (policy, decision, added) in terms.items():
            profile = profiles.get(buyer_id, {})
            limit, coverage, reason = (
                self._layer_cover(
                    policy, decision, profile, experience, buyer_id, to_company, date
                )
                if policy
                else (0.0, 0.0, "")
            )
            added_limit = sum(
                self._layer_cover(
                    added_policy,
                    added_decision,
                    profile,
                    experience,
                    buyer_id,
                    to_company,
                    date,
                )[0]
                for added_policy, added_decision in added
            )
            if (
                reason in EXCLUDED_BUYERS
                and not added_limit
                # A policy may insure private persons, on named limits only.
                and not (
                    reason == "private_person" and policy["private_buyers_insured"]
                )
            ):
                policy = None  # outside the policy: not insured, not blocked
            vat_included = not policy or policy["vat_covered"]
            covers[buyer_id] = BuyerCover(
                buyer_id=buyer_id,
                policy=Policy.browse(policy["id"] if policy else ()),
                decision=Limit.browse(decision["id"] if decision else ()),
                limit=company.currency_id.round(limit + added_limit),
                coverage_pct=coverage or 0.0,
                receivables=self._sum_converted(
                    receivables[buyer_id], exposure_rates, vat_included, company
                ),
                uninvoiced=self._sum_converted(
                    uninvoiced[buyer_id], exposure_rates, vat_included, company
                ),
                vat_included=vat_included,
                stopped=buyer_id in stopped,
                enforcement_mode=policy["enforcement_mode"] if policy else False,
                stopped_since=stopped.get(buyer_id),
                no_cover_reason=reason,
                added_limit=company.currency_id.round(added_limit),
            )
        return covers, buyer_of

    @api.model
    def _layer_cover(
        self, policy, decision, profile, experience, buyer_id, to_company, date
    ):
        """``(limit, coverage %, why no discretionary cover)`` one policy
        gives a buyer: its named decision, else its discretionary limit when
        the buyer meets the policy's conditions. Amounts in company currency."""
        if decision:
            return (
                (decision["insured_amount"] or 0.0)
                * to_company[decision["currency_id"]],
                decision["coverage_pct"],
                "",
            )
        reason = self._discretionary_refusal(
            policy,
            profile,
            experience.get((buyer_id, policy["id"]), 0.0),
            to_company,
            date,
        )
        if reason:
            return 0.0, 0.0, reason
        return (
            (policy["discretionary_limit"] or 0.0) * to_company[policy["currency_id"]],
            policy["discretionary_coverage_pct"],
            "",
        )

    @api.model
    def _discretionary_refusal(self, policy, profile, largest_paid, to_company, date):
        """Why ``policy`` gives the buyer no discretionary cover on ``date``
        (a code of NO_COVER_REASONS), or ''.

        ``profile`` is the buyer's row of :meth:`_cover_query`,
        ``largest_paid`` its largest invoice (company currency) paid in time
        within the policy's months.
        """
        if not profile.get("is_company"):
            return "private_person"
        if policy["discretionary_exclude_public"] and profile.get("public"):
            return "public_buyer"
        if policy["discretionary_exclude_affiliates"] and profile.get("affiliate"):
            return "affiliate"
        if policy["discretionary_condition"] != "experience":
            return ""
        report = fields.Date.to_date(profile.get("credit_report_date"))
        if (
            report
            and date - relativedelta(months=policy["credit_report_months"])
            < report
            <= date
        ):
            return ""
        minimum = (policy["experience_min_amount"] or 0.0) * to_company[
            policy["currency_id"]
        ]
        if largest_paid and largest_paid >= minimum:
            return ""
        return "no_experience"

    @api.model
    def _cover_terms(self, buyer_ids, policies, decisions, company, date):
        """``{buyer id: (policy, decision, added)}``: which policy and which
        named decision (rows of :meth:`_cover_query`, ``None`` when none) give
        each buyer its cover, in ``buyer_ids`` order; ``added`` are
        ``(policy, decision)`` pairs whose limits add to it (another policy's
        cover on top, as an export policy's).

        ``policies`` are the policies in force; ``decisions`` maps a buyer to
        its decisions in force, the latest of each policy. A buyer's latest
        decision applies; without one, the global policy covers it.
        """
        policy_of = {policy["id"]: policy for policy in policies}
        global_policy = self._global_policy(policies)
        terms = {}
        for buyer_id in buyer_ids:
            decision = self._latest_decision(decisions.get(buyer_id, ()))
            terms[buyer_id] = (
                (policy_of[decision["policy_id"]], decision, ())
                if decision
                else (global_policy, None, ())
            )
        return terms

    @staticmethod
    def _global_policy(policies):
        """The global policy among policy rows (one at a time), or None."""
        return max(
            (policy for policy in policies if policy["policy_type"] == "global"),
            key=lambda p: (p["date_start"], p["id"]),
            default=None,
        )

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
        orders not yet invoiced, stops of deliveries, and what the conditions
        of the discretionary cover look at (the buyer's profile and payment
        experience). The arguments are values, or the function's parameters
        (SQL)."""
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
                       vat_covered, enforcement_mode, discretionary_condition,
                       discretionary_exclude_public,
                       discretionary_exclude_affiliates, experience_min_amount,
                       experience_payment_days, experience_months,
                       credit_report_months, private_buyers_insured
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
            SELECT 'stop', id, NULL, NULL, NULL,
                   jsonb_build_object(
                       'date', credit_insurance_stop_date ->> %(company_id)s::text)
              FROM res_partner
             WHERE id IN (SELECT buyer_id FROM buyer)
               -- company-dependent: one value per company id
               AND (credit_insurance_stop ->> %(company_id)s::text)::boolean
             UNION ALL
            -- what the conditions of the discretionary cover look at
            SELECT 'profile', id, NULL, NULL, NULL,
                   jsonb_build_object(
                       'is_company', COALESCE(is_company, FALSE),
                       'public', COALESCE(credit_insurance_public_buyer, FALSE),
                       'affiliate', COALESCE(credit_insurance_affiliate, FALSE)
                            OR id IN (SELECT partner_id FROM res_company),
                       'credit_report_date', credit_insurance_credit_report_date)
              FROM res_partner
             WHERE id IN (SELECT buyer_id FROM buyer)
               AND EXISTS (SELECT FROM policy)
             UNION ALL
            -- payment experience: the largest invoice paid within the days
            -- allowed after its due date, in the policy's last months
            SELECT 'experience', move.commercial_partner_id, NULL,
                   MAX(move.amount_total_signed), NULL,
                   jsonb_build_object('policy_id', policy.id)
              FROM policy
              JOIN account_move move
                ON move.commercial_partner_id IN (SELECT buyer_id FROM buyer)
               AND move.company_id = %(company_id)s
               AND move.move_type = 'out_invoice'
               AND move.state = 'posted'
               AND move.payment_state IN ('paid', 'in_payment')
             CROSS JOIN LATERAL (
                    SELECT MAX(reconciled.max_date) AS paid_on
                      FROM account_move_line line
                      JOIN account_partial_reconcile reconciled
                        ON reconciled.debit_move_id = line.id
                     WHERE line.move_id = move.id
                   ) payment
             WHERE policy.discretionary_condition = 'experience'
               AND payment.paid_on <= move.invoice_date_due
                                      + policy.experience_payment_days
               AND payment.paid_on <= %(date)s
               AND payment.paid_on > %(date)s::date
                   - make_interval(months => policy.experience_months)
          GROUP BY move.commercial_partner_id, policy.id
            """,
            partner_ids=partner_ids,
            policies=self._policies_query(company_id, date),
            decisions=decisions,
            receivables=self._open_receivables_query(
                company_id, exposed, excluded_moves
            ),
            orders=self._uninvoiced_orders_query(company_id, exposed, excluded_orders),
            company_id=company_id,
            date=date,
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
        today = fields.Date.context_today(self)
        partners = self.env["res.partner"].union(
            *(document.partner for document in documents)
        )
        # The limits in force on each delivery date (usually one: today); the
        # exposure is today's.
        covers_on = {}
        for day in sorted({document.delivery_date or today for document in documents}):
            covers_on[day] = self._compute_covers(
                partners,
                date=day,
                exclude_moves=exclude_moves,
                exclude_orders=exclude_orders,
                insured_only=True,
                lock=lock and not covers_on,
                rate_date=today,
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
            covers, buyer_of = covers_on[document.delivery_date or today]
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

    # ------------------------------------------------- insured part of invoices

    @api.model
    def _allocate_insured_amounts(self, buyers):
        """Share each buyer's limits among its open invoices and record the
        insured part of each (``credit_insurance_insured_amount``).

        The rule (readme/USAGE.md, "Insured part of an invoice"): the open
        invoices of a buyer under a policy, oldest delivery first, each take
        what its own limit (the one in force on its delivery date, fixed at
        posting) leaves after the insured parts of the older ones, up to what
        is still owed on it (VAT as the policy says). An invoice over the limit
        thus becomes insured as older invoices are paid; a reduction only
        binds the invoices delivered after it. Disputed invoices, invoices
        under a stop of deliveries, with a term above the maximum or whose
        cover is lost take nothing.

        One query for any batch of buyers, one update of the invoices whose
        insured part changed. Called when invoices are posted or reset, when
        payments are reconciled or undone, when disputes, lost covers or
        late decisions change what is insured.
        """
        buyer_ids = buyers._origin.commercial_partner_id.ids
        if not buyer_ids:
            return
        Move = self.env["account.move"]
        Move.flush_model(
            [
                "commercial_partner_id",
                "company_id",
                "move_type",
                "state",
                "invoice_date",
                "amount_residual_signed",
                "amount_total_signed",
                "amount_untaxed_signed",
                "credit_insurance_policy_id",
                "credit_insurance_delivery_limit",
                "credit_insurance_insurable_amount",
                "credit_insurance_insured_amount",
                "credit_insurance_stopped",
                "credit_insurance_term_exceeded",
                "credit_insurance_cover_lost",
                "credit_insurance_disputed",
            ]
        )
        self.env["credit.insurance.policy"].flush_model(["vat_covered"])
        rows = self.env.execute_query(
            SQL(
                """
                SELECT move.id, move.company_id, move.commercial_partner_id,
                       move.credit_insurance_policy_id,
                       COALESCE(move.credit_insurance_delivery_limit, 0),
                       COALESCE(move.credit_insurance_insurable_amount, 0),
                       move.amount_residual_signed
                       * CASE WHEN policy.vat_covered OR move.amount_total_signed = 0
                              THEN 1
                              ELSE move.amount_untaxed_signed
                                   / move.amount_total_signed END,
                       move.state = 'posted'
                       AND policy.id IS NOT NULL
                       AND NOT COALESCE(move.credit_insurance_stopped, FALSE)
                       AND NOT COALESCE(move.credit_insurance_term_exceeded, FALSE)
                       AND NOT COALESCE(move.credit_insurance_cover_lost, FALSE)
                       AND NOT COALESCE(move.credit_insurance_disputed, FALSE),
                       COALESCE(move.credit_insurance_insured_amount, 0)
                  FROM account_move move
             LEFT JOIN credit_insurance_policy policy
                    ON policy.id = move.credit_insurance_policy_id
                 WHERE move.commercial_partner_id = ANY(%(buyer_ids)s)
                   AND move.move_type = 'out_invoice'
                   AND (move.state = 'posted'
                        AND policy.id IS NOT NULL
                        AND move.amount_residual_signed != 0
                        OR COALESCE(move.credit_insurance_insured_amount, 0) != 0)
              ORDER BY move.company_id, move.commercial_partner_id,
                       move.credit_insurance_policy_id, move.invoice_date, move.id
                """,
                buyer_ids=buyer_ids,
            )
        )
        currencies = {
            company.id: company.currency_id
            for company in self.env["res.company"]
            .sudo()
            .browse({row[1] for row in rows})
        }
        used = defaultdict(float)  # {(company, buyer, policy): insured so far}
        changed = {}
        for (
            move_id,
            company_id,
            buyer_id,
            policy_id,
            limit,
            insurable,
            owed,
            takes_cover,
            recorded,
        ) in rows:
            currency = currencies[company_id]
            insured = 0.0
            if takes_cover:
                key = (company_id, buyer_id, policy_id)
                room = max(limit - used[key], 0.0)
                insured = currency.round(min(max(owed, 0.0), insurable, room))
                used[key] += insured
            if currency.compare_amounts(insured, recorded):
                changed[move_id] = insured
        if not changed:
            return
        self.env.cr.execute(
            SQL(
                """
                UPDATE account_move move
                   SET credit_insurance_insured_amount = insured.amount
                  FROM (VALUES %s) AS insured(id, amount)
                 WHERE move.id = insured.id
                """,
                SQL(", ").join(
                    SQL("(%s, %s::numeric)", move_id, amount)
                    for move_id, amount in changed.items()
                ),
            )
        )
        moves = Move.browse(changed)
        moves.invalidate_recordset(["credit_insurance_insured_amount"])
        moves.modified(["credit_insurance_insured_amount"])

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
