from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from .common import CreditInsuranceCommon


@tagged("post_install", "-at_install")
class TestLimitRequest(CreditInsuranceCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.salesman = cls.make_user(
            "request_salesman", "base.group_user,sales_team.group_sale_salesman"
        )

    def test_salesman_asks_manager_files_and_records_the_answer(self):
        request = (
            self.env["credit.insurance.limit.request"]
            .with_user(self.salesman)
            .create(
                {
                    "partner_id": self.buyer.id,
                    "request_type": "increase",
                    "requested_amount": 20000.0,
                    "reason": "Spring collection order",
                }
            )
        )
        self.assertEqual(request.policy_id, self.policy, "the buyer's policy")
        self.assertTrue(request.name.startswith("DL/"))
        self.assertTrue(request.customer_reference.startswith("ODOO-LR-"))
        with self.assertRaises(AccessError):
            request.action_send()

        request = request.with_env(self.env)  # the credit manager takes over
        request.action_send()
        self.assertEqual(request.state, "sent")
        with self.assertRaises(UserError):
            request.action_send()

        action = request.action_record_decision()
        decision = (
            self.env["credit.insurance.limit"]
            .with_context(**action["context"])
            .create({"granted_amount": 15000.0, "decision": "partial"})
        )
        self.assertEqual(decision.request_id, request)
        self.assertRecordValues(
            request, [{"state": "decided", "decision_id": decision.id}]
        )
        self.assertEqual(self.cover().limit, 15000.0)

    def test_each_request_has_its_own_customer_reference(self):
        Request = self.env["credit.insurance.limit.request"]
        first, second = Request.create(
            [
                {"partner_id": self.buyer.id, "requested_amount": 1000.0},
                {"partner_id": self.buyer.id, "requested_amount": 2000.0},
            ]
        )
        self.assertNotEqual(first.customer_reference, second.customer_reference)
        self.assertFalse(first.copy().customer_reference == first.customer_reference)

    def test_bad_requests(self):
        Request = self.env["credit.insurance.limit.request"]
        with self.assertRaisesRegex(ValidationError, "Requested amount"):
            Request.create({"partner_id": self.buyer.id, "request_type": "new"})
        with self.assertRaisesRegex(ValidationError, "Buyer"):
            Request.create(
                {"partner_id": self.buyer_contact.id, "requested_amount": 100.0}
            )
        cancellation = Request.create(
            {"partner_id": self.buyer.id, "request_type": "cancel"}
        )
        self.assertEqual(cancellation.state, "draft")

    def test_decided_request_cannot_be_cancelled(self):
        request = self.env["credit.insurance.limit.request"].create(
            {"partner_id": self.buyer.id, "requested_amount": 1000.0}
        )
        request.action_send()
        self.make_limit(1000.0, request_id=request.id)
        with self.assertRaises(UserError):
            request.action_cancel()
