# `make test` is the one command CI runs: it builds .venv from the project's own files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The official AsyncAPI 3.0.0 JSON Schema, which tests/unit/bus_contract/test_asyncapi.py
# validates docs/asyncapi.yaml against. Only the npm package @asyncapi/specs ships it, so
# it is fetched (pinned) into the venv, never committed.
ASYNCAPI_SPECS_VERSION := 6.11.1
ASYNCAPI_SCHEMA := $(VENV)/asyncapi-3.0.0.json

.PHONY: test lint typecheck unit run bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@if command -v npm >/dev/null 2>&1; then \
		cd $(VENV) && npm pack --silent @asyncapi/specs@$(ASYNCAPI_SPECS_VERSION) >/dev/null \
		&& tar -xzOf asyncapi-specs-$(ASYNCAPI_SPECS_VERSION).tgz package/schemas/3.0.0.json \
			> $(notdir $(ASYNCAPI_SCHEMA)).part \
		&& mv $(notdir $(ASYNCAPI_SCHEMA)).part $(notdir $(ASYNCAPI_SCHEMA)) \
		&& rm asyncapi-specs-$(ASYNCAPI_SPECS_VERSION).tgz; \
	else \
		echo "npm not found: $(ASYNCAPI_SCHEMA) not fetched (the AsyncAPI test fails in CI)"; \
	fi
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict hubject_connector tests $(wildcard bench/*.py) $(wildcard examples/*.py)

unit: $(STAMP)
	$(BIN)/pytest tests/unit

test: lint typecheck $(STAMP)
	$(BIN)/pytest

# The sandbox: a fake Hubject, the connector and a demo backend on this machine (files in
# var/sandbox/); Ctrl-C stops it. `make run SANDBOX_ARGS="--ports auto"` takes free ports.
run: $(STAMP)
	$(BIN)/hubject-connector sandbox $(SANDBOX_ARGS)

# Every benchmark, one after the other (bench/__init__.py: each prints its figures with their
# ratio to a raw baseline and appends them to bench/results.md). They need RabbitMQ and
# PostgreSQL as the tests do. A benchmark whose checks fail does not stop the others;
# the target fails at the end, naming it.
BENCHMARKS := $(basename $(notdir $(wildcard $(addprefix bench/,$(addsuffix .py,\
	contract_codec status_throughput cdr_throughput remote_start memory)))))

bench: $(STAMP)
	@failed=""; for name in $(BENCHMARKS); do \
		echo "== bench/$$name.py"; \
		$(BIN)/python -m bench.$$name || failed="$$failed $$name"; \
	done; \
	if [ -n "$$failed" ]; then echo "benchmarks that failed:$$failed"; exit 1; fi

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
