"""Check the generative model against the paper: where do the published figures fall among
repeats of the 50-patient study drawn from the model's default parameters?

Each replicate draws an uncalibrated cohort (``cartlib.synth.generate_cohort``, no quotas, no
pins, no stages) and analyses it as ``cartlib run`` does (``compute_results``). For every
figure of ``parameters/paper.yaml`` the check reports the 2.5 / 50 / 97.5 % points of its
simulated distribution, the share of replicates where it could not be estimated, and whether
the paper's value lies inside the central 95 %. A figure outside points at a mechanism the
model lacks (or a published figure that is itself odd: see its ``why`` in paper.yaml).

``python -m calibration.model_check --replicates 1000 --processes 2 --out check.csv``

Replicate ``i`` of seed ``S`` uses the integer seed drawn from the ``i``-th child of
``numpy.random.SeedSequence(S)``, so a check is reproducible and any replicate can be rebuilt
alone (:func:`replicate_seed`).
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from cartlib.synth.generate import generate_cohort
from cartlib.synth.model import load_parameters

from .figures import evaluate, paper_figures

QUANTILES = (0.025, 0.5, 0.975)


def replicate_seed(seed: int, i: int) -> int:
    """The integer cohort seed of replicate ``i`` of a check seeded ``seed``.

    >>> replicate_seed(0, 3) == replicate_seed(0, 3) != replicate_seed(0, 4)
    True
    """
    child = np.random.SeedSequence(int(seed), spawn_key=(int(i),))
    return int(child.generate_state(1, dtype=np.uint32)[0])


def _one(args):
    seed, i, n, params, keys = args
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            r = evaluate(generate_cohort(n, replicate_seed(seed, i), params))
        except Exception as err:  # a failed replicate is recorded, never dropped
            return {"replicate": i, "error": f"{type(err).__name__}: {err}"}
    row = {"replicate": i, "error": ""}
    for k in keys:
        v = r.get(k)
        row[k] = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
    return row


def simulate_figures(replicates: int, n: int = 50, seed: int = 0, processes: int = 1, params=None) -> pd.DataFrame:
    """One row per replicate, one column per paper.yaml key (NaN where not estimable).

    >>> df = simulate_figures(1, n=20)
    >>> len(df), "cohort.n" in df
    (1, True)
    """
    params = params or load_parameters()
    keys = list(dict.fromkeys(f["key"] for f in paper_figures()))
    jobs = [(seed, i, n, params, keys) for i in range(replicates)]
    if processes <= 1:
        rows = [_one(j) for j in jobs]
    else:
        with get_context("spawn").Pool(processes) as pool:
            rows = list(pool.imap(_one, jobs, chunksize=4))
    return pd.DataFrame(rows).sort_values("replicate", kind="stable").reset_index(drop=True)


def check_table(sims: pd.DataFrame, figures=None) -> pd.DataFrame:
    """Per paper figure: paper value, simulated 2.5/50/97.5 %, share not estimable, inside or not.

    A count or value equal to a bound is inside. ``sims``: :func:`simulate_figures`.

    >>> sims = pd.DataFrame({"a": [1.0, 2.0, 3.0, np.nan]})
    >>> t = check_table(sims, [{"key": "a", "value": 5, "feasible": True, "where": "x"}])
    >>> bool(t.loc["a", "inside"]), float(t.loc["a", "not_estimable"])
    (False, 0.25)
    """
    figures = figures or paper_figures()
    rows = []
    for f in figures:
        col = sims[f["key"]] if f["key"] in sims else pd.Series(dtype=float)
        vals = col.to_numpy(dtype=float)
        ok = vals[np.isfinite(vals)]
        q = np.quantile(ok, QUANTILES) if ok.size else [math.nan] * 3
        value = float(f["value"])
        inside = bool(ok.size) and q[0] - 1e-12 <= value <= q[2] + 1e-12
        rows.append({"key": f["key"], "paper": value, "q025": q[0], "q50": q[1], "q975": q[2],
                     "not_estimable": round(1 - ok.size / max(len(vals), 1), 4), "inside": inside,
                     "feasible": bool(f.get("feasible", True)), "where": f.get("where", "")})
    return pd.DataFrame(rows).set_index("key")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calibration.model_check", description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True, help="CSV of the check table")
    parser.add_argument("--replicates-out", type=Path, default=None, help="also write every replicate's figures (CSV)")
    args = parser.parse_args(argv)
    sims = simulate_figures(args.replicates, args.n, args.seed, args.processes)
    if args.replicates_out is not None:
        sims.to_csv(args.replicates_out, index=False)
    table = check_table(sims)
    table.to_csv(args.out)
    failed = int((sims["error"] != "").sum())
    outside = table[~table["inside"]]
    print(f"{len(sims)} replicates ({failed} failed); {len(outside)} of {len(table)} figures outside the central 95 %")
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(outside[["paper", "q025", "q50", "q975", "not_estimable", "feasible"]].round(4).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
