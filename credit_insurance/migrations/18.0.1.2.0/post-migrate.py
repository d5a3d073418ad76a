"""Turnover declarations made before 18.0.1.2.0: keep their declared figures.

- Each invoice and credit note now counts in one declaration only: record
  the moves each declared declaration counted under the rules of its time
  (period, policy, term within the maximum, not the seller's own companies;
  credit notes of such invoices), so that none is counted again as a
  regularisation.
- The premium is now per line (rates by country) and the minimum premium a
  year-end adjustment: existing lines take their declaration's rate, and the
  minimum premium share a declared declaration carried becomes its
  adjustment, so that its premium due stays what was declared.
- Declarations still to declare are computed again under the new rules
  before they are declared.
"""


def migrate(cr, version):
    if not version:
        return
    cr.execute(
        """
        INSERT INTO credit_insurance_turnover_declaration_move_rel
                    (declaration_id, move_id)
        SELECT declaration.id, move.id
          FROM credit_insurance_turnover_declaration declaration
          JOIN account_move move
            ON move.company_id = declaration.company_id
           AND move.state = 'posted'
           AND move.invoice_date BETWEEN declaration.date_from AND declaration.date_to
     LEFT JOIN account_move origin ON origin.id = move.reversed_entry_id
         WHERE declaration.state = 'declared'
           AND CASE move.move_type
               WHEN 'out_invoice' THEN
                    move.credit_insurance_policy_id = declaration.policy_id
                    AND NOT COALESCE(move.credit_insurance_term_exceeded, FALSE)
               WHEN 'out_refund' THEN
                    origin.credit_insurance_policy_id = declaration.policy_id
               ELSE FALSE END
           AND move.commercial_partner_id NOT IN (SELECT partner_id FROM res_company)
           AND NOT EXISTS (
                SELECT FROM credit_insurance_turnover_declaration_move_rel rel
                 WHERE rel.declaration_id = declaration.id)
        ON CONFLICT DO NOTHING
        """
    )
    cr.execute(
        """
        UPDATE credit_insurance_turnover_declaration_line line
           SET premium_rate = declaration.premium_rate,
               premium_amount = ROUND(
                   (line.turnover_amount * declaration.premium_rate / 100)::numeric,
                   currency.decimal_places)
          FROM credit_insurance_turnover_declaration declaration
          JOIN res_currency currency ON currency.id = declaration.currency_id
         WHERE declaration.id = line.declaration_id
           AND line.premium_amount IS NULL
        """
    )
    cr.execute(
        """
        UPDATE credit_insurance_turnover_declaration
           SET minimum_premium_adjustment = GREATEST(premium_due - premium_amount, 0)
         WHERE state = 'declared'
        """
    )
    cr.execute(
        """
        UPDATE credit_insurance_turnover_declaration
           SET minimum_premium_adjustment = 0,
               premium_due = premium_amount,
               date_computed = NULL
         WHERE state = 'draft'
        """
    )
