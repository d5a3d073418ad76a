from odoo import api, models


class AccountPartialReconcile(models.Model):
    """Reconciliations, whichever way they are made (payment form, bank
    reconciliation, credit note), and undone:

    - payments reconciled or undone change what buyers owe: the insured part
      of their invoices is shared again, and an overdue closed as paid is open
      again when its payment bounces;
    - an indemnity is paid when the insurer's line is reconciled; a buyer's
      payment reconciled with an indemnified claim's invoice is a recovery.
    """

    _inherit = "account.partial.reconcile"

    @api.model_create_multi
    def create(self, vals_list):
        partials = super().create(vals_list)
        partials._credit_insurance_allocate()
        moves = partials.debit_move_id.move_id | partials.credit_move_id.move_id
        self.env["credit.insurance.claim"].sudo().search(
            [("indemnity_move_id", "in", moves.ids)]
        )._mark_paid()
        # sudo: whoever registers the buyer's payment, the share is passed back.
        self.env["credit.insurance.claim.recovery"].sudo()._record_from_partials(
            partials
        )
        return partials

    def unlink(self):
        lines = self.debit_move_id | self.credit_move_id
        closed = self._credit_insurance_closed_as_paid(lines)
        paid = (
            self.env["credit.insurance.claim"]
            .sudo()
            .search(
                [("indemnity_move_id", "in", lines.move_id.ids), ("state", "=", "paid")]
            )
        )
        result = super().unlink()
        paid._mark_unpaid()
        self.browse()._credit_insurance_allocate(lines)
        closed._reopen_bounced()
        return result

    def _credit_insurance_allocate(self, lines=None):
        lines = self.debit_move_id | self.credit_move_id if lines is None else lines
        invoices = lines.move_id.filtered(lambda m: m.move_type == "out_invoice")
        if invoices:
            self.env["credit.insurance.cover"].sudo()._allocate_insured_amounts(
                invoices.commercial_partner_id
            )

    @api.model
    def _credit_insurance_closed_as_paid(self, lines):
        """Overdue declaration lines of these instalments whose declaration
        ended because they were paid (settled, or paid before the filing)."""
        return (
            self.env["credit.insurance.declaration.line"]
            .sudo()
            .search(
                [
                    ("move_line_id", "in", lines.ids),
                    ("category", "=", "overdue"),
                    "|",
                    ("declaration_id.state", "=", "settled"),
                    "&",
                    ("declaration_id.state", "=", "cancelled"),
                    ("declaration_id.abandoned", "=", False),
                ]
            )
        )
