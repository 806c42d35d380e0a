"""The paper's published figures (``parameters/paper.yaml``) beside a run's results.

Each figure is ``{key, value, tolerance, where, kind, feasible, calibrated, why}``; ``key``
names a results.json key. A figure is matched when ``|this run - paper| <= tolerance``;
counts have tolerance 0. Figures marked ``feasible: false`` (published figures that cannot
hold together with more basic ones) are shown with their reason, not scored; figures marked
``calibrated: false`` are possible but not targeted by the synthetic cohort's calibration:
they are compared, and called "not targeted" rather than "differs" when they miss.

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

from .results import format_value

PAPER_YAML = Path(__file__).resolve().parents[1] / "parameters" / "paper.yaml"


def load_paper_figures(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The published figures, in the order paper.yaml lists them."""
    data = yaml.safe_load(Path(path or PAPER_YAML).read_text(encoding="utf-8"))
    figures = data["figures"] if isinstance(data, dict) else data
    for f in figures:
        missing = {"key", "value"} - set(f)
        if missing:
            raise ValueError(f"paper.yaml entry {f!r} lacks {sorted(missing)}")
    return figures


def _status(this: Any, fig: dict[str, Any]) -> str:
    if fig.get("feasible", True) is False:
        return "infeasible"
    if this is None or (isinstance(this, float) and math.isnan(this)):
        return "missing"
    if abs(float(this) - float(fig["value"])) <= float(fig.get("tolerance", 0)) + 1e-12:
        return "matched"
    return "not targeted" if fig.get("calibrated", True) is False else "differs"


def scorecard(results: dict[str, Any], figures: Iterable[dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per published figure: paper value, tolerance, this run's value, status, source."""
    figures = list(load_paper_figures() if figures is None else figures)
    rows = []
    for fig in figures:
        this = results.get(fig["key"])
        rows.append({
            "key": fig["key"], "paper": fig["value"], "tolerance": fig.get("tolerance", 0),
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
    return {s: int((card["status"] == s).sum()) for s in ("matched", "differs", "not targeted", "missing", "infeasible")}


def display_table(card: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """The scorecard as fixed-precision text (stable for nbval, readable in the report)."""
    out = pd.DataFrame({
        "paper": card["paper"].map(lambda v: format_value(_as_number(v), digits)),
        "this run": card["this run"].map(lambda v: format_value(_as_number(v), digits)),
        "tolerance": card["tolerance"].map(lambda v: format_value(_as_number(v), digits)),
        "status": card["status"], "where": card["where"], "note": card["note"],
    })
    return out


def _as_number(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return int(v) if float(v).is_integer() and abs(float(v)) < 1e15 else float(v)
