import importlib.util
import pathlib
import tempfile

from odoo import Command, fields, http
from odoo.tests import HttpCase, new_test_user

from odoo.addons.account.tests.common import AccountTestInvoicingCommon

from ..sandbox.server import start_in_thread, start_sandbox


def run_migration(version, script, cr, installed_version="18.0.1.0.0"):
    """Run ``migrations/<version>/<script>.py`` of the addon on ``cr``, as an
    upgrade from ``installed_version`` would."""
    path = pathlib.Path(__file__).parents[1] / "migrations" / version / f"{script}.py"
    spec = importlib.util.spec_from_file_location(f"migration_{script}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.migrate(cr, installed_version)


def serve_sandbox(test, **options):
    """The sandbox insurer on a free local port with a fresh data folder,
    stopped after ``test``."""
    server = start_sandbox(tempfile.mkdtemp(prefix="sandbox-"), **options)
    test.addCleanup(server.stop)
    return server


def dialect_values(provider, url):
    """The connection of an insurer to the sandbox's dialect of ``provider``
    (``/allianz``, ``/atradius``, ``/coface`` under ``url``)."""
    return {
        "allianz_trade": {
            "provider": "allianz_trade",
            "environment": "sandbox",
            "login_api_url": f"{url}/allianz/uatm/v1/idp",
            "search_api_url": f"{url}/allianz/search/uatm-v2",
            "cover_api_url": f"{url}/allianz/uatm/riskinfo/v3",
            "api_key": "sandbox-key",
            "customer_number": "ACI",
        },
        "atradius": {
            "provider": "atradius",
            "api_base_url": f"{url}/atradius",
            "api_key": "sandbox-key",
            "client_id": "client-42",
            "client_secret": "secret-42",
            "customer_number": "10042",
        },
        "coface": {
            "provider": "coface",
            "api_base_url": f"{url}/coface",
            "api_key": "sandbox-key",
            "login": "durand",
            "password": "pa55-word",
            "customer_number": "POL-77",
        },
    }[provider]


def serve_app(test, app, **options):
    """Serve a WSGI app (with the sandbox's fault injection) on a free local
    port, stopped after ``test``."""
    server = start_in_thread(app, **options)
    test.addCleanup(server.stop)
    return server


class CreditInsuranceCommon(AccountTestInvoicingCommon):
    """A company insured under a global policy, a buyer, and builders for the
    documents that make an exposure (invoices, credit notes, payments, orders).

    Amounts are chosen so that results read easily: a 20 % VAT, a discretionary
    limit of 5,000 at 70 %, named limits at 90 %.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.company_data["company"]
        cls.currency = cls.company.currency_id
        cls.vat_20 = cls.env["account.tax"].create(
            {"name": "VAT 20 %", "amount": 20.0, "type_tax_use": "sale"}
        )
        cls.insurer = cls.env["credit.insurance.insurer"].create(
            {"name": "Test insurer", "company_id": cls.company.id}
        )
        cls.policy = cls.env["credit.insurance.policy"].create(
            {
                "name": "POL-1",
                "insurer_id": cls.insurer.id,
                "policy_type": "global",
                "company_id": cls.company.id,
                "currency_id": cls.currency.id,
                "date_start": "2020-01-01",
                "coverage_pct": 90.0,
                "discretionary_limit": 5000.0,
                "discretionary_coverage_pct": 70.0,
                "max_credit_days": 90,
                "declaration_days": 30,
                # Tests of cover figures post invoices above the limit; those
                # of the order and invoice checks switch to "block".
                "enforcement_mode": "warn",
            }
        )
        cls.buyer = cls.env["res.partner"].create(
            {"name": "Buyer SA", "is_company": True, "customer_rank": 1}
        )
        cls.buyer_contact = cls.env["res.partner"].create(
            {"name": "Jeanne Achat", "parent_id": cls.buyer.id, "type": "invoice"}
        )

    # ---------------------------------------------------------------- builders

    @classmethod
    def make_limit(cls, amount, date_effective="2020-01-01", buyer=None, **values):
        return cls.env["credit.insurance.limit"].create(
            {
                "partner_id": (buyer or cls.buyer).id,
                "policy_id": cls.policy.id,
                "requested_amount": amount,
                "granted_amount": amount,
                "date_effective": date_effective,
                **values,
            }
        )

    @classmethod
    def make_invoice(
        cls,
        amount,
        buyer=None,
        invoice_date=None,
        due_days=30,
        taxes=None,
        currency=None,
        move_type="out_invoice",
        post=True,
        company=None,
    ):
        """An invoice of ``amount`` before tax (20 % VAT unless ``taxes``)."""
        invoice_date = fields.Date.to_date(invoice_date or fields.Date.today())
        move = (
            cls.env["account.move"]
            .with_company(company or cls.company)
            .create(
                {
                    "move_type": move_type,
                    "partner_id": (buyer or cls.buyer).id,
                    "invoice_date": invoice_date,
                    "invoice_date_due": fields.Date.add(invoice_date, days=due_days),
                    "currency_id": (
                        currency or (company or cls.company).currency_id
                    ).id,
                    "invoice_line_ids": [
                        Command.create(
                            {
                                "name": "Goods",
                                "quantity": 1,
                                "price_unit": amount,
                                "tax_ids": [
                                    Command.set(
                                        (cls.vat_20 if taxes is None else taxes).ids
                                    )
                                ],
                            }
                        )
                    ],
                }
            )
        )
        if post:
            move.action_post()
        return move

    @classmethod
    def pay(cls, invoice, amount, date=None):
        return (
            cls.env["account.payment.register"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"amount": amount, "payment_date": date or fields.Date.today()})
            ._create_payments()
        )

    @classmethod
    def make_order(cls, amount, buyer=None, confirm=True, currency=None, quantity=1):
        """An order of ``quantity`` × ``amount`` before tax, with 20 % VAT."""
        order = cls.env["sale.order"].create(
            {
                "partner_id": (buyer or cls.buyer).id,
                "company_id": cls.company.id,
                **({"pricelist_id": cls._pricelist(currency).id} if currency else {}),
                "order_line": [
                    Command.create(
                        {
                            "product_id": cls.product_a.id,
                            "product_uom_qty": quantity,
                            "price_unit": amount,
                            "tax_id": [Command.set(cls.vat_20.ids)],
                        }
                    )
                ],
            }
        )
        if confirm:
            order.action_confirm()
        return order

    @classmethod
    def _pricelist(cls, currency):
        return cls.env["product.pricelist"].create(
            {"name": f"Prices in {currency.name}", "currency_id": currency.id}
        )

    @classmethod
    def make_user(cls, login, groups, company=None):
        company = company or cls.company
        return new_test_user(
            cls.env,
            login=login,
            groups=groups,
            company_id=company.id,
            company_ids=[Command.set(company.ids)],
        )

    def cover(self, buyer=None, date=None, company=None):
        buyer = (buyer or self.buyer).commercial_partner_id
        return (
            self.env["credit.insurance.cover"]
            .with_company(company or self.company)
            ._get_buyer_covers(buyer, date=date)[buyer.id]
        )


class BrowserCase(HttpCase):
    """Browser tours.

    The first page makes the web server list every addon's static folder,
    parsing all manifests, in several request threads at once; CPython 3.11
    before 3.11.8 can then fail with "AST constructor recursion depth
    mismatch" (gh-106905). Listing them once here, in one thread, avoids it.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        assert http.root.statics, "computed once, before the browser asks"

    def make_tour_policy(self, name, **values):
        """A selective policy of the admin's company (the one the tour sees),
        with its own insurer."""
        company = self.env.ref("base.user_admin").company_id
        insurer = self.env["credit.insurance.insurer"].create(
            {"name": "Tour insurer", "company_id": company.id}
        )
        return self.env["credit.insurance.policy"].create(
            {
                "name": name,
                "insurer_id": insurer.id,
                "policy_type": "selective",
                "company_id": company.id,
                "currency_id": company.currency_id.id,
                "date_start": "2020-01-01",
                "coverage_pct": 90.0,
                **values,
            }
        )
