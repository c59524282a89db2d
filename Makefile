# The two commands of the README: `make run` and `make test`. Both set everything up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench chaos chaos-ha browser xvfb screenshots system-deps clean

run: $(STAMP)
	$(BIN)/checkin-gateway serve --demo

test: $(STAMP) lint browser xvfb
	$(BIN)/python -m pytest --durations=25

# The guard console's tests drive Debian's Chromium; installed here when missing.
browser:
	@PYTHON=$(PYTHON) scripts/system-deps.sh chromium

# The kiosk window's test runs it on a bare X server (Xvfb); installed here when missing.
xvfb:
	@PYTHON=$(PYTHON) scripts/system-deps.sh xvfb

# The console screens in docs/screenshots, from the browser tests; the kiosk's door
# screens, rendered by its own code, and its window on a bare X server.
screenshots: $(STAMP) browser xvfb
	CONSOLE_SCREENSHOTS=docs/screenshots KIOSK_SCREENSHOTS=docs/screenshots \
	  $(BIN)/python -m pytest -q tests/test_console_browser.py tests/test_health_desk_browser.py \
	  tests/test_console_settings_browser.py tests/test_phone_pass_browser.py \
	  tests/test_scanner_screen.py tests/test_scanner_xvfb.py

lint: $(STAMP)
	$(BIN)/ruff check checkin_core service scanner tests bench
	$(BIN)/ruff format --check checkin_core service scanner tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

# The fault-injection tests at full scale (make test runs them short): see the README.
chaos: $(STAMP)
	CHAOS_FULL=1 $(BIN)/python -m pytest -m chaos tests/chaos tests/test_hostile_connections.py --chaos-full

# PostgreSQL failover under load: etcd + two PostgreSQL 15 under Patroni, primary killed
# three times (tests/chaos/test_chaos_failover.py, docs/scaling.md). Patroni runs as the
# postgres user (PostgreSQL refuses root) from a venv of its own on Debian's Python,
# which that user can read.
HA_VENV := .venv-ha
HA_PYTHON ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo $(PYTHON))
PATRONI_REQ := 'patroni[etcd3]>=4.1,<5' 'psycopg[binary]>=3.1,<4'

chaos-ha: $(STAMP) $(HA_VENV)/.installed
	CHAOS_HA=1 $(BIN)/python -m pytest -m chaos tests/chaos/test_chaos_failover.py

$(HA_VENV)/.installed: scripts/system-deps.sh
	@PYTHON=$(HA_PYTHON) scripts/system-deps.sh ha
	$(HA_PYTHON) -m venv $(HA_VENV)
	$(HA_VENV)/bin/pip install --quiet --disable-pip-version-check $(PATRONI_REQ)
	touch $@

system-deps:
	@PYTHON=$(PYTHON) scripts/system-deps.sh

$(STAMP): pyproject.toml scripts/system-deps.sh
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "Python 3.11 or newer is needed; $(PYTHON) is $$($(PYTHON) --version 2>&1)"; exit 1; }
	@PYTHON=$(PYTHON) scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[server,dev,zxing]'
	touch $@

clean:
	rm -rf $(VENV) $(HA_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
