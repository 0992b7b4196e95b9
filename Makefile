# Two entry points for a fresh machine with Python 3.11: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint data

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)  ## set up, run the default scenario on the embedded dataset, write its files to runs/ncfd_expansion/
	$(BIN)/planner run scenarios/ncfd_expansion.yaml -o runs/ncfd_expansion --force

test: $(STAMP)  ## set up, then lint (ruff, import-linter's layer contracts) and run every test suite
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest

test-fast: $(STAMP)  ## the suites without the `slow` marker
	$(BIN)/pytest -m "not slow"

data: $(STAMP)  ## maintainers: rebuild the embedded tables from ../shared
	$(BIN)/python -m planner.data.build --shared ../shared
