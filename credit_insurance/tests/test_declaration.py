"""Overdue declarations: deadlines, manual filing, alerts, cover lost, stop of
deliveries, payments, currencies, credit notes, disputes, extensions,
companies and French texts (insurer without API: filed in its portal).

Dates are frozen; an invoice of 1 January 2026 at 30 days is due on
31 January; the policy declares 7 days after the due date, alerts 5 days
before the deadline, and the deadline is 30 days after the due date.
"""

from datetime import date

from freezegun import freeze_time
from stdnum import luhn

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from .common import CreditInsuranceCommon

MANAGER = (
    "base.group_user,account.group_account_invoice,"
    "credit_insurance.group_credit_insurance_manager"
)
CREDIT_USER = "base.group_user,credit_insurance.group_credit_insurance_user"
INVOICED = "2026-01-01"  # due 2026-01-31
TRIGGER = "2026-02-07"
ALERT = "2026-02-25"
DEADLINE = date(2026, 3, 2)


def fr_vat(siren):
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


def siren_of(prefix):
    """A SIREN from 8 digits and its Luhn key: only checked identifiers are
    sent to an insurer."""
    return prefix + luhn.calc_check_digit(prefix)


class DeclarationCase(CreditInsuranceCommon):
    """The common fixture, with identifiable buyers and a credit manager; the
    demo policies and insurers are archived so that only this test's count."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["credit.insurance.policy"].search([("id", "!=", cls.policy.id)]).write(
            {"active": False}
        )
        cls.env["credit.insurance.insurer"].search(
            [("id", "!=", cls.insurer.id)]
        ).write({"active": False})
        cls.policy.write(
            {
                "declaration_trigger_days": 7,
                "declaration_alert_days": 5,
                "max_extension_days": 60,
            }
        )
        cls.identify(cls.buyer, "303265045")
        cls.manager = cls.make_user("decl_manager", MANAGER)
        cls.Declaration = cls.env["credit.insurance.declaration"]

    @classmethod
    def identify(cls, partner, siren):
        partner.write(
            {
                "country_id": cls.env.ref("base.fr").id,
                "company_registry": f"{siren}00013",
                "vat": fr_vat(siren),
            }
        )
        return partner

    @classmethod
    def make_buyer(cls, name, siren):
        buyer = cls.env["res.partner"].create(
            {"name": name, "is_company": True, "customer_rank": 1}
        )
        return cls.identify(buyer, siren)

    def overdue_invoice(self, amount=1000.0, buyer=None, **values):
        """An invoice of 1 January at 30 days (due 31 January), posted then."""
        with freeze_time(values.pop("invoice_date", INVOICED)):
            return self.make_invoice(amount, buyer=buyer, **values)

    def run_cron(self, day, **kwargs):
        with freeze_time(day):
            return self.Declaration._cron_declare_overdues(**kwargs)

    def declarations(self, buyer=None, category="overdue"):
        return self.Declaration.search(
            [
                ("partner_id", "=", (buyer or self.buyer).id),
                ("category", "=", category),
            ]
        )

    def messages(self, record):
        return " ".join(record.message_ids.mapped("body"))

    def activity_summaries(self, record, user):
        return record.activity_ids.filtered(lambda a: a.user_id == user).mapped(
            "summary"
        )


@tagged("post_install", "-at_install")
class TestDeclaration(DeclarationCase):
    # ------------------------------------------------ trigger and deadline

    def test_declared_once_the_trigger_is_reached(self):
        invoice = self.overdue_invoice(1000.0)
        self.assertEqual(invoice.credit_insurance_declaration_deadline, DEADLINE)
        self.run_cron("2026-02-06")
        self.assertFalse(self.declarations(), "6 days overdue: not yet")

        self.run_cron(TRIGGER)
        declaration = self.declarations()
        self.assertRecordValues(
            declaration,
            [
                {
                    "state": "to_file",
                    "policy_id": self.policy.id,
                    "company_id": self.company.id,
                    "amount_total": 1200.0,
                    "deadline": DEADLINE,
                    "next_deadline": DEADLINE,
                    "alert_date": date(2026, 2, 25),
                }
            ],
        )
        self.assertEqual(declaration.line_ids.move_id, invoice)
        self.assertEqual(invoice.credit_insurance_declaration_id, declaration)
        self.assertTrue(declaration.name.startswith("DMS/"))
        self.assertTrue(declaration.idempotency_key.startswith("ODOO-DECL-"))

        self.run_cron("2026-02-08")
        self.assertEqual(self.declarations(), declaration, "declared once")

    def test_later_overdues_join_the_buyers_open_declaration(self):
        first = self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        second = self.overdue_invoice(500.0, invoice_date="2026-01-10")
        self.run_cron("2026-02-16")  # the second is 7 days overdue
        declaration = self.declarations()
        self.assertEqual(len(declaration), 1)
        self.assertEqual(declaration.line_ids.move_id, first | second)
        self.assertEqual(declaration.amount_total, 1800.0)
        self.assertEqual(declaration.deadline, DEADLINE, "the earliest deadline")
        self.assertIn(second.name, self.messages(declaration))

    def test_one_open_declaration_per_buyer_and_invoice(self):
        invoice = self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        Declaration = self.Declaration.with_user(self.manager)
        with self.assertRaisesRegex(ValidationError, "already has an open declaration"):
            Declaration.create(
                {"partner_id": self.buyer.id, "policy_id": self.policy.id}
            )
        declaration.with_user(self.manager).action_mark_filed()
        with self.assertRaisesRegex(ValidationError, "an invoice is declared once"):
            self.env["credit.insurance.declaration.line"].create(
                {"declaration_id": declaration.id, "move_id": invoice.id}
            )

    def test_trigger_alert_and_period_must_fit_together(self):
        with self.assertRaisesRegex(ValidationError, "7 \\+ 25 must be less than 30"):
            self.policy.declaration_alert_days = 25
        self.policy.write({"declaration_trigger_days": 20, "declaration_alert_days": 9})
        invoice = self.overdue_invoice(1000.0)
        self.run_cron("2026-02-19")
        self.assertFalse(self.declarations())
        self.run_cron("2026-02-20")
        self.assertEqual(self.declarations().line_ids.move_id, invoice)

    def test_not_declared_when_not_insured_disputed_or_paid(self):
        disputed = self.overdue_invoice(1000.0)
        disputed.credit_insurance_disputed = True
        paid = self.overdue_invoice(1000.0)
        self.pay(paid, 1200.0)
        other_buyer = self.make_buyer("Hors Police SA", "404833048")
        self.policy.discretionary_limit = 0.0  # nothing insured from now on
        self.overdue_invoice(1000.0, buyer=other_buyer)
        self.run_cron(TRIGGER)
        self.assertFalse(
            self.Declaration.search([("company_id", "=", self.company.id)])
        )

    # ------------------------------------- manual filing, stop of deliveries

    def test_manual_insurer_asks_the_credit_managers_then_stops_deliveries(self):
        self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        self.assertIn(
            "File the overdue declaration with Test insurer: Buyer SA",
            self.activity_summaries(declaration, self.manager),
        )
        self.assertFalse(self.buyer.credit_insurance_stop)

        credit_user = self.make_user("decl_reader", CREDIT_USER)
        with self.assertRaises(AccessError):
            declaration.with_user(credit_user).action_mark_filed()

        declaration.with_user(self.manager).write({"insurer_reference": "TI-2026-77"})
        declaration.with_user(self.manager).action_mark_filed()
        self.assertRecordValues(
            declaration,
            [
                {
                    "state": "filed",
                    "insurer_reference": "TI-2026-77",
                    "amount_filed": 1200.0,
                    "amount_reported": 1200.0,
                    "update_due": False,
                    "next_deadline": False,
                }
            ],
        )
        self.assertTrue(declaration.date_filed)
        self.assertTrue(declaration.line_ids.date_filed)
        self.assertFalse(declaration.activity_ids, "the filing activity is done")
        self.buyer.invalidate_recordset()
        self.assertTrue(self.buyer.credit_insurance_stop)
        self.assertIn(declaration.name, self.buyer.credit_insurance_stop_reason)
        self.assertIn("Stop of deliveries", self.messages(self.buyer))

    def test_stop_lifted_by_a_manager_only_and_traced(self):
        self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        declaration.with_user(self.manager).action_mark_filed()
        credit_user = self.make_user("decl_reader", CREDIT_USER)
        with self.assertRaises(AccessError):
            declaration.with_user(credit_user).action_lift_stop()
        with self.assertRaisesRegex(AccessError, "Only credit insurance managers"):
            self.buyer.with_user(credit_user).credit_insurance_stop = False
        declaration.with_user(self.manager).action_lift_stop()
        self.buyer.invalidate_recordset()
        self.assertFalse(self.buyer.credit_insurance_stop)
        self.assertFalse(declaration.stop_reason)
        self.assertIn(
            f"Stop of deliveries lifted ({self.company.name}) by {self.manager.name}",
            self.messages(self.buyer),
        )

    # ---------------------------------------------- alerts and cover lost

    def test_alert_before_the_deadline_once_per_deadline(self):
        self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        Mail = self.env["mail.mail"]
        mails = [
            ("model", "=", declaration._name),
            ("res_id", "=", declaration.id),
            ("subject", "ilike", "to declare by"),
        ]
        self.run_cron("2026-02-24")
        self.assertFalse(Mail.search(mails))

        self.run_cron(ALERT)
        summary = "Overdue declaration to file by 03/02/2026: Buyer SA"
        self.assertIn(summary, self.activity_summaries(declaration, self.manager))
        every_mail = Mail.search(mails)
        mail = every_mail.filtered(lambda m: self.manager.partner_id in m.recipient_ids)
        self.assertEqual(len(mail), 1, "one e-mail per credit manager")
        self.assertIn("Buyer SA", mail.subject)
        self.assertIn("03/02/2026", mail.body_html)
        self.assertEqual(declaration.alerted_deadline, DEADLINE)

        count = len(declaration.activity_ids)
        self.run_cron(ALERT)
        self.run_cron("2026-02-27")
        self.assertEqual(len(declaration.activity_ids), count, "never repeated")
        self.assertEqual(Mail.search(mails), every_mail)

    def test_cover_lost_when_the_deadline_passes_unfiled(self):
        late = self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        in_time_buyer = self.make_buyer("À Temps SARL", "512345679")
        in_time = self.overdue_invoice(1000.0, buyer=in_time_buyer)
        self.run_cron(TRIGGER)
        self.declarations(in_time_buyer).with_user(self.manager).action_mark_filed()
        self.run_cron("2026-03-02")
        self.assertEqual(late.credit_insurance_cover_state, "full", "deadline day")
        # The job did not run before its deadline (stopped, or a new policy).
        never_prepared = self.overdue_invoice(
            1000.0, buyer=self.make_buyer("Oubliée SAS", "389456716")
        )

        self.run_cron("2026-03-03")
        for invoice in late | never_prepared:
            self.assertRecordValues(
                invoice,
                [
                    {
                        "credit_insurance_cover_lost": True,
                        "credit_insurance_cover_state": "lost",
                        "credit_insurance_insured_amount": 0.0,
                    }
                ],
            )
            self.assertIn("Cover lost", self.messages(invoice))
        self.assertEqual(in_time.credit_insurance_cover_state, "full")
        self.assertTrue(declaration.cover_lost)
        self.assertIn("Cover lost on " + late.name, self.messages(declaration))
        self.assertIn(
            "Cover lost: Buyer SA", self.activity_summaries(declaration, self.manager)
        )
        self.buyer.invalidate_recordset()
        self.assertIn("Cover lost", self.messages(self.buyer))
        self.assertEqual(self.buyer.credit_insurance_cover_lost_count, 1)
        self.assertIn(
            never_prepared,
            self.Declaration.search([]).line_ids.move_id,
            "still declared, late, so that the insurer collects",
        )

    # ----------------------------------------- payments, currencies, disputes

    def test_payments_after_filing_update_the_declaration(self):
        invoice = self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        declaration.with_user(self.manager).action_mark_filed()

        with freeze_time("2026-02-12"):
            self.pay(invoice, 200.0)
        self.assertRecordValues(
            declaration,
            [
                {
                    "amount_total": 1000.0,
                    "amount_filed": 1200.0,
                    "payment_status": "partial",
                    "update_due": True,
                }
            ],
        )
        self.run_cron("2026-02-12")
        self.assertTrue(declaration.manual_update_needed)
        self.assertIn(
            "Update the declaration at Test insurer: Buyer SA",
            self.activity_summaries(declaration, self.manager),
        )
        declaration.with_user(self.manager).action_mark_updated()
        self.assertRecordValues(
            declaration,
            [
                {
                    "manual_update_needed": False,
                    "amount_reported": 1000.0,
                    "update_due": False,
                    "state": "filed",
                }
            ],
        )

        with freeze_time("2026-02-20"):
            self.pay(invoice, 1000.0)
        self.run_cron("2026-02-20")
        self.assertRecordValues(
            declaration,
            [
                {
                    "state": "settled",
                    "payment_status": "paid",
                    "manual_update_needed": True,
                }
            ],
        )
        # Lifting the stop is a credit manager's act: the settlement proposes it.
        self.buyer.invalidate_recordset()
        self.assertTrue(self.buyer.credit_insurance_stop)
        self.assertIn(
            "Lift the stop of deliveries? Buyer SA",
            self.activity_summaries(declaration, self.manager),
        )

    def test_paid_before_filing_nothing_is_declared(self):
        invoice = self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        with freeze_time("2026-02-09"):
            self.pay(invoice, 1200.0)
        self.run_cron("2026-02-09")
        self.assertEqual(declaration.state, "cancelled")
        self.assertFalse(declaration.activity_ids)
        self.assertIn("Paid before it was filed", self.messages(declaration))

    def test_payment_undone_after_the_cancellation_is_declared(self):
        invoice = self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        cancelled = self.declarations()
        with freeze_time("2026-02-09"):
            self.pay(invoice, 1200.0)
        self.run_cron("2026-02-09")
        self.assertEqual(cancelled.state, "cancelled")
        # The cheque bounces: the invoice is overdue again, and declared.
        invoice.line_ids.filtered(
            lambda line: line.account_type == "asset_receivable"
        ).remove_move_reconcile()
        self.run_cron("2026-02-10")
        declaration = self.declarations() - cancelled
        self.assertEqual(declaration.state, "to_file")
        self.assertEqual(declaration.line_ids.move_id, invoice)

    def test_abandoned_by_a_manager_is_not_declared_again(self):
        invoice = self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        declaration.with_user(self.manager).action_cancel()
        self.assertTrue(declaration.abandoned)
        self.run_cron("2026-02-08")
        self.run_cron("2026-02-20")
        self.assertEqual(self.declarations(), declaration, "not gathered again")
        # Not declared by its deadline: its cover is lost, as it should be.
        self.run_cron("2026-03-03")
        self.assertTrue(invoice.credit_insurance_cover_lost)

    def test_what_reached_the_insurer_is_never_declared_again(self):
        """The rest a claim's indemnity leaves open on an invoice stays with
        that claim: the job does not declare it a second time."""
        invoice = self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        declaration.with_user(self.manager).action_mark_filed()
        journal = self.company_data["default_journal_misc"]
        self.policy.write(
            {
                "claim_journal_id": journal.id,
                "insurer_receivable_account_id": self.env["account.account"]
                .create(
                    {
                        "code": "467100",
                        "name": "Credit insurer",
                        "account_type": "asset_receivable",
                        "reconcile": True,
                    }
                )
                .id,
            }
        )
        self.insurer.partner_id = self.env["res.partner"].create(
            {"name": "Test insurer SA", "is_company": True}
        )
        claim = self.env["credit.insurance.claim"].browse(
            declaration.with_user(self.manager).action_open_claim()["res_id"]
        )
        with freeze_time("2026-02-10"):
            claim.with_user(self.manager).action_submit()
            claim.with_user(self.manager).action_approve()
        self.assertEqual(declaration.state, "claim_opened")
        # 1,000 (no VAT) × 70 % (discretionary cover) = 700 indemnified;
        # 1,200 - 700 = 500 still open on the invoice.
        self.assertEqual(claim.indemnity_amount, 700.0)
        self.assertEqual(invoice.amount_residual, 500.0)
        self.run_cron("2026-02-20")
        self.assertEqual(self.declarations(), declaration, "declared once")

    def test_foreign_currency_and_credit_note(self):
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.0)])
        invoice = self.overdue_invoice(1000.0, currency=eur)  # 1,200 EUR = 600
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        self.assertRecordValues(
            declaration.line_ids,
            [
                {
                    "currency_id": eur.id,
                    "amount_residual": 1200.0,
                    "amount_residual_company": 600.0,
                    "amount_declared": 600.0,
                }
            ],
        )
        self.assertEqual(declaration.amount_total, 600.0)
        declaration.with_user(self.manager).action_mark_filed()

        with freeze_time("2026-02-15"):
            refund = self.make_invoice(500.0, currency=eur, move_type="out_refund")
        (invoice + refund).line_ids.filtered(
            lambda line: line.account_id.account_type == "asset_receivable"
        ).reconcile()
        self.assertEqual(declaration.line_ids.amount_residual, 600.0)
        self.assertEqual(declaration.amount_total, 300.0)
        self.assertEqual(declaration.payment_status, "partial")
        self.assertTrue(declaration.update_due)

    def test_dispute_set_then_cleared_after_filing(self):
        first = self.overdue_invoice(1000.0)
        self.overdue_invoice(500.0)
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        declaration.with_user(self.manager).action_mark_filed()
        self.assertEqual(declaration.amount_reported, 1800.0)

        first.credit_insurance_disputed = True
        self.assertEqual(declaration.amount_total, 600.0)
        self.assertEqual(declaration.amount_open, 1800.0)
        self.assertTrue(declaration.update_due)
        self.assertIn(f"Invoice {first.name} is disputed", self.messages(declaration))

        first.credit_insurance_disputed = False
        self.assertEqual(declaration.amount_total, 1800.0)
        self.assertFalse(declaration.update_due, "back to what the insurer knows")
        self.assertIn("is cleared", self.messages(declaration))

    # ------------------------------------------------------------ extensions

    def request_extension(self, invoice, new_due_date, user=None):
        wizard = (
            self.env["credit.insurance.extension.wizard"]
            .with_user(user or self.manager)
            .create({"move_id": invoice.id, "new_due_date": new_due_date})
        )
        return self.Declaration.browse(wizard.action_request()["res_id"])

    def test_free_extension_moves_the_deadline_at_once(self):
        """Within the policy's free extension days (30 here) the new due date
        takes effect at once; the insurer is told all the same."""
        self.policy.free_extension_days = 30
        invoice = self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        overdue = self.declarations()
        credit_user = self.make_user("decl_reader", CREDIT_USER)
        with freeze_time("2026-02-08"):
            with self.assertRaisesRegex(UserError, "allows extensions of 60 days"):
                self.request_extension(invoice, "2026-04-02")
            with self.assertRaisesRegex(UserError, "after the current one"):
                self.request_extension(invoice, "2026-01-20")
            with self.assertRaises(AccessError):
                self.request_extension(invoice, "2026-03-01", user=credit_user)
            # 29 days after the due date of 31 January: free.
            extension = self.request_extension(invoice, "2026-03-01")
        self.assertRecordValues(
            extension,
            [
                {
                    "category": "extension",
                    "state": "to_file",
                    "extension_free": True,
                    "extension_status": "in_force",
                    "requested_due_date": date(2026, 3, 1),
                    "previous_due_date": date(2026, 1, 31),
                }
            ],
        )
        self.assertTrue(extension.name.startswith("PRO/"))
        self.assertEqual(invoice.credit_insurance_extended_due_date, date(2026, 3, 1))
        # 1 March + 30 days
        self.assertEqual(
            invoice.credit_insurance_declaration_deadline, date(2026, 3, 31)
        )
        self.assertEqual(overdue.state, "cancelled", "its only invoice is extended")
        self.assertIn(
            "Report the extension to Test insurer: Buyer SA",
            self.activity_summaries(extension, self.manager),
        )
        extension.with_user(self.manager).action_mark_filed()
        self.assertEqual(extension.state, "acknowledged")

        self.run_cron("2026-03-07")
        self.assertFalse(self.declarations().filtered("is_open"))
        self.run_cron("2026-03-08")  # 7 days after the new due date
        self.assertEqual(
            self.declarations().filtered("is_open").line_ids.move_id, invoice
        )
        self.assertFalse(invoice.credit_insurance_cover_lost, "deadline moved")

    def test_extension_beyond_the_free_days_waits_for_the_insurer(self):
        """Beyond the free days (none here) the due date and its deadline stay
        until the insurer accepts; the history of the due date stays on the
        invoice."""
        invoice = self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        overdue = self.declarations()
        with freeze_time("2026-02-08"):
            extension = self.request_extension(invoice, "2026-03-01")
        self.assertRecordValues(
            extension, [{"extension_free": False, "extension_status": "awaiting"}]
        )
        self.assertFalse(invoice.credit_insurance_extended_due_date)
        self.assertEqual(invoice.credit_insurance_declaration_deadline, DEADLINE)
        self.assertEqual(overdue.state, "to_file", "still to declare meanwhile")

        with freeze_time("2026-02-10"):  # the insurer accepts
            extension.with_user(self.manager).action_mark_filed()
        self.assertRecordValues(
            extension,
            [
                {
                    "state": "acknowledged",
                    "extension_status": "in_force",
                    "extension_applied_date": date(2026, 2, 10),
                }
            ],
        )
        self.assertEqual(invoice.credit_insurance_extended_due_date, date(2026, 3, 1))
        self.assertEqual(
            invoice.credit_insurance_declaration_deadline, date(2026, 3, 31)
        )
        self.assertEqual(overdue.state, "cancelled")
        self.assertRecordValues(
            invoice.credit_insurance_extension_line_ids,
            [
                {
                    "declaration_id": extension.id,
                    "due_date": date(2026, 1, 31),
                    "requested_due_date": date(2026, 3, 1),
                    "extension_status": "in_force",
                }
            ],
        )

    def test_no_extension_after_the_deadline(self):
        invoice = self.overdue_invoice(1000.0)
        with freeze_time("2026-02-20"):
            late = self.request_extension(invoice, "2026-03-20")
        with (
            freeze_time("2026-03-03"),
            self.assertRaisesRegex(UserError, "passed on 03/02/2026"),
        ):
            self.request_extension(self.overdue_invoice(500.0), "2026-03-20")
        # The overdue was never declared: its cover is lost on 3 March.
        self.run_cron("2026-03-03")
        self.assertTrue(invoice.credit_insurance_cover_lost)
        # The insurer's acceptance comes too late: nothing moves, the cover
        # stays lost.
        with freeze_time("2026-03-05"):
            late.with_user(self.manager).action_mark_filed()
        self.assertEqual(late.extension_status, "not_applied")
        self.assertFalse(invoice.credit_insurance_extended_due_date)
        self.assertEqual(invoice.credit_insurance_cover_state, "lost")
        self.assertIn("is not moved", self.messages(late))

    def test_no_extension_once_declared(self):
        invoice = self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        self.declarations().with_user(self.manager).action_mark_filed()
        with (
            freeze_time("2026-02-08"),
            self.assertRaisesRegex(UserError, "already declared to the insurer"),
        ):
            self.request_extension(invoice, "2026-03-01")

    # ------------------------------------------------------------ companies

    def test_each_company_declares_its_own_overdues(self):
        other_data = self.setup_other_company()
        other = other_data["company"]
        other_insurer = self.env["credit.insurance.insurer"].create(
            {"name": "Other insurer", "company_id": other.id}
        )
        other_policy = self.env["credit.insurance.policy"].create(
            {
                "name": "POL-2",
                "insurer_id": other_insurer.id,
                "company_id": other.id,
                "currency_id": other.currency_id.id,
                "date_start": "2020-01-01",
                "discretionary_limit": 5000.0,
            }
        )
        other_manager = self.make_user("decl_other_manager", MANAGER, company=other)
        mine = self.overdue_invoice(1000.0)
        with freeze_time(INVOICED):
            theirs = self.make_invoice(
                1000.0, company=other, taxes=self.env["account.tax"]
            )
        self.run_cron(TRIGGER)
        declarations = self.declarations()
        self.assertEqual(len(declarations), 2)
        my_declaration = declarations.filtered(lambda d: d.company_id == self.company)
        their_declaration = declarations - my_declaration
        self.assertEqual(my_declaration.line_ids.move_id, mine)
        self.assertEqual(their_declaration.line_ids.move_id, theirs)
        self.assertEqual(their_declaration.policy_id, other_policy)
        self.assertFalse(self.activity_summaries(my_declaration, other_manager))
        self.assertFalse(self.activity_summaries(their_declaration, self.manager))
        self.assertTrue(self.activity_summaries(their_declaration, other_manager))

        my_declaration.with_user(self.manager).action_mark_filed()
        self.assertTrue(self.buyer.with_company(self.company).credit_insurance_stop)
        self.assertFalse(self.buyer.with_company(other).credit_insurance_stop)
        with self.assertRaises(AccessError):
            my_declaration.with_user(other_manager).read(["name"])
        self.assertEqual(
            self.Declaration.with_user(other_manager).search(
                [("partner_id", "=", self.buyer.id)]
            ),
            their_declaration,
        )

    # ------------------------------------------------------------ French

    def test_french_alert_and_labels(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._get("credit_insurance")._update_translations(
            ["fr_FR"]
        )
        self.manager.lang = "fr_FR"
        invoice = self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        self.run_cron(ALERT)
        declaration = self.declarations()
        mail = (
            self.env["mail.mail"]
            .search(
                [
                    ("model", "=", declaration._name),
                    ("res_id", "=", declaration.id),
                    ("subject", "ilike", "Impayé"),
                ]
            )
            .filtered(lambda m: self.manager.partner_id in m.recipient_ids)
        )
        self.assertIn("Impayé à déclarer avant le", mail.subject)
        self.assertIn("perdent leur couverture", mail.body_html)

        self.run_cron("2026-03-03")
        french = self.env(context={"lang": "fr_FR"})
        states = dict(
            french["account.move"]
            ._fields["credit_insurance_cover_state"]
            ._description_selection(french)
        )
        self.assertEqual(
            states[invoice.credit_insurance_cover_state],
            "Couverture perdue (non déclarée à temps)",
        )
        declaration_states = dict(
            french["credit.insurance.declaration"]
            ._fields["state"]
            ._description_selection(french)
        )
        self.assertEqual(declaration_states["to_file"], "À déclarer")
        french_manager = declaration.with_user(self.manager).with_context(lang="fr_FR")
        french_manager.action_mark_filed()
        with self.assertRaisesRegex(UserError, "a déjà été déposée"):
            french_manager.action_mark_filed()
