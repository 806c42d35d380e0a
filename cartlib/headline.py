"""The report's first page: the cohort in one line and the paper's headline findings.

The headline findings are the claims of the paper's abstract (response, 5-year survival, the
factors of leukaemia-free survival, the predictor of severe CRS, CAR-T expansion, expansion and
response, B-cell aplasia and persistence). :data:`HEADLINES` names their results.json keys,
once; :func:`headline_table` puts this run's value (with its CI or p) beside the paper's and
the scorecard's status, or leaves the paper out for a cohort other than the bundled one.

>>> results = {"efficacy.os_5y": 0.753, "efficacy.os_5y_lo": 0.63, "efficacy.os_5y_hi": 0.876}
>>> row = headline_table(results, [HEADLINES[2]]).iloc[0]
>>> row["this run"], row["paper"], row["status"]
('75.3% (63.0–87.6)', '74.9% (64.8–85.1)', 'matched')
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import pandas as pd

from .scorecard import figure_status, load_paper_figures
from .tables import format_p


@dataclass(frozen=True)
class Headline:
    """One headline finding: its words, the key of the estimate, how it is shown, and the keys
    of its interval (``lower``/``upper``; a range for ``number``) and p-value, if any."""

    finding: str
    key: str
    kind: str   # "percent" | "ratio" | "number" | "r" | "p"
    lower: str | None = None
    upper: str | None = None
    p: str | None = None


HEADLINES: tuple[Headline, ...] = (
    Headline("Complete remission (CR/CRi) on day 28", "efficacy.cr_rate", "percent",
             "efficacy.cr_rate_lo", "efficacy.cr_rate_hi"),
    Headline("MRD-negative complete remission on day 28", "efficacy.mrd_cr_rate", "percent",
             "efficacy.mrd_cr_rate_lo", "efficacy.mrd_cr_rate_hi"),
    Headline("Overall survival at 5 years", "efficacy.os_5y", "percent", "efficacy.os_5y_lo", "efficacy.os_5y_hi"),
    Headline("Leukaemia-free survival at 5 years", "efficacy.lfs_5y", "percent",
             "efficacy.lfs_5y_lo", "efficacy.lfs_5y_hi"),
    Headline("Leukaemia-free survival: hazard ratio per day of B-cell aplasia (multivariable)",
             "efficacy.lfs.multi.bca_duration_days.hr", "ratio", "efficacy.lfs.multi.bca_duration_days.hr_lo",
             "efficacy.lfs.multi.bca_duration_days.hr_hi", "efficacy.lfs.multi.bca_duration_days.p"),
    Headline("Leukaemia-free survival: hazard ratio, female vs male (multivariable)",
             "efficacy.lfs.multi.female.hr", "ratio", "efficacy.lfs.multi.female.hr_lo",
             "efficacy.lfs.multi.female.hr_hi", "efficacy.lfs.multi.female.p"),
    Headline("Severe CRS (grade ≥ 3): odds ratio for MRD < 10⁻³ before lymphodepletion (model 1)",
             "toxicity.scrs.model1.preld_mrd_lt_1e-3.or", "ratio", "toxicity.scrs.model1.preld_mrd_lt_1e-3.or_lo",
             "toxicity.scrs.model1.preld_mrd_lt_1e-3.or_hi", "toxicity.scrs.model1.preld_mrd_lt_1e-3.p"),
    Headline("Peak CAR-T level (Cmax), median (range), copies/µg DNA", "pk.cmax_median", "number",
             "pk.cmax_min", "pk.cmax_max"),
    Headline("Time to peak (Tmax), median (range), days", "pk.tmax_median", "number", "pk.tmax_min", "pk.tmax_max"),
    Headline("Cmax, MRD-negative CR vs the others: Mann–Whitney p", "pk.cmax_mrdcr_mwu_p", "p"),
    Headline("B-cell aplasia lasts longer when CAR-T cells persist longer: Spearman r with Tlast",
             "bca.tlast_r", "r", p="bca.tlast_p"),
)

#: the status marks of the first page (a symbol and a word: readable without colour)
STATUS_MARKS = {"matched": "✓ matched", "differs": "✗ differs", "infeasible": "○ not scored",
                "missing": "? not estimable", "": ""}


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _number(v: Any) -> str:
    if _missing(v):
        return "—"
    v = float(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}" if not v.is_integer() else f"{v:.0f}"


def _shown(v: Any, kind: str) -> str:
    """A number of a finding: grouped digits for levels, 1 decimal for percentages, else 3."""
    if _missing(v):
        return "—"
    if kind == "number":
        return _number(v)
    return f"{v:.1f}" if kind == "percent" else f"{v:.3f}"


def _p_text(p: Any) -> str:
    text = format_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def format_headline(h: Headline, values: dict[str, Any]) -> str:
    """The text of one finding from ``values`` (a results mapping or the paper's figures);
    ``—`` where the estimate is missing, parts the mapping lacks left out.

    >>> format_headline(HEADLINES[4], {"efficacy.lfs.multi.bca_duration_days.hr": 0.969,
    ...     "efficacy.lfs.multi.bca_duration_days.hr_lo": 0.944, "efficacy.lfs.multi.bca_duration_days.p": 0.021})
    '0.969 (0.944–—), p = 0.021'
    >>> format_headline(HEADLINES[0], {"efficacy.cr_rate": 0.98})
    '98.0%'
    """
    est = values.get(h.key)
    if _missing(est):
        return "—"
    if h.kind == "p":
        return _p_text(est)
    scale = 100 if h.kind == "percent" else 1
    text = _shown(est * scale, h.kind) + ("%" if h.kind == "percent" else "")
    if any(k is not None and k in values for k in (h.lower, h.upper)):
        lo, hi = (values.get(k) if k is not None else None for k in (h.lower, h.upper))
        lo, hi = (None if _missing(b) else b * scale for b in (lo, hi))
        text += f" ({_shown(lo, h.kind)}–{_shown(hi, h.kind)})"
    if h.p is not None and h.p in values:
        text += ", " + _p_text(values.get(h.p))
    return text


def headline_table(results: dict[str, Any], headlines: Iterable[Headline] = HEADLINES,
                   with_paper: bool = True, figures: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    """One row per headline finding: ``finding``, ``this run``, and with ``with_paper`` also
    ``paper`` and ``status`` (the scorecard's status of the estimate, with the parts of the
    interval or p that are not matched named in ``note``).

    >>> t = headline_table({"efficacy.cr_rate": 0.96}, [HEADLINES[0]], with_paper=False)
    >>> list(t.columns), t.iloc[0]["this run"]
    (['finding', 'this run'], '96.0% (—–—)')
    """
    figures = load_paper_figures() if figures is None and with_paper else (figures or [])
    paper = {f["key"]: f for f in figures}
    rows = []
    for h in headlines:
        row = {"finding": h.finding, "this run": format_headline(h, {k: results.get(k) for k in _keys(h)})}
        if with_paper:
            published = {k: paper[k]["value"] for k in _keys(h) if k in paper}
            row["paper"] = format_headline(h, published) if h.key in published else "—"
            row["status"] = figure_status(results.get(h.key), paper[h.key]) if h.key in paper else ""
            parts = [(k, figure_status(results.get(k), paper[k])) for k in _keys(h)[1:] if k in paper]
            row["note"] = "; ".join(f"{_part_name(h, k)} {'not scored' if s == 'infeasible' else s}"
                                    for k, s in parts if s not in ("matched",))
        rows.append(row)
    return pd.DataFrame(rows)


def _keys(h: Headline) -> list[str]:
    return [k for k in (h.key, h.lower, h.upper, h.p) if k is not None]


def _part_name(h: Headline, key: str) -> str:
    if key == h.p:
        return "p"
    lower = key == h.lower
    if h.kind == "number":
        return "minimum" if lower else "maximum"
    return "lower 95% limit" if lower else "upper 95% limit"


def cohort_line(results: dict[str, Any]) -> str:
    """The cohort in one sentence, from the ``cohort.*`` keys (missing parts left out).

    >>> line = cohort_line({"cohort.n": 50, "cohort.female_n": 23, "cohort.age_le_10_n": 29, "cohort.dose_median": 3.68,
    ...                     "cohort.followup_median_mo": 68.7, "cohort.followup_min_mo": 5.9, "cohort.followup_max_mo": 97.5})
    >>> line.split("; ")
    ['50 patients (23 female, 21 aged over 10 years)', 'median CAR-T dose 3.68 × 10⁶ cells/kg', 'median follow-up 68.7 months (range 5.9–97.5).']
    """
    n = results.get("cohort.n")
    if _missing(n):
        return "No patients."
    parts = []
    if not _missing(results.get("cohort.female_n")):
        parts.append(f"{results['cohort.female_n']} female")
    if not _missing(results.get("cohort.age_le_10_n")):
        parts.append(f"{n - results['cohort.age_le_10_n']} aged over 10 years")
    text = f"{n} patient{'s' if n != 1 else ''}" + (f" ({', '.join(parts)})" if parts else "")
    if not _missing(results.get("cohort.dose_median")):
        text += f"; median CAR-T dose {results['cohort.dose_median']:.3g} × 10⁶ cells/kg"
    fu = [results.get(f"cohort.followup_{s}_mo") for s in ("median", "min", "max")]
    if not _missing(fu[0]):
        text += f"; median follow-up {fu[0]:.1f} months"
        if not (_missing(fu[1]) or _missing(fu[2])):
            text += f" (range {fu[1]:.1f}–{fu[2]:.1f})"
    return text + "."


def is_bundled_cohort(fingerprint: str | None) -> bool:
    """Whether a cohort with this data fingerprint is the bundled synthetic cohort (the one
    calibrated to the paper, wherever its copy lies), so the paper's values belong beside it.

    >>> is_bundled_cohort("0" * 64)
    False
    """
    from .analysis import DEFAULT_COHORT
    from .io import cohort_fingerprint

    return bool(fingerprint) and fingerprint == cohort_fingerprint(DEFAULT_COHORT)


def headline_display(results: dict[str, Any], with_paper: bool = True):
    """:func:`headline_table` for a notebook: findings as rows, status marks, with a caption."""
    from .tables import captioned

    table = headline_table(results, with_paper=with_paper).set_index("finding")
    if with_paper:
        table["status"] = [STATUS_MARKS[s] + (f" ({n})" if n else "") for s, n in zip(table["status"], table["note"])]
        table = table.drop(columns="note")
    caption = ("The paper's headline findings: this run's estimate (95% CI, or range) "
               + ("beside the paper's, with the scorecard's status." if with_paper else "."))
    return captioned(table, caption)
