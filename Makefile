# One command runs the suite on the bundled cohort (make report); one runs the tests (make test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JOBS ?= 2

.PHONY: setup test report notebooks bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# unit, golden, doctest and end-to-end tests; then nbval re-executes the committed notebooks and
# compares every cell marked NBVAL_CHECK_OUTPUT with its stored output
test: setup
	$(BIN)/python -m pytest -p no:cacheprovider --doctest-modules tests cartlib
	$(BIN)/python -m pytest -p no:cacheprovider --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks

report: setup
	$(BIN)/cartlib run --out reports/default

notebooks: setup
	$(BIN)/cartlib notebooks

bench: setup
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) reports .pytest_cache
