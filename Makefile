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

test: setup
	MPLBACKEND=Agg $(BIN)/python -m pytest tests
	MPLBACKEND=Agg $(BIN)/python -m pytest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider notebooks

report: setup
	$(BIN)/cartlib run --out reports/default

notebooks: setup
	$(BIN)/cartlib notebooks

bench: setup
	$(BIN)/python scripts/bench.py

clean:
	rm -rf $(VENV) reports .pytest_cache
