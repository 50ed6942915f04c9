# demat-bus: `make run` starts the bus with the demo, `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint demo bench clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# a real OpenID provider (npm oidc-provider) for the tests of bus/oidc.py
OIDC := tests/oidc/node_modules/.installed
$(OIDC): tests/oidc/package-lock.json
	npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
	touch $(OIDC)

# the console's browser tests: Debian's chromium (driven by Playwright, never downloaded)
# and axe-core, injected in each page for the accessibility check
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update && apt-get install -y --no-install-recommends chromium
AXE := tests/console/node_modules/.installed
$(AXE): tests/console/package-lock.json
	npm ci --prefix tests/console --no-audit --no-fund --loglevel=error
	touch $(AXE)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/demat run

demo: $(STAMP)
	$(BIN)/demat demo

test: $(STAMP) $(OIDC) $(CHROMIUM) $(AXE)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=30

bench: $(STAMP)
	$(BIN)/demat bench

clean:
	rm -rf var .pytest_cache
