# The two commands: `make book` builds the website, `make test` runs every check.
# Both set up what they need first, each step only when it is missing or out of date:
# .venv from requirements.txt, the site's JavaScript from the npm registry (vendor/), and
# for the browser tests Debian's Chromium.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
VENDORED := vendor/VERSIONS
CHROMIUM ?= /usr/bin/chromium
SITE := _build/html
NOTEBOOK_TIMES := _build/notebook-times.txt
PORT ?= 8000
# apt-get needs root; CI runners that are not root have password-less sudo.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help setup vendor chromium book serve lab test lint unit notebooks browser colab bench clean

help:
	@echo "make book      build the website into $(SITE) (executes every chapter)"
	@echo "make serve     serve the built site on http://127.0.0.1:$(PORT)/ (chapter 06 runs its models there)"
	@echo "make lab       open the chapters in JupyterLab (prints the address to open)"
	@echo "make test      lint, unit tests, the Colab path, every notebook under nbval, the strict"
	@echo "               book build, then the browser tests (the built site, JupyterLab)"
	@echo "make browser   only the browser tests: the built site (needs make book) and JupyterLab"
	@echo "make colab     the library's wheel outside the clone runs a chapter, files downloaded"
	@echo "make bench     time the reference, the library's speed switches and Keras (not part of test)"
	@echo "make clean     remove _build (keeps .venv and vendor/)"

# The stamp depends on the files that say what to install, so editing them re-installs.
$(INSTALLED): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

setup: $(INSTALLED)

# require.js, @jupyter-widgets/html-manager and MathJax, from the npm registry (never a CDN):
# Sphinx copies them into the site's _static/. Pinned, with their hashes, in the script.
$(VENDORED): tools/vendor_assets.sh
	@command -v npm > /dev/null || { $(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends npm; }
	tools/vendor_assets.sh vendor

vendor: $(VENDORED)

# Playwright drives Debian's Chromium (Playwright's own browser download is not used).
$(CHROMIUM):
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends chromium

chromium: $(CHROMIUM)

book: setup vendor
	$(BIN)/jupyter-book build . --all -W -n --keep-going
	@echo "The book is built: run make serve and open the address it prints (or open $(CURDIR)/$(SITE)/index.html, without chapter 06's live explainer)"

# The built site over http on this machine only: chapter 06's explainer loads its models and
# the WebAssembly runtime with fetch, which browsers refuse to pages opened as file://.
serve:
	@test -f $(SITE)/index.html || { echo "no site in $(SITE): run make book first"; exit 1; }
	@echo "Open http://127.0.0.1:$(PORT)/ (Ctrl-C stops the server)"
	$(BIN)/python -m http.server $(PORT) --bind 127.0.0.1 --directory $(SITE)

# On this machine only (127.0.0.1); JupyterLab prints the address to open, token included.
# Jupyter refuses to run as root (a container's user) without --allow-root.
lab: setup
	$(BIN)/jupyter lab notebooks/ --ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: setup
	$(BIN)/python -m pytest --doctest-modules -m "not browser and not colab" convlstm_lib tests

# The path a Colab reader takes: the library's wheel in a new virtual environment outside the
# clone (reusing .venv's packages, nothing downloaded) runs chapter 07, whose checkpoints it
# downloads by SHA-256 from a server on 127.0.0.1. About a minute.
colab: setup
	$(BIN)/python -m pytest -m colab -p no:cacheprovider tests

# Lax mode: the notebooks are committed without outputs, so their checks are their asserts.
# tests/notebook_timing.py records how long each notebook ran, for the end of `make test`.
notebooks: setup
	@mkdir -p _build
	@if compgen -G "notebooks/*.ipynb" > /dev/null; then \
		$(BIN)/python -m pytest --nbval-lax -p no:cacheprovider -p tests.notebook_timing \
			--notebook-times=$(NOTEBOOK_TIMES) notebooks; \
	else echo "no notebooks yet" | tee $(NOTEBOOK_TIMES); fi

browser: setup chromium
	CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -m browser -p no:cacheprovider tests
	@echo "Screenshots of every page: $(CURDIR)/_build/screenshots/"

# In this order: the browser tests read the site that `book` builds.
test: lint unit colab notebooks book browser
	@cat $(NOTEBOOK_TIMES)

# Timings on noisy machines are no pass/fail matter: tests/test_bench_smoke.py keeps the code
# path tested inside `make test`, this prints the full table (benchmarks/results/bench.md, .json).
bench: setup
	$(BIN)/python -m benchmarks.run

.NOTPARALLEL:

clean:
	rm -rf _build
