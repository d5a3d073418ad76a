"""Shared plumbing of the benchmark scripts: databases, environments, bulk data.

Benchmark data is built once per database and kept (``--rebuild`` starts
again): creating tens of thousands of invoices through the ORM would take
hours, so a few template documents are created through the ORM and then
copied for every buyer with plain SQL, and the tables are ANALYZEd so that
PostgreSQL plans as it would on a real database.
"""

import argparse
import contextlib
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
_configured = []
_installed = set()  # base databases installed by this run


def parse_args(description, **extra):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--db-prefix",
        default="bench",
        help="prefix of the benchmark databases (created if missing, then kept)",
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="drop and rebuild the databases"
    )
    for name, kwargs in extra.items():
        parser.add_argument(f"--{name.replace('_', '-')}", **kwargs)
    return parser.parse_args()


def _psql(*args):
    return subprocess.run(
        ["psql", "-X", "-q", "-t", "-A", "-d", "postgres", "-c", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def database_exists(name):
    return _psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"


def drop_database(name):
    _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def install_database(name, modules, addons_path=()):
    """Create ``name`` with ``modules`` and their demo data (a few minutes)."""
    paths = ",".join([str(ROOT), *map(str, addons_path)])
    print(f"installing {modules} in {name} (a few minutes)...", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "odoo", "-d", name, "-i", modules]
        + [f"--addons-path={paths}", "--stop-after-init", "--log-level=warn"],
        check=True,
    )


def copy_database(source, name):
    drop_database(name)
    _psql(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')


def ensure_built(database, base, modules, build, rebuild=False):
    """Make ``database`` once: a copy of ``base`` (``modules`` installed with
    their demo data, made if missing) filled by ``build(database)``; kept for
    the next runs unless ``rebuild``. Half-built data is never kept."""
    if database_exists(database) and not rebuild:
        return
    if not database_exists(base) or (rebuild and base not in _installed):
        drop_database(base)
        install_database(base, modules)
        _installed.add(base)
    copy_database(base, database)
    started = time.perf_counter()
    try:
        build(database)
    except BaseException:
        drop_database(database)
        raise
    finally:
        release(database)
    print(f"built {database} in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def print_table(header, rows):
    """A Markdown table: ``header`` then each row of ``rows`` (sequences of
    values already formatted, or plain values)."""
    print(" | ".join(header))
    print(" | ".join("---" for __ in header))
    for row in rows:
        print(" | ".join(str(value) for value in row))


@contextlib.contextmanager
def odoo_env(database, commit=False, addons_path=()):
    """Yield a superuser environment; rolled back unless ``commit``."""
    import odoo
    from odoo.modules.registry import Registry

    paths = ",".join([str(ROOT), *map(str, addons_path)])
    if not _configured:  # Odoo's configuration can be parsed only once
        odoo.tools.config.parse_config(["--addons-path", paths, "--log-level", "warn"])
        _configured.append(paths)
    registry = Registry(database)
    with registry.cursor() as cr:
        env = odoo.api.Environment(cr, odoo.SUPERUSER_ID, {})
        try:
            yield env
            if commit:
                env.flush_all()
                cr.commit()
        finally:
            cr.rollback()


def release(database):
    """Close this process's connections to ``database`` (to copy or drop it)."""
    import odoo
    from odoo.modules.registry import Registry

    Registry.delete(database)
    odoo.sql_db.close_db(database)


@contextlib.contextmanager
def count_queries(env):
    """Count SQL queries and wall time: ``with count_queries(env) as m: ...``."""
    measure = {}
    env.flush_all()
    before, start = env.cr.sql_log_count, time.perf_counter()
    yield measure
    measure["seconds"] = time.perf_counter() - start
    measure["queries"] = env.cr.sql_log_count - before


def _columns(cr, table):
    cr.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = %s AND column_name != 'id' ORDER BY ordinal_position",
        [table],
    )
    return [row[0] for row in cr.fetchall()]


# Table and column names below are constants or read from the catalog.
def _copy_rows(cr, table, mapping, parent_column, replace):
    """Copy the rows of ``table`` whose ``parent_column`` is an old id of the
    temporary table ``mapping`` (old_id, new_id, buyer_id), pointing them at
    the new parent; ``replace`` gives SQL expressions for other columns
    (``src`` is the copied row, ``map`` the mapping row)."""
    columns = _columns(cr, table)
    expressions = [
        "map.new_id"
        if column == parent_column
        else replace.get(column, f"src.{column}")
        for column in columns
    ]
    cr.execute(
        f"INSERT INTO {table} ({', '.join(columns)})"
        f" SELECT {', '.join(expressions)}"
        f" FROM {mapping} map JOIN {table} src ON src.{parent_column} = map.old_id"
    )


def clone_documents(env, template_buyer, buyers, copies=1):
    """Give every buyer ``copies`` copies of the template buyer's invoices
    (with their journal items, residual amounts included) and sale orders
    (with their lines), in a handful of SQL statements."""
    cr = env.cr
    env.flush_all()
    buyer_ids = buyers.ids
    partner = "CASE WHEN src.{0} = {1} THEN map.buyer_id ELSE src.{0} END"

    def remap(*columns):
        return {c: partner.format(c, template_buyer.id) for c in columns}

    for table, lines, parent, name in (
        ("account_move", "account_move_line", "move_id", "name"),
        ("sale_order", "sale_order_line", "order_id", "name"),
    ):
        cr.execute(f"DROP TABLE IF EXISTS bench_map_{table}")
        cr.execute(
            f"CREATE TEMP TABLE bench_map_{table} AS"
            f" SELECT doc.id AS old_id, nextval('{table}_id_seq') AS new_id,"
            f"        buyer.id AS buyer_id"
            f"   FROM {table} doc, unnest(%s) buyer(id), generate_series(1, %s)"
            f"  WHERE doc.partner_id = %s",
            [buyer_ids, copies, template_buyer.id],
        )
        header = {
            "id": "map.new_id",
            name: f"src.{name} || '/' || map.new_id",
            **remap(
                "partner_id",
                "commercial_partner_id",
                "partner_shipping_id",
                "partner_invoice_id",
            ),
        }
        columns = ["id", *_columns(cr, table)]
        cr.execute(
            f"INSERT INTO {table} ({', '.join(columns)})"
            f" SELECT {', '.join(header.get(c, f'src.{c}') for c in columns)}"
            f" FROM bench_map_{table} map JOIN {table} src ON src.id = map.old_id"
        )
        _copy_rows(
            cr,
            lines,
            f"bench_map_{table}",
            parent,
            remap("partner_id", "order_partner_id"),
        )
    cr.execute("ANALYZE")
    env.invalidate_all()
