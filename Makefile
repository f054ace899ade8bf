# make run: set up and run the main job (local Prefect server + worker + demo bookings)
# make test: set up and run the whole test suite (SQLite, and PostgreSQL when reachable), on
# four pytest-xdist workers (the tests wait on servers and workers more than they compute:
# the suite keeps under one of the two cores busy on average), a test module per worker at a
# time, in the order collected (the slowest modules first)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,scale-out]"
	touch $@

run: $(VENV)/.installed
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(PY) -m local.demo $(ARGS)

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(PY) -m pytest -n 4 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) data
