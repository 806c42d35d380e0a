"""Kinetic figures: PK spaghetti plot with the median profile, IL-6 courses."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from .style import FIGURE_WIDTH_IN, GROUP_COLOURS, OKABE_ITO, figure_axes, plain_log_ticks, plot_not_estimable, time_ticks

# Nominal PK visits (days) that bin samples for the median profile: the paper's visits
# (7, 14, 28 days; 12, 26, 39, 54, 104 weeks; then 6-monthly), the early samples its
# Tmax implies (about days 4, 10-11 and 21; docs/NCA.md) and the weekly visits of the
# bundled synthetic cohort (parameters/synthetic.yaml), 6-monthly to about 9.5 years.
PK_SCHEDULE = (4, 7, 10, 14, 21, 28, 35, 42, 49, 60, 84, 182, 273, 378,
               *range(728, 3459, 182))

# Above this many patients a figure draws a sample of their lines: thousands of overlapping
# lines show nothing more and take minutes to draw; medians and markers of the summary stay
# computed from every patient.
MAX_LINES = 200


def sample_patients(ids, limit: int | None = MAX_LINES, keep: Sequence = ()) -> set:
    """The patients whose lines a figure draws: all when there are at most ``limit``,
    otherwise a deterministic sample of ``limit`` (plus every id of ``keep``).

    The sample is the ``limit`` ids with the smallest SHA-256 of their text, so it does not
    depend on a seed, on row order or on the other patients' ids being present.

    >>> ids = [f"P{i:05d}" for i in range(1000)]
    >>> chosen = sample_patients(ids, 10, keep=["P00001"])
    >>> len(chosen), "P00001" in chosen, chosen == sample_patients(ids[::-1], 10, keep=["P00001"])
    (11, True, True)
    >>> sample_patients(["A", "B"], 10) == {"A", "B"}
    True
    """
    unique = pd.unique(pd.Series(list(ids), dtype=object))
    if limit is None or len(unique) <= limit:
        return set(unique)
    ranked = sorted(unique, key=lambda uid: hashlib.sha256(str(uid).encode("utf-8")).digest())
    return set(ranked[:limit]) | (set(keep) & set(unique))


def _sampling_note(drawn: int, total: int, summary: str | None = None) -> str | None:
    """The legend's statement that lines are a sample (None when every line is drawn)."""
    if drawn >= total:
        return None
    note = f"lines of {drawn:,} of {total:,} patients (deterministic sample)"
    return f"{note}; {summary} of all {total:,}" if summary else note


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
        # The line joins quantifiable medians only: a visit whose median is BLQ gets an open
        # marker at LLOQ/2 and breaks the line, which would otherwise zig-zag down to LLOQ/2
        # and back up as if the level had fallen and risen again.
        blq = median["median"] <= lloq / 2
        ax.plot(median["nominal_day"], median["median"].where(~blq), color=OKABE_ITO["vermillion"], lw=2.2,
                marker="o", ms=4, zorder=4, gid="median", label="median (nominal visit)")
        if blq.any():
            ax.plot(median.loc[blq, "nominal_day"], median.loc[blq, "median"], ls="none", marker="o", ms=5,
                    mfc="white", mec=OKABE_ITO["vermillion"], mew=1.4, zorder=4, gid="median blq",
                    label="median BLQ (≥ half the patients BLQ)")
    ax.set_yscale("log")


def plot_spaghetti(pk: pd.DataFrame, nca: pd.DataFrame | None = None, lloq: float = 100,
                   ax=None, median: bool = True, highlight: Sequence | None = None,
                   xmax: float | None = 120, xscale: str = "linear", inset: bool = True,
                   schedule: Sequence = PK_SCHEDULE, max_patients: int | None = MAX_LINES):
    """Every patient's transgene profile (DAY > 0) on a log axis, the LLOQ and the median.

    BLQ samples (text ``BLQ`` or below ``lloq``) are drawn at ``lloq/2`` with open
    markers, as the legend says. The median is :func:`median_pk_profile` (samples
    binned to the nearest day of ``schedule``). With ``nca`` (indexed by USUBJID with
    ``tmax``, ``cmax``), each Cmax is marked. The median line joins quantifiable medians; a
    visit whose median is BLQ shows an open marker at ``lloq/2`` and breaks the line. The main
    panel shows days 0–``xmax`` (``None``: all follow-up) on ``xscale``; when samples lie
    beyond ``xmax`` and ``inset`` is true, a panel beside it (outside the data area) shows
    all follow-up on log time. Without any sample after
    day 0 the panel says ``not estimable (no PK sample after day 0)``.

    With more than ``max_patients`` patients (``None``: no limit) only the lines, sample
    markers and Cmax marks of :func:`sample_patients` (and of ``highlight``) are drawn, and
    the legend says so; the median is still of every patient.

    >>> pk = pd.DataFrame({"USUBJID": ["A"] * 4 + ["B"] * 4, "DAY": [0, 7, 14, 200] * 2,
    ...                    "CONC": [np.nan, 5e4, 2e3, np.nan, np.nan, 9e3, 80, np.nan]})
    >>> ax = plot_spaghetti(pk, median=False)
    >>> ax.get_yscale(), [l.get_ydata()[0] for l in ax.lines if l.get_gid() == "lloq"]
    ('log', [100])
    >>> plt.close(ax.figure)
    """
    d = _pk_points(pk, lloq)
    if d.empty:
        return plot_not_estimable("no PK sample after day 0", ax=ax, figsize=(FIGURE_WIDTH_IN, 4.2))
    highlight = set(highlight or ())
    med = median_pk_profile(pk, lloq, schedule) if median else None
    total = d["USUBJID"].nunique()
    drawn = sample_patients(d["USUBJID"], max_patients, keep=sorted(highlight, key=str))
    if len(drawn) < total:
        d = d[d["USUBJID"].isin(drawn)]
    first, last = (float(d["DAY"].min()), float(d["DAY"].max())) if len(d) else (1.0, 1.0)
    side = inset and xmax is not None and last > xmax
    if ax is None and side:
        # placed by hand, main panel in the left two thirds: the layout engine does not see the
        # side panel (an inset) and would let the legend under the main panel push it off the page
        ax = plt.figure(figsize=(FIGURE_WIDTH_IN, 4.2)).add_axes((0.12, 0.27, 0.52, 0.7))
    ax = figure_axes(ax, (FIGURE_WIDTH_IN, 4.2))
    _draw_profiles(ax, d, lloq, med, highlight)
    note = _sampling_note(d["USUBJID"].nunique(), total, "median" if med is not None else None)
    if note:
        ax.plot([], [], " ", gid="sampling", label=note)
    if nca is not None:
        c = nca[["tmax", "cmax"]].dropna()
        if len(drawn) < total:
            c = c[c.index.isin(drawn)]
        ax.scatter(c["tmax"], c["cmax"], marker="^", s=24, color=OKABE_ITO["orange"], zorder=3,
                   gid="cmax", label="Cmax (NCA)")
    ax.set_xscale(xscale)
    if xscale == "linear":
        ticks = time_ticks(xmax if xmax is not None else last, "days", 4.0)
        ax.set_xticks(ticks)
        ax.set_xlim(0, ticks[-1])
    else:
        ax.set_xlim(max(first, 0.5) * 0.8, xmax if xmax is not None else last * 1.05)
    plain_log_ticks(ax.yaxis)
    ax.set_xlabel("Days after infusion")
    ax.set_ylabel("Transgene copies/µg DNA")
    # under the main panel; with a side panel, from the main panel's left edge under both
    ax.legend(loc="upper left" if side else "upper center", bbox_to_anchor=(0.0 if side else 0.5, -0.14), ncol=3,
              fontsize="small")
    if side:
        # beside the main panel, not on it: an inset inside would cover profiles
        ins = ax.inset_axes([1.16, 0.3, 0.4, 0.7])
        _draw_profiles(ins, d, lloq, med, highlight, markers=False)
        ins.set_xscale("log")
        ins.set_ylim(ax.get_ylim())
        plain_log_ticks(ins.xaxis)
        plain_log_ticks(ins.yaxis)
        ins.set_title("all follow-up (log days)", fontsize="small")
        ins.set_xlabel("Days after infusion", fontsize="small")
        ins.tick_params(labelsize="small")
    return ax


# --- swimmer --------------------------------------------------------------------------


def plot_il6(labs: pd.DataFrame, analysis: pd.DataFrame | None = None, ax=None,
             uln: float = 7, max_patients: int | None = MAX_LINES):
    """IL-6 over days 0–28 per patient on a log axis, with the ULN, coloured by max CRS grade.

    Groups are CRS grade 0–2 and ≥ 3 (``crs_grade`` of ``analysis``); without
    ``analysis``, or for a patient not in it, lines are grey. Values ≤ 0 cannot be
    drawn on the log axis and are left out; with none left the panel says why
    (``not estimable (...)``). With more than ``max_patients`` patients (``None``: no
    limit) the lines of :func:`sample_patients` are drawn, and the legend says so.

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
    if d.empty:
        return plot_not_estimable("no IL-6 value above 0 in days 0–28", ax=ax, figsize=(FIGURE_WIDTH_IN, 3.8))
    grade = analysis["crs_grade"] if analysis is not None else pd.Series(dtype=float)
    groups = {"CRS grade 0–2": GROUP_COLOURS["CRS grade 0–2"], "CRS grade ≥ 3": GROUP_COLOURS["CRS grade ≥ 3"],
              "CRS grade unknown": OKABE_ITO["grey"]}
    ax = figure_axes(ax, (FIGURE_WIDTH_IN, 3.8))
    total = d["USUBJID"].nunique()
    drawn = sample_patients(d["USUBJID"], max_patients)
    if len(drawn) < total:
        d = d[d["USUBJID"].isin(drawn)]
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
    note = _sampling_note(len(drawn), total)
    if note:
        handles.append(Line2D([], [], ls="", gid="sampling", label=note))
    ax.legend(handles=handles, loc="upper right", fontsize="small")
    ax.set_yscale("log")
    plain_log_ticks(ax.yaxis)
    ax.set_xlim(0, 28)
    ax.set_xticks(range(0, 29, 7))
    ax.set_xlabel("Days after infusion")
    ax.set_ylabel("IL-6 (pg/mL)")
    return ax


