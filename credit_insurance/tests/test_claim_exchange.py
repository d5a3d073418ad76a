"""Claims pulled from the sandbox insurer over real HTTP: the claim the
insurer opens on a declared overdue arrives in Odoo, is followed to the
indemnity, and the indemnity is booked.

The sandbox opens a claim when the overdue of a buyer whose SIREN ends in an
odd digit leaves collection, and indemnifies it at 90 % at its next read.
"""

import requests

from odoo.tests import tagged

from .test_claim import ClaimCase
from .test_declaration import TRIGGER
from .test_declaration_exchange import SandboxCase


@tagged("post_install", "-at_install")
class TestClaimExchange(SandboxCase, ClaimCase):
    def claim_opened_at_the_insurer(self):
        """An overdue of 1,200 declared, then turned into a claim."""
        invoice = self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        for __ in range(2):  # in collection, then claim opened
            self.run_cron(self.when_due(declaration))
        self.assertEqual(declaration.state, "claim_opened")
        return invoice, declaration

    def at_insurer(self, claim_ref):
        response = requests.get(
            f"{self.sandbox.url}/v1/claims",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=5,
        )
        return {c["claimId"]: c for c in response.json()["claims"]}[claim_ref]

    def test_claim_pulled_followed_to_the_indemnity_and_booked(self):
        invoice, declaration = self.claim_opened_at_the_insurer()

        # First run: the feed brings the claim the insurer opened.
        self.Claim._cron_pull_claims()
        claim = declaration.claim_ids
        self.assertRecordValues(
            claim,
            [
                {
                    "claim_ref": declaration.claim_ref,
                    "partner_id": self.buyer.id,
                    "policy_id": self.policy.id,
                    "state": "under_review",
                    "insurer_status": "open",
                    "claimed_amount": 1200.0,
                    "admitted_amount": 1200.0,
                }
            ],
        )
        self.assertEqual(claim.invoice_ids, invoice)
        self.assertFalse(self.insurer.claims_sync_error)
        self.assertTrue(self.insurer.claims_synced_until)
        self.assertEqual(self.at_insurer(claim.claim_ref)["status"], "OPEN")

        # Second run: the open claim is asked for; the insurer indemnifies
        # 90 %, which is also what the policy gives.
        self.Claim._cron_pull_claims()
        self.assertRecordValues(
            claim,
            [
                {
                    "state": "approved",
                    "insurer_status": "indemnified",
                    "indemnity_amount": 1080.0,
                    "indemnity_computed": 1080.0,
                }
            ],
        )
        self.assertEqual(self.balance(self.receivable, self.buyer), 120.0)
        self.assertEqual(
            self.balance(self.insurer_account, self.insurer_partner), 1080.0
        )
        self.assertEqual(invoice.amount_residual, 120.0)

        # Further runs change nothing; the claim is paid once the insurer's
        # payment is registered.
        move = claim.indemnity_move_id
        self.Claim._cron_pull_claims()
        self.assertEqual(claim.indemnity_move_id, move)
        self.assertEqual(
            self.balance(self.insurer_account, self.insurer_partner), 1080.0
        )
        claim._register_insurer_payment()
        self.assertEqual(claim.state, "paid")
        self.assertEqual(self.balance(self.insurer_account, self.insurer_partner), 0.0)

    def test_claim_opened_by_hand_is_matched_by_its_reference(self):
        __, declaration = self.claim_opened_at_the_insurer()
        claim = self.Claim.browse(declaration.action_open_claim()["res_id"])
        self.assertEqual(claim.claim_ref, declaration.claim_ref)
        self.Claim._cron_pull_claims()
        self.assertEqual(declaration.claim_ids, claim, "matched, not duplicated")
        self.assertEqual(claim.state, "under_review")

    def test_insurer_unreachable_is_recorded_and_nothing_changes(self):
        __, declaration = self.claim_opened_at_the_insurer()
        self.Claim._cron_pull_claims()
        claim = declaration.claim_ids
        self.sandbox.stop()
        self.Claim._cron_pull_claims()
        self.assertEqual(claim.state, "under_review")
        self.assertTrue(self.insurer.claims_sync_error)
        self.assertNotIn(self.insurer.sudo().api_key, self.insurer.claims_sync_error)
        self.assertFalse(self.insurer.sync_error, "the decisions' problems apart")

    def test_insurers_without_a_claim_api_are_left_to_manual_updates(self):
        __, declaration = self.claim_opened_at_the_insurer()
        self.insurer.provider = "manual"
        self.Claim._cron_pull_claims()
        self.assertFalse(declaration.claim_ids)
        self.assertFalse(self.insurer.claims_synced_until)
