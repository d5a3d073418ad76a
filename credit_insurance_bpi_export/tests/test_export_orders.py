from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import ExportCommon


@tagged("post_install", "-at_install")
class TestExportOrders(ExportCommon):
    """Order confirmation applies the export rules: the export policy blocks
    over-limit orders, VAT not covered (amounts before tax)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.export_policy.enforcement_mode = "block"

    def assertRefused(self, order, *fragments):
        with self.assertRaises(UserError) as caught:
            order.action_confirm()
        message = str(caught.exception)
        for fragment in fragments:
            self.assertIn(fragment, message)
        self.assertEqual(order.state, "draft")
        return message

    def no_tax_invoice(self, amount, buyer):
        return self.make_invoice(amount, buyer=buyer, taxes=self.env["account.tax"])

    def test_political_event_refuses_an_order_within_the_buyer_limit(self):
        self.make_export_limit(self.us_buyer, 20000.0)
        self.political_event(self.us)
        order = self.make_order(100.0, buyer=self.us_buyer, confirm=False)
        self.assertIn("Political event in the country", order.credit_insurance_warning)
        self.assertRefused(
            order,
            order.name,
            "Boston Fabrics Inc.",
            "Export cover: Political event in the country",
            "Shortfall: $\xa0100.00",
        )
        # Buyers of other countries are not affected.
        other = self.make_order(100.0, buyer=self.ma_buyer)
        self.assertEqual(other.state, "sale")
        # Once the event is over, the order goes through.
        self.env["credit.insurance.political.event"].search(
            [("country_id", "=", self.us.id)]
        ).date_end = "2020-06-30"
        order.action_confirm()
        self.assertEqual(order.state, "sale")

    def test_exhausted_country_cap_refuses_an_order_within_the_buyer_limit(self):
        self.set_cap(self.us, 10000.0)
        self.make_export_limit(self.us_buyer, 20000.0)
        self.make_export_limit(self.us_buyer_2, 20000.0)
        self.no_tax_invoice(8000.0, self.us_buyer_2)
        order = self.make_order(2500.0, buyer=self.us_buyer, confirm=False)
        self.assertRefused(
            order,
            "Boston Fabrics Inc.",
            "Insured limit: $\xa025,000.00",  # 20,000 + the global 5,000
            "Export cover: Country cap reached",
            "Cap on United States: $\xa010,000.00, of which $\xa08,000.00",
            "Shortfall: $\xa0500.00",
        )
        # What the country still leaves goes through, exactly to the cap.
        within = self.make_order(2000.0, buyer=self.us_buyer)
        self.assertEqual(within.state, "sale")
        self.assertEqual(self.cover(self.us_buyer).block_reason, "country_cap")
        self.assertRefused(
            self.make_order(1.0, buyer=self.us_buyer_2, confirm=False),
            "Chicago Linen LLC",
            "Country cap reached",
        )

    def test_orders_confirmed_together_share_the_country_cap(self):
        self.set_cap(self.us, 3000.0)
        self.make_export_limit(self.us_buyer, 20000.0)
        self.make_export_limit(self.us_buyer_2, 20000.0)
        first = self.make_order(2000.0, buyer=self.us_buyer, confirm=False)
        second = self.make_order(2000.0, buyer=self.us_buyer_2, confirm=False)
        with self.assertRaises(UserError) as caught:
            (first | second).action_confirm()
        message = str(caught.exception)
        self.assertIn(second.name, message)
        self.assertNotIn(first.name, message)
        self.assertIn("of which $\xa02,000.00", message)

    def test_export_policy_alone_counts_the_exposure_of_unnamed_buyers(self):
        """Without a global policy, buyers abroad without a named limit are
        covered by the export policy's discretionary limit (4,000): what they
        already owe counts against it."""
        self.policy.active = False
        self.no_tax_invoice(3000.0, self.us_buyer)
        self.assertEqual(self.cover(self.us_buyer).exposure, 3000.0)
        self.assertRefused(
            self.make_order(1500.0, buyer=self.us_buyer, confirm=False),
            "Boston Fabrics Inc.",
            "Shortfall: $\xa0500.00",
        )
        within = self.make_order(1000.0, buyer=self.us_buyer)
        self.assertEqual(within.state, "sale")

    def test_excluded_country_refuses_any_order_under_the_export_policy_alone(self):
        self.policy.active = False
        self.export_policy.excluded_country_ids = self.ma
        self.assertRefused(
            self.make_order(1.0, buyer=self.ma_buyer, confirm=False),
            "Export cover: Country excluded by the export policy",
        )

    def test_excluded_country_keeps_the_global_cover_for_orders(self):
        self.policy.enforcement_mode = "block"
        self.export_policy.excluded_country_ids = self.ma
        # Within the global policy's 5,000 (VAT not covered): confirmed.
        within = self.make_order(4000.0, buyer=self.ma_buyer)
        self.assertEqual(within.state, "sale")
        self.assertRefused(
            self.make_order(1500.0, buyer=self.ma_buyer, confirm=False),
            "Textiles de Casablanca",
            "Insured limit: $\xa05,000.00",
            "Shortfall: $\xa0500.00",
        )

    def test_warn_mode_confirms_under_a_political_event_with_a_warning(self):
        self.export_policy.enforcement_mode = "warn"
        self.political_event(self.us)
        order = self.make_order(100.0, buyer=self.us_buyer, confirm=False)
        self.assertIn("Political event in the country", order.credit_insurance_warning)
        order.action_confirm()
        self.assertEqual(order.state, "sale")

    def test_invoice_under_a_political_event_is_posted_not_insured(self):
        # The rules refuse new orders; an invoice is recorded as not insured.
        self.make_export_limit(self.us_buyer, 20000.0)
        self.political_event(self.us)
        invoice = self.no_tax_invoice(1000.0, self.us_buyer)
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(invoice.credit_insurance_cover_state, "political")

    def test_refusal_reads_in_french(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._load_module_terms(
            ["credit_insurance", "credit_insurance_bpi_export"],
            ["fr_FR"],
            overwrite=True,
        )
        self.set_cap(self.us, 1000.0)
        self.make_export_limit(self.us_buyer, 20000.0)
        order = self.make_order(2000.0, buyer=self.us_buyer, confirm=False)
        self.assertRefused(
            order.with_context(lang="fr_FR"),
            "Couverture export : Plafond pays atteint",
            # (country names come with the base module's French terms)
            "Plafond pays (United States) : $\xa01\xa0000,00, dont $\xa00,00 déjà",
        )
