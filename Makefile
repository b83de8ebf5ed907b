# ECC developer targets. Every target works from a fresh clone with only python3.11 on PATH:
# `install` creates .venv and installs the project with the embedded servers and test tools;
# the other targets run .venv/bin/python explicitly (no activation needed).
#
#   make demo    start everything, replay a county court's year, print a summary
#   make test    the test suite (PYTEST_FLAGS="-k intake -x" to narrow it)
#   make up / make down / make status    the embedded stack (tools/stack.py)
#   make bench   the benchmarks (bench/), results in bench/results/

SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ecc-installed
PYTEST_FLAGS ?=
UP_FLAGS ?=
DEMO_FLAGS ?=
# The demo replays ~4,000 window requests in a minute: lift the per-caller write limit
# (120/minute by default) for the stack `make demo` starts. Override to keep a limit.
DEMO_RATE_LIMIT ?= off

.PHONY: install up down status demo test bench

install: $(STAMP)

# Reinstalls only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is not on PATH: install Python 3.11 first" >&2; exit 1; }
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --disable-pip-version-check -q -e '.[embedded,test,deploy]'
	@touch $(STAMP)

up: install
	$(PY) -m tools.stack up $(UP_FLAGS)

# No install needed to stop things; fall back to the system python if .venv is gone.
down:
	@if [ -x $(PY) ]; then $(PY) -m tools.stack down; else $(PYTHON) -m tools.stack down; fi

status:
	@if [ -x $(PY) ]; then $(PY) -m tools.stack status; else $(PYTHON) -m tools.stack status; fi

demo: install
	ECC_RATE_LIMIT_WRITES=$${ECC_RATE_LIMIT_WRITES:-$(DEMO_RATE_LIMIT)} $(PY) -m tools.stack up $(UP_FLAGS)
	$(PY) -m tools.demo $(DEMO_FLAGS)

# bandit first (security lint, issue 3; pip-audit cannot reach its database here), then every test.
test: install
	$(VENV)/bin/bandit -q -c pyproject.toml -r shared services tools
	$(PY) -m pytest -q $(PYTEST_FLAGS)

bench: install
	$(PY) -m bench
