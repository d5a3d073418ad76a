from odoo import Command
from odoo.tests import tagged

from .common import CreditInsuranceCommon


@tagged("post_install", "-at_install")
class TestExposure(CreditInsuranceCommon):
    def test_open_invoice_counts_without_vat_unless_covered(self):
        self.make_invoice(1000.0)
        self.assertEqual(self.cover().exposure, 1000.0)
        self.policy.vat_covered = True
        self.assertEqual(self.cover().exposure, 1200.0)

    def test_draft_invoice_is_no_exposure(self):
        self.make_invoice(1000.0, post=False)
        self.assertEqual(self.cover().exposure, 0.0)

    def test_partial_payment_reduces_exposure(self):
        invoice = self.make_invoice(1000.0)
        self.pay(invoice, 600.0)
        # 600 of 1,200 remain due; 500 of them before tax.
        self.assertEqual(self.cover().exposure, 500.0)
        self.policy.vat_covered = True
        self.assertEqual(self.cover().exposure, 600.0)

    def test_full_payment_clears_exposure(self):
        invoice = self.make_invoice(1000.0)
        self.pay(invoice, 1200.0)
        self.assertEqual(self.cover().exposure, 0.0)

    def test_credit_note_reduces_exposure(self):
        self.make_invoice(1000.0)
        self.make_invoice(200.0, move_type="out_refund")
        self.assertEqual(self.cover().exposure, 800.0)

    def test_invoice_to_a_contact_counts_for_its_company(self):
        self.make_invoice(1000.0, buyer=self.buyer_contact)
        self.assertEqual(self.cover().exposure, 1000.0)
        self.assertEqual(self.cover(buyer=self.buyer_contact).exposure, 1000.0)

    def test_confirmed_order_counts_until_invoice_is_posted(self):
        quotation = self.make_order(1000.0, confirm=False)
        self.assertEqual(self.cover().exposure, 0.0, "a quotation commits nothing")
        quotation.action_confirm()
        self.assertEqual(self.cover().uninvoiced, 1000.0)

        invoice = quotation._create_invoices()
        self.assertEqual(
            self.cover().uninvoiced, 1000.0, "a draft invoice leaves it on the order"
        )
        self.assertEqual(self.cover().receivables, 0.0)

        invoice.action_post()
        cover = self.cover()
        self.assertEqual((cover.uninvoiced, cover.receivables), (0.0, 1000.0))

    def test_partly_invoiced_order(self):
        order = self.make_order(100.0, quantity=10)
        invoice = order._create_invoices()
        invoice.invoice_line_ids.quantity = 4
        invoice.action_post()
        cover = self.cover()
        self.assertEqual((cover.uninvoiced, cover.receivables), (600.0, 400.0))

    def test_cancelled_order_is_no_exposure(self):
        order = self.make_order(1000.0)
        order._action_cancel()
        self.assertEqual(self.cover().exposure, 0.0)

    def test_foreign_currency_at_the_rate_of_the_day(self):
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.0)])
        self.make_invoice(1000.0, currency=eur, taxes=self.env["account.tax"])
        self.assertEqual(self.cover().exposure, 500.0)
        # The euro weakens: what is owed in euros is worth less today.
        self.env["res.currency.rate"].create(
            {"currency_id": eur.id, "rate": 4.0, "name": "2019-01-01"}
        )
        self.assertEqual(self.cover().exposure, 250.0)

    def test_foreign_currency_order(self):
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.0)])
        self.make_order(1000.0, currency=eur)
        self.assertEqual(self.cover().uninvoiced, 500.0)

    def test_limit_in_foreign_currency_is_converted(self):
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.0)])
        self.make_limit(10000.0, currency_id=eur.id)
        self.assertEqual(self.cover().limit, 5000.0)

    def test_each_company_sees_its_own_exposure(self):
        other = self.setup_other_company()["company"]
        self.make_invoice(1000.0)
        self.make_invoice(300.0, company=other, taxes=self.env["account.tax"])
        self.assertEqual(self.cover().exposure, 1000.0)
        other_cover = self.cover(company=other)
        self.assertEqual(other_cover.exposure, 300.0)
        self.assertFalse(other_cover.policy, "the policy belongs to the first company")

    def test_partner_fields_show_cover_of_the_commercial_partner(self):
        self.make_limit(3000.0)
        self.make_invoice(1000.0)
        self.make_order(2500.0)
        for partner in (self.buyer, self.buyer_contact):
            self.assertRecordValues(
                partner,
                [
                    {
                        "credit_insurance_policy_id": self.policy.id,
                        "credit_insurance_cover_type": "named",
                        "credit_insurance_limit": 3000.0,
                        "credit_insurance_exposure": 3500.0,
                        "credit_insurance_available": -500.0,
                        "credit_insurance_uninsured": 500.0,
                        "credit_insurance_coverage_pct": 90.0,
                    }
                ],
            )

    def test_search_filters(self):
        calm = self.env["res.partner"].create(
            {"name": "Calm SARL", "is_company": True, "customer_rank": 1}
        )
        refused = self.env["res.partner"].create(
            {"name": "Refused SAS", "is_company": True, "customer_rank": 1}
        )
        self.make_limit(0.0, buyer=refused, decision="refused")
        self.make_invoice(6000.0)  # over the 5,000 discretionary limit
        self.make_invoice(100.0, buyer=calm)
        Partner = self.env["res.partner"]
        over = Partner.search([("credit_insurance_uninsured", ">", 0)])
        self.assertIn(self.buyer, over)
        self.assertNotIn(calm, over)
        no_cover = Partner.search([("credit_insurance_limit", "=", 0)])
        self.assertIn(refused, no_cover)
        self.assertNotIn(calm, no_cover)
        self.assertIn(
            calm, Partner.search([("credit_insurance_policy_id", "=", self.policy.id)])
        )

    def test_query_count_does_not_grow_with_buyers_or_invoices(self):
        """Set-based: the same queries for 2 buyers with 4 invoices as for 30
        buyers with 120 invoices, orders and limits in several currencies (a
        single currency spares the query of rates)."""
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.0)])

        def make_buyers(count, invoices_each):
            buyers = self.env["res.partner"].create(
                [
                    {"name": f"Buyer {i}", "is_company": True, "customer_rank": 1}
                    for i in range(count)
                ]
            )
            moves = self.env["account.move"].create(
                [
                    {
                        "move_type": "out_invoice",
                        "partner_id": buyer.id,
                        "invoice_date": "2019-06-01",
                        "currency_id": (eur if n % 2 else self.currency).id,
                        "invoice_line_ids": [
                            Command.create(
                                {
                                    "name": "Goods",
                                    "price_unit": 100.0,
                                    "tax_ids": [Command.set(self.vat_20.ids)],
                                }
                            )
                        ],
                    }
                    for buyer in buyers
                    for n in range(invoices_each)
                ]
            )
            moves.action_post()
            for buyer in buyers[::3]:
                self.make_limit(1000.0, buyer=buyer)
                self.make_order(50.0, buyer=buyer)
            return buyers

        small, large = make_buyers(2, 2), make_buyers(30, 4)
        Cover = self.env["credit.insurance.cover"]
        self.env.flush_all()
        counts = []
        for buyers in (small, large):
            for __ in range(2):  # fill the registry caches (access rules, groups)
                Cover._get_buyer_covers(buyers)
                self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            covers = Cover._get_buyer_covers(buyers)
            counts.append(self.env.cr.sql_log_count - before)
            self.assertEqual(len(covers), len(buyers))
        self.assertEqual(counts[0], counts[1], f"queries per batch: {counts}")
        self.assertLessEqual(counts[1], 12)
