from odoo import api, fields, models
from odoo.exceptions import UserError

from ..models.credit_insurance_limit_request import REQUEST_TYPES


class CreditInsuranceLimitRequestWizard(models.TransientModel):
    """Ask the insurers for limits on several buyers at once."""

    _name = "credit.insurance.limit.request.wizard"
    _description = "Request limits on several buyers"

    partner_ids = fields.Many2many(
        "res.partner",
        string="Buyers",
        required=True,
        domain="[('is_company', '=', True)]",
        default=lambda self: self._default_partners(),
    )
    request_type = fields.Selection(
        REQUEST_TYPES, string="Type", required=True, default="new"
    )
    requested_amount = fields.Monetary(
        required=True, help="Amount asked for on each buyer."
    )
    currency_id = fields.Many2one(
        "res.currency", required=True, default=lambda self: self.env.company.currency_id
    )
    reason = fields.Text(help="Why the limits are needed, for the underwriters.")

    @api.model
    def _default_partners(self):
        if self.env.context.get("active_model") != "res.partner":
            return self.env["res.partner"]
        partners = self.env["res.partner"].browse(self.env.context.get("active_ids"))
        return partners.commercial_partner_id.filtered("is_company")

    def action_create_requests(self):
        """One draft request per buyer; connected insurers send them."""
        self.ensure_one()
        buyers = self.partner_ids.commercial_partner_id
        if not buyers:
            raise UserError(self.env._("Choose the buyers to request limits on."))
        requests = self.env["credit.insurance.limit.request"].create(
            [
                {
                    "partner_id": buyer.id,
                    "request_type": self.request_type,
                    "requested_amount": self.requested_amount,
                    "currency_id": self.currency_id.id,
                    "reason": self.reason,
                }
                for buyer in buyers
            ]
        )
        without_policy = requests.filtered(lambda r: not r.policy_id)
        if without_policy:
            raise UserError(
                self.env._(
                    "No policy covers %(buyers)s: record the policy first.",
                    buyers=", ".join(without_policy.partner_id.mapped("name")),
                )
            )
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "credit_insurance.credit_insurance_limit_request_action"
        )
        action["domain"] = [("id", "in", requests.ids)]
        return action
