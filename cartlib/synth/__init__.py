"""Synthetic CAR-T cohorts: a generative model calibrated to Wang et al. 2025 (the default input).

Public API: :func:`generate_cohort` (any size, deterministic per seed), :func:`write_cohort`
(contract-shaped CSV folder), :func:`default_cohort_tables` (the calibrated 50-patient cohort
bundled in :data:`DEFAULT_COHORT_DIR`). See docs/SYNTHETIC.md for the model and calibration.

>>> tables = generate_cohort(5, seed=3)
>>> list(tables["subjects"].columns[:3])
['USUBJID', 'AGE', 'SEX']
>>> DEFAULT_COHORT_DIR.name
'default_cohort'
"""
from .calibrate import DEFAULT_COHORT_DIR, default_cohort_tables, write_default_cohort
from .generate import generate_cohort, write_cohort

__all__ = ["generate_cohort", "write_cohort", "default_cohort_tables", "write_default_cohort",
           "DEFAULT_COHORT_DIR"]
