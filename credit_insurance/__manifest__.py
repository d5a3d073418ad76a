{
    "name": "Credit Insurance",
    "summary": "Insured credit limits, exposure and cover of receivables "
    "(Allianz Trade, Coface, Atradius) inside Odoo",
    "version": "18.0.1.0.0",
    "category": "Accounting/Accounting",
    "author": "Credit Insurance for Odoo",
    "website": "https://github.com/credit-insurance-odoo/credit-insurance",
    "license": "LGPL-3",
    "depends": ["account", "sale", "mail"],
    "external_dependencies": {"python": ["requests", "lxml"]},
    "data": [
        "security/credit_insurance_security.xml",
        "security/ir.model.access.csv",
        "data/ir_cron.xml",
        "views/credit_insurance_insurer_views.xml",
        "views/credit_insurance_policy_views.xml",
        "views/credit_insurance_limit_views.xml",
        "views/res_partner_views.xml",
        "views/account_move_views.xml",
        "views/credit_insurance_menus.xml",
    ],
    "demo": [
        "demo/credit_insurance_demo.xml",
    ],
    "installable": True,
    "application": False,
}
