from odoo import api, models

# Writing these may raise the order's total.
AMOUNT_FIELDS = frozenset(
    ("product_id", "product_uom_qty", "product_uom", "price_unit", "discount", "tax_id")
)


class SaleOrderLine(models.Model):
    _inherit = "sale.order.line"

    @api.model_create_multi
    def create(self, vals_list):
        order_ids = {vals["order_id"] for vals in vals_list if vals.get("order_id")}
        before = self._credit_insurance_totals(self.env["sale.order"].browse(order_ids))
        lines = super().create(vals_list)
        lines.order_id._credit_insurance_check_increase(before)
        return lines

    def write(self, vals):
        if not AMOUNT_FIELDS.intersection(vals):
            return super().write(vals)
        orders = self.order_id
        before = self._credit_insurance_totals(orders)
        result = super().write(vals)
        orders._credit_insurance_check_increase(before)
        return result

    @api.model
    def _credit_insurance_totals(self, orders):
        """Totals of the confirmed orders, before a change that may raise them."""
        return {
            order.id: order.amount_total
            for order in orders.filtered(lambda o: o.state == "sale")
        }
