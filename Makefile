# The two commands of the README: `make run` (the whole pipeline) and `make test` (the whole suite).
# Each sets up what it needs on a fresh machine: a virtualenv in .venv with the project installed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint install install-test browser clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Both install the pinned versions (what deploy/Dockerfile builds from), then the project itself without resolving again.
install: $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .

install-test: install
	$(BIN)/pip install --quiet -r requirements-test.lock
	$(BIN)/pip install --quiet --no-deps -e ".[test]"

run: install
	$(BIN)/abuse-desk run

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy core ingest policy actions abuse_desk

# The ops web page is tested in a real browser: Debian's chromium driven by Playwright (never `playwright install`).
browser:
	@command -v chromium >/dev/null || { echo "installing chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v chromium >/dev/null || { echo "chromium is missing: apt-get install chromium" >&2; exit 1; }

test: lint browser
	$(BIN)/pytest -ra

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

# requirements.lock: the runtime dependencies pinned from a clean install (the container image builds from it);
# requirements-test.lock: the test tools pinned the same way (beyond what requirements.lock holds).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet .
	{ echo "# Pinned runtime dependencies of abuse-desk (what deploy/Dockerfile installs). Regenerate: make lock"; \
	  .lock-venv/bin/pip freeze --exclude abuse-desk; } > requirements.lock
	rm -rf .lock-venv
