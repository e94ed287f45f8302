# Two commands do everything on a fresh machine with Python 3.11 or 3.12:
#   make run    install what serving and the openstack CLI need, migrate,
#               bootstrap the admin user and serve on SQLite (./segmentd.db)
#   make test   install the test and lint tools too, lint and run the whole
#               suite on SQLite and PostgreSQL, then the Keystone tier

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# What is installed: serving + client (run), or everything (dev, a superset).
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
HOST ?= 127.0.0.1
PORT ?= 9696
# The suite's PostgreSQL pass; set SEGMENTD_TEST_NO_POSTGRES=1 to skip it on purpose.
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install install-run run settings-doc test lint audit test-sqlite test-postgres test-browser test-keystone bench clean

# A current pip: the venv's own (23.x on Python 3.11) resolves and installs
# this dependency tree markedly slower (bench/RESULTS-operator.md).
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[client]"
	touch $(RUN_STAMP)

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[client,test,lint]"
	touch $(RUN_STAMP) $(DEV_STAMP)

install-run: $(RUN_STAMP)
install: $(DEV_STAMP)

# bootstrap is idempotent: the first run creates the admin user and prints its
# password once; later runs only check it.  Unless SEGMENTD_PUBLIC_URL says
# otherwise, the token catalog advertises the address served.
run: install-run
	$(BIN)/segmentd bootstrap
	$(BIN)/segmentd serve --host $(HOST) --port $(PORT)

# The README's settings table, regenerated from the Settings model.
settings-doc: install-run
	$(BIN)/python -m segmentd.settings_doc --write README.md

lint: install
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/bandit -q -r src -lll
	@$(MAKE) --no-print-directory audit

# pip-audit needs PyPI's vulnerability data.  Where that service cannot be
# reached, it says so loudly and does not fail (set SEGMENTD_REQUIRE_AUDIT=1 to
# make that fatal); a known vulnerability always fails.
audit: install
	@out=$$($(BIN)/pip-audit --strict --skip-editable 2>&1); rc=$$?; \
	if [ $$rc -eq 0 ]; then echo "pip-audit: no known vulnerabilities"; \
	elif echo "$$out" | grep -q "known vulnerabilit"; then echo "$$out"; exit 1; \
	elif echo "$$out" | grep -q "could not be audited"; then \
		echo "pip-audit: WARNING: vulnerability service unreachable, dependencies NOT audited (README: Limits and guards)"; \
		[ -z "$$SEGMENTD_REQUIRE_AUDIT" ] || exit 1; \
	else echo "$$out"; exit $$rc; fi

test-sqlite: install
	$(BIN)/pytest -q tests --ignore=tests/keystone

test-postgres: install
	@if [ -n "$$SEGMENTD_TEST_NO_POSTGRES" ]; then \
		echo "SEGMENTD_TEST_NO_POSTGRES is set: skipping the PostgreSQL pass"; \
	else \
		SEGMENTD_TEST_DATABASE_URL="$(PG_TEST_URL)" $(BIN)/pytest -q tests --ignore=tests/keystone --ignore=tests/browser; \
	fi

# The console's browser tier alone (it also runs in test-sqlite, once; the
# PostgreSQL pass leaves it out).  Screenshots: test-artifacts/screenshots/.
# SEGMENTD_TEST_NO_BROWSER=1 skips it.
test-browser: install
	$(BIN)/pytest -q tests/browser

# The Keystone tier, once per `make test`: a real Keystone from PyPI in a
# virtualenv of its own (built on first use, cached under
# ~/.cache/segmentd-keystone) and segmentd on PostgreSQL (SQLite when
# SEGMENTD_TEST_NO_POSTGRES is set).  SEGMENTD_TEST_NO_KEYSTONE=1 skips it.
test-keystone: install
	@if [ "$$SEGMENTD_TEST_NO_KEYSTONE" = 1 ]; then \
		echo "SEGMENTD_TEST_NO_KEYSTONE=1: skipping the Keystone tier"; \
	elif [ -n "$$SEGMENTD_TEST_NO_POSTGRES" ]; then \
		$(BIN)/pytest -q tests/keystone; \
	else \
		SEGMENTD_TEST_DATABASE_URL="$(PG_TEST_URL)" $(BIN)/pytest -q tests/keystone; \
	fi

test: lint test-sqlite test-postgres test-keystone

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache src/*.egg-info
