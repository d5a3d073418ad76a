from odoo import Command, api, fields, models
from odoo.exceptions import UserError, ValidationError

from .credit_insurance_claim import INDEMNIFIED_STATES


class CreditInsuranceClaimRecovery(models.Model):
    """An amount the buyer paid after the indemnity, and the entry passing the
    insurer's share back to it."""

    _name = "credit.insurance.claim.recovery"
    _description = "Recovery after indemnity"
    _order = "date desc, id desc"
    _check_company_auto = True

    claim_id = fields.Many2one(
        "credit.insurance.claim", required=True, index=True, ondelete="restrict"
    )
    company_id = fields.Many2one(related="claim_id.company_id", store=True)
    currency_id = fields.Many2one(related="claim_id.currency_id")
    date = fields.Date(required=True, default=fields.Date.context_today)
    amount = fields.Monetary(
        string="Recovered", required=True, help="Paid by the buyer after the indemnity."
    )
    insurer_share = fields.Monetary(
        string="Insurer's share",
        compute="_compute_insurer_share",
        store=True,
        help="Recovered amount × indemnity / insured loss: owed back to the insurer.",
    )
    payment_id = fields.Many2one(
        "account.payment",
        string="Buyer's payment",
        check_company=True,
        help="The payment the recovery came with, if recorded.",
    )
    move_id = fields.Many2one(
        "account.move", string="Entry", readonly=True, copy=False, check_company=True
    )

    @api.depends("amount", "claim_id.indemnity_amount", "claim_id.insured_loss")
    def _compute_insurer_share(self):
        for recovery in self:
            recovery.insurer_share = recovery.currency_id.round(
                recovery.amount * recovery.claim_id._recovery_ratio()
            )

    @api.constrains("amount")
    def _check_amount(self):
        for recovery in self:
            if recovery.amount <= 0:
                raise ValidationError(
                    self.env._("A recovery is an amount the buyer paid: give it.")
                )

    @api.model_create_multi
    def create(self, vals_list):
        for claim in self.env["credit.insurance.claim"].browse(
            [vals["claim_id"] for vals in vals_list]
        ):
            claim._check_manager()
            if claim.state not in INDEMNIFIED_STATES or not claim.indemnity_move_id:
                raise UserError(
                    self.env._(
                        "Claim %(claim)s has no indemnity yet: what the buyer pays "
                        "now simply reduces the claim.",
                        claim=claim.name,
                    )
                )
        recoveries = super().create(vals_list)
        for recovery in recoveries:
            recovery._post_share_entry()
        return recoveries

    @api.model
    def _record_from_partials(self, partials):
        """Buyer payments reconciled with a claim's invoices after its
        indemnity are recoveries (credit notes and write-offs are not)."""
        invoices = partials.debit_move_id.move_id.filtered(
            lambda move: move.move_type == "out_invoice"
        )
        if not invoices:
            return self
        claims = self.env["credit.insurance.claim"].search(
            [
                ("invoice_ids", "in", invoices.ids),
                ("state", "in", INDEMNIFIED_STATES),
                ("indemnity_move_id", "!=", False),
            ]
        )
        vals_list = []
        for partial in partials:
            invoice = partial.debit_move_id.move_id
            paid_by = partial.credit_move_id.move_id
            claim = claims.filtered(lambda c, invoice=invoice: invoice in c.invoice_ids)
            if claim and (paid_by.origin_payment_id or paid_by.statement_line_id):
                vals_list.append(
                    {
                        "claim_id": claim[:1].id,
                        "amount": partial.amount,
                        "date": paid_by.date,
                        "payment_id": paid_by.origin_payment_id.id,
                    }
                )
        return self.create(vals_list)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_posted(self):
        if self.filtered("move_id"):
            raise UserError(
                self.env._(
                    "A recovery passed back to the insurer cannot be deleted: "
                    "reverse its entry instead."
                )
            )

    def _post_share_entry(self):
        """Debit the recoveries account, credit the insurer's account."""
        self.ensure_one()
        claim = self.claim_id
        if claim.currency_id.is_zero(self.insurer_share):
            return
        policy = claim.policy_id
        insurer_partner = claim.insurer_id._get_accounting_partner()
        label = self.env._(
            "Insurer's share of a recovery on claim %(claim)s (%(buyer)s)",
            claim=claim.name,
            buyer=claim.partner_id.name,
        )
        move = (
            self.env["account.move"]
            .with_company(claim.company_id)
            .create(
                {
                    "move_type": "entry",
                    "journal_id": policy._claim_journal().id,
                    "date": self.date,
                    "ref": label,
                    "line_ids": [
                        Command.create(
                            {
                                "name": label,
                                "account_id": policy._claim_recovery_account().id,
                                "partner_id": claim.partner_id.id,
                                "debit": self.insurer_share,
                            }
                        ),
                        Command.create(
                            {
                                "name": label,
                                "account_id": policy._claim_insurer_account().id,
                                "partner_id": insurer_partner.id,
                                "credit": self.insurer_share,
                            }
                        ),
                    ],
                }
            )
        )
        move.action_post()
        self.move_id = move
        claim.message_post(
            body=self.env._(
                "Recovery of %(amount)s: %(share)s is owed back to the insurer "
                "(%(entry)s).",
                amount=claim.currency_id.format(self.amount),
                share=claim.currency_id.format(self.insurer_share),
                entry=move.name,
            )
        )
