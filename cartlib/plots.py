"""Figures for the notebooks and the report (forest, PK spaghetti, swimmer, IL-6, AE grades).

Kaplan–Meier curves with numbers at risk live in ``cartlib.stats.survival``
(``KaplanMeier.plot``, ``plot_km``) and cumulative-incidence curves in
``cartlib.stats.competing``; this module does not repeat them.

Conventions: every function takes ``ax=None`` (a new figure sized for a ~900 px wide
report is made when it is None) and returns the Axes; nothing calls ``plt.show``, so
the functions run under the Agg backend. Colours come from the Okabe–Ito palette,
which stays distinguishable with the common colour-vision deficiencies, and markers
differ in shape as well as colour. Artists carry a ``gid`` (e.g. ``"lloq"``,
``"death (NRM)"``) so tests and users can find them. Call :func:`set_style` once per
notebook for the shared look.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory
from scipy import stats

from cartlib.tables import format_p, model_table

try:  # the one definition lives in cartlib.derive; this module must import without it
    from cartlib.derive import DAYS_PER_MONTH
except ImportError:  # pragma: no cover - only before derive.py exists
    DAYS_PER_MONTH = 30.4375

OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00",
             "purple": "#CC79A7", "grey": "#999999"}

# Nominal PK visits (days) that bin samples for the median profile: the paper's visits
# (7, 14, 28 days; 12, 26, 39, 54, 104 weeks; then 6-monthly), the early samples its
# Tmax implies (about days 4, 10-11 and 21; PK_NCA.md) and the weekly visits of the
# bundled synthetic cohort (parameters/synthetic.yaml), 6-monthly to about 9.5 years.
PK_SCHEDULE = (4, 7, 10, 14, 21, 28, 35, 42, 49, 60, 84, 182, 273, 378,
               *range(728, 3459, 182))


def set_style(context: str = "notebook") -> None:
    """Apply the shared look: seaborn "ticks", Okabe–Ito colours, 9-inch figures at 100 dpi.

    >>> with mpl.rc_context():  # rc_context only to leave the caller's style untouched
    ...     set_style()
    ...     mpl.rcParams["figure.figsize"], mpl.rcParams["savefig.dpi"]
    ([9.0, 5.0], 100.0)
    """
    sns.set_theme(context=context, style="ticks", palette=list(OKABE_ITO.values()))
    mpl.rcParams.update({
        "figure.figsize": (9, 5), "figure.dpi": 100, "savefig.dpi": 100,
        "savefig.bbox": "tight", "axes.spines.top": False, "axes.spines.right": False,
        "legend.frameon": False,
        "svg.hashsalt": "cartlib",  # fixed ids so SVG output is byte-stable across runs
    })


def _axes(ax, figsize):
    if ax is not None:
        return ax
    return plt.subplots(figsize=figsize, layout="constrained")[1]


def _plain_log_ticks(axis) -> None:
    # "1,000,000" reads better in a clinical report than "1e+06" or 10^6.
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(mticker.NullFormatter())


# --- forest ---------------------------------------------------------------------------

def plot_forest(summary: pd.DataFrame, ax=None, estimate: str = "hr", lower: str = "hr_lo",
                upper: str = "hr_hi", p: str | None = "p",
                labels: Mapping | Sequence | None = None,
                xlabel: str = "Hazard ratio (95% CI)", title: str | None = None):
    """Forest plot of ratios (HR or OR) on a log axis, with a text column ``EST (95% CI)  p``.

    One row per summary row, top to bottom in summary order. Rows without an estimate
    are not drawn; their text reads ``not estimable (reason)`` (``reason`` column).
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
    names = text.index.tolist()
    n = len(names)
    ax = _axes(ax, (9, 0.42 * n + 1.6))
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
        ax.plot([a, b], [y[i], y[i]], color=colour, lw=1.6, gid=f"ci:{names[i]}")
        for end, bound, mark in ((a, lo[i], "<"), (b, hi[i], ">")):
            if np.isnan(bound) or end != bound:  # clipped or unknown bound
                ax.plot([end], [y[i]], marker=mark, color=colour, gid=f"clipped:{names[i]}")
    ax.scatter(est[ok], y[ok], marker="s", s=40, color=colour, zorder=3, gid="estimates")
    ax.axvline(1.0, color=OKABE_ITO["grey"], ls="--", lw=1, gid="reference")
    ax.set_xscale("log")
    ax.set_xlim(xmin, xmax)
    _plain_log_ticks(ax.xaxis)
    ax.set_yticks(y, names)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(xlabel)
    trans = blended_transform_factory(ax.transAxes, ax.transData)
    ci_col, p_col = text.columns
    ax.text(1.04, n - 0.45, ci_col, transform=trans, weight="bold", va="bottom")
    ax.text(1.62, n - 0.45, p_col, transform=trans, weight="bold", va="bottom")
    for i in range(n):
        ax.text(1.04, y[i], text.iloc[i, 0], transform=trans, va="center", gid=f"text:{names[i]}")
        if ok[i]:
            ax.text(1.62, y[i], text.iloc[i, 1], transform=trans, va="center")
    if title:
        ax.set_title(title, loc="left")
    return ax


# --- PK spaghetti ---------------------------------------------------------------------

def _pk_points(pk: pd.DataFrame, lloq: float) -> pd.DataFrame:
    d = pk.loc[pd.to_numeric(pk["DAY"], errors="coerce") > 0, ["USUBJID", "DAY", "CONC"]].copy()
    d["DAY"] = d["DAY"].astype(float)
    conc = pd.to_numeric(d["CONC"], errors="coerce")  # the text BLQ becomes NaN
    d["BLQ"] = conc.isna() | (conc < lloq)
    d["Y"] = np.where(d["BLQ"], lloq / 2, conc)
    return d.sort_values(["USUBJID", "DAY"], kind="mergesort")


def median_pk_profile(pk: pd.DataFrame, lloq: float = 100, schedule: Sequence = PK_SCHEDULE,
                      min_n: int = 3) -> pd.DataFrame:
    """Median concentration over patients at each nominal visit day (samples with DAY > 0).

    Each sample is assigned to the nearest day of ``schedule`` (its nominal visit); a
    patient with several samples in one visit contributes the one nearest the nominal
    day (the earlier on a tie), so every median is of observed values. BLQ samples
    (text ``BLQ`` or below ``lloq``) rank below every quantifiable value: when at least
    half of a visit's patients are BLQ the median is BLQ, given as ``lloq/2`` (where the
    plot draws BLQ), otherwise it is the ordinary median of the values, which then
    involves quantifiable values only. Visits with fewer than ``min_n`` patients get
    no median (NaN) rather than a median of a handful.

    >>> pk = pd.DataFrame({"USUBJID": ["A", "B", "C", "A", "B", "C"],
    ...                    "DAY": [6.0, 7.0, 8.0, 13.0, 14.0, 15.0],
    ...                    "CONC": [1000.0, 3000.0, 2000.0, 400.0, np.nan, 50.0]})
    >>> median_pk_profile(pk)[["nominal_day", "n", "n_blq", "median"]].values.tolist()
    [[7.0, 3.0, 0.0, 2000.0], [14.0, 3.0, 2.0, 50.0]]
    """
    d = _pk_points(pk, lloq)
    sched = np.asarray(sorted(schedule), float)
    d["nominal_day"] = sched[np.abs(d["DAY"].to_numpy()[:, None] - sched[None, :]).argmin(axis=1)]
    d["distance"] = (d["DAY"] - d["nominal_day"]).abs()
    d = d.sort_values(["nominal_day", "USUBJID", "distance", "DAY"], kind="mergesort")
    d = d.drop_duplicates(["nominal_day", "USUBJID"])
    g = d.groupby("nominal_day")
    out = pd.DataFrame({"n": g.size(), "n_blq": g["BLQ"].sum(), "median": g["Y"].median()})
    out.loc[2 * out["n_blq"] >= out["n"], "median"] = lloq / 2
    out.loc[out["n"] < min_n, "median"] = np.nan
    return out.reset_index()


def _draw_profiles(ax, d, lloq, median, highlight, markers=True):
    for uid, prof in d.groupby("USUBJID", sort=False):
        hot = uid in highlight
        ax.plot(prof["DAY"], prof["Y"], color=OKABE_ITO["blue"] if hot else OKABE_ITO["grey"],
                lw=1.8 if hot else 0.7, alpha=1 if hot else 0.55, zorder=2 if hot else 1,
                gid=f"profile:{uid}", label=str(uid) if hot else None)
    if markers:
        q, b = d[~d["BLQ"]], d[d["BLQ"]]
        ax.scatter(q["DAY"], q["Y"], s=10, color=OKABE_ITO["grey"], gid="quantifiable")
        ax.scatter(b["DAY"], b["Y"], s=16, facecolors="none", edgecolors=OKABE_ITO["black"],
                   lw=0.7, gid="blq", label=f"BLQ (drawn at LLOQ/2 = {lloq / 2:g})")
    ax.axhline(lloq, color=OKABE_ITO["black"], ls="--", lw=1, gid="lloq",
               label=f"LLOQ ({lloq:g} copies/µg)")
    if median is not None:
        ax.plot(median["nominal_day"], median["median"], color=OKABE_ITO["vermillion"], lw=2.2,
                marker="o", ms=4, zorder=4, gid="median", label="median (nominal visit)")
    ax.set_yscale("log")


def plot_spaghetti(pk: pd.DataFrame, nca: pd.DataFrame | None = None, lloq: float = 100,
                   ax=None, median: bool = True, highlight: Sequence | None = None,
                   xmax: float | None = 120, xscale: str = "linear", inset: bool = True,
                   schedule: Sequence = PK_SCHEDULE):
    """Every patient's transgene profile (DAY > 0) on a log axis, the LLOQ and the median.

    BLQ samples (text ``BLQ`` or below ``lloq``) are drawn at ``lloq/2`` with open
    markers, as the legend says. The median is :func:`median_pk_profile` (samples
    binned to the nearest day of ``schedule``). With ``nca`` (indexed by USUBJID with
    ``tmax``, ``cmax``), each Cmax is marked. The main panel shows days 0–``xmax``
    (``None``: all follow-up) on ``xscale``; when samples lie beyond ``xmax`` and
    ``inset`` is true, an inset shows all follow-up on log time.

    >>> pk = pd.DataFrame({"USUBJID": ["A"] * 4 + ["B"] * 4, "DAY": [0, 7, 14, 200] * 2,
    ...                    "CONC": [np.nan, 5e4, 2e3, np.nan, np.nan, 9e3, 80, np.nan]})
    >>> ax = plot_spaghetti(pk, median=False)
    >>> ax.get_yscale(), [l.get_ydata()[0] for l in ax.lines if l.get_gid() == "lloq"]
    ('log', [100])
    >>> plt.close(ax.figure)
    """
    d = _pk_points(pk, lloq)
    highlight = set(highlight or ())
    ax = _axes(ax, (9, 5.5))
    med = median_pk_profile(pk, lloq, schedule) if median else None
    _draw_profiles(ax, d, lloq, med, highlight)
    if nca is not None:
        c = nca[["tmax", "cmax"]].dropna()
        ax.scatter(c["tmax"], c["cmax"], marker="^", s=30, color=OKABE_ITO["orange"], zorder=3,
                   gid="cmax", label="Cmax (NCA)")
    first, last = (float(d["DAY"].min()), float(d["DAY"].max())) if len(d) else (1.0, 1.0)
    ax.set_xscale(xscale)
    ax.set_xlim(0 if xscale == "linear" else max(first, 0.5) * 0.8,
                xmax if xmax is not None else last * 1.05)
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel("Days after infusion")
    ax.set_ylabel("Transgene copies/µg DNA")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize="small")
    if inset and xmax is not None and last > xmax:
        ins = ax.inset_axes([0.6, 0.58, 0.38, 0.4])
        _draw_profiles(ins, d, lloq, med, highlight, markers=False)
        ins.set_xscale("log")
        _plain_log_ticks(ins.xaxis)
        ins.set_title("all follow-up (log days)", fontsize="small")
        ins.tick_params(labelsize="x-small")
    return ax


# --- swimmer --------------------------------------------------------------------------

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
    ("MRD-negative CR (day 28)", None, _cr(True), dict(marker="D", color=OKABE_ITO["green"])),
    ("CR/CRi, MRD-positive (day 28)", None, _cr(False),
     dict(marker="D", facecolors="none", edgecolors=OKABE_ITO["green"])),
    ("HSCT", "hsct_day", _event("hsct_day"), dict(marker="P", color=OKABE_ITO["blue"])),
    ("relapse CD19+", "relapse_day", _event("relapse_day", "relapse_cd19", ["CD19POS"]),
     dict(marker="o", color=OKABE_ITO["orange"])),
    ("relapse CD19−", "relapse_day", _event("relapse_day", "relapse_cd19", ["CD19NEG"]),
     dict(marker="o", facecolors="none", edgecolors=OKABE_ITO["vermillion"], linewidths=1.5)),
    ("relapse (CD19 unknown)", "relapse_day",
     _event("relapse_day", "relapse_cd19", ["CD19POS", "CD19NEG"], other=True),
     dict(marker="o", color=OKABE_ITO["yellow"])),
    ("death (relapse)", "death_day", _event("death_day", "death_cause", ["RELAPSE"]),
     dict(marker="X", color=OKABE_ITO["black"])),
    ("death (NRM)", "death_day", _event("death_day", "death_cause", ["NRM"]),
     dict(marker="X", color=OKABE_ITO["purple"])),
    ("death (cause unknown)", "death_day",
     _event("death_day", "death_cause", ["RELAPSE", "NRM"], other=True),
     dict(marker="X", color=OKABE_ITO["grey"])),
    ("alive at last contact", "os_days", lambda a: a["os_event"] == 0,
     dict(marker=r"$\rightarrow$", color=OKABE_ITO["black"], s=90)),
)
_TIME_UNITS = {"days": 1.0, "months": DAYS_PER_MONTH, "years": 365.25}


def plot_swimmer(analysis: pd.DataFrame, ax=None, time_unit: str = "months"):
    """Swimmer plot: one bar per patient from infusion to last contact, with clinical events.

    Bars are sorted by follow-up (``os_days``; longest on top) and labelled by USUBJID
    (the index). Markers: CR/CRi at day 28 (filled when MRD-negative), HSCT, relapse
    CD19+ / CD19− (``relapse_cd19``), death by ``death_cause`` (relapse / NRM), and an
    arrow at the end of the bar of every patient alive at last contact (``os_event`` 0).
    Columns other than ``os_days``/``os_event`` are optional; a missing one drops its
    markers (CR markers need both ``cr`` and ``d28_mrd_neg``). ``time_unit``: days,
    months (days / 30.4375) or years (days / 365.25).

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
    n = len(a)
    y = np.arange(n)
    ax = _axes(ax, (9, max(4.0, 0.2 * n + 1.5)))
    ax.barh(y, a["os_days"] / scale, height=0.6, color=OKABE_ITO["sky"], alpha=0.55, gid="follow-up")
    for label, col, select, style in _SWIMMER_MARKS:
        mask = select(a)
        if mask is None or not mask.any():
            continue
        x = np.full(int(mask.sum()), 28.0) if col is None else a.loc[mask, col].to_numpy(float)
        ax.scatter(x / scale, y[mask.to_numpy()], zorder=3, label=label, gid=label,
                   **{"s": 36, **style})
    ax.set_yticks(y, a.index.astype(str), fontsize="x-small" if n > 30 else "small")
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(0, None)
    ax.set_xlabel(f"Time since infusion ({time_unit})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize="small")
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
    On a log axis values ≤ 0 cannot be drawn and are left out.

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
    ax = _axes(ax, (6, 5))
    ax.scatter(xs[ok], ys[ok], s=28, color=OKABE_ITO["blue"], alpha=0.8, gid="points")
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
    ax.text(0.02, 0.98, note, transform=ax.transAxes, va="top", gid="corr")
    for on, setter, axis in ((logx, ax.set_xscale, ax.xaxis), (logy, ax.set_yscale, ax.yaxis)):
        if on:
            setter("log")
            _plain_log_ticks(axis)
    ax.set_xlabel(xlabel if xlabel is not None else getattr(x, "name", "") or "")
    ax.set_ylabel(ylabel if ylabel is not None else getattr(y, "name", "") or "")
    return ax


def plot_il6(labs: pd.DataFrame, analysis: pd.DataFrame | None = None, ax=None,
             uln: float = 7):
    """IL-6 over days 0–28 per patient on a log axis, with the ULN, coloured by max CRS grade.

    Groups are CRS grade 0–2 and ≥ 3 (``crs_grade`` of ``analysis``); without
    ``analysis``, or for a patient not in it, lines are grey. Values ≤ 0 cannot be
    drawn on the log axis and are left out.

    >>> labs = pd.DataFrame({"USUBJID": ["A", "A", "B", "B"], "DAY": [1, 7, 2, 9],
    ...                      "TEST": ["IL6"] * 4, "VALUE": [12.0, 300.0, 5.0, 8.0]})
    >>> a = pd.DataFrame({"crs_grade": [3, 1]}, index=pd.Index(["A", "B"], name="USUBJID"))
    >>> ax = plot_il6(labs, a)
    >>> sorted(l.get_gid() for l in ax.lines)
    ['il6:A', 'il6:B', 'uln']
    >>> plt.close(ax.figure)
    """
    d = labs[labs["TEST"].astype(str).str.upper().eq("IL6")]
    d = d[(d["DAY"] >= 0) & (d["DAY"] <= 28) & (d["VALUE"] > 0)]
    d = d.sort_values(["USUBJID", "DAY"], kind="mergesort")
    grade = analysis["crs_grade"] if analysis is not None else pd.Series(dtype=float)
    groups = {"CRS grade 0–2": OKABE_ITO["blue"], "CRS grade ≥ 3": OKABE_ITO["vermillion"],
              "CRS grade unknown": OKABE_ITO["grey"]}
    ax = _axes(ax, (9, 5))
    seen = set()
    for uid, prof in d.groupby("USUBJID", sort=False):
        g = grade.get(uid, np.nan)
        key = "CRS grade unknown" if pd.isna(g) else "CRS grade ≥ 3" if g >= 3 else "CRS grade 0–2"
        seen.add(key)
        ax.plot(prof["DAY"], prof["VALUE"], color=groups[key], marker="o", ms=3, lw=1,
                alpha=0.8, gid=f"il6:{uid}", zorder=3 if key == "CRS grade ≥ 3" else 2)
    ax.axhline(uln, color=OKABE_ITO["black"], ls="--", lw=1, gid="uln")
    handles = [Line2D([], [], color=c, marker="o", ms=3, label=k) for k, c in groups.items()
               if k in seen]
    handles.append(Line2D([], [], color=OKABE_ITO["black"], ls="--", label=f"ULN ({uln:g} pg/mL)"))
    ax.legend(handles=handles, loc="upper right", fontsize="small")
    ax.set_yscale("log")
    _plain_log_ticks(ax.yaxis)
    ax.set_xlim(0, 28)
    ax.set_xlabel("Days after infusion")
    ax.set_ylabel("IL-6 (pg/mL)")
    return ax


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
    ax = _axes(ax, (9, 5))
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
    ax = _axes(ax, (6, 5))
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
