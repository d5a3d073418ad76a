"""The documents of an export policy: produced as XML checked against the
addon's XSD, then filed by hand on the Bpifrance extranet or deposited with a
SOAP intermediary. States and deadlines are tracked like the domestic ones."""

import base64
from decimal import Decimal

from odoo import api, fields, models
from odoo.exceptions import UserError

from odoo.addons.credit_insurance.models.credit_insurance_declaration import (
    UNFILED_STATES,
)

from ..exchange import documents
from ..exchange.errors import ExportExchangeError
from ..exchange.soap import ExportSoapClient
from ..report.export_document_xlsx import summary_xlsx

DOCUMENT_TYPES = [
    ("overdue_declaration", "Overdue declaration (threat of loss)"),
    ("claim", "Claim (indemnity request)"),
    ("turnover_declaration", "Export turnover declaration"),
]


class CreditInsuranceExportDocument(models.Model):
    _name = "credit.insurance.export.document"
    _description = "Export credit insurance document"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "deadline, id desc"
    _check_company_auto = True

    name = fields.Char(
        string="Reference", required=True, readonly=True, copy=False, default="/"
    )
    document_type = fields.Selection(
        DOCUMENT_TYPES, string="Document", required=True, tracking=True
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    company_currency_id = fields.Many2one(related="company_id.currency_id")
    policy_id = fields.Many2one(
        "credit.insurance.policy",
        required=True,
        check_company=True,
        domain="[('policy_type', '=', 'export')]",
        tracking=True,
    )
    partner_id = fields.Many2one(
        "res.partner",
        string="Buyer",
        check_company=True,
        domain="[('is_company', '=', True)]",
        tracking=True,
    )
    invoice_ids = fields.Many2many(
        "account.move",
        string="Overdue invoices",
        check_company=True,
        domain="[('move_type', '=', 'out_invoice'), ('state', '=', 'posted'), "
        "('commercial_partner_id', '=', partner_id)]",
    )
    declaration_id = fields.Many2one(
        "credit.insurance.declaration",
        string="Overdue declaration",
        check_company=True,
        index="btree_not_null",
        readonly=True,
        help="The overdue declaration this file files: filing the file files it.",
    )
    claim_id = fields.Many2one(
        "credit.insurance.claim",
        check_company=True,
        index="btree_not_null",
        readonly=True,
        help="The claim this file requests the indemnity of: filing the file "
        "submits it.",
    )
    turnover_declaration_id = fields.Many2one(
        "credit.insurance.turnover.declaration",
        string="Turnover declaration",
        check_company=True,
        domain="[('policy_id', '=', policy_id)]",
        help="The policy's turnover declaration of the period: its figures by "
        "country are those filed.",
    )
    date_from = fields.Date(related="turnover_declaration_id.date_from")
    date_to = fields.Date(related="turnover_declaration_id.date_to")
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("ready", "To file"),
            ("filed", "Filed"),
        ],
        required=True,
        default="draft",
        readonly=True,
        copy=False,
        tracking=True,
    )
    deadline = fields.Date(
        compute="_compute_deadline",
        store=True,
        help="Last day to file: the earliest declaration deadline of the "
        "invoices, or the end of the period plus the policy's turnover "
        "declaration period.",
    )
    political_event_id = fields.Many2one(
        "credit.insurance.political.event",
        string="Political event",
        readonly=True,
        copy=False,
        help="Political event the file declares (that of its overdue "
        "declaration or claim, otherwise the one in force in the buyer's "
        "country when the file was produced): the cause is political.",
    )
    cause = fields.Selection(
        [("commercial", "Commercial"), ("political", "Political")],
        compute="_compute_cause",
        store=True,
    )
    total_amount = fields.Monetary(
        string="Total", currency_field="company_currency_id", readonly=True, copy=False
    )
    xml_file = fields.Binary(
        string="XML file", readonly=True, copy=False, attachment=True
    )
    xml_filename = fields.Char(string="XML file name", readonly=True, copy=False)
    xlsx_file = fields.Binary(
        string="Summary (XLSX)",
        readonly=True,
        copy=False,
        attachment=True,
        help="What the XML file says, as a spreadsheet: read back from the file.",
    )
    xlsx_filename = fields.Char(string="XLSX file name", readonly=True, copy=False)
    filed_via = fields.Selection(
        [("extranet", "Bpifrance extranet"), ("soap", "SOAP intermediary")],
        string="Filed via",
        readonly=True,
        copy=False,
        tracking=True,
    )
    date_filed = fields.Date(
        string="Filed on", readonly=True, copy=False, tracking=True
    )
    deposit_number = fields.Char(
        string="Deposit number",
        readonly=True,
        copy=False,
        tracking=True,
        help="Number the SOAP intermediary gave the deposit.",
    )
    exchange_error = fields.Text(
        string="Last exchange error",
        readonly=True,
        copy=False,
        help="Why the last deposit failed; the document was left as it was.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("name", "/") == "/":
                vals["name"] = self.env["ir.sequence"].next_by_code(
                    "credit.insurance.export.document"
                )
        return super().create(vals_list)

    @api.depends(
        "document_type",
        "invoice_ids.credit_insurance_declaration_deadline",
        "turnover_declaration_id.date_due",
    )
    def _compute_deadline(self):
        for document in self:
            if document.document_type == "overdue_declaration":
                deadlines = document.invoice_ids.filtered(
                    "credit_insurance_declaration_deadline"
                ).mapped("credit_insurance_declaration_deadline")
                document.deadline = min(deadlines) if deadlines else False
            elif document.document_type == "turnover_declaration":
                document.deadline = document.turnover_declaration_id.date_due
            else:
                document.deadline = False  # a claim follows its declaration

    @api.depends("political_event_id")
    def _compute_cause(self):
        for document in self:
            document.cause = (
                "political" if document.political_event_id else "commercial"
            )

    # ------------------------------------------------------------ producing

    def action_generate(self):
        """Produce the XML of each document, checked against the XSD."""
        for document in self:
            if document.state == "filed":
                raise UserError(
                    self.env._(
                        "%(document)s is already filed: it cannot be produced again.",
                        document=document.name,
                    )
                )
            if document.document_type == "overdue_declaration":
                data, values = document._overdue_declaration_data()
                xml = documents.build_overdue_declaration(data)
                total = data.total_unpaid
            elif document.document_type == "claim":
                data, values = document._claim_data()
                xml = documents.build_claim(data)
                total = data.claimed_amount
            else:
                data, values = document._turnover_declaration_data()
                xml = documents.build_turnover_declaration(data)
                total = data.total
            filename = document.name.replace("/", "-")
            document.write(
                {
                    **values,
                    "xml_file": base64.b64encode(xml),
                    "xml_filename": f"{filename}.xml",
                    "xlsx_file": base64.b64encode(summary_xlsx(self.env, xml)),
                    "xlsx_filename": f"{filename}.xlsx",
                    "total_amount": float(total),
                    "state": "ready",
                    "exchange_error": False,
                }
            )
        return True

    def _pending(self):
        """The first of these files not yet filed."""
        return self.filtered(lambda d: d.state != "filed")[:1]

    def _produce_and_open(self, values):
        """This file, or a new one of ``values`` when there is none, produced
        (when still a draft) and opened."""
        document = self or self.create(values)
        if document.state == "draft":
            document.action_generate()
        return {
            "type": "ir.actions.act_window",
            "res_model": document._name,
            "res_id": document.id,
            "view_mode": "form",
        }

    def _header(self):
        company = self.company_id
        if not company.country_id:
            raise UserError(
                self.env._(
                    "Set the country of %(company)s: export documents name it.",
                    company=company.name,
                )
            )
        siren = (company.company_registry or "").replace(" ", "")[:9]
        return documents.Header(
            reference=self.name,
            issue_date=fields.Date.context_today(self),
            insurer=self.policy_id.insurer_id.name,
            policy_number=self.policy_id.name,
            seller_name=company.name,
            seller_country=company.country_id.code,
            seller_siren=siren if len(siren) == 9 and siren.isdigit() else "",
        )

    def _overdue_declaration_data(self):
        self.ensure_one()
        buyer, invoices = self._check_buyer_invoices()
        if self.declaration_id:
            event = self.declaration_id.political_event_id
        else:
            event = (
                self.env["credit.insurance.political.event"]
                ._events_in_force(buyer.country_id, fields.Date.context_today(self))
                .get(buyer.country_id.id)
            )
        data = documents.OverdueDeclaration(
            header=self._header(),
            buyer=self._buyer_data(buyer),
            currency=self.company_currency_id.name,
            invoices=self._invoices_data(invoices),
            political_event_type=event.event_type if event else "",
            political_event_start=event.date_start if event else None,
        )
        return data, {"political_event_id": event.id if event else False}

    def _claim_data(self):
        self.ensure_one()
        claim = self.claim_id
        if not claim:
            raise UserError(
                self.env._(
                    "%(document)s: produce a claim file from its claim.",
                    document=self.name,
                )
            )
        buyer, invoices = self._check_buyer_invoices()
        event = claim.political_event_id if claim.cause == "political" else None
        declaration = claim.declaration_id
        insolvency = claim.cause == "insolvency" and claim.date_insolvency
        data = documents.ClaimRequest(
            header=self._header(),
            buyer=self._buyer_data(buyer),
            currency=self.company_currency_id.name,
            cause=claim.cause,
            invoices=self._invoices_data(invoices),
            claimed_amount=Decimal(str(claim.claimed_amount)),
            coverage_pct=Decimal(str(claim.coverage_pct)),
            indemnity=Decimal(str(claim.indemnity_computed)),
            # The insurer knows the declaration by its own reference.
            declaration_reference=declaration.insurer_reference
            or declaration.name
            or "",
            political_event_type=event.event_type if event else "",
            political_event_start=event.date_start if event else None,
            insolvency_date=insolvency or None,
            expected_date=claim.date_expected or None,
        )
        return data, {"political_event_id": event.id if event else False}

    def _check_buyer_invoices(self):
        """The buyer and its invoices the file names, checked."""
        buyer = self.partner_id.commercial_partner_id
        invoices = self.invoice_ids
        if not buyer or not invoices:
            raise UserError(
                self.env._(
                    "%(document)s: choose the buyer and its overdue invoices.",
                    document=self.name,
                )
            )
        if not buyer.country_id:
            raise UserError(
                self.env._(
                    "Set the country of %(buyer)s: the declaration names it.",
                    buyer=buyer.name,
                )
            )
        wrong = invoices.filtered(
            lambda m: (
                m.commercial_partner_id != buyer
                or m.state != "posted"
                or m.move_type != "out_invoice"
                or m.currency_id.is_zero(m.amount_residual)
            )
        )
        if wrong:
            raise UserError(
                self.env._(
                    "%(document)s: these invoices are not unpaid posted invoices "
                    "of %(buyer)s: %(invoices)s.",
                    document=self.name,
                    buyer=buyer.name,
                    invoices=", ".join(wrong.mapped("name")),
                )
            )
        return buyer, invoices

    @staticmethod
    def _buyer_data(buyer):
        category = buyer.country_id.oecd_risk_category_id
        return documents.Buyer(
            name=buyer.name,
            country=buyer.country_id.code,
            oecd_category=category.code if category else None,
            national_id=buyer.company_registry or buyer.vat or "",
            city=buyer.city or "",
        )

    @staticmethod
    def _invoices_data(invoices):
        return tuple(
            documents.OverdueInvoice(
                number=invoice.name,
                invoice_date=invoice.invoice_date,
                due_date=invoice.invoice_date_due,
                currency=invoice.currency_id.name,
                amount=Decimal(str(invoice.amount_total)),
                unpaid=Decimal(str(invoice.amount_residual)),
                unpaid_seller_currency=Decimal(
                    str(abs(invoice.amount_residual_signed))
                ),
            )
            for invoice in invoices.sorted(lambda m: (m.invoice_date_due, m.id))
        )

    def _turnover_declaration_data(self):
        """The figures by country of the core turnover declaration."""
        self.ensure_one()
        declaration = self.turnover_declaration_id
        if not declaration:
            raise UserError(
                self.env._(
                    "%(document)s: choose the turnover declaration of the period.",
                    document=self.name,
                )
            )
        if declaration.policy_id != self.policy_id:
            raise UserError(
                self.env._(
                    "%(document)s: the turnover declaration %(declaration)s is "
                    "not one of policy %(policy)s.",
                    document=self.name,
                    declaration=declaration.name,
                    policy=self.policy_id.display_name,
                )
            )
        if declaration.state == "draft":
            declaration.action_compute()  # the figures of today
        if declaration.line_ids.filtered(lambda line: not line.country_id):
            raise UserError(
                self.env._(
                    "%(document)s: some invoiced buyers have no country.",
                    document=self.name,
                )
            )
        data = documents.TurnoverDeclaration(
            header=self._header(),
            date_from=declaration.date_from,
            date_to=declaration.date_to,
            currency=declaration.currency_id.name,
            lines=tuple(
                documents.CountryTurnover(
                    country=country.code,
                    invoice_count=sum(lines.mapped("invoice_count")),
                    refund_count=sum(lines.mapped("refund_count")),
                    # the period's and the regularisations of declared periods
                    amount=Decimal(str(sum(lines.mapped("turnover_amount")))),
                    oecd_category=(
                        country.oecd_risk_category_id.code
                        if country.oecd_risk_category_id
                        else None
                    ),
                )
                for country, lines in declaration.line_ids.grouped("country_id").items()
            ),
        )
        return data, {}

    # -------------------------------------------------------------- filing

    def action_mark_filed(self):
        """The credit manager uploaded the file on the Bpifrance extranet."""
        self._check_ready()
        self.write(
            {
                "state": "filed",
                "filed_via": "extranet",
                "date_filed": fields.Date.context_today(self),
                "exchange_error": False,
            }
        )
        self._file_source_records()
        return True

    def _file_source_records(self):
        """A filed file files what it was produced from: the turnover
        declaration is declared, the overdue declaration filed, the claim
        submitted."""
        for document in self.filtered("declaration_id"):
            declaration = document.declaration_id
            if declaration.state in UNFILED_STATES:
                declaration._record_filing(
                    document.deposit_number or document.name,
                    "received",
                    through_api=False,
                )
                document._log_filing_on(declaration)
        for document in self.filtered("claim_id"):
            claim = document.claim_id
            if claim.state == "draft":
                claim.action_submit()
                document._log_filing_on(claim)
        for document in self.filtered("turnover_declaration_id"):
            declaration = document.turnover_declaration_id
            if declaration.state == "draft":
                declaration._mark_declared(document.deposit_number or False)
                declaration.message_post(
                    body=self.env._(
                        "Declared to Bpifrance Assurance Export with %(document)s.",
                        document=document.name,
                    )
                )

    def action_send_soap(self):
        """Deposit each document with the policy's SOAP intermediary.

        A failure is recorded on the document (``exchange_error``) and in its
        chatter; the document keeps its state and gets no deposit number.
        """
        self._check_ready()
        for document in self:
            url = document.policy_id.export_soap_url
            if not url:
                raise UserError(
                    self.env._(
                        "Policy %(policy)s has no SOAP intermediary: upload "
                        "%(document)s on the Bpifrance extranet and mark it filed.",
                        policy=document.policy_id.display_name,
                        document=document.name,
                    )
                )
            client = ExportSoapClient(
                url, timeout=float(document.policy_id.insurer_id.api_timeout or 30)
            )
            try:
                receipt = client.deposit(
                    document.document_type, document.name, document._xml_bytes()
                )
            except ExportExchangeError as error:
                document._record_exchange_error(str(error))
                continue
            if not receipt.accepted:
                document._record_exchange_error(
                    self.env._(
                        "The intermediary rejected the document: %(message)s",
                        message=receipt.message or receipt.deposit_number,
                    )
                )
                continue
            document.write(
                {
                    "state": "filed",
                    "filed_via": "soap",
                    "date_filed": fields.Date.context_today(self),
                    "deposit_number": receipt.deposit_number,
                    "exchange_error": False,
                }
            )
            document._file_source_records()
        return True

    def _log_filing_on(self, record):
        if self.filed_via == "soap":
            body = self.env._(
                "Filed with Bpifrance Assurance Export: file %(document)s, "
                "deposited with the SOAP intermediary under number %(number)s.",
                document=self.name,
                number=self.deposit_number,
            )
        else:
            body = self.env._(
                "Filed with Bpifrance Assurance Export: file %(document)s, "
                "uploaded on the extranet.",
                document=self.name,
            )
        record.message_post(body=body)

    def _xml_bytes(self):
        self.ensure_one()
        return base64.b64decode(self.with_context(bin_size=False).xml_file or b"")

    def _record_exchange_error(self, message):
        self.exchange_error = message
        self.message_post(body=self.env._("Deposit failed: %(error)s", error=message))

    def _check_ready(self):
        not_ready = self.filtered(lambda d: d.state != "ready")
        if not_ready:
            raise UserError(
                self.env._(
                    "Produce the file of %(documents)s first (or it is already filed).",
                    documents=", ".join(not_ready.mapped("name")),
                )
            )

    def action_reset_to_draft(self):
        self.filtered(lambda d: d.state == "ready").write(
            {
                "state": "draft",
                "xml_file": False,
                "xml_filename": False,
                "xlsx_file": False,
                "xlsx_filename": False,
            }
        )
        return True
