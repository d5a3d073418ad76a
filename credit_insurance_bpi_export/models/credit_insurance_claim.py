from odoo import api, fields, models


class CreditInsuranceClaim(models.Model):
    """Political claims under an export policy: the political waiting period
    applies (the political coverage % is the core's, from the policy)."""

    _inherit = "credit.insurance.claim"

    political_event_id = fields.Many2one(
        "credit.insurance.political.event",
        string="Political event",
        tracking=True,
        help="The political event that caused the loss (political claims).",
    )
    export_document_ids = fields.One2many(
        "credit.insurance.export.document", "claim_id", string="Export files"
    )
    is_export = fields.Boolean(
        string="Export policy",
        compute="_compute_is_export",
        help="The claim falls under an export policy: it is filed as an export file.",
    )

    @api.depends("policy_id.policy_type")
    def _compute_is_export(self):
        for claim in self:
            claim.is_export = claim.policy_id.policy_type == "export"

    @api.depends(
        "policy_id.political_waiting_days",
        "political_event_id.date_start",
        "invoice_ids.invoice_date_due",
    )
    def _compute_date_expected(self):
        """Political claims under an export policy wait the political period
        from the event's effect on the debts: the event's start or the last
        invoice's due date, whichever is later (the declaration date without
        an event)."""
        result = super()._compute_date_expected()
        for claim in self.filtered(
            lambda c: c.cause == "political" and c.policy_id.policy_type == "export"
        ):
            start = claim.date_declared
            if claim.political_event_id:
                start = max(
                    [
                        claim.political_event_id.date_start,
                        *claim.invoice_ids.mapped("invoice_date_due"),
                    ]
                )
            claim.date_expected = start and fields.Date.add(
                start, days=claim.policy_id.political_waiting_days
            )
        return result

    def action_export_document(self):
        """The export file of this claim (demande d'indemnisation), produced
        from the claim (the one not yet filed if there is one)."""
        self.ensure_one()
        self._check_manager()
        pending = self.export_document_ids._pending()
        if not pending:
            self._check_state(("draft",), self.env._("filed again"))
        return pending._produce_and_open(
            {
                "document_type": "claim",
                "claim_id": self.id,
                "policy_id": self.policy_id.id,
                "partner_id": self.partner_id.commercial_partner_id.id,
                "company_id": self.company_id.id,
                "invoice_ids": [fields.Command.set(self.invoice_ids.ids)],
            },
        )
