from odoo import api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.credit_insurance.models.credit_insurance_declaration import (
    UNFILED_STATES,
)
from odoo.addons.credit_insurance.models.credit_insurance_policy import (
    in_force_domain,
)

EVENT_TYPES = [
    ("moratorium", "Moratorium"),
    ("non_transfer", "Non-transfer"),
    ("war_catastrophe", "War or catastrophe"),
]


class CreditInsurancePoliticalEvent(models.Model):
    """A political event in a country (fait générateur politique).

    While it lasts, no new cover is granted on buyers of the country: their
    orders are blocked and their new invoices are not insured.
    """

    _name = "credit.insurance.political.event"
    _description = "Political event in a country"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "date_start desc, id desc"

    name = fields.Char(compute="_compute_name", store=True)
    country_id = fields.Many2one(
        "res.country", required=True, index=True, tracking=True, ondelete="restrict"
    )
    event_type = fields.Selection(
        EVENT_TYPES, string="Type", required=True, tracking=True
    )
    date_start = fields.Date(
        string="Start date",
        required=True,
        default=fields.Date.context_today,
        tracking=True,
    )
    date_end = fields.Date(
        string="End date",
        tracking=True,
        help="Last day of the event; empty while it lasts.",
    )
    active = fields.Boolean(default=True, tracking=True)
    note = fields.Html()

    @api.depends("country_id", "event_type", "date_start")
    def _compute_name(self):
        types = dict(self._fields["event_type"]._description_selection(self.env))
        for event in self:
            event.name = " - ".join(
                part
                for part in (
                    event.country_id.name,
                    types.get(event.event_type),
                    event.date_start and fields.Date.to_string(event.date_start),
                )
                if part
            )

    @api.constrains("date_start", "date_end")
    def _check_dates(self):
        for event in self:
            if event.date_end and event.date_end < event.date_start:
                raise ValidationError(
                    self.env._(
                        "Political event %(event)s: the end date is before the "
                        "start date.",
                        event=event.name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        events = super().create(vals_list)
        events._update_declarations(events.country_id)
        return events

    def write(self, vals):
        countries = self.country_id
        result = super().write(vals)
        if {"country_id", "date_start", "date_end", "active"} & set(vals):
            self._update_declarations(countries | self.country_id)
        return result

    @api.model
    def _update_declarations(self, countries):
        """Unfiled export declarations of buyers in ``countries`` take the
        cause the events now give them."""
        self.env["credit.insurance.declaration"].sudo().search(
            [
                ("category", "=", "overdue"),
                ("state", "in", UNFILED_STATES),
                ("policy_id.policy_type", "=", "export"),
                ("partner_id.country_id", "in", countries.ids),
            ]
        )._assign_political_events()

    @api.model
    def _events_in_force(self, countries, date):
        """``{country id: event}`` of the events in force on ``date`` (one query)."""
        events = self.sudo().search(
            [("country_id", "in", countries.ids), *in_force_domain(date)],
            order="date_start desc, id desc",
        )
        by_country = {}
        for event in events:
            by_country.setdefault(event.country_id.id, event)
        return by_country
