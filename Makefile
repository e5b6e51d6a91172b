# Two commands a new user needs: `make demo` and `make test`. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR):$(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.DEFAULT_GOAL := help
.PHONY: help install demo migrate sync airflow test test-slow test-celery test-deps kill-converge lint fmt bench bench-deps bench-dedup db-up db-down clean mutate preflight verify report

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	@touch $@

install: $(STAMP) ## create .venv and install the pinned dependencies

demo: $(STAMP) ## whole migration on the embedded PostgreSQL (sandbox built once, then reused)
	$(PY) -m migration_ops.cli demo

migrate: $(STAMP) ## run the phases in order against AIRFLOW_CONN_LEGACY_DB / AIRFLOW_CONN_SUPABASE_DB
	$(PY) -m migration_ops.cli migrate

sync: $(STAMP) ## run the nightly incremental sync once against AIRFLOW_CONN_LEGACY_DB / AIRFLOW_CONN_SUPABASE_DB
	$(PY) -m migration_ops.cli sync

preflight: $(STAMP) ## read-only checks before phase 1: drift, privileges, volumes, defects, pg_dump, space
	$(PY) -m migration_ops.cli preflight

verify: $(STAMP) ## row-level proof of the whole target against a fresh legacy snapshot
	$(PY) -m migration_ops.cli verify

report: $(STAMP) ## rewrite the latest run reports (HTML) and the sign-off summary
	$(PY) -m migration_ops.cli report

airflow: $(STAMP) ## local Airflow (api-server, scheduler, dag-processor) on http://localhost:8080
	$(PY) -m migration_ops.cli airflow

test: $(STAMP) test-deps ## the whole test suite (unit, DAG integrity, end-to-end on embedded PostgreSQL)
	$(PY) -m pytest -q

test-slow: $(STAMP) ## the slow tier: kill `migrate` at fixed points, rerun, compare (CI runs it too)
	$(PY) -m pytest -q -m slow

test-celery: $(STAMP) test-deps ## the Celery tier: scheduler, CeleryExecutor, Redis, a worker killed mid-load (CI runs it)
	$(PY) -m pytest -q -m celery

test-deps: ## system packages the browser and Celery tests need (redis-server, chromium), when missing
	@command -v redis-server >/dev/null && command -v chromium >/dev/null || \
	  { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq redis-server chromium chromium-driver >/dev/null; \
	    else echo "install redis-server and chromium (apt) for the browser and Celery tests" >&2; fi; }

kill-converge: $(STAMP) ## kill `migrate` at random moments N times (RUNS=10), rerun, compare
	$(PY) scripts/kill_converge.py --runs $${RUNS:-10}

mutate: $(STAMP) ## mutation check: each bug of tests/mutations.toml must fail its tests (slow; ONLY="id ..." for some)
	$(PY) scripts/mutate.py $(if $(ONLY),--only $(ONLY))

lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy plugins/migration_ops include

fmt: $(STAMP) ## format the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP) bench-deps bench-dedup ## benchmark, scale 1.0 (SCALE=, BENCH_ARGS=): steps vs raw COPY and pgloader, Airflow wall, reports/bench.json
	$(PY) scripts/bench.py --scale $${SCALE:-1.0} $(BENCH_ARGS)
	$(PY) scripts/bench_ai.py --scale $${SCALE:-1.0}

bench-deps: ## pgloader (apt), which `make bench` times beside the migration, when missing
	@command -v pgloader >/dev/null || \
	  { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq pgloader >/dev/null || echo "pgloader not installed" >&2; \
	    else echo "install pgloader (apt) to time it beside the migration" >&2; fi; }

bench-dedup: $(STAMP) ## de-duplication: precision, recall, F1, seconds (FEBRL, sandbox, 10k/100k)
	$(PY) scripts/bench_dedup.py

db-up: $(STAMP) ## start the embedded PostgreSQL and print the env exports for it
	$(PY) -m migration_ops.local_env up

db-down: $(STAMP) ## stop the embedded PostgreSQL (data kept in .local/)
	$(PY) -m migration_ops.local_env down

clean: db-down ## remove local databases, Airflow home and reports
	rm -rf .local reports
