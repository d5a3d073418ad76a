"""The export cover stays with the seller's staff too (credit_insurance's
readme, "Who sees what"), over the test server's JSON-RPC.

Boston Fabrics holds an export limit of 8,000 under a US country cap of
10,000; Chicago Linen, in the same country, owes 7,000 (no VAT): 3,000 are left
under the cap. Morocco is under a moratorium: its buyer's export cover is
stopped.
"""

from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.credit_insurance.tests.jsonrpc import JsonRpcMixin

from .common import ExportCommon

EXPORT_FIELDS = [
    "credit_insurance_oecd_category_id",
    "credit_insurance_export_block",
    "credit_insurance_political_event_id",
    "credit_insurance_country_available",
    "credit_insurance_has_country_cap",
]
# What a salesperson quotes with, beside the available cover.
SALES_FIELDS = EXPORT_FIELDS[1:]
COUNTRY_FIELDS = ["oecd_risk_category_id", "oecd_risk_date", "oecd_risk_source"]


@tagged("post_install", "-at_install")
class TestExportConfidentiality(ExportCommon, HttpCase, JsonRpcMixin):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.set_cap(cls.us, 10000.0)
        cls.make_export_limit(cls.us_buyer, 8000.0)
        cls.make_invoice(7000.0, buyer=cls.us_buyer_2, taxes=cls.env["account.tax"])
        cls.moratorium = cls.political_event(cls.ma)
        cls.salesperson = cls.make_user(
            "exp_salesperson", "base.group_user,sales_team.group_sale_salesman"
        )
        cls.credit_user = cls.make_user(
            "exp_credit_user",
            "base.group_user,credit_insurance.group_credit_insurance_user",
        )
        contact = cls.env["res.partner"].create(
            {"name": "Mary Payables", "parent_id": cls.us_buyer.id}
        )
        cls.portal = new_test_user(
            cls.env,
            login="exp_portal",
            groups="base.group_portal",
            partner_id=contact.id,
            company_id=cls.company.id,
        )

    def read_as(self, login, model, records, names):
        self.authenticate(login, login)
        return self.call_kw(model, "read", records.ids, names)

    def test_salesperson_sees_what_stops_an_export_order(self):
        buyers = self.us_buyer | self.ma_buyer
        rows, error = self.read_as(
            "exp_salesperson", "res.partner", buyers, SALES_FIELDS
        )
        self.assertFalse(error)
        us, ma = rows
        self.assertEqual(
            us["credit_insurance_country_available"], 3000.0
        )  # 10,000 - 7,000
        self.assertTrue(us["credit_insurance_has_country_cap"])
        self.assertFalse(us["credit_insurance_export_block"])
        self.assertEqual(ma["credit_insurance_export_block"], "political_event")
        self.assertEqual(
            ma["credit_insurance_political_event_id"][0], self.moratorium.id
        )
        self.assertRefused(
            self.call_kw(
                "res.partner", "read", buyers.ids, ["credit_insurance_oecd_category_id"]
            )
        )
        # Countries: public reference data, read by every internal user.
        [country], error = self.call_kw(
            "res.country", "read", self.ma.ids, COUNTRY_FIELDS
        )
        self.assertEqual(country["oecd_risk_category_id"][0], self.category[3].id)

    def test_credit_user_sees_the_country_risk_of_a_buyer(self):
        [row], error = self.read_as(
            "exp_credit_user", "res.partner", self.ma_buyer, EXPORT_FIELDS
        )
        self.assertFalse(error)
        self.assertEqual(
            row["credit_insurance_oecd_category_id"][0], self.category[3].id
        )

    def test_portal_user_of_the_buyer_sees_none(self):
        self.authenticate("exp_portal", "exp_portal")
        described, __ = self.call_kw("res.partner", "fields_get", attributes=["type"])
        self.assertFalse(set(EXPORT_FIELDS) & set(described))
        for name in EXPORT_FIELDS:
            for method, args in [
                ("read", [self.us_buyer.ids, [name]]),
                ("search", [[(name, "!=", False)]]),
                ("read_group", [[(name, "!=", False)], ["__count"], []]),
            ]:
                self.assertRefused(
                    self.call_kw("res.partner", method, *args), msg=f"{method} {name}"
                )
        described, __ = self.call_kw("res.country", "fields_get", attributes=["type"])
        self.assertIn("code", described)
        self.assertFalse(set(COUNTRY_FIELDS) & set(described))
        for name in COUNTRY_FIELDS:
            self.assertRefused(
                self.call_kw("res.country", "read", self.ma.ids, [name]), msg=name
            )
            self.assertRefused(
                self.call_kw("res.country", "read_group", [], [name], [name]), msg=name
            )
