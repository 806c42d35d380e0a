"""Clinical figures: forest plots, swimmer plot, correlation scatter, AE grades, BCA duration."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt  # noqa: F401  (the examples close their figures with plt)
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from cartlib.tables import format_p, model_table
from matplotlib.transforms import ScaledTranslation, blended_transform_factory
from scipy import stats

from cartlib.derive import DAYS_PER_MONTH

from .style import FIGURE_WIDTH_IN, GROUP_COLOURS, OKABE_ITO, figure_axes, plain_log_ticks, time_ticks


def plot_forest(summary: pd.DataFrame, ax=None, estimate: str = "hr", lower: str = "hr_lo",
                upper: str = "hr_hi", p: str | None = "p",
                labels: Mapping | Sequence | None = None,
                xlabel: str = "Hazard ratio (95% CI)", title: str | None = None):
    """Forest plot of ratios (HR or OR) on a log axis, with a text column ``EST (95% CI)  p``.

    One row per summary row, top to bottom in summary order. Rows without an estimate
    are not drawn; their text reads ``not estimable (reason)`` (``reason`` column), or,
    when that is too long for the text column, ``not estimable [k]`` with the reason as
    note k under the axes (a long text beside the axes would squeeze them to nothing).
    A bound outside the drawn range (e.g. an infinite upper limit) is clipped and
    marked with an arrowhead. For odds ratios pass ``estimate="or", lower="or_lo",
    upper="or_hi", xlabel="Odds ratio (95% CI)"``.

    >>> s = pd.DataFrame({"hr": [0.969, 0.235], "hr_lo": [0.944, 0.062],
    ...                   "hr_hi": [0.995, 0.884], "p": [0.021, 0.032]},
    ...                  index=["BCA duration", "Female"])
    >>> ax = plot_forest(s)
    >>> ax.get_xscale(), len([l for l in ax.lines if str(l.get_gid()).startswith("ci:")])
    ('log', 2)
    >>> plt.close(ax.figure)
    """
    text = model_table(summary, estimate, lower, upper, p, labels)
    cells, notes = _forest_cells(text.iloc[:, 0], summary.get("reason"))
    names = text.index.tolist()
    n = len(names)
    ax = figure_axes(ax, (FIGURE_WIDTH_IN, 0.3 * n + 1.2 + 0.14 * notes.count("\n") + (0.25 if notes else 0)))
    est, lo, hi = (pd.to_numeric(summary[c], errors="coerce").to_numpy(float)
                   for c in (estimate, lower, upper))
    ok = np.isfinite(est) & (est > 0)
    shown = np.concatenate([est[ok], lo[ok], hi[ok], [1.0]])
    shown = shown[np.isfinite(shown) & (shown > 0)]
    xmin, xmax = shown.min() / 1.5, shown.max() * 1.5
    y = np.arange(n)[::-1]
    colour = OKABE_ITO["blue"]
    for i in np.flatnonzero(ok):
        a = lo[i] if np.isfinite(lo[i]) and lo[i] > 0 else xmin
        b = hi[i] if np.isfinite(hi[i]) else xmax
        a, b = max(a, xmin), min(b, xmax)
        ax.plot([a, b], [y[i], y[i]], color=colour, lw=1.4, gid=f"ci:{names[i]}")
        for end, bound, mark in ((a, lo[i], "<"), (b, hi[i], ">")):
            if np.isnan(bound) or end != bound:  # clipped or unknown bound
                ax.plot([end], [y[i]], marker=mark, color=colour, gid=f"clipped:{names[i]}")
    ax.scatter(est[ok], y[ok], marker="s", s=30, color=colour, zorder=3, gid="estimates")
    ax.axvline(1.0, color=OKABE_ITO["grey"], ls="--", lw=1, gid="reference")
    ax.set_xscale("log")
    ax.set_xlim(xmin, xmax)
    plain_log_ticks(ax.xaxis)
    ax.set_yticks(y, names)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(xlabel)
    # The text columns sit a fixed distance (inches) right of the axes, the p column after the
    # widest estimate: placed at fractions of the axes width, they would move whenever the
    # layout narrows the axes to make room for them, and no layout would settle.
    ci_col, p_col = text.columns
    ci_at = 0.2
    p_at = ci_at + _text_width_in([ci_col, *cells], weight="bold") + 0.25
    ci_trans, p_trans = (blended_transform_factory(ax.transAxes, ax.transData)
                         + ScaledTranslation(at, 0, ax.figure.dpi_scale_trans) for at in (ci_at, p_at))
    ax.text(1.0, n - 0.45, ci_col, transform=ci_trans, weight="bold", va="bottom")
    ax.text(1.0, n - 0.45, p_col, transform=p_trans, weight="bold", va="bottom")
    for i in range(n):
        ax.text(1.0, y[i], cells[i], transform=ci_trans, va="center", gid=f"text:{names[i]}")
        if ok[i]:
            ax.text(1.0, y[i], text.iloc[i, 1], transform=p_trans, va="center")
    if notes:   # under the x label, aligned with the axes' left edge
        ax.annotate(notes, xy=(0, 0), xycoords=("axes fraction", ax.xaxis.label), xytext=(0, -6),
                    textcoords="offset points", ha="left", va="top", fontsize="small", gid="notes")
    if title:
        ax.set_title(title, loc="left")
    return ax


_FOREST_CELL_CHARS = 40   # what fits in the text column beside a forest plot of FIGURE_WIDTH_IN


def _text_width_in(texts, weight: str = "normal") -> float:
    """Width in inches of the widest of ``texts`` at the default font size (the font's advance
    widths, laid out as matplotlib lays out text, so no figure has to be drawn; building the
    glyph outlines to measure them took thirty times as long)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    font = FontProperties(weight=weight)
    widths = [text_to_path.get_text_width_height_descent(t, font, ismath=False)[0] for t in texts if t]
    return max(widths, default=0.0) / 72   # in points at the font's size


def _forest_cells(cells: pd.Series, reasons) -> tuple[list[str], str]:
    """The forest's text column with over-long ``not estimable (reason)`` cells numbered, and the notes."""
    import textwrap

    out, notes = [], []
    for i, cell in enumerate(cells):
        reason = None if reasons is None else reasons.iloc[i]
        if len(cell) > _FOREST_CELL_CHARS and isinstance(reason, str) and cell.startswith("not estimable"):
            if reason not in notes:
                notes.append(reason)
            cell = f"not estimable [{notes.index(reason) + 1}]"
        out.append(cell)
    return out, "\n".join(textwrap.fill(f"[{k}] {r}", 100, subsequent_indent="    ")
                          for k, r in enumerate(notes, start=1))


# --- PK spaghetti ---------------------------------------------------------------------


def _event(day_col: str, code_col: str | None = None, codes=(), other: bool = False):
    """Selector of patients with an event in ``day_col`` whose code is in ``codes``
    (``other``: not in them); None when the table lacks the column."""
    def select(a: pd.DataFrame):
        if day_col not in a:
            return None
        if code_col is None:
            return a[day_col].notna()
        code = a[code_col].astype(str).str.upper() if code_col in a else pd.Series("", a.index)
        return a[day_col].notna() & (code.isin(codes) != other)
    return select


def _cr(mrd_negative: bool):
    def select(a: pd.DataFrame):
        if "cr" not in a or "d28_mrd_neg" not in a:  # no MRD status: no honest label
            return None
        neg = a["d28_mrd_neg"] == 1
        return (a["cr"] == 1) & (neg if mrd_negative else ~neg)
    return select


_SWIMMER_MARKS = (  # label, column holding the day (None: day 28), selector, marker style
    ("MRD-negative CR (day 28)", None, _cr(True), dict(marker="D", color=GROUP_COLOURS["responder"])),
    ("CR/CRi, MRD-positive (day 28)", None, _cr(False),
     dict(marker="D", facecolors="none", edgecolors=GROUP_COLOURS["responder"], linewidths=1.3)),
    ("no CR/CRi (day 28)", None, lambda a: (a["cr"] == 0) if "cr" in a else None,
     dict(marker="s", facecolors="none", edgecolors=OKABE_ITO["black"], linewidths=1.3)),
    ("HSCT", "hsct_day", _event("hsct_day"), dict(marker="P", color=GROUP_COLOURS["HSCT"])),
    ("relapse CD19+", "relapse_day", _event("relapse_day", "relapse_cd19", ["CD19POS"]),
     dict(marker="o", color=GROUP_COLOURS["CD19+"])),
    ("relapse CD19−", "relapse_day", _event("relapse_day", "relapse_cd19", ["CD19NEG"]),
     dict(marker="o", facecolors="none", edgecolors=GROUP_COLOURS["CD19−"], linewidths=1.6)),
    ("relapse (CD19 unknown)", "relapse_day",
     _event("relapse_day", "relapse_cd19", ["CD19POS", "CD19NEG"], other=True),
     dict(marker="o", color=OKABE_ITO["yellow"])),
    ("death (relapse)", "death_day", _event("death_day", "death_cause", ["RELAPSE"]),
     dict(marker="X", color=OKABE_ITO["black"])),
    ("death (NRM)", "death_day", _event("death_day", "death_cause", ["NRM"]),
     dict(marker="X", color=GROUP_COLOURS["non-relapse mortality"])),
    ("death (cause unknown)", "death_day",
     _event("death_day", "death_cause", ["RELAPSE", "NRM"], other=True),
     dict(marker="X", color=OKABE_ITO["grey"])),
    ("alive at last contact", "os_days", lambda a: a["os_event"] == 0,
     dict(marker=r"$\rightarrow$", color=OKABE_ITO["black"], s=90)),
)
_TIME_UNITS = {"days": 1.0, "months": DAYS_PER_MONTH, "years": 365.25}


def plot_swimmer(analysis: pd.DataFrame, ax=None, time_unit: str = "months", max_patients: int = 60):
    """Swimmer plot: one bar per patient from infusion to last contact, with clinical events.

    Bars are sorted by follow-up (``os_days``; longest on top) and labelled by USUBJID
    (the index). Markers: CR/CRi at day 28 (filled when MRD-negative), HSCT, relapse
    CD19+ / CD19− (``relapse_cd19``), death by ``death_cause`` (relapse / NRM), and an
    arrow at the end of the bar of every patient alive at last contact (``os_event`` 0).
    Columns other than ``os_days``/``os_event`` are optional; a missing one drops its
    markers (CR markers need both ``cr`` and ``d28_mrd_neg``). ``time_unit``: days,
    months (days / 30.4375) or years (days / 365.25). A cohort larger than ``max_patients``
    shows every k-th patient in follow-up order (a deterministic, follow-up-stratified
    sample; the title says so): 60 bars, each labelled in 6.7-pt text, fill a journal page.

    >>> a = pd.DataFrame({"os_days": [400.0, 900.0], "os_event": [1, 0],
    ...     "death_day": [400.0, np.nan], "death_cause": ["NRM", None]},
    ...     index=pd.Index(["P01", "P02"], name="USUBJID"))
    >>> ax = plot_swimmer(a)
    >>> len(ax.patches), [len(c.get_offsets()) for c in ax.collections if c.get_gid() == "death (NRM)"]
    (2, [1])
    >>> plt.close(ax.figure)
    """
    if time_unit not in _TIME_UNITS:
        raise ValueError(f"time_unit must be one of {sorted(_TIME_UNITS)}, not {time_unit!r}")
    scale = _TIME_UNITS[time_unit]
    a = analysis.sort_values("os_days", kind="mergesort")
    total = len(a)
    if total > max_patients:
        a = a.iloc[np.linspace(0, total - 1, max_patients).round().astype(int)]
    n = len(a)
    y = np.arange(n)
    ax = figure_axes(ax, (FIGURE_WIDTH_IN, max(3.0, 0.13 * n + 1.0)))   # a 6.7-pt label per 0.13-in row
    ax.barh(y, a["os_days"] / scale, height=0.6, color="0.86", gid="follow-up")
    for label, col, select, style in _SWIMMER_MARKS:
        mask = select(a)
        if mask is None or not mask.any():
            continue
        x = np.full(int(mask.sum()), 28.0) if col is None else a.loc[mask, col].to_numpy(float)
        ax.scatter(x / scale, y[mask.to_numpy()], zorder=3, label=label, gid=label,
                   **{"s": 26, **style})
    ax.set_yticks(y, a.index.astype(str), fontsize="small")
    ax.set_ylim(-0.7, n - 0.3)
    ticks = time_ticks(max(float(a["os_days"].max()) / scale, 1.0), time_unit, 5.0)
    ax.set_xticks(ticks)
    ax.set_xlim(0, ticks[-1] * 1.02)
    ax.set_xlabel(f"Time since infusion ({time_unit})")
    if ax.get_legend_handles_labels()[0]:   # beside the bars: a legend inside would cover some
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", title="events",
                  title_fontsize="small")
    if total > n:
        ax.set_title(f"{n} of {total} patients, evenly spaced in follow-up order", fontsize="small")
    return ax


# --- correlation, IL-6, grades, BCA ---------------------------------------------------

def plot_scatter_corr(x, y, ax=None, xlabel: str | None = None, ylabel: str | None = None,
                      r: float | None = None, p: float | None = None, method: str = "spearman",
                      logx: bool = False, logy: bool = False):
    """Scatter of two variables annotated ``Spearman r = 0.570, p < 0.001``.

    Pass ``r`` and ``p`` as recorded by ``cartlib.stats.compare`` so the figure shows the
    reported numbers; when ``r`` is None they are computed here with scipy on complete
    pairs (``spearmanr``/``pearsonr``, t-approximation p), or the annotation says why not
    (fewer than 3 pairs, a constant variable). Two Series are paired by index (e.g. NCA
    results and the analysis table, both indexed by USUBJID), anything else by position.
    The annotation sits above the axes, clear of the points. A log axis with values ≤ 0 (e.g.
    a duration of 0) becomes symmetric-log (linear below the smallest positive power of ten),
    so every point stays visible; with none positive the axis stays linear.

    >>> ax = plot_scatter_corr([1, 2, 3, 4], [2, 1, 4, 3], xlabel="Tlast", ylabel="BCA days",
    ...                        r=0.57, p=0.0004)
    >>> [t.get_text() for t in ax.texts]
    ['Spearman r = 0.570, p < 0.001']
    >>> plt.close(ax.figure)
    """
    if method not in ("spearman", "pearson"):
        raise ValueError(f"method must be 'spearman' or 'pearson', not {method!r}")
    if isinstance(x, pd.Series) and isinstance(y, pd.Series):
        x, y = x.align(y, join="outer")  # pair by patient id, not by position
    xs = pd.Series(np.asarray(x, dtype=float))
    ys = pd.Series(np.asarray(y, dtype=float))
    ok = xs.notna() & ys.notna()
    ax = figure_axes(ax, (6, 5))
    ax.scatter(xs[ok], ys[ok], s=18, color=OKABE_ITO["blue"], alpha=0.8, gid="points")
    if r is None and ok.sum() >= 3 and xs[ok].nunique() > 1 and ys[ok].nunique() > 1:
        fit = (stats.spearmanr if method == "spearman" else stats.pearsonr)(xs[ok], ys[ok])
        r, p = float(fit[0]), float(fit[1])
    name = method.capitalize()
    if r is None or pd.isna(r):
        why = "fewer than 3 complete pairs" if ok.sum() < 3 else "a variable is constant"
        note = f"{name} r not computable ({why})"
    else:
        fp = format_p(p)
        note = f"{name} r = {r:.3f}" + (
            "" if pd.isna(p) else f", p {fp}" if fp.startswith("<") else f", p = {fp}")
    # above the axes, where no point can be
    ax.annotate(note, xy=(0, 1), xycoords="axes fraction", xytext=(0, 6), textcoords="offset points",
                ha="left", va="bottom", gid="corr")
    for on, setter, axis, v in ((logx, ax.set_xscale, ax.xaxis, xs[ok]), (logy, ax.set_yscale, ax.yaxis, ys[ok])):
        if on and (v > 0).any():   # a log axis with nothing positive on it has no range to draw
            if (v <= 0).any():     # zeros (e.g. no aplasia) stay visible on a symmetric-log axis
                floor = 10.0 ** np.floor(np.log10(v[v > 0].min()))
                setter("symlog", linthresh=floor, linscale=0.4)
                if (v >= 0).all():   # nothing below 0 to show; a little room so points at 0 and the top stay whole
                    (ax.set_xlim if axis is ax.xaxis else ax.set_ylim)(-0.4 * floor, float(v.max()) * 1.6)
                axis.set_major_locator(mticker.SymmetricalLogLocator(base=10, linthresh=floor))
                axis.set_major_formatter(mticker.FuncFormatter(lambda t, _: f"{t:,.0f}" if t >= 1 else f"{t:g}"))
                axis.set_minor_formatter(mticker.NullFormatter())
            else:
                setter("log")
                plain_log_ticks(axis)
    ax.set_xlabel(xlabel if xlabel is not None else getattr(x, "name", "") or "")
    ax.set_ylabel(ylabel if ylabel is not None else getattr(y, "name", "") or "")
    return ax


def share_row(axes) -> None:
    """Scatter panels of one y variable side by side at a journal's page width: one y range
    covering every panel's points, the y label and tick labels on the first panel only (when
    every panel chose the same y scale; :func:`plot_scatter_corr` picks log or symmetric-log by
    the points it has), and a log x axis labelled at every decade, or every second or third where
    the labels would run into each other ("1,000,000" is wider than a decade of a 2-inch axis)."""
    scales = {(ax.get_yscale(), getattr(ax.yaxis.get_transform(), "linthresh", None)) for ax in axes}
    if len(scales) == 1:
        lows, highs = zip(*(ax.get_ylim() for ax in axes))
        for ax in axes:
            ax.set_ylim(min(lows), max(highs))
        for ax in axes[1:]:
            ax.set_ylabel("")
            ax.tick_params(labelleft=False)
    for ax in axes:
        lo, hi = sorted(ax.get_xlim())
        if ax.get_xscale() not in ("log", "symlog") or hi <= 0:
            continue
        ticks = [t for t in ax.xaxis.get_majorticklocs() if lo <= t <= hi]
        decades = [t for t in ticks if t > 0]
        if len(decades) < 2:
            continue
        # inches per decade on the axis (its width before the layout: a little more than after)
        per_decade = ax.get_position().width * ax.figure.get_figwidth() / np.log10(hi / max(lo, decades[0] / 10))
        # a label at the tick size takes about 0.06 in a character; 0.12 in between labels
        widest = max(len(f"{t:,.0f}") for t in decades) * 0.06 + 0.12
        step = max(1, int(np.ceil(widest / per_decade)))
        ax.xaxis.set_major_locator(mticker.FixedLocator([t for t in ticks if t <= 0] + decades[::step]))


_TERM_LABELS = {"crs": "CRS", "icans": "ICANS", "neutropenia": "Neutropenia",
                "infection": "Infection", "hlh": "HLH", "gvhd": "GVHD"}


def plot_grade_bars(analysis: pd.DataFrame,
                    terms: Sequence[str] = ("crs", "icans", "neutropenia", "infection"), ax=None):
    """Patients by maximum grade per adverse-event term (``{term}_grade``), stacked bars.

    Each bar stacks grades 1 to 4 (and 5 when any patient had grade 5), so its height
    is the number of patients with the event; grade 0 is the remainder up to N,
    written above the bar as ``k/N``.

    >>> a = pd.DataFrame({"crs_grade": [0, 1, 3, 3], "icans_grade": [0, 0, 0, 2]})
    >>> ax = plot_grade_bars(a, terms=("crs", "icans"))
    >>> [float(p.get_height()) for p in ax.patches if p.get_gid() == "grade 3"]
    [2.0, 0.0]
    >>> plt.close(ax.figure)
    """
    grades = analysis[[f"{t}_grade" for t in terms]].fillna(0).astype(int)
    top = max(4, int(grades.to_numpy().max(initial=0)))
    colours = sns.color_palette("rocket_r", as_cmap=True)(np.linspace(0.15, 0.9, top))
    ax = figure_axes(ax, (FIGURE_WIDTH_IN, 3.4))
    x = np.arange(len(terms))
    bottom = np.zeros(len(terms))
    for g in range(1, top + 1):
        k = (grades == g).sum().to_numpy(float)
        bars = ax.bar(x, k, bottom=bottom, color=colours[g - 1], width=0.6, label=f"grade {g}")
        for patch in bars:
            patch.set_gid(f"grade {g}")
        bottom += k
    n = len(grades)
    for xi, b in zip(x, bottom):
        ax.text(xi, b, f"{int(b)}/{n}", ha="center", va="bottom", fontsize="small")
    ax.set_xticks(x, [_TERM_LABELS.get(t, t) for t in terms])
    ax.set_ylim(0, n * 1.08)
    ax.set_ylabel("Patients")
    ax.legend(title="max grade", loc="upper right", fontsize="small")
    return ax


def plot_bca_duration(analysis: pd.DataFrame, by: str | None = None, ax=None,
                      labels: Mapping | None = None):
    """Box and swarm of B-cell-aplasia duration (days) among patients with BCA onset.

    One box per value of ``by`` (all patients when None; ``labels`` renames values).
    Durations of aplasia still ongoing at the last assessment are censored, so they are
    drawn in another colour: their true duration is longer.

    >>> a = pd.DataFrame({"bca": [1, 1, 1, 0], "bca_duration_days": [30.0, 59.0, 120.0, 0.0],
    ...                   "bca_ongoing": [0, 0, 1, 0], "female": [1, 0, 1, 0]})
    >>> ax = plot_bca_duration(a, by="female")
    >>> sum(len(c.get_offsets()) for c in ax.collections)
    3
    >>> plt.close(ax.figure)
    """
    d = analysis[analysis["bca"] == 1].copy()
    if by is None:
        d["group"], order = "patients with BCA", ["patients with BCA"]
    else:
        d = d[d[by].notna()]
        name = {v: (labels or {}).get(v, f"{by} = {v}") for v in sorted(d[by].unique())}
        d["group"], order = d[by].map(name), list(name.values())
    d["status"] = np.where(d["bca_ongoing"] == 1, "ongoing (censored)", "lost")
    ax = figure_axes(ax, (6, 5))
    if d.empty:
        ax.text(0.5, 0.5, "no patient with B-cell aplasia", transform=ax.transAxes, ha="center")
    else:
        # matplotlib's own boxplot: seaborn 0.13's passes a `vert` argument that matplotlib
        # 3.11 deprecates (removal planned), so it would warn in every notebook.
        ax.boxplot([d.loc[d["group"] == g, "bca_duration_days"] for g in order],
                   positions=range(len(order)), widths=0.5, showfliers=False,
                   manage_ticks=False, patch_artist=True, medianprops=dict(color="0.2"),
                   boxprops=dict(facecolor="0.92", edgecolor="0.4"),
                   whiskerprops=dict(color="0.4"), capprops=dict(color="0.4"))
        sns.swarmplot(data=d, x="group", y="bca_duration_days", order=order, hue="status",
                      hue_order=["lost", "ongoing (censored)"], size=5, ax=ax,
                      palette=[OKABE_ITO["blue"], OKABE_ITO["orange"]])
        ax.legend(title="B-cell aplasia", fontsize="small")
    ax.set_xlabel("")
    ax.set_ylabel("BCA duration (days)")
    return ax

