"""Before 18.0.1.1.0 loads: each instalment gets its own due date and deadline.

Columns the new version computes are created and filled here, in plain SQL,
so that the update neither recomputes them for every journal item nor
changes a deadline silently: policies keep the deadline model of the version
before (N days after the due date), and an extension granted before the
update keeps its due date, now on the instalment it extended (the last one:
the version before extended the invoice's due date, its last instalment's).
"""


def migrate(cr, version):
    if not version:
        return
    # One open declaration per instalment now (was: per invoice).
    cr.execute("DROP INDEX IF EXISTS credit_insurance_declaration_line_open_move_uniq")
    cr.execute(
        """
        ALTER TABLE account_move_line
            ADD COLUMN IF NOT EXISTS credit_insurance_extended_due_date date,
            ADD COLUMN IF NOT EXISTS credit_insurance_declaration_deadline date;
        ALTER TABLE account_move
            ADD COLUMN IF NOT EXISTS credit_insurance_limit_id integer,
            ADD COLUMN IF NOT EXISTS credit_insurance_delivery_limit numeric,
            ADD COLUMN IF NOT EXISTS credit_insurance_coverage_pct double precision,
            ADD COLUMN IF NOT EXISTS credit_insurance_stopped boolean,
            ADD COLUMN IF NOT EXISTS credit_insurance_dispute_cleared_date date;
        ALTER TABLE credit_insurance_declaration_line
            ADD COLUMN IF NOT EXISTS move_line_id integer;
        ALTER TABLE credit_insurance_policy
            ADD COLUMN IF NOT EXISTS deadline_model varchar;
        UPDATE credit_insurance_policy SET deadline_model = 'due_date'
         WHERE deadline_model IS NULL;
        """
    )
    # The extension of an invoice's due date moves to its last instalment.
    cr.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'account_move' "
        "AND column_name = 'credit_insurance_extended_due_date'"
    )
    if cr.fetchone():
        _move_extensions_to_instalments(cr)
    _deadlines_of_instalments(cr)


def _move_extensions_to_instalments(cr):
    """The extension of an invoice's due date (the last instalment's, in the
    version before) moves to that instalment."""
    cr.execute(
        """
        UPDATE account_move_line line
           SET credit_insurance_extended_due_date
               = move.credit_insurance_extended_due_date
          FROM account_move move
         WHERE move.id = line.move_id
           AND move.credit_insurance_extended_due_date IS NOT NULL
           AND line.id = (
                SELECT last.id
                  FROM account_move_line last
                  JOIN account_account account ON account.id = last.account_id
                 WHERE last.move_id = move.id
                   AND account.account_type = 'asset_receivable'
              ORDER BY last.date_maturity DESC NULLS LAST, last.id DESC
                 LIMIT 1)
        """
    )


def _deadlines_of_instalments(cr):
    """Each instalment's deadline, as the version before counted it (and as
    the 'due_date' model does): due date (extended) + declaration period."""
    cr.execute(
        """
        UPDATE account_move_line line
           SET credit_insurance_declaration_deadline
               = COALESCE(line.credit_insurance_extended_due_date,
                          line.date_maturity)
                 + policy.declaration_days
          FROM account_move move, credit_insurance_policy policy,
               account_account account
         WHERE move.id = line.move_id
           AND policy.id = move.credit_insurance_policy_id
           AND account.id = line.account_id
           AND account.account_type = 'asset_receivable'
           AND move.move_type = 'out_invoice'
           AND COALESCE(line.credit_insurance_extended_due_date,
                        line.date_maturity) IS NOT NULL
        """
    )
