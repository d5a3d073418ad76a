from freezegun import freeze_time

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import CreditInsuranceCommon


@tagged("post_install", "-at_install")
class TestLimitHistory(CreditInsuranceCommon):
    def test_new_decision_supersedes_from_its_effective_date(self):
        with freeze_time("2024-03-01"):
            first = self.make_limit(10000.0, "2024-01-01")
            reduction = self.make_limit(
                4000.0, "2024-02-01", decision="reduced", requested_amount=10000.0
            )
            self.assertEqual(first.date_superseded.isoformat(), "2024-02-01")
            self.assertEqual((first.state, reduction.state), ("superseded", "active"))
            self.assertEqual(self.cover(date="2024-01-31").limit, 10000.0)
            self.assertEqual(self.cover(date="2024-02-01").limit, 4000.0)
            self.assertEqual(self.cover(date="2024-01-31").decision, first)

    def test_decision_announced_for_later_takes_effect_on_its_date(self):
        with freeze_time("2024-03-01"):
            current = self.make_limit(10000.0, "2024-01-01")
            announced = self.make_limit(3000.0, "2024-04-01", decision="reduced")
            self.assertEqual((current.state, announced.state), ("active", "scheduled"))
            self.assertEqual(self.cover().limit, 10000.0)
        with freeze_time("2024-04-01"):
            self.env["credit.insurance.limit"]._cron_refresh_states()
            self.assertEqual((current.state, announced.state), ("superseded", "active"))
            self.assertEqual(self.cover().limit, 3000.0)

    def test_inserting_a_decision_in_the_past_rechains_the_history(self):
        with freeze_time("2024-06-01"):
            first = self.make_limit(10000.0, "2024-01-01")
            last = self.make_limit(2000.0, "2024-05-01", decision="reduced")
            middle = self.make_limit(6000.0, "2024-03-01", decision="reduced")
            self.assertEqual(first.date_superseded.isoformat(), "2024-03-01")
            self.assertEqual(middle.date_superseded.isoformat(), "2024-05-01")
            self.assertFalse(last.date_superseded)
            middle.unlink()
            self.assertEqual(first.date_superseded.isoformat(), "2024-05-01")

    def test_expired_named_limit_falls_back_to_discretionary_cover(self):
        with freeze_time("2024-06-01"):
            limit = self.make_limit(20000.0, "2024-01-01", date_expiry="2024-05-31")
            self.assertEqual(limit.state, "expired")
            cover = self.cover()
            self.assertFalse(cover.decision)
            self.assertEqual((cover.limit, cover.coverage_pct), (5000.0, 70.0))
            self.assertEqual(self.cover(date="2024-05-31").limit, 20000.0)

    def test_expired_limit_under_selective_policy_leaves_no_cover(self):
        self.policy.policy_type = "selective"
        with freeze_time("2024-06-01"):
            self.make_limit(20000.0, "2024-01-01", date_expiry="2024-05-31")
            cover = self.cover()
            self.assertFalse(cover.policy)
            self.assertEqual(cover.limit, 0.0)

    def test_refusal_insures_nothing_even_under_a_global_policy(self):
        self.make_limit(0.0, decision="refused", requested_amount=8000.0)
        cover = self.cover()
        self.assertEqual(cover.policy, self.policy)
        self.assertEqual(cover.limit, 0.0)
        self.assertEqual(self.buyer.credit_insurance_cover_type, "named")

    def test_unnamed_buyer_gets_discretionary_cover(self):
        cover = self.cover()
        self.assertEqual(cover.policy, self.policy)
        self.assertFalse(cover.decision)
        self.assertEqual((cover.limit, cover.coverage_pct), (5000.0, 70.0))
        self.assertEqual(self.buyer.credit_insurance_cover_type, "discretionary")

    def test_no_cover_outside_the_policy_dates(self):
        self.policy.date_end = "2024-12-31"
        self.make_limit(9000.0, "2024-01-01")
        self.assertEqual(self.cover(date="2024-12-31").limit, 9000.0)
        self.assertFalse(self.cover(date="2025-01-01").policy)

    def test_limit_coverage_defaults_from_policy(self):
        self.assertEqual(self.make_limit(1000.0).coverage_pct, 90.0)


@tagged("post_install", "-at_install")
class TestBadInput(CreditInsuranceCommon):
    def assert_refused(self, exception, field_label, function, *args, **kwargs):
        with self.assertRaises(exception) as caught:
            function(*args, **kwargs)
        self.assertIn(field_label, str(caught.exception))

    def test_negative_amounts(self):
        self.assert_refused(ValidationError, "negative", self.make_limit, -1.0)
        self.assert_refused(
            ValidationError,
            "Discretionary limit",
            self.policy.write,
            {"discretionary_limit": -10.0},
        )

    def test_coverage_outside_0_100(self):
        self.assert_refused(
            ValidationError,
            "Coverage % (named limits)",
            self.policy.write,
            {"coverage_pct": 101.0},
        )
        self.assert_refused(
            ValidationError, "Coverage %", self.make_limit, 100.0, coverage_pct=-5
        )

    def test_end_before_start(self):
        self.assert_refused(
            ValidationError, "end date", self.policy.write, {"date_end": "2019-12-31"}
        )
        self.assert_refused(
            ValidationError,
            "expiry date",
            self.make_limit,
            100.0,
            "2024-01-01",
            date_expiry="2023-12-31",
        )

    def test_limit_on_a_contact_is_refused(self):
        self.assert_refused(
            ValidationError, "Buyer", self.make_limit, 100.0, buyer=self.buyer_contact
        )

    @mute_logger("odoo.sql_db")
    def test_two_decisions_taking_effect_the_same_day(self):
        self.make_limit(100.0, "2024-01-01")
        self.assert_refused(
            ValidationError, "Effective date", self.make_limit, 200.0, "2024-01-01"
        )

    def test_refusal_with_an_amount(self):
        self.assert_refused(
            ValidationError,
            "granted amount",
            self.make_limit,
            100.0,
            decision="refused",
        )

    def test_policy_of_another_company(self):
        other = self.setup_other_company()["company"]
        foreign_policy = self.env["credit.insurance.policy"].create(
            {
                "name": "OTHER-1",
                "insurer_id": self.env["credit.insurance.insurer"]
                .create({"name": "Other insurer", "company_id": other.id})
                .id,
                "company_id": other.id,
                "policy_type": "selective",
            }
        )
        local_buyer = self.env["res.partner"].create(
            {"name": "Local SA", "is_company": True, "company_id": self.company.id}
        )
        with self.assertRaises(UserError) as caught:
            self.make_limit(100.0, buyer=local_buyer, policy_id=foreign_policy.id)
        self.assertIn("Incompatible companies", str(caught.exception))
        with self.assertRaises(UserError):
            self.env["credit.insurance.policy"].create(
                {
                    "name": "MIXED",
                    "insurer_id": self.insurer.id,
                    "company_id": other.id,
                }
            )

    def test_overlapping_global_policies(self):
        self.assert_refused(
            ValidationError,
            "global",
            self.env["credit.insurance.policy"].create,
            {
                "name": "POL-2",
                "insurer_id": self.insurer.id,
                "date_start": "2024-01-01",
            },
        )

    def test_api_url_must_be_http(self):
        self.assert_refused(
            ValidationError,
            "API base URL",
            self.insurer.write,
            {"api_base_url": "ftp://insurer"},
        )

    def test_nothing_half_written_when_one_of_a_batch_is_wrong(self):
        Limit = self.env["credit.insurance.limit"]
        with self.assertRaises(ValidationError):
            Limit.create(
                [
                    {
                        "partner_id": self.buyer.id,
                        "policy_id": self.policy.id,
                        "granted_amount": 100.0,
                        "date_effective": "2024-01-01",
                    },
                    {
                        "partner_id": self.buyer.id,
                        "policy_id": self.policy.id,
                        "granted_amount": -100.0,
                        "date_effective": "2024-02-01",
                    },
                ]
            )
        self.assertFalse(Limit.search([("partner_id", "=", self.buyer.id)]))
