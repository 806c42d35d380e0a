"""Display tables for the notebooks and the report: baseline characteristics, model results.

Every cell is a formatted string, so notebook output (and nbval's comparison of it)
does not depend on float printing. Formatting rules used throughout:

- counts with percentages: ``k (pct)`` with one decimal, the column's N as denominator;
- continuous variables: ``median (min–max)``, missing values left out;
- p-values: three decimals, ``< 0.001`` below 0.001, an em dash when missing;
- ratios: ``est (lo–hi)``; a model row without an estimate reads
  ``not estimable (reason)``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

DASH = "—"
_MRD_BINS = (-np.inf, 1e-4, 1e-3, 1e-2, np.inf)
_MRD_LABELS = ("<10⁻⁴", "10⁻⁴–<10⁻³", "10⁻³–<10⁻²", "≥10⁻²")


def _missing(x) -> bool:
    return x is None or (isinstance(x, (float, np.floating)) and math.isnan(x)) or x is pd.NA


def _fixed(x, digits: int) -> str:
    """``x`` with ``digits`` decimals, halves rounded up as by hand and in SPSS.

    Python's own formatting rounds the binary value (6.25 -> "6.2", 2.675 -> "2.67");
    going through the shortest decimal repr gives the numbers a reader expects.
    """
    if not math.isfinite(x):
        return str(float(x))
    value = x if isinstance(x, Decimal) else Decimal(repr(float(x)))
    # "+ 0" turns a rounded negative zero ("-0.000") into "0.000".
    return str(value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP) + 0)


def format_p(p, digits: int = 3) -> str:
    """Format a p-value: three decimals, ``< 0.001`` when smaller, ``—`` when missing.

    >>> format_p(0.0213), format_p(0.0004), format_p(float("nan")), format_p(None)
    ('0.021', '< 0.001', '—', '—')
    """
    if _missing(p):
        return DASH
    floor = 10.0 ** -digits
    if p < floor:
        return f"< {_fixed(floor, digits)}"
    return _fixed(p, digits)


def format_ci(est, lo, hi, digits: int = 3) -> str:
    """Format an estimate with its confidence interval as ``est (lo–hi)``.

    A missing bound is shown as ``—``; a missing estimate gives ``—`` alone.

    >>> format_ci(0.969, 0.944, 0.995)
    '0.969 (0.944–0.995)'
    >>> format_ci(2.5, 1.0, float("inf"), digits=2)
    '2.50 (1.00–inf)'
    >>> format_ci(float("nan"), 0.1, 2.0)
    '—'
    """
    if _missing(est):
        return DASH

    def fmt(v):
        return DASH if _missing(v) else _fixed(v, digits)

    return f"{fmt(est)} ({fmt(lo)}–{fmt(hi)})"


def not_estimable(reason=None) -> str:
    """The display text of a statistic that cannot be computed: ``not estimable (reason)``.

    Every table and figure placeholder of the suite words it this way, so a reader finds
    the same phrase wherever a cohort is too small or lacks the events a method needs.

    >>> not_estimable("no events"), not_estimable(None)
    ('not estimable (no events)', 'not estimable')
    """
    return f"not estimable ({reason})" if reason and not _missing(reason) else "not estimable"


def format_pct(k, n, digits: int = 1) -> str:
    """Format a count with its percentage of ``n`` as ``k (pct)``.

    >>> format_pct(23, 50), format_pct(1, 16), format_pct(0, 0)
    ('23 (46.0)', '1 (6.3)', '0 (—)')
    """
    k = int(k)
    if not n:
        return f"{k} ({DASH})"
    return f"{k} ({_fixed(Decimal(100 * k) / Decimal(int(n)), digits)})"


def format_median_range(x, digits: int = 2) -> str:
    """Format the median and range of the non-missing values of ``x`` as ``median (min–max)``.

    >>> format_median_range([0.05, 3.68, 6.33, float("nan")])
    '3.68 (0.05–6.33)'
    >>> format_median_range([])
    '—'
    """
    v = pd.to_numeric(pd.Series(x, dtype="float64"), errors="coerce").dropna()
    if v.empty:
        return DASH
    return f"{_fixed(v.median(), digits)} ({_fixed(v.min(), digits)}–{_fixed(v.max(), digits)})"


# --- baseline table -------------------------------------------------------------------

def _coded(mapping: Mapping[str, str]) -> Callable[[pd.Series], pd.Series]:
    """Turn a code column into labelled categories; unexpected codes stay as their own level."""
    def derive(s: pd.Series) -> pd.Series:
        labels = s.map(lambda v: mapping.get(str(v).upper(), str(v)) if not _missing(v) else np.nan)
        extra = sorted(set(labels.dropna()) - set(mapping.values()))
        return pd.Categorical(labels, categories=[*mapping.values(), *extra])
    return derive


def _age_group(s: pd.Series) -> pd.Series:
    # Same cut as the covariate age_gt_10 (AGE > 10), so "0–10" means AGE ≤ 10.
    return pd.cut(s, [-np.inf, 10, np.inf], right=True, labels=["0–10 years", ">10 years"])


def _mrd_group(s: pd.Series) -> pd.Series:
    # Left-closed bins, the same convention as preld_mrd_ge_1e-3 (MRD ≥ 1e-3).
    return pd.cut(s, list(_MRD_BINS), right=False, labels=list(_MRD_LABELS))


_YES_NO = {"Y": "Yes", "N": "No"}

# (characteristic, subject column, digits for median (range) or a categoriser)
_BASELINE_ROWS: tuple[tuple[str, str, int | Callable], ...] = (
    ("Age, years", "AGE", 1),
    ("Age group, n (%)", "AGE", _age_group),
    ("Sex, n (%)", "SEX", _coded({"M": "Male", "F": "Female"})),
    ("Indication, n (%)", "INDICATION", _coded({
        "MRD_REEMERGENCE": "MRD re-emergence", "MRD_PERSISTENT": "MRD persistent",
        "CHEMO_INTOLERANCE": "Chemotherapy intolerance"})),
    ("Genetic risk, n (%)", "GENRISK", _coded({"HIGH": "High", "STANDARD": "Low/intermediate"})),
    ("Prior HSCT, n (%)", "PRIOR_HSCT", _coded(_YES_NO)),
    ("Prior CAR-T, n (%)", "PRIOR_CART", _coded(_YES_NO)),
    ("Diagnosis to infusion, months", "DX_TO_INF_MO", 1),
    ("CAR-T dose, 10⁶ cells/kg", "DOSE", 2),
    ("Pre-LD bone-marrow MRD, n (%)", "MRD_PRELD", _mrd_group),
    ("Post-LD bone-marrow MRD, n (%)", "MRD_POSTLD", _mrd_group),
)


def _baseline_column(d: pd.DataFrame) -> list[tuple[str, str, str]]:
    rows = []
    for title, col, how in _BASELINE_ROWS:
        x = d[col]
        if callable(how):
            cat = how(x)
            counts = pd.Series(cat).value_counts(sort=False)
            rows += [(title, str(level), format_pct(k, len(d))) for level, k in counts.items()]
        else:
            rows.append((title, "median (range)", format_median_range(x, digits=how)))
        if x.isna().any():
            rows.append((title, "missing", format_pct(x.isna().sum(), len(d))))
    return rows


def baseline_table(analysis: pd.DataFrame, by: str | None = None,
                   by_labels: Mapping | None = None) -> pd.DataFrame:
    """Baseline characteristics in the shape of the paper's Table S1, as strings.

    Uses the upper-case subject columns (``AGE``, ``SEX``, ``INDICATION``, ``GENRISK``,
    ``PRIOR_HSCT``, ``PRIOR_CART``, ``DX_TO_INF_MO``, ``DOSE``, ``MRD_PRELD``,
    ``MRD_POSTLD``), so the analysis table or ``cohort.subjects`` both work. Rows are
    indexed by (characteristic, level); categorical rows are ``n (%)`` of the column's
    N, continuous rows ``median (range)``. MRD groups are left-closed
    (<1e-4, 1e-4–<1e-3, 1e-3–<1e-2, ≥1e-2; 0 = undetectable falls in <1e-4). A
    ``missing`` row appears under a characteristic only when some value is missing.

    With ``by``, one column per group (sorted values of that column, named by
    ``by_labels`` if given) and a total column; headers carry ``N = n``.

    >>> d = pd.DataFrame({"AGE": [4.0, 12.5], "SEX": ["M", "F"],
    ...     "INDICATION": ["MRD_REEMERGENCE"] * 2, "GENRISK": ["HIGH", "STANDARD"],
    ...     "PRIOR_HSCT": ["N", "N"], "PRIOR_CART": ["N", "Y"], "DX_TO_INF_MO": [10.0, 20.0],
    ...     "DOSE": [3.0, 4.0], "MRD_PRELD": [0.0, 0.02], "MRD_POSTLD": [0.0, 1e-3]})
    >>> t = baseline_table(d)
    >>> t.columns.tolist()
    ['All patients (N = 2)']
    >>> t.loc[("Sex, n (%)", "Female")].iloc[0]
    '1 (50.0)'
    >>> t.loc[("CAR-T dose, 10⁶ cells/kg", "median (range)")].iloc[0]
    '3.50 (3.00–4.00)'
    """
    absent = sorted({col for _, col, _ in _BASELINE_ROWS} - set(analysis.columns))
    if absent:
        raise ValueError(f"baseline_table: the table has no column(s) {absent}")
    groups: list[tuple[str, pd.DataFrame]] = []
    if by is not None:
        if by not in analysis.columns:
            raise ValueError(f"baseline_table: column {by!r} is not in the table")
        labels = dict(by_labels or {})
        for value in sorted(analysis[by].dropna().unique()):
            sub = analysis[analysis[by] == value]
            groups.append((f"{labels.get(value, f'{by} = {value}')} (N = {len(sub)})", sub))
    groups.append((f"All patients (N = {len(analysis)})", analysis))
    # The total column lists every level (a group may lack a "missing" row or a rare
    # code): its rows fix the order, and a level absent from a group counts 0 there.
    index = pd.MultiIndex.from_tuples([(t, lvl) for t, lvl, _ in _baseline_column(analysis)],
                                      names=["Characteristic", ""])
    columns = {}
    for header, sub in groups:
        col = pd.Series({(t, lvl): s for t, lvl, s in _baseline_column(sub)})
        columns[header] = col.reindex(index).fillna(format_pct(0, len(sub)))
    return pd.DataFrame(columns, index=index)


# --- model table ----------------------------------------------------------------------

def model_table(summary: pd.DataFrame, estimate: str = "hr", lower: str | None = None,
                upper: str | None = None, p: str | None = "p",
                labels: Mapping | Sequence | None = None, digits: int = 3) -> pd.DataFrame:
    """Format a model summary (Cox HR, logistic OR, ...) as ``EST (95% CI)`` and ``p`` strings.

    ``lower``/``upper`` default to ``{estimate}_lo``/``{estimate}_hi``. A row whose estimate
    is missing reads ``not estimable (reason)`` when the summary has a ``reason`` column
    (``not estimable`` otherwise) and its p is ``—``. ``labels`` renames rows (a mapping
    from the summary index, or a sequence in row order).

    >>> s = pd.DataFrame({"hr": [0.969, float("nan")], "hr_lo": [0.944, float("nan")],
    ...                   "hr_hi": [0.995, float("nan")], "p": [0.0213, float("nan")],
    ...                   "reason": [None, "no events in one group"]},
    ...                  index=["bca_duration_days", "icans"])
    >>> model_table(s).to_dict("index")["icans"]
    {'HR (95% CI)': 'not estimable (no events in one group)', 'p': '—'}
    >>> model_table(s).loc["bca_duration_days"].tolist()
    ['0.969 (0.944–0.995)', '0.021']
    """
    lower = lower or f"{estimate}_lo"
    upper = upper or f"{estimate}_hi"
    missing = [c for c in (estimate, lower, upper) if c not in summary.columns]
    if missing:
        raise ValueError(f"model_table: summary has no column(s) {missing}")
    header = f"{estimate.upper()} (95% CI)"
    ci, ps = [], []
    for _, row in summary.iterrows():
        if _missing(row[estimate]):
            ci.append(not_estimable(row.get("reason") if "reason" in summary.columns else None))
            ps.append(DASH)
        else:
            ci.append(format_ci(row[estimate], row[lower], row[upper], digits))
            ps.append(format_p(row[p]) if p and p in summary.columns else DASH)
    return pd.DataFrame({header: ci, "p": ps}, index=_row_labels(summary, labels))


def _row_labels(summary: pd.DataFrame, labels: Mapping | Sequence | None) -> pd.Index:
    if labels is None:
        return summary.index.astype(str)
    if isinstance(labels, Mapping):
        return pd.Index([str(labels.get(i, i)) for i in summary.index])
    if len(labels) != len(summary):
        raise ValueError(f"labels has {len(labels)} entries for {len(summary)} rows")
    return pd.Index([str(x) for x in labels])


# --- captioned display ----------------------------------------------------------------

LONG_CELL_CHARS = 60   # a cell longer than this reads as a footnote mark in displays


def footnote_long_cells(frame: pd.DataFrame, max_chars: int = LONG_CELL_CHARS) -> tuple[pd.DataFrame, list[str]]:
    """Replace over-long ``not estimable (reason)`` cells by ``not estimable [k]``; returns the
    frame and the notes (``reason`` k), so a table keeps its width without cutting text.

    >>> t = pd.DataFrame({"OR": ["0.5 (0.1–2.0)", "not estimable (" + "x" * 70 + ")"]})
    >>> shown, notes = footnote_long_cells(t)
    >>> shown["OR"].tolist(), len(notes[0])
    (['0.5 (0.1–2.0)', 'not estimable [1]'], 70)
    """
    notes: list[str] = []

    def shorten(cell):
        if isinstance(cell, str) and len(cell) > max_chars and cell.startswith("not estimable (") and cell.endswith(")"):
            reason = cell[len("not estimable ("):-1]
            if reason not in notes:
                notes.append(reason)
            return f"not estimable [{notes.index(reason) + 1}]"
        return cell

    return frame.apply(lambda col: col.map(shorten)), notes


class CaptionedFrame(pd.DataFrame):
    """A display table: a DataFrame of text cells with a ``caption`` (and optional ``notes``).

    It behaves as the DataFrame it holds; notebooks show it with the caption above the table
    (what, how many patients, which method) and footnotes under it, as a journal prints a
    table. Over-long ``not estimable (reason)`` cells become numbered footnotes in the display
    (the cells themselves keep the whole text). Derived frames (slices, copies) are plain
    DataFrames without the caption.
    """

    _metadata = ["caption", "notes"]

    @property
    def _constructor(self):
        return pd.DataFrame

    def _display_parts(self) -> tuple[pd.DataFrame, list[str]]:
        shown, reasons = footnote_long_cells(pd.DataFrame(self))
        notes = [f"[{k}] {r}" for k, r in enumerate(reasons, start=1)] + list(getattr(self, "notes", []) or [])
        return shown, notes

    def _repr_html_(self) -> str:
        import hashlib

        shown, notes = self._display_parts()
        caption = html_text(getattr(self, "caption", "") or "")
        uuid = hashlib.sha256((caption + shown.to_csv()).encode("utf-8")).hexdigest()[:10]  # stable ids
        styler = shown.style.set_uuid(uuid).set_table_styles([
            {"selector": "th", "props": "text-align: left; vertical-align: top;"},
            {"selector": "td", "props": "text-align: left; vertical-align: top;"},
        ]).set_table_attributes(f'aria-describedby="caption-{uuid}"')
        # the caption as a paragraph above the table (a <caption> would wrap to the table's width)
        body = (f'<p class="cartlib-table-caption" id="caption-{uuid}" style="max-width:60em;margin-bottom:0.3em">'
                f"{caption}</p>" + styler.to_html())
        if notes:
            body += ('<p class="cartlib-table-notes" style="font-size:0.88em;margin-top:0.2em">'
                     + "<br>".join(html_text(n) for n in notes) + "</p>")
        return f'<div class="cartlib-table">{body}</div>'

    def __repr__(self) -> str:
        shown, notes = self._display_parts()
        with pd.option_context("display.max_colwidth", None, "display.width", 250,
                               "display.max_columns", None, "display.max_rows", 500):
            text = pd.DataFrame.__repr__(shown)
        return "\n".join([f"Table: {getattr(self, 'caption', '')}", text, *notes])


def html_text(value) -> str:
    """``value`` as escaped HTML text."""
    import html

    return html.escape(str(value), quote=True)


def captioned(frame: pd.DataFrame, caption: str, notes=()) -> CaptionedFrame:
    """``frame`` with a caption (and footnotes) for display; see :class:`CaptionedFrame`.

    >>> t = captioned(pd.DataFrame({"n": ["3"]}, index=["CR"]), "Response at day 28 (N = 3).")
    >>> t.caption, t.loc["CR", "n"], repr(t).splitlines()[0]
    ('Response at day 28 (N = 3).', '3', 'Table: Response at day 28 (N = 3).')
    """
    out = CaptionedFrame(frame)
    out.caption, out.notes = caption, list(notes)
    return out


def selection_sentence(selected: Sequence[str], labels: Mapping, threshold: float) -> str:
    """The covariates a univariable screen passes, as a sentence for a caption.

    >>> selection_sentence(["female", "icans"], {"female": "Female"}, 0.2)
    'Covariates with p < 0.2 (entering a multivariable model): Female, icans.'
    >>> selection_sentence([], {}, 0.2)
    'No covariate had p < 0.2.'
    """
    if not selected:
        return f"No covariate had p < {threshold:g}."
    names = ", ".join(str(labels.get(c, c)) for c in selected)
    return f"Covariates with p < {threshold:g} (entering a multivariable model): {names}."
