"""Overdues and claims of buyers abroad under a political event: declared with
the political cause through the core declaration, filed as export files, and
indemnified at the political coverage after the political waiting period.

Dates are frozen: invoices of 1 January 2026 at 30 days fall due on
31 January; the export policy declares 7 days later (job of 10 February).
"""

import base64
import io
from datetime import date

import openpyxl
from freezegun import freeze_time

from odoo.exceptions import AccessError, UserError
from odoo.tests import TransactionCase, tagged

from odoo.addons.credit_insurance.tests.common import serve_app

from ..exchange import documents
from ..sandbox.soap_server import SandboxSoapIntermediary
from .common import ExportCommon

NS = {"b": documents.NAMESPACE}
MANAGER = (
    "base.group_user,account.group_account_invoice,"
    "credit_insurance.group_credit_insurance_manager"
)
JOB_DAY = "2026-02-10"


@tagged("post_install", "-at_install")
class TestPoliticalDeclarations(ExportCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Only this test's policies gather overdues.
        cls.env["credit.insurance.policy"].search(
            [("id", "not in", (cls.policy | cls.export_policy).ids)]
        ).write({"active": False})
        cls.company.company_registry = "55210055400013"
        cls.export_policy.write(
            {"declaration_trigger_days": 7, "political_waiting_days": 180}
        )
        cls.policy.waiting_days_protracted_default = 150
        cls.make_export_limit(cls.us_buyer, 50000.0)
        cls.make_export_limit(cls.us_buyer_2, 50000.0)
        cls.make_export_limit(cls.ma_buyer, 50000.0)
        cls.manager = cls.make_user("bpi_decl_manager", MANAGER)
        cls.Declaration = cls.env["credit.insurance.declaration"].with_user(cls.manager)

    def overdue(self, buyer, amount=1000.0):
        with freeze_time("2026-01-01"):
            return self.make_invoice(amount, buyer=buyer, taxes=self.env["account.tax"])

    def gather(self, day=JOB_DAY):
        with freeze_time(day):
            self.Declaration._cron_declare_overdues()

    def declaration_of(self, buyer):
        return self.Declaration.search([("partner_id", "=", buyer.id)])

    def messages(self, record):
        return " ".join(record.message_ids.mapped("body"))

    def xml(self, document):
        return documents.validate(document._xml_bytes())

    def export_file(self, record):
        action = record.with_user(self.manager).action_export_document()
        return (
            self.env[action["res_model"]]
            .with_user(self.manager)
            .browse(action["res_id"])
        )

    def filed_declaration(self, buyer=None):
        """The overdue of ``buyer`` declared by the job, its file filed."""
        buyer = buyer or self.us_buyer
        self.overdue(buyer)
        self.gather()
        declaration = self.declaration_of(buyer)
        with freeze_time("2026-02-12"):
            self.export_file(declaration).action_mark_filed()
        return declaration

    # --------------------------------------------------------- declarations

    def test_overdue_under_a_political_event_is_declared_political(self):
        event = self.political_event(self.us, date_start="2026-01-15")
        self.overdue(self.us_buyer)
        self.overdue(self.ma_buyer)
        self.gather()
        political = self.declaration_of(self.us_buyer)
        self.assertEqual(political.policy_id, self.export_policy)
        self.assertEqual(political.state, "to_file")
        self.assertEqual(political.cause, "political")
        self.assertEqual(political.political_event_id, event)
        self.assertIn("declared with the political cause", self.messages(political))
        # Morocco has no event: a commercial overdue.
        commercial = self.declaration_of(self.ma_buyer)
        self.assertEqual(commercial.cause, "commercial")
        self.assertFalse(commercial.political_event_id)
        # The credit managers are told to file it as an export file.
        notes = political.activity_ids.filtered(
            lambda a: a.user_id == self.manager
        ).mapped("note")
        self.assertTrue(notes)
        self.assertIn("Produce the export file", str(notes[0]))

    def test_event_over_before_the_invoices_leaves_the_cause_commercial(self):
        self.political_event(self.us, date_start="2025-06-01", date_end="2025-12-15")
        self.overdue(self.us_buyer)
        self.gather()
        self.assertEqual(self.declaration_of(self.us_buyer).cause, "commercial")

    def test_a_later_event_changes_unfiled_declarations_only(self):
        self.overdue(self.us_buyer)
        self.overdue(self.us_buyer_2)
        self.gather()
        filed = self.declaration_of(self.us_buyer)
        unfiled = self.declaration_of(self.us_buyer_2)
        self.assertEqual((filed | unfiled).mapped("cause"), ["commercial"] * 2)
        with freeze_time("2026-02-12"):
            self.export_file(filed).action_mark_filed()
        self.assertEqual(filed.state, "filed")
        with freeze_time("2026-02-15"):
            event = self.political_event(self.us, date_start="2026-02-14")
        self.assertEqual(unfiled.political_event_id, event)
        self.assertEqual(unfiled.cause, "political")
        # What was filed stays as filed.
        self.assertEqual(filed.cause, "commercial")
        # Corrected: the event ended before the invoices fell due.
        with freeze_time("2026-02-15"):
            event.write({"date_start": "2026-01-02", "date_end": "2026-01-10"})
        self.assertEqual(unfiled.cause, "commercial")

    def test_filing_the_export_file_files_the_declaration(self):
        self.political_event(
            self.us, date_start="2026-01-15", event_type="non_transfer"
        )
        invoice = self.overdue(self.us_buyer)
        self.gather()
        declaration = self.declaration_of(self.us_buyer)
        document = self.export_file(declaration)
        self.assertEqual(document.declaration_id, declaration)
        self.assertEqual(document.invoice_ids, invoice)
        self.assertEqual(document.state, "ready")
        root = self.xml(document)
        self.assertEqual(root.findtext("b:CauseSinistre", namespaces=NS), "politique")
        self.assertEqual(
            root.findtext("b:EvenementPolitique/b:Type", namespaces=NS),
            "non_transfert",
        )
        self.assertEqual(
            root.findtext("b:EvenementPolitique/b:DateDebut", namespaces=NS),
            "2026-01-15",
        )
        # Asked again before filing: the same file.
        self.assertEqual(self.export_file(declaration), document)
        self.assertEqual(declaration.state, "to_file")
        with freeze_time("2026-02-12 10:00:00"):
            document.action_mark_filed()
        self.assertEqual(declaration.state, "filed")
        self.assertEqual(declaration.insurer_reference, document.name)
        self.assertEqual(declaration.amount_filed, 1000.0)
        self.assertIn("uploaded on the extranet", self.messages(declaration))
        # Filing stops deliveries, as a domestic filing does.
        self.assertTrue(self.us_buyer.with_company(self.company).credit_insurance_stop)
        with self.assertRaisesRegex(UserError, "already been filed"):
            self.export_file(declaration)

    def test_only_credit_managers_produce_the_export_file(self):
        self.overdue(self.us_buyer)
        self.gather()
        declaration = self.declaration_of(self.us_buyer)
        user = self.make_user(
            "bpi_ci_user",
            "base.group_user,credit_insurance.group_credit_insurance_user",
        )
        with self.assertRaises(AccessError):
            declaration.with_user(user).action_export_document()
        self.assertFalse(declaration.export_document_ids)

    def test_soap_deposit_files_declaration_and_claim(self):
        sandbox = SandboxSoapIntermediary()
        server = serve_app(self, sandbox)
        self.export_policy.export_soap_url = f"{server.url}/soap"
        self.political_event(self.us, date_start="2026-01-15")
        self.overdue(self.us_buyer)
        self.gather()
        declaration = self.declaration_of(self.us_buyer)
        document = self.export_file(declaration)
        document.action_send_soap()
        self.assertEqual(declaration.state, "filed")
        self.assertEqual(declaration.insurer_reference, "DEP-000001")
        self.assertIn("DEP-000001", self.messages(declaration))
        claim = self.open_claim(declaration)
        claim_file = self.export_file(claim)
        claim_file.action_send_soap()
        self.assertEqual(claim_file.deposit_number, "DEP-000002")
        self.assertEqual(claim.state, "submitted")
        self.assertEqual(
            [(d["type"], d["reference"]) for d in sandbox.deposits],
            [
                ("menace_sinistre", document.name),
                ("indemnisation", claim_file.name),
            ],
        )

    # --------------------------------------------------------------- claims

    def open_claim(self, declaration):
        action = declaration.with_user(self.manager).action_open_claim()
        return self.env["credit.insurance.claim"].browse(action["res_id"])

    def test_political_claim_uses_the_political_coverage_and_waiting_period(self):
        self.political_event(self.us, date_start="2026-01-15")
        declaration = self.filed_declaration()
        claim = self.open_claim(declaration)
        self.assertEqual(claim.cause, "political")
        self.assertEqual(claim.political_event_id, declaration.political_event_id)
        # The invoice's 1,000 (no VAT), within the 50,000 limit at delivery.
        self.assertEqual(claim.limit_amount, 1000.0)
        # Political risk at 90 %, not the named buyer's 95 %.
        self.assertEqual(claim.coverage_pct, 90.0)
        self.assertEqual(claim.claimed_amount, 1000.0)
        self.assertEqual(claim.indemnity_computed, 900.0)
        # The event (15 January) hit the debt when it fell due (31 January):
        # 180 days later.
        self.assertEqual(claim.date_expected, date(2026, 7, 30))
        # The same loss as a protracted default: commercial terms.
        claim.cause = "protracted_default"
        self.assertEqual(claim.coverage_pct, 95.0)
        self.assertEqual(claim.indemnity_computed, 950.0)
        self.assertEqual(claim.date_expected, date(2026, 7, 12))  # filed + 150

    def test_political_waiting_period_runs_from_a_later_event(self):
        declaration = self.filed_declaration()
        claim = self.open_claim(declaration)
        self.assertEqual(claim.cause, "protracted_default")
        event = self.political_event(self.us, date_start="2026-03-01")
        claim.write({"cause": "political", "political_event_id": event.id})
        self.assertEqual(claim.coverage_pct, 90.0)
        self.assertEqual(claim.date_expected, date(2026, 8, 28))  # 1 March + 180

    def test_claim_file_is_valid_and_submits_the_claim(self):
        self.political_event(self.us, date_start="2026-01-15")
        declaration = self.filed_declaration()
        claim = self.open_claim(declaration)
        document = self.export_file(claim)
        self.assertEqual(document.document_type, "claim")
        self.assertEqual(document.claim_id, claim)
        root = self.xml(document)
        self.assertEqual(root.tag, f"{{{documents.NAMESPACE}}}DemandeIndemnisation")
        values = {
            tag: root.findtext(f"b:{tag}", namespaces=NS)
            for tag in (
                "ReferenceDeclaration",
                "Cause",
                "QuotiteGarantie",
                "IndemniteCalculee",
                "MontantReclame",
                "DateIndemnisationPrevue",
            )
        }
        self.assertEqual(
            values,
            {
                "ReferenceDeclaration": declaration.insurer_reference,
                "Cause": "politique",
                "QuotiteGarantie": "90.00",
                "IndemniteCalculee": "900.00",
                "MontantReclame": "1000.00",
                "DateIndemnisationPrevue": "2026-07-30",
            },
        )
        self.assertEqual(
            root.findtext("b:EvenementPolitique/b:Type", namespaces=NS), "moratoire"
        )
        self.assertEqual(claim.state, "draft")
        document.action_mark_filed()
        self.assertEqual(claim.state, "submitted")
        self.assertEqual(declaration.state, "claim_opened")
        self.assertIn(document.name, self.messages(claim))

    def test_insolvency_claim_file_names_the_insolvency(self):
        declaration = self.filed_declaration()
        claim = self.open_claim(declaration)
        claim.write({"cause": "insolvency", "date_insolvency": "2026-03-02"})
        root = self.xml(self.export_file(claim))
        self.assertEqual(root.findtext("b:Cause", namespaces=NS), "insolvabilite")
        self.assertEqual(
            root.findtext("b:DateInsolvabilite", namespaces=NS), "2026-03-02"
        )
        self.assertIsNone(root.find("b:EvenementPolitique", namespaces=NS))
        # The named buyer's commercial coverage.
        self.assertEqual(root.findtext("b:QuotiteGarantie", namespaces=NS), "95.00")

    # ---------------------------------------------------------------- XLSX

    def sheet(self, document):
        content = base64.b64decode(document.with_context(bin_size=False).xlsx_file)
        sheet = openpyxl.load_workbook(io.BytesIO(content)).active
        return [
            [cell for cell in row if cell is not None]
            for row in sheet.iter_rows(values_only=True)
        ]

    def test_xlsx_summary_says_what_the_xml_says(self):
        self.political_event(self.us, date_start="2026-01-15")
        self.overdue(self.us_buyer)
        self.gather()
        document = self.export_file(self.declaration_of(self.us_buyer))
        self.assertTrue(document.xlsx_filename.endswith(".xlsx"))
        rows = self.sheet(document)
        self.assertIn(["Reference", document.name], rows)
        self.assertIn(["Buyer", "Boston Fabrics Inc."], rows)
        self.assertIn(["Cause", "politique"], rows)
        invoice = document.invoice_ids
        self.assertIn(
            [invoice.name, "2026-01-01", "2026-01-31", "USD", 1000.0, 1000.0, 1000.0],
            rows,
        )
        self.assertIn(["Total", 1000.0], rows)
        # Back to draft drops both files.
        document.action_reset_to_draft()
        self.assertFalse(document.xlsx_file)

    def test_xlsx_summary_reads_in_french(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._load_module_terms(
            ["credit_insurance_bpi_export"], ["fr_FR"], overwrite=True
        )
        self.overdue(self.ma_buyer, 2500.0)
        self.gather()
        declaration = self.declaration_of(self.ma_buyer)
        document = self.export_file(declaration.with_context(lang="fr_FR"))
        rows = self.sheet(document)
        self.assertIn(["Type de document", "Déclaration de menace de sinistre"], rows)
        self.assertIn(["Acheteur", "Textiles de Casablanca"], rows)
        self.assertIn(["Total", 2500.0], rows)


@tagged("post_install", "-at_install")
class TestExportDemo(TransactionCase):
    """``make demo`` shows an export buyer under a political event, whose
    overdue waits to be filed with the political cause."""

    def test_demo_has_a_political_overdue_to_file(self):
        env = self.env(su=True)
        political = env.ref(
            "credit_insurance_bpi_export.demo_declaration_cairo",
            raise_if_not_found=False,
        )
        self.assertTrue(political, "the demo data is not loaded (make test loads it)")
        self.assertEqual(political.state, "to_file")
        self.assertEqual(political.cause, "political")
        self.assertEqual(
            political.political_event_id,
            env.ref("credit_insurance_bpi_export.demo_political_event_eg"),
        )
        commercial = env.ref("credit_insurance_bpi_export.demo_declaration_boston")
        self.assertEqual(
            (commercial.state, commercial.cause), ("to_file", "commercial")
        )
        # Its file can be produced as is.
        document = political.export_document_ids.browse(
            political.action_export_document()["res_id"]
        )
        self.assertEqual(document.state, "ready")
        self.assertEqual(document.cause, "political")
