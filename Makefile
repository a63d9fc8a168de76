# The two commands of the README's quick start, and their helpers.
#   make run   install into .venv, load the bundled sample data, run the main job,
#              then serve the Dagster UI on http://127.0.0.1:3000 and the API on :8000
#   make test  install into .venv (with test tools) and run the whole test suite

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
HOST ?= 127.0.0.1
PORT ?= 3000
API_PORT ?= 8000

.PHONY: install instance run dev sample report test bench clean

$(BIN)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

sample: install
	$(BIN)/storemon sample

# The local Dagster instance: the shipped settings, copied into DAGSTER_HOME.
instance:
	mkdir -p $(DAGSTER_HOME)
	cp deploy/local/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

# The main job on the embedded default (SQLite + bundled sample data), then the UI.
run: sample instance
	$(BIN)/dagster job execute -m storemon_assets.defs.definitions -j ingest_and_report_job
	@echo "report written to data/reports/combined_report.csv"
	$(MAKE) dev

# Dagster (webserver + daemon: sensors and schedule on) and the HTTP API beside it, as one
# command that one Ctrl-C or SIGTERM stops whole (storemon_assets/dev.py). `exec`: make's child
# is that command itself, so a SIGTERM make passes on reaches it.
dev: install instance
	exec $(BIN)/storemon dev --host $(HOST) --port $(PORT) --api-port $(API_PORT)

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python scripts/benchmark.py

clean:
	rm -rf data/reports data/storemon.db* data/dagster_home
