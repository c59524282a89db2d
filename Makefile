# The two commands of the README: `make run` and `make test`. Both set everything up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench chaos browser screenshots system-deps clean

run: $(STAMP)
	$(BIN)/checkin-gateway serve --demo

test: $(STAMP) lint browser
	$(BIN)/python -m pytest

# The guard console's tests drive Debian's Chromium; installed here when missing.
browser:
	@PYTHON=$(PYTHON) scripts/system-deps.sh chromium

# The console screens and the kiosk exit screen in docs/screenshots, from the tests.
screenshots: $(STAMP) browser
	CONSOLE_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -q tests/test_console_browser.py tests/test_scanner_screen.py

lint: $(STAMP)
	$(BIN)/ruff check service scanner tests bench
	$(BIN)/ruff format --check service scanner tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

# The fault-injection tests at full scale (make test runs them short): see the README.
chaos: $(STAMP)
	CHAOS_FULL=1 $(BIN)/python -m pytest -m chaos tests/chaos tests/test_hostile_connections.py --chaos-full

system-deps:
	@PYTHON=$(PYTHON) scripts/system-deps.sh

$(STAMP): pyproject.toml scripts/system-deps.sh
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "Python 3.11 or newer is needed; $(PYTHON) is $$($(PYTHON) --version 2>&1)"; exit 1; }
	@PYTHON=$(PYTHON) scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,zxing]'
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
