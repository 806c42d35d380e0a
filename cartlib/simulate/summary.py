"""Sampling distributions of the results keys over replicates, power, and the model check.

Per key: mean, SD, 2.5/50/97.5 percentiles over the replicates where it was estimable, and the
share of replicates where it was not estimable (null in results.json). For a p-value key,
the power: the share of analysed replicates with p < alpha (a replicate where p is not
estimable counts as not significant), with a Wilson 95 % interval for the Monte Carlo error.
For a key the paper reports (``parameters/paper.yaml``), the paper's value and its percentile
among the replicates. Everything is computed from the replicates sorted by index and written
with fixed formatting, so the files are byte-identical whatever ran the replicates.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ..scorecard import load_paper_figures
from .store import FIXED_COLUMNS

ALPHA = 0.05
Z95 = 1.959963984540054
DIGITS = 6   # significant digits written: far above Monte Carlo precision, far below float noise
# the paper's headline figures (its abstract's numbers and main findings), flagged in the model check
HEADLINE_KEYS = ("cohort.n", "efficacy.cr_rate", "efficacy.mrd_cr_rate", "efficacy.os_5y", "efficacy.lfs_5y",
                 "toxicity.crs_rate", "toxicity.crs_ge_3_rate", "bca.tlast_r",
                 "efficacy.lfs.multi.bca_duration_days.hr", "efficacy.lfs.multi.female.hr",
                 "transplant.os_logrank_p.preld_mrd_lt_1e-4")
COLUMNS = ["key", "estimable", "mean", "sd", "p2_5", "p50", "p97_5", "not_estimable", "power", "power_lo",
           "power_hi", "paper", "paper_percentile"]


def is_p_value_key(key: str) -> bool:
    """Whether a results key is a p-value (a name part ``p`` or ending in ``_p``).

    >>> is_p_value_key("efficacy.lfs.multi.female.p"), is_p_value_key("transplant.os_logrank_p.all")
    (True, True)
    >>> is_p_value_key("efficacy.lfs.multi.female.hr"), is_p_value_key("cohort.preld_mrd_lt_1e-3_n")
    (False, False)
    """
    return any(part == "p" or part.endswith("_p") for part in key.split("."))


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (R ``prop.test(correct = FALSE)``'s CI).

    >>> [round(x, 4) for x in wilson_interval(8, 10)]
    [0.4902, 0.9433]
    >>> wilson_interval(0, 0)
    (nan, nan)
    """
    if trials == 0:
        return math.nan, math.nan
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    # at 0 or all successes the bound is exactly 0 or 1 (not a rounding error away from it)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == trials else min(1.0, centre + half)
    return lo, hi


def percentile_of(value: float, sample: np.ndarray) -> float:
    """Mid-rank percentile (0-100) of ``value`` among ``sample``: ties count half.

    >>> percentile_of(2.0, np.array([1.0, 2.0, 3.0, 4.0]))
    37.5
    """
    if sample.size == 0:
        return math.nan
    below = np.count_nonzero(sample < value)
    equal = np.count_nonzero(sample == value)
    return float(100.0 * (below + 0.5 * equal) / sample.size)


def paper_values(figures: Iterable[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The published figures by key (first listing wins), with value, where, feasible.

    >>> paper_values()["cohort.n"]["value"]
    50
    """
    out: dict[str, dict[str, Any]] = {}
    for fig in figures if figures is not None else load_paper_figures():
        if isinstance(fig.get("value"), (int, float)) and not isinstance(fig.get("value"), bool):
            out.setdefault(fig["key"], fig)
    return out


def summarise(data: pd.DataFrame, alpha: float = ALPHA,
              figures: Iterable[dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per results key over the analysed replicates of ``data`` (see module docstring).

    Parameters
    ----------
    data : pandas.DataFrame
        Replicates as :func:`cartlib.simulate.store.read_replicates` gives them.
    alpha : float, default 0.05
        Significance level of the power.
    figures : iterable of dict, optional
        The paper's figures (default: ``parameters/paper.yaml``).

    Examples
    --------
    >>> d = pd.DataFrame({"replicate": [0, 1, 2, 3], "seed": [1, 2, 3, 4], "error": [None] * 4,
    ...                   "x.p": [0.01, 0.2, 0.03, np.nan]})
    >>> row = summarise(d, figures=[]).iloc[0]
    >>> row["key"], int(row["estimable"]), float(row["power"]), float(row["not_estimable"])
    ('x.p', 3, 0.5, 0.25)
    """
    ok = data[data["error"].isna()] if len(data) else data
    analysed = len(ok)
    paper = paper_values(figures)
    rows = []
    for key in (c for c in data.columns if c not in FIXED_COLUMNS):
        values = ok[key].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        row: dict[str, Any] = {"key": key, "estimable": int(finite.size)}
        if finite.size:
            q = np.quantile(finite, [0.025, 0.5, 0.975])
            row.update(mean=float(finite.mean()), sd=float(finite.std(ddof=1)) if finite.size > 1 else math.nan,
                       p2_5=float(q[0]), p50=float(q[1]), p97_5=float(q[2]))
        row["not_estimable"] = 1.0 - finite.size / analysed if analysed else math.nan
        if is_p_value_key(key) and analysed:
            hits = int(np.count_nonzero(finite < alpha))
            row["power"] = hits / analysed
            row["power_lo"], row["power_hi"] = wilson_interval(hits, analysed)
        if key in paper:
            row["paper"] = float(paper[key]["value"])
            row["paper_percentile"] = percentile_of(row["paper"], finite)
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def model_check(summary: pd.DataFrame, figures: Iterable[dict[str, Any]] | None = None) -> pd.DataFrame:
    """Every paper figure beside its simulated central 95 %; ``outside`` marks those it misses.

    A figure outside the range the model gives for a repeat of the study points to a mechanism
    (or an effect size) the model lacks. ``headline`` marks the paper's abstract figures and main
    findings (:data:`HEADLINE_KEYS`, or "Abstract" in the figure's ``where``).

    >>> s = pd.DataFrame({"key": ["a"], "p2_5": [1.0], "p50": [2.0], "p97_5": [3.0], "paper": [5.0],
    ...                   "paper_percentile": [100.0], "estimable": [10]})
    >>> model_check(s, [{"key": "a", "value": 5.0, "where": "Abstract", "feasible": True}])["outside"].tolist()
    [True]
    """
    paper = paper_values(figures)
    rows = []
    for _, s in summary[summary["key"].isin(list(paper))].iterrows():
        fig = paper[s["key"]]
        lo, hi = s["p2_5"], s["p97_5"]
        estimable = bool(s["estimable"]) and not (pd.isna(lo) or pd.isna(hi))
        rows.append({"key": s["key"], "paper": float(fig["value"]), "p2_5": lo, "p50": s["p50"], "p97_5": hi,
                     "paper_percentile": s["paper_percentile"],
                     "outside": estimable and not lo <= float(fig["value"]) <= hi,
                     "headline": s["key"] in HEADLINE_KEYS or "abstract" in str(fig.get("where", "")).lower(),
                     "feasible": bool(fig.get("feasible", True)), "where": fig.get("where", "")})
    return pd.DataFrame(rows, columns=["key", "paper", "p2_5", "p50", "p97_5", "paper_percentile", "outside",
                                       "headline", "feasible", "where"])


def format_number(value: Any) -> str:
    """Fixed text of a number: 6 significant digits, empty for NaN/None.

    >>> format_number(0.1 + 0.2), format_number(float("nan")), format_number(3)
    ('0.3', '', '3')
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    text = f"{float(value):.{DIGITS}g}"
    return "0" if text == "-0" else text


def csv_text(frame: pd.DataFrame) -> str:
    """A table as CSV text with :func:`format_number` formatting (``\\n`` line ends).

    >>> csv_text(pd.DataFrame({"key": ["a,b"], "x": [1 / 3]}))
    'key,x\\n"a,b",0.333333\\n'
    """
    lines = [",".join(frame.columns)]
    for row in frame.itertuples(index=False):
        cells = [format_number(v) if not isinstance(v, str) else _quote(v) for v in row]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\n') else text


def results_style(summary: pd.DataFrame, meta: dict[str, Any]) -> dict[str, Any]:
    """The summary as a flat results.json-style mapping: ``<key>.<statistic>`` -> number,
    plus ``simulation.*`` settings (replicates, analysed, failed, n, seed, alpha).

    >>> s = pd.DataFrame([{"key": "a", "estimable": 3, "mean": 0.5}], columns=COLUMNS)
    >>> results_style(s, {"n": 50})
    {'simulation.n': 50, 'a.estimable': 3.0, 'a.mean': 0.5}
    """
    out = {f"simulation.{k}": v for k, v in meta.items()}
    for row in summary.to_dict("records"):
        for stat in COLUMNS[1:]:
            value = row[stat]
            if not (isinstance(value, float) and math.isnan(value)) and value is not None:
                out[f"{row['key']}.{stat}"] = float(format_number(value))
    return out
