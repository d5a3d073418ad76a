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
from .common import CreditInsuranceCommon, serve_sandbox

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

    def test_premium_rate_and_minimum_share(self):
        self.make_invoice(100000.0, invoice_date="2026-01-10")
        declaration = self.declaration()
        declaration.action_compute()
        # 0.25 % of 100,000 = 250, below the quarter's share of 1,200 a year.
        self.assertEqual(declaration.premium_amount, 250.0)
        self.assertEqual(declaration.minimum_premium_share, 300.0)
        self.assertEqual(declaration.premium_due, 300.0)
        self.make_invoice(300000.0, invoice_date="2026-01-11")
        declaration.action_compute()
        self.assertEqual(declaration.premium_due, 1000.0)

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
        self.assertEqual(received["premium"], declaration.premium_due)

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
