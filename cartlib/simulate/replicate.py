"""One replicate: draw a cohort from the generative model and analyse it as ``cartlib run`` does.

Replicate ``i`` of a study with seed ``S`` draws its cohort with the seed
:func:`replicate_seed` ``(S, i)``: the first 32-bit word of ``numpy.random.SeedSequence(S,
spawn_key=(i,))``, which is the ``i``-th child of ``SeedSequence(S).spawn(...)``. It depends on
(S, i) only, never on the number of replicates, the chunk or the worker, so
``cartlib synth --n N --seed <that seed>`` writes the very cohort replicate ``i`` analysed.
"""
from __future__ import annotations

import importlib
import math
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..io import Cohort, TABLES
from ..results import normalise
from ..sections import SECTION_NAMES, compute_results
from ..synth import generate_cohort
from ..synth.generate import format_column
from ..validate import type_table


@dataclass(frozen=True)
class StudySpec:
    """Everything a worker needs to run replicates: n, the study seed, the model and the analysis.

    ``sections`` None runs every results section (``compute_results``); a tuple of names of
    :data:`cartlib.sections.SECTION_NAMES` runs only those (same values for their keys).
    """

    n: int
    seed: int
    model: dict[str, Any]
    analysis: dict[str, Any] = field(default_factory=dict)
    sections: tuple[str, ...] | None = None


def replicate_seed(seed: int, index: int) -> int:
    """The cohort seed of replicate ``index`` of a study seeded ``seed`` (0 to 2**32 - 1).

    >>> replicate_seed(7, 0) == replicate_seed(7, 0), replicate_seed(7, 0) != replicate_seed(7, 1)
    (True, True)
    >>> import numpy as np
    >>> replicate_seed(7, 3) == int(np.random.SeedSequence(7).spawn(5)[3].generate_state(1)[0])
    True
    """
    return int(np.random.SeedSequence(int(seed), spawn_key=(int(index),)).generate_state(1)[0])


def cohort_from_tables(tables: dict[str, pd.DataFrame]) -> Cohort:
    """The generated tables typed exactly as :func:`cartlib.io.load_cohort` types the CSV files
    ``cartlib synth`` writes (same text, same parser), without writing them.

    >>> c = cohort_from_tables(generate_cohort(3, seed=0))
    >>> len(c.subjects), c.pk["CONC"].dtype.name
    (3, 'float64')
    """
    text = {t: pd.DataFrame({c: format_column(tables[t][c]) for c in tables[t].columns}) for t in TABLES}
    return Cohort(**{t: type_table(t, text[t]) for t in TABLES}, source="simulation")


def analyse(cohort: Cohort, analysis: dict[str, Any], sections: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The results keys of one cohort: every section (``compute_results``) or only ``sections``.

    >>> r = analyse(cohort_from_tables(generate_cohort(20, seed=1)), {}, ("cohort",))
    >>> r["cohort.n"]
    20
    """
    if sections is None:
        return compute_results(cohort, analysis)
    from ..analysis import analysis_table
    from ..params import resolve

    unknown = [s for s in sections if s not in SECTION_NAMES]
    if unknown:
        raise ValueError(f"unknown section(s) {unknown}; the sections are {', '.join(SECTION_NAMES)}")
    params = resolve(analysis)
    table = analysis_table(cohort, params)
    out: dict[str, Any] = {}
    for name in sections:
        out.update(importlib.import_module(f"cartlib.sections.{name}").results(cohort, table, params))
    return {k: normalise(v) for k, v in sorted(out.items())}


def run_replicate(spec: StudySpec, index: int) -> dict[str, Any]:
    """One replicate as a record: ``replicate``, ``seed``, ``error`` (None when it ran) and
    ``values`` (results key -> float, NaN where not estimable).

    A replicate that raises is returned with its error (type, message and the last frame), so
    that it is counted, and can be re-run from its seed, instead of stopping the study.

    >>> from cartlib.synth.model import load_parameters
    >>> rec = run_replicate(StudySpec(n=20, seed=1, model=load_parameters(), sections=("cohort",)), 0)
    >>> rec["error"] is None, rec["values"]["cohort.n"]
    (True, 20.0)
    """
    seed = replicate_seed(spec.seed, index)
    try:
        with warnings.catch_warnings():
            # thousands of small cohorts hit every edge a fit warns about; the keys say "not estimable"
            warnings.simplefilter("ignore")
            tables = generate_cohort(spec.n, seed, params=spec.model, progress=False)
            results = analyse(cohort_from_tables(tables), spec.analysis, spec.sections)
        values = {k: _as_float(v) for k, v in results.items()}
        return {"replicate": index, "seed": seed, "error": None, "values": values}
    except Exception as exc:  # noqa: BLE001 - a failing replicate is data, recorded with its seed
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        place = f" ({where.filename.rsplit('/', 1)[-1]}:{where.lineno})" if where else ""
        return {"replicate": index, "seed": seed, "error": f"{type(exc).__name__}: {exc}{place}", "values": {}}


def run_chunk(spec: StudySpec, indices: list[int]) -> list[dict[str, Any]]:
    """Replicates ``indices`` in order (one Dask task).

    >>> import cartlib.synth.model as m
    >>> [r["replicate"] for r in run_chunk(StudySpec(10, 2, m.load_parameters(), sections=("cohort",)), [4, 5])]
    [4, 5]
    """
    return [run_replicate(spec, i) for i in indices]


def _as_float(value: Any) -> float:
    if value is None:
        return math.nan
    return float(value)
