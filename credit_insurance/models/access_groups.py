"""Who reads the fields the addons add to records the buyer can read too.

A buyer's portal user reads its own contact, its company, its invoices and
its orders (and anyone reads countries). Credit insurance policies bind the
insured to keep the buyer's limit and its declarations confidential from the
buyer, so every field the addons add to those models names its groups, taken
from here: the credit insurance groups, plus exactly the internal groups whose
work needs the field. The access matrix in readme/CONFIGURE.md says the same
per field; tests/test_confidentiality.py proves it over JSON-RPC.
"""

CREDIT_USER = "credit_insurance.group_credit_insurance_user"
CREDIT_MANAGER = "credit_insurance.group_credit_insurance_manager"
SALESMAN = "sales_team.group_sale_salesman"
INVOICING = "account.group_account_invoice"

# The policy, the insurer's decisions and figures, declarations and claims.
# (Credit insurance managers imply the user group.)
CREDIT_STAFF = CREDIT_USER
# What a salesperson quotes with: the buyer's available cover and the warning
# on a quotation that would exceed it.
SALES = f"{CREDIT_USER},{SALESMAN}"
# What invoicing users act on: the dispute flag they set, whether an invoice
# is insured, its extended due date and its declaration deadline.
INVOICE = f"{CREDIT_USER},{INVOICING}"
# A stop of deliveries refuses orders (salespeople) and invoices (invoicing).
DELIVERY_STOP = f"{CREDIT_USER},{SALESMAN},{INVOICING}"
# Public reference data (the OECD country risk classification): internal users.
INTERNAL = "base.group_user"


def check_search_access(model, domain):
    """Refuse a domain on an insurance field of ``model`` the user cannot read.

    Odoo checks a field's groups when a search reads its column, not when the
    field answers through its own search method (the buyer's figures) or a
    subquery (a one2many): without this check, a domain would tell whether a
    buyer's limit lies above some amount, or whether an invoice was declared.
    """
    names = {
        leaf[0].split(".", 1)[0]
        for leaf in domain
        if isinstance(leaf, list | tuple)
        and isinstance(leaf[0], str)
        and leaf[0].startswith("credit_insurance_")
    }
    if names:
        model.check_field_access_rights("read", sorted(names))
