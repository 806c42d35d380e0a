"""Small pieces the sections share: time conversion, model-to-keys flattening."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..derive import DAYS_PER_MONTH

ENDPOINTS = {"os": ("os_days", "os_event"), "lfs": ("lfs_days", "lfs_event")}


def months(days) -> Any:
    """Days to months (days / 30.4375, docs/COHORT.md)."""
    return days / DAYS_PER_MONTH


def cumulative_incidence(table: pd.DataFrame, cause: int, groups=None):
    """Aalen–Johansen incidence of relapse (cause 1) or non-relapse mortality (cause 2), months."""
    from ..stats.competing import CumulativeIncidence

    return CumulativeIncidence().fit(months(table["crr_days"]), table["crr_status"], cause=cause, groups=groups)


def survival_data(table: pd.DataFrame, endpoint: str) -> pd.DataFrame:
    """Months and event of ``endpoint`` (os or lfs) with every covariate, one row a patient."""
    days, event = ENDPOINTS[endpoint]
    out = table.copy()
    out["time_mo"] = months(table[days])
    out["event"] = table[event].astype(int)
    return out


def nan_to_none(v) -> Any:
    """A number as a plain Python float, None when missing; anything else unchanged.

    >>> nan_to_none(np.float64(0.5)), nan_to_none(np.int64(14)), nan_to_none(float("nan")), nan_to_none("x")
    (0.5, 14, None, 'x')
    """
    if v is None:
        return None
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return None if math.isnan(f) else f


def model_keys(prefix: str, summary: pd.DataFrame, columns: dict[str, str]) -> dict[str, Any]:
    """Flatten a model summary into ``prefix.COV.key`` entries (NaN -> None).

    >>> s = pd.DataFrame({"hr": [0.5], "p": [0.04]}, index=["female"])
    >>> model_keys("efficacy.lfs.uni", s, {"hr": "hr", "p": "p"})
    {'efficacy.lfs.uni.female.hr': 0.5, 'efficacy.lfs.uni.female.p': 0.04}
    """
    out = {}
    position = {c: i for i, c in enumerate(summary.columns)}
    # the rows of ``summary.values`` are what ``iterrows`` would give (one common dtype, so an
    # integer column reads as float beside float ones), without a Series per row
    for cov, row in zip(summary.index, summary.values):
        for key, col in columns.items():
            out[f"{prefix}.{cov}.{key}"] = nan_to_none(row[position[col]]) if col in position else None
    return out


def _summary_or_none(x, how: str) -> float | None:
    # NumPy's median/min/max of the non-missing values are pandas' (pandas calls them), without
    # a Series per call: a run asks for a few dozen of these
    x = x.to_numpy(dtype=float, na_value=np.nan) if isinstance(x, pd.Series) else np.asarray(pd.Series(x, dtype=float))
    x = x[~np.isnan(x)]
    return float(getattr(np, how)(x)) if x.size else None


def median_or_none(x) -> float | None:
    """Median of the non-missing values, None when there are none."""
    return _summary_or_none(x, "median")


def min_or_none(x) -> float | None:
    return _summary_or_none(x, "min")


def max_or_none(x) -> float | None:
    return _summary_or_none(x, "max")


COVARIATE_LABELS = {
    "female": "Female", "age_gt_10": "Age > 10 y", "genrisk_high": "High-risk cytogenetics",
    "prior_hsct": "HSCT history", "no_prior_hsct": "No HSCT history", "prior_cart": "CAR-T history",
    "no_prior_cart": "No CAR-T history", "preld_mrd_ge_1e-3": "Pre-LD MRD ≥ 10⁻³",
    "preld_mrd_lt_1e-3": "Pre-LD MRD < 10⁻³", "postld_mrd_lt_1e-3": "Post-LD MRD < 10⁻³",
    "crs_ge_3": "CRS grade ≥ 3", "icans": "ICANS (≥ 1)", "neutropenia_g4": "Grade 4 neutropenia",
    "d28_mrd_neg": "MRD-CR on day 28", "hsct_after": "HSCT after CAR-T", "bca_duration_days": "BCA duration (per day)",
    "dose_lt_median": "CAR-T dose < median",
}


def or_reason(value, fmt, reason: str | None) -> str:
    """``value`` as text (``fmt``: a format string or a function), or ``not estimable (reason)`` when missing.

    >>> from cartlib.tables import format_p
    >>> or_reason(0.25, "{:.1%}", "no events"), or_reason(None, "{:.1%}", "no events")
    ('25.0%', 'not estimable (no events)')
    >>> or_reason(0.0004, format_p, None), or_reason(float("nan"), format_p, "one group only")
    ('< 0.001', 'not estimable (one group only)')
    """
    from ..tables import not_estimable

    if value is None or pd.isna(value):
        return not_estimable(reason)
    return fmt(value) if callable(fmt) else fmt.format(value)


def format_correlations(corr: pd.DataFrame, title: str) -> pd.DataFrame:
    """A correlations frame (r, p, n, reason per row) as display text."""
    from ..tables import format_p

    reasons = corr["reason"] if "reason" in corr else pd.Series(None, index=corr.index)
    return pd.DataFrame({"r": [or_reason(r, "{:.3f}", why) for r, why in zip(corr["r"], reasons)],
                         "p": corr["p"].map(format_p), "n": corr["n"].astype(int)}, index=corr.index).rename_axis(title)


def model_display(summary: pd.DataFrame, caption: str, estimate: str = "hr", notes=()):
    """A model summary as the paper prints it (estimate (95% CI), p), with covariate labels and a caption."""
    import re

    from ..tables import captioned, model_table

    if "reason" in summary:   # reasons name covariates by code ("monotone likelihood ... for: icans")
        codes = re.compile("|".join(rf"(?<![\w.]){re.escape(c)}(?!\w)" for c in sorted(COVARIATE_LABELS, key=len,
                                                                                       reverse=True)))
        summary = summary.assign(reason=summary["reason"].map(
            lambda r: codes.sub(lambda m: COVARIATE_LABELS[m.group(0)], r) if isinstance(r, str) else r))
    return captioned(model_table(summary, estimate=estimate, labels=COVARIATE_LABELS), caption, notes)


def paper_sentence(items) -> str:
    """The paper's published values of ``items`` ((label, results key, format spec)) as a caption sentence,
    so a reader sees them beside the figure or table that reproduces them; "" when the paper gives none.

    >>> paper_sentence([("5-year OS", "efficacy.os_5y", "{:.1%}"), ("x", "no.such.key", "{}")])
    ' Paper (Wang et al. 2025): 5-year OS 74.9%.'
    """
    paper = _paper_values()
    parts = [f"{label} {spec.format(paper[key])}" for label, key, spec in items if paper.get(key) is not None]
    return f" Paper (Wang et al. 2025): {'; '.join(parts)}." if parts else ""


def _paper_values() -> dict[str, Any]:
    from ..scorecard import load_paper_figures

    global _PAPER
    if _PAPER is None:
        _PAPER = {f["key"]: f["value"] for f in load_paper_figures()}
    return _PAPER


_PAPER = None


def forest_figure(summary: pd.DataFrame, name: str, title: str, caption: str, estimate: str = "hr",
                  figures_dir: str = ""):
    """The forest plot of a model summary, published with its caption and alt text."""
    from ..plots import plot_forest, publish

    ratio = {"hr": "Hazard ratio", "or": "Odds ratio"}[estimate]
    ax = plot_forest(summary, estimate=estimate, lower=f"{estimate}_lo", upper=f"{estimate}_hi",
                     labels=COVARIATE_LABELS, xlabel=f"{ratio} (95% CI), log scale", title=title)
    shown = [COVARIATE_LABELS.get(c, c) for c in summary.index]
    alt = (f"Forest plot: {ratio.lower()} with 95% confidence interval, on a log axis with a dashed line at 1, "
           f"for {len(shown)} covariates ({', '.join(shown)}); the estimates and p-values are written beside "
           "each row and in the table above.")
    return publish(ax, name, caption, alt, figures_dir)


def format_number(v) -> str:
    """Display text of a kinetic or clinical number: thousands separated from 1,000 up, else 4 digits.

    >>> format_number(30860.4), format_number(10.5), format_number(float("nan"))
    ('30,860', '10.5', '—')
    """
    if v is None or pd.isna(v):
        return "—"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
