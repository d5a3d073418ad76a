"""Claims: indemnity arithmetic (cover at delivery, coverage, deductible,
annual maximum, minimum claim), expected indemnity date, state flow, and the
accounting of an indemnity, the insurer's payment and a recovery checked on
account balances.

The fixture's buyer has a named limit of 20,000 at 90 % under a policy that
covers VAT; an invoice of 10,000 + 20 % VAT leaves 12,000 unpaid, all of it
insured.
"""

from freezegun import freeze_time

from odoo import fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from .test_declaration import CREDIT_USER, MANAGER, DeclarationCase

DAY = "2026-03-10"


class ClaimCase(DeclarationCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Claim = cls.env["credit.insurance.claim"]
        cls.insurer_account = cls.env["account.account"].create(
            {
                "code": "467100",
                "name": "Credit insurer",
                "account_type": "asset_receivable",
                "reconcile": True,
            }
        )
        cls.recovery_account = cls.company_data["default_account_expense"]
        cls.policy.write(
            {
                "claim_journal_id": cls.company_data["default_journal_misc"].id,
                "insurer_receivable_account_id": cls.insurer_account.id,
                "claim_recovery_account_id": cls.recovery_account.id,
                "waiting_days_insolvency": 30,
                "waiting_days_protracted_default": 150,
            }
        )
        cls.insurer_partner = cls.env["res.partner"].create(
            {"name": "Test insurer SA", "is_company": True}
        )
        cls.insurer.partner_id = cls.insurer_partner
        # The claims below are VAT included: the policy covers VAT.
        cls.policy.vat_covered = True
        cls.make_limit(20000.0)
        cls.receivable = cls.company_data["default_account_receivable"]

    def make_claim(self, amount, buyer=None, invoices=None, **values):
        """A claim of ``amount`` on ``invoices``; without them, on an invoice
        of 1 January 2026 of that amount, VAT included."""
        if invoices is None:
            invoices = self.make_invoice(
                round(amount / 1.2, 2), buyer=buyer, invoice_date="2026-01-01"
            )
        return self.Claim.create(
            {
                "partner_id": (buyer or self.buyer).id,
                "policy_id": self.policy.id,
                "claimed_amount": amount,
                "date_declared": "2026-02-07",
                "invoice_ids": [(6, 0, invoices.ids)],
                **values,
            }
        )

    def balance(self, account, partner):
        lines = self.env["account.move.line"].search(
            [
                ("account_id", "=", account.id),
                ("partner_id", "=", partner.id),
                ("parent_state", "=", "posted"),
            ]
        )
        return round(sum(lines.mapped("balance")), 2)

    def approve(self, claim, day=DAY):
        with freeze_time(day):
            claim.action_submit()
            claim.action_review()
            claim.action_approve()


@tagged("post_install", "-at_install")
class TestClaimIndemnity(ClaimCase):
    def test_within_the_limit_coverage_less_deductible(self):
        self.policy.deductible = 500.0
        claim = self.make_claim(12000.0)
        self.assertRecordValues(
            claim,
            [
                {
                    # all 12,000 delivered within the 20,000 limit
                    "limit_amount": 12000.0,
                    "coverage_pct": 90.0,
                    "insured_loss": 12000.0,
                    # 12,000 × 90 % − 500
                    "indemnity_computed": 10300.0,
                }
            ],
        )

    def test_loss_above_the_limit_is_covered_up_to_the_limit(self):
        claim = self.make_claim(25000.0)
        self.assertEqual(claim.indemnity_computed, 18000.0)  # 20,000 × 90 %
        claim.admitted_amount = 15000.0  # the insurer admits less
        self.assertEqual(claim.insured_loss, 15000.0)
        self.assertEqual(claim.indemnity_computed, 13500.0)

    def test_discretionary_limit_without_a_named_decision(self):
        buyer = self.make_buyer("Unnamed SARL", "552100554")
        claim = self.make_claim(8000.0, buyer=buyer)
        # Discretionary limit 5,000 at 70 %.
        self.assertRecordValues(claim, [{"limit_amount": 5000.0, "coverage_pct": 70.0}])
        self.assertEqual(claim.indemnity_computed, 3500.0)

    def test_cover_fixed_at_delivery_not_on_the_declaration_date(self):
        """Delivered under the 20,000 limit; the insurer cuts it to 8,000 from
        1 March, then withdraws it on 1 April: what was delivered before keeps
        its cover. Invoices delivered after the cut get the 8,000 only."""
        self.policy.vat_covered = False
        delivered = self.make_invoice(10000.0, invoice_date="2026-01-10")
        self.make_limit(8000.0, date_effective="2026-03-01", decision="reduced")
        self.make_limit(0.0, date_effective="2026-04-01", decision="cancelled")
        claim = self.make_claim(10000.0, invoices=delivered, date_declared="2026-04-15")
        self.assertRecordValues(
            claim,
            [
                {
                    # 10,000 without VAT, within the 20,000 of 10 January
                    "limit_amount": 10000.0,
                    "coverage_pct": 90.0,
                    # 10,000 × 90 %
                    "indemnity_computed": 9000.0,
                }
            ],
        )
        self.assertEqual(delivered.credit_insurance_delivery_limit, 20000.0)
        # Delivered on 10 March, under the 8,000 limit; the first invoice
        # takes 10,000 of it already, so nothing is left for this one.
        later = self.make_invoice(5000.0, invoice_date="2026-03-10")
        self.assertRecordValues(
            later,
            [
                {
                    "credit_insurance_delivery_limit": 8000.0,
                    "credit_insurance_insured_amount": 0.0,
                    "credit_insurance_cover_state": "over_limit",
                }
            ],
        )

    def test_lost_cover_is_left_out_of_the_claim(self):
        """The first invoice was not declared by its deadline (the job did
        not run): its cover is lost for good. Declared late with the second
        one, it is reported to the insurer for information, and the claim
        leaves it out, saying why."""
        self.policy.vat_covered = False
        lost = self.overdue_invoice(1000.0)  # due 31 January, deadline 2 March
        self.run_cron("2026-03-03")
        self.assertEqual(lost.credit_insurance_cover_state, "lost")
        kept = self.overdue_invoice(500.0, invoice_date="2026-02-01")  # due 3 March
        self.run_cron("2026-03-10")
        declaration = self.declarations()
        self.assertEqual(declaration.line_ids.move_id, lost | kept)
        declaration.with_user(self.manager).action_mark_filed()
        # Filed late: the cover stays lost.
        self.assertRecordValues(
            lost,
            [
                {
                    "credit_insurance_cover_state": "lost",
                    "credit_insurance_insured_amount": 0.0,
                }
            ],
        )
        claim = self.Claim.browse(
            declaration.with_user(self.manager).action_open_claim()["res_id"]
        )
        self.assertRecordValues(
            claim,
            [
                {
                    "claimed_amount": 500.0,  # the second invoice, without VAT
                    "limit_amount": 500.0,
                    "indemnity_computed": 450.0,  # 500 × 90 %
                }
            ],
        )
        self.assertEqual(claim.invoice_ids, kept)
        self.assertIn(lost.name, claim.left_out_note)
        self.assertIn("cover lost", claim.left_out_note)
        with self.assertRaisesRegex(ValidationError, "lost their cover"):
            claim.invoice_ids = lost | kept

    def test_political_cause_under_a_global_policy(self):
        """A global policy without a coverage of its own for political risks
        pays them as commercial ones; with one, that one applies."""
        commercial = self.make_claim(12000.0, cause="political")
        self.assertEqual(commercial.coverage_pct, 90.0)
        self.policy.political_coverage_pct = 95.0
        political = self.make_claim(12000.0, cause="political")
        self.assertEqual(political.coverage_pct, 95.0)
        # The second invoice is delivered under what the first leaves of the
        # 20,000 limit: 8,000, × 95 %.
        self.assertEqual(political.limit_amount, 8000.0)
        self.assertEqual(political.indemnity_computed, 7600.0)

    def test_deductible_larger_than_the_cover_pays_nothing(self):
        self.policy.deductible = 2000.0
        self.assertEqual(self.make_claim(1500.0).indemnity_computed, 0.0)

    def test_capped_by_the_remaining_annual_maximum_liability(self):
        self.policy.annual_max_liability = 10000.0
        with freeze_time(DAY):
            self.assertEqual(self.policy.remaining_max_liability, 10000.0)
        # Indemnities already confirmed: 6,000 this policy year, 9,000 the
        # year before (not counted).
        other = self.make_buyer("Other SA", "552100555")
        for amount, day in ((6000.0, "2026-01-15"), (9000.0, "2025-12-31")):
            self.make_claim(amount, buyer=other).write(
                {
                    "state": "paid",
                    "indemnity_amount": amount,
                    "date_indemnity": day,
                }
            )
        with freeze_time(DAY):
            self.policy.invalidate_recordset(["remaining_max_liability"])
            self.assertEqual(self.policy.remaining_max_liability, 4000.0)
            claim = self.make_claim(12000.0)
            self.assertEqual(claim.indemnity_computed, 4000.0)  # not 10,800
        invoice = self.make_invoice(10000.0, invoice_date="2026-01-01")
        claim.invoice_ids = invoice
        self.approve(claim)
        self.assertEqual(claim.indemnity_amount, 4000.0)
        with freeze_time(DAY):
            self.policy.invalidate_recordset(["remaining_max_liability"])
            self.assertEqual(self.policy.remaining_max_liability, 0.0)
        with freeze_time("2027-01-01"):  # a new policy year
            self.policy.invalidate_recordset(["remaining_max_liability"])
            self.assertEqual(self.policy.remaining_max_liability, 10000.0)

    def test_no_maximum_means_no_cap(self):
        self.policy.annual_max_liability = 0.0
        self.assertEqual(self.make_claim(12000.0).indemnity_computed, 10800.0)
        self.assertEqual(self.policy.remaining_max_liability, 0.0)

    def test_claim_below_the_minimum_is_refused(self):
        self.policy.minimum_claim_amount = 1000.0
        with self.assertRaisesRegex(
            ValidationError, r"below the minimum claim of policy .*POL-1"
        ):
            self.make_claim(800.0)
        claim = self.make_claim(1000.0)  # the minimum itself is accepted
        with self.assertRaisesRegex(ValidationError, "minimum claim"):
            claim.claimed_amount = 999.99

    def test_expected_indemnity_date_after_the_waiting_period(self):
        protracted = self.make_claim(5000.0)
        self.assertEqual(str(protracted.date_expected), "2026-07-07")  # + 150 days
        insolvency = self.make_claim(
            5000.0, cause="insolvency", date_insolvency="2026-03-10"
        )
        self.assertEqual(str(insolvency.date_expected), "2026-04-09")  # + 30 days
        political = self.make_claim(5000.0, cause="political")
        self.assertEqual(political.date_expected, protracted.date_expected)
        self.policy.waiting_days_insolvency = 60
        self.assertEqual(str(insolvency.date_expected), "2026-05-09")


@tagged("post_install", "-at_install")
class TestClaimFlow(ClaimCase):
    def test_manual_flow_and_forbidden_moves(self):
        invoice = self.make_invoice(10000.0, invoice_date="2026-01-01")
        claim = self.make_claim(12000.0, invoices=invoice)
        self.assertTrue(claim.name.startswith("SIN/"))
        with self.assertRaisesRegex(UserError, "cannot be closed"):
            claim.action_close()
        claim.action_submit()
        self.assertEqual(claim.state, "submitted")
        with self.assertRaisesRegex(UserError, "Submitted"):
            claim.action_submit()
        claim.action_review()
        claim.action_reject()
        self.assertEqual(claim.state, "rejected")
        with self.assertRaises(UserError):
            claim.action_approve()
        claim.action_close()
        self.assertEqual(claim.state, "closed")
        with self.assertRaisesRegex(UserError, "Only draft claims"):
            claim.unlink()

    def test_partially_approved_when_less_is_admitted(self):
        invoice = self.make_invoice(10000.0, invoice_date="2026-01-01")
        claim = self.make_claim(12000.0, invoices=invoice)
        claim.admitted_amount = 10000.0
        self.approve(claim)
        self.assertRecordValues(
            claim,
            [
                {
                    "state": "partial",
                    "indemnity_amount": 9000.0,
                    "uncovered_amount": 1000.0,
                }
            ],
        )

    def test_the_insurers_indemnity_prevails_over_the_computed_one(self):
        invoice = self.make_invoice(10000.0, invoice_date="2026-01-01")
        claim = self.make_claim(12000.0, invoices=invoice)
        with freeze_time(DAY):
            claim.action_submit()
            claim.indemnity_amount = 10000.0
            claim.action_approve()
        self.assertEqual(claim.state, "approved")
        self.assertEqual(
            self.balance(self.insurer_account, self.insurer_partner), 10000.0
        )

    def test_only_credit_managers_move_a_claim(self):
        claim = self.make_claim(12000.0)
        user = self.make_user("claim_reader", CREDIT_USER)
        self.assertEqual(claim.with_user(user).claimed_amount, 12000.0)
        with self.assertRaises(AccessError):
            claim.with_user(user).action_submit()
        with self.assertRaises(AccessError):
            claim.with_user(user).write({"indemnity_amount": 1e6})
        claim.with_user(self.manager).action_submit()
        self.assertEqual(claim.state, "submitted")

    def test_claims_stay_in_their_company(self):
        claim = self.make_claim(5000.0)
        other = self.setup_other_company()["company"]
        user = self.make_user("claim_other_company", MANAGER, company=other)
        self.assertFalse(self.Claim.with_user(user).search([("id", "=", claim.id)]))
        self.assertEqual(
            self.buyer.with_company(self.company).credit_insurance_claim_count, 1
        )
        self.assertEqual(
            self.buyer.with_user(user).with_company(other).credit_insurance_claim_count,
            0,
        )

    def test_opened_from_a_declaration_prefilled(self):
        self.policy.vat_covered = False
        invoice = self.overdue_invoice(1000.0)
        self.run_cron("2026-02-07")
        declaration = self.declarations()
        declaration.action_mark_filed()
        with self.assertRaisesRegex(UserError, "overdue declared"):
            self.Declaration.create(
                {
                    "partner_id": self.make_buyer("Other SA", "552100555").id,
                    "policy_id": self.policy.id,
                }
            ).action_open_claim()
        action = declaration.with_user(self.manager).action_open_claim()
        claim = self.Claim.browse(action["res_id"])
        self.assertRecordValues(
            claim,
            [
                {
                    "declaration_id": declaration.id,
                    "partner_id": self.buyer.id,
                    "policy_id": self.policy.id,
                    # VAT is not covered by the policy: 1,000 of the 1,200.
                    "claimed_amount": 1000.0,
                    "state": "draft",
                    "cause": "protracted_default",
                    "date_declared": declaration.date_filed.date(),
                }
            ],
        )
        self.assertEqual(claim.invoice_ids, invoice)
        self.assertEqual(declaration.claim_count, 1)
        # Asked again: the same claim, not a second one.
        self.assertEqual(declaration.action_open_claim()["res_id"], claim.id)
        self.assertEqual(self.buyer.credit_insurance_claim_count, 1)
        self.assertEqual(self.policy.claim_count, 1)
        self.policy.vat_covered = True
        self.assertEqual(declaration._claim_values()["claimed_amount"], 1200.0)
        # Submitted: the declaration ends with the claim.
        claim.with_user(self.manager).write({"claim_ref": "CLM-77"})
        claim.with_user(self.manager).action_submit()
        self.assertRecordValues(
            declaration, [{"state": "claim_opened", "claim_ref": "CLM-77"}]
        )


@tagged("post_install", "-at_install")
class TestClaimAccounting(ClaimCase):
    def test_indemnity_insurer_payment_and_recovery_balances(self):
        invoice = self.make_invoice(10000.0, invoice_date="2026-01-01")
        claim = self.make_claim(12000.0, invoices=invoice)
        self.assertEqual(self.balance(self.receivable, self.buyer), 12000.0)

        # Indemnity confirmed: 12,000 × 90 % moves to the insurer.
        self.approve(claim)
        self.assertEqual(claim.state, "approved")
        self.assertEqual(claim.indemnity_amount, 10800.0)
        self.assertEqual(claim.indemnity_move_id.state, "posted")
        self.assertEqual(
            claim.indemnity_move_id.journal_id,
            self.company_data["default_journal_misc"],
        )
        self.assertEqual(self.balance(self.receivable, self.buyer), 1200.0)
        self.assertEqual(
            self.balance(self.insurer_account, self.insurer_partner), 10800.0
        )
        self.assertEqual(invoice.amount_residual, 1200.0, "the uncovered part")
        self.assertEqual(claim.uncovered_amount, 1200.0)
        self.assertEqual(claim.indemnity_received, 0.0)

        # The insurer pays: its account is settled, the claim is paid.
        with freeze_time("2026-03-20"):
            payment = claim._register_insurer_payment()
        self.assertEqual(payment.partner_id, self.insurer_partner)
        self.assertEqual(payment.amount, 10800.0)
        self.assertEqual(self.balance(self.insurer_account, self.insurer_partner), 0.0)
        self.assertEqual(claim.indemnity_received, 10800.0)
        self.assertEqual(claim.state, "paid")
        # Unreconciled by mistake: the indemnity is awaited again; reconciled
        # again: paid.
        insurer_line = claim._insurer_line()
        insurer_line.remove_move_reconcile()
        self.assertEqual(claim.state, "approved")
        self.assertIn("no longer reconciled", claim.message_ids[0].body)
        (
            insurer_line
            | payment.move_id.line_ids.filtered(
                lambda line: line.account_id == insurer_line.account_id
            )
        ).reconcile()
        self.assertEqual(claim.state, "paid")

        # The buyer later pays 600: a recovery, of which 600 × 10,800 /
        # 12,000 = 540 is the insurer's, owed back on its account.
        payment = self.pay(invoice, 600.0, date="2026-04-01")
        self.assertEqual(self.balance(self.receivable, self.buyer), 600.0)
        recovery = claim.recovery_ids
        self.assertRecordValues(
            recovery,
            [
                {
                    "amount": 600.0,
                    "insurer_share": 540.0,
                    "payment_id": payment.id,
                    "date": fields.Date.to_date("2026-04-01"),
                }
            ],
        )
        self.assertEqual(claim.recovery_owed_amount, 540.0)
        self.assertEqual(
            self.balance(self.insurer_account, self.insurer_partner), -540.0
        )
        self.assertEqual(
            sum(
                recovery.move_id.line_ids.filtered(
                    lambda line: line.account_id == self.recovery_account
                ).mapped("balance")
            ),
            540.0,
        )
        self.assertEqual(self.balance(self.receivable, self.buyer), 600.0)

    def test_indemnity_settles_the_oldest_invoices_first(self):
        old = self.make_invoice(5000.0, invoice_date="2026-01-01")
        recent = self.make_invoice(5000.0, invoice_date="2026-01-20")
        claim = self.make_claim(12000.0, invoices=old | recent)
        self.approve(claim)  # 10,800: 6,000 on the old one, 4,800 on the recent
        self.assertEqual(old.payment_state, "paid")
        self.assertEqual(recent.amount_residual, 1200.0)
        self.assertEqual(self.balance(self.receivable, self.buyer), 1200.0)

    def test_indemnity_on_an_invoice_in_a_foreign_currency(self):
        """20,000 EUR + VAT at 2 EUR per dollar (the company's currency):
        the claim is in dollars, the indemnity settles its dollars, and the
        invoice keeps its uncovered part in euros."""
        eur = self.setup_other_currency("EUR", rates=[("2016-01-01", 2.0)])
        invoice = self.make_invoice(20000.0, invoice_date="2026-01-01", currency=eur)
        self.assertEqual(invoice.amount_residual_signed, 12000.0)
        claim = self.make_claim(12000.0, invoices=invoice)
        self.approve(claim)
        self.assertEqual(claim.indemnity_amount, 10800.0)
        self.assertEqual(self.balance(self.receivable, self.buyer), 1200.0)
        self.assertEqual(
            self.balance(self.insurer_account, self.insurer_partner), 10800.0
        )
        self.assertEqual(invoice.amount_residual, 2400.0)
        self.assertEqual(invoice.currency_id, eur)
        with freeze_time("2026-03-20"):
            claim._register_insurer_payment()
        self.assertEqual(claim.state, "paid")

    def test_indemnity_above_what_is_still_owed_is_refused(self):
        invoice = self.make_invoice(1000.0, invoice_date="2026-01-01")
        claim = self.make_claim(12000.0, invoices=invoice)
        # The cover at delivery caps the computed indemnity: 1,200 × 90 %.
        self.assertEqual(claim.indemnity_computed, 1080.0)
        claim.indemnity_amount = 10800.0  # the insurer's figure, mistyped
        with self.assertRaisesRegex(UserError, "more than the buyer still owes"):
            self.approve(claim)
        self.assertFalse(claim.indemnity_move_id)
        self.assertEqual(self.balance(self.receivable, self.buyer), 1200.0)

    def test_no_recovery_before_the_indemnity(self):
        invoice = self.make_invoice(10000.0, invoice_date="2026-01-01")
        claim = self.make_claim(12000.0, invoices=invoice)
        with self.assertRaisesRegex(UserError, "no indemnity yet"):
            claim._record_recovery(100.0)
        self.pay(invoice, 2000.0)  # paid before the indemnity: the loss shrinks
        self.assertFalse(claim.recovery_ids)

    def test_recoveries_recorded_by_hand_and_credit_notes_are_not(self):
        invoice = self.make_invoice(10000.0, invoice_date="2026-01-01")
        claim = self.make_claim(12000.0, invoices=invoice)
        self.approve(claim)
        # A credit note on the uncovered part is no recovery.
        reversal = (
            self.env["account.move.reversal"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"journal_id": invoice.journal_id.id, "date": DAY})
        )
        credit_note = self.env["account.move"].browse(reversal.refund_moves()["res_id"])
        credit_note.invoice_line_ids.price_unit = 500.0
        credit_note.action_post()
        (credit_note | invoice).line_ids.filtered(
            lambda line: line.account_id == self.receivable and not line.reconciled
        ).reconcile()
        self.assertEqual(invoice.amount_residual, 600.0)
        self.assertFalse(claim.recovery_ids)
        # A recovery the insurer collected, recorded by hand by a manager.
        recovery = claim.with_user(self.manager)._record_recovery(1000.0, date=DAY)
        self.assertEqual(recovery.insurer_share, 900.0)
        self.assertEqual(
            self.balance(self.insurer_account, self.insurer_partner), 10800.0 - 900.0
        )

    def test_insurer_partner_created_when_missing(self):
        self.insurer.partner_id = False
        self.policy.insurer_receivable_account_id = False
        invoice = self.make_invoice(10000.0, invoice_date="2026-01-01")
        claim = self.make_claim(12000.0, invoices=invoice)
        self.approve(claim)
        partner = self.insurer.partner_id
        self.assertEqual(partner.name, "Test insurer")
        # Without an insurer account on the policy: the partner's receivable.
        self.assertEqual(self.balance(self.receivable, partner), 10800.0)
        self.assertEqual(self.balance(self.receivable, self.buyer), 1200.0)


@tagged("post_install", "-at_install")
class TestClaimFrench(ClaimCase):
    def test_french_labels_and_minimum_claim_message(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._get("credit_insurance")._update_translations(
            ["fr_FR"]
        )
        french = self.env(context={"lang": "fr_FR"})
        states = dict(
            french["credit.insurance.claim"]
            ._fields["state"]
            ._description_selection(french)
        )
        self.assertEqual(states["partial"], "Partiellement accepté")
        self.assertEqual(states["paid"], "Indemnisé")
        self.policy.minimum_claim_amount = 1000.0
        with self.assertRaisesRegex(ValidationError, "seuil d'intervention"):
            self.Claim.with_context(lang="fr_FR").create(
                {
                    "partner_id": self.buyer.id,
                    "policy_id": self.policy.id,
                    "claimed_amount": 800.0,
                }
            )
