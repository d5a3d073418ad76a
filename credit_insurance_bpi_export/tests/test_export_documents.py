from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from odoo.addons.credit_insurance.tests.common import serve_app

from ..exchange import documents
from ..sandbox.hostile import FixedAnswer, billion_laughs_answer, xxe_answer
from ..sandbox.soap_server import SandboxSoapIntermediary
from .common import ExportCommon

NS = {"b": documents.NAMESPACE}


@tagged("post_install", "-at_install")
class TestExportDocuments(ExportCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.company_registry = "55210055400013"
        cls.eur = cls.setup_other_currency("EUR", rates=[("2016-01-01", 2.0)])
        cls.make_export_limit(cls.us_buyer, 50000.0)
        cls.overdue = cls.make_invoice(
            1000.0, buyer=cls.us_buyer, invoice_date="2026-01-10", due_days=60
        )
        cls.overdue_eur = cls.make_invoice(
            3000.0,
            buyer=cls.us_buyer,
            invoice_date="2026-02-01",
            due_days=60,
            currency=cls.eur,
            taxes=cls.env["account.tax"],
        )

    def declaration(self, invoices=None, buyer=None):
        return self.env["credit.insurance.export.document"].create(
            {
                "document_type": "overdue_declaration",
                "policy_id": self.export_policy.id,
                "partner_id": (buyer or self.us_buyer).id,
                "invoice_ids": [
                    (6, 0, (invoices or self.overdue | self.overdue_eur).ids)
                ],
            }
        )

    def turnover(self, date_from="2026-01-01", date_to="2026-03-31"):
        declaration = self.env["credit.insurance.turnover.declaration"].create(
            {
                "policy_id": self.export_policy.id,
                "date_from": date_from,
                "date_to": date_to,
            }
        )
        return self.env["credit.insurance.export.document"].create(
            {
                "document_type": "turnover_declaration",
                "policy_id": self.export_policy.id,
                "turnover_declaration_id": declaration.id,
            }
        )

    def xml(self, document):
        return documents.validate(document._xml_bytes())

    # ------------------------------------------------------- declarations

    def test_overdue_declaration_is_valid_and_complete(self):
        declaration = self.declaration()
        self.assertTrue(declaration.name.startswith("EXP/"))
        # Deadline: the earliest due date (2026-03-11) + 30 days.
        self.assertEqual(declaration.deadline, fields.Date.to_date("2026-04-10"))
        declaration.action_generate()
        self.assertEqual(declaration.state, "ready")
        self.assertEqual(declaration.cause, "commercial")
        root = self.xml(declaration)
        self.assertEqual(
            root.findtext("b:Entete/b:Assure/b:Siren", namespaces=NS), "552100554"
        )
        self.assertEqual(root.findtext("b:Acheteur/b:Pays", namespaces=NS), "US")
        self.assertEqual(root.findtext("b:CauseSinistre", namespaces=NS), "commercial")
        invoices = root.findall("b:Creances/b:Creance", namespaces=NS)
        self.assertEqual(
            [i.findtext("b:Devise", namespaces=NS) for i in invoices], ["USD", "EUR"]
        )
        # 1,200 with VAT in USD; 3,000 EUR = 1,500 USD in the seller's currency.
        self.assertEqual(
            [
                i.findtext("b:MontantImpayeDeviseAssure", namespaces=NS)
                for i in invoices
            ],
            ["1200.00", "1500.00"],
        )
        self.assertEqual(root.findtext("b:TotalImpaye", namespaces=NS), "2700.00")
        self.assertEqual(declaration.total_amount, 2700.0)

    def test_overdue_declaration_under_a_political_event_is_political(self):
        event = self.political_event(self.us, event_type="war_catastrophe")
        declaration = self.declaration()
        declaration.action_generate()
        self.assertEqual(declaration.political_event_id, event)
        self.assertEqual(declaration.cause, "political")
        root = self.xml(declaration)
        self.assertEqual(root.findtext("b:CauseSinistre", namespaces=NS), "politique")
        self.assertEqual(
            root.findtext("b:EvenementPolitique/b:Type", namespaces=NS),
            "guerre_catastrophe",
        )

    def test_declaration_refuses_invoices_of_another_buyer_or_paid(self):
        other = self.make_invoice(500.0, buyer=self.us_buyer_2)
        declaration = self.declaration(invoices=self.overdue | other)
        with self.assertRaisesRegex(UserError, other.name):
            declaration.action_generate()
        self.pay(self.overdue, self.overdue.amount_total)
        declaration = self.declaration(invoices=self.overdue)
        with self.assertRaisesRegex(UserError, "not unpaid posted invoices"):
            declaration.action_generate()
        self.assertEqual(declaration.state, "draft")
        self.assertFalse(declaration.xml_file)

    def test_turnover_declaration_by_country(self):
        self.make_invoice(
            2000.0,
            buyer=self.ma_buyer,
            invoice_date="2026-02-15",
            taxes=self.env["account.tax"],
        )
        self.make_invoice(900.0, buyer=self.us_buyer_2, invoice_date="2026-03-01")
        self.make_invoice(
            700.0, buyer=self.us_buyer, invoice_date="2026-04-02"
        )  # after
        self.make_invoice(800.0, invoice_date="2026-02-02")  # domestic buyer
        document = self.turnover()
        # The core declaration's due date: 15 days after the period.
        self.assertEqual(document.deadline, fields.Date.to_date("2026-04-15"))
        document.action_generate()
        root = self.xml(document)
        lines = {
            line.findtext("b:Pays", namespaces=NS): (
                line.findtext("b:NombreFactures", namespaces=NS),
                line.findtext("b:ChiffreAffaires", namespaces=NS),
                line.findtext("b:CategorieRisquePays", namespaces=NS),
            )
            for line in root.findall("b:LignesPays/b:LignePays", namespaces=NS)
        }
        # Untaxed (the policy does not cover VAT), in the company currency:
        # US 1,000 + 1,500 (3,000 EUR) + 900; Morocco 2,000.
        self.assertEqual(
            lines, {"US": ("3", "3400.00", "0"), "MA": ("1", "2000.00", "3")}
        )
        self.assertEqual(root.findtext("b:Total", namespaces=NS), "5400.00")
        self.assertEqual(document.total_amount, 5400.0)

    def test_turnover_net_of_credit_notes_may_be_negative(self):
        """An invoice declared in the last quarter of 2025, credited in
        January: the credit note comes off the first quarter of 2026."""
        invoice = self.make_invoice(
            2000.0,
            buyer=self.ma_buyer,
            invoice_date="2025-12-15",
            taxes=self.env["account.tax"],
        )
        last_quarter = self.env["credit.insurance.turnover.declaration"].create(
            {
                "policy_id": self.export_policy.id,
                "date_from": "2025-10-01",
                "date_to": "2025-12-31",
            }
        )
        last_quarter.action_declare()
        self.assertEqual(last_quarter.turnover_amount, 2000.0)
        reversal = invoice._reverse_moves(
            [{"invoice_date": fields.Date.to_date("2026-01-05")}]
        )
        reversal.action_post()
        document = self.turnover()
        document.action_generate()
        root = self.xml(document)
        line = root.xpath("//b:LignePays[b:Pays='MA']", namespaces=NS)[0]
        self.assertEqual(line.findtext("b:NombreAvoirs", namespaces=NS), "1")
        self.assertEqual(line.findtext("b:ChiffreAffaires", namespaces=NS), "-2000.00")

    def test_every_produced_document_matches_the_schema(self):
        self.political_event(self.us, event_type="moratorium")
        produced = (
            self.declaration()
            | self.turnover()
            | self.turnover("2027-01-01", "2027-01-31")
        )
        produced.action_generate()
        for document in produced:
            self.assertEqual(document.state, "ready")
            self.assertEqual(self.xml(document).get("version"), "1.0")

    def test_extranet_filing_is_tracked(self):
        declaration = self.declaration()
        with self.assertRaisesRegex(UserError, "Produce the file"):
            declaration.action_mark_filed()
        declaration.action_generate()
        declaration.action_mark_filed()
        self.assertEqual(declaration.state, "filed")
        self.assertEqual(declaration.filed_via, "extranet")
        self.assertEqual(declaration.date_filed, fields.Date.today())
        with self.assertRaisesRegex(UserError, "already filed"):
            declaration.action_generate()
        turnover = self.turnover()
        turnover.action_generate()
        self.assertEqual(turnover.turnover_declaration_id.state, "draft")
        turnover.action_mark_filed()
        self.assertEqual(turnover.turnover_declaration_id.state, "declared")

    def test_only_credit_managers_produce_documents(self):
        declaration = self.declaration()
        user = self.make_user(
            "ci_user_bpi", "credit_insurance.group_credit_insurance_user"
        )
        with self.assertRaises(AccessError):
            declaration.with_user(user).action_generate()
        self.assertEqual(declaration.state, "draft")

    # ----------------------------------------------------------- SOAP

    def test_soap_round_trip_with_the_sandbox(self):
        sandbox = SandboxSoapIntermediary()
        server = serve_app(self, sandbox)
        self.export_policy.export_soap_url = f"{server.url}/soap"
        declaration, turnover = self.declaration(), self.turnover()
        (declaration | turnover).action_generate()
        (declaration | turnover).action_send_soap()
        self.assertEqual(declaration.state, "filed")
        self.assertEqual(declaration.filed_via, "soap")
        self.assertEqual(declaration.deposit_number, "DEP-000001")
        self.assertEqual(turnover.deposit_number, "DEP-000002")
        # Filing the turnover declares the core turnover declaration.
        self.assertEqual(turnover.turnover_declaration_id.state, "declared")
        self.assertEqual(
            turnover.turnover_declaration_id.insurer_reference, "DEP-000002"
        )
        self.assertEqual(
            [(d["type"], d["reference"]) for d in sandbox.deposits],
            [
                ("menace_sinistre", declaration.name),
                ("chiffre_affaires", turnover.name),
            ],
        )

    def assert_nothing_written(self, document, error):
        self.assertEqual(document.state, "ready")
        self.assertFalse(document.deposit_number)
        self.assertFalse(document.filed_via)
        self.assertRegex(document.exchange_error, error)
        self.assertIn("Deposit failed", document.message_ids[0].body)

    def send_to(self, app, **options):
        server = serve_app(self, app, **options)
        self.export_policy.export_soap_url = f"{server.url}/soap"
        declaration = self.declaration()
        declaration.action_generate()
        declaration.action_send_soap()
        return declaration

    def test_soap_fault_is_a_clear_error_on_the_document(self):
        sandbox = SandboxSoapIntermediary()
        sandbox.deposits.append(
            {"number": "DEP-0", "type": "x", "reference": "EXP/2026/0001"}
        )
        server = serve_app(self, sandbox)
        self.export_policy.export_soap_url = f"{server.url}/soap"
        declaration = self.declaration()
        declaration.name = "EXP/2026/0001"
        declaration.action_generate()
        declaration.action_send_soap()
        self.assert_nothing_written(
            declaration, "refused the document: .*déjà été déposé"
        )

    def test_xxe_answer_is_refused_and_nothing_fetched(self):
        canary = FixedAnswer("")
        canary_server = serve_app(self, canary)
        declaration = self.send_to(
            FixedAnswer(xxe_answer(f"{canary_server.url}/canary"))
        )
        self.assert_nothing_written(declaration, "DTD or entities")
        self.assertEqual(canary.fetched, [])

    def test_billion_laughs_answer_is_refused(self):
        declaration = self.send_to(FixedAnswer(billion_laughs_answer()))
        self.assert_nothing_written(declaration, "DTD or entities")

    def test_malformed_and_http_errors_are_clear(self):
        declaration = self.send_to(
            FixedAnswer("<html>Maintenance</html>", mimetype="text/html")
        )
        self.assert_nothing_written(
            declaration, "not the expected XML|no deposit number"
        )
        sandbox = SandboxSoapIntermediary()
        server = serve_app(self, sandbox)
        server.faults.add("error", arg="503")
        self.export_policy.export_soap_url = f"{server.url}/soap"
        declaration = self.declaration()
        declaration.action_generate()
        declaration.action_send_soap()
        self.assert_nothing_written(declaration, "HTTP status 503")
        self.assertEqual(sandbox.deposits, [])

    def test_without_intermediary_the_extranet_is_named(self):
        declaration = self.declaration()
        declaration.action_generate()
        with self.assertRaisesRegex(UserError, "Bpifrance extranet"):
            declaration.action_send_soap()

    # -------------------------------------------------------- summaries

    def test_pdf_summary_shows_what_the_file_says(self):
        self.political_event(self.us, event_type="non_transfer")
        declaration, turnover = self.declaration(), self.turnover()
        report = "credit_insurance_bpi_export.action_report_export_document_summary"
        with self.assertRaisesRegex(UserError, "Produce the file"):
            self.env["ir.actions.report"]._render_qweb_html(report, declaration.ids)
        (declaration | turnover).action_generate()
        html = (
            self.env["ir.actions.report"]
            ._render_qweb_html(report, (declaration | turnover).ids)[0]
            .decode()
        )
        self.assertIn(declaration.name, html)
        self.assertIn("Boston Fabrics Inc.", html)
        self.assertIn("Non-transfer", html)
        self.assertIn("2700.00", html)  # total unpaid, company currency
        self.assertIn(turnover.name, html)
        self.assertIn("United States", html)

    def test_pdf_summary_reads_in_french(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._load_module_terms(
            ["credit_insurance_bpi_export"], ["fr_FR"], overwrite=True
        )
        self.company.partner_id.lang = "fr_FR"
        declaration = self.declaration()
        declaration.action_generate()
        html = (
            self.env["ir.actions.report"]
            ._render_qweb_html(
                "credit_insurance_bpi_export.action_report_export_document_summary",
                declaration.ids,
            )[0]
            .decode()
        )
        self.assertIn("Déclaration de menace de sinistre", html)
        self.assertIn("Numéro de police", html)
        self.assertIn("Impayé", html)
