"""After 18.0.1.1.0 loads: cover fixed at delivery, instalments declared one
by one.

- Posted insured invoices get the terms of their cover as on their invoice
  (delivery) date: the named decision in force then (from the limit
  history), or the policy's discretionary limit; their policy stays the one
  recorded at posting. Then each buyer's limits are shared among its open
  invoices, oldest first (the insured part of each).
- Declaration lines name their instalment (receivable line). A declared
  invoice with several instalments gets one line per instalment in the same
  declaration, reported when the invoice was, so that none is declared
  twice; an extension applies to the instalment it moved (the last one).
- Extensions granted before the update were in force at once: they are
  recorded as in force since their request.
"""

from collections import defaultdict

from odoo import SUPERUSER_ID, api
from odoo.tools import SQL


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    _fix_delivery_terms(env)
    _declaration_lines_per_instalment(env)
    cr.execute(
        """
        UPDATE credit_insurance_declaration declaration
           SET extension_applied_date = declaration.create_date::date
          FROM credit_insurance_declaration_line line, account_move_line instalment
         WHERE line.declaration_id = declaration.id
           AND instalment.id = line.move_line_id
           AND declaration.category = 'extension'
           AND declaration.extension_applied_date IS NULL
           AND instalment.credit_insurance_extended_due_date
               = declaration.requested_due_date
        """
    )
    env["credit.insurance.declaration"].invalidate_model(["extension_applied_date"])


def _fix_delivery_terms(env):
    Move = env["account.move"]
    invoices = Move.search(
        [
            ("move_type", "=", "out_invoice"),
            ("state", "=", "posted"),
            ("credit_insurance_policy_id", "!=", False),
        ]
    )
    Cover = env["credit.insurance.cover"]
    terms = []
    for (company, day), moves in invoices.grouped(
        lambda m: (m.company_id, m.invoice_date or m.date)
    ).items():
        covers = Cover.with_company(company)._get_buyer_covers(
            moves.commercial_partner_id, date=day
        )
        for move in moves:
            cover = covers.get(move.commercial_partner_id.id)
            terms.append(
                (
                    move.id,
                    cover.decision.id or None if cover else None,
                    cover.limit if cover else 0.0,
                    cover.coverage_pct if cover else 0.0,
                )
            )
    _update_terms(env, terms)
    Move.invalidate_model()
    Cover._allocate_insured_amounts(invoices.commercial_partner_id)
    for name in (
        "credit_insurance_cover_state",
        "credit_insurance_declaration_deadline",
    ):
        env.add_to_compute(Move._fields[name], invoices)
    invoices._recompute_recordset(
        ["credit_insurance_cover_state", "credit_insurance_declaration_deadline"]
    )
    invoices.flush_recordset()


def _update_terms(env, terms):
    """Write the terms in batches of plain SQL (the fields are computed at
    posting: writing them through the ORM is not their way)."""
    for start in range(0, len(terms), 1000):
        env.cr.execute(
            SQL(
                """
                UPDATE account_move move
                   SET credit_insurance_limit_id = terms.limit_id,
                       credit_insurance_delivery_limit = terms.amount,
                       credit_insurance_coverage_pct = terms.coverage,
                       credit_insurance_stopped = FALSE
                  FROM (VALUES %s) AS terms(id, limit_id, amount, coverage)
                 WHERE move.id = terms.id
                """,
                SQL(", ").join(
                    SQL(
                        "(%s, %s::integer, %s::numeric, %s::float8)",
                        *row,
                    )
                    for row in terms[start : start + 1000]
                ),
            )
        )


def _declaration_lines_per_instalment(env):
    Line = env["credit.insurance.declaration.line"]
    lines = Line.search([("move_line_id", "=", False)])
    if not lines:
        return
    extra = []
    targets = defaultdict(list)  # {instalment id: [declaration line ids]}
    for line in lines:
        instalments = line.move_id._credit_insurance_instalments()
        if not instalments:
            continue
        # An extension moved the last due date; an overdue starts with the
        # first one, the others join it.
        first = instalments[-1] if line.category == "extension" else instalments[0]
        targets[first.id].append(line.id)
        if line.category == "overdue":
            extra += [
                {
                    "declaration_id": line.declaration_id.id,
                    "move_id": line.move_id.id,
                    "move_line_id": instalment.id,
                    "date_filed": line.date_filed,
                    "amount_filed": 0.0,
                }
                for instalment in instalments[1:]
            ]
    for instalment_id, line_ids in targets.items():
        env.cr.execute(
            "UPDATE credit_insurance_declaration_line SET move_line_id = %s "
            "WHERE id = ANY(%s)",
            [instalment_id, line_ids],
        )
    lines.invalidate_recordset(["move_line_id"])
    computed = [
        "due_date",
        "deadline",
        "amount_residual",
        "amount_residual_company",
    ]
    for name in computed:
        env.add_to_compute(Line._fields[name], lines)
    lines._recompute_recordset(computed)
    if extra:
        Line.create(extra)
    lines.flush_recordset()
