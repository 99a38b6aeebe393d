# Developer entry points; CI runs `bash scripts/test.sh` (via .ci/run), which is `make test`.
#   make lint typecheck    ruff and mypy, as CI runs them
#   make unit              fast tests only (no services needed)
#   make pythons           ruff, mypy and unit tests on the other Pythons 3.11-3.13 found here
#   make test ARGS='-k x'  the full test command; ARGS go to pytest
#   make run               the whole system in the foreground (ARGS go to galaxy-tasks run)
#   make bench             bench/run.py against local PostgreSQL and Redis

SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
ARGS  ?=

.PHONY: help venv services lint format typecheck test unit pythons run bench

help:
	@sed -n 's/^#   //p' Makefile

venv:
	@bash scripts/venv.sh

services:
	@bash scripts/services.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: venv
	$(BIN)/mypy

test:
	bash scripts/test.sh $(ARGS)

unit: venv
	$(BIN)/pytest tests/unit $(ARGS)

pythons: venv
	bash scripts/other-pythons.sh

run:
	bash scripts/run-local.sh $(ARGS)

# PYTHONPATH: bench/run.py runs as a script but imports the bench package (and galaxy_tasks from the checkout).
bench: services venv
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/run.py $(ARGS)
