"""Two confirmations for one buyer in two real, concurrent transactions.

No test cursor here: each side opens its own database connection and
commits, as two users' requests would. The data is committed in setUp and
deleted afterwards.
"""

import threading
from unittest.mock import patch

from odoo import SUPERUSER_ID, Command, api
from odoo.exceptions import UserError
from odoo.modules.registry import Registry
from odoo.service.model import retrying
from odoo.tests import tagged
from odoo.tests.common import BaseCase, get_db_name
from odoo.tools import mute_logger

LIMIT = 5000.0
ORDER_AMOUNT = 3000.0  # one order fits, two do not


@tagged("post_install", "-at_install")
class TestConcurrentConfirmations(BaseCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry = Registry(get_db_name())

    def setUp(self):
        super().setUp()
        self.assertIsNone(self.registry.test_cr, "needs real cursors")
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            company = env.ref("base.main_company")
            env = env(context={"allowed_company_ids": company.ids})
            insurer = env["credit.insurance.insurer"].create(
                {"name": "Concurrency insurer", "company_id": company.id}
            )
            policy = env["credit.insurance.policy"].create(
                {
                    "name": "CONCURRENCY-1",
                    "insurer_id": insurer.id,
                    "policy_type": "selective",
                    "company_id": company.id,
                    "date_start": "2020-01-01",
                    "enforcement_mode": "block",
                }
            )
            buyer = env["res.partner"].create(
                {"name": "Concurrent Buyer SA", "is_company": True}
            )
            limit = env["credit.insurance.limit"].create(
                {
                    "partner_id": buyer.id,
                    "policy_id": policy.id,
                    "requested_amount": LIMIT,
                    "granted_amount": LIMIT,
                    "currency_id": company.currency_id.id,
                    "date_effective": "2020-01-01",
                }
            )
            product = env["product.product"].create(
                {"name": "Concurrency service", "type": "service"}
            )
            orders = env["sale.order"].create(
                [
                    {
                        "partner_id": buyer.id,
                        "company_id": company.id,
                        "order_line": [
                            Command.create(
                                {
                                    "product_id": product.id,
                                    "price_unit": ORDER_AMOUNT,
                                    "tax_id": False,
                                }
                            )
                        ],
                    }
                    for __ in range(2)
                ]
            )
            self.company_id = company.id
            self.buyer_id = buyer.id
            self.order_ids = orders.ids
            records = [orders, limit, policy, insurer, product, buyer]
            self.created = [(record._name, record.ids) for record in records]
        self.addCleanup(self.delete_data)

    def delete_data(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            for model, ids in self.created:
                records = env[model].browse(ids).exists()
                if model == "sale.order":
                    records._action_cancel()
                records.unlink()

    def confirm_both_at_once(self):
        """Each thread opens its transaction and reads the order (its snapshot
        is taken there), waits for the other, then confirms as an RPC request
        does (retried on serialization failures) and commits."""
        barrier = threading.Barrier(2, timeout=30)
        outcomes = {}

        def confirm(order_id):
            with self.registry.cursor() as cr:
                env = api.Environment(
                    cr,
                    SUPERUSER_ID,
                    {"allowed_company_ids": [self.company_id]},
                )
                order = env["sale.order"].browse(order_id)
                order.read(["state", "amount_total"])
                barrier.wait()
                try:
                    retrying(order.action_confirm, env)
                    outcomes[order_id] = "confirmed"
                except UserError as error:
                    cr.rollback()
                    outcomes[order_id] = str(error)

        threads = [
            threading.Thread(target=confirm, args=(order_id,))
            for order_id in self.order_ids
        ]
        # The serialization failure is logged as a "bad query" before the retry.
        with mute_logger("odoo.sql_db"):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        self.assertEqual(len(outcomes), 2, f"a confirmation did not finish: {outcomes}")
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            states = env["sale.order"].browse(self.order_ids).mapped("state")
        return outcomes, states

    def test_only_one_of_two_concurrent_confirmations_passes(self):
        outcomes, states = self.confirm_both_at_once()
        self.assertEqual(sorted(states), ["draft", "sale"])
        [refusal] = [text for text in outcomes.values() if text != "confirmed"]
        # Refused after a retry that saw the other, committed order.
        self.assertIn("Current exposure:", refusal)
        self.assertRegex(refusal, "Current exposure: .*3,000.00")
        self.assertRegex(refusal, "Shortfall: .*1,000.00")

    def test_the_race_is_real_without_the_lock(self):
        """Proves the test above lines the two up: without the buyer lock both
        transactions check against the same snapshot and both pass."""
        Cover = self.registry["credit.insurance.cover"]
        cover_rows = Cover._cover_rows

        def cover_rows_without_lock(self, *args):
            *arguments, __ = args  # the last one: lock
            return cover_rows(self, *arguments, False)

        with patch.object(Cover, "_cover_rows", cover_rows_without_lock):
            outcomes, states = self.confirm_both_at_once()
        self.assertEqual(states, ["sale", "sale"], outcomes)
