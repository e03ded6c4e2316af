# Buurtbeeld: two commands. `make up` runs the whole system on embedded
# defaults, `make test` runs every gate. Both install what they need first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test install lint typecheck pytest chromium bench-store bench-ingest bench-replay bench-memory bench-freshness bench-query clean

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

# The browser test (tests/browser) drives Debian's Chromium with Playwright, never a
# browser Playwright downloads itself. Installed here, for `make test` only: `make up`
# does not need it.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

chromium:
	@command -v chromium >/dev/null 2>&1 || \
		($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

pytest: install chromium
	$(BIN)/python -m pytest

test: lint typecheck pytest

bench-store: install
	$(BIN)/python -m bench.store

bench-ingest: install
	$(BIN)/python -m bench.ingest

bench-replay: install
	$(BIN)/python -m bench.replay

bench-memory: install
	$(BIN)/python -m bench.memory

bench-freshness: install
	$(BIN)/python -m bench.freshness

bench-query: install
	$(BIN)/python -m bench.query

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
