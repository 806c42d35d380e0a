"""Fixtures shared across test modules."""
import pytest


@pytest.fixture(scope="session")
def default_cohort():
    """The default cohort regenerated once per session (about 90 s): ``(tables, details)`` of
    :func:`cartlib.synth.calibrate.default_cohort_tables`, ``details`` being the kinetics stage's record."""
    from cartlib.synth.calibrate import default_cohort_tables

    details = {}
    return default_cohort_tables(details=details), details
