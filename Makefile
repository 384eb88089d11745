# The two commands: `make book` builds the website, `make test` runs every check.
# Both create .venv from requirements.txt first when it is missing or out of date.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help setup book test lint unit notebooks clean

help:
	@echo "make book   build the website into _build/html (executes every chapter)"
	@echo "make test   lint, unit tests, every notebook under nbval, then the strict book build"
	@echo "make clean  remove _build (keeps .venv)"

# The stamp depends on the files that say what to install, so editing them re-installs.
$(INSTALLED): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

setup: $(INSTALLED)

book: setup
	$(BIN)/jupyter-book build . --all -W -n --keep-going
	@echo "The book is built: open $(CURDIR)/_build/html/index.html"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: setup
	$(BIN)/python -m pytest --doctest-modules convlstm_lib tests

notebooks: setup
	@if compgen -G "notebooks/*.ipynb" > /dev/null; then \
		$(BIN)/python -m pytest --nbval-lax -p no:cacheprovider notebooks; \
	else echo "no notebooks yet"; fi

test: lint unit notebooks book

clean:
	rm -rf _build
