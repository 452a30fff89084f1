# o2c-matcher: `make demo` and `make test` are all a new machine needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The rule modules mypyc compiles in place (services/domain/native.py, docs/contributing.md):
# built again whenever a source of services/domain changes, so no stale extension is imported.
RULES_BUILT := $(VENV)/.rules-compiled
RULE_SOURCES := $(wildcard services/domain/*.py)
STACK := deploy/local/stack

.DEFAULT_GOAL := help
.PHONY: help install up down status demo web test test-unit test-integration test-e2e test-faults soak fuzz bench lint format

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'

install: $(INSTALLED) $(RULES_BUILT) ## create .venv with o2c-matcher and its dev tools; compile the rule modules

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

$(RULES_BUILT): $(INSTALLED) $(RULE_SOURCES)
	$(BIN)/python -m services.domain.build
	@touch $@

up: ## start Kafka and PostgreSQL (deploy/local; idempotent)
	$(STACK) up

down: ## stop Kafka and PostgreSQL
	$(STACK) down

status: ## show whether Kafka and PostgreSQL are running
	$(STACK) status

demo: install up ## install, start everything, process the sample, print the summary
	$(BIN)/o2c demo

web: install up ## the workbench on demo data: worker, projections, app; prints how to log in
	@$(BIN)/o2c topics create >/dev/null
	@$(BIN)/o2c db migrate >/dev/null
	@logs=$${O2C_STATE_DIR:-.o2c-state}; mkdir -p "$$logs"; \
	$(BIN)/o2c worker >>"$$logs/web-worker.log" 2>&1 & worker=$$!; \
	$(BIN)/o2c projections run >>"$$logs/web-projections.log" 2>&1 & projections=$$!; \
	trap 'kill $$worker $$projections 2>/dev/null; wait' EXIT; \
	echo "worker and projections running (logs in $$logs/); publishing the demo data…"; \
	$(BIN)/python -m services.web.demo && $(BIN)/o2c web --demo

test: install up ## install, start everything, run every test (the fault suite apart)
	$(BIN)/pytest -m 'not faults'

test-unit: install ## only the pure unit tests (no services)
	$(BIN)/pytest tests/unit

test-integration: install up ## only the tests against the real broker and database
	$(BIN)/pytest tests/integration

test-e2e: install up ## only the whole-pipeline tests through the o2c command
	$(BIN)/pytest tests/e2e

SOAK_SECONDS ?= 60
# The fault suite runs on a stack of its own (tests/faults/own-stack: fresh, stopped after).
test-faults: install ## kill workers, projections, the broker, PostgreSQL; a soak of SOAK_SECONDS (60); figures in bench/results/
	O2C_SOAK_SECONDS=$(SOAK_SECONDS) tests/faults/own-stack $(BIN)/pytest -m faults tests/faults

soak: SOAK_SECONDS = 600
soak: install ## the soak alone: 2,000 events/s, 1% invalid, for SOAK_SECONDS (600)
	O2C_SOAK_SECONDS=$(SOAK_SECONDS) tests/faults/own-stack $(BIN)/pytest -m faults tests/faults/test_soak.py

FUZZ_SECONDS ?= 45
fuzz: install ## the fuzzers (tests/fuzz) for FUZZ_SECONDS (45) each from random seeds, ~10 min; no services
	O2C_FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/pytest -m fuzz tests/fuzz --timeout=0

bench: install up ## run the benchmarks; results in bench/results/
	$(BIN)/python -m bench

lint: install ## ruff and mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
