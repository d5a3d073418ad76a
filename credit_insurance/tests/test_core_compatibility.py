"""The addons live in databases that run other modules: every document Odoo
accepts goes through our checks without a crash, and what other modules
inherit from the sale order keeps its name."""

from lxml import etree

from odoo import Command, fields
from odoo.tests import tagged

from .common import CreditInsuranceCommon


@tagged("post_install", "-at_install")
class TestCoreCompatibility(CreditInsuranceCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Blocking: the posting check refuses what exceeds the 5,000
        # discretionary limit (VAT not covered).
        cls.policy.enforcement_mode = "block"

    def draft_invoice(self, amount, partner=None):
        today = fields.Date.today()
        return self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                **({"partner_id": partner.id} if partner else {}),
                "invoice_date": today,
                "date": today,
                "invoice_date_due": fields.Date.add(today, days=30),
                "invoice_line_ids": [
                    Command.create(
                        {
                            "name": "Goods",
                            "quantity": 1,
                            "price_unit": amount,
                            "tax_ids": False,
                            "account_id": self.company_data[
                                "default_account_revenue"
                            ].id,
                        }
                    )
                ],
            }
        )

    def test_auto_post_job_posts_what_it_can(self):
        """Odoo's auto-post job on a batch holding an invoice without a
        customer and one above the insured limit: the valid one is posted, the
        two others stay in draft with their reason noted, and the job ends."""
        valid = self.draft_invoice(1000.0, partner=self.buyer)
        no_customer = self.draft_invoice(10.0)
        # 6,000 > the 5,000 discretionary limit on its own.
        over_limit = self.draft_invoice(6000.0, partner=self.buyer)
        (valid + no_customer + over_limit).auto_post = "at_date"

        self.env["account.move"]._autopost_draft_entries()

        self.assertEqual(valid.state, "posted")
        self.assertEqual(no_customer.state, "draft")
        self.assertIn("'Customer' is required", no_customer.message_ids[0].body)
        self.assertEqual(over_limit.state, "draft")
        self.assertIn("Shortfall", over_limit.message_ids[0].body)
        self.assertEqual(valid.credit_insurance_cover_state, "full")

    def test_journal_entry_on_a_receivable_is_not_checked(self):
        """A miscellaneous entry debiting the buyer's receivable (an opening
        balance, say) posts even above the limit: only customer invoices are
        checked."""
        receivable = self.company_data["default_account_receivable"]
        entry = self.env["account.move"].create(
            {
                "move_type": "entry",
                "date": fields.Date.today(),
                "line_ids": [
                    Command.create(
                        {
                            "account_id": receivable.id,
                            "partner_id": self.buyer.id,
                            "debit": 9000.0,
                        }
                    ),
                    Command.create(
                        {
                            "account_id": self.company_data[
                                "default_account_revenue"
                            ].id,
                            "credit": 9000.0,
                        }
                    ),
                ],
            }
        )
        entry.action_post()
        self.assertEqual(entry.state, "posted")
        self.assertFalse(entry.credit_insurance_policy_id)

    def test_invoice_reset_to_draft_and_posted_again(self):
        """An invoice reset to draft leaves the exposure, and is checked and
        covered again when posted once more."""
        invoice = self.make_invoice(4000.0, taxes=self.env["account.tax"])
        self.assertEqual(invoice.credit_insurance_insurable_amount, 4000.0)
        invoice.button_draft()
        self.assertFalse(invoice.credit_insurance_policy_id)
        self.assertEqual(self.cover().exposure, 0.0)
        invoice.action_post()
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(invoice.credit_insurance_insurable_amount, 4000.0)
        self.assertEqual(self.cover().exposure, 4000.0)

    def test_invoice_of_another_company_is_checked_with_its_own_cover(self):
        """Posted from the first company's environment, an invoice of a
        company without a policy is neither refused nor covered by the first
        company's policy."""
        other = self.setup_other_company()["company"]
        self.env.user.company_ids |= other
        invoice = self.make_invoice(
            9000.0, company=other, taxes=self.env["account.tax"], post=False
        )
        invoice.with_company(self.company).action_post()
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(invoice.credit_insurance_cover_state, "none")

    def test_quotation_without_customer_has_no_warning(self):
        """A quotation being typed (no customer yet) computes its warning
        without a crash."""
        order = self.env["sale.order"].new({"company_id": self.company.id})
        self.assertFalse(order.credit_insurance_warning)

    def test_views_inheriting_the_confirm_button_still_apply(self):
        """Other modules' views inherit the Confirm button by its name: such a
        view applies on top of ours."""
        self.env["ir.ui.view"].create(
            {
                "name": "another module's confirm button",
                "model": "sale.order",
                "inherit_id": self.env.ref("sale.view_order_form").id,
                "arch": """
                    <xpath expr="//header/button[@name='action_confirm']"
                           position="attributes">
                        <attribute name="string">Valider</attribute>
                    </xpath>
                """,
            }
        )
        arch = self.env["sale.order"].get_views([(False, "form")])["views"]["form"][
            "arch"
        ]
        self.assertTrue(
            etree.fromstring(arch).xpath(
                "//header/button[@name='action_confirm'][@string='Valider']"
            )
        )
