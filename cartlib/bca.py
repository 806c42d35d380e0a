"""B-cell aplasia (BCA) analyses and the IL-6 association with toxicity.

BCA onset, duration and the ongoing flag are derived per the contract by
``cartlib.derive.derive_bca``; this module analyses them (Kaplan–Meier of the loss of
BCA, correlations with CAR-T kinetics) and relates the IL-6 peak to severe CRS and
ICANS. The statistics come from :mod:`cartlib.stats`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .pk.summary import correlation_table
from .stats.compare import fisher_exact
from .stats.survival import KaplanMeier


def _require(analysis: pd.DataFrame, columns, who: str) -> None:
    missing = [c for c in columns if c not in analysis]
    if missing:
        raise ValueError(f"{who} needs the analysis-table columns {missing}")


def bca_loss_km(analysis: pd.DataFrame, ci: str = "plain") -> KaplanMeier:
    """Kaplan–Meier of the time from BCA onset to loss of BCA, patients with onset only.

    Time is ``bca_duration_days``; the event is a loss of BCA (``bca_ongoing`` = 0),
    ongoing aplasia is censored at the last assessment. ``ci`` is the CI transform
    (``plain``, ``log``, ``log-log``, as R ``survfit(conf.type=)``).

    >>> a = pd.DataFrame({"bca": [1, 1, 1, 0], "bca_duration_days": [30.0, 60, 90, 0],
    ...                   "bca_ongoing": [0, 1, 0, 0]})
    >>> km = bca_loss_km(a)
    >>> km.table_["survival"].round(4).tolist(), km.median_
    ([0.6667, 0.6667, 0.0], 90.0)
    """
    _require(analysis, ("bca", "bca_duration_days", "bca_ongoing"), "bca_loss_km")
    onset = analysis[analysis["bca"] == 1]
    if onset.empty:
        raise ValueError("bca_loss_km: no patient with BCA onset")
    events = 1 - onset["bca_ongoing"].astype(int)
    return KaplanMeier(ci=ci).fit(onset["bca_duration_days"].to_numpy(float),
                                  events.to_numpy(int), label="loss of BCA")


def bca_correlations(analysis: pd.DataFrame, method: str = "spearman") -> pd.DataFrame:
    """Correlation of BCA duration with PK Tlast, Cmax and AUC0–28d (the paper's Figure 2).

    All patients, as RESULTS.md ``bca.tlast_r``: patients without BCA onset enter with
    duration 0; a patient without the PK value (e.g. no quantifiable sample, so no
    Tlast) is dropped from that pair only. Index ``tlast``, ``cmax``, ``auc28``; columns
    ``x``, ``y``, ``r``, ``p``, ``n``, ``reason`` (see
    :func:`cartlib.pk.summary.correlation_table`).

    >>> a = pd.DataFrame({"bca_duration_days": [0.0, 30, 60, 90],
    ...     "tlast": [14.0, 28, 90, np.nan], "cmax": [1e3, 4e3, 2e3, 8e3],
    ...     "auc28": [1e4, 3e4, 2e4, 9e4]})
    >>> bca_correlations(a)[["r", "n"]].round(3).to_dict("index")
    {'tlast': {'r': 1.0, 'n': 3}, 'cmax': {'r': 0.8, 'n': 4}, 'auc28': {'r': 0.8, 'n': 4}}
    """
    pairs = {y: ("bca_duration_days", y) for y in ("tlast", "cmax", "auc28")}
    _require(analysis, ["bca_duration_days", *pairs], "bca_correlations")
    return correlation_table(analysis, pairs, method)


def derive_il6_elevated(analysis: pd.DataFrame, uln: float = 7.0) -> pd.Series:
    """``il6_elevated``: 1 when the IL-6 peak (days 0–28) is above ``uln`` pg/mL, else 0.

    A patient without any IL-6 value in the window (``il6_peak`` NaN) counts as not
    elevated: nothing recorded an elevation.

    >>> derive_il6_elevated(pd.DataFrame({"il6_peak": [5.0, 7.0, 7.6, np.nan]})).tolist()
    [0, 0, 1, 0]
    """
    _require(analysis, ("il6_peak",), "derive_il6_elevated")
    peak = pd.to_numeric(analysis["il6_peak"], errors="coerce")
    return (peak > uln).astype(int).rename("il6_elevated")


def _odds_ratio(a: int, b: int, c: int, d: int, level: float = 0.95):
    """Sample odds ratio ad/bc of a 2x2 table with Woolf's (logit) CI; NaN + reason if undefined."""
    if b * c == 0:
        return (np.nan, np.nan, np.nan,
                "a zero in the off-diagonal cells: the odds ratio is infinite or undefined")
    estimate = a * d / (b * c)
    if a * d == 0:
        return estimate, np.nan, np.nan, "a zero cell: Woolf's confidence interval is undefined"
    z = stats.norm.ppf(0.5 + level / 2)
    half = z * np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    return estimate, estimate * np.exp(-half), estimate * np.exp(half), None


def il6_association(analysis: pd.DataFrame, uln: float = 7.0,
                    outcomes=("crs_ge_3", "icans")) -> pd.DataFrame:
    """Elevated IL-6 (peak > ``uln``) as a marker of severe CRS and of ICANS.

    For each outcome, the 2x2 table of elevated IL-6 (rows yes/no) by the outcome
    (columns yes/no): cell counts ``a`` (both), ``b`` (elevated only), ``c`` (outcome
    only), ``d`` (neither); the **sample odds ratio** ``or`` = ad/bc with Woolf's 95 %
    CI ``or_lo``/``or_hi`` (log OR ± 1.96·sqrt(1/a+1/b+1/c+1/d)); and ``p``, the
    two-sided **Fisher exact** p of the table (:func:`cartlib.stats.compare.fisher_exact`).
    A NaN is explained in ``reason``. Elevation as :func:`derive_il6_elevated` (missing
    peak = not elevated); patients with a missing outcome are left out.

    >>> a = pd.DataFrame({"il6_peak": [50, 80, 3, 2, 60, 1, 90, 4.0],
    ...                   "crs_ge_3": [1, 1, 0, 0, 0, 1, 1, 0],
    ...                   "icans": [1, 0, 0, 0, 0, 0, 0, 0]})
    >>> res = il6_association(a)
    >>> res.loc["crs_ge_3", ["a", "b", "c", "d", "or"]].to_dict()
    {'a': 3, 'b': 1, 'c': 1, 'd': 3, 'or': 9.0}
    >>> res.loc["icans", "reason"]
    'a zero in the off-diagonal cells: the odds ratio is infinite or undefined'
    """
    _require(analysis, ["il6_peak", *outcomes], "il6_association")
    elevated = derive_il6_elevated(analysis, uln).astype(bool)
    records = {}
    for outcome in outcomes:
        y = pd.to_numeric(analysis[outcome], errors="coerce")
        known = y.notna()
        e, o = elevated[known], y[known].astype(bool)
        a, b = int((e & o).sum()), int((e & ~o).sum())
        c, d = int((~e & o).sum()), int((~e & ~o).sum())
        estimate, lo, hi, reason = _odds_ratio(a, b, c, d)
        p = fisher_exact([[a, b], [c, d]], estimate=False).p_value   # the sample OR above, not the conditional MLE
        records[outcome] = {"n": a + b + c + d, "a": a, "b": b, "c": c, "d": d,
                            "or": estimate, "or_lo": lo, "or_hi": hi,
                            "p": np.nan if p is None else float(p), "reason": reason}
    out = pd.DataFrame.from_dict(records, orient="index")
    out.attrs["uln"] = uln
    return out


def il6_summary(analysis: pd.DataFrame, uln: float = 7.0) -> pd.Series:
    """IL-6 peak summary as the paper reports it: elevated patients, median (range) peak and day.

    ``n`` patients, ``n_elevated`` (peak > ``uln``); ``peak_median``, ``peak_min``,
    ``peak_max``, ``day_median``, ``day_min``, ``day_max`` over the **elevated** patients
    (the paper's range starts above the ULN: "33.3 pg/mL (range 7.6 to >5000) ... at a
    median of 8 days (range 1-22)"). NaN when no patient is elevated.

    >>> a = pd.DataFrame({"il6_peak": [3.0, 20.0, 40.0, np.nan], "il6_peak_day": [2, 5, 9, np.nan]})
    >>> il6_summary(a)[["n", "n_elevated", "peak_median", "day_max"]].tolist()
    [4.0, 2.0, 30.0, 9.0]
    """
    _require(analysis, ("il6_peak", "il6_peak_day"), "il6_summary")
    hit = analysis[derive_il6_elevated(analysis, uln).astype(bool)]
    out = {"n": len(analysis), "n_elevated": len(hit)}
    for name, column in (("peak", "il6_peak"), ("day", "il6_peak_day")):
        x = pd.to_numeric(hit[column], errors="coerce").dropna()
        out.update({f"{name}_median": x.median() if len(x) else np.nan,
                    f"{name}_min": x.min(), f"{name}_max": x.max()})
    return pd.Series(out, dtype=float)
