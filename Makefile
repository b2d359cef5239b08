# The two commands: `make demo` (the main job) and `make test` (lint + the test suite).
# Both build .venv from nothing on a fresh clone. torch is pinned to 2.13.0, which pip installs
# from local disk (CPU build) on the project's machines.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.metashot-installed
SHARED_DATA := $(abspath ../shared/data)
export METASHOT_DATA ?= $(SHARED_DATA)
export OMP_NUM_THREADS ?= 2

.PHONY: demo test venv clean lint

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[chem,dev]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/metashot reproduce --quick --out demo-report

clean:
	rm -rf $(VENV) demo-report .pytest_cache
