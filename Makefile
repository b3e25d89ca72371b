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

MIRRORS := $(VENV)/shared-mirrors.txt
# The daemon of `make run`: local configuration, FSL Juelich extension, real map files from
# ../shared/data through a mirrors file, never the network.
DAEMON_ENV := SIIBRAD_CONFIGURATION=$(CONFIG) SIIBRAD_MIRRORS_FILE=$(MIRRORS) SIIBRAD_OFFLINE=1

$(MIRRORS): $(BIN)/.installed scripts/mirrors_from_tsv.py
	$(BIN)/python scripts/mirrors_from_tsv.py $(SHARED)/data > $@

## Start the daemon on the local configuration (offline) and ask it first questions.
run: setup $(MIRRORS)
	$(BIN)/siibrad status >/dev/null 2>&1 || $(DAEMON_ENV) $(BIN)/siibrad serve --detach --extension $(SHARED)/data/extensions/fsl-juelich
	$(BIN)/siibrad call region/resolve '{"parcellation": "julich 3.1", "region": "hoc1 left"}'
	$(BIN)/siibrad call map/assign '{"parcellation": "julich 3.1", "space": "mni152", "points": [[-20, -80, 2], [40, 20, 10]]}'
	@echo "siibrad is running: try '$(BIN)/siibrad status', stop it with '$(BIN)/siibrad stop'."

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
