"""Run Odoo's own post-install test suites of the modules our addons extend,
on a database where the addons are installed, and fail on any failure that
does not also happen on plain Odoo.

    python3 tests/odoo_suites/run_core_suites.py --database DB [--addons-path PATH]

Prints one table (suite, tests run, failed, of which known to fail on plain
Odoo) and exits non-zero when a test fails that is not in ``known_failures.txt``,
when a test is skipped for a missing tool (Chromium, websocket-client), or
when a suite runs no test at all.

``known_failures.txt`` lists the core tests that fail on plain Odoo too, each
with its reason. Whenever that list changes, check it on plain Odoo:

    python3 tests/odoo_suites/run_core_suites.py --plain

installs ``sale`` alone in a fresh database (with demo data, as ``make test``
does for our addons), runs the same suites and reports which known failures
fail there too (an entry that passes on plain Odoo is an error).
"""

import argparse
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KNOWN_FAILURES = HERE / "known_failures.txt"

# (suite, test tags, how to tell its tests apart in the log)
SUITES = [
    ("sale", "/sale", re.compile(r"^odoo\.addons\.sale\.")),
    *(
        (f"account: {label}", f"/account:{test_class}", re.compile(rf"^{test_class}\."))
        for label, test_class in [
            ("invoices", "TestAccountMoveOutInvoiceOnchanges"),
            ("credit notes", "TestAccountMoveOutRefundOnchanges"),
            ("payments", "TestAccountPayment"),
            ("payment register", "TestAccountPaymentRegister"),
            ("reconciliation", "TestAccountMoveReconcile"),
        ]
    ),
]
# A test skipped for one of these reasons proved nothing: the tool must be there.
MISSING_TOOL = re.compile(r"chrom|websocket|browser", re.IGNORECASE)

LOG_LINE = re.compile(
    r"^\S+ \S+ \d+ (?P<level>[A-Z]+) \S+ (?P<logger>[\w.]+): (?P<message>.*)$"
)
STARTING = re.compile(r"^Starting (?P<test>\S+) \.\.\.$")
FAILED = re.compile(r"^(?P<flavour>FAIL|ERROR): (?P<test>\S+)")
SKIPPED = re.compile(r"^skipped (?P<test>\S+) : (?P<reason>.*)$")


def read_known_failures():
    """``{test id: reason}`` from known_failures.txt (``test id  # reason``)."""
    known = {}
    for line in KNOWN_FAILURES.read_text().splitlines():
        test, __, reason = line.partition("#")
        if test.strip():
            known[test.strip()] = reason.strip()
    return known


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def odoo(database, addons_path, *options, log):
    command = [
        sys.executable,
        "-m",
        "odoo",
        f"--addons-path={addons_path}",
        "-d",
        database,
        f"--db-filter=^{database}$",
        f"--http-port={free_port()}",
        "--stop-after-init",
        *options,
    ]
    with open(log, "a") as output:
        return subprocess.run(
            command, check=False, stdout=output, stderr=subprocess.STDOUT
        ).returncode


def run_suites(database, addons_path, log):
    """Run every suite in one Odoo process; its return code."""
    tags = ",".join(tags for __, tags, __ in SUITES)
    return odoo(
        database, addons_path, f"--test-tags={tags}", "--log-level=info", log=log
    )


def parse_log(log):
    """``(tests, failed, skipped, tracebacks)`` from Odoo's log: ``{test id:
    logger}`` of the tests started and of those failed, ``{test id: reason}``
    of skips, ``{test id: [log lines]}`` of failures."""
    tests, failed, skipped, tracebacks = {}, {}, {}, {}
    traceback = None
    for line in pathlib.Path(log).read_text(errors="replace").splitlines():
        match = LOG_LINE.match(line)
        if not match:
            if traceback is not None:
                traceback.append(line)
            continue
        traceback = None
        logger, message = match["logger"], match["message"].strip()
        if started := STARTING.match(message):
            tests[started["test"]] = logger
        elif match["level"] == "ERROR" and (failure := FAILED.match(message)):
            failed[failure["test"]] = logger
            traceback = tracebacks[failure["test"]] = [line]
        elif skip := SKIPPED.match(message):
            skipped[skip["test"]] = skip["reason"]
    return tests, failed, skipped, tracebacks


def suite_of(test, logger):
    for name, __, pattern in SUITES:
        if pattern.match(logger) or pattern.match(test):
            return name
    return "other"


def report(tests, failed, skipped, known, code, plain=False):
    rows = []
    problems = []
    for name, __, __ in SUITES:
        run = [t for t, logger in tests.items() if suite_of(t, logger) == name]
        fails = [t for t, logger in failed.items() if suite_of(t, logger) == name]
        known_fails = [t for t in fails if t in known]
        rows.append((name, len(run), len(fails), len(known_fails)))
        if not run:
            problems.append(
                f"{name}: no test ran (wrong tags, or the module is missing)"
            )
        if not plain:
            problems += [f"{name}: {t} failed" for t in fails if t not in known]
    for test, reason in skipped.items():
        if MISSING_TOOL.search(reason):
            problems.append(f"{test} skipped for a missing tool: {reason}")
    if plain:
        problems += [
            f"{test} is listed as failing on plain Odoo but passed there"
            for test in known
            if test in tests and test not in failed
        ]
    if code and not failed:
        problems.append(f"Odoo exited with code {code} without a failed test")

    header = ("suite", "tests run", "failed", "of which known to fail on plain Odoo")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(4)]
    print(" | ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    for test in sorted(failed):
        mark = f"known: {known[test]}" if test in known else "NOT KNOWN"
        print(f"  failed: {test} ({mark})")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return not problems


def plain_database(addons_path, log):
    """A fresh database with sale alone (and its dependencies), demo data."""
    database = f"odoo_suites_plain_{int(time.time())}"
    code = odoo(database, addons_path, "-i", "sale", "--log-level=warn", log=log)
    if code:
        sys.exit(f"error: could not install sale in {database}, see {log}")
    return database


def drop_database(database):
    import psycopg2  # Odoo's own dependency, needed here only

    conn = psycopg2.connect(dbname="postgres")
    conn.autocommit = True
    conn.cursor().execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="a database with our addons installed")
    parser.add_argument("--addons-path", default=str(ROOT))
    parser.add_argument(
        "--plain", action="store_true", help="run on a fresh plain Odoo database"
    )
    parser.add_argument("--log", help="where Odoo's output goes (default: a temp file)")
    args = parser.parse_args()
    if not args.plain and not args.database:
        parser.error("--database is required (or --plain)")
    log = args.log or tempfile.mktemp(prefix="odoo-suites-", suffix=".log")
    print(f"Odoo's output: {log}")
    started = time.time()
    database = plain_database(args.addons_path, log) if args.plain else args.database
    try:
        code = run_suites(database, args.addons_path, log)
    finally:
        if args.plain:
            drop_database(database)
    tests, failed, skipped, tracebacks = parse_log(log)
    known = read_known_failures()
    for test in sorted(set(failed) - set(known)):
        print("\n".join(tracebacks[test]), file=sys.stderr)
    ok = report(tests, failed, skipped, known, code, plain=args.plain)
    print(f"{len(tests)} tests in {time.time() - started:.0f} s")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
