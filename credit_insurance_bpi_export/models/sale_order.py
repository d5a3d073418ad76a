from odoo import models
from odoo.tools.misc import format_amount

from .credit_insurance_cover import ExportExposureCheck


class SaleOrder(models.Model):
    _inherit = "sale.order"

    def _credit_insurance_message(self, check, situation):
        """Orders refused by the export rules say which rule, and the figures
        of the country cap when it binds."""
        message = super()._credit_insurance_message(check, situation)
        if not isinstance(check, ExportExposureCheck) or not check.block_reason:
            return message
        env = self.env["credit.insurance.cover"]._user_env()
        Partner = env["res.partner"]
        reasons = dict(
            Partner._fields["credit_insurance_export_block"]._description_selection(env)
        )
        lines = [
            message,
            env._("Export cover: %(reason)s", reason=reasons[check.block_reason]),
        ]
        if check.block_reason == "country_cap":
            country = env["res.country"].browse(check.cover.country_id)
            lines.append(
                env._(
                    "Cap on %(country)s: %(cap)s, of which %(exposure)s already "
                    "used by the buyers of the country",
                    country=country.name,
                    cap=format_amount(env, check.cover.country_cap, check.currency),
                    exposure=format_amount(env, check.country_exposure, check.currency),
                )
            )
        return "\n".join(lines)
