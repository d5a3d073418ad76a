import base64
import csv
import io
import uuid
from collections import defaultdict
from datetime import timedelta

import requests
from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..providers.base import TurnoverDeclaration
from ..providers.errors import InsurerError

PERIOD_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}
# Declarations are created for the periods closed in the last year only: a
# policy entered with an old start date must not produce years of paperwork.
CATCH_UP_DAYS = 366


class CreditInsuranceTurnoverDeclaration(models.Model):
    """The insured turnover of one policy period, on which the premium is due.

    Computed from the posted customer invoices insured under the policy and
    the credit notes that reverse them, by buyer country; declared to the
    insurer through its API when it offers one, otherwise exported (CSV,
    XLSX) for its portal and marked declared by hand.

    Each invoice and credit note counts in one declaration only
    (``counted_move_ids``): one posted after its period was declared counts
    in the next declaration, as a regularisation. The premium of a period is
    an advance; the declaration that closes a policy year adds what the
    year's premiums lack to reach the policy's minimum premium (DOMAIN.md,
    "Minimum premium is annual (advance, then adjustment)").
    """

    _name = "credit.insurance.turnover.declaration"
    _description = "Turnover declaration"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "date_from desc, policy_id"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name", store=True)
    policy_id = fields.Many2one(
        "credit.insurance.policy",
        required=True,
        ondelete="restrict",
        check_company=True,
        readonly=True,
    )
    company_id = fields.Many2one(
        related="policy_id.company_id", store=True, precompute=True
    )
    insurer_id = fields.Many2one(related="policy_id.insurer_id", store=True)
    currency_id = fields.Many2one(related="policy_id.currency_id", store=True)
    date_from = fields.Date(string="Period start", required=True, readonly=True)
    date_to = fields.Date(string="Period end", required=True, readonly=True)
    date_due = fields.Date(
        string="Due date",
        compute="_compute_date_due",
        store=True,
        help="Last day to declare the period to the insurer.",
    )
    state = fields.Selection(
        [("draft", "To declare"), ("declared", "Declared")],
        default="draft",
        required=True,
        tracking=True,
    )
    line_ids = fields.One2many(
        "credit.insurance.turnover.declaration.line", "declaration_id", readonly=True
    )
    turnover_amount = fields.Monetary(
        string="Insured turnover", compute="_compute_amounts", store=True
    )
    premium_rate = fields.Float(
        string="Premium rate (%)",
        digits=(16, 4),
        readonly=True,
        help="The policy's rate when the turnover was computed (countries "
        "with a rate of their own: see the lines).",
    )
    premium_amount = fields.Monetary(
        string="Premium on turnover", compute="_compute_amounts", store=True
    )
    closes_policy_year = fields.Boolean(
        string="Closes the policy year",
        compute="_compute_closes_policy_year",
        store=True,
        help="The last period of a policy year: its declaration carries the "
        "year-end adjustment to the minimum premium.",
    )
    minimum_premium_adjustment = fields.Monetary(
        string="Year-end adjustment to the minimum premium",
        readonly=True,
        help="What the premiums of the policy year lack to reach the policy's "
        "minimum premium, due once, with the declaration closing the year.",
    )
    premium_due = fields.Monetary(
        string="Premium due",
        compute="_compute_amounts",
        store=True,
        help="Premium on the period's turnover, plus the year-end adjustment "
        "to the minimum premium on the declaration closing the policy year.",
    )
    counted_move_ids = fields.Many2many(
        "account.move",
        "credit_insurance_turnover_declaration_move_rel",
        "declaration_id",
        "move_id",
        string="Invoices and credit notes counted",
        readonly=True,
        copy=False,
        help="Each invoice and credit note counts in one declaration only.",
    )
    date_computed = fields.Datetime(string="Computed on", readonly=True)
    idempotency_key = fields.Char(
        string="Idempotency key",
        default=lambda self: str(uuid.uuid4()),
        required=True,
        readonly=True,
        copy=False,
        help="Our reference of the declaration at the insurer: sending it "
        "again never declares the period twice.",
    )
    insurer_reference = fields.Char(readonly=True, copy=False, tracking=True)
    date_declared = fields.Datetime(string="Declared on", readonly=True, copy=False)
    declared_by_id = fields.Many2one(
        "res.users", string="Declared by", readonly=True, copy=False
    )
    last_error = fields.Text(readonly=True, copy=False)

    _sql_constraints = [
        (
            "period_unique",
            "UNIQUE(policy_id, date_from)",
            "This policy already has a turnover declaration for this period.",
        ),
        (
            "period_order",
            "CHECK(date_to >= date_from)",
            "A period cannot end before it starts.",
        ),
    ]

    @api.depends("policy_id.name", "date_from", "date_to")
    def _compute_name(self):
        for declaration in self:
            declaration.name = self.env._(
                "%(policy)s, %(start)s to %(end)s",
                policy=declaration.policy_id.name or "",
                start=declaration.date_from or "",
                end=declaration.date_to or "",
            )

    @api.depends("date_to", "policy_id.turnover_declaration_days")
    def _compute_date_due(self):
        for declaration in self:
            declaration.date_due = declaration.date_to and (
                declaration.date_to
                + timedelta(days=declaration.policy_id.turnover_declaration_days)
            )

    @api.depends(
        "line_ids.turnover_amount",
        "line_ids.premium_amount",
        "minimum_premium_adjustment",
    )
    def _compute_amounts(self):
        for declaration in self:
            premium = sum(declaration.line_ids.mapped("premium_amount"))
            declaration.turnover_amount = sum(
                declaration.line_ids.mapped("turnover_amount")
            )
            declaration.premium_amount = premium
            declaration.premium_due = premium + declaration.minimum_premium_adjustment

    @api.depends("date_to", "policy_id.date_start", "policy_id.date_end")
    def _compute_closes_policy_year(self):
        for declaration in self:
            policy = declaration.policy_id
            declaration.closes_policy_year = bool(
                declaration.date_to
                and policy.date_start
                and declaration.date_to
                in (policy._policy_year(declaration.date_to)[1], policy.date_end)
            )

    # ------------------------------------------------------------ computation

    def action_compute(self):
        """Compute (again) the turnover of draft declarations."""
        self._check_manager()
        if self.filtered(lambda d: d.state != "draft"):
            raise UserError(self.env._("A declared turnover cannot be computed again."))
        for declaration in self.sorted("date_from"):
            lines, moves = declaration._insured_turnover()
            declaration.write(
                {
                    "line_ids": [fields.Command.clear()]
                    + [fields.Command.create(values) for values in lines],
                    "counted_move_ids": [fields.Command.set(moves)],
                    "premium_rate": declaration.policy_id.premium_rate,
                    "minimum_premium_adjustment": 0.0,
                    "date_computed": fields.Datetime.now(),
                    "last_error": False,
                }
            )
            declaration.minimum_premium_adjustment = (
                declaration._minimum_premium_adjustment()
            )
        return True

    def _minimum_premium_adjustment(self):
        """What the premiums of the policy year lack to reach the minimum
        premium: due with the declaration closing the year, nothing before.
        The year's other declarations count as computed now."""
        self.ensure_one()
        policy = self.policy_id
        if not self.closes_policy_year or not policy.minimum_premium:
            return 0.0
        first, last = policy._policy_year(self.date_from)
        year = self.search(
            [
                ("policy_id", "=", policy.id),
                ("date_from", ">=", first),
                ("date_to", "<=", last),
            ]
        )
        premiums = sum(year.mapped("premium_amount"))
        return max(policy.currency_id.round(policy.minimum_premium - premiums), 0.0)

    def _insured_turnover(self):
        """``(line values, ids of the moves counted)`` of the period.

        Counts the posted customer invoices insured under the policy and the
        credit notes reversing an invoice that was in the insured turnover,
        dated in the period, or dated in an already declared period and never
        counted (a regularisation). Left out, as the policy does not insure
        them: terms over the policy's maximum, sales to the seller's own
        companies, sales to private persons unless the policy insures them.
        VAT included only when the policy covers it. One query.
        """
        self.ensure_one()
        policy = self.policy_id
        self.flush_model()
        for model in ("account.move", "res.partner", "res.company"):
            self.env[model].flush_model()
        amount = (
            "amount_total_signed" if policy.vat_covered else "amount_untaxed_signed"
        )
        rows = self.env.execute_query(
            SQL(
                """
                WITH counted AS (
                    SELECT rel.move_id
                      FROM credit_insurance_turnover_declaration_move_rel rel
                      JOIN credit_insurance_turnover_declaration other
                        ON other.id = rel.declaration_id
                     WHERE other.policy_id = %(policy_id)s
                       AND other.id != %(declaration_id)s
                ), declared AS (
                    SELECT date_from, date_to
                      FROM credit_insurance_turnover_declaration
                     WHERE policy_id = %(policy_id)s
                       AND state = 'declared'
                       AND id != %(declaration_id)s
                ), insured_invoice AS (
                    SELECT move.id
                      FROM account_move move
                      JOIN res_partner buyer ON buyer.id = move.commercial_partner_id
                     WHERE move.credit_insurance_policy_id = %(policy_id)s
                       AND move.move_type = 'out_invoice'
                       AND NOT COALESCE(move.credit_insurance_term_exceeded, FALSE)
                       AND (%(private_insured)s OR buyer.is_company)
                       AND move.commercial_partner_id NOT IN (
                            SELECT partner_id FROM res_company)
                ), sale AS (
                    SELECT move.id, move.move_type, move.reversed_entry_id,
                           move.commercial_partner_id,
                           move.invoice_date NOT BETWEEN %(date_from)s
                                                     AND %(date_to)s AS regularisation,
                           %(amount)s AS amount
                      FROM account_move move
                     WHERE move.company_id = %(company_id)s
                       AND move.state = 'posted'
                       AND move.move_type IN ('out_invoice', 'out_refund')
                       AND move.id NOT IN (SELECT move_id FROM counted)
                       AND (move.invoice_date BETWEEN %(date_from)s AND %(date_to)s
                            OR EXISTS (SELECT FROM declared
                                        WHERE move.invoice_date
                                              BETWEEN declared.date_from
                                                  AND declared.date_to))
                )
                SELECT sale.id, buyer.country_id, sale.commercial_partner_id,
                       sale.move_type, sale.regularisation, sale.amount
                  FROM sale
                  JOIN res_partner buyer ON buyer.id = sale.commercial_partner_id
                 WHERE CASE sale.move_type
                       WHEN 'out_invoice' THEN
                            sale.id IN (SELECT id FROM insured_invoice)
                       ELSE sale.reversed_entry_id IN (SELECT id FROM insured_invoice)
                            AND (sale.reversed_entry_id IN (SELECT move_id FROM counted)
                                 OR sale.reversed_entry_id IN (SELECT id FROM sale))
                       END
                """,
                amount=SQL.identifier("move", amount),
                company_id=policy.company_id.id,
                policy_id=policy.id,
                declaration_id=self.id,
                private_insured=policy.private_buyers_insured,
                date_from=self.date_from,
                date_to=self.date_to,
            )
        )
        groups = {}
        for __, country_id, buyer_id, move_type, regularisation, total in rows:
            group = groups.setdefault(
                (country_id, regularisation),
                {"buyers": set(), "invoices": 0, "refunds": 0, "amount": 0.0},
            )
            group["buyers"].add(buyer_id)
            group["invoices" if move_type == "out_invoice" else "refunds"] += 1
            group["amount"] += total
        company = policy.company_id
        Country = self.env["res.country"]
        lines = []
        for (country_id, regularisation), group in sorted(
            groups.items(), key=lambda item: (item[0][1], item[0][0] or 0)
        ):
            turnover = company.currency_id._convert(
                group["amount"], policy.currency_id, company, self.date_to
            )
            rate = policy._premium_rate(Country.browse(country_id))
            lines.append(
                {
                    "country_id": country_id,
                    "regularisation": regularisation,
                    "buyer_count": len(group["buyers"]),
                    "invoice_count": group["invoices"],
                    "refund_count": group["refunds"],
                    "turnover_amount": turnover,
                    "premium_rate": rate,
                    "premium_amount": policy.currency_id.round(turnover * rate / 100),
                }
            )
        return lines, [row[0] for row in rows]

    # ------------------------------------------------------------ declaring

    def action_declare(self):
        """Declare through the insurer's API; manual insurers: mark declared.

        A failed call is recorded on the declaration and shown; sending again
        is safe, the insurer recognises the declaration by its key.
        """
        self._check_manager()
        self.ensure_one()
        if self.state != "draft":
            raise UserError(self.env._("%(name)s is already declared.", name=self.name))
        if not self.date_computed:
            self.action_compute()
        insurer = self.insurer_id
        if not insurer.connected:
            self._mark_declared(False)
            self.message_post(
                body=self.env._(
                    "Declared by hand in the insurer's portal (premium due: "
                    "%(premium)s).",
                    premium=self.currency_id.format(self.premium_due),
                )
            )
            return True
        try:
            with requests.Session() as session:
                answer = insurer._get_provider(session).declare_turnover(
                    self._provider_declaration()
                )
        except InsurerError as error:
            self.last_error = insurer._error_text(error)
            self.message_post(
                body=self.env._(
                    "%(insurer)s did not take the declaration: %(error)s",
                    insurer=insurer.name,
                    error=self.last_error,
                )
            )
            return {
                "type": "ir.actions.client",
                "tag": "display_notification",
                "params": {
                    "type": "danger",
                    "sticky": True,
                    "message": self.env._(
                        "%(insurer)s did not take the declaration: %(error)s "
                        "Try again later, or export it for the insurer's portal.",
                        insurer=insurer.name,
                        error=self.last_error,
                    ),
                    "next": {"type": "ir.actions.act_window_close"},
                },
            }
        self._mark_declared(answer.insurer_reference)
        self.message_post(
            body=self.env._(
                "Declared to %(insurer)s under reference %(reference)s: turnover "
                "%(turnover)s, premium due %(premium)s.",
                insurer=insurer.name,
                reference=answer.insurer_reference,
                turnover=self.currency_id.format(self.turnover_amount),
                premium=self.currency_id.format(self.premium_due),
            )
        )
        return True

    def _provider_declaration(self):
        return TurnoverDeclaration(
            idempotency_key=self.idempotency_key,
            policy_number=self.policy_id.name,
            date_from=self.date_from,
            date_to=self.date_to,
            currency=self.currency_id.name,
            by_country=self._turnover_by_country_code(),
            premium=self.premium_due,
        )

    def _turnover_by_country_code(self):
        """``{country code: turnover}``, regularisations included."""
        by_country = defaultdict(float)
        for line in self.line_ids:
            by_country[line.country_id.code or ""] += line.turnover_amount
        return dict(by_country)

    def _mark_declared(self, insurer_reference):
        self.write(
            {
                "state": "declared",
                "insurer_reference": insurer_reference,
                "date_declared": fields.Datetime.now(),
                "declared_by_id": self.env.uid,
                "last_error": False,
            }
        )
        self.activity_unlink(["mail.mail_activity_data_todo"])

    def action_reset_to_draft(self):
        """Undo a declaration recorded by mistake (by hand only)."""
        self._check_manager()
        if self.filtered("insurer_reference"):
            raise UserError(
                self.env._(
                    "The insurer has received this declaration: correct it in "
                    "the insurer's portal."
                )
            )
        self.write({"state": "draft", "date_declared": False, "declared_by_id": False})
        return True

    def _check_manager(self):
        self.env.company._check_credit_insurance_manager(
            self.env._("Only credit insurance managers can declare turnover.")
        )

    # ------------------------------------------------------------ exports

    EXPORT_HEADER = (
        "policy",
        "period_start",
        "period_end",
        "country",
        "buyers",
        "invoices",
        "credit_notes",
        "insured_turnover",
        "currency",
        "regularisation",
        "premium_rate",
        "premium",
    )

    def _export_rows(self):
        self.ensure_one()
        return [
            (
                self.policy_id.name,
                self.date_from.isoformat(),
                self.date_to.isoformat(),
                line.country_id.code or "",
                line.buyer_count,
                line.invoice_count,
                line.refund_count,
                line.turnover_amount,
                self.currency_id.name,
                int(line.regularisation),
                line.premium_rate,
                line.premium_amount,
            )
            for line in self.line_ids
        ]

    def action_export_csv(self):
        self.ensure_one()
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";")
        writer.writerow(self.EXPORT_HEADER)
        writer.writerows(self._export_rows())
        return self._download("csv", buffer.getvalue().encode(), "text/csv")

    def action_export_xlsx(self):
        import xlsxwriter  # Odoo's own dependency

        self.ensure_one()
        buffer = io.BytesIO()
        workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
        sheet = workbook.add_worksheet(self.env._("Turnover"))
        money = workbook.add_format({"num_format": "#,##0.00"})
        sheet.write_row(0, 0, self.EXPORT_HEADER)
        for row_index, row in enumerate(self._export_rows(), start=1):
            sheet.write_row(row_index, 0, row)
            sheet.write_number(row_index, 7, row[7], money)
            sheet.write_number(row_index, 11, row[11], money)
        workbook.close()
        return self._download(
            "xlsx",
            buffer.getvalue(),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )

    def _download(self, extension, content, mimetype):
        """Keep the exported file on the declaration and download it."""
        if not self.date_computed:
            raise UserError(self.env._("Compute the turnover before exporting it."))
        attachment = self.env["ir.attachment"].create(
            {
                "name": f"turnover_{self.policy_id.name}_{self.date_from}_"
                f"{self.date_to}.{extension}",
                "datas": base64.b64encode(content),
                "mimetype": mimetype,
                "res_model": self._name,
                "res_id": self.id,
            }
        )
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content/{attachment.id}?download=true",
            "target": "download",
        }

    # ------------------------------------------------------------ cron

    @api.model
    def _cron_prepare_declarations(self):
        """Create and compute each closed period's declaration, and remind the
        credit managers of those still to declare after their due date."""
        today = fields.Date.context_today(self)
        created = self.browse()
        policies = self.env["credit.insurance.policy"].search(
            [("active", "=", True), ("date_start", "<", today)]
        )
        existing = set(
            self.search([("policy_id", "in", policies.ids)]).mapped(
                lambda d: (d.policy_id.id, d.date_from)
            )
        )
        for policy in policies:
            for date_from, date_to in closed_periods(policy, today):
                if (policy.id, date_from) not in existing:
                    created |= self.create(
                        {
                            "policy_id": policy.id,
                            "date_from": date_from,
                            "date_to": date_to,
                        }
                    )
        created.sudo().action_compute()
        late = self.search([("state", "=", "draft"), ("date_due", "<", today)])
        late.sudo()._remind()

    def _remind(self):
        """One open to-do per credit manager on each late declaration."""
        todo = self.env.ref("mail.mail_activity_data_todo")
        for declaration in self:
            waiting = declaration.activity_ids.filtered(
                lambda a, t=todo: a.activity_type_id == t
            ).user_id
            for user in declaration.company_id._credit_insurance_managers():
                if user in waiting:
                    continue
                declaration.activity_schedule(
                    "mail.mail_activity_data_todo",
                    date_deadline=declaration.date_due,
                    summary=self.env._("Declare the insured turnover"),
                    note=self.env._(
                        "The turnover of %(name)s was due on %(date)s: %(turnover)s, "
                        "premium %(premium)s.",
                        name=declaration.name,
                        date=declaration.date_due,
                        turnover=declaration.currency_id.format(
                            declaration.turnover_amount
                        ),
                        premium=declaration.currency_id.format(declaration.premium_due),
                    ),
                    user_id=user.id,
                )


def closed_periods(policy, today):
    """``(start, end)`` of the policy's periods closed before ``today`` within
    the catch-up window, aligned on the policy's start; the last one ends
    with the policy."""
    months = PERIOD_MONTHS[policy.turnover_periodicity]
    oldest_end = today - timedelta(days=CATCH_UP_DAYS)
    periods = []
    start = policy.date_start
    while not policy.date_end or start <= policy.date_end:
        end = start + relativedelta(months=months) - timedelta(days=1)
        if policy.date_end:
            end = min(end, policy.date_end)
        if end >= today:
            break
        if end >= oldest_end:
            periods.append((start, end))
        start = end + timedelta(days=1)
    return periods
