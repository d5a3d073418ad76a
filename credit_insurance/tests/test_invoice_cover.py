from odoo.tests import tagged

from .common import CreditInsuranceCommon


@tagged("post_install", "-at_install")
class TestInvoiceCover(CreditInsuranceCommon):
    def test_insured_amount_excludes_vat_unless_the_policy_covers_it(self):
        invoice = self.make_invoice(1000.0)
        self.assertRecordValues(
            invoice,
            [
                {
                    "credit_insurance_policy_id": self.policy.id,
                    "credit_insurance_insured_amount": 1000.0,
                    "credit_insurance_cover_state": "full",
                }
            ],
        )
        self.policy.vat_covered = True
        covered_vat = self.make_invoice(1000.0)
        self.assertEqual(covered_vat.credit_insurance_insured_amount, 1200.0)

    def test_invoices_consume_the_limit_in_force_when_posted(self):
        self.make_limit(1500.0)
        first, second, third = (self.make_invoice(1000.0) for __ in range(3))
        self.assertEqual(
            [
                first.credit_insurance_insured_amount,
                second.credit_insurance_insured_amount,
                third.credit_insurance_insured_amount,
            ],
            [1000.0, 500.0, 0.0],
        )
        self.assertEqual(
            [
                first.credit_insurance_cover_state,
                second.credit_insurance_cover_state,
                third.credit_insurance_cover_state,
            ],
            ["full", "partial", "over_limit"],
        )

    def test_invoices_posted_together_share_the_limit(self):
        self.make_limit(1500.0)
        invoices = self.make_invoice(1000.0, post=False) + self.make_invoice(
            1000.0, post=False
        )
        invoices.action_post()
        self.assertEqual(
            sorted(invoices.mapped("credit_insurance_insured_amount")), [500.0, 1000.0]
        )

    def test_payment_frees_the_limit_for_later_invoices(self):
        self.make_limit(1500.0)
        first = self.make_invoice(1000.0)
        self.pay(first, 1200.0)
        self.assertEqual(
            self.make_invoice(1000.0).credit_insurance_insured_amount, 1000.0
        )

    def test_term_above_maximum_credit_period_is_not_insured(self):
        invoice = self.make_invoice(1000.0, due_days=120)
        self.assertRecordValues(
            invoice,
            [
                {
                    "credit_insurance_term_exceeded": True,
                    "credit_insurance_insured_amount": 0.0,
                    "credit_insurance_cover_state": "term",
                }
            ],
        )
        self.assertEqual(
            self.make_invoice(1000.0, due_days=90).credit_insurance_cover_state, "full"
        )

    def test_disputed_invoice_is_excluded_until_cleared(self):
        invoice = self.make_invoice(1000.0)
        invoice.credit_insurance_disputed = True
        self.assertEqual(invoice.credit_insurance_insured_amount, 0.0)
        self.assertEqual(invoice.credit_insurance_cover_state, "disputed")
        invoice.credit_insurance_disputed = False
        self.assertEqual(invoice.credit_insurance_insured_amount, 1000.0)

    def test_declaration_deadline_is_due_date_plus_declaration_period(self):
        invoice = self.make_invoice(1000.0, invoice_date="2024-01-10", due_days=30)
        self.assertEqual(invoice.invoice_date_due.isoformat(), "2024-02-09")
        self.assertEqual(
            invoice.credit_insurance_declaration_deadline.isoformat(), "2024-03-10"
        )
        self.policy.declaration_days = 15
        self.assertEqual(
            invoice.credit_insurance_declaration_deadline.isoformat(), "2024-02-24"
        )

    def test_no_policy_no_cover(self):
        self.policy.active = False
        invoice = self.make_invoice(1000.0)
        self.assertFalse(invoice.credit_insurance_policy_id)
        self.assertEqual(invoice.credit_insurance_cover_state, "none")
        self.assertFalse(invoice.credit_insurance_declaration_deadline)

    def test_reset_to_draft_and_repost_uses_the_limit_of_the_day(self):
        self.make_limit(500.0)
        invoice = self.make_invoice(1000.0)
        self.assertEqual(invoice.credit_insurance_insured_amount, 500.0)
        invoice.button_draft()
        self.assertFalse(invoice.credit_insurance_policy_id)
        self.make_limit(2000.0, "2021-01-01", decision="approved")
        invoice.action_post()
        self.assertEqual(invoice.credit_insurance_insured_amount, 1000.0)

    def test_foreign_currency_invoice_insured_in_company_currency(self):
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.0)])
        invoice = self.make_invoice(1000.0, currency=eur)
        self.assertEqual(invoice.credit_insurance_insured_amount, 500.0)
