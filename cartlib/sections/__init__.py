"""The results.json keys of each results section, computed from the analysis table.

Each module has ``results(cohort, table, params) -> dict`` returning its section's keys
(docs/RESULTS.md); notebooks record them with
``cartlib.results.Recorder`` and show the pieces they are made of. ``compute_results``
runs every section at once (the paper test and the calibration of the synthetic cohort
use it; it gives the same numbers as a full ``cartlib run``); its ``sections`` argument runs a
subset (e.g. to skip the per-patient kinetic-model fits in a loop over many cohorts). The
``kinetic_model`` section's keys are ``pk.model.*``.
"""
from __future__ import annotations

import importlib
from typing import Any

# imported on use: a notebook that needs one section does not pay for the others' libraries
SECTION_NAMES = ("cohort", "efficacy", "toxicity", "pk", "bca", "transplant", "kinetic_model")
# the paper's own results sections: every section but the kinetic model, which goes beyond it (what
# the bundled simulation reference and the speed targets of make bench analyse)
PAPER_SECTIONS = tuple(name for name in SECTION_NAMES if name != "kinetic_model")


def compute_results(cohort_data, params: dict[str, Any] | None = None, table=None,
                    sections=SECTION_NAMES) -> dict[str, Any]:
    """Every section's keys for one cohort, sorted, normalised as results.json stores them.

    ``sections`` (names of :data:`SECTION_NAMES`, default all) limits the run to those sections.

    >>> from cartlib.analysis import load
    >>> from cartlib.params import defaults
    >>> r = compute_results(load(defaults()))
    >>> r["cohort.n"]
    50
    >>> sorted({k.split(".")[0] for k in compute_results(load(defaults()), sections=["cohort"])})
    ['cohort']
    """
    from ..analysis import analysis_table
    from ..params import resolve
    from ..results import normalise

    unknown = [name for name in sections if name not in SECTION_NAMES]
    if unknown or isinstance(sections, str):
        raise ValueError(f"sections must be a list of {SECTION_NAMES}, not {sections!r}")
    params = resolve(params)
    table = analysis_table(cohort_data, params) if table is None else table
    out: dict[str, Any] = {}
    for name in sections:
        module = importlib.import_module(f"{__name__}.{name}")
        out.update(module.results(cohort_data, table, params))
    return {k: normalise(v) for k, v in sorted(out.items())}
