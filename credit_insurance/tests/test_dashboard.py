"""The dashboard's figures, the lists they open, and its rendering in a browser."""

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import BrowserCase, CreditInsuranceCommon


@tagged("post_install", "-at_install")
class TestDashboard(CreditInsuranceCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Dashboard = cls.env["credit.insurance.dashboard"]
        cls.over = cls.env["res.partner"].create(
            {
                "name": "Over SA",
                "is_company": True,
                "customer_rank": 1,
                "country_id": cls.env.ref("base.be").id,
            }
        )
        cls.make_limit(10000.0)
        cls.make_limit(1000.0, buyer=cls.over)
        cls.make_invoice(5000.0)  # within 10,000
        cls.make_invoice(2000.0, buyer=cls.over)  # 1,000 uninsured

    def test_figures(self):
        data = self.Dashboard.get_dashboard_data()
        top = {row["name"]: row["uninsured"] for row in data["top_uninsured"]}
        self.assertEqual(top, {"Over SA": 1000.0})  # VAT not covered
        self.assertEqual(data["totals"]["over_limit"], 1)
        self.assertGreaterEqual(data["totals"]["uninsured"], 1000.0)
        self.assertEqual(data["claims"]["open"], 0)
        self.assertEqual(data["declarations"]["to_file"], 0)
        belgium = next(r for r in data["by_country"] if r["country"] == "Belgium")
        self.assertEqual((belgium["limit"], belgium["exposure"]), (1000.0, 2000.0))

    def test_each_figure_opens_its_records(self):
        action = self.Dashboard.open_section("over_limit")
        buyers = self.env["res.partner"].search(action["domain"])
        self.assertIn(self.over, buyers)
        self.assertNotIn(self.buyer, buyers)
        self.make_invoice(100.0, invoice_date="2020-01-01", due_days=30)
        late = self.env["account.move"].search(
            self.Dashboard.open_section("deadlines")["domain"]
        )
        self.assertEqual(late.commercial_partner_id, self.buyer)
        form = self.Dashboard.open_section("buyers", self.over.id)
        self.assertEqual((form["res_id"], form["view_mode"]), (self.over.id, "form"))

    def test_first_instalment_overdue_is_near_its_deadline(self):
        """Half due on 31 January, half on 1 April: on 20 February the first
        is overdue, its deadline (2 March) near, although the invoice's last
        due date is still ahead."""
        term = self.env["account.payment.term"].create(
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
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.buyer.id,
                "invoice_date": "2026-01-01",
                "invoice_payment_term_id": term.id,
                "invoice_line_ids": [
                    Command.create(
                        {"name": "Goods", "quantity": 1, "price_unit": 100.0}
                    )
                ],
            }
        )
        invoice.action_post()
        with freeze_time("2026-02-20"):
            data = self.Dashboard.get_dashboard_data()
            late = self.env["account.move"].search(
                self.Dashboard.open_section("deadlines")["domain"]
            )
        self.assertIn(invoice, late)
        self.assertIn(
            "2026-03-02",
            [
                row["deadline"]
                for row in data["deadlines"]["next"]
                if row["id"] == invoice.id
            ],
        )

    def test_only_credit_insurance_users(self):
        salesman = new_test_user(
            self.env,
            login="db_sales",
            groups="base.group_user,sales_team.group_sale_salesman",
        )
        with self.assertRaises(AccessError):
            self.Dashboard.with_user(salesman).get_dashboard_data()
        with self.assertRaises(AccessError):
            self.Dashboard.with_user(salesman).open_section("buyers")


@tagged("post_install", "-at_install")
class TestDashboardInBrowser(BrowserCase):
    def test_dashboard_tour(self):
        policy = self.make_tour_policy("TOUR-1")
        company = policy.company_id
        Partner = self.env["res.partner"]
        product = self.env["product.product"].create({"name": "Tissu", "list_price": 1})
        for name, limit, amount in (
            ("Dashboard Over Limit SA", 1000.0, 5000.0),
            ("Dashboard Within Limit SA", 100000.0, 5000.0),
        ):
            buyer = Partner.create(
                {"name": name, "is_company": True, "customer_rank": 1}
            )
            self.env["credit.insurance.limit"].create(
                {
                    "partner_id": buyer.id,
                    "policy_id": policy.id,
                    "requested_amount": limit,
                    "granted_amount": limit,
                    "date_effective": "2020-01-01",
                }
            )
            order = (
                self.env["sale.order"]
                .with_company(company)
                .create(
                    {
                        "partner_id": buyer.id,
                        "company_id": company.id,
                        "order_line": [
                            (0, 0, {"product_id": product.id, "price_unit": amount})
                        ],
                    }
                )
            )
            order.state = "sale"  # confirmed without the check: only figures matter
        self.start_tour(
            "/odoo/action-credit_insurance.credit_insurance_dashboard_action",
            "credit_insurance_dashboard",
            login="admin",
        )
