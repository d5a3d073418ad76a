"""Readable spreadsheet summary of an export file, read back from its XML (as
the PDF summary is) so that it shows exactly what is filed."""

import io
from decimal import Decimal

import xlsxwriter  # Odoo's own dependency

from ..exchange import documents

KINDS = {
    "DeclarationMenaceSinistre": "overdue",
    "DemandeIndemnisation": "claim",
    "DeclarationChiffreAffaires": "turnover",
}


def summary_xlsx(env, xml):
    """The XLSX bytes summarising ``xml`` (a produced export file), in the
    language of ``env``."""
    _ = env._
    values = documents.summary(xml)
    kind = KINDS[values["kind"]]
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    bold = workbook.add_format({"bold": True})
    money = workbook.add_format({"num_format": "#,##0.00"})
    sheet = workbook.add_worksheet(_("Summary"))
    sheet.set_column(0, 0, 32)
    sheet.set_column(1, 6, 18)
    titles = {
        "overdue": _("Overdue declaration (threat of loss)"),
        "claim": _("Claim (indemnity request)"),
        "turnover": _("Export turnover declaration"),
    }
    header = [
        (_("Document"), titles[kind]),
        (_("Reference"), values["reference"]),
        (_("Issued on"), values["issue_date"]),
        (_("Insurer"), values["insurer"]),
        (_("Policy number"), values["policy_number"]),
        (_("Insured"), values["seller"]),
        (_("SIREN"), values["seller_siren"]),
    ]
    if kind == "turnover":
        header += [
            (_("Period from"), values["date_from"]),
            (_("Period to"), values["date_to"]),
        ]
    else:
        header += [
            (_("Buyer"), values["buyer"]),
            (_("Buyer country"), values["buyer_country"]),
            (_("OECD category"), values["oecd_category"]),
            (_("Cause"), values["cause"]),
            (_("Political event"), values["political_event"]),
            (_("Political event since"), values["political_event_start"]),
        ]
    if kind == "claim":
        header += [
            (_("Overdue declaration"), values["declaration_reference"]),
            (_("Insolvency date"), values["insolvency_date"]),
            (_("Coverage %"), values["coverage_pct"]),
            (_("Computed indemnity"), values["indemnity"]),
            (_("Expected indemnity date"), values["expected_date"]),
        ]
    header.append((_("Currency"), values["currency"]))
    row = 0
    for label, value in header:
        if value:
            sheet.write(row, 0, label, bold)
            sheet.write(row, 1, value)
            row += 1
    row += 1
    if kind == "turnover":
        columns = [
            (_("Country"), "country", False),
            (_("OECD category"), "oecd_category", False),
            (_("Invoices"), "invoice_count", True),
            (_("Credit notes"), "refund_count", True),
            (_("Insured turnover"), "amount", True),
        ]
    else:
        columns = [
            (_("Invoice"), "number", False),
            (_("Invoice date"), "invoice_date", False),
            (_("Due date"), "due_date", False),
            (_("Invoice currency"), "currency", False),
            (_("Invoiced"), "amount", True),
            (_("Unpaid"), "unpaid", True),
            (_("Unpaid (insured's currency)"), "unpaid_seller_currency", True),
        ]
    sheet.write_row(row, 0, [label for label, _key, _number in columns], bold)
    for line in values["lines"]:
        row += 1
        for column, (_label, key, number) in enumerate(columns):
            if number and line[key] != "":
                sheet.write_number(row, column, float(Decimal(line[key])), money)
            else:
                sheet.write(row, column, line[key])
    row += 2
    sheet.write(row, 0, _("Total"), bold)
    sheet.write_number(row, 1, float(Decimal(values["total"])), money)
    workbook.close()
    return buffer.getvalue()
