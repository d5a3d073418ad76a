"""The limit check through the two RPC doors: the web client's
``/web/dataset/call_kw`` and the external ``/jsonrpc`` (execute_kw)."""

import json

from odoo.tests import HttpCase, tagged

from .test_sale_order import OrderLimitCommon

BYPASS_CONTEXT = {
    "bypass_risk": True,
    "credit_insurance_override": True,
    "credit_insurance_skip_check": True,
    "skip_credit_check": True,
}


@tagged("post_install", "-at_install")
class TestLimitOverRpc(OrderLimitCommon, HttpCase):
    def setUp(self):
        super().setUp()
        self.make_invoice(3000.0)
        self.order = self.make_order(2500.0, confirm=False)

    def post(self, route, params):
        response = self.url_open(
            route,
            json.dumps({"jsonrpc": "2.0", "method": "call", "id": 1, "params": params}),
            headers={"Content-Type": "application/json"},
        )
        response.raise_for_status()
        return response.json()

    def call_kw(self, model, method, args, kwargs=None):
        """``(result, error)`` of a web client call, in the logged-in session."""
        answer = self.post(
            "/web/dataset/call_kw",
            {"model": model, "method": method, "args": args, "kwargs": kwargs or {}},
        )
        return answer.get("result"), answer.get("error", {}).get("data")

    def execute_kw(self, user, model, method, args, kwargs=None):
        """``(result, error)`` of an external client call."""
        answer = self.post(
            "/jsonrpc",
            {
                "service": "object",
                "method": "execute_kw",
                "args": [
                    self.env.cr.dbname,
                    user.id,
                    user.login,  # new_test_user's password
                    model,
                    method,
                    args,
                    kwargs or {},
                ],
            },
        )
        return answer.get("result"), answer.get("error", {}).get("data")

    def refused_in_the_web_client(self, kwargs=None):
        """What the web client does when Confirm is pressed on the order: the
        refusal is Odoo's UserError with the figures, naming the order in its
        context; the client then asks for the order's dialog. The dialog's
        ids are returned."""
        __, error = self.call_kw(
            "sale.order", "action_confirm", [self.order.ids], kwargs
        )
        self.assertEqual(error["name"], "odoo.exceptions.UserError")
        self.assertIn("Shortfall: $\xa0500.00", error["message"])
        self.assertEqual(
            error["context"], {"credit_insurance_limit_order_id": self.order.id}
        )
        action, error = self.call_kw(
            "sale.order", "action_credit_insurance_limit_dialog", [self.order.ids]
        )
        self.assertFalse(error)
        self.assertEqual(
            (action["res_model"], action["target"]),
            ("credit.insurance.limit.exceeded", "new"),
        )
        return [action["res_id"]]

    def test_salesman_cannot_skip_the_check(self):
        for kwargs in ({}, {"context": BYPASS_CONTEXT}):
            __, error = self.execute_kw(
                self.salesman, "sale.order", "action_confirm", [self.order.ids], kwargs
            )
            self.assertEqual(error["name"], "odoo.exceptions.UserError")
            self.assertIn("Shortfall: $\xa0500.00", error["message"])
        __, error = self.execute_kw(
            self.salesman,
            "sale.order",
            "_credit_insurance_check_confirmation",
            [self.order.ids],
        )
        self.assertIn("cannot be called remotely", error["message"])

        self.authenticate(self.salesman.login, self.salesman.login)
        wizard = self.refused_in_the_web_client({"context": BYPASS_CONTEXT})
        [figures], __ = self.call_kw(
            "credit.insurance.limit.exceeded",
            "read",
            [wizard, ["limit_amount", "exposure_amount", "shortfall_amount"]],
        )
        self.assertEqual(
            (
                figures["limit_amount"],
                figures["exposure_amount"],
                figures["shortfall_amount"],
            ),
            (5000.0, 3000.0, 500.0),
        )
        self.call_kw(
            "credit.insurance.limit.exceeded",
            "write",
            [wizard, {"reason": "Trust me"}],
        )
        __, error = self.call_kw(
            "credit.insurance.limit.exceeded",
            "action_confirm_anyway",
            [wizard],
            {"context": BYPASS_CONTEXT},
        )
        self.assertEqual(error["name"], "odoo.exceptions.AccessError")
        self.assertEqual(self.order.state, "draft")

    def test_manager_confirms_anyway(self):
        self.authenticate(self.credit_manager.login, self.credit_manager.login)
        wizard = self.refused_in_the_web_client()
        __, error = self.call_kw(
            "credit.insurance.limit.exceeded", "action_confirm_anyway", [wizard]
        )
        self.assertEqual(error["name"], "odoo.exceptions.UserError", "no reason")
        self.assertEqual(self.order.state, "draft")
        self.call_kw(
            "credit.insurance.limit.exceeded",
            "write",
            [wizard, {"reason": "Bank guarantee received"}],
        )
        result, error = self.call_kw(
            "credit.insurance.limit.exceeded", "action_confirm_anyway", [wizard]
        )
        self.assertFalse(error)
        self.assertEqual(result["type"], "ir.actions.act_window_close")
        self.assertEqual(self.order.state, "sale")
        self.assertNoted(self.order, "Bank guarantee received", "500.00")

    def test_confirm_button_opens_the_form_view(self):
        """The dialog's view loads for a salesman (fields and groups exist);
        the order's Confirm buttons keep their name, which the views and
        tours of other modules rely on."""
        self.authenticate(self.salesman.login, self.salesman.login)
        views, error = self.call_kw(
            "credit.insurance.limit.exceeded",
            "get_views",
            [[[False, "form"]]],
        )
        self.assertFalse(error)
        arch = views["views"]["form"]["arch"]
        self.assertIn("action_request_limit_increase", arch)
        self.assertNotIn("action_confirm_anyway", arch, "manager button hidden")
        views, error = self.call_kw("sale.order", "get_views", [[[False, "form"]]])
        self.assertFalse(error)
        arch = views["views"]["form"]["arch"]
        self.assertEqual(arch.count('name="action_confirm"'), 2)
        self.assertNotIn("action_credit_insurance_confirm", arch)
        self.assertIn('name="credit_insurance_warning"', arch)
