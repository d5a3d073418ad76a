from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from odoo.addons.credit_insurance_bpi_export.models.credit_insurance_cover import (
    ExportBuyerCover,
)

from .common import ExportCommon


@tagged("post_install", "-at_install")
class TestExportCover(ExportCommon):
    def no_tax(self):
        return self.env["account.tax"]

    # ------------------------------------------------------- which policy

    def test_buyer_abroad_falls_under_the_export_policy(self):
        cover = self.cover(self.us_buyer)
        self.assertIsInstance(cover, ExportBuyerCover)
        self.assertEqual(cover.policy, self.export_policy)
        # The export cover adds to the global policy's: 4,000 + 5,000.
        self.assertEqual(cover.limit, 9000.0)
        self.assertEqual(cover.added_limit, 5000.0)
        self.assertEqual(cover.coverage_pct, 80.0)
        self.assertEqual(cover.political_coverage_pct, 90.0)
        # The domestic buyer keeps the global policy and its figures.
        domestic = self.cover(self.buyer)
        self.assertNotIsInstance(domestic, ExportBuyerCover)
        self.assertEqual(domestic.policy, self.policy)
        self.assertEqual(domestic.limit, 5000.0)

    def test_named_export_limit_uses_the_commercial_coverage(self):
        self.make_export_limit(self.us_buyer, 20000.0)
        cover = self.cover(self.us_buyer)
        self.assertEqual(cover.limit, 25000.0)  # 20,000 + the global 5,000
        self.assertEqual(cover.coverage_pct, 95.0)

    def test_global_decision_on_a_buyer_abroad_is_never_removed(self):
        # A decision under the global policy keeps insuring an export buyer;
        # the export policy adds its discretionary limit on top.
        self.make_limit(50000.0, buyer=self.us_buyer)
        cover = self.cover(self.us_buyer)
        self.assertEqual(cover.policy, self.export_policy)
        self.assertEqual(cover.limit, 54000.0)  # 50,000 + 4,000

    def test_private_person_abroad_gets_no_discretionary_cover(self):
        person = self.env["res.partner"].create(
            {"name": "John Smith", "country_id": self.us.id, "customer_rank": 1}
        )
        cover = self.cover(person)
        self.assertEqual(cover.limit, 0.0)
        self.assertEqual(cover.no_cover_reason, "private_person")

    def test_without_export_policy_in_force_the_global_policy_applies(self):
        self.export_policy.date_end = "2020-12-31"
        cover = self.cover(self.us_buyer)
        self.assertNotIsInstance(cover, ExportBuyerCover)
        self.assertEqual(cover.policy, self.policy)
        self.assertEqual(cover.limit, 5000.0)

    def test_one_export_policy_at_a_time(self):
        with self.assertRaises(ValidationError):
            self.export_policy.copy({"name": "EXP-2", "date_start": "2024-01-01"})

    def test_political_coverage_is_a_percentage(self):
        with self.assertRaises(ValidationError):
            self.export_policy.political_coverage_pct = 120.0

    # ------------------------------------------------------ exclusions

    def test_excluded_country_keeps_the_global_cover(self):
        self.export_policy.excluded_country_ids = self.ma
        cover = self.cover(self.ma_buyer)
        self.assertNotIsInstance(cover, ExportBuyerCover)
        self.assertEqual(cover.policy, self.policy)
        self.assertEqual(cover.limit, 5000.0)  # the global discretionary limit
        self.assertEqual(cover.coverage_pct, 70.0)
        self.assertFalse(self.ma_buyer.credit_insurance_export_block)
        # Other countries keep the export cover on top.
        self.assertEqual(self.cover(self.us_buyer).limit, 9000.0)

    def test_excluded_country_under_an_export_policy_alone_has_no_cover(self):
        self.policy.active = False
        self.export_policy.excluded_country_ids = self.ma
        cover = self.cover(self.ma_buyer)
        self.assertEqual(cover.limit, 0.0)
        self.assertEqual(cover.coverage_pct, 0.0)
        self.assertEqual(cover.block_reason, "excluded_country")
        self.assertEqual(
            self.ma_buyer.credit_insurance_export_block, "excluded_country"
        )
        self.assertEqual(self.cover(self.us_buyer).limit, 4000.0)

    def test_country_outside_the_covered_list_keeps_the_global_cover(self):
        self.export_policy.covered_country_ids = self.us
        cover = self.cover(self.ma_buyer)
        self.assertNotIsInstance(cover, ExportBuyerCover)
        self.assertEqual(cover.policy, self.policy)
        self.assertEqual(cover.limit, 5000.0)
        self.assertEqual(self.cover(self.us_buyer).block_reason, "")

    def test_excluded_oecd_category_keeps_the_global_cover_only(self):
        self.export_policy.excluded_oecd_category_ids = self.category[3]
        self.assertEqual(self.cover(self.ma_buyer).limit, 5000.0)
        self.policy.active = False  # the export policy alone
        cover = self.cover(self.ma_buyer)
        self.assertEqual(cover.limit, 0.0)
        self.assertEqual(cover.block_reason, "excluded_category")
        # An order of any amount would now exceed the available cover.
        self.make_order(100.0, buyer=self.ma_buyer)
        self.assertLess(self.cover(self.ma_buyer).available, 0.0)

    # ----------------------------------------------------- country caps

    def test_country_cap_bounds_every_buyer_of_the_country(self):
        self.set_cap(self.us, 10000.0)
        self.make_export_limit(self.us_buyer, 8000.0)
        self.make_export_limit(self.us_buyer_2, 8000.0)
        self.make_invoice(7000.0, buyer=self.us_buyer_2, taxes=self.no_tax())
        cover = self.cover(self.us_buyer)
        self.assertEqual(cover.country_cap, 10000.0)
        self.assertEqual(cover.country_exposure, 7000.0)
        # min(buyer: 8,000 + the global 5,000 - 0, country: 10,000 - 7,000)
        self.assertEqual(cover.available, 3000.0)
        self.assertEqual(self.us_buyer.credit_insurance_available, 3000.0)
        self.assertEqual(self.us_buyer.credit_insurance_country_available, 3000.0)
        # min(13,000 - 7,000, 3,000): the country's cap binds its buyers.
        self.assertEqual(self.cover(self.us_buyer_2).available, 3000.0)
        # The buyer's own limit binds when it is the smaller one: 13,000 -
        # 7,000 - 4,000 = 2,000 under a cap of 20,000.
        self.export_policy.country_cap_ids.cap_amount = 20000.0
        self.make_invoice(4000.0, buyer=self.us_buyer_2, taxes=self.no_tax())
        self.assertEqual(self.cover(self.us_buyer_2).available, 2000.0)
        # Buyers of other countries are not affected: 4,000 + 5,000.
        self.assertEqual(self.cover(self.ma_buyer).available, 9000.0)

    def test_confirmed_orders_count_in_the_country_exposure(self):
        self.set_cap(self.us, 10000.0)
        self.make_export_limit(self.us_buyer, 20000.0)
        self.make_order(6000.0, buyer=self.us_buyer_2)
        cover = self.cover(self.us_buyer)
        self.assertEqual(cover.country_uninvoiced, 6000.0)
        self.assertEqual(cover.available, 4000.0)
        self.make_order(4000.0, buyer=self.us_buyer)
        cover = self.cover(self.us_buyer)
        self.assertEqual(cover.available, 0.0)
        self.assertEqual(cover.block_reason, "country_cap")

    def test_country_cap_in_another_currency(self):
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.0)])
        self.export_policy.currency_id = eur
        self.set_cap(self.us, 10000.0)  # 10,000 EUR = 5,000 in company currency
        self.make_export_limit(self.us_buyer, 20000.0, currency_id=eur.id)
        cover = self.cover(self.us_buyer)
        self.assertEqual(cover.limit, 15000.0)  # 20,000 EUR / 2 + the global 5,000
        self.assertEqual(cover.country_cap, 5000.0)
        self.assertEqual(cover.available, 5000.0)

    def test_multi_currency_export_invoices(self):
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.0)])
        self.set_cap(self.us, 10000.0)
        self.make_export_limit(self.us_buyer, 8000.0)
        # 6,000 EUR = 3,000 in company currency; 2,000 more in company currency.
        self.make_invoice(
            6000.0, buyer=self.us_buyer, currency=eur, taxes=self.no_tax()
        )
        self.make_invoice(2000.0, buyer=self.us_buyer_2, taxes=self.no_tax())
        cover = self.cover(self.us_buyer)
        self.assertEqual(cover.exposure, 3000.0)
        self.assertEqual(cover.country_exposure, 5000.0)
        self.assertEqual(cover.available, 5000.0)

    def test_cap_shows_the_exposure_of_the_country(self):
        cap = self.set_cap(self.us, 10000.0)
        self.make_invoice(1500.0, buyer=self.us_buyer, taxes=self.no_tax())
        self.make_invoice(500.0, buyer=self.us_buyer_2, taxes=self.no_tax())
        self.make_invoice(900.0, buyer=self.ma_buyer, taxes=self.no_tax())
        cap.invalidate_recordset(["exposure"])
        self.assertEqual(cap.exposure, 2000.0)

    # --------------------------------------------------- political events

    def test_political_event_stops_new_cover_in_the_country(self):
        self.make_export_limit(self.us_buyer, 20000.0)
        event = self.political_event(self.us, event_type="non_transfer")
        cover = self.cover(self.us_buyer)
        self.assertEqual(cover.limit, 25000.0)  # the decisions stay on record
        self.assertEqual(cover.available, 0.0)
        self.assertEqual(cover.block_reason, "political_event")
        self.assertEqual(cover.political_event, event)
        self.assertEqual(self.us_buyer_2.credit_insurance_political_event_id, event)
        self.assertEqual(self.cover(self.ma_buyer).available, 9000.0)
        self.assertEqual(self.cover(self.buyer).available, 5000.0)

    def test_political_event_over_or_not_yet_started_has_no_effect(self):
        self.political_event(self.us, date_start="2020-01-01", date_end="2020-06-30")
        self.political_event(self.us, date_start="2999-01-01")
        self.assertEqual(self.cover(self.us_buyer).available, 9000.0)
        self.assertEqual(self.cover(self.us_buyer, date="2020-03-01").available, 0.0)

    def test_political_event_dates_are_checked(self):
        with self.assertRaises(ValidationError):
            self.political_event(
                self.us, date_start="2024-05-01", date_end="2024-04-01"
            )

    # ------------------------------------------------------- invoices

    def test_invoice_beyond_the_country_cap_is_partly_insured(self):
        self.set_cap(self.us, 10000.0)
        self.make_export_limit(self.us_buyer, 20000.0)
        self.make_export_limit(self.us_buyer_2, 20000.0)
        self.make_invoice(7000.0, buyer=self.us_buyer_2, taxes=self.no_tax())
        invoice = self.make_invoice(5000.0, buyer=self.us_buyer, taxes=self.no_tax())
        self.assertEqual(invoice.credit_insurance_policy_id, self.export_policy)
        self.assertEqual(invoice.credit_insurance_insured_amount, 3000.0)
        self.assertEqual(invoice.credit_insurance_cover_state, "partial")

    def test_invoices_posted_together_share_the_country_cap(self):
        self.set_cap(self.us, 10000.0)
        self.make_export_limit(self.us_buyer, 20000.0)
        self.make_export_limit(self.us_buyer_2, 20000.0)
        first = self.make_invoice(
            6000.0, buyer=self.us_buyer, taxes=self.no_tax(), post=False
        )
        second = self.make_invoice(
            6000.0,
            buyer=self.us_buyer_2,
            taxes=self.no_tax(),
            post=False,
            invoice_date=fields.Date.add(fields.Date.today(), days=1),
        )
        (first | second).action_post()
        self.assertEqual(first.credit_insurance_insured_amount, 6000.0)
        self.assertEqual(second.credit_insurance_insured_amount, 4000.0)

    def test_invoice_under_a_political_event_is_not_insured(self):
        self.make_export_limit(self.us_buyer, 20000.0)
        self.political_event(self.us)
        invoice = self.make_invoice(1000.0, buyer=self.us_buyer, taxes=self.no_tax())
        self.assertEqual(invoice.credit_insurance_insured_amount, 0.0)
        self.assertEqual(invoice.credit_insurance_cover_state, "political")

    def test_invoice_to_an_excluded_country_keeps_the_global_cover(self):
        self.export_policy.excluded_country_ids = self.us
        invoice = self.make_invoice(1000.0, buyer=self.us_buyer, taxes=self.no_tax())
        self.assertEqual(invoice.credit_insurance_policy_id, self.policy)
        self.assertEqual(invoice.credit_insurance_insured_amount, 1000.0)
        self.assertEqual(invoice.credit_insurance_cover_state, "full")
        # Under the export policy alone, nothing insures it.
        self.policy.active = False
        invoice = self.make_invoice(1000.0, buyer=self.us_buyer, taxes=self.no_tax())
        self.assertEqual(invoice.credit_insurance_insured_amount, 0.0)
        self.assertEqual(invoice.credit_insurance_cover_state, "country")

    def test_export_invoice_keeps_the_export_credit_period(self):
        # 150 days: beyond the global policy's 90, within the export 180.
        invoice = self.make_invoice(
            1000.0, buyer=self.us_buyer, taxes=self.no_tax(), due_days=150
        )
        self.assertEqual(invoice.credit_insurance_cover_state, "full")
        invoice = self.make_invoice(
            1000.0, buyer=self.us_buyer, taxes=self.no_tax(), due_days=200
        )
        self.assertEqual(invoice.credit_insurance_cover_state, "term")

    # ------------------------------------------------------- set-based

    def test_fixed_number_of_queries_for_any_batch(self):
        self.set_cap(self.us, 100000.0)
        self.set_cap(self.ma, 100000.0)
        self.political_event(self.ma)
        Cover = self.env["credit.insurance.cover"]

        def queries(count):
            buyers = self.env["res.partner"]
            for index in range(count):
                buyer = self.make_buyer(
                    f"Buyer {count}-{index}", self.us if index % 2 else self.ma
                )
                self.make_invoice(100.0, buyer=buyer, taxes=self.no_tax())
                buyers |= buyer
            self.env.invalidate_all()
            before = self.env.cr.sql_log_count
            covers = Cover._get_buyer_covers(buyers)
            self.assertEqual(len(covers), count)
            return self.env.cr.sql_log_count - before

        queries(2)  # warm the caches (ormcache, registry) first
        self.assertEqual(queries(3), queries(12))

    # ---------------------------------------------------------- French

    def test_errors_and_cover_states_read_in_french(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._load_module_terms(
            ["credit_insurance_bpi_export"], ["fr_FR"], overwrite=True
        )
        Event = self.env["credit.insurance.political.event"].with_context(lang="fr_FR")
        with self.assertRaisesRegex(ValidationError, "la date de fin précède"):
            Event.create(
                {
                    "country_id": self.us.id,
                    "event_type": "non_transfer",
                    "date_start": "2024-05-01",
                    "date_end": "2024-04-01",
                }
            )
        states = dict(
            self.env["account.move"]
            .with_context(lang="fr_FR")
            ._fields["credit_insurance_cover_state"]
            ._description_selection(self.env(context={"lang": "fr_FR"}))
        )
        self.assertEqual(states["political"], "Non assurée (événement politique)")
