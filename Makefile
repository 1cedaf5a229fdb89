# percel: the two commands. Everything the project needs is installed from here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
RUNNERS ?= 1
# The embedded S3 endpoint: moto (empty) or localstack (README, "LocalStack").
S3      ?=
LOCALSTACK_VENV := .venv-localstack
# What `make test` runs a second time against LocalStack: the storage, pipeline and serving tests
# (docs/DECISIONS.md#localstack).
LOCALSTACK_TESTS := tests/test_store.py tests/test_cleanup.py tests/test_uploads.py tests/test_site.py \
                    tests/test_e2e_pipeline.py tests/test_e2e_serving.py tests/test_e2e_uploads.py \
                    tests/test_localstack.py

.PHONY: run test test-fast lint install system-deps localstack bench conformance clean

# The percel command is installed editable, so .venv/bin/percel runs this checkout's percel_cli.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e . --config-settings editable_mode=compat
	touch $@

install: $(VENV)/.installed system-deps

# bubblewrap is the build sandbox; slirp4netns and nftables give it BUILD_NETWORK=public
# (build_runner/README.md); chromium is the browser tests/test_e2e_dashboard.py drives (Playwright
# cannot download its own here); qemu, a kernel and busybox boot the cgroup-v2-only VM of
# tests/test_cgroups.py. Debian ships them all. Installed only when missing and we are root.
SYSTEM_PACKAGES := /usr/bin/bwrap:bubblewrap /usr/bin/slirp4netns:slirp4netns /usr/sbin/nft:nftables \
                   /usr/bin/chromium:chromium /usr/bin/qemu-system-x86_64:qemu-system-x86 \
                   /vmlinuz:linux-image-cloud-amd64 /bin/busybox:busybox-static /usr/bin/cpio:cpio
system-deps:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
	  [ -e "$${pair%%:*}" ] || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -q $$missing >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null)); \
	  else echo "warning: missing$$missing; install them for sandboxed builds" >&2; fi; fi

# LocalStack's S3 in host mode, in a virtualenv of its own: its pins clash with ours.
$(LOCALSTACK_VENV)/.installed: devstack/localstack-requirements.txt
	$(PYTHON) -m venv $(LOCALSTACK_VENV)
	$(LOCALSTACK_VENV)/bin/python -m pip install --quiet -r devstack/localstack-requirements.txt
	touch $@

localstack: $(LOCALSTACK_VENV)/.installed

run: install $(if $(filter localstack,$(S3)),localstack)
	PORT=$(PORT) RUNNERS=$(RUNNERS) S3=$(S3) $(PY) -m devstack

# The whole suite, after the checks that keep the code's shape (docs/DECISIONS.md#layers); then,
# unless the suite just ran on LocalStack, the storage, pipeline and serving tests on LocalStack.
test: install lint localstack
	S3=$(S3) $(PY) -m pytest -q $(PYTEST_ARGS)
ifneq ($(S3),localstack)
	S3=localstack $(PY) -m pytest -q $(PYTEST_ARGS) $(LOCALSTACK_TESTS)
endif

# Unit and table tests only: no server, no build (tiers are marked in tests/conftest.py).
test-fast: install
	$(PY) -m pytest -q -m "unit and not slow" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# docs/CONFORMANCE.md from the platform cases in tests/conformance/.
conformance: install
	$(PY) -m tests.conformance.report

bench: install
	$(PY) bench/deploy_vs_manual.py

clean:
	rm -rf $(VENV) $(LOCALSTACK_VENV) .state .pytest_cache
