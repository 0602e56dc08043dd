# Omnirouter: `make run` starts the whole suite on the embedded default; `make test` checks everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
PY := $(VENV)/bin/python
export UV_LINK_MODE := copy

.PHONY: help venv run test test-fast lint fmt simulate browser-deps clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(if $(findstring .tools,$(UV)),.tools/bin/uv)
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

venv: $(VENV)/.synced ## create .venv from uv.lock (reproducible)

run: venv ## the whole suite on the embedded broker and PostgreSQL, with the example configuration
	$(VENV)/bin/omni-dev run

browser-deps: ## Debian's headless Chromium for the page tests (Playwright's own download does not work here)
	@if [ ! -x /usr/bin/chromium ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: browser tests will be skipped"; \
	  else echo "no /usr/bin/chromium and no root apt-get: browser tests will be skipped"; fi; \
	fi

lint: venv ## ruff (lint + format) and mypy --strict
	$(VENV)/bin/ruff check shared services tests bench chaos
	$(VENV)/bin/ruff format --check shared services tests bench chaos
	$(VENV)/bin/mypy shared services bench chaos

fmt: venv ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix shared services tests
	$(VENV)/bin/ruff format shared services tests

test-fast: venv ## the test suite only (real broker and PostgreSQL, started by the fixtures)
	$(PY) -m pytest --ignore=tests/deploy -q

test: venv browser-deps lint test-fast audit deploy-check chaos-short ## everything CI runs: lint, all tests, deployment checks, the chaos subset

simulate: venv ## what-if routing simulation: make simulate ARGS="--agents +2 --escalate-after 30"
	$(PY) -m omnirouter_routing.simulate $(ARGS)

clean: ## remove the environment and local data
	rm -rf $(VENV) .tools .data .mypy_cache .ruff_cache .pytest_cache

-include deploy/deploy.mk
-include bench/bench.mk
-include chaos/chaos.mk
ifeq ($(wildcard deploy/deploy.mk),)
deploy-check:
	@echo "deploy/deploy.mk missing"; exit 1
endif
