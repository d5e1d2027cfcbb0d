# The two commands of the README: `make run` and `make test`. Each sets itself up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run serve test lint format install migrate demo bench clean

$(INSTALLED): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --editable '.[dev]'
	@touch $@

install: $(INSTALLED)

## Set up, load the demo organisation and serve on http://127.0.0.1:8000 with a worker and beat
run: install
	scripts/run

## The production entry point on this host: gunicorn, a worker and beat (DEBUG off; see README)
serve: install
	scripts/serve all

## Set up and run the whole suite, on SQLite and on PostgreSQL
test: install
	scripts/test

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache *.egg-info
