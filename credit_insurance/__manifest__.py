{
    "name": "Credit Insurance",
    "summary": "Insured credit limits, exposure and cover of receivables "
    "(Allianz Trade, Coface, Atradius) inside Odoo",
    "version": "18.0.1.0.1",
    "category": "Accounting/Accounting",
    "author": "Credit Insurance for Odoo",
    "website": "https://github.com/credit-insurance-odoo/credit-insurance",
    "license": "LGPL-3",
    "depends": ["account", "sale", "mail"],
    "external_dependencies": {
        "python": ["requests", "lxml", "werkzeug", "python-stdnum"]
    },
    "data": [
        "security/credit_insurance_security.xml",
        "security/ir.model.access.csv",
        "data/ir_cron.xml",
        "data/credit_insurance_connector_cron.xml",
        "data/ir_sequence.xml",
        "data/credit_insurance_turnover_cron.xml",
        "data/credit_insurance_declaration_data.xml",
        "data/credit_insurance_claim_data.xml",
        "views/credit_insurance_insurer_views.xml",
        "views/credit_insurance_policy_views.xml",
        "views/credit_insurance_limit_views.xml",
        "views/credit_insurance_limit_request_views.xml",
        "views/credit_insurance_declaration_views.xml",
        "views/res_partner_views.xml",
        "views/account_move_views.xml",
        "views/sale_order_views.xml",
        "views/credit_insurance_claim_views.xml",
        "wizards/credit_insurance_limit_request_wizard_views.xml",
        "views/credit_insurance_turnover_declaration_views.xml",
        "views/credit_insurance_dashboard_views.xml",
        "wizards/credit_insurance_limit_exceeded_views.xml",
        "wizards/credit_insurance_extension_wizard_views.xml",
        "views/credit_insurance_menus.xml",
    ],
    "demo": [
        "demo/credit_insurance_demo.xml",
        "demo/credit_insurance_declaration_demo.xml",
        "demo/credit_insurance_claim_demo.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "credit_insurance/static/src/dashboard/*",
        ],
        "web.assets_tests": [
            "credit_insurance/static/tests/tours/*",
        ],
    },
    "installable": True,
    "application": False,
}
