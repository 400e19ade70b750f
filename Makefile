# The two commands of the README: `make run` (the whole pipeline) and `make test` (the whole suite).
# Each sets up what it needs on a fresh machine: a virtualenv in .venv with the project installed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"

run: install
	$(BIN)/abuse-desk run

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/mypy core policy

test: lint
	$(BIN)/pytest -ra

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
