"""Fixtures shared across test modules."""
import copy

import pytest


@pytest.fixture(scope="session")
def default_stages():
    """Steps 1-4 of the default cohort run once per session (about 40 s): ``(tables, record)`` of
    :func:`cartlib.synth.calibrate.simulated_tables`, ``record`` holding the latent patients after
    the nudges, the toxicity stage and the outcome stage (tests take them from :func:`default_latent`)."""
    from cartlib.synth.calibrate import simulated_tables

    record = {}
    return simulated_tables(details=record), record


@pytest.fixture(scope="module")
def default_latent(default_stages):
    """The recorded latent states (``nudged``, ``toxicity``, ``outcomes``), a private copy per test
    module (a test may not change another module's input)."""
    return copy.deepcopy(default_stages[1])


@pytest.fixture(scope="session")
def default_cohort(default_stages):
    """The default cohort regenerated once per session: ``(tables, details)`` of
    :func:`cartlib.synth.calibrate.default_cohort_tables` (on the shared steps 1-4), ``details``
    being the kinetics stage's record."""
    from cartlib.synth.calibrate import default_cohort_tables

    details = {}
    return default_cohort_tables(details=details, simulated=copy.deepcopy(default_stages[0])), details
