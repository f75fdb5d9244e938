# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
export UV_PYTHON_DOWNLOADS := never

.PHONY: help setup run dev test faults bench lint format messages

help:  ## List the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

setup:  ## Install what is missing: system packages, uv, the locked Python environment
	@tools/setup

run: setup  ## Run the whole stack; the dashboard at http://127.0.0.1:8000/ (Ctrl-C stops it all)
	@$(VENV)/bin/python -m tools.run

dev: setup  ## Run Django's development server and one worker instead (DEBUG on)
	@$(VENV)/bin/python -m tools.run --dev

test:  ## Run the whole test suite (lint, unit, integration, stack, browser, faults, containers), then the integration layer on MySQL 9.7
	@tools/setup --test
	@$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest
	TEST_DATABASE=mysql $(VENV)/bin/pytest tests/integration

faults:  ## The fault tests in full: 10,000 submissions, 20 worker kills, outages (figures in var/faults.txt)
	@tools/setup --test
	FAULTS=full $(VENV)/bin/pytest tests/faults -s

bench:  ## Measure: our figures beside the stack's own limits, as a table (and JSON in var/bench/)
	@tools/setup --bench
	$(VENV)/bin/python -m tools.bench

lint:  ## Check the code with ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:  ## Format and fix the code with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

messages:  ## Update the Chinese catalogue from the code (then translate what is new), and compile it
	DEBUG=true $(VENV)/bin/python manage.py makemessages --locale zh_Hans --no-location --no-obsolete --extension html,txt,py,jinja \
		--ignore '.venv/*' --ignore 'tests/*' --ignore 'var/*' --ignore '.tools/*' --ignore 'static/*' --ignore 'docs/*'
	DEBUG=true $(VENV)/bin/python manage.py compilemessages --ignore '.venv/*' --ignore '.tools/*'
