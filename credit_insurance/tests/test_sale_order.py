from datetime import timedelta

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import CreditInsuranceCommon

SALESMAN = "base.group_user,sales_team.group_sale_salesman"
CREDIT_MANAGER = (
    "base.group_user,sales_team.group_sale_salesman_all_leads,"
    "credit_insurance.group_credit_insurance_manager"
)


class OrderLimitCommon(CreditInsuranceCommon):
    """The global policy blocks: discretionary limit 5,000, VAT not covered."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.policy.enforcement_mode = "block"
        cls.salesman = cls.make_user("order_salesman", SALESMAN)
        cls.credit_manager = cls.make_user("order_credit_manager", CREDIT_MANAGER)

    @classmethod
    def make_order(cls, amount, confirm=True, user=None, **kwargs):
        """Orders belong to a salesman, who sees them."""
        order = super().make_order(amount, confirm=False, **kwargs)
        order.user_id = user or cls.salesman
        if confirm:
            order.action_confirm()
        return order

    def quotation(self, amount, user=None, **kwargs):
        order = self.make_order(amount, confirm=False, user=user, **kwargs)
        return order.with_user(user) if user else order

    def set_stop(self, reason="Overdue declared"):
        self.buyer.with_user(self.credit_manager).write(
            {"credit_insurance_stop": True, "credit_insurance_stop_reason": reason}
        )

    def assertRefused(self, call, *fragments):
        with self.assertRaises(UserError) as caught:
            call()
        message = str(caught.exception)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message

    def assertNoted(self, thread, *fragments):
        bodies = [
            str(message.body).replace("&nbsp;", "\xa0")
            for message in thread.message_ids
        ]
        notes = [body for body in bodies if all(f in body for f in fragments)]
        self.assertTrue(
            notes,
            f"no message on {thread.display_name} with {fragments}: {bodies}",
        )


@tagged("post_install", "-at_install")
class TestOrderConfirmation(OrderLimitCommon):
    def test_order_within_the_limit_is_confirmed(self):
        self.make_invoice(3000.0)
        order = self.quotation(2000.0, user=self.salesman)
        order.action_confirm()
        self.assertEqual(order.state, "sale")
        self.assertEqual(self.cover().exposure, 5000.0, "exactly the limit is fine")

    def test_order_above_the_limit_is_refused_with_the_figures(self):
        self.make_invoice(3000.0)
        order = self.quotation(2500.0, user=self.salesman)
        message = self.assertRefused(
            order.action_confirm,
            "Buyer SA",
            "Insured limit: $\xa05,000.00",
            "Current exposure: $\xa03,000.00",
            "This order: $\xa02,500.00",
            "Shortfall: $\xa0500.00",
        )
        self.assertIn(order.name, message)
        self.assertEqual(order.state, "draft")

    def test_confirmed_orders_count_in_the_exposure(self):
        self.make_order(3000.0)
        self.assertRefused(
            self.quotation(2500.0).action_confirm, "Current exposure: $\xa03,000.00"
        )

    def test_orders_confirmed_together_add_up(self):
        first, second = self.quotation(3000.0), self.quotation(3000.0)
        message = self.assertRefused(
            (first + second).action_confirm,
            "Current exposure: $\xa03,000.00",
            "Shortfall: $\xa01,000.00",
        )
        self.assertIn(second.name, message)
        self.assertNotIn(first.name, message, "the first one alone fits")
        self.assertEqual((first + second).mapped("state"), ["draft", "draft"])

    def test_order_to_a_contact_counts_for_its_company(self):
        self.make_invoice(4000.0)
        order = self.quotation(1500.0, buyer=self.buyer_contact)
        self.assertRefused(order.action_confirm, "Buyer SA", "Shortfall: $\xa0500.00")

    def test_named_limit_replaces_the_discretionary_limit(self):
        self.make_limit(10000.0)
        self.quotation(8000.0).action_confirm()
        self.assertRefused(
            self.quotation(3000.0).action_confirm,
            "Insured limit: $\xa010,000.00",
            "Current exposure: $\xa08,000.00",
        )

    def test_refused_decision_blocks_every_order(self):
        self.make_limit(0.0, decision="refused")
        self.assertRefused(
            self.quotation(10.0).action_confirm, "Insured limit: $\xa00.00"
        )

    def test_expired_named_limit_falls_back_to_the_discretionary_limit(self):
        yesterday = fields.Date.today() - timedelta(days=1)
        self.make_limit(20000.0, date_expiry=yesterday)
        self.assertRefused(
            self.quotation(8000.0).action_confirm,
            "Insured limit: $\xa05,000.00",
            "Shortfall: $\xa03,000.00",
        )

    def test_vat_counts_only_when_the_policy_covers_it(self):
        self.quotation(4500.0).action_confirm()  # 5,400 with VAT
        self.policy.vat_covered = True
        # Exposure 5,400 with VAT; this order 120 with VAT.
        self.assertRefused(
            self.quotation(100.0).action_confirm,
            "Current exposure: $\xa05,400.00",
            "This order: $\xa0120.00",
        )

    def test_foreign_currency_order_at_the_rate_of_the_order_date(self):
        today = fields.Date.today()
        eur = self.setup_other_currency(
            "EUR", rates=[("2016-01-01", 4.0), (today.isoformat(), 2.0)]
        )
        self.quotation(9000.0, currency=eur).action_confirm()  # 4,500 today
        self.assertRefused(
            self.quotation(2000.0, currency=eur).action_confirm,
            "Current exposure: $\xa04,500.00",
            "This order: $\xa01,000.00",
            "Shortfall: $\xa0500.00",
        )

    def test_limit_in_the_policy_currency(self):
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.0)])
        self.make_limit(4000.0, currency_id=eur.id)  # 2,000 in company currency
        self.assertRefused(
            self.quotation(2500.0).action_confirm, "Insured limit: $\xa02,000.00"
        )

    def test_buyer_without_policy_is_not_checked(self):
        self.policy.active = False
        order = self.quotation(1e6)
        order.action_confirm()
        self.assertEqual(order.state, "sale")

    def test_stop_of_deliveries_refuses_whatever_the_amount(self):
        self.make_limit(1e6)
        self.set_stop("Unpaid invoice declared to the insurer")
        self.assertRefused(
            self.quotation(1.0, user=self.salesman).action_confirm,
            "deliveries to Buyer SA are stopped",
            "Unpaid invoice declared to the insurer",
        )
        # Even when the policy only warns, or without any policy.
        self.policy.enforcement_mode = "warn"
        self.assertRefused(self.quotation(1.0).action_confirm, "stopped")
        self.policy.active = False
        self.assertRefused(self.quotation(1.0).action_confirm, "stopped")

    def test_warn_mode_lets_the_order_through_with_a_warning(self):
        self.policy.enforcement_mode = "warn"
        self.make_invoice(4000.0)
        order = self.quotation(2000.0, user=self.salesman)
        warning = order.credit_insurance_warning
        self.assertIn("the excess is not insured", warning)
        self.assertIn("Shortfall: $\xa01,000.00", warning)
        order.action_confirm()
        self.assertEqual(order.state, "sale")
        self.assertFalse(order.credit_insurance_warning, "only on quotations")
        self.assertNoted(
            order, "Accepted above the insured limit of Buyer SA", "1,000.00"
        )

    def test_quotation_warning_in_block_mode_and_under_a_stop(self):
        within = self.quotation(1000.0)
        above = self.quotation(6000.0)
        self.assertFalse(within.credit_insurance_warning)
        self.assertIn("cannot be confirmed unless", above.credit_insurance_warning)
        self.assertFalse(
            within.credit_insurance_warning,
            "quotations do not add up: each is checked alone",
        )
        self.set_stop("Insolvency")
        within.invalidate_recordset(["credit_insurance_warning"])
        self.assertIn("Stop of deliveries", within.credit_insurance_warning)
        self.assertIn("Insolvency", within.credit_insurance_warning)

    def test_each_company_checks_its_own_limit(self):
        other = self.setup_other_company()["company"]
        self.make_invoice(4500.0)
        order = self.env["sale.order"].create(
            {
                "partner_id": self.buyer.id,
                "company_id": other.id,
                "order_line": [
                    Command.create(
                        {
                            "product_id": self.product_a.id,
                            "price_unit": 9000.0,
                            "tax_id": False,
                        }
                    )
                ],
            }
        )
        order.with_company(other).action_confirm()
        self.assertEqual(order.state, "sale", "no policy in the other company")
        # ... and it does not count in the first company's exposure.
        self.quotation(500.0).action_confirm()

    def test_customer_confirming_online_reads_no_figures(self):
        portal = self.make_user("portal_buyer", "base.group_portal")
        self.make_invoice(5000.0)
        order = self.quotation(100.0)
        message = self.assertRefused(
            order.with_user(portal).sudo().action_confirm,
            "cannot be confirmed online",
        )
        self.assertNotIn("5,000", message)
        self.assertEqual(order.state, "draft")

    def test_context_keys_do_not_skip_the_check(self):
        self.make_invoice(5000.0)
        order = self.quotation(100.0, user=self.salesman)
        for key in (
            "bypass_risk",
            "credit_insurance_override",
            "credit_insurance_skip_check",
            "skip_credit_check",
        ):
            self.assertRefused(order.with_context(**{key: True}).action_confirm)
        self.assertEqual(order.state, "draft")


@tagged("post_install", "-at_install")
class TestLimitDialog(OrderLimitCommon):
    def open_dialog(self, order):
        """Confirm is refused, naming the order for the web client, which
        then opens the order's dialog."""
        with self.assertRaises(UserError) as refusal:
            order.action_confirm()
        self.assertEqual(
            refusal.exception.context,
            {"credit_insurance_limit_order_id": order.id},
        )
        action = order.action_credit_insurance_limit_dialog()
        self.assertEqual(action["res_model"], "credit.insurance.limit.exceeded")
        self.assertEqual(action["target"], "new")
        return (
            self.env["credit.insurance.limit.exceeded"]
            .with_user(order.env.user)
            .browse(action["res_id"])
        )

    def test_orders_refused_together_open_no_dialog(self):
        """Confirming several orders at once: the refusal is the message
        alone, the dialog is for one order."""
        first, second = self.quotation(3000.0), self.quotation(3000.0)
        with self.assertRaises(UserError) as refusal:
            (first + second).action_confirm()
        self.assertFalse(getattr(refusal.exception, "context", None))
        self.assertIn(second.name, str(refusal.exception))

    def test_dialog_shows_the_figures(self):
        self.make_invoice(3000.0)
        order = self.quotation(2500.0, user=self.salesman)
        dialog = self.open_dialog(order)
        self.assertRecordValues(
            dialog,
            [
                {
                    "order_id": order.id,
                    "partner_id": self.buyer.id,
                    "policy_id": self.policy.id,
                    "limit_amount": 5000.0,
                    "exposure_amount": 3000.0,
                    "order_amount": 2500.0,
                    "shortfall_amount": 500.0,
                    "stopped": False,
                    "can_request_limit": True,
                    "can_override": False,
                }
            ],
        )
        self.assertIn("Shortfall: $\xa0500.00", dialog.message)
        self.assertEqual(order.state, "draft")
        manager_dialog = self.open_dialog(order.with_user(self.credit_manager))
        self.assertTrue(manager_dialog.can_override)

    def test_request_a_limit_increase_for_the_shortfall(self):
        self.make_invoice(3000.0)
        order = self.quotation(2500.0, user=self.salesman)
        action = self.open_dialog(order).action_request_limit_increase()
        request = self.env["credit.insurance.limit.request"].browse(action["res_id"])
        self.assertRecordValues(
            request,
            [
                {
                    "state": "draft",
                    "partner_id": self.buyer.id,
                    "policy_id": self.policy.id,
                    "request_type": "new",
                    # The limit asked for covers the exposure with the order:
                    # 5,000 + 500 short, rounded up to the thousand.
                    "requested_amount": 6000.0,
                    "currency_id": self.currency.id,
                    "sale_order_id": order.id,
                }
            ],
        )
        self.assertIn(order.name, request.reason)
        self.assertIn("Shortfall: $\xa0500.00", request.reason)
        again = self.open_dialog(order).action_request_limit_increase()
        self.assertEqual(again["res_id"], request.id, "one open request per order")

    def test_request_raises_a_named_limit_in_its_currency(self):
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.0)])
        self.make_limit(20000.0, currency_id=eur.id)  # 10,000
        order = self.quotation(10400.0, user=self.salesman)
        action = self.open_dialog(order).action_request_limit_increase()
        request = self.env["credit.insurance.limit.request"].browse(action["res_id"])
        self.assertRecordValues(
            request,
            [
                {
                    "request_type": "increase",
                    "requested_amount": 21000.0,  # 20,800 EUR rounded up
                    "currency_id": eur.id,
                }
            ],
        )

    def test_request_goes_to_the_insurer_through_the_exchange(self):
        """End to end: refused order -> request -> picked by the connector job."""
        self.insurer.write(
            {"provider": "sandbox", "api_base_url": "http://127.0.0.1:8070"}
        )
        self.make_invoice(4800.0)
        order = self.quotation(700.0, user=self.salesman)
        action = self.open_dialog(order).action_request_limit_increase()
        Request = self.env["credit.insurance.limit.request"]
        request = Request.browse(action["res_id"])
        self.assertEqual((request.state, request.requested_amount), ("draft", 6000.0))
        self.assertIn(request, Request.search(Request._exchange_due_domain()))

    def test_manager_confirms_anyway_with_a_reason(self):
        self.make_invoice(3000.0)
        order = self.quotation(2500.0, user=self.credit_manager)
        dialog = self.open_dialog(order)
        with self.assertRaises(UserError):
            dialog.action_confirm_anyway()  # no reason
        self.assertEqual(order.state, "draft")
        dialog.reason = "Long-standing customer, guarantee from the parent company"
        dialog.action_confirm_anyway()
        self.assertEqual(order.state, "sale")
        for thread in (order, self.buyer):
            self.assertNoted(
                thread,
                order.name,
                "guarantee from the parent company",
                self.credit_manager.name,
                "Insured limit: $\xa05,000.00",
                "Current exposure: $\xa03,000.00",
                "This order: $\xa02,500.00",
                "Shortfall: $\xa0500.00",
            )

    def test_override_applies_to_that_order_only(self):
        order = self.quotation(6000.0, user=self.credit_manager)
        dialog = self.open_dialog(order)
        dialog.reason = "Cash in advance expected"
        dialog.action_confirm_anyway()
        self.assertEqual(order.state, "sale")
        self.assertRefused(
            self.quotation(10.0, user=self.credit_manager).action_confirm,
            "Current exposure: $\xa06,000.00",
        )

    def test_salesman_cannot_confirm_anyway(self):
        order = self.quotation(6000.0, user=self.salesman)
        dialog = self.open_dialog(order)
        dialog.reason = "My best customer"
        with self.assertRaises(AccessError):
            dialog.action_confirm_anyway()
        self.assertEqual(order.state, "draft")

    def test_no_override_under_a_stop_of_deliveries(self):
        self.set_stop("Insolvency proceedings")
        order = self.quotation(10.0, user=self.credit_manager)
        dialog = self.open_dialog(order)
        self.assertRecordValues(
            dialog,
            [{"stopped": True, "can_override": False, "can_request_limit": False}],
        )
        dialog.reason = "Urgent"
        self.assertRefused(dialog.action_confirm_anyway, "Insolvency proceedings")
        self.assertEqual(order.state, "draft")


@tagged("post_install", "-at_install")
class TestOrderIncrease(OrderLimitCommon):
    def test_new_line_on_a_confirmed_order_is_checked(self):
        order = self.make_order(4000.0)
        message = self.assertRefused(
            lambda: order.with_user(self.salesman).write(
                {
                    "order_line": [
                        Command.create(
                            {"product_id": self.product_a.id, "price_unit": 2000.0}
                        )
                    ]
                }
            ),
            "cannot be increased",
            "Current exposure: $\xa00.00",
            "This order, not yet invoiced: $\xa06,000.00",
            "Shortfall: $\xa01,000.00",
        )
        self.assertIn(order.name, message)
        order.order_line.create(
            {"order_id": order.id, "product_id": self.product_a.id, "price_unit": 900}
        )
        self.assertEqual(order.amount_untaxed, 4900.0)

    def test_higher_quantity_or_price_is_checked(self):
        order = self.make_order(1000.0, quantity=4)
        line = order.order_line.with_user(self.salesman)
        self.assertRefused(lambda: line.write({"product_uom_qty": 6}), "increased")
        self.assertRefused(lambda: line.write({"price_unit": 1300.0}), "increased")
        line.write({"product_uom_qty": 5})
        line.write({"product_uom_qty": 3})  # lower: never refused
        self.assertEqual(order.amount_untaxed, 3000.0)

    def test_only_the_part_not_yet_invoiced_counts(self):
        order = self.make_order(100.0, quantity=30)  # 3,000
        invoice = order._create_invoices()
        invoice.action_post()  # 3,000 receivable, nothing left on the order
        order.order_line.product_uom_qty = 49  # 1,900 more to invoice: 4,900
        self.assertRefused(
            lambda: order.order_line.write({"product_uom_qty": 52}),
            "Current exposure: $\xa03,000.00",
            "This order, not yet invoiced: $\xa02,200.00",
        )

    def test_warn_mode_logs_the_increase(self):
        self.policy.enforcement_mode = "warn"
        order = self.make_order(4000.0)
        order.order_line.price_unit = 6000.0
        self.assertEqual(order.amount_untaxed, 6000.0)
        self.assertNoted(order, "Accepted above the insured limit")

    def test_foreign_currency_increase_at_the_rate_of_the_order_date(self):
        eur = self.setup_other_currency(
            "EUR", rates=[("2016-01-01", 4.0), (fields.Date.today().isoformat(), 2.0)]
        )
        order = self.make_order(8000.0, currency=eur, confirm=False)
        order.action_confirm()
        order.date_order = "2017-06-01 10:00:00"
        # 12,000 EUR: 3,000 at the order date, 6,000 at today's rate.
        order.order_line.price_unit = 12000.0
        self.assertEqual(order.amount_untaxed, 12000.0)
        self.assertRefused(
            lambda: order.order_line.write({"price_unit": 24000.0}),
            "This order, not yet invoiced: $\xa06,000.00",
        )

    def test_stop_refuses_an_increase(self):
        order = self.make_order(100.0)
        self.set_stop()
        self.assertRefused(
            lambda: order.order_line.write({"product_uom_qty": 2}), "stopped"
        )
        order.order_line.write({"name": "Renamed"})  # not an increase


@tagged("post_install", "-at_install")
class TestFrenchMessages(OrderLimitCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("fr_FR")

    def test_refusal_in_french(self):
        self.make_invoice(3000.0)
        order = self.quotation(2500.0).with_context(lang="fr_FR")
        self.assertRefused(
            order.action_confirm,
            f"La commande {order.name} ne peut pas être confirmée",
            "limite de crédit assurée",
            "Encours actuel",
            "Dépassement",
        )

    def test_refusal_in_the_language_of_the_user_without_context(self):
        french_salesman = self.make_user("vendeur", SALESMAN)
        french_salesman.lang = "fr_FR"
        self.make_invoice(3000.0)
        order = self.quotation(2500.0).with_user(french_salesman)
        self.assertRefused(order.with_context(lang=None).action_confirm, "Dépassement")
