from odoo import fields, models


class CreditInsuranceTurnoverDeclarationLine(models.Model):
    """The insured turnover of one buyer country in a declaration: of the
    period, or of earlier declared periods (a regularisation)."""

    _name = "credit.insurance.turnover.declaration.line"
    _description = "Turnover declaration line"
    _order = "declaration_id, regularisation, turnover_amount desc"

    declaration_id = fields.Many2one(
        "credit.insurance.turnover.declaration",
        required=True,
        ondelete="cascade",
        index=True,
    )
    company_id = fields.Many2one(related="declaration_id.company_id", store=True)
    currency_id = fields.Many2one(related="declaration_id.currency_id")
    country_id = fields.Many2one("res.country", string="Buyer country")
    regularisation = fields.Boolean(
        help="Invoices and credit notes of periods already declared, posted "
        "after their declaration: they count in this one.",
    )
    buyer_count = fields.Integer(string="Buyers")
    invoice_count = fields.Integer(string="Invoices")
    refund_count = fields.Integer(string="Credit notes")
    turnover_amount = fields.Monetary(string="Insured turnover")
    premium_rate = fields.Float(string="Premium rate (%)", digits=(16, 4))
    premium_amount = fields.Monetary(string="Premium")
