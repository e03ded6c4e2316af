# Buurtbeeld: two commands. `make up` runs the whole system on embedded
# defaults, `make test` runs every gate. Both install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test install lint typecheck pytest bench-store bench-ingest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

up: install
	$(BIN)/buurtbeeld up

lint: install
	$(BIN)/ruff check services events projections tests bench

typecheck: install
	$(BIN)/mypy events services projections

pytest: install
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench-store: install
	$(BIN)/python -m bench.store

bench-ingest: install
	$(BIN)/python -m bench.ingest

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
