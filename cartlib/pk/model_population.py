"""Two-stage population summary of per-patient kinetic-model fits, beside Stein 2019.

Stage one is :class:`cartlib.pk.model.KineticModelFitter` (one fit per patient); stage two
summarises each quantity over the patients for whom the data determine it: the geometric
mean and the between-patient geometric CV % (sqrt(exp(s^2) - 1), s the SD of the logs), as
for log-normally distributed parameters. The method's limits are in docs/KINETIC_MODEL.md.

>>> s = pd.DataFrame({"cmax": [1e3, 1e4, np.nan], "status": ["converged"] * 3})
>>> population_summary(s, quantities=("cmax",)).loc["cmax", ["n", "geomean"]].round(2).tolist()
[2.0, 3162.28]
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .model import DERIVED, FITTED, PARAMETERS

#: Typical values of the tisagenlecleucel population model in pediatric and young-adult B-ALL
#: (Stein et al., CPT Pharmacometrics Syst Pharmacol 2019;8:285).
STEIN_2019 = {"cmax": 24_000.0, "tmax": 9.3, "fold_expansion": 3_900.0, "alpha": 0.16, "fb": 0.0079,
              "beta": 0.0032}
LABELS = {"cmax": "Cmax, copies/µg", "tmax": "Tmax, days", "fold_expansion": "fold expansion",
          "alpha": "contraction rate α, 1/day", "fb": "persisting fraction FB", "beta": "persistence rate β, 1/day",
          "doubling_time": "expansion doubling time, days", "contraction_half_life": "contraction half-life, days",
          "persistence_half_life": "persistence half-life (ln 2/β), days",
          "time_below_lloq": "predicted day below the LLOQ", "auc28": "model AUC0–28d, copies/µg×day"}
SUMMARISED = PARAMETERS + DERIVED


def geometric_summary(values) -> dict[str, float]:
    """n, geometric mean, geometric CV % and median of the positive finite values.

    >>> {k: round(v, 3) for k, v in geometric_summary([1.0, 10.0, 100.0]).items()}
    {'n': 3, 'geomean': 10.0, 'geocv_pct': 1413.214, 'median': 10.0}
    """
    x = np.asarray(values, float)
    x = x[np.isfinite(x) & (x > 0)]
    if x.size == 0:
        return {"n": 0, "geomean": np.nan, "geocv_pct": np.nan, "median": np.nan}
    logs = np.log(x)
    sd = logs.std(ddof=1) if x.size > 1 else np.nan
    return {"n": int(x.size), "geomean": float(np.exp(logs.mean())),
            "geocv_pct": float(np.sqrt(np.expm1(sd ** 2)) * 100) if x.size > 1 else np.nan,
            "median": float(np.median(x))}


def population_summary(summary: pd.DataFrame, by: pd.Series | None = None,
                       quantities=SUMMARISED) -> pd.DataFrame:
    """Geometric summary of each quantity over identifiable fits, overall or per group.

    ``summary`` is ``KineticModelFitter.summary`` (rows whose status is not "converged" or
    "partly identifiable" are left out; a quantity the data could not determine is NaN and
    is left out too). ``by`` is a Series of group labels indexed like ``summary`` (e.g. the
    day-28 response); the result is then indexed by (group, quantity).
    """
    ok = summary["status"].isin(FITTED)
    rows = []
    groups = [(None, ok)] if by is None else [
        (g, ok & (by.reindex(summary.index) == g)) for g in sorted(by.dropna().unique())]
    for group, mask in groups:
        for q in quantities:
            row = {"quantity": q, **geometric_summary(summary.loc[mask, q])}
            if by is not None:
                row = {"group": group, **row}
            rows.append(row)
    out = pd.DataFrame(rows)
    return out.set_index(["group", "quantity"] if by is not None else "quantity")


def beside_stein(summary: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The population table of the six parameters beside Stein 2019's typical values, as text
    (geometric mean (CV %), n) for the notebook."""
    pop = population_summary(summary, quantities=PARAMETERS)
    rows = []
    for q in PARAMETERS:
        r = pop.loc[q]
        rows.append({"parameter": LABELS[q], "n": int(r["n"]),
                     "geometric mean": _sig(r["geomean"], digits), "CV %": _sig(r["geocv_pct"], 2),
                     "Stein 2019 typical value": _sig(STEIN_2019[q], digits)})
    return pd.DataFrame(rows).set_index("parameter")


def _sig(v, digits):
    """A number with ``digits`` significant digits (text), '–' when not estimable."""
    if v is None or not np.isfinite(v):
        return "–"
    return f"{float(f'{v:.{digits}g}'):,g}" if abs(v) >= 1 else f"{v:.{digits}g}"
