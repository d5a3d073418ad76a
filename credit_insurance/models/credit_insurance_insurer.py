from urllib.parse import urlsplit

from odoo import api, fields, models
from odoo.exceptions import ValidationError


class CreditInsuranceInsurer(models.Model):
    """One connection to a credit insurer (an API account, or manual entry)."""

    _name = "credit.insurance.insurer"
    _description = "Credit insurer connection"
    _inherit = ["mail.thread"]
    _order = "name, id"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    provider = fields.Selection(
        [("manual", "Manual (no API)")],
        required=True,
        default="manual",
        tracking=True,
        help="How Odoo exchanges with this insurer. 'Manual' means requests and "
        "decisions are entered by hand.",
    )
    environment = fields.Selection(
        [("sandbox", "Sandbox"), ("production", "Production")],
        required=True,
        default="sandbox",
        tracking=True,
    )
    api_base_url = fields.Char(string="API base URL", tracking=True)
    # Secrets: readable and writable by system administrators only; sent with sudo().
    api_key = fields.Char(string="API key", groups="base.group_system", copy=False)
    client_id = fields.Char(string="Client ID", groups="base.group_system", copy=False)
    client_secret = fields.Char(groups="base.group_system", copy=False)
    login = fields.Char(groups="base.group_system", copy=False)
    password = fields.Char(groups="base.group_system", copy=False)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    policy_ids = fields.One2many("credit.insurance.policy", "insurer_id")
    policy_count = fields.Integer(compute="_compute_policy_count")

    @api.depends("policy_ids")
    def _compute_policy_count(self):
        for insurer in self:
            insurer.policy_count = len(insurer.policy_ids)

    @api.constrains("api_base_url")
    def _check_api_base_url(self):
        for insurer in self.filtered("api_base_url"):
            url = urlsplit(insurer.api_base_url)
            if url.scheme not in ("http", "https") or not url.netloc:
                raise ValidationError(
                    self.env._(
                        "API base URL of %(insurer)s must be an http(s) address, "
                        "e.g. https://api.example.com (got %(url)s).",
                        insurer=insurer.name,
                        url=insurer.api_base_url,
                    )
                )

    def action_view_policies(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "credit_insurance.credit_insurance_policy_action"
        )
        action["domain"] = [("insurer_id", "=", self.id)]
        action["context"] = {"default_insurer_id": self.id}
        return action
