# Two commands: `make demo` and `make test` (see README.rst).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
ADDONS := $(patsubst %/__manifest__.py,%,$(wildcard */__manifest__.py))
ADDONS_CSV := $(shell echo $(ADDONS) | tr ' ' ',')
DEMO_DB ?= credit_insurance_demo
TEST_DB ?= credit_insurance_test_$(shell date +%s)_$$$$
HTTP_PORT ?= 8069
ODOO := $(PYTHON) -m odoo --addons-path=$(CURDIR) --db-filter='^($(DEMO_DB)|credit_insurance_test_.*)$$'

.PHONY: help demo test check-odoo check-postgres check-browser requirements test-requirements lint

help:
	@echo "make demo   start the sandbox insurer, install (or update) the demo database $(DEMO_DB) and serve it on http://localhost:$(HTTP_PORT)"
	@echo "make test   run every test and linter on a fresh database, then drop it"
	@echo "            (with Odoo's own sale and account tests on the addons' database)"

# --- prerequisites: fail fast, one line each -------------------------------------

check-odoo:
	@$(PYTHON) -c "import odoo.release as r; assert r.version_info[:2] == (18, 0), r.version" 2>/dev/null \
	  || { echo "error: Odoo 18.0 is not importable by '$(PYTHON)' (python3 -c 'import odoo'); install it first, see README.rst." >&2; exit 1; }

check-postgres:
	@$(PYTHON) -c "import psycopg2; psycopg2.connect(dbname='postgres', connect_timeout=5).close()" 2>/dev/null \
	  || { echo "error: PostgreSQL is not reachable as user '$$(id -un)' (tried database 'postgres'); start it or set PGHOST/PGUSER, see README.rst." >&2; exit 1; }

requirements: check-odoo
	@$(PYTHON) -c "$$REQUIREMENTS_MET" requirements.txt 2>/dev/null || $(PYTHON) -m pip install -r requirements.txt

test-requirements: requirements
	@$(PYTHON) -c "$$REQUIREMENTS_MET" test-requirements.txt 2>/dev/null || $(PYTHON) -m pip install -r test-requirements.txt

# --- make demo --------------------------------------------------------------------
# The sandbox insurer runs in the background for as long as Odoo does; the demo
# insurer points at it.

SANDBOX_PORT ?= 8070
SANDBOX_DATA ?= $(CURDIR)/.sandbox-data

demo: check-odoo check-postgres requirements
	@mkdir -p $(SANDBOX_DATA); \
	$(PYTHON) credit_insurance/sandbox/server.py --port $(SANDBOX_PORT) --data-dir $(SANDBOX_DATA) \
	  >>$(SANDBOX_DATA)/server.log 2>&1 & sandbox=$$!; \
	$(PYTHON) credit_insurance_bpi_export/sandbox/soap_server.py --port 8071 \
	  >>$(SANDBOX_DATA)/soap.log 2>&1 & soap=$$!; \
	trap 'kill $$sandbox $$soap 2>/dev/null || true' EXIT INT TERM; \
	for i in $$(seq 50); do \
	  $(PYTHON) -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$(SANDBOX_PORT)/health', timeout=1)" 2>/dev/null && break; \
	  kill -0 $$sandbox 2>/dev/null || { echo "error: the sandbox insurer did not start, see $(SANDBOX_DATA)/server.log (port $(SANDBOX_PORT) busy? set SANDBOX_PORT)." >&2; exit 1; }; \
	  sleep 0.2; \
	done; \
	echo "Sandbox insurer on http://127.0.0.1:$(SANDBOX_PORT) (data in $(SANDBOX_DATA)); SOAP sandbox of the export intermediary on http://127.0.0.1:8071/soap"; \
	if $(PYTHON) -c "$$MODULE_INSTALLED" $(DEMO_DB) credit_insurance; then \
	  echo "Updating $(DEMO_DB)..."; $(ODOO) -d $(DEMO_DB) -u $(ADDONS_CSV) --stop-after-init --log-level=warn; \
	else \
	  echo "Creating $(DEMO_DB) with demo data (a few minutes)..."; \
	  $(ODOO) -d $(DEMO_DB) -i $(ADDONS_CSV) --load-language=fr_FR --stop-after-init --log-level=warn; \
	fi; \
	$(PYTHON) -c "$$POINT_DEMO_INSURER" $(DEMO_DB) http://127.0.0.1:$(SANDBOX_PORT); \
	echo "Odoo on http://localhost:$(HTTP_PORT) - login admin / admin - Ctrl-C stops it (and the sandbox insurer)."; \
	$(ODOO) -d $(DEMO_DB) --http-port=$(HTTP_PORT)

# --- make test --------------------------------------------------------------------

# Browser tours run in headless Chromium; Odoo skips them silently without it.
check-browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
	  || { echo "Chromium is missing: installing Debian's chromium for the browser tests..."; \
	       { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1; \
	       command -v chromium >/dev/null \
	       || { echo "error: the browser tests need headless Chromium and it could not be installed (apt-get install chromium)." >&2; exit 1; }; }

# After our tests, Odoo's own post-install suites of sale and account run on a
# copy of the freshly installed database (tests/odoo_suites/run_core_suites.py).
test: check-odoo check-postgres check-browser test-requirements
	@db=$(TEST_DB); status=0; \
	trap '$(PYTHON) -c "$$DROP_DB" '"$$db"' || true; $(PYTHON) -c "$$DROP_DB" '"$${db}_core"' || true' EXIT; \
	echo "== installing $(ADDONS_CSV) with demo data in $$db"; \
	$(ODOO) -d $$db -i $(ADDONS_CSV) --stop-after-init --log-level=warn || exit 1; \
	$(PYTHON) -m odoo db --addons-path=$(CURDIR) duplicate $$db $${db}_core >/dev/null || exit 1; \
	echo "== tests"; \
	$(PYTHON) -m pytest -p no:cacheprovider --odoo-database=$$db --odoo-addons-path=$(CURDIR) \
	  --odoo-http --odoo-log-level=warn -q -rs $(ADDONS) tests || status=1; \
	echo "== Odoo's own tests of sale and account, with the addons installed"; \
	$(PYTHON) tests/odoo_suites/run_core_suites.py --database $${db}_core || status=1; \
	echo "== linters"; \
	$(MAKE) --no-print-directory lint || status=1; \
	exit $$status

lint:
	@status=0; \
	ruff check . || status=1; \
	ruff format --check . || status=1; \
	$(PYTHON) -m pylint --rcfile=.pylintrc-mandatory $(ADDONS) || status=1; \
	oca-checks-odoo-module $(ADDONS) || status=1; \
	oca-checks-po --no-verbose --disable po-pretty-format $(wildcard $(addsuffix /i18n/*.po*,$(ADDONS))) || status=1; \
	exit $$status

# --- small Python helpers (kept here: the repository has no scripts folder) -------

define REQUIREMENTS_MET
import sys, importlib.metadata as md
from packaging.requirements import Requirement
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate():
            if not req.specifier.contains(md.version(req.name), prereleases=True):
                sys.exit(1)
endef
export REQUIREMENTS_MET

define MODULE_INSTALLED
import sys, psycopg2
try:
    cr = psycopg2.connect(dbname=sys.argv[1]).cursor()
    cr.execute("SELECT 1 FROM ir_module_module WHERE name = %s AND state = 'installed'", [sys.argv[2]])
    sys.exit(0 if cr.fetchone() else 1)
except psycopg2.Error:
    sys.exit(1)
endef
export MODULE_INSTALLED

# The demo insurers on the sandbox's port: its own API, and the Atradius,
# Coface and Allianz Trade dialects under their prefixes (Allianz Trade: one
# URL per API, with the sandbox markers of each).
define POINT_DEMO_INSURER
import sys, psycopg2
url = sys.argv[2]
urls = {
    "demo_insurer": {"api_base_url": url},
    "demo_insurer_atradius": {"api_base_url": url + "/atradius"},
    "demo_insurer_coface": {"api_base_url": url + "/coface"},
    "demo_insurer_allianz": {
        "login_api_url": url + "/allianz/uatm/v1/idp",
        "search_api_url": url + "/allianz/search/uatm-v2",
        "cover_api_url": url + "/allianz/uatm/riskinfo/v3",
    },
}
with psycopg2.connect(dbname=sys.argv[1]) as conn, conn.cursor() as cr:
    for xmlid, values in urls.items():
        columns = ", ".join(f"{column} = %s" for column in values)
        cr.execute(f"""UPDATE credit_insurance_insurer
                          SET {columns}, paused_until = NULL, locked_until = NULL
                        WHERE id = (SELECT res_id FROM ir_model_data
                                     WHERE module = 'credit_insurance' AND name = %s)""",
                   [*values.values(), xmlid])
endef
export POINT_DEMO_INSURER

define DROP_DB
import sys, psycopg2
conn = psycopg2.connect(dbname="postgres")
conn.autocommit = True
conn.cursor().execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % sys.argv[1])
print("== dropped", sys.argv[1])
endef
export DROP_DB
