#!/usr/bin/env python3
"""Exposure computation: SQL queries and time, set-based vs one buyer at a time.

    python3 tests/benchmarks/bench_exposure.py            # builds once, then reuses
    python3 tests/benchmarks/bench_exposure.py --rebuild

Two databases (``<prefix>_exposure_500`` and ``<prefix>_exposure_2000``) copied
from one with the addons and demo data, each holding N buyers of the demo
company with posted invoices (half in US dollars, one in ten a credit note,
some partly paid), a confirmed order not invoiced and, for one buyer in
three, a named limit. For each size it computes every buyer's cover (a) in
one batch, as the partner fields and the order check do, and (b) buyer by
buyer, as a naive computed field would, and prints a table.
"""

import statistics
import time

from _odoo import (
    clone_documents,
    count_queries,
    ensure_built,
    odoo_env,
    parse_args,
    print_table,
)

SIZES = [(500, 20), (2000, 50)]  # (buyers, invoices per buyer)
TEMPLATE_INVOICES = 10  # per template buyer; copied invoices_per_buyer / 10 times


def build(database, buyers_count, invoices_each):
    from odoo import Command

    with odoo_env(database, commit=True) as env:
        company = env.ref("credit_insurance.demo_company")
        env = env(context=dict(env.context, allowed_company_ids=[company.id]))
        usd = env.ref("base.USD")
        usd.active = True
        policy = env.ref("credit_insurance.demo_policy")
        tax = env["account.tax"].search(
            [
                ("company_id", "=", company.id),
                ("type_tax_use", "=", "sale"),
                ("country_id", "=", company.account_fiscal_country_id.id),
            ],
            limit=1,
        )
        template = env["res.partner"].create(
            {"name": "Bench template buyer", "is_company": True, "customer_rank": 1}
        )
        moves = env["account.move"].create(
            [
                {
                    "move_type": "out_refund" if n == 9 else "out_invoice",
                    "partner_id": template.id,
                    "invoice_date": "2026-01-15",
                    "currency_id": (usd if n % 2 else company.currency_id).id,
                    "invoice_line_ids": [
                        Command.create(
                            {
                                "name": "Tissu",
                                "price_unit": 300.0 + 100 * n,
                                "tax_ids": [Command.set(tax.ids)],
                            }
                        )
                    ],
                }
                for n in range(TEMPLATE_INVOICES)
            ]
        )
        moves.action_post()
        env["account.payment.register"].with_context(
            active_model="account.move", active_ids=moves[0].ids
        ).create({"amount": 100.0})._create_payments()
        product = env["product.product"].search([("sale_ok", "=", True)], limit=1)
        order = env["sale.order"].create(
            {
                "partner_id": template.id,
                "order_line": [
                    Command.create({"product_id": product.id, "price_unit": 900.0})
                ],
            }
        )
        order.action_confirm()
        buyers = env["res.partner"].create(
            [
                {"name": f"Bench buyer {i}", "is_company": True, "customer_rank": 1}
                for i in range(buyers_count)
            ]
        )
        clone_documents(env, template, buyers, copies=invoices_each // 10)
        env["credit.insurance.limit"].create(
            [
                {
                    "partner_id": buyer.id,
                    "policy_id": policy.id,
                    "requested_amount": 20000,
                    "granted_amount": 20000,
                    "date_effective": "2026-01-01",
                }
                for buyer in buyers[::3]
            ]
        )
        env.cr.execute("ANALYZE")


def measure(database):
    with odoo_env(database) as env:
        company = env.ref("credit_insurance.demo_company")
        buyers = env["res.partner"].search([("name", "=like", "Bench buyer %")])
        env.cr.execute(
            "SELECT count(*) FROM account_move_line WHERE partner_id = ANY(%s)",
            [buyers.ids],
        )
        lines = env.cr.fetchone()[0]
        env.cr.execute(
            "SELECT count(*) FROM account_move WHERE partner_id = ANY(%s)"
            " AND move_type IN ('out_invoice', 'out_refund')",
            [buyers.ids],
        )
        invoices = env.cr.fetchone()[0]
        cover = env["credit.insurance.cover"].with_company(company)
        cover._get_buyer_covers(buyers[:5])  # warm the registry caches
        batch = []
        for __ in range(5):
            env.invalidate_all()
            with count_queries(env) as run:
                cover._get_buyer_covers(buyers)
            batch.append(run)
        sample = buyers[:200]
        per_buyer = []
        with count_queries(env) as one_by_one:
            for buyer in sample:
                env.invalidate_all()
                started = time.perf_counter()
                cover._get_buyer_covers(buyer)
                per_buyer.append(time.perf_counter() - started)
        return {
            "buyers": len(buyers),
            "invoices": invoices,
            "lines": lines,
            "batch_queries": batch[-1]["queries"],
            "batch_ms": statistics.median(r["seconds"] for r in batch) * 1000,
            "single_queries": one_by_one["queries"] / len(sample),
            "single_ms": statistics.median(per_buyer) * 1000,
        }


def main():
    args = parse_args(__doc__.splitlines()[0])
    rows = []
    for buyers_count, invoices_each in SIZES:
        database = f"{args.db_prefix}_exposure_{buyers_count}"
        ensure_built(
            database,
            f"{args.db_prefix}_exposure_base",
            "credit_insurance",
            lambda db, n=buyers_count, each=invoices_each: build(db, n, each),
            args.rebuild,
        )
        rows.append(measure(database))
    print_table(
        (
            "buyers",
            "invoices",
            "journal items",
            "batch: queries",
            "queries per buyer",
            "batch: ms (median of 5)",
            "one by one: queries per buyer",
            "one by one: ms per buyer",
            "one by one, all buyers: ms",
        ),
        (
            (
                r["buyers"],
                r["invoices"],
                r["lines"],
                r["batch_queries"],
                f"{r['batch_queries'] / r['buyers']:.4f}",
                f"{r['batch_ms']:.0f}",
                f"{r['single_queries']:.1f}",
                f"{r['single_ms']:.1f}",
                f"{r['single_ms'] * r['buyers']:.0f}",
            )
            for r in rows
        ),
    )


if __name__ == "__main__":
    main()
