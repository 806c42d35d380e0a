"""The paper's published figures (``parameters/paper.yaml``) beside a run's results.

Each figure is ``{key, value, tolerance | log_tolerance, where, kind, feasible, why}``;
``key`` names a results.json key. A figure is matched when ``|this run - paper| <= tolerance``
or, for ratios, ``|ln this run - ln paper| <= log_tolerance``; a p-value must also lie on the
paper's side of 0.05 (:func:`within_tolerance`). Counts have tolerance 0. Figures marked
``feasible: false`` (published figures that cannot hold together with more basic ones) are
shown with their reason, not scored. The rules behind the tolerances head paper.yaml.

>>> figs = [{"key": "cohort.n", "value": 50, "tolerance": 0, "where": "Methods", "kind": "count"}]
>>> card = scorecard({"cohort.n": 50}, figs)
>>> card.loc["cohort.n", "status"]
'matched'
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

from .resources import parameters_file
from .results import format_value

PAPER_YAML = parameters_file("paper.yaml")


def load_paper_figures(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The published figures, in the order paper.yaml lists them."""
    data = yaml.safe_load(Path(path or PAPER_YAML).read_text(encoding="utf-8"))
    figures = data["figures"] if isinstance(data, dict) else data
    for f in figures:
        missing = {"key", "value"} - set(f)
        if missing:
            raise ValueError(f"paper.yaml entry {f!r} lacks {sorted(missing)}")
    return figures


ALPHA = 0.05   # the paper's significance level: a reproduced p must agree on which side it lies


def within_tolerance(this: float, fig: dict[str, Any]) -> bool:
    """Whether ``this`` reproduces the published ``fig`` (absolute or log tolerance; p side).

    >>> within_tolerance(1.05, {"value": 1.0, "log_tolerance": 0.1})
    True
    >>> within_tolerance(0.06, {"value": 0.04, "tolerance": 0.05, "kind": "p"})
    False
    """
    value, this = float(fig["value"]), float(this)
    if fig.get("log_tolerance") is not None:
        ok = this > 0 and value > 0 and abs(math.log(this) - math.log(value)) <= float(fig["log_tolerance"]) + 1e-12
    else:
        ok = abs(this - value) <= float(fig.get("tolerance", 0)) + 1e-12
    if fig.get("kind") == "p":
        ok = ok and (this < ALPHA) == (value < ALPHA)
    return ok


def miss(this: float, fig: dict[str, Any]) -> float:
    """How far ``this`` is from the published figure, in units of its tolerance (<= 1 is within
    it, apart from a p-value's side of 0.05); for calibration losses.

    >>> round(miss(1.2, {"value": 1.0, "tolerance": 0.1}), 4), round(miss(2.0, {"value": 1.0, "log_tolerance": 0.5}), 4)
    (2.0, 1.3863)
    """
    value, this = float(fig["value"]), float(this)
    if fig.get("log_tolerance") is not None:
        if this <= 0 or value <= 0:
            return math.inf
        return abs(math.log(this) - math.log(value)) / max(float(fig["log_tolerance"]), 1e-9)
    scale = max(float(fig.get("tolerance", 0)), 1e-3 * max(abs(value), 1e-3))
    return abs(this - value) / scale


def tolerance_text(fig: dict[str, Any], digits: int = 4) -> str:
    """The tolerance as shown in tables: ``0.05`` or ``log ±0.1``.

    >>> tolerance_text({"log_tolerance": 0.1}), tolerance_text({"tolerance": 3})
    ('log ±0.1', '3')
    """
    if fig.get("log_tolerance") is not None:
        return "log ±" + format_value(float(fig["log_tolerance"]), digits)
    return format_value(_as_number(fig.get("tolerance", 0)), digits)


def _status(this: Any, fig: dict[str, Any]) -> str:
    if fig.get("feasible", True) is False:
        return "infeasible"
    if this is None or (isinstance(this, float) and math.isnan(this)):
        return "missing"
    return "matched" if within_tolerance(this, fig) else "differs"


def scorecard(results: dict[str, Any], figures: Iterable[dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per published figure: paper value, tolerance, this run's value, status, source."""
    figures = list(load_paper_figures() if figures is None else figures)
    rows = []
    for fig in figures:
        this = results.get(fig["key"])
        rows.append({
            "key": fig["key"], "paper": fig["value"], "tolerance": tolerance_text(fig),
            "this run": this, "status": _status(this, fig), "where": fig.get("where", ""),
            "note": fig.get("why", "") or "",
        })
    return pd.DataFrame(rows).set_index("key")


def key_table(values: dict[str, Any], figures: Iterable[dict[str, Any]] | None = None, digits: int = 4) -> pd.DataFrame:
    """A section's recorded keys as fixed-precision text, with the paper's value where it has one.

    >>> key_table({"cohort.n": 50, "cohort.dose_median": 3.6812}, [{"key": "cohort.n", "value": 50}])
                       this run paper
    key                              
    cohort.dose_median    3.681      
    cohort.n                 50    50
    """
    paper = {f["key"]: f["value"] for f in (load_paper_figures() if figures is None else figures)}
    rows = [(k, format_value(v, digits), "" if k not in paper else format_value(paper[k], digits))
            for k, v in sorted(values.items())]
    return pd.DataFrame(rows, columns=["key", "this run", "paper"]).set_index("key")


def summary_counts(card: pd.DataFrame) -> dict[str, int]:
    """How many figures are matched, differ, missing or infeasible."""
    return {s: int((card["status"] == s).sum()) for s in ("matched", "differs", "missing", "infeasible")}


def display_table(card: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """The scorecard as fixed-precision text (stable for nbval, readable in the report)."""
    out = pd.DataFrame({
        "paper": card["paper"].map(lambda v: format_value(_as_number(v), digits)),
        "this run": card["this run"].map(lambda v: format_value(_as_number(v), digits)),
        "tolerance": card["tolerance"],
        "status": card["status"], "where": card["where"], "note": card["note"],
    })
    return out


def _as_number(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return int(v) if float(v).is_integer() and abs(float(v)) < 1e15 else float(v)
