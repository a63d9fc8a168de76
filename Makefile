# The two commands of the README's quick start, and their helpers.
#   make run        install into .venv, load the bundled sample data, run the main job,
#                   then serve the Dagster UI on http://127.0.0.1:3000 and the API on :8000
#   make test       install into .venv (with test tools), lint, run the whole test suite (CI runs this)
#   make test-fast  the edit loop: every test except the end-to-end ones (-m "not e2e"), on 2 workers,
#                   property tests with an eighth of their Hypothesis examples (`make test`: all)
#   make lint       ruff (lint + format check), mypy (core/ and db/, [tool.mypy]) and `dg check defs`

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
HOST ?= 127.0.0.1
PORT ?= 3000
API_PORT ?= 8000

.PHONY: install lock instance run dev sample lint test test-fast bench bench-api bench-scale clean

# The locked versions (uv.lock), installed by uv: a fresh install takes about half the time pip
# needs (docs/architecture.md, "Packages, and why"). uv is bootstrapped with pip inside the venv, so python3
# and its venv module are all a machine needs; it never downloads a Python of its own.
# --compile-bytecode: the .pyc files are written once here, so a process started where Python
# may not write them (PYTHONDONTWRITEBYTECODE, as on this machine) does not compile Dagster and
# polars from source at every start (each test worker, CLI and `dagster dev` process).
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never

$(BIN)/.installed: pyproject.toml setup.py uv.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'uv>=0.13,<1'
	$(BIN)/uv sync --quiet --locked --extra dev --compile-bytecode
	touch $@

install: $(BIN)/.installed

# After changing dependencies in pyproject.toml: re-resolve uv.lock (`make install` refuses a stale one).
lock:
	$(BIN)/uv lock

sample: install
	$(BIN)/storemon sample

# The local Dagster instance: the shipped settings, copied into DAGSTER_HOME.
instance:
	mkdir -p $(DAGSTER_HOME)
	cp deploy/local/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

# The main job on the embedded default (SQLite + bundled sample data), then the UI. Dagster 1.13
# calls `dagster job execute` superseded by `dg launch` (dagster-dg-cli) on every call; it is still
# supported and the notice is not for storemon's users, so that one message is filtered.
run: sample instance
	PYTHONWARNINGS='ignore:Function `job_execute_command` is superseded' \
		$(BIN)/dagster job execute -m storemon_assets.defs.definitions -j ingest_and_report_job
	@echo "report written to data/reports/combined_report.csv"
	$(MAKE) dev

# Dagster (webserver + daemon: sensors and schedule on) and the HTTP API beside it, as one
# command that one Ctrl-C or SIGTERM stops whole (storemon_assets/dev.py). `exec`: make's child
# is that command itself, so a SIGTERM make passes on reaches it.
dev: install instance
	exec $(BIN)/storemon dev --host $(HOST) --port $(PORT) --api-port $(API_PORT)

lint: install instance
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/dg check defs

# The tests may write bytecode even where the environment says not to (PYTHONDONTWRITEBYTECODE, as on
# this machine): otherwise every worker and every `storemon`/Dagster process a test starts compiles
# storemon_assets and pytest rewrites every test module again (~2.5 s of CPU per process that imports them);
# the .pyc files go to the (git-ignored) __pycache__ folders beside the sources.
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest

test: lint
	$(PYTEST)

# Two workers (pytest-xdist), one per core: about half the wall time of one. `--dist worksteal`:
# each worker starts on one half of the tests in file order and takes tests from the other's queue
# once its own is empty, so a file's module fixtures are mostly built by one worker only and neither
# worker idles at the end. The "fast" Hypothesis profile (storemon_tests/conftest.py) runs an eighth
# of each property test's examples; `make test` and CI run them all.
test-fast: install
	$(PYTEST) -m "not e2e" -n 2 --dist worksteal --hypothesis-profile=fast

# The history series on SQLite; with POSTGRES=<url of a database it may empty>, on PostgreSQL too.
bench: install
	$(BIN)/python scripts/benchmark.py $(if $(POSTGRES),--postgres $(POSTGRES))

# Requests/s and latency of polling a finished report, against dagster dev + storemon api.
bench-api: install
	$(BIN)/python scripts/api_benchmark.py

# Report job through Dagster with 1 vs N store shards (multiprocess); L10: STORES=136000.
STORES ?= 13600
SHARDS ?= 1,2,4
bench-scale: install
	$(BIN)/python scripts/benchmark_scale.py --stores $(STORES) --days 8 --shards $(SHARDS) --repeat 3

clean:
	rm -rf data/reports data/storemon.db* data/dagster_home
