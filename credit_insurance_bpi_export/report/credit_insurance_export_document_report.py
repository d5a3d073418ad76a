from odoo import api, models
from odoo.exceptions import UserError

from ..exchange import documents


class ExportDocumentSummary(models.AbstractModel):
    """Readable summary (PDF) of a produced export document, read back from
    its XML so that it shows exactly what was filed."""

    _name = "report.credit_insurance_bpi_export.export_document_summary"
    _description = "Export document summary"

    @api.model
    def _get_report_values(self, docids, data=None):
        docs = self.env["credit.insurance.export.document"].browse(docids)
        missing = docs.filtered(lambda d: not d.xml_file)
        if missing:
            raise UserError(
                self.env._(
                    "Produce the file of %(documents)s first: the summary shows "
                    "what the file says.",
                    documents=", ".join(missing.mapped("name")),
                )
            )
        summaries = {doc.id: documents.summary(doc._xml_bytes()) for doc in docs}
        codes = {
            code
            for values in summaries.values()
            for code in [values.get("buyer_country")]
            + [line.get("country") for line in values["lines"]]
            if code
        }
        countries = self.env["res.country"].search([("code", "in", list(codes))])
        return {
            "doc_ids": docids,
            "doc_model": "credit.insurance.export.document",
            "docs": docs,
            "summaries": summaries,
            "country_names": {country.code: country.name for country in countries},
        }
