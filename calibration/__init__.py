"""The calibration of the bundled 50-patient cohort (a build step, not part of the installed package).

The generative model lives in :mod:`cartlib.synth`; this package holds the deterministic search
that fits its draws to the paper's published figures and writes the result to
``cartlib/data/default_cohort/`` (``make calibrate``, i.e. ``python -m calibration``). Its
decisions are taken on BLAS-free, settled numbers (:mod:`calibration.numerics`), so the files are
the same bytes on every machine. See docs/SYNTHETIC.md.

Modules, in the order the pipeline runs them: :mod:`~calibration.figures` (quotas and pins from
``parameters/paper.yaml``), :mod:`~calibration.nudges`, :mod:`~calibration.fit_toxicity` (with
:mod:`~calibration.table2_objective`), :mod:`~calibration.fit_outcomes` (with
:mod:`~calibration.outcome_objective`), :mod:`~calibration.fit_kinetics` (with
:mod:`~calibration.kinetics_objective`, :mod:`~calibration.kinetics_milp`,
:mod:`~calibration.kinetics_profiles`); :mod:`~calibration.pipeline` chains them.
"""
from .pipeline import default_cohort_tables, simulated_tables, write_default_cohort

__all__ = ["default_cohort_tables", "simulated_tables", "write_default_cohort"]
