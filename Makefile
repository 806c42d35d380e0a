# One command runs the suite on the bundled cohort (make report); one runs the tests (make test).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
LATEST_VENV := .venv-latest
JOBS ?= 2

.PHONY: setup test report notebooks bench clean
.PHONY: lock test-latest

setup: $(STAMP)

# the versions the committed notebooks were made with (hash-checked), then cartlib itself on top
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# unit, golden, doctest and end-to-end tests; then nbval re-executes the committed notebooks and
# compares every cell marked NBVAL_CHECK_OUTPUT with its stored output
test: setup
	$(BIN)/python -m pytest -p no:cacheprovider --doctest-modules tests cartlib calibration
	$(BIN)/python -m pytest -p no:cacheprovider --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks

report: setup
	$(BIN)/cartlib run --out reports/default

notebooks: setup
	$(BIN)/cartlib notebooks

bench: setup
	$(BIN)/python scripts/bench.py

# rebuild the bundled cohort cartlib/data/default_cohort/ from the model (calibration/, not shipped)
.PHONY: calibrate
calibrate: setup
	$(BIN)/python -m calibration

# re-resolve requirements.lock to the newest versions pyproject.toml allows; environment.yml follows
lock:
	$(PYTHON) scripts/lock.py

# the same tests in a separate environment with the newest allowed versions, so that a breaking
# release is seen before users meet it (the lock stays as it is); setuptools too, as the wheel
# test builds cartlib without build isolation
test-latest:
	test -d $(LATEST_VENV) || $(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[test]' setuptools
	$(LATEST_VENV)/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(LATEST_VENV)/.installed
	$(MAKE) --no-print-directory test VENV=$(LATEST_VENV)

clean:
	rm -rf $(VENV) $(LATEST_VENV) reports .pytest_cache
