"""Speed of the kinetic-model fits: the bundled 50-patient cohort (target 5 s) and a synthetic
cohort of 5,000 patients (target 2 minutes on a 2-core machine).

``measure()`` returns one dict per figure (name, value, unit, target, met); run as a script it
prints them. The fitter is one process (numpy, batched over patients); wall time and the
process's CPU time are both given, since other work on the machine stretches the wall time.
"""
from __future__ import annotations

import json
import time

from cartlib.analysis import analysis_table, load
from cartlib.params import defaults
from cartlib.pk.model import KineticModelFitter
from cartlib.synth import generate_cohort

LARGE_N = 5_000


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _figures(name, wall, cpu, target):
    return [{"name": f"{name} (wall)", "value": round(wall, 2), "unit": "s", "target": target,
             "met": wall <= target},
            {"name": f"{name} (CPU of the process)", "value": round(cpu, 2), "unit": "s", "target": target,
             "met": cpu <= target}]


def measure() -> list[dict]:
    """Fit the bundled cohort and a 5,000-patient synthetic cohort; the figures as dicts."""
    params = defaults()
    cohort = load(params)
    table = analysis_table(cohort, params)
    fit, wall, cpu = _timed(lambda: KineticModelFitter().fit(cohort.pk, lloq=params["lloq"],
                                                             end_day=table["hsct_day"]))
    out = _figures("kinetic model, bundled cohort (50 patients)", wall, cpu, 5.0)
    pk = generate_cohort(LARGE_N, seed=1)["pk"]
    fit, wall, cpu = _timed(lambda: KineticModelFitter().fit(pk, lloq=params["lloq"]))
    out += _figures(f"kinetic model, {LARGE_N:,} synthetic patients", wall, cpu, 120.0)
    return out


if __name__ == "__main__":
    for row in measure():
        print(json.dumps(row, ensure_ascii=False))
