# `make test` is the one command CI runs: it builds .venv from the project's own files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck unit run bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy hubject_connector tests bench

unit: $(STAMP)
	$(BIN)/pytest tests/unit

test: lint typecheck $(STAMP)
	$(BIN)/pytest

run: $(STAMP)
	$(BIN)/hubject-connector --help

bench: $(STAMP)
	@echo "no benchmarks yet"

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
