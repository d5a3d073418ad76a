"""Insurance data stays with the seller's staff (readme/CONFIGURE.md, "Who sees
what"): tried as each user of the access matrix would, over the HTTP JSON-RPC
of the test server.

The fixture, VAT 20 % not covered by the policy DT-2026-0042:
- Buyer SA holds a named limit of 40,000 at 90 %; its contact Jeanne Achat has
  a portal user, as a buyer's accountant would;
- invoice of 12,500 + VAT (15,000) on 1 January 2026, due 31 January, declared
  to the insurer on 7 February and filed on 8 February: deliveries stopped;
- order of 6,000 + VAT confirmed on 15 January, not invoiced;
- so the exposure is 12,500 + 6,000 = 18,500 and the available cover
  40,000 - 18,500 = 21,500; a quotation of 25,000 + VAT, sent to the buyer,
  shows the stop of deliveries to the salesperson.
"""

import re

from freezegun import freeze_time
from lxml import etree

from odoo.tests import HttpCase, TransactionCase, new_test_user, tagged

from ..models.access_groups import CREDIT_USER
from .jsonrpc import ACCESS_ERROR, JsonRpcMixin
from .test_declaration import MANAGER, DeclarationCase

INTERNAL = "base.group_user,base.group_allow_export"
USER_GROUPS = {
    "salesperson": f"{INTERNAL},sales_team.group_sale_salesman",
    "accountant": f"{INTERNAL},account.group_account_invoice",
    # Credit insurance users open invoices with read-only accounting rights.
    "credit_user": f"{INTERNAL},account.group_account_readonly,"
    "credit_insurance.group_credit_insurance_user",
    "credit_manager": f"{INTERNAL},{MANAGER}",
}
STAFF = ("credit_user", "credit_manager", "other_manager")
SALES = (*STAFF, "salesperson")
INVOICE = (*STAFF, "accountant")
STOP = (*STAFF, "salesperson", "accountant")

# The matrix, field by field: who reads it (nobody else: not the portal).
PARTNER_READERS = {
    "credit_insurance_policy_id": STAFF,
    "credit_insurance_cover_type": STAFF,
    "credit_insurance_currency_id": SALES,
    "credit_insurance_limit": STAFF,
    "credit_insurance_exposure": STAFF,
    "credit_insurance_available": SALES,
    "credit_insurance_uninsured": STAFF,
    "credit_insurance_coverage_pct": STAFF,
    "credit_insurance_stop": STOP,
    "credit_insurance_stop_reason": STOP,
    "credit_insurance_limit_ids": STAFF,
    "credit_insurance_declaration_count": STAFF,
    "credit_insurance_cover_lost_count": STAFF,
    "credit_insurance_claim_count": STAFF,
}
INVOICE_READERS = {
    "credit_insurance_policy_id": STAFF,
    "credit_insurance_insurable_amount": STAFF,
    "credit_insurance_insured_amount": STAFF,
    "credit_insurance_disputed": INVOICE,
    "credit_insurance_term_exceeded": INVOICE,
    "credit_insurance_cover_state": INVOICE,
    "credit_insurance_declaration_deadline": INVOICE,
    "credit_insurance_extended_due_date": INVOICE,
    "credit_insurance_cover_lost": INVOICE,
    "credit_insurance_declaration_line_ids": STAFF,
    "credit_insurance_declaration_id": STAFF,
}
ORDER_READERS = {"credit_insurance_warning": SALES}

# What the seller's company sees of the buyer today.
BUYER_FIGURES = {
    "credit_insurance_cover_type": "named",
    "credit_insurance_limit": 40000.0,
    "credit_insurance_exposure": 18500.0,  # 12,500 invoiced + 6,000 ordered
    "credit_insurance_available": 21500.0,  # 40,000 - 18,500
    "credit_insurance_uninsured": 0.0,
    "credit_insurance_coverage_pct": 90.0,
    "credit_insurance_stop": True,
    "credit_insurance_declaration_count": 1,
    "credit_insurance_cover_lost_count": 0,
    "credit_insurance_claim_count": 0,
}
# Another company insures nothing on this buyer.
OTHER_COMPANY_FIGURES = {
    "credit_insurance_policy_id": False,
    "credit_insurance_cover_type": "none",
    "credit_insurance_limit": 0.0,
    "credit_insurance_exposure": 0.0,
    "credit_insurance_available": 0.0,
    "credit_insurance_stop": False,
    "credit_insurance_stop_reason": False,
    "credit_insurance_declaration_count": 0,
}
INVOICE_FIGURES = {
    "credit_insurance_insurable_amount": 12500.0,  # within the 40,000 limit
    "credit_insurance_insured_amount": 12500.0,  # VAT not covered
    "credit_insurance_disputed": False,
    "credit_insurance_term_exceeded": False,  # 30 days, 90 allowed
    "credit_insurance_cover_state": "full",
    "credit_insurance_declaration_deadline": "2026-03-02",  # 31 Jan + 30 days
    "credit_insurance_extended_due_date": False,
    "credit_insurance_cover_lost": False,
}
# What would tell the buyer about its cover: the policy, the insurer, the
# figures of the cover and the words around them.
SECRETS = re.compile(
    r"DT-2026-0042|Test insurer|40,000|18,500|21,500|3,500"
    r"|insur|assur|d[ée]clar|sinistre|stop of deliveries|arr[êe]t des livraisons",
    re.IGNORECASE,
)
EXPRESSION_ATTRIBUTES = re.compile(
    r"^(invisible|readonly|required|column_invisible|domain|context|decoration-\w+)$"
)


def insurance_names(text):
    return set(re.findall(r"\bcredit_insurance_\w+", text or ""))


class BuyerCase(DeclarationCase, HttpCase, JsonRpcMixin):
    """The buyer of the module docstring, its portal user and the staff."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.policy.name = "DT-2026-0042"
        cls.limit = cls.make_limit(40000.0)
        cls.users = {
            role: cls.make_user(f"conf_{role}", groups)
            for role, groups in USER_GROUPS.items()
        }
        other = cls.setup_other_company()["company"]
        cls.users["other_manager"] = cls.make_user(
            "conf_other_manager", USER_GROUPS["credit_manager"], company=other
        )
        cls.salesperson = cls.users["salesperson"]
        # Even with the export right, which portal users do not normally have.
        cls.portal = cls.make_portal_user(cls.buyer_contact, "conf_portal")

        cls.invoice = cls.overdue_invoice_of(12500.0)
        cls.order = cls.make_order(6000.0, confirm=False)
        cls.order.user_id = cls.salesperson
        with freeze_time("2026-01-15"):
            cls.order.action_confirm()
        with freeze_time("2026-02-07"):
            cls.Declaration._cron_declare_overdues()
        cls.declaration = cls.Declaration.search([("partner_id", "=", cls.buyer.id)])
        with freeze_time("2026-02-08"):
            cls.declaration.with_user(cls.manager).action_mark_filed()
        cls.quotation = cls.make_order(25000.0, confirm=False)
        cls.quotation.user_id = cls.salesperson
        cls.quotation.action_quotation_sent()

    @classmethod
    def default_env_context(cls):
        # Chatter, followers and tracking as in production: what reaches the
        # buyer is the point.
        return {"no_reset_password": True}

    @classmethod
    def make_portal_user(cls, contact, login):
        return new_test_user(
            cls.env,
            login=login,
            groups="base.group_portal,base.group_allow_export",
            partner_id=contact.id,
            company_id=cls.company.id,
        )

    @classmethod
    def overdue_invoice_of(cls, amount, buyer=None):
        """An invoice of 1 January 2026 at 30 days, the salesperson's."""
        with freeze_time("2026-01-01"):
            invoice = cls.make_invoice(amount, buyer=buyer, post=False)
            invoice.invoice_user_id = cls.salesperson
            invoice.action_post()
        return invoice

    def login(self, role):
        user = self.portal if role == "portal" else self.users[role]
        self.authenticate(user.login, user.login)
        return user


@tagged("post_install", "-at_install")
class TestAccessMatrix(BuyerCase):
    def assertReads(self, role, model, ids, readers):
        """``role`` sees in ``fields_get`` and reads exactly the fields of
        ``readers`` that name it; reading, searching, grouping and exporting
        any other is refused. Returns the values read."""
        allowed = [name for name, roles in readers.items() if role in roles]
        described, error = self.call_kw(model, "fields_get", attributes=["type"])
        self.assertFalse(error)
        self.assertEqual(
            sorted(name for name in described if name in readers),
            sorted(allowed),
            f"{role}: fields_get of {model}",
        )
        values = []
        if allowed:
            values, error = self.call_kw(model, "read", ids, allowed)
            self.assertFalse(error, f"{role} reads {model} {allowed}")
        Model = self.env[model]
        for name in readers:
            if name in allowed:
                continue
            msg = f"{role} on {model}.{name}"
            domain = [(name, "!=", False)]
            self.assertRefused(self.call_kw(model, "read", ids, [name]), msg=msg)
            self.assertRefused(self.call_kw(model, "search", domain), msg=msg)
            self.assertRefused(self.call_kw(model, "search_read", [], [name]), msg=msg)
            self.assertRefused(self.call_kw(model, "export_data", ids, [name]), msg=msg)
            field = Model._fields[name]
            if field.store and field.column_type:  # a column: grouped by
                for method in ("read_group", "web_read_group"):
                    self.assertRefused(
                        self.call_kw(model, method, [], [name], [name]), msg=msg
                    )
            else:  # not groupable by anyone: grouping what it filters
                self.assertRefused(
                    self.call_kw(model, "read_group", domain, ["__count"], []),
                    msg=msg,
                )
        return {row["id"]: row for row in values}

    def assertFigures(self, values, expected):
        for name, value in expected.items():
            self.assertEqual(values[name], value, name)

    def test_portal_user_of_the_buyer(self):
        self.login("portal")
        # Its contact, its company, its invoice, its orders: readable, but
        # none of our fields.
        for model, records, readers in [
            ("res.partner", self.buyer_contact | self.buyer, PARTNER_READERS),
            ("account.move", self.invoice, INVOICE_READERS),
            ("sale.order", self.order | self.quotation, ORDER_READERS),
        ]:
            rows, error = self.call_kw(model, "read", records.ids, ["name"])
            self.assertEqual(len(rows), len(records), f"{model}: {error}")
            self.assertReads("portal", model, records.ids, readers)
        # The external door, as the reproduction used it.
        result, error = self.execute_kw(
            self.portal.login,
            self.portal.login,
            "res.partner",
            "read",
            self.buyer.ids,
            ["credit_insurance_limit", "credit_insurance_available"],
        )
        self.assertIsNone(result)
        self.assertEqual(error["name"], ACCESS_ERROR)
        described, __ = self.execute_kw(
            self.portal.login, self.portal.login, "account.move", "fields_get"
        )
        self.assertIn("amount_total", described)
        self.assertFalse(insurance_names(" ".join(described)))

    def test_public_user_has_no_rpc_and_no_field(self):
        self.authenticate(None, None)
        result, error = self.call_kw(
            "res.partner", "read", self.buyer.ids, ["credit_insurance_limit"]
        )
        self.assertIsNone(result)
        self.assertEqual(error["name"], "odoo.http.SessionExpiredException")
        public = self.env.ref("base.public_user")
        for model in ("res.partner", "account.move", "sale.order", "res.country"):
            self.assertFalse(
                insurance_names(
                    " ".join(self.env[model].with_user(public).fields_get())
                )
            )

    def test_salesperson_sees_the_available_cover_and_the_stop(self):
        self.login("salesperson")
        partners = self.assertReads(
            "salesperson", "res.partner", self.buyer.ids, PARTNER_READERS
        )
        buyer = partners[self.buyer.id]
        self.assertEqual(buyer["credit_insurance_available"], 21500.0)
        self.assertTrue(buyer["credit_insurance_stop"])
        self.assertIn(
            "Overdue declared to Test insurer", buyer["credit_insurance_stop_reason"]
        )
        orders = self.assertReads(
            "salesperson", "sale.order", self.quotation.ids, ORDER_READERS
        )
        self.assertIn(
            "Stop of deliveries on Buyer SA",
            orders[self.quotation.id]["credit_insurance_warning"],
        )
        self.assertReads(
            "salesperson", "account.move", self.invoice.ids, INVOICE_READERS
        )
        # The policy: which one and whose (limit requests name it), never its
        # terms, premium or claims.
        [policy], error = self.call_kw(
            "credit.insurance.policy",
            "read",
            self.policy.ids,
            ["name", "insurer_id", "policy_type", "currency_id"],
        )
        self.assertEqual(
            (policy["name"], policy["insurer_id"][1]), ("DT-2026-0042", "Test insurer")
        )
        for name in (
            "coverage_pct",
            "premium_rate",
            "minimum_premium",
            "discretionary_limit",
            "annual_max_liability",
            "claim_ids",
        ):
            self.assertRefused(
                self.call_kw(
                    "credit.insurance.policy", "read", self.policy.ids, [name]
                ),
                msg=f"salesperson reads the policy's {name}",
            )
        # Buyers stopped, from the search filter of the partner list.
        found, error = self.call_kw(
            "res.partner", "search", [("credit_insurance_stop", "=", True)]
        )
        self.assertFalse(error)
        self.assertIn(self.buyer.id, found)
        self.assertRefused(
            self.call_kw(
                "res.partner", "write", self.buyer.ids, {"credit_insurance_stop": False}
            )
        )
        self.assertRefused(
            self.call_kw(
                "account.move",
                "write",
                self.invoice.ids,
                {"credit_insurance_disputed": True},
            )
        )

    def test_accountant_sees_what_invoices_need(self):
        self.login("accountant")
        invoices = self.assertReads(
            "accountant", "account.move", self.invoice.ids, INVOICE_READERS
        )
        self.assertFigures(
            invoices[self.invoice.id],
            {
                name: value
                for name, value in INVOICE_FIGURES.items()
                if "accountant" in INVOICE_READERS[name]
            },
        )
        partners = self.assertReads(
            "accountant", "res.partner", self.buyer.ids, PARTNER_READERS
        )
        self.assertTrue(partners[self.buyer.id]["credit_insurance_stop"])
        self.assertReads("accountant", "sale.order", self.quotation.ids, ORDER_READERS)
        # Invoices to chase: the search and grouping of the invoice list.
        groups, error = self.call_kw(
            "account.move",
            "read_group",
            [("id", "=", self.invoice.id)],
            ["amount_total:sum"],
            ["credit_insurance_cover_state"],
        )
        self.assertFalse(error)
        self.assertEqual(
            [(g["credit_insurance_cover_state"], g["amount_total"]) for g in groups],
            [("full", 15000.0)],
        )
        # The dispute flag is theirs to set; the declaration is told, although
        # they do not read declarations.
        __, error = self.call_kw(
            "account.move",
            "write",
            self.invoice.ids,
            {"credit_insurance_disputed": True},
        )
        self.assertFalse(error)
        self.assertTrue(self.invoice.credit_insurance_disputed)
        self.assertIn(
            f"Invoice {self.invoice.name} is disputed",
            " ".join(self.declaration.message_ids.mapped("body")),
        )

    def test_credit_staff_read_everything(self):
        for role in ("credit_user", "credit_manager"):
            self.login(role)
            partners = self.assertReads(
                role,
                "res.partner",
                (self.buyer | self.buyer_contact).ids,
                PARTNER_READERS,
            )
            for partner in (self.buyer, self.buyer_contact):
                values = partners[partner.id]
                # The contact's figures are its company's, but the stop is
                # set on the company (and applies to its contacts).
                self.assertFigures(
                    values,
                    BUYER_FIGURES | {"credit_insurance_stop": partner == self.buyer},
                )
                self.assertEqual(
                    values["credit_insurance_policy_id"][0], self.policy.id
                )
                if partner == self.buyer:
                    self.assertEqual(
                        values["credit_insurance_limit_ids"], self.limit.ids
                    )
            invoices = self.assertReads(
                role, "account.move", self.invoice.ids, INVOICE_READERS
            )
            values = invoices[self.invoice.id]
            self.assertFigures(values, INVOICE_FIGURES)
            self.assertEqual(
                values["credit_insurance_declaration_id"][0], self.declaration.id
            )
            self.assertReads(role, "sale.order", self.quotation.ids, ORDER_READERS)
            found, error = self.call_kw(
                "res.partner", "search", [("credit_insurance_limit", "=", 40000.0)]
            )
            self.assertFalse(error)
            self.assertIn(self.buyer.id, found)
            exported, error = self.call_kw(
                "account.move",
                "export_data",
                self.invoice.ids,
                ["credit_insurance_insured_amount", "credit_insurance_cover_state"],
            )
            self.assertFalse(error)
            self.assertEqual(exported["datas"], [[12500.0, "Insured"]])

        # Only the manager lifts the stop.
        self.login("credit_user")
        self.assertRefused(
            self.call_kw(
                "res.partner", "write", self.buyer.ids, {"credit_insurance_stop": False}
            )
        )
        self.login("credit_manager")
        __, error = self.call_kw(
            "res.partner", "write", self.buyer.ids, {"credit_insurance_stop": False}
        )
        self.assertFalse(error)
        self.assertFalse(self.buyer.credit_insurance_stop)

    def test_manager_of_another_company_sees_none_of_ours(self):
        self.login("other_manager")
        partners = self.assertReads(
            "other_manager", "res.partner", self.buyer.ids, PARTNER_READERS
        )
        self.assertFigures(partners[self.buyer.id], OTHER_COMPANY_FIGURES)
        for model, records in [
            ("account.move", self.invoice),
            ("sale.order", self.order),
            ("credit.insurance.policy", self.policy),
            ("credit.insurance.limit", self.limit),
            ("credit.insurance.declaration", self.declaration),
        ]:
            self.assertRefused(
                self.call_kw(model, "read", records.ids, ["id"]), msg=model
            )


@tagged("post_install", "-at_install")
class TestWhatTheBuyerIsShown(BuyerCase):
    def assertNoSecret(self, text, where):
        found = SECRETS.search(text)
        self.assertIsNone(
            found,
            f"{where} shows {found and text[found.start() - 80 : found.end() + 80]!r}",
        )

    def flush_tracking(self):
        """Post the tracking messages, as the end of a transaction does."""
        self.env.flush_all()
        self.env.cr.precommit.run()

    def chatter(self, record):
        return (
            self.env["mail.message"]
            .sudo()
            .search([("model", "=", record._name), ("res_id", "=", record.id)])
        )

    def get(self, url):
        response = self.url_open(url)
        self.assertEqual(response.status_code, 200, url)
        return response.text

    def test_portal_pages_and_pdf(self):
        self.login("portal")
        invoice, order, quotation = self.invoice, self.order, self.quotation
        pages = {
            "/my/invoices": invoice.name,
            f"/my/invoices/{invoice.id}": invoice.name,
            f"/my/invoices/{invoice.id}?report_type=html": "15,000.00",
            # Tests render the PDF's QWeb document as HTML (no wkhtmltopdf).
            f"/my/invoices/{invoice.id}?report_type=pdf&download=true": "15,000.00",
            "/my/orders": order.name,
            f"/my/orders/{order.id}": "7,200.00",
            f"/my/orders/{order.id}?report_type=pdf&download=true": "7,200.00",
            "/my/quotes": quotation.name,
            f"/my/orders/{quotation.id}": "30,000.00",
        }
        for url, shown in pages.items():
            text = self.get(url)
            self.assertIn(shown, text, url)
            self.assertNoSecret(text, url)
        # Whoever holds the links of the e-mails, logged in or not.
        self.authenticate(None, None)
        for record in (invoice, quotation):
            url = record.get_portal_url()
            text = self.get(url)
            self.assertIn(record.name, text, url)
            self.assertNoSecret(text, url)

    def test_customer_emails(self):
        for template, record in [
            ("account.email_template_edi_invoice", self.invoice),
            ("sale.email_template_edi_sale", self.quotation),
            ("sale.mail_template_sale_confirmation", self.order),
        ]:
            body = self.env.ref(template)._render_field("body_html", record.ids)
            self.assertIn(record.name, body[record.id], template)
            self.assertNoSecret(body[record.id], template)

    def second_buyer(self):
        """Another insured buyer (limit 10,000), with its own portal user."""
        buyer = self.make_buyer("Tissages du Nord SAS", "552100554")
        contact = self.env["res.partner"].create(
            {"name": "Paul Compta", "parent_id": buyer.id, "type": "invoice"}
        )
        self.make_limit(10000.0, buyer=buyer)
        return buyer, self.make_portal_user(contact, "conf_portal_nord")

    def ours(self, record):
        """What the addons wrote on ``record``: about its buyer's limit."""
        return self.chatter(record).filtered(
            lambda m: "insured limit" in (m.body or "") or "Limit" in (m.body or "")
        )

    def assertInternal(self, messages, *fragments):
        """``messages`` say each of ``fragments``; all are internal notes, and
        nobody got them by e-mail or in their inbox."""
        bodies = " ".join(messages.mapped("body"))
        for fragment in fragments:
            self.assertIn(fragment, bodies)
        for message in messages:
            self.assertTrue(
                message.is_internal or message.subtype_id.internal,
                f"not internal: {message.body} {message.subtype_id.name}",
            )
        self.assertFalse(
            self.env["mail.notification"].search(
                [("mail_message_id", "in", messages.ids)]
            ),
            "nobody notified",
        )

    def assertPortalSeesNone(self, portal, messages, *records):
        """The buyer's portal user, over RPC and in the portal's chatter,
        reads none of ``messages`` and nothing of its cover on ``records``."""
        self.authenticate(portal.login, portal.login)
        for record in records:
            where = f"chatter of {record.display_name}"
            read, error = self.call_kw(
                "mail.message",
                "search_read",
                [("model", "=", record._name), ("res_id", "=", record.id)],
                ["body"],
            )
            self.assertFalse(error, where)
            self.assertFalse({m["id"] for m in read} & set(messages.ids), where)
            for message in read:
                self.assertNoSecret(message["body"], where)
            if record._name == "res.partner":
                continue
            chatter, error = self.jsonrpc(
                "/mail/chatter_fetch",
                {
                    "thread_model": record._name,
                    "thread_id": record.id,
                    "token": record._portal_ensure_token(),
                },
            )
            self.assertFalse(error, where)
            fetched = {
                m if isinstance(m, int) else m["id"] for m in chatter["messages"]
            }
            self.assertFalse(fetched & set(messages.ids), where)

    def test_invoice_chatter_after_a_declaration(self):
        """An invoice declared late (its cover is lost), filed all the same,
        then disputed: all of it in internal notes."""
        buyer, portal = self.second_buyer()
        invoice = self.overdue_invoice_of(2000.0, buyer=buyer)
        self.flush_tracking()
        posted = self.chatter(invoice)
        self.run_cron("2026-02-07")  # 7 days overdue: declaration prepared
        self.run_cron("2026-03-03")  # deadline 2 March passed: cover lost
        self.flush_tracking()
        declaration = self.declarations(buyer)
        with freeze_time("2026-03-04"):
            declaration.with_user(self.manager).action_mark_filed()
        with freeze_time("2026-03-05"):
            invoice.with_user(self.users["accountant"]).credit_insurance_disputed = True
        self.flush_tracking()
        self.assertEqual(invoice.credit_insurance_cover_state, "lost")
        self.assertTrue(buyer.credit_insurance_stop)

        ours = self.chatter(invoice) - posted
        # The note of the lost cover and the tracking of the two flags.
        self.assertInternal(ours, "Cover lost")
        tracked = ours.sudo().tracking_value_ids.field_id.mapped("name")
        self.assertIn("credit_insurance_disputed", tracked)
        self.assertIn("credit_insurance_cover_lost", tracked)
        self.assertPortalSeesNone(portal, ours, invoice, buyer)

    def test_order_chatter_above_the_limit(self):
        """An order let through above the limit by a warning policy, then
        under a blocking one an increase asked by the salesperson and the
        order confirmed anyway by a credit manager: internal notes only."""
        buyer, portal = self.second_buyer()
        warned = self.make_order(12000.0, buyer=buyer, confirm=False)
        warned.user_id = self.salesperson
        warned.with_user(self.salesperson).action_confirm()
        self.flush_tracking()
        # 12,000 confirmed on a limit of 10,000: 2,000 over, let through.
        ours = self.ours(warned)
        self.assertInternal(ours, "Accepted above the insured limit", "2,000.00")

        self.policy.enforcement_mode = "block"
        refused = self.make_order(1000.0, buyer=buyer, confirm=False)
        refused.user_id = self.salesperson
        Dialog = self.env["credit.insurance.limit.exceeded"]
        Dialog.with_user(self.salesperson).create(
            {"order_id": refused.id}
        ).action_request_limit_increase()
        sales_manager = self.make_user(
            "conf_sales_credit_manager",
            "base.group_user,sales_team.group_sale_salesman_all_leads,"
            "credit_insurance.group_credit_insurance_manager",
        )
        Dialog.with_user(sales_manager).create(
            {"order_id": refused.id, "reason": "Paid in advance"}
        ).action_confirm_anyway()
        self.flush_tracking()
        self.assertEqual(refused.state, "sale")
        self.assertInternal(
            self.ours(refused), "Limit increase requested", "Paid in advance"
        )
        self.assertPortalSeesNone(
            portal, ours | self.ours(refused), refused, warned, buyer
        )


@tagged("post_install", "-at_install")
class TestViewsForEachUser(BuyerCase):
    VIEWS = {
        "res.partner": [[False, "form"], [False, "list"], [False, "search"]],
        "account.move": [
            ["account.view_move_form", "form"],
            ["account.view_out_invoice_tree", "list"],
            ["account.view_account_invoice_filter", "search"],
        ],
        "sale.order": [[False, "form"], [False, "list"], [False, "search"]],
    }

    def test_views_load_with_what_each_user_reads(self):
        """The forms, lists and searches load for each user and use only the
        insurance fields that user reads, in fields and in expressions."""
        for role in ("salesperson", "accountant", "credit_user", "portal"):
            self.login(role)
            for model, views in self.VIEWS.items():
                views = [
                    [self.env.ref(view).id if view else False, kind]
                    for view, kind in views
                ]
                loaded, error = self.call_kw(model, "get_views", views)
                self.assertFalse(error, f"{role} {model}")
                described, __ = self.call_kw(model, "fields_get", attributes=["type"])
                readable = insurance_names(" ".join(described))
                for fields in loaded["models"].values():
                    self.assertLessEqual(
                        insurance_names(" ".join(fields["fields"])), readable
                    )
                for kind, view in loaded["views"].items():
                    used = set()
                    for node in etree.fromstring(view["arch"]).iter():
                        if node.tag == "field":
                            used |= insurance_names(node.get("name"))
                        for attribute, value in node.attrib.items():
                            if EXPRESSION_ATTRIBUTES.match(attribute):
                                used |= insurance_names(value)
                    self.assertLessEqual(used, readable, f"{role} {model} {kind}")

    def test_salesperson_form_of_the_buyer(self):
        self.login("salesperson")
        loaded, __ = self.call_kw("res.partner", "get_views", [[False, "form"]])
        arch = loaded["views"]["form"]["arch"]
        for shown in (
            'name="credit_insurance_available"',
            'name="credit_insurance_stop"',
            'name="action_request_credit_insurance_limit"',
        ):
            self.assertIn(shown, arch)
        for hidden in (
            'name="credit_insurance_limit"',
            'name="credit_insurance_policy_id"',
            'name="credit_insurance_limit_ids"',
        ):
            self.assertNotIn(hidden, arch)

    def test_our_views_are_consistent_for_every_group(self):
        """No view of the addons shows an element to users who cannot read
        the fields it uses (Odoo says so with an "Access Rights
        Inconsistency" warning)."""
        data = self.env["ir.model.data"].search(
            [("module", "=like", "credit_insurance%"), ("model", "=", "ir.ui.view")]
        )
        views = self.env["ir.ui.view"].browse(data.mapped("res_id"))
        self.assertTrue(views)
        with self.assertNoLogs("odoo.addons.base.models.ir_ui_view", "WARNING"):
            views._check_xml()


@tagged("post_install", "-at_install")
@tagged("post_install", "-at_install")
class TestPolicyTermsAreForTheCreditStaff(TransactionCase):
    def test_every_policy_field_but_its_identity_names_the_credit_staff(self):
        """Salespeople may read policies (limit requests name them): every
        field beyond the policy's identity, including those added later,
        is the credit staff's."""
        identity = {
            "id",
            "display_name",
            "name",
            "active",
            "insurer_id",
            "policy_type",
            "company_id",
            "currency_id",
            "date_start",
            "date_end",
            "create_uid",
            "create_date",
            "write_uid",
            "write_date",
        }
        Policy = self.env["credit.insurance.policy"]
        inherited = set(self.env["mail.thread"]._fields) | set(
            self.env["mail.activity.mixin"]._fields
        )
        open_fields = [
            name
            for name, field in Policy._fields.items()
            if name not in identity | inherited
            and CREDIT_USER not in (field.groups or "").split(",")
        ]
        self.assertFalse(open_fields)


class TestEveryFieldNamesItsReaders(BuyerCase):
    def test_no_field_of_ours_reaches_portal_or_public(self):
        """Every field the credit insurance addons add to a model the portal
        or the public can read (partners, invoices and their lines, orders
        and their lines, countries, deliveries once bridged, ...) is
        restricted to groups neither has."""
        outsiders = (self.portal, self.env.ref("base.public_user").sudo())
        checked = []
        for model_name in self.env.registry:
            Model = self.env[model_name]
            if Model._abstract or model_name.startswith("credit.insurance"):
                continue
            if not any(Model.with_user(user).has_access("read") for user in outsiders):
                continue
            for name, field in Model._fields.items():
                if not any(m.startswith("credit_insurance") for m in field._modules):
                    continue
                checked.append(f"{model_name}.{name}")
                self.assertTrue(field.groups, f"{model_name}.{name} has no groups")
                for user in outsiders:
                    self.assertFalse(
                        field.is_accessible(self.env(user=user)),
                        f"{model_name}.{name} readable by {user.login}",
                    )
        # Not vacuous: the fields of the matrix were found.
        for name in PARTNER_READERS:
            self.assertIn(f"res.partner.{name}", checked)
        for name in INVOICE_READERS:
            self.assertIn(f"account.move.{name}", checked)
        self.assertIn("sale.order.credit_insurance_warning", checked)
