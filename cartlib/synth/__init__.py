"""Synthetic CAR-T cohorts: the generative model behind the bundled default cohort.

Public API: :func:`generate_cohort` (any size, deterministic per seed), :func:`write_cohort`
(contract-shaped CSV folder) and :data:`DEFAULT_COHORT_DIR`, the bundled 50-patient cohort
calibrated to Wang et al. 2025 (rebuilt by ``make calibrate``, outside the package). See
docs/SYNTHETIC.md for the model and the calibration.

>>> tables = generate_cohort(5, seed=3)
>>> list(tables["subjects"].columns[:3])
['USUBJID', 'AGE', 'SEX']
>>> DEFAULT_COHORT_DIR.name
'default_cohort'
"""
from ..analysis import DEFAULT_COHORT as DEFAULT_COHORT_DIR
from .generate import generate_cohort, write_cohort

__all__ = ["generate_cohort", "write_cohort", "DEFAULT_COHORT_DIR"]
