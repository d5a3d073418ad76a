"""Sample documents shared by the export exchange tests."""

from datetime import date
from decimal import Decimal

from odoo.addons.credit_insurance_bpi_export.exchange import documents

HEADER = documents.Header(
    reference="EXP/2026/0001",
    issue_date=date(2026, 11, 26),
    insurer="Bpifrance Assurance Export",
    policy_number="BPI-AE-2026-117",
    seller_name="Durand Textiles SAS",
    seller_country="FR",
    seller_siren="552100554",
)
INVOICE = documents.OverdueInvoice(
    number="INV/2026/0007",
    invoice_date=date(2026, 5, 2),
    due_date=date(2026, 8, 1),
    currency="USD",
    amount=Decimal(12000),
    unpaid=Decimal("7000.5"),
    unpaid_seller_currency=Decimal("6012.345"),
)


def overdue(**changes):
    values = {
        "header": HEADER,
        "buyer": documents.Buyer("Boston Fabrics Inc.", "US", 0, "", "Boston"),
        "currency": "EUR",
        "invoices": (INVOICE,),
    }
    values.update(changes)
    return documents.OverdueDeclaration(**values)
