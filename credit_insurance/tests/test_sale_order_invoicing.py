from odoo import Command
from odoo.tests import tagged

from .test_sale_order import OrderLimitCommon


@tagged("post_install", "-at_install")
class TestInvoicePosting(OrderLimitCommon):
    """Invoices that do not come from a checked order are checked on posting."""

    def test_invoice_without_order_above_the_limit_is_refused(self):
        self.make_invoice(3000.0)
        invoice = self.make_invoice(2500.0, post=False)
        self.assertRefused(
            invoice.action_post,
            "cannot be posted",
            "Buyer SA",
            "Insured limit: $\xa05,000.00",
            "Current exposure: $\xa03,000.00",
            "This invoice: $\xa02,500.00",
            "Shortfall: $\xa0500.00",
        )
        self.assertEqual(invoice.state, "draft")
        self.make_invoice(2000.0)  # fits

    def test_invoices_posted_together_add_up(self):
        invoices = self.make_invoice(3000.0, post=False) + self.make_invoice(
            3000.0, post=False
        )
        self.assertRefused(invoices.action_post, "Current exposure: $\xa03,000.00")
        self.assertEqual(invoices.mapped("state"), ["draft", "draft"])

    def test_invoice_of_a_confirmed_order_is_not_checked_again(self):
        self.policy.enforcement_mode = "warn"
        order = self.make_order(6000.0)  # accepted above the limit
        self.policy.enforcement_mode = "block"
        invoice = order._create_invoices()
        invoice.action_post()
        self.assertEqual(invoice.state, "posted")

    def test_lines_added_to_an_order_invoice_are_checked(self):
        order = self.make_order(3000.0)
        invoice = order._create_invoices()
        invoice.write(
            {
                "invoice_line_ids": [
                    Command.create(
                        {
                            "name": "Extra work",
                            "quantity": 1,
                            "price_unit": 2500.0,
                            "tax_ids": [Command.set(self.vat_20.ids)],
                        }
                    )
                ]
            }
        )
        # The order is still in the exposure until its invoice is posted.
        self.assertRefused(
            invoice.action_post,
            "Current exposure: $\xa03,000.00",
            "This invoice: $\xa02,500.00",
        )

    def test_invoices_under_a_stop_of_deliveries_are_posted_not_insured(self):
        order = self.make_order(1000.0)
        self.set_stop("Protracted default")
        # New orders are refused...
        self.assertRefused(
            self.quotation(10.0).action_confirm,
            "deliveries to Buyer SA are stopped",
            "Protracted default",
        )
        # ...but what was ordered before the stop is invoiced, warned, and
        # not insured: delivered under the stop.
        invoice = order._create_invoices()
        self.assertIn(
            "Deliveries to Buyer SA are stopped (Protracted default): this "
            "invoice will not be insured.",
            invoice.credit_insurance_warning,
        )
        invoice.action_post()
        self.assertRecordValues(
            invoice,
            [
                {
                    "state": "posted",
                    "credit_insurance_stopped": True,
                    "credit_insurance_insured_amount": 0.0,
                    "credit_insurance_cover_state": "stopped",
                }
            ],
        )
        self.assertNoted(invoice, "Posted under a stop of deliveries", "not insured")
        # So is an invoice without order, whatever its amount; a credit note
        # is never held back.
        alone = self.make_invoice(9000.0)
        self.assertEqual(alone.credit_insurance_cover_state, "stopped")
        refund = self.make_invoice(500.0, move_type="out_refund")
        self.assertEqual(refund.state, "posted")

    def test_warn_mode_and_credit_notes_post(self):
        self.policy.enforcement_mode = "warn"
        self.assertEqual(self.make_invoice(9000.0).state, "posted")
        self.policy.enforcement_mode = "block"
        refund = self.make_invoice(500.0, move_type="out_refund")
        self.assertEqual(refund.state, "posted")

    def test_foreign_currency_invoice_at_its_date(self):
        eur = self.setup_other_currency(
            "EUR", rates=[("2016-01-01", 4.0), ("2019-01-01", 2.0)]
        )
        invoice = self.make_invoice(
            12000.0, currency=eur, invoice_date="2018-06-01", post=False
        )
        invoice.action_post()  # 3,000 at the invoice date (6,000 today)
        self.assertEqual(invoice.state, "posted")
        self.assertRefused(
            self.make_invoice(6000.0, currency=eur, post=False).action_post,
            "Current exposure: $\xa06,000.00",
            "This invoice: $\xa03,000.00",
        )
