"""The results.json keys of each results section, computed from the analysis table.

Each module has ``results(cohort, table, params) -> dict`` returning its section's keys
(docs/RESULTS.md); notebooks record them with
``cartlib.results.Recorder`` and show the pieces they are made of. ``compute_results``
runs every section at once (the paper test and the calibration of the synthetic cohort
use it; it gives the same numbers as a full ``cartlib run``).
"""
from __future__ import annotations

import importlib
from typing import Any

# imported on use: a notebook that needs one section does not pay for the others' libraries
SECTION_NAMES = ("cohort", "efficacy", "toxicity", "pk", "bca", "transplant")


def compute_results(cohort_data, params: dict[str, Any] | None = None, table=None) -> dict[str, Any]:
    """Every section's keys for one cohort, sorted, normalised as results.json stores them.

    >>> from cartlib.analysis import load
    >>> from cartlib.params import defaults
    >>> r = compute_results(load(defaults()))
    >>> r["cohort.n"]
    50
    """
    from ..analysis import analysis_table
    from ..params import resolve
    from ..results import normalise

    params = resolve(params)
    table = analysis_table(cohort_data, params) if table is None else table
    out: dict[str, Any] = {}
    for name in SECTION_NAMES:
        module = importlib.import_module(f"{__name__}.{name}")
        out.update(module.results(cohort_data, table, params))
    return {k: normalise(v) for k, v in sorted(out.items())}
