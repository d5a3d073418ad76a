"""In a real browser: a salesperson requests a limit from the buyer's form,
cannot confirm an order above it, asks for an increase from the dialog; a
credit manager confirms the order anyway with a reason."""

from odoo import Command
from odoo.tests import new_test_user, tagged

from .common import BrowserCase

SALESMAN = "base.group_user,sales_team.group_sale_salesman"
MANAGER = (
    "base.group_user,sales_team.group_sale_salesman_all_leads,"
    "credit_insurance.group_credit_insurance_manager"
)


@tagged("post_install", "-at_install")
class TestOrderLimitTour(BrowserCase):
    def test_order_above_the_limit_in_the_browser(self):
        company = self.env.ref("base.user_admin").company_id
        salesman = new_test_user(
            self.env, login="tour_sales", groups=SALESMAN, company_id=company.id
        )
        manager = new_test_user(
            self.env, login="tour_manager", groups=MANAGER, company_id=company.id
        )
        policy = self.make_tour_policy("TOUR-ORDERS", enforcement_mode="block")
        buyer = self.env["res.partner"].create(
            {"name": "Tour Buyer SA", "is_company": True, "customer_rank": 1}
        )
        self.env["credit.insurance.limit"].create(
            {
                "partner_id": buyer.id,
                "policy_id": policy.id,
                "requested_amount": 1000.0,
                "granted_amount": 1000.0,
                "date_effective": "2020-01-01",
            }
        )
        product = self.env["product.product"].create(
            {"name": "Tissu", "list_price": 1.0, "taxes_id": False}
        )
        order = (
            self.env["sale.order"]
            .with_company(company)
            .create(
                {
                    "partner_id": buyer.id,
                    "company_id": company.id,
                    "user_id": salesman.id,
                    "order_line": [
                        Command.create(
                            {
                                "product_id": product.id,
                                "price_unit": 5000.0,
                                "tax_id": False,
                            }
                        )
                    ],
                }
            )
        )
        Request = self.env["credit.insurance.limit.request"]

        self.start_tour(
            f"/odoo/res.partner/{buyer.id}",
            "credit_insurance_request_limit",
            login="tour_sales",
        )
        asked = Request.search([("partner_id", "=", buyer.id)])
        self.assertEqual(asked.mapped("requested_amount"), [20000.0])
        self.assertEqual(asked.create_uid, salesman)

        self.start_tour(
            f"/odoo/sales/{order.id}",
            "credit_insurance_order_refused",
            login="tour_sales",
        )
        self.assertEqual(order.state, "draft")
        increase = Request.search([("sale_order_id", "=", order.id)])
        # Limit 1,000 + shortfall 4,000, rounded up to the thousand.
        self.assertEqual(increase.requested_amount, 5000.0)
        self.assertEqual(increase.state, "draft")

        self.start_tour(
            f"/odoo/sales/{order.id}",
            "credit_insurance_order_override",
            login="tour_manager",
        )
        self.assertEqual(order.state, "sale")
        note = order.message_ids.filtered(lambda m: "traite avalisée" in (m.body or ""))
        self.assertEqual(note.author_id, manager.partner_id)
        self.assertTrue(
            buyer.message_ids.filtered(lambda m: "traite avalisée" in (m.body or "")),
            "the override is also noted on the buyer",
        )
