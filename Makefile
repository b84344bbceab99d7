# Two commands do everything on a fresh machine: `make figures` and `make test`.
# Both set themselves up first (a .venv, the package with its dev extras, the offline weights).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zfhelpers-installed
ARGS ?=

.PHONY: setup fashion-mnist figures figures-paper test unit nbval rerun claims-check test-matrix lint lab ui-deps ui-test \
	bench refresh-notebooks sync-notebooks clean

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
TEST_FIGURES ?= $(CURDIR)/build/test-figures
test: setup
	@before=$$(git status --porcelain 2>/dev/null); \
	$(MAKE) --no-print-directory unit nbval claims-check || exit 1; \
	after=$$(git status --porcelain 2>/dev/null); \
	if [ "$$before" != "$$after" ]; then echo "make test changed the working tree:"; \
	  diff <(echo "$$before") <(echo "$$after"); exit 1; fi

unit: $(STAMP)
	ZFHELPERS_FIGURES_DIR=$(TEST_FIGURES) $(BIN)/python -m pytest -q tests

# nbval re-runs every notebook on its defaults and compares only outputs stable by construction;
# then every claim of that run must match the committed quick results within its tolerance.
nbval: $(STAMP)
	@rm -rf $(TEST_FIGURES)/results
	ZFHELPERS_FIGURES_DIR=$(TEST_FIGURES) $(BIN)/python -m pytest -q -p no:cacheprovider \
	  --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks/
	@$(MAKE) --no-print-directory rerun

rerun: $(STAMP)
	ZFHELPERS_FIGURES_DIR=$(TEST_FIGURES) $(BIN)/python -m pytest -q -p no:cacheprovider tests/claims_rerun.py

# README and notebook markdown quote only numbers the results files hold.
claims-check: $(STAMP)
	$(BIN)/python -m zfhelpers claims --check

# The same tests and notebooks on other CPU code paths and thread counts (users' CPUs differ).
MATRIX := "ATEN_CPU_CAPABILITY=default" "ATEN_CPU_CAPABILITY=avx2 OMP_NUM_THREADS=1" "ONEDNN_MAX_CPU_ISA=AVX2"
test-matrix: setup
	@i=0; for env in $(MATRIX); do i=$$((i+1)); echo "== test-matrix [$$i/3]: $$env"; \
	  env $$env $(MAKE) --no-print-directory unit nbval TEST_FIGURES=$(CURDIR)/build/matrix-$$i || exit 1; \
	done; echo "test-matrix: all 3 configurations passed"

lint: setup
	$(BIN)/ruff check zfhelpers tests benchmarks notebooks
	$(BIN)/ruff format --check zfhelpers tests benchmarks notebooks

# Every benchmarks/bench_*.py in its quick mode; RESULT lines and a summary table (see benchmarks/run.py).
bench: setup
	$(BIN)/python benchmarks/run.py $(ARGS)

# Figures written by notebooks run in the lab go to build/lab-figures: the committed figures/
# change only through `make figures` (full quality, papermill).
LAB_FIGURES := $(CURDIR)/build/lab-figures
lab: setup
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,lab]'
	@echo "lab: figures saved by notebooks run here go to $(LAB_FIGURES)"
	ZFHELPERS_FIGURES_DIR=$(LAB_FIGURES) $(BIN)/jupyter lab notebooks/

# The explorers of notebooks 01-03 in a real browser (tests/ui): JupyterLab 4 driven through
# Selenium in Debian's headless Chromium. Installs what is missing: chromium and chromium-driver
# with apt (as root), selenium and the lab extra with pip.
ui-deps: $(STAMP)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "ui-test: installing Debian chromium and chromium-driver"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; \
	else echo "ui-test: needs Debian's chromium and chromium-driver; as root run" \
	  "'apt-get install chromium chromium-driver' (or run make ui-test as root)" >&2; exit 1; fi
	@$(BIN)/python -c "import selenium, jupyterlab" 2>/dev/null || { \
	  echo "ui-test: installing selenium and JupyterLab (the lab extra) into $(VENV)"; \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,lab]' 'selenium>=4.11'; }

ui-test: setup ui-deps
	@before=$$(git status --porcelain 2>/dev/null); \
	ZFHELPERS_FIGURES_DIR=$(CURDIR)/build/ui-figures $(BIN)/python -m pytest -q -p no:cacheprovider \
	  tests/ui --run-ui || exit 1; \
	after=$$(git status --porcelain 2>/dev/null); \
	if [ "$$before" != "$$after" ]; then echo "make ui-test changed the working tree:"; \
	  diff <(echo "$$before") <(echo "$$after"); exit 1; fi

# Developers: re-execute notebooks in place with their defaults (the outputs nbval replays).
refresh-notebooks: setup
	$(BIN)/python -m zfhelpers refresh-notebooks $(if $(ONLY),--only $(ONLY))

# Notebooks are edited as their paired scripts (notebooks/NN_slug.py); this brings the .ipynb up to date.
sync-notebooks: $(STAMP)
	$(BIN)/jupytext --sync notebooks/[0-9][0-9]_*.py

clean:
	rm -rf build
