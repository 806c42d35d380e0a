"""How many Table 2 figures can a cohort reach by moving severe CRS alone?

Holds a cohort's Table 2 covariates fixed (sex, prior HSCT, pre/post-LD MRD < 1e-3, dose below
the median), tries every placement of its severe-CRS cases over the covariate patterns (the two
logistic models depend on nothing else), and prints the placement that misses fewest feasible
multivariable figures of parameters/paper.yaml, with the cohort's own placement beside it.
This is the argument for the toxicity stage's history swaps (docs/SYNTHETIC.md, step 4).

    .venv/bin/python scripts/table2_enumerate.py [COHORT_DIR]      # ~1 min for the default cohort
"""
from __future__ import annotations

import sys

import numpy as np

from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the calibration package (not installed)

from calibration.figures import paper_figures  # noqa: E402
from calibration.table2_objective import logistic_batch, model_figures, scaled_misses, table2_targets  # noqa: E402
from cartlib.derive import derive_analysis_table  # noqa: E402
from cartlib.io import load_cohort  # noqa: E402
from cartlib.synth import DEFAULT_COHORT_DIR  # noqa: E402

COVARIATES = ["female", "no_prior_hsct", "preld_mrd_lt_1e-3", "postld_mrd_lt_1e-3", "dose_lt_median"]


def placements(sizes, events):
    """Every way to put ``events`` cases into cells of the given sizes (rows of counts)."""
    rows = [()]
    for size in sizes:
        rows = [r + (v,) for r in rows for v in range(min(size, events - sum(r)) + 1)]
    return np.array([r for r in rows if sum(r) == events])


def main(cohort_dir=DEFAULT_COHORT_DIR):
    table = derive_analysis_table(load_cohort(cohort_dir))
    targets = table2_targets(paper_figures())
    X = table[COVARIATES].astype(int).to_numpy()
    severe = (table["crs_grade"] >= 3).astype(int).to_numpy()
    patterns, cell, sizes = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    cell = cell.ravel()
    own = np.bincount(cell, weights=severe, minlength=len(sizes)).astype(int)
    rows = placements(sizes, int(severe.sum()))
    misses = np.zeros(len(rows), int)
    for model, covs in targets.items():
        cols = [COVARIATES.index(c) for c in covs]
        coef, se, ok = logistic_batch(patterns[:, cols].astype(float), rows.astype(float), sizes.astype(float))
        for j, wanted in enumerate(covs.values()):
            got = model_figures(coef[:, j], np.where(ok, se[:, j], 1.0))
            for r in scaled_misses(got, ok, wanted).values():
                misses += r > 1
    n_targets = sum(len(w) for covs in targets.values() for w in covs.values())
    best = int(misses.argmin())
    mine = int(np.flatnonzero((rows == own).all(axis=1))[0])
    print(f"{len(rows):,} placements of {int(severe.sum())} severe-CRS cases over {len(sizes)} covariate patterns")
    print(f"best placement holds {n_targets - misses[best]} of {n_targets} figures; "
          f"the cohort's own holds {n_targets - misses[mine]}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
