"""Limit requests and decisions exchanged with the sandbox insurer over real HTTP.

Each test runs its own sandbox insurer on a free localhost port (a thread),
so the faults it injects and the decisions it emits concern that test only.
The exactly-once tests use the sandbox's fault injection (a dropped answer,
an answer after the timeout) and its count of submissions per customer
reference: no HTTP call is mocked.
"""

import logging
import time
from datetime import timedelta
from unittest.mock import patch

import requests
from freezegun import freeze_time

from odoo import Command, fields
from odoo.exceptions import UserError
from odoo.tests import TransactionCase, new_test_user, tagged

from ..providers import PROVIDERS, ProviderConfig, SandboxProvider
from .common import dialect_values, serve_sandbox

API_KEY = "sbx-test-key-7731"
MANAGER = "base.group_user,credit_insurance.group_credit_insurance_manager"
SALESMAN = "base.group_user,sales_team.group_sale_salesman"


def fr_vat(siren):
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


class SimulatedCrash(BaseException):
    """The cron worker dies (killed, out of memory) in the middle of a request."""


class LogRecorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@tagged("post_install", "-at_install")
class TestConnectors(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Only this test's insurer may be called (demo insurers point elsewhere).
        cls.env["credit.insurance.insurer"].search([]).write({"active": False})
        cls.company = cls.env.company
        cls.insurer = cls.env["credit.insurance.insurer"].create(
            {
                "name": "Sandbox (test)",
                "provider": "sandbox",
                "api_base_url": "http://127.0.0.1:9",
                "api_key": API_KEY,
                "api_timeout": 2,
                "company_id": cls.company.id,
            }
        )
        cls.policy = cls.env["credit.insurance.policy"].create(
            {
                "name": "POL-SBX",
                "insurer_id": cls.insurer.id,
                "policy_type": "global",
                "company_id": cls.company.id,
                "currency_id": cls.company.currency_id.id,
                "date_start": "2020-01-01",
                "coverage_pct": 90.0,
                "discretionary_limit": 5000.0,
                "discretionary_coverage_pct": 70.0,
            }
        )
        cls.salesman = new_test_user(
            cls.env, login="cx_salesman", groups=SALESMAN, company_id=cls.company.id
        )
        cls.manager = new_test_user(
            cls.env, login="cx_manager", groups=MANAGER, company_id=cls.company.id
        )
        # The last digit of the SIREN drives the sandbox's underwriting.
        cls.buyer = cls.make_buyer("Maison Berthier SA", "303265045", vat=True)
        cls.Request = cls.env["credit.insurance.limit.request"]
        cls.Limit = cls.env["credit.insurance.limit"]

    @classmethod
    def make_buyer(cls, name, siren, vat=False):
        return cls.env["res.partner"].create(
            {
                "name": name,
                "is_company": True,
                "customer_rank": 1,
                "country_id": cls.env.ref("base.fr").id,
                "company_registry": f"{siren}00013",
                "vat": fr_vat(siren) if vat else False,
                "user_id": cls.salesman.id,
            }
        )

    def setUp(self):
        super().setUp()
        self.sandbox = serve_sandbox(self)
        self.insurer.api_base_url = self.sandbox.url

    # ---------------------------------------------------------------- helpers

    def request_limit(self, amount, buyer=None, request_type="new"):
        return self.Request.create(
            {
                "partner_id": (buyer or self.buyer).id,
                "request_type": request_type,
                "requested_amount": amount,
            }
        )

    def exchange(self):
        return self.Request._cron_exchange_with_insurers()

    def exchange_when_due(self, *requests):
        """Run the exchange when the scheduled check or retry of these
        requests is due: the clock moves there (a second after the latest;
        a day on when none is scheduled) instead of their dates being written
        into the past. ``self.clock`` keeps that moment."""
        due = [
            moment
            for request in requests
            for moment in (request.next_check_date, request.next_retry_date)
            if moment
        ]
        self.clock = (
            max(due) + timedelta(seconds=1)
            if due
            else fields.Datetime.now() + timedelta(days=1)
        )
        with freeze_time(self.clock):
            return self.exchange()

    def sandbox_stats(self, sandbox=None):
        return requests.get(
            f"{(sandbox or self.sandbox).url}/_admin/stats", timeout=5
        ).json()

    def messages(self, record):
        return " ".join(record.message_ids.mapped("body"))

    # ------------------------------------------------------------ end to end

    def test_request_pending_then_decided_becomes_the_limit_in_force(self):
        """Partner form -> request -> pending -> decision -> limit in force."""
        self.assertEqual(self.buyer.credit_insurance_limit, 5000.0, "discretionary")
        product = self.env["product.product"].create({"name": "Tissu"})
        order = self.env["sale.order"].create(
            {
                "partner_id": self.buyer.id,
                "order_line": [
                    Command.create(
                        {
                            "product_id": product.id,
                            "price_unit": 60_000.0,
                            "tax_id": False,
                        }
                    )
                ],
            }
        )
        with self.assertRaises(UserError):
            order.action_confirm()  # above the discretionary limit
        action = self.buyer.action_request_credit_insurance_limit()
        request = self.Request.with_context(**action["context"]).create(
            {"requested_amount": 80_000.0, "reason": "Framework contract"}
        )
        self.assertEqual(request.policy_id, self.policy)

        self.exchange()
        self.assertRecordValues(
            request,
            [
                {
                    "state": "pending",
                    "insurer_buyer_ref": "SBX-FR-303265045",
                    "delivery_uncertain": False,
                    "last_error": False,
                }
            ],
        )
        self.assertTrue(request.insurer_reference.startswith("SBX-R-"))
        self.assertEqual(self.exchange(), 0, "not checked again before its time")

        self.exchange_when_due(request)
        self.assertEqual(request.state, "decided")
        decision = request.decision_id
        self.assertRecordValues(
            decision,
            [
                {
                    "decision": "approved",
                    "granted_amount": 80_000.0,
                    "requested_amount": 80_000.0,
                    "insurer_buyer_ref": "SBX-FR-303265045",
                    "date_effective": self.clock.date(),
                    "state": "active",
                    "request_id": request.id,
                }
            ],
        )
        cover = self.env["credit.insurance.cover"]._get_buyer_covers(self.buyer)[
            self.buyer.id
        ]
        self.assertEqual((cover.limit, cover.decision), (80_000.0, decision))
        self.buyer.invalidate_recordset()
        self.assertEqual(self.buyer.credit_insurance_limit, 80_000.0)
        self.assertEqual(self.buyer.credit_insurance_available, 80_000.0)
        self.assertEqual(self.buyer.credit_insurance_cover_type, "named")
        # The order refused before the decision now fits the insured limit.
        order.action_confirm()
        self.assertEqual(order.state, "sale")

        # The decision feed brings the same decision: recorded once.
        self.insurer._cron_pull_decisions()
        self.assertEqual(
            self.Limit.search_count([("partner_id", "=", self.buyer.id)]), 1
        )
        self.assertFalse(self.insurer.sync_error)
        self.assertTrue(self.insurer.decisions_synced_until)

    def test_referral_answered_by_the_underwriter_later(self):
        request = self.request_limit(250_000.0)
        self.exchange()
        self.assertEqual(request.state, "referred")
        self.assertIn(
            "Referred by Sandbox (test) to an underwriter", self.messages(request)
        )
        self.exchange_when_due(request)
        self.assertEqual(request.state, "referred", "the underwriter takes two checks")
        self.exchange_when_due(request)
        self.assertRecordValues(
            request.decision_id,
            [
                {
                    "decision": "partial",
                    "granted_amount": 200_000.0,
                    "requested_amount": 250_000.0,
                }
            ],
        )
        self.assertIn("underwriter's authority", request.decision_id.conditions)

    def test_refusal_and_partial_grant_decided_at_once(self):
        refused_buyer = self.make_buyer("Refus SARL", "123456790")
        partial_buyer = self.make_buyer("Moitié SAS", "123456741")
        refused = self.request_limit(30_000.0, refused_buyer)
        partial = self.request_limit(30_000.0, partial_buyer)
        self.exchange()
        self.assertRecordValues(
            refused.decision_id + partial.decision_id,
            [
                {"decision": "refused", "granted_amount": 0.0, "insured_amount": 0.0},
                {
                    "decision": "partial",
                    "granted_amount": 15_000.0,
                    "insured_amount": 15_000.0,
                },
            ],
        )
        covers = self.env["credit.insurance.cover"]._get_buyer_covers(
            refused_buyer | partial_buyer
        )
        self.assertEqual(
            covers[refused_buyer.id].limit, 0.0, "refused: no discretionary cover"
        )
        self.assertEqual(covers[partial_buyer.id].limit, 15_000.0)

    # ---------------------------------------------------------- exactly once

    def test_dropped_answer_is_reconciled_not_sent_twice(self):
        """The sandbox records the request, then the answer is lost."""
        request = self.request_limit(20_000.0)
        self.sandbox.faults.add("drop", method="POST", path="/v1/limit-requests")
        self.exchange()
        self.assertRecordValues(
            request,
            [{"state": "error", "delivery_uncertain": True, "retry_count": 1}],
        )
        self.assertIn("closed the connection without answering", request.last_error)
        self.assertGreater(request.next_retry_date, fields.Datetime.now())

        self.exchange_when_due(request)
        self.assertRecordValues(
            request,
            [{"state": "decided", "delivery_uncertain": False, "last_error": False}],
        )
        self.assertIn("It was not sent again", self.messages(request))
        stats = self.sandbox_stats()
        self.assertEqual(stats["submissions"], {request.customer_reference: 1})
        self.assertEqual(stats["duplicates"], 0)

    def test_decision_pulled_before_the_retry_closes_the_lost_request(self):
        """The answer is lost, but the insurer's decision feed brings it."""
        request = self.request_limit(20_000.0)
        self.sandbox.faults.add("drop", method="POST", path="/v1/limit-requests")
        self.exchange()
        self.assertEqual(request.state, "error")
        self.insurer._cron_pull_decisions()
        self.assertRecordValues(
            request,
            [
                {
                    "state": "decided",
                    "delivery_uncertain": False,
                    "next_retry_date": False,
                    "last_error": False,
                }
            ],
        )
        self.assertEqual(request.decision_id.granted_amount, 20_000.0)
        self.assertEqual(self.exchange_when_due(request), 0, "nothing left to send")
        self.assertEqual(
            self.sandbox_stats()["submissions"], {request.customer_reference: 1}
        )

    def test_answer_after_the_timeout_is_reconciled_not_sent_twice(self):
        request = self.request_limit(20_000.0)
        # Odoo's test framework raises HTTP timeouts below 10 s to 10 s.
        self.sandbox.faults.add(
            "slow", arg=11, method="POST", path="/v1/limit-requests"
        )
        self.exchange()
        self.assertIn("did not answer within 2 s", request.last_error)
        self.assertTrue(request.delivery_uncertain)
        self.exchange_when_due(request)
        self.assertEqual(request.state, "decided")
        self.assertEqual(
            self.sandbox_stats()["submissions"], {request.customer_reference: 1}
        )

    def test_crash_before_the_answer_is_saved_is_reconciled(self):
        """The insurer answered, the cron died before saving it: the sending
        mark saved before the call survives, the next run looks it up."""
        request = self.request_limit(20_000.0)
        Request = type(self.Request)

        def crash(self, answer):
            raise SimulatedCrash()

        # Not assertRaises: Odoo's rolls back to a savepoint, as a dead worker
        # would not; what was committed before the call must stay.
        crashed = False
        with patch.object(Request, "_apply_limit_answer", crash):
            try:
                self.exchange()
            except SimulatedCrash:
                crashed = True
        self.assertTrue(crashed)
        self.assertRecordValues(
            request,
            [{"state": "sent", "delivery_uncertain": True, "decision_id": False}],
        )
        self.assertTrue(request.date_sent)

        self.exchange()  # the next run: looked up, found, not sent again
        self.assertEqual(request.state, "decided")
        self.assertEqual(request.decision_id.granted_amount, 20_000.0)
        self.assertEqual(
            self.sandbox_stats()["submissions"], {request.customer_reference: 1}
        )
        self.assertEqual(self.sandbox_stats()["duplicates"], 0)

    def test_without_lookup_a_person_checks_before_any_resend(self):
        """Allianz Trade keeps no reference of ours: a request decided at once
        leaves no pending request to find, so a lost answer is never re-sent
        by the job; a person checks the portal."""
        self.insurer.write(dialect_values("allianz_trade", self.sandbox.url))
        request = self.request_limit(20_000.0)  # decided at once by the sandbox
        self.sandbox.faults.add(
            "drop", method="POST", path="/allianz/uatm/riskinfo/v3/covers"
        )
        self.exchange()
        self.assertRecordValues(
            request, [{"state": "error", "delivery_uncertain": True}]
        )
        self.exchange_when_due(request)
        self.assertRecordValues(
            request,
            [{"state": "error", "next_retry_date": False, "delivery_uncertain": True}],
        )
        self.assertIn("Check the insurer's portal", request.last_error)
        self.assertEqual(self.exchange_when_due(request), 0, "never re-sent by the job")
        self.assertEqual(self.sandbox_stats()["requests"], 1)

    # ----------------------------------------------- each insurer's dialect

    def test_each_insurer_decides_through_its_own_dialect(self):
        """The same request through Atradius, Coface and Allianz Trade as the
        sandbox speaks them: the buyer found by its identifiers, the limit
        granted, and the decision feed recording it once."""
        expected = {
            "atradius": ("303265045", "decided"),
            "coface": ("EN303265045", "decided"),
            "allianz_trade": ("AT303265045", "pending"),  # a job to follow
        }
        for provider, (buyer_ref, first_state) in expected.items():
            with self.subTest(provider=provider):
                sandbox = serve_sandbox(self)
                self.insurer.write(
                    {
                        **dialect_values(provider, sandbox.url),
                        "exchanges_confirmed": True,
                    }
                )
                buyer = self.make_buyer(f"Client {provider}", "303265045", vat=True)
                request = self.request_limit(20_000.0, buyer)
                self.exchange()
                self.assertEqual(request.state, first_state)
                self.exchange_when_due(request)
                self.assertRecordValues(
                    request.decision_id,
                    [
                        {
                            "decision": "approved",
                            "granted_amount": 20_000.0,
                            "insurer_buyer_ref": buyer_ref,
                            "partner_id": buyer.id,
                        }
                    ],
                )
                self.insurer.decisions_synced_until = False
                self.insurer._cron_pull_decisions()
                self.assertFalse(self.insurer.sync_error)
                self.assertEqual(
                    self.Limit.search_count([("partner_id", "=", buyer.id)]), 1
                )

    def test_dropped_answer_is_reconciled_at_every_insurer(self):
        """Exactly once through each dialect: Atradius finds the cover by our
        customerRefNumber, Coface the order by our customerReference, Allianz
        Trade the pending cover request."""
        for provider, amount, path in (
            ("atradius", 20_000.0, "/atradius/credit-insurance/cover-management"),
            ("coface", 20_000.0, "/coface/product/v1/orders"),
            ("allianz_trade", 80_000.0, "/allianz/uatm/riskinfo/v3/covers"),
        ):
            with self.subTest(provider=provider):
                sandbox = serve_sandbox(self)
                self.insurer.write(dialect_values(provider, sandbox.url))
                buyer = self.make_buyer(f"Client {provider}", "303265045", vat=True)
                request = self.request_limit(amount, buyer)
                sandbox.faults.add("drop", method="POST", path=path)
                self.exchange()
                self.assertRecordValues(
                    request, [{"state": "error", "delivery_uncertain": True}]
                )
                self.exchange_when_due(request)
                self.assertFalse(request.delivery_uncertain, request.last_error)
                self.assertIn("It was not sent again", self.messages(request))
                if request.state != "decided":  # Allianz Trade: still pending
                    self.exchange_when_due(request)
                self.assertEqual(request.decision_id.granted_amount, amount)
                stats = self.sandbox_stats(sandbox)
                self.assertEqual(stats["requests"], 1)
                self.assertEqual(stats["duplicates"], 0)

    # --------------------------------------------------- logins and errors

    def test_coface_refused_login_stops_the_insurer_and_a_lockout_pauses_it(self):
        """Coface locks the account after five refused logins: a refused one
        is not tried again, by the job nor by the batch's other requests."""
        self.insurer.write(
            {**dialect_values("coface", self.sandbox.url), "password": "wrong"}
        )
        first = self.request_limit(10_000.0)
        second = self.request_limit(10_000.0)
        self.exchange()
        coface = self.sandbox.app.dialects["coface"]
        self.assertEqual(coface.failures["durand"][0], 1, "one login attempt")
        self.assertRecordValues(
            self.insurer, [{"credentials_refused": True, "failed_logins": 1}]
        )
        self.assertEqual((first + second).mapped("state"), ["draft", "draft"])
        self.assertIn("Refused logins in a row: 1", self.messages(self.insurer))
        self.exchange()
        self.assertEqual(coface.failures["durand"][0], 1, "no storm")

        # Someone else locked the account meanwhile: the next login says so.
        coface.failures["durand"] = (5, time.time() + 900)
        self.insurer.sudo().password = "still-wrong"
        self.exchange()
        self.assertTrue(self.insurer.locked_until)
        self.assertAlmostEqual(
            (self.insurer.locked_until - fields.Datetime.now()).total_seconds(),
            900,
            delta=5,
        )
        self.assertIn("locked the account", self.insurer.sync_error)
        with self.assertRaisesRegex(UserError, "locked the account"):
            self.insurer.action_test_connection()

    def test_a_wrong_route_is_not_refused_credentials_and_reads_in_french(self):
        """Atradius answers 403 to an address outside its API: the URL is
        wrong, not the credentials; a French company reads it in French."""
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._load_module_terms(
            ["credit_insurance"], ["fr_FR"], overwrite=True
        )
        self.company.partner_id.lang = "fr_FR"
        self.insurer.write(
            {
                **dialect_values("atradius", self.sandbox.url),
                "api_base_url": self.sandbox.url + "/atradius/v2",
            }
        )
        request = self.request_limit(10_000.0)
        self.exchange()  # a scheduled job: no language of its own
        self.assertFalse(self.insurer.credentials_refused)
        self.assertEqual(request.state, "error")
        self.assertIn(
            "a refusé l'appel POST /authenticate/v2/tokens", request.last_error
        )
        self.assertIn("HTTP 403", request.last_error)
        self.assertNotIn("refused", request.last_error)

    def test_a_mistyped_vat_number_is_named_not_sent(self):
        typo = self.env["res.partner"].create(
            {
                "name": "Faute de Frappe SARL",
                "is_company": True,
                "country_id": self.env.ref("base.fr").id,
                "vat": "FR41303265045",  # the key of SIREN 303265045 is 40
            }
        )
        request = self.request_limit(10_000.0, typo)
        self.exchange()
        self.assertIn("FR41303265045 failed its check digits", request.last_error)
        self.assertFalse(request.next_retry_date, "a person corrects it")
        self.assertEqual(self.sandbox_stats()["requests"], 0)

    # ------------------------------------------- unpublished contracts

    def test_exchanges_on_an_unpublished_contract_wait_for_a_confirmation(self):
        self.insurer.write(dialect_values("coface", self.sandbox.url))
        request = self.request_limit(10_000.0)
        self.assertEqual(
            self.insurer.unconfirmed_exchanges,
            "requesting a limit, declaring an overdue",
        )
        self.assertTrue(request.exchange_unconfirmed)
        # A salesperson, who cannot read insurers, sees the request say so.
        self.assertTrue(request.with_user(self.salesman).exchange_unconfirmed)
        with self.assertRaises(UserError):
            self.insurer.with_user(self.salesman).action_confirm_exchanges()
        self.insurer.with_user(self.manager).action_confirm_exchanges()
        self.assertRecordValues(
            self.insurer,
            [{"exchanges_confirmed": True, "exchanges_confirmed_by": self.manager.id}],
        )
        self.assertFalse(self.insurer.unconfirmed_exchanges)
        request.invalidate_recordset()
        self.assertFalse(request.exchange_unconfirmed)
        atradius = self.insurer.new({"provider": "atradius"})
        self.assertFalse(atradius.unconfirmed_exchanges, "all public")

    # ------------------------------------------------------------- failures

    def test_one_failing_buyer_never_stops_the_batch(self):
        unknown = self.make_buyer("Inconnue SA", "999111255")
        no_identifier = self.env["res.partner"].create(
            {"name": "Sans Identifiant", "is_company": True}
        )
        failing = self.make_buyer("Panne SARL", "123456725")
        lost = self.request_limit(10_000.0, unknown)
        anonymous = self.request_limit(10_000.0, no_identifier)
        retried = self.request_limit(10_000.0, failing)
        fine = self.request_limit(10_000.0)
        self.sandbox.faults.add(
            "error", arg=500, method="POST", path="/v1/limit-requests"
        )
        self.exchange()

        self.assertEqual(fine.state, "decided")
        self.assertRecordValues(
            lost + anonymous + retried,
            [
                {"state": "error", "retry_count": 1, "delivery_uncertain": False},
                {"state": "error", "retry_count": 1, "delivery_uncertain": False},
                {"state": "error", "retry_count": 1, "delivery_uncertain": True},
            ],
        )
        self.assertFalse(lost.next_retry_date, "a person must correct the buyer")
        self.assertFalse(anonymous.next_retry_date)
        self.assertIn("does not know Inconnue SA (SIREN 999111255", lost.last_error)
        self.assertIn(
            "neither a VAT number nor a company registry", anonymous.last_error
        )
        self.assertIn("HTTP 500", retried.last_error)
        delay = retried.next_retry_date - fields.Datetime.now()
        self.assertTrue(timedelta(minutes=4) < delay <= timedelta(minutes=5))

        self.exchange_when_due(retried)
        self.assertEqual(retried.state, "decided")
        self.assertEqual(
            self.sandbox_stats()["submissions"][retried.customer_reference], 1
        )

    def test_backoff_grows_with_each_failure(self):
        request = self.request_limit(10_000.0)
        delays = []
        moment = fields.Datetime.now()
        for __ in range(3):
            self.sandbox.faults.add("error", arg=503, path="/v1/buyers")
            with freeze_time(moment):
                self.exchange()
            delays.append(request.next_retry_date - moment)
            moment = request.next_retry_date + timedelta(seconds=1)
        self.assertEqual(request.retry_count, 3)
        self.assertTrue(delays[0] < delays[1] < delays[2])
        self.assertFalse(request.delivery_uncertain, "never reached the sending")

    def test_429_pauses_the_insurer_until_retry_after(self):
        first = self.request_limit(10_000.0)
        second = self.request_limit(10_000.0)
        self.sandbox.faults.add(
            "429", arg=900, method="POST", path="/v1/limit-requests"
        )
        self.exchange()
        now = fields.Datetime.now()
        self.assertEqual(first.state, "error")
        self.assertIn("HTTP 429", first.last_error)
        self.assertFalse(first.delivery_uncertain, "a 429 is refused before processing")
        self.assertAlmostEqual(
            (first.next_retry_date - now).total_seconds(), 900, delta=5
        )
        self.assertAlmostEqual(
            (self.insurer.paused_until - now).total_seconds(), 900, delta=5
        )
        self.assertEqual(
            second.state, "draft", "no call while the insurer asks to wait"
        )
        self.assertEqual(self.exchange(), 0)
        triggers = self.env["ir.cron.trigger"].search(
            [
                (
                    "cron_id",
                    "=",
                    self.env.ref("credit_insurance.ir_cron_exchange_limit_requests").id,
                ),
                ("call_at", "=", self.insurer.paused_until),
            ]
        )
        self.assertTrue(triggers, "the job comes back when the insurer allows it")

    def test_refused_credentials_stop_the_insurer_and_never_leak(self):
        guarded = serve_sandbox(self, api_key="the-right-key-1")
        self.insurer.api_base_url = guarded.url
        request = self.request_limit(10_000.0)
        recorder = LogRecorder()
        loggers = [
            logging.getLogger(name)
            for name in ("odoo.addons.credit_insurance", "urllib3")
        ]
        previous = [logger.level for logger in loggers]
        for logger in loggers:
            logger.addHandler(recorder)
            logger.setLevel(logging.DEBUG)
        try:
            self.exchange()
            self.insurer._cron_pull_decisions()
        finally:
            for logger, level in zip(loggers, previous, strict=True):
                logger.removeHandler(recorder)
                logger.setLevel(level)
        self.assertTrue(self.insurer.credentials_refused)
        self.assertIn("refused the credentials", self.insurer.sync_error)
        self.assertEqual(request.state, "draft", "not the request's fault")
        self.assertEqual(self.exchange(), 0, "no login attempt until corrected")
        everything = " ".join(
            [
                *recorder.lines,
                self.insurer.sync_error,
                self.messages(self.insurer),
                str(request.last_error),
            ]
        )
        self.assertTrue(recorder.lines, "the calls were logged")
        self.assertNotIn(API_KEY, everything)

        self.insurer.sudo().api_key = "the-right-key-1"
        self.assertFalse(self.insurer.credentials_refused)
        self.exchange()
        self.assertEqual(request.state, "decided")

    # ------------------------------------------------------ decision feed

    def test_insurer_reductions_are_announced_and_take_effect_at_their_date(self):
        reduced_buyer = self.make_buyer("Atelier Garnier SARL", "512345679")
        withdrawn_buyer = self.make_buyer("Boutique Lumière SARL", "404833048")
        self.request_limit(20_000.0, reduced_buyer)
        self.request_limit(40_000.0, withdrawn_buyer)
        self.exchange()
        self.insurer._cron_pull_decisions()

        today = fields.Date.today()
        notice = today + timedelta(days=30)
        reduction = self.Limit.search(
            [("partner_id", "=", reduced_buyer.id), ("decision", "=", "reduced")]
        )
        withdrawal = self.Limit.search(
            [("partner_id", "=", withdrawn_buyer.id), ("decision", "=", "cancelled")]
        )
        self.assertRecordValues(
            reduction + withdrawal,
            [
                {
                    "granted_amount": 10_000.0,
                    "date_effective": notice,
                    "state": "scheduled",
                },
                {"granted_amount": 0.0, "date_effective": notice, "state": "scheduled"},
            ],
        )
        for cut in reduction + withdrawal:
            # The buyer's salesperson and every credit manager of the company.
            self.assertIn(self.salesman, cut.activity_ids.user_id)
            self.assertIn(self.manager, cut.activity_ids.user_id)
            self.assertEqual(len(cut.activity_ids), len(cut.activity_ids.user_id))
        self.assertIn("Insured limit reduced", reduction.activity_ids[0].summary)
        self.assertIn("Insured limit withdrawn", withdrawal.activity_ids[0].summary)

        # Pulled again: nothing recorded twice.
        count = self.Limit.search_count([("insurer_decision_ref", "!=", False)])
        self.insurer.decisions_synced_until = False
        self.insurer._cron_pull_decisions()
        self.assertEqual(
            self.Limit.search_count([("insurer_decision_ref", "!=", False)]), count
        )

        self.assertEqual(
            reduced_buyer.credit_insurance_limit, 20_000.0, "until the cut"
        )
        with freeze_time(notice):
            self.Limit._cron_refresh_states()
            reduced_buyer.invalidate_recordset()
            withdrawn_buyer.invalidate_recordset()
            self.assertEqual(reduction.state, "active")
            self.assertEqual(reduced_buyer.credit_insurance_limit, 10_000.0)
            self.assertEqual(withdrawn_buyer.credit_insurance_limit, 0.0)

    def test_decision_nobody_asked_for_is_matched_by_siren(self):
        newcomer = self.make_buyer("Nouveau Client SA", "777888975")
        provider = SandboxProvider(
            ProviderConfig(base_url=self.sandbox.url, api_key="k", timeout=2)
        )
        identity = self.Request.new({"partner_id": newcomer.id})._buyer_identity()
        buyer_ref = provider.find_buyer(identity).buyer_ref
        requests.post(
            f"{self.sandbox.url}/_admin/decisions",
            json={
                "buyerId": buyer_ref,
                "code": "APPROVED",
                "amount": 12_000,
                "currency": self.company.currency_id.name,
                "policyNumber": "POL-SBX",
            },
            timeout=5,
        )
        self.insurer._cron_pull_decisions()
        self.assertRecordValues(
            self.Limit.search([("partner_id", "=", newcomer.id)]),
            [
                {
                    "granted_amount": 12_000.0,
                    "policy_id": self.policy.id,
                    "insurer_buyer_ref": buyer_ref,
                }
            ],
        )
        self.assertEqual(newcomer.credit_insurance_limit, 12_000.0)

    # ------------------------------------------------------------ workflow

    def test_bulk_requests_from_a_list_are_queued_for_the_insurer(self):
        """A salesperson asks from the partner list, a credit manager sends."""
        other = self.make_buyer("Comptoir du Nord SAS", "432112225")
        wizard = (
            self.env["credit.insurance.limit.request.wizard"]
            .with_user(self.salesman)
            .with_context(
                active_model="res.partner", active_ids=[self.buyer.id, other.id]
            )
            .create({"request_type": "new", "requested_amount": 15_000.0})
        )
        action = wizard.action_create_requests()
        created = self.Request.search(action["domain"])
        self.assertEqual(created.partner_id, self.buyer | other)
        self.assertEqual(created.policy_id, self.policy)
        created.with_user(self.manager).action_send()
        self.assertEqual(set(created.mapped("state")), {"draft"})
        self.assertIn("Queued for Sandbox (test)", self.messages(created[0]))
        self.assertTrue(
            self.env["ir.cron.trigger"].search(
                [
                    (
                        "cron_id",
                        "=",
                        self.env.ref(
                            "credit_insurance.ir_cron_exchange_limit_requests"
                        ).id,
                    )
                ]
            ),
            "the exchange runs at once",
        )
        self.exchange()
        self.assertEqual(set(created.mapped("state")), {"decided"})

    def test_manual_insurer_requests_are_left_to_people(self):
        manual = self.env["credit.insurance.insurer"].create(
            {"name": "Manual", "company_id": self.company.id}
        )
        policy = self.env["credit.insurance.policy"].create(
            {
                "name": "POL-MAN",
                "insurer_id": manual.id,
                "policy_type": "selective",
                "company_id": self.company.id,
            }
        )
        request = self.Request.create(
            {
                "partner_id": self.buyer.id,
                "policy_id": policy.id,
                "requested_amount": 1000.0,
            }
        )
        self.exchange()
        self.assertEqual(request.state, "draft")
        self.assertEqual(self.sandbox_stats()["submissions"], {})

    def test_every_provider_value_has_a_provider(self):
        values = {
            value
            for value, __ in self.env["credit.insurance.insurer"]
            ._fields["provider"]
            .selection
        }
        self.assertEqual(values, set(PROVIDERS))
        connected = self.insurer.new({"provider": "atradius"})
        self.assertTrue(connected.connected)
        self.assertFalse(self.insurer.new({"provider": "manual"}).connected)
