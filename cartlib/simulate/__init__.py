"""Simulation studies: thousands of synthetic studies drawn from the generative model, each
analysed as the paper was, summarised as sampling distributions, power and sample size.

Public API: :func:`simulate` (``cartlib simulate``), :func:`power_grid` (``cartlib power``),
:func:`load_scenario` and :class:`Scenario`, :func:`replicate_seed`, :func:`summarise`,
:func:`model_check`, :data:`FINDINGS`; the bundled reference study of the unchanged model:
:func:`reference_study`, :func:`reference_power`, :func:`reference_lesson`. See docs/SIMULATION.md.
The names are imported on first use, so that ``cartlib --help`` does not load Dask, pandas or pyarrow.

>>> from cartlib.simulate import replicate_seed
>>> replicate_seed(0, 0) == replicate_seed(0, 0)
True
"""
import importlib

_HOME = {
    "simulate": "engine", "SimulationResult": "engine", "dask_client": "engine", "open_client": "engine",
    "power_grid": "power", "PowerResult": "power", "FINDINGS": "power", "sample_size_for": "power",
    "plot_power": "power",
    "StudySpec": "replicate", "replicate_seed": "replicate", "cohort_from_tables": "replicate",
    "Scenario": "scenario", "load_scenario": "scenario", "bundled_scenarios": "scenario",
    "summarise": "summary", "model_check": "summary", "wilson_interval": "summary",
    "reference_study": "reference", "reference_power": "reference", "reference_lesson": "reference",
    "ReferenceStudy": "reference", "ReferencePower": "reference",
}
__all__ = sorted(_HOME)


def __getattr__(name):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
