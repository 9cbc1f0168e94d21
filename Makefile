# Two entry points for a fresh machine: `make run` and `make test`. Both install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser run test lint bench clean

install: $(STAMP)

browser:
	bash scripts/install-browser.sh

$(STAMP): pyproject.toml scripts/install.sh
	PYTHON=$(PY) bash scripts/install.sh
	touch $(STAMP)

# The chat UI on the bundled corpus (ingested on first start) at http://127.0.0.1:7860
run: install
	$(BIN)/rag serve

test: install browser
	$(BIN)/ruff check rag ui tests bench
	$(BIN)/pytest

# Benchmarks: each prints a table and writes a JSON report to bench/reports/.
bench: install
	$(BIN)/python -m bench.ingest_throughput
	$(BIN)/python -m bench.retrieval_latency
	$(BIN)/python -m bench.answer_latency
	$(BIN)/python -m bench.serve_load

lint: install
	$(BIN)/ruff check rag ui tests
	$(BIN)/ruff format --check rag ui tests

clean:
	rm -rf $(VENV) .pytest_cache
