"""Overdues of buyers abroad, declared with their cause.

An overdue of a buyer under the export policy whose country suffers a
political event while the invoices are unpaid is declared with the political
cause (the event is named in the file). Bpifrance Assurance Export has no API:
the declaration is filed by producing its XML file (an export document) and
uploading it; filing that file files the declaration.
"""

from odoo import api, fields, models

from odoo.addons.credit_insurance.models.credit_insurance_declaration import (
    UNFILED_STATES,
    log_note,
)

CAUSES = [("commercial", "Commercial risk"), ("political", "Political risk")]


class CreditInsuranceDeclaration(models.Model):
    _inherit = "credit.insurance.declaration"

    political_event_id = fields.Many2one(
        "credit.insurance.political.event",
        string="Political event",
        readonly=True,
        copy=False,
        index="btree_not_null",
        tracking=True,
        help="Political event in the buyer's country while its invoices are "
        "overdue: the overdue is declared with the political cause. Set until "
        "the declaration is filed.",
    )
    cause = fields.Selection(
        CAUSES,
        string="Cause of loss",
        compute="_compute_cause",
        store=True,
    )
    export_document_ids = fields.One2many(
        "credit.insurance.export.document", "declaration_id", string="Export files"
    )
    is_export = fields.Boolean(
        string="Export policy",
        compute="_compute_is_export",
        help="The declaration falls under an export policy: it is filed as an "
        "export file.",
    )

    @api.depends("political_event_id")
    def _compute_cause(self):
        for declaration in self:
            declaration.cause = (
                "political" if declaration.political_event_id else "commercial"
            )

    @api.depends("policy_id.policy_type", "category")
    def _compute_is_export(self):
        for declaration in self:
            declaration.is_export = (
                declaration.policy_id.policy_type == "export"
                and declaration.category == "overdue"
            )

    def _assign_political_events(self):
        """Name, on each unfiled export declaration, the political event of the
        buyer's country in force at some point since its oldest invoice fell
        due (the latest to start); none when there is none."""
        todo = self.filtered(
            lambda d: d.is_export and d.state in UNFILED_STATES and d.line_ids
        )
        if not todo:
            return
        today = fields.Date.context_today(self)
        countries = todo.partner_id.commercial_partner_id.country_id
        events = (
            self.env["credit.insurance.political.event"]
            .sudo()
            .search(
                [
                    ("country_id", "in", countries.ids),
                    ("date_start", "<=", today),
                ],
                order="date_start desc, id desc",
            )
        )
        for declaration in todo:
            country = declaration.partner_id.commercial_partner_id.country_id
            since = min(declaration.line_ids.move_id.mapped("invoice_date_due"))
            event = next(
                (
                    event
                    for event in events
                    if event.country_id == country
                    and (not event.date_end or event.date_end >= since)
                ),
                events.browse(),
            )
            if event == declaration.political_event_id:
                continue
            declaration.political_event_id = event
            if event:
                log_note(
                    declaration,
                    self.env._(
                        "Political event in %(country)s since %(date)s: the "
                        "overdue is declared with the political cause.",
                        country=country.name,
                        date=fields.Date.to_string(event.date_start),
                    ),
                )

    def _portal_filing_note(self):
        if not self.is_export:
            return super()._portal_filing_note()
        return self.env._(
            "Produce the export file from the declaration ('Produce the export "
            "file'), upload it on the Bpifrance Assurance Export extranet or "
            "send it to the SOAP intermediary: filing the file files the "
            "declaration."
        )

    def action_export_document(self):
        """The export file of this declaration, produced from its invoices
        (the one not yet filed if there is one)."""
        self.ensure_one()
        self._check_manager()
        pending = self.export_document_ids._pending()
        if not pending:
            self._check_unfiled()
        return pending._produce_and_open(
            {
                "document_type": "overdue_declaration",
                "declaration_id": self.id,
                "policy_id": self.policy_id.id,
                "partner_id": self.partner_id.commercial_partner_id.id,
                "company_id": self.company_id.id,
                "invoice_ids": [
                    fields.Command.set(self.line_ids.filtered("included").move_id.ids)
                ],
            },
        )

    def _claim_values(self, claimed_amount=None, cause="protracted_default"):
        """A claim on an overdue declared with the political cause is a
        political claim."""
        if self.political_event_id and cause == "protracted_default":
            cause = "political"
        values = super()._claim_values(claimed_amount, cause)
        if cause == "political":
            values["political_event_id"] = self.political_event_id.id
        return values


class CreditInsuranceDeclarationLine(models.Model):
    _inherit = "credit.insurance.declaration.line"

    @api.model_create_multi
    def create(self, vals_list):
        lines = super().create(vals_list)
        # Invoices added to an unfiled declaration move its window back.
        lines.declaration_id._assign_political_events()
        return lines
