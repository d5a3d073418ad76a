"""The migration scripts, run on data shaped as 18.0.1.0.0 leaves it (the
turnover declarations' one: tests/test_turnover_declaration.py).

18.0.1.1.0: one declaration line per invoice, an extension written on the invoice, no
deadline per instalment, no cover terms at delivery."""

from datetime import date

from freezegun import freeze_time

from odoo import Command
from odoo.tests import TransactionCase, tagged

from .common import run_migration
from .test_declaration import TRIGGER, DeclarationCase


@tagged("post_install", "-at_install")
class TestMigrationInstalments(DeclarationCase):
    def shape_as_before(self, declared, extended, extension):
        """What 18.0.1.0.0 left in the database."""
        cr = self.env.cr
        self.env.flush_all()
        cr.execute(
            "DROP INDEX IF EXISTS "
            "credit_insurance_declaration_line_open_instalment_uniq"
        )
        # One line per invoice: the first instalment's; no instalment named.
        first_lines = [
            line.id
            for line in self.env["credit.insurance.declaration.line"].search(
                [("move_id", "=", declared.id)], order="due_date, id"
            )
        ]
        cr.execute(
            "DELETE FROM credit_insurance_declaration_line WHERE id = ANY(%s)",
            [first_lines[1:]],
        )
        cr.execute("UPDATE credit_insurance_declaration_line SET move_line_id = NULL")
        cr.execute(
            "CREATE UNIQUE INDEX credit_insurance_declaration_line_open_move_uniq "
            "ON credit_insurance_declaration_line (move_id, category) "
            "WHERE declaration_open"
        )
        # The extension on the invoice, no deadline on the instalments.
        cr.execute(
            "ALTER TABLE account_move ADD COLUMN IF NOT EXISTS "
            "credit_insurance_extended_due_date date"
        )
        cr.execute(
            "UPDATE account_move SET credit_insurance_extended_due_date = %s "
            "WHERE id = %s",
            [extension.requested_due_date, extended.id],
        )
        cr.execute(
            "UPDATE account_move_line SET credit_insurance_extended_due_date = NULL, "
            "credit_insurance_declaration_deadline = NULL"
        )
        cr.execute(
            "UPDATE account_move SET credit_insurance_delivery_limit = NULL, "
            "credit_insurance_limit_id = NULL, credit_insurance_coverage_pct = NULL, "
            "credit_insurance_stopped = NULL"
        )
        cr.execute(
            "UPDATE credit_insurance_declaration SET extension_applied_date = NULL"
        )
        self.env.invalidate_all()

    def test_upgrade_from_18_0_1_0_0(self):
        term = self.env["account.payment.term"].create(
            {
                "name": "Half at 30 days, half at 60 days",
                "line_ids": [
                    Command.create(
                        {"value": "percent", "value_amount": 50.0, "nb_days": 30}
                    ),
                    Command.create(
                        {"value": "percent", "value_amount": 50.0, "nb_days": 60}
                    ),
                ],
            }
        )
        with freeze_time("2026-01-01"):
            declared = self.env["account.move"].create(
                {
                    "move_type": "out_invoice",
                    "partner_id": self.buyer.id,
                    "invoice_date": "2026-01-01",
                    "invoice_payment_term_id": term.id,
                    "invoice_line_ids": [
                        Command.create(
                            {
                                "name": "Goods",
                                "quantity": 1,
                                "price_unit": 1000.0,
                                "tax_ids": [Command.clear()],
                            }
                        )
                    ],
                }
            )
            declared.action_post()
        extended = self.overdue_invoice(500.0, invoice_date="2026-01-10")
        # Declared, and filed, as a whole invoice (both instalments).
        declaration = self.Declaration.create(
            {
                "partner_id": self.buyer.id,
                "policy_id": self.policy.id,
                "line_ids": [Command.create({"move_id": declared.id})],
            }
        )
        with freeze_time(TRIGGER):
            declaration.with_user(self.manager).action_mark_filed()
            # An extension of the other invoice, in force at once before.
            self.policy.free_extension_days = 60
            extension = (
                self.env["credit.insurance.extension.wizard"]
                .with_user(self.manager)
                .create({"move_id": extended.id, "new_due_date": "2026-03-01"})
            )
            extension = self.Declaration.browse(extension.action_request()["res_id"])
        self.shape_as_before(declared, extended, extension)

        run_migration("18.0.1.1.0", "pre-migrate", self.env.cr)
        self.env.invalidate_all()
        run_migration("18.0.1.1.0", "post-migrate", self.env.cr)
        self.env.invalidate_all()
        self.env["credit.insurance.declaration.line"].init()

        # One declaration line per instalment, both reported as the invoice was.
        lines = declaration.line_ids.sorted("due_date")
        self.assertEqual(lines.move_line_id, declared.credit_insurance_instalment_ids)
        self.assertEqual(
            lines.mapped("due_date"), [date(2026, 1, 31), date(2026, 3, 2)]
        )
        self.assertTrue(all(lines.mapped("date_filed")))
        self.assertEqual(lines.mapped("amount_residual_company"), [500.0, 500.0])
        # Deadlines as before (due date + 30 days), each instalment its own.
        self.assertEqual(self.policy.deadline_model, "due_date")
        self.assertEqual(lines.mapped("deadline"), [date(2026, 3, 2), date(2026, 4, 1)])
        self.assertEqual(
            declared.credit_insurance_declaration_deadline, date(2026, 3, 2)
        )
        # The extension stays in force, on the instalment it moved.
        instalment = extended.credit_insurance_instalment_ids
        self.assertEqual(
            instalment.credit_insurance_extended_due_date, date(2026, 3, 1)
        )
        self.assertEqual(
            extended.credit_insurance_declaration_deadline, date(2026, 3, 31)
        )
        self.assertEqual(extension.line_ids.move_line_id, instalment)
        self.assertEqual(extension.extension_status, "in_force")
        # The cover at delivery: the discretionary 5,000 at 70 %, shared
        # oldest first: 1,000 (no VAT), then 500 (500 + VAT, insured
        # without it).
        self.assertRecordValues(
            declared | extended,
            [
                {
                    "credit_insurance_delivery_limit": 5000.0,
                    "credit_insurance_coverage_pct": 70.0,
                    "credit_insurance_insured_amount": 1000.0,
                    "credit_insurance_cover_state": "full",
                },
                {
                    "credit_insurance_delivery_limit": 5000.0,
                    "credit_insurance_coverage_pct": 70.0,
                    "credit_insurance_insured_amount": 500.0,
                    "credit_insurance_cover_state": "full",
                },
            ],
        )
        self.env.cr.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = "
            "'credit_insurance_declaration_line' AND indexname LIKE %s",
            ["credit_insurance_declaration_line_open_%"],
        )
        self.assertEqual(
            [row[0] for row in self.env.cr.fetchall()],
            ["credit_insurance_declaration_line_open_instalment_uniq"],
        )


@tagged("post_install", "-at_install")
class TestMigrationInsurerUrls(TransactionCase):
    def test_18_0_1_0_1_gives_each_allianz_trade_api_its_url(self):
        """18.0.1.0.0 called every Allianz Trade API under one base URL; the
        host stays, each API gets its own path for the environment."""
        Insurer = self.env["credit.insurance.insurer"]
        production = Insurer.create(
            {
                "name": "Allianz Trade",
                "provider": "allianz_trade",
                "environment": "production",
                "api_base_url": "https://api.allianz-trade.com/",
            }
        )
        proxied = Insurer.create(
            {
                "name": "Allianz Trade behind a proxy",
                "provider": "allianz_trade",
                "environment": "sandbox",
                "api_base_url": "https://proxy.example.com/allianz",
            }
        )
        atradius = Insurer.create(
            {
                "name": "Atradius",
                "provider": "atradius",
                "api_base_url": "https://api-uat.atradius.com",
            }
        )
        # a new database: nothing to do
        run_migration("18.0.1.0.1", "post-migrate", self.env.cr, None)
        self.assertEqual(
            proxied.login_api_url,
            "https://api-services.uat.1placedessaisons.com/uatm/v1/idp",
            "until migrated: the default of the environment",
        )
        run_migration("18.0.1.0.1", "post-migrate", self.env.cr)
        self.env.invalidate_all()
        self.assertRecordValues(
            production + proxied,
            [
                {
                    "login_api_url": "https://api.allianz-trade.com/v1/idp",
                    "search_api_url": "https://api.allianz-trade.com/search/v2",
                    "cover_api_url": "https://api.allianz-trade.com/riskinfo/v3",
                },
                {
                    # the sandbox's marker sits at a different place in each
                    "login_api_url": "https://proxy.example.com/allianz/uatm/v1/idp",
                    "search_api_url": "https://proxy.example.com/allianz/search/uatm-v2",
                    "cover_api_url": "https://proxy.example.com/allianz/uatm/riskinfo/v3",
                },
            ],
        )
        self.assertFalse(atradius.login_api_url, "one base URL serves Atradius")
        config = proxied._get_provider(None).config
        self.assertEqual(
            config.api_urls["search"],
            "https://proxy.example.com/allianz/search/uatm-v2",
        )
