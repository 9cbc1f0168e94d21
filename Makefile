# Two entry points for a fresh machine: `make run` and `make test`. Both install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	PYTHON=$(PY) bash scripts/install.sh
	touch $(STAMP)

run: install
	$(BIN)/rag ingest corpus/
	$(BIN)/rag status

test: install
	$(BIN)/ruff check rag ui tests
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check rag ui tests
	$(BIN)/ruff format --check rag ui tests

clean:
	rm -rf $(VENV) .pytest_cache
