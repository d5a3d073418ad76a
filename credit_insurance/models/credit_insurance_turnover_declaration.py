import base64
import csv
import io
import uuid
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
        help="The policy's rate when the turnover was computed.",
    )
    premium_amount = fields.Monetary(
        string="Premium on turnover", compute="_compute_amounts", store=True
    )
    minimum_premium_share = fields.Monetary(
        string="Minimum premium for the period",
        readonly=True,
        help="The policy's yearly minimum premium, pro rata of the period.",
    )
    premium_due = fields.Monetary(
        string="Premium due",
        compute="_compute_amounts",
        store=True,
        help="Premium on turnover, and at least the period's share of the "
        "minimum premium.",
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

    @api.depends("line_ids.turnover_amount", "premium_rate", "minimum_premium_share")
    def _compute_amounts(self):
        for declaration in self:
            turnover = sum(declaration.line_ids.mapped("turnover_amount"))
            premium = declaration.currency_id.round(
                turnover * declaration.premium_rate / 100
            )
            declaration.turnover_amount = turnover
            declaration.premium_amount = premium
            declaration.premium_due = max(premium, declaration.minimum_premium_share)

    # ------------------------------------------------------------ computation

    def action_compute(self):
        """Compute (again) the turnover of draft declarations."""
        self._check_manager()
        if self.filtered(lambda d: d.state != "draft"):
            raise UserError(self.env._("A declared turnover cannot be computed again."))
        for declaration in self:
            policy = declaration.policy_id
            months = PERIOD_MONTHS[policy.turnover_periodicity]
            declaration.write(
                {
                    "line_ids": [fields.Command.clear()]
                    + [
                        fields.Command.create(values)
                        for values in declaration._turnover_by_country()
                    ],
                    "premium_rate": policy.premium_rate,
                    "minimum_premium_share": policy.currency_id.round(
                        policy.minimum_premium * months / 12
                    ),
                    "date_computed": fields.Datetime.now(),
                    "last_error": False,
                }
            )
        return True

    def _turnover_by_country(self):
        """Line values of the period: one query.

        Counts the posted customer invoices insured under the policy (not
        those whose term exceeds the policy's maximum, which it does not
        insure) and the credit notes reversing them; not the sales to the
        seller's own companies. VAT included only when the policy covers it.
        """
        self.ensure_one()
        policy = self.policy_id
        for model in ("account.move", "res.partner", "res.company"):
            self.env[model].flush_model()
        amount = (
            "amount_total_signed" if policy.vat_covered else "amount_untaxed_signed"
        )
        rows = self.env.execute_query(
            SQL(
                """
                SELECT buyer.country_id,
                       COUNT(DISTINCT move.commercial_partner_id),
                       COUNT(*) FILTER (WHERE move.move_type = 'out_invoice'),
                       COUNT(*) FILTER (WHERE move.move_type = 'out_refund'),
                       SUM(%(amount)s)
                  FROM account_move move
                  JOIN res_partner buyer ON buyer.id = move.commercial_partner_id
             LEFT JOIN account_move origin ON origin.id = move.reversed_entry_id
                 WHERE move.company_id = %(company_id)s
                   AND move.state = 'posted'
                   AND move.invoice_date BETWEEN %(date_from)s AND %(date_to)s
                   AND CASE move.move_type
                       WHEN 'out_invoice' THEN
                            move.credit_insurance_policy_id = %(policy_id)s
                            AND NOT COALESCE(move.credit_insurance_term_exceeded, FALSE)
                       WHEN 'out_refund' THEN
                            origin.credit_insurance_policy_id = %(policy_id)s
                       ELSE FALSE END
                   AND move.commercial_partner_id NOT IN (
                        SELECT partner_id FROM res_company)
              GROUP BY buyer.country_id
              ORDER BY buyer.country_id
                """,
                amount=SQL.identifier("move", amount),
                company_id=policy.company_id.id,
                policy_id=policy.id,
                date_from=self.date_from,
                date_to=self.date_to,
            )
        )
        company_currency = policy.company_id.currency_id
        return [
            {
                "country_id": country_id,
                "buyer_count": buyers,
                "invoice_count": invoices,
                "refund_count": refunds,
                "turnover_amount": company_currency._convert(
                    total, policy.currency_id, policy.company_id, self.date_to
                ),
            }
            for country_id, buyers, invoices, refunds, total in rows
        ]

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
            by_country={
                line.country_id.code or "": line.turnover_amount
                for line in self.line_ids
            },
            premium=self.premium_due,
        )

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
