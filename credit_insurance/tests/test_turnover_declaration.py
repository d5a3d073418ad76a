"""Turnover declarations: the insured turnover by period and country, the
premium, the periods the job prepares, reminders, declaring through the
sandbox insurer over real HTTP, and the files for the insurer's portal."""

import base64
import csv
import io

import openpyxl
import psycopg2
import requests
from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from ..models.credit_insurance_turnover_declaration import closed_periods
from .common import CreditInsuranceCommon, run_migration, serve_sandbox

MANAGER = "base.group_user,credit_insurance.group_credit_insurance_manager"


@tagged("post_install", "-at_install")
class TestTurnoverDeclaration(CreditInsuranceCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.policy.write(
            {
                "premium_rate": 0.25,
                "minimum_premium": 1200.0,
                "turnover_periodicity": "quarterly",
                "turnover_declaration_days": 15,
            }
        )
        cls.buyer.country_id = cls.env.ref("base.fr")
        cls.german_buyer = cls.env["res.partner"].create(
            {
                "name": "Stoffe GmbH",
                "is_company": True,
                "country_id": cls.env.ref("base.de").id,
            }
        )
        cls.manager = new_test_user(
            cls.env, login="tv_manager", groups=MANAGER, company_id=cls.company.id
        )
        cls.Declaration = cls.env["credit.insurance.turnover.declaration"]

    def declaration(self, date_from="2026-01-01", date_to="2026-03-31"):
        return self.Declaration.create(
            {"policy_id": self.policy.id, "date_from": date_from, "date_to": date_to}
        )

    def by_country(self, declaration):
        return {
            line.country_id.code: (
                line.turnover_amount,
                line.buyer_count,
                line.invoice_count,
                line.refund_count,
            )
            for line in declaration.line_ids
        }

    # ------------------------------------------------------------ turnover

    def test_turnover_by_country_with_credit_notes_and_currencies(self):
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.0)])
        self.make_invoice(1000.0, invoice_date="2026-01-10")
        refunded = self.make_invoice(400.0, invoice_date="2026-02-10")
        refund = refunded._reverse_moves(
            [{"invoice_date": "2026-03-01", "date": "2026-03-01"}]
        )
        refund.action_post()
        # 3,000 EUR at 2 EUR per dollar: 1,500 in the company's dollars.
        self.make_invoice(
            3000.0, buyer=self.german_buyer, invoice_date="2026-03-20", currency=eur
        )
        self.make_invoice(700.0, invoice_date="2025-12-31")  # previous period
        self.make_invoice(800.0, invoice_date="2026-04-01")  # next period
        self.make_invoice(900.0, invoice_date="2026-02-01", post=False)  # draft
        declaration = self.declaration()
        declaration.action_compute()
        self.assertEqual(
            self.by_country(declaration),
            {"FR": (1000.0, 1, 2, 1), "DE": (1500.0, 1, 1, 0)},
        )
        self.assertEqual(declaration.turnover_amount, 2500.0)

    def test_vat_counts_only_when_the_policy_covers_it(self):
        self.make_invoice(1000.0, invoice_date="2026-01-10")
        declaration = self.declaration()
        declaration.action_compute()
        self.assertEqual(declaration.turnover_amount, 1000.0)
        self.policy.vat_covered = True
        declaration.action_compute()
        self.assertEqual(declaration.turnover_amount, 1200.0)

    def test_excluded_sales_term_too_long_and_own_companies(self):
        self.policy.max_credit_days = 60
        self.make_invoice(1000.0, invoice_date="2026-01-10", due_days=90)
        sister = self.env["res.company"].create({"name": "Filiale SAS"})
        self.make_invoice(2000.0, buyer=sister.partner_id, invoice_date="2026-01-10")
        self.make_invoice(500.0, invoice_date="2026-01-10")
        declaration = self.declaration()
        declaration.action_compute()
        self.assertEqual(declaration.turnover_amount, 500.0)

    def test_minimum_premium_is_charged_once_a_year(self):
        """Quarterly declarations, 0.25 % on 100,000 a quarter: each quarter
        pays 250 (an advance); the minimum premium of 1,200 a year is reached
        by one adjustment of 200 on the declaration closing the policy year
        (4 × 250 + 200 = 1,200), not by charging its share every quarter."""
        quarters = [
            ("2026-01-01", "2026-03-31"),
            ("2026-04-01", "2026-06-30"),
            ("2026-07-01", "2026-09-30"),
            ("2026-10-01", "2026-12-31"),
        ]
        declarations = self.Declaration
        for date_from, date_to in quarters:
            self.make_invoice(100000.0, invoice_date=date_from)
            declarations |= self.declaration(date_from, date_to)
        declarations.action_compute()
        self.assertEqual(declarations.mapped("premium_amount"), [250.0] * 4)
        self.assertEqual(
            declarations.mapped("minimum_premium_adjustment"), [0.0, 0.0, 0.0, 200.0]
        )
        self.assertEqual(
            declarations.mapped("premium_due"), [250.0, 250.0, 250.0, 450.0]
        )
        self.assertEqual(sum(declarations.mapped("premium_due")), 1200.0)
        self.assertEqual(
            declarations.mapped("closes_policy_year"), [False, False, False, True]
        )

    def test_no_adjustment_when_the_year_pays_more_than_the_minimum(self):
        """400,000 in the last quarter (1,000) and 100,000 before (250): the
        year pays 1,250, above the 1,200 minimum: no adjustment."""
        self.make_invoice(100000.0, invoice_date="2026-02-01")
        self.make_invoice(400000.0, invoice_date="2026-11-01")
        first = self.declaration("2026-01-01", "2026-03-31")
        last = self.declaration("2026-10-01", "2026-12-31")
        (first + last).action_compute()
        self.assertEqual(last.premium_amount, 1000.0)
        self.assertEqual(last.minimum_premium_adjustment, 0.0)
        self.assertEqual(first.premium_due + last.premium_due, 1250.0)

    def test_premium_by_country_segment(self):
        """Export buyers (Germany) at 0.5 %, the rest at the policy's 0.25 %:
        10,000 in France pays 25, 20,000 in Germany pays 100."""
        self.policy.premium_rate_ids = [
            fields.Command.create(
                {
                    "name": "Export",
                    "country_ids": [fields.Command.set(self.env.ref("base.de").ids)],
                    "rate": 0.5,
                }
            )
        ]
        self.make_invoice(10000.0, invoice_date="2026-01-10")
        self.make_invoice(20000.0, buyer=self.german_buyer, invoice_date="2026-01-10")
        declaration = self.declaration()
        declaration.action_compute()
        self.assertEqual(
            {
                line.country_id.code: (line.premium_rate, line.premium_amount)
                for line in declaration.line_ids
            },
            {"FR": (0.25, 25.0), "DE": (0.5, 100.0)},
        )
        self.assertEqual(declaration.premium_due, 125.0)

    def test_credit_note_counts_only_for_an_invoice_in_the_turnover(self):
        """A credit note reversing an invoice the turnover left out (term
        above the maximum) is not deducted; one reversing an invoice declared
        in an earlier period is."""
        self.policy.max_credit_days = 60
        long_term = self.make_invoice(3000.0, invoice_date="2026-01-10", due_days=90)
        declared = self.make_invoice(2000.0, invoice_date="2025-12-10")
        previous = self.declaration("2025-10-01", "2025-12-31")
        previous.with_user(self.manager).action_declare()
        self.assertEqual(previous.turnover_amount, 2000.0)
        self.make_invoice(1000.0, invoice_date="2026-01-20")
        for invoice, amount in ((long_term, 3000.0), (declared, 500.0)):
            refund = invoice._reverse_moves(
                [{"invoice_date": "2026-02-01", "date": "2026-02-01"}]
            )
            refund.invoice_line_ids.price_unit = amount
            refund.action_post()
        declaration = self.declaration()
        declaration.action_compute()
        # 1,000 invoiced, less the 500 credited on the declared invoice.
        self.assertEqual(self.by_country(declaration), {"FR": (500.0, 1, 1, 1)})

    def test_invoice_posted_after_its_period_was_declared_counts_next(self):
        """January's declaration is sent with 1,000; an invoice of 15 January
        (400) is posted afterwards: the next declaration counts it, as a
        regularisation, and never twice."""
        self.make_invoice(1000.0, invoice_date="2026-01-10")
        january = self.declaration("2026-01-01", "2026-01-31")
        january.with_user(self.manager).action_declare()
        late = self.make_invoice(400.0, invoice_date="2026-01-15")
        self.make_invoice(700.0, invoice_date="2026-02-05")
        february = self.declaration("2026-02-01", "2026-02-28")
        february.action_compute()
        self.assertEqual(
            sorted(
                (line.regularisation, line.turnover_amount)
                for line in february.line_ids
            ),
            [(False, 700.0), (True, 400.0)],
        )
        self.assertIn(late, february.counted_move_ids)
        self.assertEqual(february.turnover_amount, 1100.0)
        february.with_user(self.manager).action_declare()
        march = self.declaration("2026-03-01", "2026-03-31")
        march.action_compute()
        self.assertEqual(march.turnover_amount, 0.0, "the late invoice counted once")
        self.assertEqual(january.turnover_amount, 1000.0, "what was declared stays")

    def test_sales_to_private_persons_count_only_when_insured(self):
        """A private person (not a company) is outside most policies: its
        1,000 do not count. Once the policy insures private persons, what is
        delivered to them from then on counts (500); what was delivered
        before stays outside, as its cover was fixed at delivery."""
        person = self.env["res.partner"].create(
            {"name": "Jean Dupont", "country_id": self.env.ref("base.fr").id}
        )
        self.make_invoice(1000.0, buyer=person, invoice_date="2026-01-10")
        self.make_invoice(3000.0, invoice_date="2026-01-10")
        declaration = self.declaration()
        declaration.action_compute()
        self.assertEqual(declaration.turnover_amount, 3000.0)
        self.policy.private_buyers_insured = True
        self.make_invoice(500.0, buyer=person, invoice_date="2026-01-20")
        declaration.action_compute()
        self.assertEqual(declaration.turnover_amount, 3500.0)

    def test_upgrade_keeps_what_was_declared(self):
        """A quarter declared before 18.0.1.2.0 (turnover 100,000, premium 250,
        premium due 300 with the quarter's share of the minimum premium): the
        upgrade keeps its 300 due, records the invoice it counted, and the
        next declaration does not count that invoice again."""
        invoice = self.make_invoice(100000.0, invoice_date="2026-01-10")
        declaration = self.declaration()
        declaration.with_user(self.manager).action_declare()
        self.make_invoice(40000.0, invoice_date="2026-07-10")
        draft = self.declaration("2026-07-01", "2026-09-30")
        draft.action_compute()
        self.env.flush_all()
        # As the previous version left it.
        self.cr.execute(
            "DELETE FROM credit_insurance_turnover_declaration_move_rel"
            " WHERE declaration_id = %s",
            [declaration.id],
        )
        self.cr.execute(
            "UPDATE credit_insurance_turnover_declaration_line"
            "   SET premium_rate = NULL, premium_amount = NULL"
            " WHERE declaration_id = %s",
            [declaration.id],
        )
        self.cr.execute(
            "UPDATE credit_insurance_turnover_declaration"
            "   SET minimum_premium_adjustment = NULL, premium_amount = 250,"
            "       premium_due = 300"
            " WHERE id = %s",
            [declaration.id],
        )
        # 0.25 % of 40,000 = 100, below the quarter's share of 300.
        self.cr.execute(
            "UPDATE credit_insurance_turnover_declaration"
            "   SET minimum_premium_adjustment = NULL, premium_due = 300"
            " WHERE id = %s",
            [draft.id],
        )
        self.env.invalidate_all()

        run_migration("18.0.1.2.0", "post-migrate", self.cr)
        self.env.invalidate_all()

        self.assertEqual(declaration.counted_move_ids, invoice)
        self.assertEqual(declaration.line_ids.mapped("premium_amount"), [250.0])
        self.assertEqual(declaration.minimum_premium_adjustment, 50.0)
        self.assertEqual(declaration.premium_due, 300.0)
        following = self.declaration("2026-04-01", "2026-06-30")
        following.action_compute()
        self.assertEqual(following.turnover_amount, 0.0)
        # Still to declare: computed again, under today's rules, when declared.
        self.assertEqual(draft.premium_due, 100.0)
        self.assertFalse(draft.date_computed)

    def test_one_declaration_per_policy_and_period(self):
        self.declaration()
        with (
            self.assertRaises(psycopg2.errors.UniqueViolation),
            mute_logger("odoo.sql_db"),
            self.cr.savepoint(),
        ):
            self.declaration()

    # ------------------------------------------------------------ periods and job

    def test_closed_periods_follow_the_policy(self):
        self.policy.write({"date_start": "2025-02-01", "date_end": "2026-02-15"})
        self.assertEqual(
            [
                (str(a), str(b))
                for a, b in closed_periods(
                    self.policy, fields.Date.to_date("2026-06-01")
                )
            ],
            [
                ("2025-05-01", "2025-07-31"),
                ("2025-08-01", "2025-10-31"),
                ("2025-11-01", "2026-01-31"),
                ("2026-02-01", "2026-02-15"),
            ],
        )

    def test_job_prepares_closed_periods_once_and_reminds_managers(self):
        self.policy.write({"date_start": "2026-01-01", "date_end": False})
        self.make_invoice(1000.0, invoice_date="2026-02-10")
        with freeze_time("2026-04-05"):
            self.Declaration._cron_prepare_declarations()
            self.Declaration._cron_prepare_declarations()
        declarations = self.Declaration.search([("policy_id", "=", self.policy.id)])
        self.assertEqual(len(declarations), 1)
        self.assertEqual(str(declarations.date_to), "2026-03-31")
        self.assertEqual(str(declarations.date_due), "2026-04-15")
        self.assertEqual(declarations.turnover_amount, 1000.0)
        self.assertFalse(declarations.activity_ids, "not late yet")
        with freeze_time("2026-04-16"):
            self.Declaration._cron_prepare_declarations()
            self.Declaration._cron_prepare_declarations()
        self.assertIn(self.manager, declarations.activity_ids.user_id)
        self.assertEqual(
            len(
                declarations.activity_ids.filtered(lambda a: a.user_id == self.manager)
            ),
            1,
            "one reminder per manager, not one per run",
        )
        declarations.with_user(self.manager).action_declare()  # manual insurer
        self.assertEqual(declarations.state, "declared")
        self.assertFalse(declarations.activity_ids)

    # ------------------------------------------------------------ declaring

    def test_only_managers_declare(self):
        declaration = self.declaration()
        user = new_test_user(
            self.env,
            login="tv_user",
            groups="base.group_user,credit_insurance.group_credit_insurance_user",
        )
        with self.assertRaises(AccessError):
            declaration.with_user(user).action_declare()
        with self.assertRaises(AccessError):
            declaration.with_user(user).action_compute()
        self.assertEqual(declaration.state, "draft")

    def test_declared_turnover_is_frozen(self):
        declaration = self.declaration()
        declaration.with_user(self.manager).action_declare()
        with self.assertRaises(UserError):
            declaration.with_user(self.manager).action_compute()
        with self.assertRaises(UserError):
            declaration.with_user(self.manager).action_declare()

    def test_declared_to_the_sandbox_exactly_once_despite_a_lost_answer(self):
        sandbox = serve_sandbox(self)
        self.insurer.write(
            {"provider": "sandbox", "api_base_url": sandbox.url, "api_timeout": 2}
        )
        self.make_invoice(1000.0, invoice_date="2026-01-10")
        self.make_invoice(2000.0, buyer=self.german_buyer, invoice_date="2026-01-10")
        declaration = self.declaration().with_user(self.manager)
        # The insurer records the declaration, then the answer is lost.
        sandbox.faults.add("drop", method="PUT", path="/v1/turnover-declarations")
        action = declaration.action_declare()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertEqual(declaration.state, "draft")
        self.assertTrue(declaration.last_error)
        declaration.action_declare()
        self.assertEqual(declaration.state, "declared")
        self.assertFalse(declaration.last_error)
        stats = requests.get(f"{sandbox.url}/_admin/stats", timeout=5).json()
        self.assertEqual(stats["turnovers"], 1, "declared once at the insurer")
        self.assertEqual(
            stats["turnover_declarations"], {declaration.idempotency_key: 2}
        )
        received = sandbox.app.store.state["turnovers"][declaration.idempotency_key]
        self.assertEqual(declaration.insurer_reference, received["declarationId"])
        self.assertEqual(received["turnoverByCountry"], {"FR": 1000.0, "DE": 2000.0})
        # 0.25 % of 3,000; the first quarter does not close the policy year.
        self.assertEqual(received["premium"], 7.5)

    # ------------------------------------------------------------ files

    def test_csv_and_xlsx_exports(self):
        self.make_invoice(1000.0, invoice_date="2026-01-10")
        self.make_invoice(2000.0, buyer=self.german_buyer, invoice_date="2026-01-10")
        declaration = self.declaration()
        declaration.action_compute()
        declaration.action_export_csv()
        declaration.action_export_xlsx()
        files = self.env["ir.attachment"].search(
            [("res_model", "=", declaration._name), ("res_id", "=", declaration.id)]
        )
        csv_file = files.filtered(lambda a: a.name.endswith(".csv"))
        rows = list(
            csv.reader(
                io.StringIO(base64.b64decode(csv_file.datas).decode()), delimiter=";"
            )
        )
        self.assertEqual(rows[0][3], "country")
        self.assertEqual(
            sorted((row[3], float(row[7])) for row in rows[1:]),
            [("DE", 2000.0), ("FR", 1000.0)],
        )
        xlsx = files.filtered(lambda a: a.name.endswith(".xlsx"))
        sheet = openpyxl.load_workbook(io.BytesIO(base64.b64decode(xlsx.datas))).active
        values = list(sheet.iter_rows(values_only=True))
        self.assertEqual(values[0][7], "insured_turnover")
        self.assertEqual(sorted(v[7] for v in values[1:]), [1000.0, 2000.0])

    def test_reminder_in_french(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._load_module_terms(
            ["credit_insurance"], ["fr_FR"], overwrite=True
        )
        self.manager.lang = "fr_FR"
        declaration = self.declaration()
        with freeze_time("2026-05-01"):
            declaration.with_context(lang="fr_FR")._remind()
        activity = declaration.activity_ids.filtered(
            lambda a: a.user_id == self.manager
        )
        self.assertEqual(activity.summary, "Déclarer le chiffre d'affaires assuré")
