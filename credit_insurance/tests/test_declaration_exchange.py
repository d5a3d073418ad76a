"""Overdue declarations exchanged with the sandbox insurer over real HTTP.

Each test runs its own sandbox insurer on a free localhost port. The
exactly-once tests use its fault injection (a dropped answer, an answer after
the timeout), a worker dying between the call and the commit, and two workers
running at once, and check the sandbox's count of declarations received per
idempotency key: no HTTP call is mocked.
"""

import threading
from datetime import datetime, timedelta
from unittest.mock import patch

import requests
from freezegun import freeze_time

from odoo import SUPERUSER_ID, api
from odoo.tests import TransactionCase, tagged

from .common import dialect_values, serve_sandbox
from .test_declaration import TRIGGER, DeclarationCase, fr_vat, siren_of

API_KEY = "sbx-decl-key-4410"


class SimulatedCrash(BaseException):
    """The cron worker dies (killed, out of memory) in the middle of a run."""


class SandboxCase(DeclarationCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.insurer.write(
            {
                "provider": "sandbox",
                "api_base_url": "http://127.0.0.1:9",
                "api_key": API_KEY,
                "api_timeout": 2,
            }
        )

    def setUp(self):
        super().setUp()
        self.sandbox = serve_sandbox(self)
        self.insurer.api_base_url = self.sandbox.url

    def stats(self):
        return requests.get(f"{self.sandbox.url}/_admin/stats", timeout=5).json()

    def at_insurer(self, declaration):
        """The declaration as the sandbox holds it (read without moving it)."""
        [overdue] = requests.get(
            f"{self.sandbox.url}/v1/overdues",
            params={"idempotencyKey": declaration.idempotency_key},
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=5,
        ).json()["overdues"]
        return overdue

    def token(self):
        return requests.post(
            f"{self.sandbox.url}/v1/token", json={"apiKey": API_KEY}, timeout=5
        ).json()["accessToken"]

    def when_due(self, *declarations):
        """The moment the scheduled retry or check of these declarations is
        due: the clock moves there (a second after the latest)."""
        due = [
            moment
            for declaration in declarations
            for moment in (declaration.next_retry_date, declaration.next_check_date)
            if moment
        ]
        return max(due) + timedelta(seconds=1)


@tagged("post_install", "-at_install")
class TestDeclarationExchange(SandboxCase):
    def test_filed_through_the_api_then_followed_to_the_end(self):
        invoice = self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        self.assertRecordValues(
            declaration,
            [
                {
                    "state": "filed",
                    "insurer_buyer_ref": "SBX-FR-303265045",
                    "filed_through_api": True,
                    "delivery_uncertain": False,
                    "amount_filed": 1200.0,
                    "last_error": False,
                }
            ],
        )
        self.assertTrue(declaration.insurer_reference.startswith("SBX-O-"))
        self.assertFalse(declaration.activity_ids, "nothing left to a person")
        overdue = self.at_insurer(declaration)
        self.assertEqual(overdue["amount"], 1200.0)
        self.assertEqual(overdue["category"], "OVD")
        self.assertEqual(
            [
                (i["invoiceNumber"], i["amount"], i["dueDate"])
                for i in overdue["invoices"]
            ],
            [(invoice.name, 1200.0, "2026-01-31")],
        )
        self.assertEqual(self.stats()["declarations"], {declaration.idempotency_key: 1})
        self.buyer.invalidate_recordset()
        self.assertTrue(self.buyer.credit_insurance_stop)

        # The sandbox moves one step per check: collection, then (odd SIREN
        # digit) a claim.
        self.run_cron(self.when_due(declaration))
        self.assertEqual(declaration.state, "in_collection")
        self.run_cron(self.when_due(declaration))
        self.assertEqual(declaration.state, "claim_opened")
        self.assertTrue(declaration.claim_ref.startswith("SBX-C-"))
        self.assertIn(
            "opened a claim", " ".join(declaration.message_ids.mapped("body"))
        )

    def test_later_overdues_and_payments_are_reported_never_refiled(self):
        first = self.overdue_invoice(1000.0)
        # Invoiced before the filing stops deliveries, due later.
        second = self.overdue_invoice(500.0, invoice_date="2026-01-10")
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        self.assertFalse(declaration.line_ids.filtered(lambda l: l.move_id == second))
        self.run_cron("2026-02-16")
        self.assertEqual(self.declarations(), declaration, "joined, not refiled")
        self.assertTrue(
            declaration.line_ids.filtered(lambda l: l.move_id == second).date_filed
        )
        self.assertEqual(declaration.amount_reported, 1800.0)
        overdue = self.at_insurer(declaration)
        self.assertEqual(overdue["amount"], 1800.0)
        self.assertEqual(
            {i["invoiceNumber"] for i in overdue["invoices"]}, {first.name, second.name}
        )

        with freeze_time("2026-02-17"):
            self.pay(first, 1200.0)
        self.assertEqual(declaration.payment_status, "partial")
        self.run_cron("2026-02-17")
        self.assertEqual(self.at_insurer(declaration)["amount"], 600.0)
        self.assertEqual(declaration.state, "filed")

        with freeze_time("2026-02-18"):
            self.pay(second, 600.0)
        self.run_cron("2026-02-18")
        self.assertRecordValues(
            declaration, [{"state": "settled", "payment_status": "paid"}]
        )
        self.assertEqual(self.at_insurer(declaration)["status"], "SETTLED")
        # The insurer allows deliveries again: a credit manager lifts the stop.
        self.buyer.invalidate_recordset()
        self.assertTrue(self.buyer.credit_insurance_stop, "never lifted by the job")
        declaration.with_user(self.manager).action_lift_stop()
        self.buyer.invalidate_recordset()
        self.assertFalse(self.buyer.credit_insurance_stop)
        stats = self.stats()
        self.assertEqual(stats["declarations"], {declaration.idempotency_key: 1})
        self.assertEqual(
            stats["declaration_updates"], {declaration.insurer_reference: 3}
        )
        self.assertEqual(stats["duplicates"], 0)

    def test_extension_through_the_api_accepted_or_refused(self):
        accepted_invoice = self.overdue_invoice(1000.0, invoice_date="2026-01-20")
        refused_invoice = self.overdue_invoice(1000.0, invoice_date="2026-01-20")
        self.policy.max_extension_days = 90  # the sandbox accepts 60 at most
        with freeze_time("2026-02-10"):
            accepted = self.request_extension(accepted_invoice, "2026-03-20")
            refused = self.request_extension(refused_invoice, "2026-05-01")
        # No free extension under this policy: nothing moves before the
        # insurer answers.
        self.assertEqual(
            (accepted_invoice | refused_invoice).mapped(
                "credit_insurance_extended_due_date"
            ),
            [False, False],
        )
        self.assertEqual(
            refused_invoice.credit_insurance_declaration_deadline.isoformat(),
            "2026-03-21",  # due 19 February + 30 days
        )
        self.run_cron("2026-02-10")
        self.assertEqual((accepted + refused).mapped("state"), ["filed", "filed"])
        self.assertEqual(self.at_insurer(accepted)["requestedDueDate"], "2026-03-20")
        self.assertEqual(self.at_insurer(accepted)["category"], "EXP")
        self.assertFalse(self.buyer.credit_insurance_stop, "an extension stops nothing")

        self.run_cron(self.when_due(accepted, refused))
        self.assertEqual(accepted.state, "acknowledged")
        self.assertEqual(refused.state, "refused")
        self.assertEqual(
            accepted_invoice.credit_insurance_extended_due_date.isoformat(),
            "2026-03-20",
        )
        self.assertFalse(refused_invoice.credit_insurance_extended_due_date)
        self.assertEqual(
            refused_invoice.credit_insurance_declaration_deadline.isoformat(),
            "2026-03-21",
            "still the original due date + 30 days",
        )
        self.assertEqual(
            accepted_invoice.credit_insurance_declaration_deadline.isoformat(),
            "2026-04-19",  # 20 March + 30 days, from the acceptance on
        )
        self.assertIn(
            "not granted", " ".join(refused_invoice.message_ids.mapped("body"))
        )

    def test_operation_the_api_does_not_offer_goes_to_the_portal(self):
        """Atradius publishes no overdue contract: the job finds the buyer,
        then hands the filing to a credit manager, through the real provider."""
        self.insurer.write(dialect_values("atradius", self.sandbox.url))
        self.overdue_invoice(1000.0)
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        self.assertRecordValues(
            declaration,
            [
                {
                    "state": "to_file",
                    "manual_filing": True,
                    "delivery_uncertain": False,
                    "insurer_buyer_ref": "303265045",
                }
            ],
        )
        self.assertIn(
            "declaring an overdue is not available through this connection",
            declaration.last_error,
        )
        self.assertIn(
            "File the overdue declaration with Test insurer: Buyer SA",
            self.activity_summaries(declaration, self.manager),
        )
        self.run_cron(TRIGGER)
        self.assertEqual(self.stats()["overdues"], 0)

    # ------------------------------------------------------ exactly once

    def test_dropped_answer_is_reconciled_not_filed_twice(self):
        self.overdue_invoice(1000.0)
        self.sandbox.faults.add("drop", method="POST", path="/v1/overdues")
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        self.assertRecordValues(
            declaration,
            [{"state": "error", "delivery_uncertain": True, "retry_count": 1}],
        )
        self.assertIn("closed the connection without answering", declaration.last_error)
        self.assertFalse(self.buyer.credit_insurance_stop)
        # A second before the retry is due, the job leaves it alone.
        self.assertEqual(
            self.run_cron(self.when_due(declaration) - timedelta(seconds=2)), 0
        )
        self.assertEqual(declaration.retry_count, 1)

        self.run_cron(self.when_due(declaration))
        self.assertRecordValues(
            declaration,
            [{"state": "filed", "delivery_uncertain": False, "last_error": False}],
        )
        self.assertIn(
            "It was not sent again", " ".join(declaration.message_ids.mapped("body"))
        )
        stats = self.stats()
        self.assertEqual(stats["declarations"], {declaration.idempotency_key: 1})
        self.assertEqual(stats["duplicates"], 0)

    def test_answer_after_the_timeout_is_reconciled_not_filed_twice(self):
        self.overdue_invoice(1000.0)
        # Odoo's test framework raises HTTP timeouts below 10 s to 10 s.
        self.sandbox.faults.add("slow", arg=11, method="POST", path="/v1/overdues")
        self.run_cron(TRIGGER)
        declaration = self.declarations()
        self.assertIn("did not answer within 2 s", declaration.last_error)
        self.assertTrue(declaration.delivery_uncertain)
        self.run_cron(self.when_due(declaration))
        self.assertEqual(declaration.state, "filed")
        self.assertEqual(self.stats()["declarations"], {declaration.idempotency_key: 1})

    def test_worker_dying_before_the_commit_is_reconciled(self):
        """The insurer took it, the worker died before saving the answer: the
        sending mark committed before the call survives; the next run looks
        the declaration up instead of filing it again."""
        self.overdue_invoice(1000.0)
        Declaration = type(self.Declaration)

        def crash(self, *args, **kwargs):
            raise SimulatedCrash()

        crashed = False
        with patch.object(Declaration, "_record_filing", crash):
            try:
                self.run_cron(TRIGGER)
            except SimulatedCrash:
                crashed = True
        self.assertTrue(crashed)
        declaration = self.declarations()
        self.assertRecordValues(
            declaration,
            [{"state": "to_file", "delivery_uncertain": True, "date_filed": False}],
        )
        self.run_cron(TRIGGER)
        self.assertEqual(declaration.state, "filed")
        self.assertEqual(self.stats()["declarations"], {declaration.idempotency_key: 1})
        self.assertEqual(self.stats()["duplicates"], 0)

    def test_without_lookup_a_person_checks_the_portal(self):
        """Allianz Trade's overdue exchange has no lookup by our key: a lost
        answer to an extension request never gets a blind re-send."""
        self.insurer.write(dialect_values("allianz_trade", self.sandbox.url))
        invoice = self.overdue_invoice(1000.0, invoice_date="2026-01-20")
        self.policy.max_extension_days = 90
        with freeze_time("2026-02-10"):
            declaration = self.request_extension(invoice, "2026-03-10")
        self.sandbox.faults.add(
            "drop", method="POST", path="/allianz/uatm/riskinfo/v3/overdues"
        )
        self.run_cron("2026-02-10")
        self.assertRecordValues(
            declaration, [{"state": "error", "delivery_uncertain": True}]
        )
        retry = self.when_due(declaration)
        self.run_cron(retry)
        self.assertRecordValues(
            declaration,
            [{"state": "error", "next_retry_date": False, "delivery_uncertain": True}],
        )
        self.assertIn("Check the insurer's portal", declaration.last_error)
        self.run_cron(retry + timedelta(days=1))
        self.assertEqual(self.stats()["overdues"], 1, "filed once")

        # Found in the portal, accepted: the credit manager records it.
        declaration.with_user(self.manager).write({"insurer_reference": "JOB-000001"})
        declaration.with_user(self.manager).action_mark_filed()
        self.assertEqual(declaration.state, "acknowledged")

    # ------------------------------------------------------------ failures

    def test_one_failing_buyer_never_stops_the_others(self):
        unknown = self.make_buyer("Inconnue SA", "999111255")
        anonymous = self.env["res.partner"].create(
            {"name": "Sans Identifiant", "is_company": True}
        )
        failing = self.make_buyer("Panne SARL", "123456725")
        for buyer in (self.buyer, unknown, anonymous, failing):
            self.overdue_invoice(1000.0, buyer=buyer)
        self.sandbox.faults.add("error", arg=500, method="POST", path="/v1/overdues")
        self.run_cron(TRIGGER)

        lost, no_id = self.declarations(unknown), self.declarations(anonymous)
        self.assertRecordValues(
            lost + no_id,
            [
                {
                    "state": "error",
                    "next_retry_date": False,
                    "delivery_uncertain": False,
                },
                {
                    "state": "error",
                    "next_retry_date": False,
                    "delivery_uncertain": False,
                },
            ],
        )
        self.assertIn("does not know Inconnue SA (SIREN 999111255", lost.last_error)
        self.assertIn("neither a VAT number nor a company registry", no_id.last_error)
        # The two others are filed concurrently: either got the 500.
        pair = self.declarations() + self.declarations(failing)
        failed = pair.filtered(lambda d: d.state == "error")
        self.assertEqual(len(failed), 1)
        self.assertEqual((pair - failed).state, "filed")
        self.assertIn("HTTP 500", failed.last_error)
        self.assertTrue(failed.delivery_uncertain, "a 500 may have been processed")
        self.assertEqual(
            failed.next_retry_date - datetime(2026, 2, 7), timedelta(minutes=5)
        )

        self.run_cron(self.when_due(failed))
        self.assertEqual(failed.state, "filed")
        self.assertEqual(set(self.stats()["declarations"].values()), {1})

    def test_backoff_grows_with_each_failure(self):
        self.overdue_invoice(1000.0)
        delays = []
        moment = datetime(2026, 2, 7)  # the trigger day
        for __ in range(3):
            self.sandbox.faults.add("error", arg=503, path="/v1/buyers")
            self.run_cron(moment)
            declaration = self.declarations()
            delays.append(declaration.next_retry_date - moment)
            moment = self.when_due(declaration)
        self.assertEqual(declaration.retry_count, 3)
        self.assertTrue(delays[0] < delays[1] < delays[2])
        self.assertFalse(declaration.delivery_uncertain, "never reached the filing")

    def test_batches_are_bounded_and_the_job_comes_back(self):
        buyers = [
            self.make_buyer(f"Lot {n} SAS", siren_of(f"4321122{n}"))
            for n in range(1, 4)
        ]
        for buyer in buyers:
            self.overdue_invoice(1000.0, buyer=buyer)
        cron = self.env.ref("credit_insurance.ir_cron_declare_overdues")
        Trigger = self.env["ir.cron.trigger"]
        before = Trigger.search_count([("cron_id", "=", cron.id)])
        self.assertEqual(self.run_cron(TRIGGER, batch_size=2), 2)
        self.assertGreater(Trigger.search_count([("cron_id", "=", cron.id)]), before)
        self.assertEqual(self.run_cron(TRIGGER, batch_size=2), 1)
        self.assertEqual(
            {self.declarations(buyer).state for buyer in buyers}, {"filed"}
        )

    def request_extension(self, invoice, new_due_date):
        wizard = (
            self.env["credit.insurance.extension.wizard"]
            .with_user(self.manager)
            .create({"move_id": invoice.id, "new_due_date": new_due_date})
        )
        return self.Declaration.browse(wizard.action_request()["res_id"])


@tagged("post_install", "-at_install")
class TestConcurrentWorkers(TransactionCase):
    """Two workers at once, each with its own database connection: the rows
    are committed (and removed at the end) so that both can see them."""

    def test_two_workers_file_each_declaration_once(self):
        sandbox = serve_sandbox(self, latency=0.2)
        fixture = self.committed_fixture(sandbox.url, buyers=6)
        self.addCleanup(self.remove_fixture, fixture)

        barrier = threading.Barrier(2)
        done, errors = {}, []

        def worker(name):
            try:
                with self.registry.cursor() as cr:
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    insurer = env["credit.insurance.insurer"].browse(fixture["insurer"])
                    barrier.wait()
                    done[name] = env["credit.insurance.declaration"]._exchange_batch(
                        batch_size=3, insurer=insurer
                    )
            except Exception as error:  # noqa: BLE001 - asserted below
                errors.append(error)

        threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        self.assertFalse(errors)
        self.assertEqual(sorted(done.values()), [3, 3], "each took its own share")

        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            declarations = env["credit.insurance.declaration"].browse(
                fixture["declarations"]
            )
            self.assertEqual(set(declarations.mapped("state")), {"filed"})
            keys = set(declarations.mapped("idempotency_key"))
        stats = requests.get(f"{sandbox.url}/_admin/stats", timeout=5).json()
        self.assertEqual(stats["declarations"], dict.fromkeys(keys, 1))
        self.assertEqual(stats["duplicates"], 0)

    def committed_fixture(self, url, buyers):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            company = env.ref("base.main_company")
            env = env(context={"allowed_company_ids": [company.id]})
            insurer = env["credit.insurance.insurer"].create(
                {
                    "name": "Concurrent sandbox",
                    "provider": "sandbox",
                    "api_base_url": url,
                    "api_key": API_KEY,
                    "api_timeout": 5,
                    "company_id": company.id,
                }
            )
            policy = env["credit.insurance.policy"].create(
                {
                    "name": "POL-CONCURRENT",
                    "insurer_id": insurer.id,
                    "policy_type": "selective",
                    "company_id": company.id,
                    "date_start": "2020-01-01",
                }
            )
            partners = env["res.partner"].create(
                [
                    {
                        "name": f"Concurrent buyer {n}",
                        "is_company": True,
                        "country_id": env.ref("base.fr").id,
                        "vat": fr_vat(siren_of(f"7000000{n}")),
                    }
                    for n in range(buyers)
                ]
            )
            env["credit.insurance.limit"].create(
                [
                    {
                        "partner_id": partner.id,
                        "policy_id": policy.id,
                        "requested_amount": 10_000,
                        "granted_amount": 10_000,
                        "date_effective": "2020-01-01",
                    }
                    for partner in partners
                ]
            )
            moves = env["account.move"].create(
                [
                    {
                        "move_type": "out_invoice",
                        "partner_id": partner.id,
                        "invoice_date": "2020-01-01",
                        "invoice_date_due": "2020-01-31",
                        "invoice_line_ids": [
                            (0, 0, {"name": "Goods", "price_unit": 1000.0})
                        ],
                    }
                    for partner in partners
                ]
            )
            moves.action_post()
            declarations = env["credit.insurance.declaration"].create(
                [
                    {
                        "partner_id": move.commercial_partner_id.id,
                        "policy_id": policy.id,
                        "company_id": company.id,
                        "state": "to_file",
                        "line_ids": [(0, 0, {"move_id": move.id})],
                    }
                    for move in moves
                ]
            )
            return {
                "insurer": insurer.id,
                "policy": policy.id,
                "partners": partners.ids,
                "moves": moves.ids,
                "declarations": declarations.ids,
            }

    def remove_fixture(self, fixture):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            cr.execute(
                "DELETE FROM credit_insurance_declaration WHERE id = ANY(%s)",
                [fixture["declarations"]],
            )
            moves = env["account.move"].browse(fixture["moves"])
            moves.button_draft()
            moves.with_context(force_delete=True).unlink()
            env["credit.insurance.limit"].search(
                [("policy_id", "=", fixture["policy"])]
            ).unlink()
            env["credit.insurance.policy"].browse(fixture["policy"]).unlink()
            env["credit.insurance.insurer"].browse(fixture["insurer"]).unlink()
            env["res.partner"].browse(fixture["partners"]).unlink()
