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

import copy
import functools
import math
import re
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import yaml

from .resources import parameters_file
from .results import format_value

PAPER_YAML = parameters_file("paper.yaml")


def load_paper_figures(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The published figures, in the order paper.yaml lists them (a fresh list of fresh dicts on
    every call: the caller may change them).

    >>> figures = load_paper_figures()
    >>> figures[0]["value"] = -1
    >>> load_paper_figures()[0]["value"] != -1
    True
    """
    path = Path(path or PAPER_YAML)
    stat = path.stat()
    # parsed once per process and file version: the report, the headline and the scorecard
    # each ask for it
    return copy.deepcopy(_parsed_figures(str(path.resolve()), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=4)
def _parsed_figures(path: str, mtime_ns: int, size: int) -> list[dict[str, Any]]:
    # libyaml's parser when present: the same safe constructor, seven times faster on this file,
    # which every notebook's kernel reads
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)
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


def figure_status(this: Any, fig: dict[str, Any]) -> str:
    """``matched``, ``differs``, ``infeasible`` (not scored) or ``missing`` (no value in this run).

    >>> figure_status(49, {"value": 50, "tolerance": 0}), figure_status(None, {"value": 50})
    ('differs', 'missing')
    """
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
            "this run": this, "status": figure_status(this, fig), "where": fig.get("where", ""),
            "note": fig.get("why", "") or "",
        })
    return pd.DataFrame(rows).set_index("key")


def key_table(values: dict[str, Any], figures: Iterable[dict[str, Any]] | None = None, digits: int = 4,
              labels: bool = False) -> pd.DataFrame:
    """A section's recorded keys as fixed-precision text, with the paper's value where it has one
    (and, with ``labels``, a first column ``label`` reading each key as words).

    >>> key_table({"cohort.n": 50, "cohort.dose_median": 3.6812}, [{"key": "cohort.n", "value": 50}])
                       this run paper
    key                              
    cohort.dose_median    3.681      
    cohort.n                 50    50
    """
    paper = {f["key"]: f["value"] for f in (load_paper_figures() if figures is None else figures)}
    rows = [(k, format_value(v, digits), "" if k not in paper else format_value(paper[k], digits))
            for k, v in sorted(values.items())]
    out = pd.DataFrame(rows, columns=["key", "this run", "paper"]).set_index("key")
    if labels:
        from .keylabels import key_label

        out.insert(0, "label", [key_label(k) for k in out.index])
    return out


def summary_counts(card: pd.DataFrame) -> dict[str, int]:
    """How many figures are matched, differ, missing or infeasible."""
    return {s: int((card["status"] == s).sum()) for s in ("matched", "differs", "missing", "infeasible")}


def summary_sentence(card: pd.DataFrame) -> str:
    """How the published figures fare, in one sentence.

    >>> summary_sentence(scorecard({"cohort.n": 50}, [{"key": "cohort.n", "value": 50, "tolerance": 0}]))
    '1 published figures: 1 matched, 0 differ, 0 not scored, 0 not estimable on this cohort.'
    """
    c = summary_counts(card)
    return (f"{len(card)} published figures: {c['matched']} matched, {c['differs']} differ, "
            f"{c['infeasible']} not scored, {c['missing']} not estimable on this cohort.")


def display_table(card: pd.DataFrame, digits: int = 4, labels: bool = False) -> pd.DataFrame:
    """The scorecard as fixed-precision text (stable for nbval, readable in the report); with
    ``labels``, a first column reads each key as words."""
    out = pd.DataFrame({
        "paper": card["paper"].map(lambda v: format_value(_as_number(v), digits)),
        "this run": card["this run"].map(lambda v: format_value(_as_number(v), digits)),
        "tolerance": card["tolerance"],
        "status": card["status"], "where": card["where"], "note": card["note"],
    })
    if labels:
        from .keylabels import key_label

        out.insert(0, "label", [key_label(k) for k in out.index])
    return out


def _as_number(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return int(v) if float(v).is_integer() and abs(float(v)) < 1e15 else float(v)


# --- for the reader: plain reasons, the figure, collapsed tables ------------------------------

#: why a published figure is not matched, in words a clinician reads without the calibration
#: (the first rule whose pattern occurs in the figure's ``why`` applies; the technical account
#: of each figure is its ``why`` in paper.yaml and docs/SYNTHETIC.md)
PLAIN_REASONS: tuple[tuple[str, str], ...] = (
    ("cannot come from one logistic fit",
     "The paper's odds ratios, intervals and p-values in this table disagree with each other."),
    ("typo", "A typo in the paper: the interval does not surround its own estimate."),
    ("too narrow|binomial minimum|SE of 1.1",
     "The published interval is narrower than this number of patients allows; the estimate is compared."),
    ("impossible", "Impossible with the paper's own patient counts or other figures."),
    ("a range, not a median", "The paper gives a range here, not a single value."),
    ("expanders", "The paper counts only the patients whose CAR-T cells expanded; this figure counts all."),
)
BUNDLED_DIFFERS = ("The synthetic cohort could not match this figure without losing the paper's main results "
                   "(see docs/SYNTHETIC.md).")
OWN_DIFFERS = "This cohort's value lies outside the paper's tolerance."
MISSING = "Not estimable on this cohort (too few patients or events)."


def plain_reason(fig: dict[str, Any], status: str, bundled: bool = True,
                 figures: Iterable[dict[str, Any]] | None = None) -> str:
    """One plain sentence saying why ``fig`` is not matched ("" when it is).

    ``bundled`` says whether the run is on the bundled synthetic cohort (a feasible figure that
    differs there is one the synthetic cohort could not reproduce); ``figures`` resolves a
    ``why`` of the form "see OTHER.KEY".

    >>> plain_reason({"key": "x", "value": 1, "why": "a typo: ..."}, "infeasible")
    'A typo in the paper: the interval does not surround its own estimate.'
    >>> plain_reason({"key": "x", "value": 1}, "differs", bundled=False)
    "This cohort's value lies outside the paper's tolerance."
    """
    if status == "matched":
        return ""
    if status == "missing":
        return MISSING
    if status == "differs":
        return BUNDLED_DIFFERS if bundled else OWN_DIFFERS
    why = str(fig.get("why") or "")
    seen = re.match(r"see (\S+)", why)
    if seen and figures is not None:
        other = {f["key"]: f for f in figures}.get(seen.group(1).rstrip(".,;"))
        why = str(other.get("why") or "") if other else why
    for pattern, text in PLAIN_REASONS:
        if re.search(pattern, why):
            return text
    return "The published figure cannot hold together with the paper's other figures."


def differences_table(results: dict[str, Any], figures: Iterable[dict[str, Any]] | None = None,
                      bundled: bool = True, digits: int = 4) -> pd.DataFrame:
    """The published figures that are not matched (differs, not scored, not estimable), by
    section, each with its label, the paper's value, this run's, and one plain reason.

    >>> figs = [{"key": "cohort.n", "value": 50, "tolerance": 0},
    ...         {"key": "cohort.female_n", "value": 23, "tolerance": 0}]
    >>> differences_table({"cohort.n": 50, "cohort.female_n": 22}, figs, bundled=False)["status"].tolist()
    ['differs']
    """
    from .keylabels import key_label

    figures = list(load_paper_figures() if figures is None else figures)
    rows = []
    for fig in figures:
        this = results.get(fig["key"])
        status = figure_status(this, fig)
        if status == "matched":
            continue
        rows.append({"section": fig["key"].split(".")[0], "key": fig["key"], "figure": key_label(fig["key"]),
                     "paper": format_value(_as_number(fig["value"]), digits),
                     "this run": ("not estimable" if _as_number(this) is None
                                  else format_value(_as_number(this), digits)),
                     "status": "not scored" if status == "infeasible" else status,
                     "reason": plain_reason(fig, status, bundled, figures)})
    columns = ["section", "key", "figure", "paper", "this run", "status", "reason"]
    return pd.DataFrame(rows, columns=columns).set_index(["section", "key"])


#: the groups of the scorecard figure, in the report's order (Table 3's 187 figures on their own)
FIGURE_GROUPS = {"cohort": "Cohort", "efficacy": "Efficacy", "toxicity": "Toxicity", "pk": "Kinetics",
                 "table3": "Kinetics by subgroup\n(Table 3)", "bca": "B-cell\naplasia", "transplant": "Transplant"}


def _group_title(group: str) -> str:
    return FIGURE_GROUPS.get(group, group).replace("\n", " ")


def figure_group(key: str) -> str:
    """The group of a published figure in the scorecard figure: its section, or ``table3``.

    >>> figure_group("pk.table3.age.le_10.n"), figure_group("pk.cmax_median")
    ('table3', 'pk')
    """
    return "table3" if key.startswith("pk.table3.") else key.split(".")[0]


class Collapsed:
    """A table shown folded (an HTML ``<details>`` whose summary says what it holds); its plain
    text is the whole table, so nbval still compares every row.

    >>> print(Collapsed(pd.DataFrame({"a": [1]}), "one row").__repr__())
       a
    0  1
    """

    def __init__(self, frame: pd.DataFrame, summary: str):
        self.frame, self.summary = frame, summary

    def _repr_html_(self) -> str:
        import html

        return (f"<details class=\"cartlib-collapsed\"><summary>{html.escape(self.summary)}</summary>"
                f"{self.frame.to_html()}</details>")

    def __repr__(self) -> str:
        with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250,
                               "display.max_colwidth", 200):
            return self.frame.to_string()


def differences_display(results: dict[str, Any], bundled: bool = True,
                        figures: Iterable[dict[str, Any]] | None = None):
    """:func:`differences_table` for the reader: one row per plain reason and section, listing
    its figures (label, the paper's value vs this run's), with a caption."""
    from .tables import captioned

    table = differences_table(results, figures, bundled).reset_index()
    rows = []
    for (section, status, reason), group in table.groupby(["section", "status", "reason"], sort=False):
        parts = [label.split(" · ") for label in group["figure"]]
        common = 0
        while all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
            common += 1
        head = " · ".join(parts[0][:common])
        items = "; ".join(f"{' · '.join(p[common:])} ({paper} vs {this})"
                          for p, paper, this in zip(parts, group["paper"], group["this run"]))
        rows.append({"section": _group_title(section), "status": status, "n": len(group), "reason": reason,
                     "figures (paper vs this run)": f"{head}: {items}" if head else items})
    order = [_group_title(g) for g in FIGURE_GROUPS]
    rows.sort(key=lambda r: order.index(r["section"]) if r["section"] in order else len(order))  # stable
    shown = pd.DataFrame(rows, columns=["section", "status", "n", "reason", "figures (paper vs this run)"])
    caption = (f"The {len(table)} published figures that this run does not match, by reason. Differs: outside the "
               "tolerance stated for the figure; not scored: the published figure cannot hold together with the "
               "paper's own counts, so no cohort can match it.")
    return captioned(shown.set_index(["section", "reason"]), caption)
