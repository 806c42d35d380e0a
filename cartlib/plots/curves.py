"""Time-to-event figures in the shared style: Kaplan–Meier with numbers at risk,
cumulative incidence, Simon–Makuch.

The fitters of ``cartlib.stats`` estimate; these functions only draw their results
(``KaplanMeier.table_``/``at_risk``, ``CumulativeIncidence.table_``, ``SimonMakuch.curves_``),
so every curve of the report has the group colours of :data:`~cartlib.plots.style.GROUP_COLOURS`,
time ticks from :func:`~cartlib.plots.style.time_ticks` and numbers at risk placed under the
tick labels, never on them.
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt  # noqa: F401  (the examples close their figures with plt)
import numpy as np

from .style import FIGURE_WIDTH_IN, GROUP_COLOURS, OKABE_ITO, figure_axes, plot_not_estimable, time_ticks

_CYCLE = [OKABE_ITO[c] for c in ("black", "blue", "vermillion", "green", "orange", "purple", "sky")]
AT_RISK_FONTSIZE = 7
CURVE_LW = 1.4   # a step curve's line width (points): clear at a journal's page width, not heavy


def curve_colours(labels, colours: Mapping | None = None) -> dict:
    """A colour per curve label: ``colours`` first, then :data:`GROUP_COLOURS`, then a fixed cycle.

    >>> curve_colours(["no HSCT", "HSCT"]) == {"no HSCT": "#0072B2", "HSCT": "#D55E00"}
    True
    """
    out = {label: (colours or {}).get(label) or GROUP_COLOURS.get(label) for label in labels}
    spare = iter(c for c in _CYCLE if c not in out.values())
    return {label: chosen or next(spare, OKABE_ITO["grey"]) for label, chosen in out.items()}


def _axis_width(ax) -> float:
    return ax.get_position().width * ax.figure.get_figwidth()


def at_risk_rows(ax, rows: Mapping, times, colours: Mapping) -> None:
    """Write numbers at risk under the x axis: a bold "Number at risk" line, then one row per
    curve (its label on the left, in its colour), each number centred under its tick.

    Rows are placed in points below the tick labels and the axis label, so they keep clear of
    both whatever the figure's size. Every text carries the gid ``"at risk"``.
    """
    below = ("axes fraction", ax.xaxis.label)       # x in axes units, y under the axis label
    ax.annotate("Number at risk", xy=(0, 0), xycoords=below, xytext=(-16, -6), textcoords="offset points",
                ha="right", va="top", fontsize=AT_RISK_FONTSIZE, fontweight="bold", gid="at risk title")
    for row, (name, counts) in enumerate(rows.items(), start=1):
        dy = -6 - 9.5 * row   # rows 9.5 pt apart: AT_RISK_FONTSIZE plus a gap
        ax.annotate(str(name), xy=(0, 0), xycoords=below, xytext=(-16, dy), textcoords="offset points",
                    ha="right", va="top", fontsize=AT_RISK_FONTSIZE, color=colours.get(name, "black"),
                    gid="at risk label")
        for t, n in zip(times, counts):
            ax.annotate(str(int(n)), xy=(t, 0), xycoords=("data", ax.xaxis.label), xytext=(0, dy),
                        textcoords="offset points", ha="center", va="top", fontsize=AT_RISK_FONTSIZE,
                        gid="at risk")


def plot_survival(fits: Mapping, ax=None, time_unit: str = "months", title: str | None = None,
                  ylabel: str = "Survival probability", ci: bool = False, at_risk: bool = True,
                  colours: Mapping | None = None, time_scale: float = 1.0, end: float | None = None,
                  xlabel: str | None = None, empty_reason: str = "no patients", figsize=(FIGURE_WIDTH_IN, 4.4)):
    """Kaplan–Meier curves (``{label: fitted KaplanMeier}``) with censoring ticks, optional
    95 % CI bands and numbers at risk (R counting: follow-up ≥ t) under the axis.

    Times are the fits' times divided by ``time_scale`` (e.g. days fitted, months drawn:
    ``time_scale=30.4375``). Ticks: :func:`time_ticks` for ``time_unit`` and the axis width,
    up to ``end`` (default: the longest follow-up). ``ylabel`` names what the curve is (e.g.
    "Probability of ongoing B-cell aplasia"); ``xlabel`` defaults to "Time since infusion
    (unit)". With no fit the panel says ``not estimable
    (empty_reason)``.

    >>> from cartlib.stats.survival import KaplanMeier
    >>> fits = {"HSCT": KaplanMeier().fit([5, 30, 40], [1, 0, 1]), "no HSCT": KaplanMeier().fit([20, 50], [0, 1])}
    >>> ax = plot_survival(fits, title="OS")
    >>> [t.get_text() for t in ax.texts if t.get_gid() == "at risk"][:3], ax.get_xticks().tolist()
    (['3', '2', '2'], [0, 12, 24, 36, 48, 60])
    >>> plt.close(ax.figure)
    """
    ax = figure_axes(ax, figsize)
    if not fits:
        return plot_not_estimable(empty_reason, ax=ax, title=title)
    colour = curve_colours(list(fits), colours)
    longest = max(float(np.max(f.durations_)) for f in fits.values()) / time_scale
    chars = len(str(max(len(f.durations_) for f in fits.values())))
    ticks = time_ticks(end if end is not None else longest, time_unit, _axis_width(ax), chars)
    for name, fit in fits.items():
        tab = fit.table_
        x = np.r_[0.0, tab["time"].to_numpy() / time_scale]
        y = np.r_[1.0, tab["survival"].to_numpy()]
        ax.step(x, y, where="post", color=colour[name], lw=CURVE_LW, label=str(name), gid=f"curve:{name}")
        if ci:
            lo = np.r_[1.0, tab["ci_lower"].to_numpy()]
            hi = np.r_[1.0, tab["ci_upper"].to_numpy()]
            ax.fill_between(x, lo, hi, step="post", alpha=0.18, color=colour[name], linewidth=0,
                            gid=f"ci:{name}")
        cens = tab[tab["n_censor"] > 0]
        ax.plot(cens["time"] / time_scale, cens["survival"], ls="none", marker="|", ms=5.5, mew=1.0,
                color=colour[name], gid=f"censored:{name}")
    ax.set_xticks(ticks)
    ax.set_xlim(0, ticks[-1] * 1.02)
    ax.set_ylim(0, 1.04)
    ax.set_xlabel(xlabel or f"Time since infusion ({time_unit})")
    ax.set_ylabel(ylabel)
    if len(fits) > 1:   # one curve needs no legend: the title and caption name it
        ax.legend(loc="best", fontsize="small", title="shaded: 95% CI" if ci else None, title_fontsize="small")
    if title:
        ax.set_title(title, loc="left")
    if at_risk:
        counts = {name: fit.at_risk(np.asarray(ticks, float) * time_scale) for name, fit in fits.items()}
        at_risk_rows(ax, counts, ticks, colour)
    return ax


def plot_incidence(curves: Mapping, ax=None, time_unit: str = "months", title: str | None = None,
                   ci: bool = True, colours: Mapping | None = None, figsize=(FIGURE_WIDTH_IN, 3.8)):
    """Cumulative-incidence step curves with 95 % CI bands.

    ``curves`` maps a label to ``(fit, group, last_time)``: a fitted
    ``CumulativeIncidence``, the group of it to draw (``"all"`` without groups) and the
    group's last follow-up time, to which the curve is drawn flat.

    >>> from cartlib.stats.competing import CumulativeIncidence
    >>> fit = CumulativeIncidence().fit([3, 8, 14, 30], [1, 2, 1, 0])
    >>> ax = plot_incidence({"relapse": (fit, "all", 30.0)})
    >>> ax.get_ylabel(), ax.get_xticks().tolist()
    ('Cumulative incidence', [0, 12, 24, 36])
    >>> plt.close(ax.figure)
    """
    ax = figure_axes(ax, figsize)
    colour = curve_colours(list(curves), colours)
    end = max(last for _, _, last in curves.values())
    ticks = time_ticks(end, time_unit, _axis_width(ax))
    for name, (fit, group, last) in curves.items():
        tab = fit.table_[fit.table_["group"] == group]
        x = np.r_[tab["time"].to_numpy(), last]
        y = np.r_[tab["estimate"].to_numpy(), tab["estimate"].iloc[-1]]
        ax.step(x, y, where="post", color=colour[name], lw=CURVE_LW, label=str(name), gid=f"curve:{name}")
        if ci:
            lo = np.r_[tab["ci_lower"].to_numpy(), tab["ci_lower"].iloc[-1]]
            hi = np.r_[tab["ci_upper"].to_numpy(), tab["ci_upper"].iloc[-1]]
            ax.fill_between(x, lo, hi, step="post", alpha=0.18, color=colour[name], linewidth=0,
                            gid=f"ci:{name}")
    ax.set_xticks(ticks)
    ax.set_xlim(0, ticks[-1] * 1.02)
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"Time since infusion ({time_unit})")
    ax.set_ylabel("Cumulative incidence")
    ax.legend(loc="upper left", fontsize="small", title="shaded: 95% CI" if ci else None, title_fontsize="small")
    if title:
        ax.set_title(title, loc="left")
    return ax


def plot_simon_makuch(fit, labels: Mapping, ax=None, time_unit: str = "months", title: str | None = None,
                      colours: Mapping | None = None, figsize=(FIGURE_WIDTH_IN, 3.8)):
    """Simon–Makuch curves of a fitted ``SimonMakuch`` (``labels``: exposure value -> label).

    >>> from cartlib.stats.timevarying import SimonMakuch
    >>> sm = SimonMakuch().fit([5, 8, 3, 9], [1, 1, 1, 0], [2, None, None, 4])
    >>> ax = plot_simon_makuch(sm, {0: "no HSCT", 1: "HSCT"})
    >>> [l.get_color() for l in ax.lines if str(l.get_gid()).startswith("curve:")]
    ['#0072B2', '#D55E00']
    >>> plt.close(ax.figure)
    """
    ax = figure_axes(ax, figsize)
    names = {value: labels.get(value, str(value)) for value in fit.curves_}
    colour = curve_colours(list(names.values()), colours)
    end = max(float(c["time"].max()) for c in fit.curves_.values())
    ticks = time_ticks(end, time_unit, _axis_width(ax))
    for value, curve in fit.curves_.items():
        ax.step(np.r_[0.0, curve["time"]], np.r_[1.0, curve["survival"]], where="post", lw=CURVE_LW,
                color=colour[names[value]], label=names[value], gid=f"curve:{names[value]}")
    ax.set_xticks(ticks)
    ax.set_xlim(0, ticks[-1] * 1.02)
    ax.set_ylim(0, 1.04)
    ax.set_xlabel(f"Time since infusion ({time_unit})")
    ax.set_ylabel("Overall survival probability")
    ax.legend(loc="lower left", fontsize="small")
    if title:
        ax.set_title(title, loc="left")
    return ax
