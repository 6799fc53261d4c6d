# Roost — the two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
DATA ?= ./data
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run demo test fuzz lint fmt bench bench-pipeline bench-queries bench-loads bench-sdk install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# `make run` installs what serving needs and no more; the dev tools (pytest, mypy, Playwright,
# the NATS and SMTP servers of the tests) come with `make test`.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP) $(RUN_STAMP)

install: $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/roost serve --data $(DATA) --host $(HOST) --port $(PORT) --demo

demo: $(RUN_STAMP)
	$(BIN)/roost demo --data $(DATA)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# The second pass runs on a cluster's stores: the metadata (keys, profiles, destinations,
# accounts) in PostgreSQL and the events in ClickHouse, so every API, report and dashboard
# test answers the same on both engines.
test: lint
	$(BIN)/python -m pytest
	ROOST_TEST_METADATA=postgres ROOST_TEST_WAREHOUSE=clickhouse $(BIN)/python -m pytest -q \
		-p no:randomly tests/web/api tests/consumers tests/storage tests/web/dashboard tests/query \
		tests/hostile/test_sql.py tests/hostile/test_config.py

# The fuzz suite of `make test`, longer and with fresh random examples each run.
fuzz: $(STAMP)
	ROOST_FUZZ_EXAMPLES=$${ROOST_FUZZ_EXAMPLES:-20000} ROOST_FUZZ_RANDOM=1 \
		$(BIN)/python -m pytest -q tests/hostile/test_fuzz.py

bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-pipeline: $(STAMP)
	$(BIN)/python bench/pipeline.py --rounds 3

bench-sdk: $(STAMP)
	$(BIN)/python bench/sdk.py

bench-queries: $(STAMP)
	$(BIN)/python bench/queries.py

bench-loads: $(STAMP)
	$(BIN)/python bench/loads.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
