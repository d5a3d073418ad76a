#!/usr/bin/env python3
"""Export cover: what the export rules cost on top of the core cover computation.

    python3 tests/benchmarks/bench_bpi_export_cover.py            # builds once
    python3 tests/benchmarks/bench_bpi_export_cover.py --rebuild

Databases ``<prefix>_bpi_500`` and ``<prefix>_bpi_2000`` are copied from one
with credit_insurance and credit_insurance_bpi_export and their demo data;
each holds N buyers abroad spread over eight countries (invoices half in US
dollars, one in ten a credit note, a confirmed order not invoiced). Every
buyer's cover is computed in one batch (a) under the demo export policy with
a cap on each of the eight countries and a political event in one of them,
and (b) with the export policy ended, so that the same buyers fall under the
global policy: the difference is the price of the export rules.
"""

import statistics

from _odoo import (
    clone_documents,
    count_queries,
    ensure_built,
    odoo_env,
    parse_args,
    print_table,
)

SIZES = [(500, 20), (2000, 20)]  # (buyers, invoices per buyer)
COUNTRIES = ["us", "ma", "de", "it", "es", "cn", "in", "br"]
EXPORT_POLICY = "credit_insurance_bpi_export.demo_policy_export"


def build(database, buyers_count, invoices_each):
    from odoo import Command

    with odoo_env(database, commit=True) as env:
        company = env.ref("credit_insurance.demo_company")
        env = env(context=dict(env.context, allowed_company_ids=[company.id]))
        usd = env.ref("base.USD")
        usd.active = True
        countries = [env.ref(f"base.{code}") for code in COUNTRIES]
        env.ref(EXPORT_POLICY).write(
            {
                "excluded_oecd_category_ids": [Command.clear()],
                "country_cap_ids": [Command.clear()]
                + [
                    Command.create({"country_id": c.id, "cap_amount": 5_000_000})
                    for c in countries
                ],
            }
        )
        env["credit.insurance.political.event"].create(
            {
                "country_id": countries[-1].id,
                "event_type": "moratorium",
                "date_start": "2026-01-01",
            }
        )
        template = env["res.partner"].create(
            {
                "name": "Bench export template",
                "is_company": True,
                "customer_rank": 1,
                "country_id": countries[0].id,
            }
        )
        moves = env["account.move"].create(
            [
                {
                    "move_type": "out_refund" if n == 9 else "out_invoice",
                    "partner_id": template.id,
                    "invoice_date": "2026-01-15",
                    "currency_id": (usd if n % 2 else company.currency_id).id,
                    "invoice_line_ids": [
                        Command.create({"name": "Tissu", "price_unit": 300.0 + 100 * n})
                    ],
                }
                for n in range(10)
            ]
        )
        moves.action_post()
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
                {
                    "name": f"Bench export buyer {i}",
                    "is_company": True,
                    "customer_rank": 1,
                    "country_id": countries[i % len(countries)].id,
                }
                for i in range(buyers_count)
            ]
        )
        clone_documents(env, template, buyers, copies=invoices_each // 10)
        env.cr.execute("ANALYZE")


def run_batches(env, cover, buyers):
    cover._get_buyer_covers(buyers[:5])  # warm the registry caches
    runs = []
    for __ in range(5):
        env.invalidate_all()
        with count_queries(env) as run:
            covers = cover._get_buyer_covers(buyers)
        runs.append(run)
    return covers, runs[-1]["queries"], statistics.median(r["seconds"] for r in runs)


def measure(database):
    with odoo_env(database) as env:
        company = env.ref("credit_insurance.demo_company")
        buyers = env["res.partner"].search([("name", "=like", "Bench export buyer %")])
        cover = env["credit.insurance.cover"].with_company(company)
        covers, export_queries, export_s = run_batches(env, cover, buyers)
        blocked = sum(1 for c in covers.values() if getattr(c, "block_reason", ""))
        # The same buyers under the global policy only (rolled back at the end).
        env.ref(EXPORT_POLICY).write(
            {"date_start": "2019-01-01", "date_end": "2020-01-01"}
        )
        __, core_queries, core_s = run_batches(env, cover, buyers)
        return {
            "buyers": len(buyers),
            "blocked": blocked,
            "export_queries": export_queries,
            "export_ms": export_s * 1000,
            "core_queries": core_queries,
            "core_ms": core_s * 1000,
        }


def main():
    args = parse_args(__doc__.splitlines()[0])
    rows = []
    for buyers_count, invoices_each in SIZES:
        database = f"{args.db_prefix}_bpi_{buyers_count}"
        ensure_built(
            database,
            f"{args.db_prefix}_bpi_base",
            "credit_insurance,credit_insurance_bpi_export",
            lambda db, n=buyers_count, each=invoices_each: build(db, n, each),
            args.rebuild,
        )
        rows.append(measure(database))
    print_table(
        (
            "buyers abroad",
            "blocked (political event)",
            "export rules: queries",
            "export rules: ms (median of 5)",
            "global policy only: queries",
            "global policy only: ms (median of 5)",
        ),
        (
            (
                r["buyers"],
                r["blocked"],
                r["export_queries"],
                f"{r['export_ms']:.0f}",
                r["core_queries"],
                f"{r['core_ms']:.0f}",
            )
            for r in rows
        ),
    )


if __name__ == "__main__":
    main()
