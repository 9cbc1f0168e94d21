# Two entry points for a fresh machine: `make run` and `make test`. Both install what they need,
# at the versions pinned in requirements.lock.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK_CMD := $(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	--generate-hashes -o requirements.lock -q

.PHONY: install browser run test test-fast check lint lock bench clean

install: $(STAMP)

browser:
	bash scripts/install-browser.sh

$(STAMP): pyproject.toml requirements.lock scripts/install.sh
	PYTHON=$(PY) bash scripts/install.sh
	touch $(STAMP)

# The chat UI on the bundled corpus (ingested on first start) at http://127.0.0.1:7860
run: install
	$(BIN)/rag serve

# Static checks: lint, formatting, types.
check: install
	$(BIN)/ruff check rag ui tests bench evals
	$(BIN)/ruff format --check rag ui tests bench evals
	$(BIN)/mypy rag ui

test: install browser check
	$(BIN)/pytest

# Tests that need no model and no server (seconds, not minutes).
test-fast: install
	$(BIN)/pytest -m "not e2e and not server"

lint: check

# Re-resolve requirements.lock after changing dependencies in pyproject.toml (needs PyPI),
# then `make install` applies it.
lock: install
	$(LOCK_CMD)

# Benchmarks: each prints a table and writes a JSON report to bench/reports/.
bench: install
	$(BIN)/python -m bench.ingest_throughput
	$(BIN)/python -m bench.retrieval_latency
	$(BIN)/python -m bench.answer_latency
	$(BIN)/python -m bench.serve_load

clean:
	rm -rf $(VENV) .pytest_cache
