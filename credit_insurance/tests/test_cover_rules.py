"""The rules the policies state (../shared/DOMAIN.md, "Rules the policies
state"), one scenario each, as a credit manager checks them by hand: frozen
dates, real postings and payments, the figures worked out in the comments.

The policy (see DeclarationCase) is global: discretionary limit 5,000 at 70 %,
named limits at 90 %, VAT not covered (an invoice of 10,000 + 20 % VAT owes
12,000, of which 10,000 insurable), maximum credit period 90 days, overdues
declared 7 days after the due date, deadline 30 days after it.
"""

from datetime import date

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .test_declaration import ALERT, DEADLINE, TRIGGER, DeclarationCase


class RulesCase(DeclarationCase):
    def make_invoice_on(self, day, amount, buyer=None, **values):
        with freeze_time(day):
            return self.make_invoice(amount, buyer=buyer, **values)

    def pay_on(self, day, invoice, amount):
        with freeze_time(day):
            return self.pay(invoice, amount)

    def bounce(self, invoice):
        """The buyer's cheque bounces: its payment is undone."""
        invoice.line_ids.filtered(
            lambda line: line.account_type == "asset_receivable"
        ).remove_move_reconcile()

    def insured(self, *invoices):
        return [
            (
                invoice.credit_insurance_insured_amount,
                invoice.credit_insurance_cover_state,
            )
            for invoice in invoices
        ]


@tagged("post_install", "-at_install")
class TestCoverAtDelivery(RulesCase):
    def test_invoice_over_the_limit_becomes_insured_as_room_frees_up(self):
        """The worked example of readme/USAGE.md: a named limit of 15,000."""
        self.make_limit(15000.0)
        first = self.make_invoice_on("2026-01-05", 10000.0)
        second = self.make_invoice_on("2026-01-12", 8000.0)
        # first: 10,000 within 15,000; second: 15,000 - 10,000 = 5,000 of 8,000
        self.assertEqual(
            self.insured(first, second), [(10000.0, "full"), (5000.0, "partial")]
        )
        # The buyer pays 7,200 on the first (6,000 + VAT): it still owes 4,000
        # without VAT, and the second takes 15,000 - 4,000 = 11,000 >= 8,000.
        self.pay_on("2026-01-20", first, 7200.0)
        self.assertEqual(
            self.insured(first, second), [(4000.0, "full"), (8000.0, "full")]
        )
        # A third one gets what is left: 15,000 - 4,000 - 8,000 = 3,000.
        third = self.make_invoice_on("2026-01-25", 5000.0)
        self.assertEqual(self.insured(third), [(3000.0, "partial")])
        # The payment bounces: the first owes 10,000 again and, the oldest,
        # takes its room back: 10,000, then 5,000 of 8,000, then nothing.
        self.bounce(first)
        self.assertEqual(
            self.insured(first, second, third),
            [(10000.0, "full"), (5000.0, "partial"), (0.0, "over_limit")],
        )

    def test_reduction_binds_only_the_deliveries_after_its_date(self):
        self.make_limit(20000.0)
        before = self.make_invoice_on("2026-02-10", 6000.0)
        with freeze_time("2026-02-10"):  # announced for 1 March
            self.make_limit(5000.0, date_effective="2026-03-01", decision="reduced")
        after = self.make_invoice_on("2026-03-02", 1000.0)
        self.assertRecordValues(
            before | after,
            [
                {
                    "credit_insurance_delivery_limit": 20000.0,
                    "credit_insurance_insured_amount": 6000.0,
                },
                # 5,000 from 1 March, of which the 6,000 delivered before
                # leave nothing
                {
                    "credit_insurance_delivery_limit": 5000.0,
                    "credit_insurance_insured_amount": 0.0,
                },
            ],
        )
        # The first is paid: the 5,000 insure the second in full.
        self.pay_on("2026-03-05", before, 7200.0)
        self.assertEqual(self.insured(after), [(1000.0, "full")])

    def test_decision_recorded_late_fixes_the_cover_of_what_was_delivered_since(self):
        invoice = self.make_invoice_on("2026-02-10", 8000.0)
        # Discretionary cover on 10 February: 5,000 of 8,000.
        self.assertEqual(self.insured(invoice), [(5000.0, "partial")])
        # The insurer's decision of 1 February arrives on 15 February.
        with freeze_time("2026-02-15"):
            self.make_limit(20000.0, date_effective="2026-02-01")
        self.assertRecordValues(
            invoice,
            [
                {
                    "credit_insurance_delivery_limit": 20000.0,
                    "credit_insurance_coverage_pct": 90.0,
                    "credit_insurance_insured_amount": 8000.0,
                }
            ],
        )

    def test_order_delivered_after_an_announced_reduction(self):
        self.policy.enforcement_mode = "block"
        self.make_limit(20000.0)
        with freeze_time("2026-02-10"):
            self.make_limit(5000.0, date_effective="2026-03-01", decision="reduced")
            late = self.make_order(8000.0, confirm=False)
            late.commitment_date = "2026-03-10 10:00:00"
            with self.assertRaisesRegex(UserError, "Insured limit: \\$\xa05,000.00"):
                late.action_confirm()
            early = self.make_order(8000.0, confirm=False)
            early.commitment_date = "2026-02-20 10:00:00"
            early.action_confirm()  # within the 20,000 until 1 March
        self.assertEqual((late | early).mapped("state"), ["draft", "sale"])


@tagged("post_install", "-at_install")
class TestInstalments(RulesCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.half_and_half = cls.env["account.payment.term"].create(
            {
                "name": "Half at 30 days, half at 90 days",
                "line_ids": [
                    Command.create(
                        {"value": "percent", "value_amount": 50.0, "nb_days": 30}
                    ),
                    Command.create(
                        {"value": "percent", "value_amount": 50.0, "nb_days": 90}
                    ),
                ],
            }
        )

    def instalment_invoice(self):
        """1,000 + VAT on 1 January 2026: 600 due on 31 January, 600 on 1 April."""
        with freeze_time("2026-01-01"):
            invoice = self.env["account.move"].create(
                {
                    "move_type": "out_invoice",
                    "partner_id": self.buyer.id,
                    "invoice_date": "2026-01-01",
                    "invoice_payment_term_id": self.half_and_half.id,
                    "invoice_line_ids": [
                        Command.create(
                            {
                                "name": "Goods",
                                "quantity": 1,
                                "price_unit": 1000.0,
                                "tax_ids": [Command.set(self.vat_20.ids)],
                            }
                        )
                    ],
                }
            )
            invoice.action_post()
        return invoice

    def test_each_instalment_has_its_own_deadline(self):
        invoice = self.instalment_invoice()
        instalments = invoice.credit_insurance_instalment_ids
        self.assertEqual(
            [
                (line.date_maturity, line.credit_insurance_declaration_deadline)
                for line in instalments
            ],
            # each due date + 30 days
            [(date(2026, 1, 31), DEADLINE), (date(2026, 4, 1), date(2026, 5, 1))],
        )
        self.assertEqual(invoice.credit_insurance_declaration_deadline, DEADLINE)

        # 7 days after the first due date: the first instalment is declared.
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        self.assertRecordValues(
            declaration.line_ids,
            [
                {
                    "move_line_id": instalments[0].id,
                    "instalment_label": "1/2",
                    "due_date": date(2026, 1, 31),
                    "deadline": DEADLINE,
                    "amount_declared": 600.0,
                }
            ],
        )
        # 25 days overdue, still not filed: the credit managers are alerted
        # for its deadline, 2 March (not the last instalment's, 1 May).
        self.run_cron(ALERT)
        self.assertIn(
            "Overdue declaration to file by 03/02/2026: Buyer SA",
            self.activity_summaries(declaration, self.manager),
        )
        # 33 days overdue and never filed: the invoice lost its cover.
        self.run_cron("2026-03-05")
        self.assertTrue(invoice.credit_insurance_cover_lost)

    def test_later_instalments_join_the_declaration_as_they_fall_due(self):
        invoice = self.instalment_invoice()
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        declaration.with_user(self.manager).action_mark_filed()
        self.assertEqual(declaration.amount_filed, 600.0)
        self.run_cron("2026-04-08")  # the second is 7 days overdue
        self.assertEqual(self.declarations(), declaration)
        self.assertEqual(
            declaration.line_ids.move_line_id, invoice.credit_insurance_instalment_ids
        )
        self.assertEqual(declaration.amount_total, 1200.0)  # 600 + 600
        self.assertTrue(declaration.update_due, "to report to the insurer")
        self.assertFalse(invoice.credit_insurance_cover_lost)


@tagged("post_install", "-at_install")
class TestDeadlines(RulesCase):
    def test_the_three_deadline_models(self):
        """Invoiced on 1 January, due on 31 January; maximum credit period 90
        days, maximum extension 45 days, 30 days to declare."""
        self.policy.max_extension_days = 45
        invoice = self.overdue_invoice(1000.0)
        # After the due date (Allianz Trade): 31 January + 30 days.
        self.assertEqual(invoice.credit_insurance_declaration_deadline, DEADLINE)
        # After the maximum credit period (Coface): 1 January + 90 days =
        # 1 April, + 30 days.
        self.policy.deadline_model = "max_credit_period"
        self.assertEqual(
            invoice.credit_insurance_declaration_deadline, date(2026, 5, 1)
        )
        # After the maximum extension period (Atradius): 31 January + 45 days
        # = 17 March, + 30 days.
        self.policy.deadline_model = "max_extension_period"
        self.assertEqual(
            invoice.credit_insurance_declaration_deadline, date(2026, 4, 16)
        )
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        self.assertEqual(declaration.deadline, date(2026, 4, 16))
        self.assertEqual(declaration.deadline_model, "max_extension_period")
        self.assertEqual(
            declaration.deadline_basis,
            f"{invoice.name}, instalment 1/1: 30 days after the end of the "
            "maximum extension period (03/17/2026)",
        )

    def test_dispute_cleared_late_gives_a_fresh_declaration_period(self):
        self.policy.dispute_declaration_days = 20
        invoice = self.overdue_invoice(1000.0)  # deadline 2 March
        with freeze_time("2026-02-05"):
            invoice.credit_insurance_disputed = True
        self.run_cron("2026-03-10")
        self.assertFalse(self.declarations(), "disputed: not declared")
        self.assertFalse(invoice.credit_insurance_cover_lost, "nor lost meanwhile")
        with freeze_time("2026-03-20"):
            invoice.credit_insurance_disputed = False
        # Settled on 20 March: 20 days from then.
        self.assertEqual(
            invoice.credit_insurance_declaration_deadline, date(2026, 4, 9)
        )
        self.run_cron("2026-03-21")
        declaration = self.declarations()
        self.assertEqual(declaration.deadline, date(2026, 4, 9))
        self.assertIn(
            "20 days after the dispute was settled (03/20/2026)",
            declaration.deadline_basis,
        )
        self.assertFalse(invoice.credit_insurance_cover_lost)
        self.run_cron("2026-04-10")  # still not filed
        self.assertTrue(invoice.credit_insurance_cover_lost)

    def test_overdues_are_declared_whatever_part_is_insured(self):
        partly = self.overdue_invoice(8000.0)  # 5,000 of 8,000 insured
        beyond = self.overdue_invoice(3000.0)  # nothing left: 0 of 3,000
        self.assertEqual(
            self.insured(partly, beyond), [(5000.0, "partial"), (0.0, "over_limit")]
        )
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        self.assertRecordValues(
            declaration.line_ids.sorted(lambda line: line.move_id.id),
            [
                {"move_id": partly.id, "insured_amount": 5000.0},
                {"move_id": beyond.id, "insured_amount": 0.0},
            ],
        )
        # 9,600 + 3,600 owed, VAT included
        self.assertEqual(declaration.amount_total, 13200.0)
        # Not declared in time, even the part not insured today loses its
        # chance of cover: paid earlier invoices would have made room.
        self.run_cron("2026-03-03")
        self.assertEqual(
            (partly | beyond).mapped("credit_insurance_cover_state"), ["lost", "lost"]
        )


@tagged("post_install", "-at_install")
class TestStops(RulesCase):
    def test_limit_withdrawn_stops_deliveries_a_first_refusal_does_not(self):
        self.make_limit(20000.0)
        with freeze_time("2026-02-01"):
            self.make_limit(0.0, date_effective="2026-02-01", decision="cancelled")
        self.buyer.invalidate_recordset()
        self.assertTrue(self.buyer.credit_insurance_stop)
        self.assertEqual(
            self.buyer.credit_insurance_stop_reason,
            "Insured limit withdrawn by Test insurer from 2026-02-01",
        )
        newcomer = self.make_buyer("Nouvelle SAS", "552100556")
        self.make_limit(0.0, buyer=newcomer, decision="refused")
        self.assertFalse(newcomer.credit_insurance_stop)

    def test_limit_reduced_to_nothing_stops_deliveries_on_its_date(self):
        self.make_limit(20000.0)
        with freeze_time("2026-02-10"):
            self.make_limit(0.0, date_effective="2026-03-01", decision="reduced")
        self.assertFalse(self.buyer.credit_insurance_stop, "announced only")
        with freeze_time("2026-03-01"):
            self.env["credit.insurance.limit"]._cron_refresh_states()
        self.buyer.invalidate_recordset()
        self.assertTrue(self.buyer.credit_insurance_stop)
        self.assertEqual(str(self.buyer.credit_insurance_stop_date), "2026-03-01")

    def test_insolvency_stops_deliveries(self):
        with freeze_time("2026-02-10"):
            self.buyer.with_user(
                self.manager
            ).credit_insurance_insolvency_date = "2026-02-09"
        self.buyer.invalidate_recordset()
        self.assertTrue(self.buyer.credit_insurance_stop)
        self.assertEqual(
            self.buyer.credit_insurance_stop_reason,
            "Insolvency proceedings opened on 2026-02-09",
        )

    def test_months_after_the_oldest_unpaid_due_date(self):
        """Atradius' wording: deliveries stop 2 months after the oldest unpaid
        due date (31 January + 2 months = 31 March)."""
        self.policy.stop_after_months = 2
        self.overdue_invoice(1000.0)
        self.run_cron("2026-03-30")
        self.assertFalse(self.buyer.credit_insurance_stop)
        self.run_cron("2026-03-31")
        self.buyer.invalidate_recordset()
        self.assertTrue(self.buyer.credit_insurance_stop)
        self.assertIn(
            "Unpaid since 01/31/2026", self.buyer.credit_insurance_stop_reason
        )


@tagged("post_install", "-at_install")
class TestBouncedPayments(RulesCase):
    def settled_declaration(self, invoice, paid_on="2026-02-12"):
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        declaration.with_user(self.manager).action_mark_filed()
        self.pay_on(paid_on, invoice, 1200.0)
        self.run_cron(paid_on)
        self.assertEqual(declaration.state, "settled")
        return declaration

    def test_bounced_within_the_deadline_is_declared_again(self):
        invoice = self.overdue_invoice(1000.0)
        settled = self.settled_declaration(invoice)
        with freeze_time("2026-02-20"):
            self.bounce(invoice)
        self.run_cron("2026-02-20")
        again = self.declarations() - settled
        self.assertEqual(again.state, "to_file")
        self.assertEqual(again.line_ids.move_id, invoice)
        self.assertEqual(again.amount_total, 1200.0)
        self.assertIn("was undone", self.messages(settled))

    def test_bounced_after_the_deadline_alerts_the_credit_managers_at_once(self):
        invoice = self.overdue_invoice(1000.0)
        settled = self.settled_declaration(invoice)
        with freeze_time("2026-03-10"):  # the deadline was 2 March
            self.bounce(invoice)
        self.assertIn(
            f"Payment undone: declare {invoice.name} again at once",
            self.activity_summaries(settled, self.manager),
        )
        self.run_cron("2026-03-10")
        self.assertEqual((self.declarations() - settled).line_ids.move_id, invoice)
        # Filed in time the first time: the cover is not lost.
        self.assertFalse(invoice.credit_insurance_cover_lost)


@tagged("post_install", "-at_install")
class TestDiscretionaryCover(RulesCase):
    def test_private_person_never_gets_discretionary_cover(self):
        self.policy.enforcement_mode = "block"
        person = self.env["res.partner"].create(
            {"name": "Jeanne Martin", "customer_rank": 1}
        )
        cover = self.cover(person)
        self.assertFalse(cover.policy, "outside the policy")
        self.assertEqual((cover.limit, cover.no_cover_reason), (0.0, "private_person"))
        self.assertEqual(person.credit_insurance_cover_type, "none")
        self.assertEqual(person.credit_insurance_no_cover_reason, "private_person")
        # Outside the policy: not blocked, not insured, never declared.
        self.assertEqual(self.make_order(9000.0, buyer=person).state, "sale")
        invoice = self.overdue_invoice(1000.0, buyer=person)
        self.assertEqual(invoice.credit_insurance_cover_state, "none")
        self.run_cron(TRIGGER)
        self.assertFalse(self.declarations(person))
        # A contact of a company counts for the company.
        self.assertEqual(self.cover(self.buyer_contact).limit, 5000.0)

    def test_public_buyers_and_affiliates_as_the_policy_says(self):
        public = self.make_buyer("Mairie de Villeurbanne", "216902647")
        salesman = self.make_user(
            "dcl_salesman", "base.group_user,sales_team.group_sale_salesman"
        )
        credit_user = self.make_user(
            "dcl_credit_user",
            "base.group_user,credit_insurance.group_credit_insurance_user",
        )
        # Salespeople do not even read it; credit users read, managers decide.
        with self.assertRaises(AccessError):
            public.with_user(salesman).credit_insurance_public_buyer = True
        with self.assertRaisesRegex(AccessError, "Only credit insurance managers"):
            public.with_user(credit_user).credit_insurance_public_buyer = True
        public.with_user(self.manager).credit_insurance_public_buyer = True
        self.assertEqual(self.cover(public).limit, 5000.0, "this policy takes them")
        self.policy.discretionary_exclude_public = True
        cover = self.cover(public)
        self.assertEqual((cover.limit, cover.no_cover_reason), (0.0, "public_buyer"))
        self.make_limit(8000.0, buyer=public)  # a named limit still insures it
        self.assertEqual(self.cover(public).limit, 8000.0)

        sister = self.setup_other_company()["company"].partner_id
        self.assertEqual(self.cover(sister).limit, 5000.0)
        self.policy.discretionary_exclude_affiliates = True
        self.assertEqual(self.cover(sister).no_cover_reason, "affiliate")
        subsidiary = self.make_buyer("Filiale Textile SAS", "552100557")
        subsidiary.with_user(self.manager).credit_insurance_affiliate = True
        self.assertEqual(self.cover(subsidiary).limit, 0.0)

    def test_payment_experience_or_a_recent_credit_report(self):
        """At least one invoice of 1,000 paid within 30 days of its due date
        in the last 12 months, or a credit report of the last 12 months."""
        self.policy.write(
            {
                "discretionary_condition": "experience",
                "experience_min_amount": 1000.0,
                "experience_payment_days": 30,
                "experience_months": 12,
                "credit_report_months": 12,
            }
        )
        punctual = self.make_buyer("Ponctuelle SARL", "552100558")
        late = self.make_buyer("Retardataire SA", "552100559")
        newcomer = self.make_buyer("Nouvelle SAS", "552100560")
        # 1,200 due on 31 January, paid 20 days after it, and 40 days after.
        for buyer, paid_on in ((punctual, "2026-02-20"), (late, "2026-03-12")):
            self.pay_on(paid_on, self.overdue_invoice(1000.0, buyer=buyer), 1200.0)
        day = "2026-04-01"
        self.assertEqual(self.cover(punctual, date=day).limit, 5000.0)
        for buyer in (late, newcomer):
            cover = self.cover(buyer, date=day)
            self.assertEqual(cover.policy, self.policy)
            self.assertEqual(
                (cover.limit, cover.no_cover_reason), (0.0, "no_experience")
            )
        # A credit report of 15 January stands for the experience; one of
        # 15 January 2025, more than 12 months before, does not.
        newcomer.with_user(
            self.manager
        ).credit_insurance_credit_report_date = "2026-01-15"
        self.assertEqual(self.cover(newcomer, date=day).limit, 5000.0)
        newcomer.with_user(
            self.manager
        ).credit_insurance_credit_report_date = "2025-01-15"
        self.assertEqual(self.cover(newcomer, date=day).limit, 0.0)
        # Without discretionary cover, an order needs a named limit.
        self.policy.enforcement_mode = "block"
        with freeze_time(day):
            self.buyer.invalidate_recordset()
            self.assertEqual(late.credit_insurance_cover_type, "none")
            with self.assertRaisesRegex(UserError, "over its insured limit"):
                self.make_order(100.0, buyer=late)
