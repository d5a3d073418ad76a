#!/usr/bin/env python3
"""Overdue declarations: throughput, SQL queries and memory of the scheduled job.

    python3 tests/benchmarks/bench_declarations.py            # builds once, then reuses
    python3 tests/benchmarks/bench_declarations.py --rebuild
    python3 tests/benchmarks/bench_declarations.py --sizes 500 2000 --latency 0.02
    python3 tests/benchmarks/bench_declarations.py --serial   # + one call at a time

For each size N, a database ``<prefix>_declarations_<N>`` (built once, kept)
holds N buyers of the demo company with 25 posted invoices each, one in ten
overdue past the policy's trigger (so about 2.5 overdue invoices per buyer),
copied from a template buyer with plain SQL. Each measure runs on a fresh copy
of it, with the sandbox insurer started as a separate process answering every
call after ``--latency`` seconds. The job runs as the scheduler would run it
(committing, re-triggered while work remains) until every declaration is
filed, and the script prints: declarations filed per second, SQL queries per
declaration, peak memory, and whether the sandbox received each declaration
exactly once.
"""

import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request

from _odoo import (
    ROOT,
    clone_documents,
    copy_database,
    count_queries,
    drop_database,
    ensure_built,
    odoo_env,
    parse_args,
    print_table,
    release,
)
from stdnum import luhn

INVOICES_PER_BUYER = 25  # the template buyer's invoices, copied for each buyer
OVERDUE_EVERY = 10  # one invoice in ten is overdue


# ------------------------------------------------------------------ data


def valid_siren(prefix):
    """A SIREN from 8 digits and its Luhn key (only checked ones are sent)."""
    number = f"{prefix:08d}"
    return number + luhn.calc_check_digit(number)


def build(database, buyers_count):
    """Buyers, invoices copied from a template buyer, one in ten overdue."""
    from odoo import Command, fields

    with odoo_env(database, commit=True) as env:
        company = env.ref("credit_insurance.demo_company")
        env = env(context=dict(env.context, allowed_company_ids=[company.id]))
        tax = env.ref("credit_insurance.demo_tax_vat_20")
        today = fields.Date.today()
        template = env["res.partner"].create(
            {"name": "Bench template buyer", "is_company": True, "customer_rank": 1}
        )
        # Small amounts: the template's invoices all fit in the discretionary
        # limit, so they are insured (cover computed at posting, then copied).
        moves = env["account.move"].create(
            [
                {
                    "move_type": "out_invoice",
                    "partner_id": template.id,
                    "invoice_date": today,
                    "invoice_date_due": fields.Date.add(today, days=30),
                    "invoice_line_ids": [
                        Command.create(
                            {
                                "name": "Toile",
                                "price_unit": 100.0 + 10 * n,
                                "tax_ids": [Command.set(tax.ids)],
                            }
                        )
                    ],
                }
                for n in range(INVOICES_PER_BUYER)
            ]
        )
        moves.action_post()
        buyers = env["res.partner"].create(
            [
                {
                    "name": f"Bench buyer {n}",
                    "is_company": True,
                    "customer_rank": 1,
                    "country_id": env.ref("base.fr").id,
                    "company_registry": valid_siren(71000000 + n),
                }
                for n in range(buyers_count)
            ]
        )
        clone_documents(env, template, buyers)
        cr = env.cr
        # One copied invoice in ten (staggered per buyer): 40 days old at 30
        # days, i.e. 10 days overdue (past the 7-day trigger, 20 days before
        # the deadline).
        cr.execute(
            """
            UPDATE account_move m
               SET invoice_date = %(invoiced)s,
                   invoice_date_due = %(due)s,
                   credit_insurance_declaration_deadline = %(deadline)s
              FROM (SELECT id, commercial_partner_id AS buyer,
                           row_number() OVER (PARTITION BY commercial_partner_id
                                              ORDER BY id) AS n
                      FROM account_move
                     WHERE commercial_partner_id = ANY(%(buyers)s)) numbered
             WHERE m.id = numbered.id
               AND (numbered.n + numbered.buyer) %% %(every)s = 0
            """,
            {
                "invoiced": fields.Date.add(today, days=-40),
                "due": fields.Date.add(today, days=-10),
                "deadline": fields.Date.add(today, days=20),
                "buyers": buyers.ids,
                "every": OVERDUE_EVERY,
            },
        )
        cr.execute("ANALYZE")


# --------------------------------------------------------------- sandbox


class Sandbox:
    """The sandbox insurer in its own process (memory only), with latency."""

    def __init__(self, latency):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "credit_insurance" / "sandbox" / "server.py"),
                "--port",
                str(self.port),
                "--data-dir",
                "",
                "--latency",
                str(latency),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for __ in range(100):
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the sandbox insurer did not start")

    def stats(self):
        with urllib.request.urlopen(f"{self.url}/_admin/stats", timeout=10) as answer:
            return json.load(answer)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


# ------------------------------------------------------------- measure


def rss_mb():
    """Resident memory of this process now (MB)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def measure(database, latency, calls_in_flight=None):
    sandbox = Sandbox(latency)
    try:
        with odoo_env(database) as env:
            from odoo.addons.credit_insurance.models import credit_insurance_insurer

            default = credit_insurance_insurer.CONCURRENT_CALLS
            calls = calls_in_flight or default
            credit_insurance_insurer.CONCURRENT_CALLS = calls  # read at each batch
            env.ref("credit_insurance.demo_insurer").write(
                {"api_base_url": sandbox.url, "paused_until": False}
            )
            env.cr.commit()
            Declaration = env["credit.insurance.declaration"]
            started = time.perf_counter()
            while True:  # what the scheduler's triggers do
                __, more = Declaration._prepare_overdue_declarations()
                env.cr.commit()
                if not more:
                    break
            prepare_seconds = time.perf_counter() - started
            to_file = Declaration.search_count([("state", "=", "to_file")])
            rss = [rss_mb()]
            with count_queries(env) as filing:
                filed = 0
                while True:
                    done = Declaration._cron_declare_overdues()
                    filed += done
                    rss.append(rss_mb())
                    if not done:
                        break
            states = dict(Declaration._read_group([], ["state"], ["__count"]))
            through_api = set(
                Declaration.search([("filed_through_api", "=", True)]).mapped(
                    "idempotency_key"
                )
            )
            buyers = env["res.partner"].search_count(
                [("name", "=like", "Bench buyer %")]
            )
            invoices = env["account.move"].search_count(
                [("partner_id.name", "=like", "Bench buyer %")]
            )
            credit_insurance_insurer.CONCURRENT_CALLS = default
        stats = sandbox.stats()
    finally:
        sandbox.stop()
    received = stats["declarations"]
    return {
        "calls": calls,
        "through_api": len(through_api),
        "buyers": buyers,
        "invoices": invoices,
        "to_file": to_file,
        "filed": states.get("filed", 0),
        "prepare_s": prepare_seconds,
        "file_s": filing["seconds"],
        "queries": filing["queries"],
        "exchanged": filed,
        "rss_start": rss[0],
        "rss_max": max(rss),
        "received": len(received),
        "once": set(received) == through_api
        and all(count == 1 for count in received.values())
        and stats["duplicates"] == 0,
    }


def main():
    args = parse_args(
        __doc__.splitlines()[0],
        sizes={"type": int, "nargs": "+", "default": [500, 2000]},
        latency={"type": float, "default": 0.02},
        serial={
            "action": "store_true",
            "help": "also run the largest size with one call at a time",
        },
    )
    rows = []
    runs = [(size, None) for size in args.sizes]
    if args.serial:
        runs.append((max(args.sizes), 1))
    for size, calls_in_flight in runs:
        built = f"{args.db_prefix}_declarations_{size}"
        ensure_built(
            built,
            f"{args.db_prefix}_declarations_base",
            "credit_insurance",
            lambda db, n=size: build(db, n),
            args.rebuild,
        )
        run = f"{built}_run"
        copy_database(built, run)
        try:
            rows.append(measure(run, args.latency, calls_in_flight))
        finally:
            release(run)
            drop_database(run)
    print(
        f"sandbox latency {args.latency * 1000:.0f} ms per call, {os.cpu_count()} CPUs"
    )
    print_table(
        (
            "calls in flight",
            "buyers",
            "invoices",
            "declarations",
            "filed",
            "prepare s",
            "file s",
            "declarations/s",
            "queries/declaration",
            "memory MB: start, peak",
            "received once by the sandbox",
        ),
        (
            (
                r["calls"],
                r["buyers"],
                r["invoices"],
                r["to_file"],
                r["filed"],
                f"{r['prepare_s']:.1f}",
                f"{r['file_s']:.1f}",
                f"{r['filed'] / r['file_s']:.1f}",
                f"{r['queries'] / r['exchanged']:.1f}",
                f"{r['rss_start']:.0f}, {r['rss_max']:.0f}",
                (
                    f"{'yes' if r['once'] else 'NO'} ({r['received']} received, "
                    f"{r['through_api']} filed through the API)"
                ),
            )
            for r in rows
        ),
    )


if __name__ == "__main__":
    main()
