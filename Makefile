# Two commands do everything on a fresh machine: `make figures` and `make test`.
# Both set themselves up first (a .venv, the package with its dev extras, the offline weights).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zfhelpers-installed
ARGS ?=

.PHONY: setup fashion-mnist figures figures-paper test unit nbval lint bench lab refresh-notebooks clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "setup: installing zfhelpers[dev] into $(VENV) (torch 2.14.1 / torchvision 0.29.1; first run takes a few minutes)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

setup: $(STAMP) fashion-mnist
	@$(BIN)/python -m zfhelpers setup

# Fashion-MNIST for the twins ZF-style networks trained here: Debian ships it in full. Non-fatal
# where apt is missing or we are not root (zfhelpers.fashion then explains what to do).
FASHION := /usr/share/datasets/fashion-mnist
fashion-mnist:
	@test -d $(FASHION) || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && apt-get install -y -qq --no-install-recommends dataset-fashion-mnist) >/dev/null 2>&1 \
	  && echo "setup: installed Debian dataset-fashion-mnist"; } || \
	  echo "setup: note — Debian's dataset-fashion-mnist is not installed (needed only to train the twins)"

figures: setup
	$(BIN)/python -m zfhelpers figures --preset full $(ARGS)

figures-paper: setup
	$(BIN)/python -m zfhelpers figures --preset full --profile paper $(ARGS)

# `make test` must leave the working tree as it found it: figures go under build/.
test: setup
	@before=$$(git status --porcelain 2>/dev/null); \
	$(MAKE) --no-print-directory unit nbval || exit 1; \
	after=$$(git status --porcelain 2>/dev/null); \
	if [ "$$before" != "$$after" ]; then echo "make test changed the working tree:"; \
	  diff <(echo "$$before") <(echo "$$after"); exit 1; fi

unit: $(STAMP)
	ZFHELPERS_FIGURES_DIR=$(CURDIR)/build/test-figures $(BIN)/python -m pytest -q tests

nbval: $(STAMP)
	ZFHELPERS_FIGURES_DIR=$(CURDIR)/build/test-figures $(BIN)/python -m pytest -q -p no:cacheprovider \
	  --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks/

lint: setup
	$(BIN)/ruff check zfhelpers tests benchmarks notebooks

# Every benchmarks/bench_*.py in its quick mode; RESULT lines and a summary table (see benchmarks/run.py).
bench: setup
	$(BIN)/python benchmarks/run.py $(ARGS)

lab: setup
	$(BIN)/python -m pip install --quiet -e '.[dev,lab]'
	$(BIN)/jupyter lab notebooks/

# Developers: re-execute notebooks in place with their defaults (the outputs nbval replays).
refresh-notebooks: setup
	$(BIN)/python -m zfhelpers refresh-notebooks $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf build
