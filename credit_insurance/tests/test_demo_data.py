"""The demo shows a credit manager every state (``make demo``).

Each test fails if the demo data lost one of them. They need the demo data,
which ``make test`` always installs: without it they fail, they do not skip.
"""

from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestDemoData(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company = cls.env.ref("credit_insurance.demo_company", raise_if_not_found=False)
        if not company:
            raise AssertionError(
                "The demo data of credit_insurance is not loaded: these tests check "
                "it. Install the addons with demo data (make test does)."
            )
        cls.env = cls.env(
            context={**cls.env.context, "allowed_company_ids": company.ids}
        )
        cls.company = company.with_env(cls.env)
        cls.admin = cls.env.ref("base.user_admin")

    def demo(self, xmlid):
        return self.env.ref(f"credit_insurance.{xmlid}")

    def in_company(self, model, domain=()):
        return self.env[model].search([("company_id", "=", self.company.id), *domain])

    def assertNoteOn(self, thread, *texts):
        bodies = [str(message.body) for message in thread.message_ids]
        self.assertTrue(
            any(all(text in body for text in texts) for body in bodies),
            f"no note on {thread.display_name} with {texts}: {bodies}",
        )

    def test_order_confirmed_above_the_limit_by_a_credit_manager(self):
        order = self.demo("demo_order_berthier_override")
        self.assertEqual(order.state, "sale")
        # Its buyer's limit cannot take it (it is not counted in its own exposure).
        [check] = order._credit_insurance_checks()
        self.assertGreater(check.shortfall, 0.0)
        self.assertGreater(order.partner_id.credit_insurance_uninsured, 0.0)
        # The override's trace, on the order and on the buyer, as the dialog
        # leaves it: who, why, with the figures.
        for thread in (order, order.partner_id):
            self.assertNoteOn(
                thread, order.name, self.admin.name, "Collection printemps"
            )
        override = order.message_ids.filtered(
            lambda m: "Collection printemps" in str(m.body)
        )
        self.assertEqual(override.author_id, self.admin.partner_id)
        # The quotation over the same limit still opens the refusal dialog.
        quotation = self.demo("demo_quotation_berthier_over_limit")
        self.assertEqual(quotation.state, "draft")
        self.assertTrue(quotation.credit_insurance_warning)

    def test_claim_paid_by_the_insurer(self):
        paid = self.in_company("credit.insurance.claim", [("state", "=", "paid")])
        self.assertTrue(paid, "no paid claim in the demo")
        for claim in paid:
            line = claim._insurer_line()
            self.assertTrue(line, f"{claim.name} has no indemnity entry")
            self.assertEqual(claim.indemnity_move_id.state, "posted")
            self.assertTrue(line.reconciled, f"{claim.name}: insurer line not paid")
            self.assertEqual(claim.indemnity_received, claim.indemnity_amount)
            self.assertGreater(claim.indemnity_amount, 0.0)
            payment = line.matched_credit_ids.credit_move_id.move_id.origin_payment_id
            self.assertEqual(
                payment.partner_id, claim.insurer_id._get_accounting_partner()
            )
        # The submitted one waits for its indemnity.
        self.assertEqual(self.demo("demo_claim_moreau").state, "submitted")
        # The uncovered rest of the paid claim's invoice is written off: the
        # daily job has nothing left to declare again.
        self.assertEqual(self.demo("demo_invoice_vasseur_1").amount_residual, 0.0)

    def test_declarations_to_file_filed_and_ended(self):
        states = set(self.in_company("credit.insurance.declaration").mapped("state"))
        self.assertLessEqual(
            {"to_file", "filed", "settled", "claim_opened"},
            states,
            f"declaration states of the demo: {states}",
        )
        # Settled because the buyer paid after the filing: the stop of
        # deliveries the filing set is lifted, the insurer was told.
        settled = self.demo("demo_declaration_fabre")
        self.assertEqual(settled.state, "settled")
        self.assertTrue(settled.date_filed)
        self.assertEqual(settled.payment_status, "paid")
        self.assertFalse(settled.partner_id.credit_insurance_stop)
        self.assertFalse(settled.manual_update_needed)
        # Filed: deliveries to the buyer stop.
        filed = self.demo("demo_declaration_moreau")
        self.assertEqual(filed.state, "filed")
        self.assertTrue(filed.partner_id.credit_insurance_stop)
        self.assertEqual(self.demo("demo_declaration_vasseur").state, "claim_opened")

    def test_limits_in_every_decision_and_state(self):
        limits = self.in_company("credit.insurance.limit")
        decisions = dict(limits._fields["decision"].selection)
        self.assertEqual(set(limits.mapped("decision")), set(decisions))
        self.assertEqual(
            set(limits.mapped("state")),
            {"scheduled", "active", "superseded", "expired"},
        )

    def test_limit_requests_draft_at_the_insurer_and_decided(self):
        requests = self.in_company("credit.insurance.limit.request")
        decided = requests.filtered(lambda r: r.state == "decided")
        self.assertTrue(decided, "no decided limit request in the demo")
        self.assertTrue(all(decided.mapped("decision_id")))
        self.assertEqual(decided.decision_id.request_id, decided)
        self.assertIn("draft", requests.mapped("state"))
        # Sent at install when the sandbox insurer runs (make demo): then at
        # the insurer (pending, referred to an underwriter); drafts otherwise,
        # which the exchange job sends.
        for xmlid, at_insurer in (
            ("demo_request_berthier", "referred"),
            ("demo_request_petit", "pending"),
        ):
            request = self.demo(xmlid)
            if request.insurer_reference:
                self.assertIn(request.state, (at_insurer, "decided"))
            else:
                self.assertEqual(request.state, "draft")
                self.assertIn(
                    request,
                    self.env[request._name].search(request._exchange_due_domain()),
                )

    def test_one_insurer_of_each_kind_on_the_sandbox(self):
        """make demo points them at the sandbox's port; installed, they name
        its default one, each under its insurer's dialect."""
        urls = {
            xmlid: self.demo(xmlid)
            for xmlid in (
                "demo_insurer_allianz",
                "demo_insurer_atradius",
                "demo_insurer_coface",
            )
        }
        self.assertEqual(
            {xmlid: insurer.provider for xmlid, insurer in urls.items()},
            {
                "demo_insurer_allianz": "allianz_trade",
                "demo_insurer_atradius": "atradius",
                "demo_insurer_coface": "coface",
            },
        )
        allianz = urls["demo_insurer_allianz"]
        self.assertTrue(allianz.login_api_url.endswith("/allianz/uatm/v1/idp"))
        self.assertTrue(allianz.search_api_url.endswith("/allianz/search/uatm-v2"))
        self.assertTrue(allianz.cover_api_url.endswith("/allianz/uatm/riskinfo/v3"))
        self.assertTrue(
            urls["demo_insurer_atradius"].api_base_url.endswith("/atradius")
        )
        self.assertTrue(urls["demo_insurer_coface"].api_base_url.endswith("/coface"))
        for insurer in urls.values():
            request = self.in_company(
                "credit.insurance.limit.request",
                [("insurer_id", "=", insurer.id)],
            )
            self.assertEqual(len(request), 1, f"{insurer.name}: one request")
