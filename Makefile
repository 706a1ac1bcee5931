# creditrisk: two set-up commands, `make run` and `make test`. Both build on `make install`,
# which is idempotent and fast when nothing changed (a stamp keyed on the requirement files).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
DEMO_ROWS ?= 400
SIM_VOLUME ?= 20000
PYTEST_ARGS ?=

.PHONY: install install-dev demo run test test-fast lint security bench chromium mlflow-server clean help

help:
	@echo "make run     - install, prepare the demo (users, model, today's applications) and start the console while six months of simulated operations are written beside it"
	@echo "make test    - install test needs (incl. Chromium when missing) and run the whole suite"
	@echo "make lint    - ruff, mypy and lint-imports (the layering contracts in .importlinter)"
	@echo "make security - pip-audit (dependencies) and bandit (code); fails on fixable vulnerabilities or high severity"
	@echo "make bench   - benchmarks (print ratios against their baselines)"

# uv (pinned) installs the same pinned wheels as pip in seconds instead of a minute or more (README, "Quickstart");
# where uv cannot be fetched or fails, pip does the same install. $(1): a virtualenv's bin/, $(2): what to install.
UV_VERSION := 0.13.9
define install_into
	if [ -x $(1)/uv ]; then $(1)/uv pip install -q --compile-bytecode --python $(1)/python $(2) || $(1)/pip install -q $(2); \
	else $(1)/pip install -q $(2); fi
endef
define new_venv
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -qq uv==$(UV_VERSION) 2>/dev/null || { \
	  echo "uv $(UV_VERSION) could not be installed: pip installs the requirements instead (slower)"; \
	  $(1)/bin/python -m pip install -q --upgrade pip; }
endef

$(BIN)/python:
	$(call new_venv,$(VENV))

$(VENV)/.install.stamp: requirements.txt pyproject.toml | $(BIN)/python
	@$(call install_into,$(BIN),-r requirements.txt setuptools==80.9.0 wheel==0.45.1)
	@# the venv's own setuptools (65) predates PEP 639 licence strings: build with the pinned one, no isolation
	@export PYTHONWARNINGS=ignore; $(call install_into,$(BIN),--no-deps --no-build-isolation -e .)
	@touch $@

$(VENV)/.dev.stamp: requirements-dev.txt $(VENV)/.install.stamp
	@$(call install_into,$(BIN),-r requirements-dev.txt)
	@touch $@

install: $(VENV)/.install.stamp

install-dev: $(VENV)/.dev.stamp

# one process (users, the demo model, the simulated history up to yesterday, today's queue): each start costs ~4 s
demo: install
	$(BIN)/creditrisk demo --history --volume $(SIM_VOLUME) --rows $(DEMO_ROWS)

# as `make demo`, but the history is written by a process of its own while the console opens (pages say how far
# it has got; its log is var/history.log)
run: install
	$(BIN)/creditrisk demo --history --background --volume $(SIM_VOLUME) --rows $(DEMO_ROWS)
	@echo "Console: http://localhost:$(PORT)  (demo passwords: var/demo_credentials.txt)"
	$(BIN)/streamlit run app/main.py --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

chromium:
	@{ command -v chromium && command -v pdftoppm; } >/dev/null 2>&1 || { \
	  echo "Installing Chromium and poppler-utils from Debian's packages (1-2 minutes)…"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends \
	    chromium fonts-liberation poppler-utils >/dev/null; }

# The MLflow tracking server the registry tests start on loopback, in its own virtualenv: the full `mlflow`
# package conflicts with requirements.txt (pyarrow), the project itself only needs the client (requirements-dev.txt).
mlflow-server: .mlflow-server/.stamp
.mlflow-server/.stamp: requirements-mlflow-server.txt
	$(call new_venv,.mlflow-server)
	@$(call install_into,.mlflow-server/bin,-r requirements-mlflow-server.txt)
	@touch $@

# Tests run in parallel, one file per worker (pytest-xdist --dist loadfile: a file's fixtures are built once), the
# longest files first (tests/file_weights.py; xdist's own reorder would put the files of few tests last);
# TEST_WORKERS=1 runs them in one process. docs/testing.md says more.
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
test: install-dev chromium mlflow-server
	@$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing on purpose"; exit 1; fi; exit $$rc

test-fast: install-dev
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not browser and not slow" $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check backend app pages tests bench
	$(BIN)/mypy --num-workers auto
	$(BIN)/lint-imports

# pip-audit on the environment built from the pinned requirement files, bandit on backend/ app/ pages/;
# the policy is in backend/operations/security_scan.py. Exit 1: findings; 2: incomplete (a tool or the
# vulnerability data unreachable; SECURITY_ARGS=--allow-unaudited makes only the latter a warning).
SECURITY_ARGS ?=
security: install-dev
	$(BIN)/creditrisk security scan --no-record $(SECURITY_ARGS)

bench: install-dev
	$(BIN)/python bench/scoring.py
	$(BIN)/python bench/service.py
	$(BIN)/python bench/cache.py
	$(BIN)/python bench/signing.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache test-artifacts
