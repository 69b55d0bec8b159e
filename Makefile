# Cairn: `make run` to try it, `make test` to check it. See README.md.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 5000
export CAIRN_INSTANCE_PATH ?= $(CURDIR)/instance
# Let Python keep the compiled modules: the suite and the deployments it starts spawn hundreds of
# processes, and with the environment's PYTHONDONTWRITEBYTECODE each compiled Cairn's ~220 modules
# again (1.3 s of CPU per process).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install run demo migrate test test-sqlite test-postgresql test-api suites suite-sqlite suite-postgresql suite-api parallel-sqlite parallel-postgresql lane-sqlite lane-postgresql serial-sqlite serial-postgresql lint format services worker bench vendor translations clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

migrate: install
	$(BIN)/cairn db upgrade

## Start the service on SQLite with inline jobs, demo data loaded on first run.
run: migrate
	$(BIN)/cairn seed-demo --if-empty
	$(BIN)/cairn run --host $(HOST) --port $(PORT)

## Load the demo estate (again) into the configured database.
demo: migrate
	$(BIN)/cairn seed-demo

services:
	@bash .ci/services.sh

## Refresh the web desk's browser libraries (htmx, Cytoscape.js, axe-core) from npm, pinned in
## web/vendor/package.json; the built files are committed under web/static/vendor with SHA256SUMS.
vendor:
	bash web/vendor/refresh.sh

## Extract the web desk's strings into web/translations/messages.pot (a translation is a .po file
## beside it: pybabel init -i web/translations/messages.pot -d web/translations -l de).
translations: install
	$(BIN)/pybabel extract -F web/babel.cfg -k _l -o web/translations/messages.pot web
	$(BIN)/pybabel compile -d web/translations --use-fuzzy 2>/dev/null || true

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	bash web/vendor/refresh.sh --check

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-sqlite: install services suite-sqlite
test-postgresql: install services suite-postgresql

## The OpenAPI document against the running service: schemathesis, every check and phase, on PostgreSQL.
test-api: install services suite-api

## Everything CI runs: services, lint, import layers, the suite on SQLite and on PostgreSQL, the API
## document, in two lanes side by side on the two cores: the SQLite suite, its browser and deployment
## tests (marked `serial` by tests/conftest.py), then the API document's run; the PostgreSQL suite,
## then its serial tests. The two serial parts never run at once (they would starve each other's
## processes): each takes a lock (the SQLite one usually ends before the PostgreSQL suite does).
## A lane goes on after a failing part, so one run shows every failure; each part's output is shown
## when it ends.
test: install services lint suites

suites:
	$(MAKE) --no-print-directory -j2 --output-sync=target lane-sqlite lane-postgresql

SERIAL_LOCK := $(shell command -v flock >/dev/null && echo flock $(VENV)/.serial-tests.lock)

lane-sqlite:
	@status=0; \
	$(MAKE) --no-print-directory parallel-sqlite || status=1; \
	$(SERIAL_LOCK) $(MAKE) --no-print-directory serial-sqlite || status=1; \
	$(MAKE) --no-print-directory suite-api || status=1; \
	exit $$status

lane-postgresql:
	@status=0; \
	$(MAKE) --no-print-directory parallel-postgresql || status=1; \
	$(SERIAL_LOCK) $(MAKE) --no-print-directory serial-postgresql || status=1; \
	exit $$status

PYTEST := $(BIN)/pytest -q --durations=10
ON_SQLITE := CAIRN_TEST_DATABASE=sqlite CAIRN_TEST_REDIS_URL=redis://127.0.0.1:6379/14 $(PYTEST)
ON_POSTGRESQL := CAIRN_TEST_DATABASE=postgresql CAIRN_TEST_REDIS_URL=redis://127.0.0.1:6379/15 $(PYTEST)

suite-sqlite:
	$(ON_SQLITE) $(PYTEST_ARGS)

suite-postgresql:
	$(ON_POSTGRESQL) $(PYTEST_ARGS)

parallel-sqlite:
	$(ON_SQLITE) -m "not serial" $(PYTEST_ARGS)

parallel-postgresql:
	$(ON_POSTGRESQL) -m "not serial" $(PYTEST_ARGS)

serial-sqlite:
	$(ON_SQLITE) -m serial $(PYTEST_ARGS)

serial-postgresql:
	$(ON_POSTGRESQL) -m serial $(PYTEST_ARGS)

suite-api:
	BIN=$(BIN) bash tests/api/run_schemathesis.sh

## An RQ worker on every queue the app uses (needs REDIS_URL).
worker: install
	$(BIN)/cairn worker

bench: install services
	$(BIN)/python benchmarks/api.py

clean:
	rm -rf $(VENV) instance .pytest_cache
