# The two commands of the README:  `make run`  and  `make test`.
# Both create .venv (once) with everything the project needs; nothing else must be installed by hand.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= $(abspath ../shared)
CONFIG ?= $(SHARED)/data/siibra-configurations

.PHONY: setup run test lint bench clean

$(BIN)/.installed: pyproject.toml clients/python/pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e clients/python
	touch $@

setup: $(BIN)/.installed

## Start the daemon on the local configuration (offline) and ask it a first question.
run: setup
	SIIBRAD_CONFIGURATION=$(CONFIG) $(BIN)/siibrad serve --detach
	$(BIN)/siibrad call region/resolve '{"parcellation": "julich 3.1", "region": "hoc1 left"}'

## Every test: unit, contract, golden, faults, end-to-end (a real daemon), clients.
test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict siibrad

bench: setup
	$(BIN)/python bench/catalog.py
	$(BIN)/python bench/daemon.py
	$(BIN)/python bench/assign.py

clean:
	rm -rf $(VENV) .venv-siibra
