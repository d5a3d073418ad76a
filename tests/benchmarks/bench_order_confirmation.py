#!/usr/bin/env python3
"""Order confirmation: time and SQL queries of the insured-limit check.

    python3 tests/benchmarks/bench_order_confirmation.py [--rebuild]

Three databases copied from the template ``ci_base`` (account, sale_management
and demo data), created on the first run and reused afterwards (``--rebuild``
recreates them):

- ``ord_bench_plain``: Odoo alone, the buyer has no policy — the reference;
- ``ord_bench_ours``: credit_insurance, a global policy in "block" mode (and
  named limits on every tenth buyer) covering every buyer;
- ``ord_bench_oca``: OCA sale_financial_risk 18.0 (AGPL-3), installed from
  PyPI into ``/tmp/bench-addons`` for this benchmark only, with the same limit
  on every buyer over open invoices, unpaid invoices and orders.

For each size, each database builds the same data inside one transaction that
is rolled back at the end: buyers, posted invoices (a few created through the
ORM, then duplicated with INSERT ... SELECT, then ANALYZE) and one confirmed,
not invoiced order per buyer. Fresh one-line quotations are then confirmed one
at a time, as an ordinary user with an empty cache, as in a new request; the
databases take turns, one confirmation each, so that a change of machine load
affects them alike. In the credit_insurance database every other quotation is
confirmed with the check skipped: the difference is the check's own cost.

Prints a table: median time and SQL queries per confirmation, and the time
compared with plain Odoo.
"""

import argparse
import contextlib
import json
import math
import os
import pathlib
import statistics
import subprocess
import sys
import time
from unittest.mock import patch

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE_DB = "ci_base"
OCA_DIR = pathlib.Path("/tmp/bench-addons")
OCA_ADDONS = OCA_DIR / "odoo" / "addons"
OCA_PACKAGES = [
    "odoo-addon-sale_financial_risk==18.0.*",
    "odoo-addon-account_financial_risk==18.0.*",
]
FLAVOURS = {
    # name: (database, modules to install, addons path)
    "plain": ("ord_bench_plain", [], [ROOT]),
    "ours": ("ord_bench_ours", ["credit_insurance"], [ROOT]),
    "oca": ("ord_bench_oca", ["sale_financial_risk"], [ROOT, OCA_ADDONS]),
}
LABELS = {  # the cases measured, in the order of the table
    "plain": "plain Odoo (no credit check)",
    "ours_unchecked": "credit_insurance DB, check skipped",
    "ours": "credit_insurance check",
    "oca": "OCA sale_financial_risk",
}
DATABASE_OF = {"plain": "plain", "ours_unchecked": "ours", "ours": "ours", "oca": "oca"}
LIMIT = 1e9  # every measured order fits: we time the check, not a refusal
MARK = "BENCH "  # prefix of the worker's answers on its stdout


# ----------------------------------------------------------- orchestration


def run(command, **kwargs):
    print("$", " ".join(map(str, command)), file=sys.stderr)
    subprocess.run(command, check=True, **kwargs)


def database_exists(name):
    import psycopg2

    with psycopg2.connect(dbname="postgres") as conn, conn.cursor() as cr:
        cr.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return bool(cr.fetchone())


def install_oca_addons():
    if (OCA_ADDONS / "sale_financial_risk").is_dir():
        return
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(OCA_DIR),
            *OCA_PACKAGES,
        ]
    )


def prepare_database(flavour, rebuild):
    database, modules, addons = FLAVOURS[flavour]
    if database_exists(database) and not rebuild:
        # Reused: bring our addon up to the code being measured.
        action = "-u" if flavour == "ours" else None
    else:
        run(["dropdb", "--if-exists", "--force", database])
        run(["createdb", "-T", TEMPLATE_DB, database])
        action = "-i"
    if modules and action:
        run(
            [
                sys.executable,
                "-m",
                "odoo",
                "-d",
                database,
                "--addons-path=" + ",".join(map(str, addons)),
                action,
                ",".join(modules),
                "--stop-after-init",
                "--log-level=warn",
            ]
        )


class Worker:
    """One process per database (each needs its own addons path)."""

    def __init__(self, flavour):
        self.flavour = flavour
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", flavour],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, **command):
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def receive(self):
        for line in self.process.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK) :])
        raise RuntimeError(f"the {self.flavour} worker stopped, see its log above")

    def call(self, **command):
        self.send(**command)
        return self.receive()

    def close(self):
        if self.process.poll() is None:
            self.send(cmd="quit")
            self.process.wait(timeout=120)


def orchestrate(args):
    install_oca_addons()
    for flavour in FLAVOURS:
        prepare_database(flavour, args.rebuild)
    workers = {flavour: Worker(flavour) for flavour in FLAVOURS}
    rows = []
    try:
        for buyers, lines in args.sizes:
            for worker in workers.values():  # the three build at the same time
                worker.send(cmd="build", buyers=buyers, lines=lines)
            built = {flavour: w.receive() for flavour, w in workers.items()}
            for worker in workers.values():
                worker.call(cmd="measure", count=args.warmup)
            samples = {case: {"seconds": [], "queries": []} for case in LABELS}
            for __ in range(args.rounds):
                for worker in workers.values():
                    result = worker.call(cmd="measure", count=args.per_round)
                    for case, measures in result.items():
                        for key in ("seconds", "queries"):
                            samples[case][key] += measures[key]
            rows.append((buyers, built, samples))
    finally:
        for worker in workers.values():
            worker.close()
    print_table(rows, args)


def print_table(rows, args):
    confirmations = args.rounds * args.per_round
    print(
        f"\n{confirmations} confirmations per case ({args.rounds} rounds of "
        f"{args.per_round}, the databases in turn; with and without the check "
        f"alternating in the credit_insurance one), after {args.warmup} for "
        f"warm-up; {os.cpu_count()} CPU(s), load average "
        f"{os.getloadavg()[0]:.1f} at the end.\n"
    )
    header = (
        "buyers",
        "posted invoice lines",
        "open orders",
        "confirmation",
        "median ms",
        "SQL queries",
        "vs plain",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for __ in header) + "|")
    for buyers, built, samples in rows:
        plain = statistics.median(samples["plain"]["seconds"])
        for case, label in LABELS.items():
            median = statistics.median(samples[case]["seconds"])
            low, high = min(samples[case]["queries"]), max(samples[case]["queries"])
            queries = str(low) if low == high else f"{low}-{high}"
            data = built[DATABASE_OF[case]]
            print(
                f"| {buyers:,} | {data['lines']:,} | {data['orders']:,} | {label} "
                f"| {median * 1000:.1f} | {queries} | "
                f"{(median / plain - 1) * 100:+.0f} % |"
            )
        checked = statistics.median(samples["ours"]["seconds"])
        unchecked = statistics.median(samples["ours_unchecked"]["seconds"])
        oca = statistics.median(samples["oca"]["seconds"])
        print(
            f"\n{buyers:,} buyers: the check costs {(checked - unchecked) * 1000:.1f} "
            f"ms ({(checked / unchecked - 1) * 100:+.0f} %) in its own database; "
            f"OCA's confirmation takes {oca / checked:.2f} times ours.\n"
        )


# ------------------------------------------------------------------ worker


def worker(flavour):
    """Answer the orchestrator's commands on one database (see Worker)."""
    import odoo
    from odoo.modules.registry import Registry

    database, __, addons = FLAVOURS[flavour]
    odoo.tools.config.parse_config(
        [
            "-d",
            database,
            "--addons-path=" + ",".join(map(str, addons)),
            "--log-level=warn",
        ]
    )
    registry = Registry(database)
    with registry.cursor() as cr:
        bench = Bench(cr, flavour)
        for line in sys.stdin:
            command = json.loads(line)
            if command["cmd"] == "quit":
                break
            if command["cmd"] == "build":
                answer = bench.build(command["buyers"], command["lines"])
            else:
                answer = bench.measure(command["count"])
            print(MARK + json.dumps(answer), flush=True)
        cr.rollback()


class Bench:
    def __init__(self, cr, flavour):
        from odoo import api

        self.cr = cr
        self.flavour = flavour
        root = api.Environment(cr, 1, {})
        company = root.ref("base.main_company")
        # An ordinary (not superuser) environment with the context the web
        # client sends.
        self.env = api.Environment(
            cr,
            root.ref("base.user_admin").id,
            {"allowed_company_ids": company.ids, "lang": "en_US", "tz": "Europe/Paris"},
        )
        self.company = self.env.company
        self.buyer_ids = []
        self.next_buyer = 0

    # data --------------------------------------------------------------

    def build(self, buyers_count, lines_target):
        """Buyers, posted invoices and confirmed orders, from scratch."""
        self.cr.rollback()
        self.env.invalidate_all()
        env = self.env
        self.product = env["product.product"].create(
            {"name": "Bench service", "type": "service", "list_price": 100.0}
        )
        self.tax = self.company.account_sale_tax_id
        template_buyer = env["res.partner"].create(
            {"name": "Bench buyer", "is_company": True, "customer_rank": 1}
        )
        if self.flavour == "oca":
            template_buyer.sudo().write(
                {
                    "credit_limit": LIMIT,
                    "risk_invoice_open_include": True,
                    "risk_invoice_unpaid_include": True,
                    "risk_sale_order_include": True,
                }
            )
        env.flush_all()
        self.buyer_ids = self._clone_partners(template_buyer, buyers_count)
        templates = self._template_invoices(template_buyer)
        lines_per_set = self._count(
            "SELECT COUNT(*) FROM account_move_line WHERE move_id = ANY(%s)",
            [templates.ids],
        )
        self._clone_moves(templates, math.ceil(lines_target / lines_per_set))
        order = self._order(template_buyer)
        order.action_confirm()
        env.flush_all()
        self._clone_orders(order)
        if self.flavour == "ours":
            self._policy()
        self.cr.execute(
            "ANALYZE res_partner, account_move, account_move_line, sale_order, "
            "sale_order_line"
        )
        env.invalidate_all()
        return {
            "lines": self._count(
                "SELECT COUNT(*) FROM account_move_line l "
                "JOIN account_move m ON m.id = l.move_id "
                "WHERE m.state = 'posted' AND m.move_type IN ('out_invoice', "
                "'out_refund') AND m.company_id = %s",
                [self.company.id],
            ),
            "orders": self._count(
                "SELECT COUNT(*) FROM sale_order WHERE state = 'sale' "
                "AND company_id = %s AND invoice_status != 'invoiced'",
                [self.company.id],
            ),
        }

    def _count(self, query, params):
        self.cr.execute(query, params)
        return self.cr.fetchone()[0]

    def _columns(self, table):
        self.cr.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY ordinal_position",
            [table],
        )
        return [name for (name,) in self.cr.fetchall()]

    def _clone(self, table, source, overrides, params):
        """INSERT INTO table SELECT each column of ``t`` (the row copied) or
        its override, FROM ``source`` (which joins ``t``)."""
        columns = [c for c in self._columns(table) if c != "id" or "id" in overrides]
        values = [overrides.get(column, f't."{column}"') for column in columns]
        quoted = ", ".join(f'"{column}"' for column in columns)
        self.cr.execute(
            f"INSERT INTO {table} ({quoted}) SELECT {', '.join(values)} FROM {source}",
            params,
        )

    def _clone_partners(self, template, count):
        self.cr.execute(
            "CREATE TEMP TABLE bench_partner_map AS "
            "SELECT nextval('res_partner_id_seq') AS new_id, g.i "
            "FROM generate_series(1, %s) g(i)",
            [count],
        )
        name = "'Bench buyer ' || m.i"
        self._clone(
            "res_partner",
            "bench_partner_map m JOIN res_partner t ON t.id = %(template)s",
            {
                "id": "m.new_id",
                "name": name,
                "complete_name": name,
                "display_name": name,
                "commercial_partner_id": "m.new_id",
                "ref": "'BENCH-' || m.i",
            },
            {"template": template.id},
        )
        self.cr.execute("SELECT new_id FROM bench_partner_map ORDER BY i")
        return [new_id for (new_id,) in self.cr.fetchall()]

    def _template_invoices(self, buyer):
        """Nine invoices and a credit note: three move lines each."""
        moves = self.env["account.move"].create(
            [
                {
                    "move_type": "out_refund" if n == 9 else "out_invoice",
                    "partner_id": buyer.id,
                    "invoice_date": "2026-01-15",
                    "invoice_line_ids": [
                        (
                            0,
                            0,
                            {
                                "product_id": self.product.id,
                                "price_unit": 100.0 + 37 * n,
                                "tax_ids": [(6, 0, self.tax.ids)],
                            },
                        )
                    ],
                }
                for n in range(10)
            ]
        )
        moves.action_post()
        self.env.flush_all()
        return moves

    def _clone_moves(self, templates, copies):
        """``copies`` of the template invoices, spread over the buyers."""
        self.cr.execute(
            "CREATE TEMP TABLE bench_move_map AS "
            "SELECT t.id AS old_id, nextval('account_move_id_seq') AS new_id, "
            "       (%(buyers)s::int[])[1 + (row_number() OVER () %% %(n)s)] "
            "       AS partner_id "
            "  FROM account_move t CROSS JOIN generate_series(1, %(copies)s) g "
            " WHERE t.id = ANY(%(templates)s)",
            {
                "buyers": self.buyer_ids,
                "n": len(self.buyer_ids),
                "copies": copies,
                "templates": templates.ids,
            },
        )
        name = "'BENCH/' || m.new_id"
        self._clone(
            "account_move",
            "bench_move_map m JOIN account_move t ON t.id = m.old_id",
            {
                "id": "m.new_id",
                "name": name,
                "payment_reference": name,
                "partner_id": "m.partner_id",
                "commercial_partner_id": "m.partner_id",
                "partner_shipping_id": "m.partner_id",
            },
            {},
        )
        self._clone(
            "account_move_line",
            "bench_move_map m JOIN account_move_line t ON t.move_id = m.old_id",
            {"move_id": "m.new_id", "move_name": name, "partner_id": "m.partner_id"},
            {},
        )

    def _order(self, buyer):
        return self.env["sale.order"].create(
            {
                "partner_id": buyer.id,
                "company_id": self.company.id,
                "order_line": [
                    (
                        0,
                        0,
                        {
                            "product_id": self.product.id,
                            "product_uom_qty": 3,
                            "tax_id": [(6, 0, self.tax.ids)],
                        },
                    )
                ],
            }
        )

    def _clone_orders(self, template):
        """One confirmed order not yet invoiced per buyer."""
        self.cr.execute(
            "CREATE TEMP TABLE bench_order_map AS "
            "SELECT nextval('sale_order_id_seq') AS new_id, partner_id "
            "FROM unnest(%s::int[]) AS partner_id",
            [self.buyer_ids],
        )
        self._clone(
            "sale_order",
            "bench_order_map m JOIN sale_order t ON t.id = %(template)s",
            {
                "id": "m.new_id",
                "name": "'BENCH-SO/' || m.new_id",
                "partner_id": "m.partner_id",
                "partner_invoice_id": "m.partner_id",
                "partner_shipping_id": "m.partner_id",
            },
            {"template": template.id},
        )
        line_overrides = {"order_id": "m.new_id", "order_partner_id": "m.partner_id"}
        if "risk_partner_id" in self._columns("sale_order_line"):
            line_overrides["risk_partner_id"] = "m.partner_id"  # OCA
        self._clone(
            "sale_order_line",
            "bench_order_map m JOIN sale_order_line t ON t.order_id = %(template)s",
            line_overrides,
            {"template": template.id},
        )

    def _policy(self):
        env = self.env
        insurer = env["credit.insurance.insurer"].create(
            {"name": "Bench insurer", "company_id": self.company.id}
        )
        policy = env["credit.insurance.policy"].create(
            {
                "name": f"BENCH-{len(self.buyer_ids)}",
                "insurer_id": insurer.id,
                "policy_type": "global",
                "company_id": self.company.id,
                "date_start": "2020-01-01",
                "discretionary_limit": LIMIT,
                "vat_covered": True,  # as OCA's risk, which counts taxes
                "enforcement_mode": "block",
            }
        )
        env["credit.insurance.limit"].create(
            [
                {
                    "partner_id": buyer_id,
                    "policy_id": policy.id,
                    "requested_amount": LIMIT,
                    "granted_amount": LIMIT,
                    "date_effective": "2020-01-01",
                }
                for buyer_id in self.buyer_ids[::10]
            ]
        )
        env.flush_all()

    # measure -----------------------------------------------------------

    def measure(self, count):
        """Confirm ``count`` fresh quotations of different buyers, one by one.

        With credit_insurance, every other one is confirmed with the check
        skipped: the difference is what the check costs in this very database.
        """
        env = self.env
        Partner = env["res.partner"]
        cases = ["ours", "ours_unchecked"] if self.flavour == "ours" else [self.flavour]
        buyers = []
        for __ in range(count * len(cases)):
            # Every 7th buyer: named limits (every 10th) and discretionary ones.
            buyers.append(self.buyer_ids[(self.next_buyer * 7) % len(self.buyer_ids)])
            self.next_buyer += 1
        quotations = [self._order(Partner.browse(buyer_id)) for buyer_id in buyers]
        env.flush_all()
        results = {case: {"seconds": [], "queries": []} for case in cases}
        for n, quotation in enumerate(quotations):
            case = cases[n % len(cases)]
            skip = (
                patch.object(
                    type(env["sale.order"]),
                    "_credit_insurance_check_confirmation",
                    lambda orders: [],
                )
                if case == "ours_unchecked"
                else contextlib.nullcontext()
            )
            env.invalidate_all()  # a new request starts with an empty cache
            with skip:
                started, before = time.perf_counter(), self.cr.sql_log_count
                result = quotation.action_confirm()
                env.flush_all()
                elapsed = time.perf_counter() - started
            results[case]["seconds"].append(elapsed)
            results[case]["queries"].append(self.cr.sql_log_count - before)
            if quotation.state != "sale":
                raise RuntimeError(f"{self.flavour}: not confirmed: {result}")
        return results


def parse_size(text):
    buyers, lines = text.lower().split("x")
    return int(buyers), int(lines)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        return worker(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rebuild", action="store_true", help="recreate the three databases"
    )
    parser.add_argument(
        "--sizes",
        type=lambda text: [parse_size(size) for size in text.split(",")],
        default=[(500, 20000), (2000, 100000)],
        help="BUYERSxLINES,... (default 500x20000,2000x100000)",
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-round", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    orchestrate(parser.parse_args())


if __name__ == "__main__":
    main()
