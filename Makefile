# percel: the two commands. Everything the project needs is installed from here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
RUNNERS ?= 1

.PHONY: run test test-fast lint install system-deps bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed system-deps

# bubblewrap is the build sandbox; Debian ships it. Installed only when missing and we are root.
system-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -q bubblewrap >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null)); \
	  else echo "warning: bwrap missing; install bubblewrap for sandboxed builds" >&2; fi; }

run: install
	PORT=$(PORT) RUNNERS=$(RUNNERS) $(PY) -m devstack

# The whole suite, after the checks that keep the code's shape (docs/DECISIONS.md#layers).
test: install lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Unit and table tests only: no server, no build (tiers are marked in tests/conftest.py).
test-fast: install
	$(PY) -m pytest -q -m "unit and not slow" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: install
	$(PY) bench/deploy_vs_manual.py

clean:
	rm -rf $(VENV) .state .pytest_cache
