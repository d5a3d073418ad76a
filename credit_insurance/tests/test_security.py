from odoo.exceptions import AccessError
from odoo.tests import HttpCase, tagged

from .common import CreditInsuranceCommon

SALESMAN = "base.group_user,sales_team.group_sale_salesman"
CREDIT_USER = "base.group_user,credit_insurance.group_credit_insurance_user"
CREDIT_MANAGER = "base.group_user,credit_insurance.group_credit_insurance_manager"


@tagged("post_install", "-at_install")
class TestAccessRights(CreditInsuranceCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.insurer.sudo().write({"api_key": "s3cr3t-key", "client_secret": "s3cr3t"})
        cls.limit = cls.make_limit(4000.0)
        cls.salesman = cls.make_user("salesman", SALESMAN)
        cls.credit_user = cls.make_user("credit_user", CREDIT_USER)
        cls.credit_manager = cls.make_user("credit_manager", CREDIT_MANAGER)

    def test_salesman_reads_the_cover_but_writes_nothing(self):
        buyer = self.buyer.with_user(self.salesman)
        # No exposure yet: the whole named limit of 4,000 is available.
        [values] = buyer.read(["credit_insurance_available", "credit_insurance_stop"])
        self.assertEqual(values["credit_insurance_available"], 4000.0)
        self.assertFalse(values["credit_insurance_stop"])
        # The limit itself and the policy are the credit staff's.
        for name in ("credit_insurance_limit", "credit_insurance_policy_id"):
            with self.assertRaises(AccessError, msg=name):
                buyer.read([name])
        with self.assertRaises(AccessError):
            self.limit.with_user(self.salesman).write({"granted_amount": 9e9})
        with self.assertRaises(AccessError):
            self.make_limit(1.0, "2021-01-01").with_user(self.salesman).unlink()
        with self.assertRaises(AccessError):
            self.env["credit.insurance.limit"].with_user(self.salesman).create(
                {"partner_id": self.buyer.id, "policy_id": self.policy.id}
            )
        with self.assertRaises(AccessError):
            self.policy.with_user(self.salesman).write({"discretionary_limit": 1e6})
        with self.assertRaises(AccessError):
            buyer.write({"credit_insurance_stop": True})

    def test_salesman_cannot_lift_a_stop_of_deliveries(self):
        self.buyer.with_user(self.credit_manager).write(
            {"credit_insurance_stop": True, "credit_insurance_stop_reason": "Overdue"}
        )
        with self.assertRaises(AccessError):
            self.buyer.with_user(self.salesman).write({"credit_insurance_stop": False})
        with self.assertRaises(AccessError):
            self.buyer.with_user(self.salesman).write(
                {"credit_insurance_stop_reason": "never mind"}
            )
        # A sales administrator may edit the partner; saving the form with the
        # stop unchanged is fine, lifting it is not.
        sales_admin = self.make_user(
            "sales_admin", "base.group_user,sales_team.group_sale_manager"
        )
        self.buyer.with_user(sales_admin).write(
            {"credit_insurance_stop": True, "phone": "+33 4 00 00 00 00"}
        )
        self.assertTrue(self.buyer.credit_insurance_stop)
        with self.assertRaises(AccessError):
            self.buyer.with_user(sales_admin).write({"credit_insurance_stop": False})

    def test_credit_user_reads_but_does_not_edit(self):
        [terms] = self.policy.with_user(self.credit_user).read(
            ["coverage_pct", "discretionary_limit", "declaration_days"]
        )
        self.assertEqual(
            (
                terms["coverage_pct"],
                terms["discretionary_limit"],
                terms["declaration_days"],
            ),
            (90.0, 5000.0, 30),
        )
        [cover] = self.buyer.with_user(self.credit_user).read(
            ["credit_insurance_limit", "credit_insurance_coverage_pct"]
        )
        self.assertEqual(
            (cover["credit_insurance_limit"], cover["credit_insurance_coverage_pct"]),
            (4000.0, 90.0),
        )
        with self.assertRaises(AccessError):
            self.limit.with_user(self.credit_user).write({"granted_amount": 1.0})
        with self.assertRaises(AccessError):
            self.policy.with_user(self.credit_user).write({"coverage_pct": 95.0})
        with self.assertRaises(AccessError):
            self.buyer.with_user(self.credit_user).write(
                {"credit_insurance_stop": True}
            )
        self.assertEqual(self.cover().limit, 4000.0)
        self.assertEqual(self.policy.coverage_pct, 90.0)

    def test_credit_manager_edits_policies_and_limits(self):
        unnamed = self.env["res.partner"].create(
            {"name": "Unnamed buyer SARL", "is_company": True, "customer_rank": 1}
        )
        self.assertEqual(self.cover(unnamed).limit, 5000.0, "discretionary")
        self.limit.with_user(self.credit_manager).write({"granted_amount": 4500.0})
        self.policy.with_user(self.credit_manager).write(
            {"discretionary_limit": 6000.0}
        )
        # The named buyer gets its decision, the unnamed one the policy's new
        # discretionary limit.
        self.assertEqual(self.cover().limit, 4500.0)
        self.assertEqual(self.cover(unnamed).limit, 6000.0)
        self.assertEqual(
            unnamed.with_user(self.credit_manager).read(["credit_insurance_limit"])[0][
                "credit_insurance_limit"
            ],
            6000.0,
        )

    def test_accounting_managers_are_credit_managers(self):
        accountant = self.make_user("chief_accountant", "account.group_account_manager")
        self.assertTrue(
            accountant.has_group("credit_insurance.group_credit_insurance_manager")
        )

    def test_credentials_readable_by_administrators_only(self):
        for user in (self.salesman, self.credit_user, self.credit_manager):
            insurer = self.insurer.with_user(user)
            with self.assertRaises(AccessError, msg=user.login):
                insurer.read(["api_key"])
            with self.assertRaises(AccessError, msg=user.login):
                insurer.read(["client_secret"])
            with self.assertRaises(AccessError, msg=user.login):
                insurer.search([("api_key", "=", "s3cr3t-key")])
        with self.assertRaises(AccessError):
            self.insurer.with_user(self.credit_manager).write({"api_key": "mine"})
        admin = self.make_user(
            "sysadmin",
            "base.group_system,credit_insurance.group_credit_insurance_manager",
        )
        self.assertEqual(self.insurer.with_user(admin).api_key, "s3cr3t-key")

    def test_dispute_flag_needs_invoicing_rights(self):
        invoice = self.make_invoice(1000.0)
        with self.assertRaises(AccessError):
            invoice.with_user(self.salesman).write({"credit_insurance_disputed": True})

    def test_each_company_sees_its_own_records(self):
        other = self.setup_other_company()["company"]
        other_user = self.make_user(
            "other_credit_manager", CREDIT_MANAGER, company=other
        )
        Policy = self.env["credit.insurance.policy"].with_user(other_user)
        self.assertFalse(Policy.search([]))
        self.assertFalse(
            self.env["credit.insurance.limit"].with_user(other_user).search([])
        )
        with self.assertRaises(AccessError):
            self.policy.with_user(other_user).read(["name"])
        self.assertEqual(self.buyer.with_user(other_user).credit_insurance_limit, 0.0)


@tagged("post_install", "-at_install")
class TestAccessOverRpc(HttpCase):
    """The same checks through the web client's JSON-RPC endpoint."""

    def setUp(self):
        super().setUp()
        self.insurer = self.env["credit.insurance.insurer"].create(
            {"name": "RPC insurer", "api_key": "rpc-s3cr3t"}
        )
        self.salesman = self.env["res.users"].create(
            {
                "name": "RPC salesman",
                "login": "rpc_salesman",
                "password": "rpc_salesman_pw",
                "groups_id": [
                    (6, 0, [self.env.ref("sales_team.group_sale_salesman").id])
                ],
            }
        )
        self.buyer = self.env["res.partner"].create(
            {"name": "RPC buyer", "is_company": True, "customer_rank": 1}
        )
        company = self.insurer.company_id
        policy = self.env["credit.insurance.policy"].create(
            {
                "name": "RPC-1",
                "insurer_id": self.insurer.id,
                "policy_type": "selective",
                "company_id": company.id,
                "currency_id": company.currency_id.id,
                "date_start": "2020-01-01",
                "coverage_pct": 90.0,
            }
        )
        self.env["credit.insurance.limit"].create(
            {
                "partner_id": self.buyer.id,
                "policy_id": policy.id,
                "requested_amount": 3000.0,
                "granted_amount": 3000.0,
                "date_effective": "2020-01-01",
            }
        )

    def call_kw(self, model, method, args, kwargs=None):
        return self.make_jsonrpc_request(
            "/web/dataset/call_kw",
            {"model": model, "method": method, "args": args, "kwargs": kwargs or {}},
        )

    def test_salesman_over_rpc(self):
        self.authenticate("rpc_salesman", "rpc_salesman_pw")
        [values] = self.call_kw(
            "res.partner", "read", [[self.buyer.id], ["credit_insurance_available"]]
        )
        # Nothing sold to the buyer yet: its whole limit of 3,000 is available.
        self.assertEqual(values["credit_insurance_available"], 3000.0)
        for model, method, args in [
            ("res.partner", "read", [[self.buyer.id], ["credit_insurance_limit"]]),
            ("credit.insurance.insurer", "read", [[self.insurer.id], ["api_key"]]),
            (
                "res.partner",
                "write",
                [[self.buyer.id], {"credit_insurance_stop": True}],
            ),
            (
                "credit.insurance.limit",
                "create",
                [{"partner_id": self.buyer.id, "granted_amount": 1e6}],
            ),
        ]:
            with self.assertRaises(Exception) as caught:
                self.call_kw(model, method, args)
            self.assertIn("AccessError", str(caught.exception), f"{model}.{method}")
        self.assertFalse(self.buyer.credit_insurance_stop)
