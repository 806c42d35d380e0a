"""The scorecard as one figure: every published figure as this run / the paper, on a log axis.

Each figure of ``parameters/paper.yaml`` is a dot at the ratio of this run's value to the
paper's, with a grey bar for its tolerance in the same units (:func:`ratio_band`), coloured by
its status (:func:`cartlib.scorecard.figure_status`) and grouped by section
(:data:`cartlib.scorecard.FIGURE_GROUPS`). :func:`scorecard_figure` adds the caption and alt
text and saves the SVG and PNG files; the scorecard notebook shows it.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

from .scorecard import FIGURE_GROUPS, figure_group, figure_status, load_paper_figures, scorecard, summary_counts

STATUS_COLOURS = {"matched": "#009E73", "differs": "#D55E00", "infeasible": "#999999", "missing": "#000000"}
RATIO_LIMITS = (0.1, 10.0)   # the figure's y range; points beyond it sit on the edge as triangles


def ratio_band(fig: dict[str, Any]) -> tuple[float, float]:
    """The tolerance of ``fig`` as a band of run/paper ratios (``nan`` bounds for a paper value of 0).

    >>> [round(b, 4) for b in ratio_band({"value": 2.0, "log_tolerance": 0.1})]
    [0.9048, 1.1052]
    >>> ratio_band({"value": 0.5, "tolerance": 0.1})
    (0.8, 1.2)
    """
    value = float(fig["value"])
    if value <= 0:
        return (math.nan, math.nan)
    if fig.get("log_tolerance") is not None:
        t = float(fig["log_tolerance"])
        return (math.exp(-t), math.exp(t))
    t = float(fig.get("tolerance", 0))
    return (max((value - t) / value, 0.0), (value + t) / value)


def plot_scorecard(results: dict[str, Any], figures: Iterable[dict[str, Any]] | None = None, ax=None):
    """Each published figure as this run / paper on a log axis: a grey bar for its tolerance,
    a dot coloured by status, figures grouped by section along the x axis. Returns the Axes.

    A ratio beyond 0.1–10 (or a sign change) is drawn as a triangle on the edge; a figure the
    run could not estimate sits on the axis as a black cross.
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    from .plots.style import FIGURE_WIDTH_IN

    figures = list(load_paper_figures() if figures is None else figures)
    order = list(FIGURE_GROUPS)
    figures.sort(key=lambda f: order.index(figure_group(f["key"])) if figure_group(f["key"]) in order else len(order))
    if ax is None:
        _, ax = plt.subplots(figsize=(FIGURE_WIDTH_IN, 3.4), layout="constrained")
    lo_lim, hi_lim = RATIO_LIMITS
    sizes = {g: sum(figure_group(f["key"]) == g for f in figures) for g in {figure_group(f["key"]) for f in figures}}
    x, gap, centres, last = 0.0, 6, [], None
    # one artist per kind of mark, not one per figure: 370 figures as 740 Line2D took most of
    # the scorecard notebook's time to build and draw
    bars, dots = [], {}   # dots: (marker, status) -> ([x], [y])
    for fig in figures:
        section = figure_group(fig["key"])
        if section != last:
            if last is not None:
                x += gap
                ax.axvline(x - gap / 2, color="#dddddd", lw=0.8, zorder=0)
            centres.append([section, x, x])
            last = section
        this, value = results.get(fig["key"]), float(fig["value"])
        status = figure_status(this, fig)
        band = ratio_band(fig)
        if not math.isnan(band[0]):
            bars.append([(x, max(band[0], lo_lim)), (x, min(band[1], hi_lim))])
        if this is None or (isinstance(this, float) and math.isnan(this)):   # not estimable
            marker, y = "x", lo_lim
        else:
            ratio = 1.0 if value == 0 and float(this) == 0 else (float(this) / value if value != 0 else math.inf)
            marker, y = "o", ratio
            if not ratio > lo_lim:
                marker, y = "v", lo_lim
            elif ratio > hi_lim:
                marker, y = "^", hi_lim
        xs, ys = dots.setdefault((marker, status), ([], []))
        xs.append(x)
        ys.append(y)
        centres[-1][2] = x
        x += max(1.0, 36 / sizes[section])   # a small group is spread so its label fits under it
    ax.add_collection(LineCollection(bars, colors="#bbbbbb", linewidths=2.2, capstyle="butt", zorder=1),
                      autolim=False)
    for (marker, status), (xs, ys) in sorted(dots.items()):
        colour = STATUS_COLOURS[status]
        ax.plot(xs, ys, marker=marker, ls="", ms=3.6 if marker == "o" else 5, clip_on=False, zorder=3, color=colour,
                mfc="white" if status == "infeasible" and marker != "x" else colour)
    ax.set_yscale("log")
    ax.set_ylim(lo_lim, hi_lim)
    ax.set_yticks([0.1, 0.5, 1, 2, 10])
    ax.set_yticklabels(["0.1", "0.5", "1", "2", "10"])
    ax.minorticks_off()
    ax.axhline(1.0, color="#555555", lw=0.8, zorder=0)
    ax.set_xticks([(a + b) / 2 for _, a, b in centres])
    ax.set_xticklabels([f"{FIGURE_GROUPS.get(name, name)}\n({sizes[name]})" for name, _, _ in centres])
    ax.set_xlim(-gap / 2, centres[-1][2] + gap / 2)
    ax.set_ylabel("this run / paper (log scale)")
    handles = [Line2D([], [], marker="o", ls="", color=STATUS_COLOURS[s], mfc="white" if s == "infeasible" else None,
                      label=label)
               for s, label in (("matched", "matched"), ("differs", "differs"), ("infeasible", "not scored"))]
    handles += [Line2D([], [], marker="x", ls="", color=STATUS_COLOURS["missing"], label="not estimable"),
                Line2D([], [], color="#bbbbbb", lw=2.2, label="tolerance")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=5, frameon=False)
    return ax


def scorecard_figure(results: dict[str, Any], figures: Iterable[dict[str, Any]] | None = None,
                     figures_dir: str = ""):
    """:func:`plot_scorecard` with its caption and alt text, saved into ``figures_dir`` when
    given (SVG and 300-dpi PNG); what the scorecard notebook shows."""
    from .plots.style import publish

    figures = list(load_paper_figures() if figures is None else figures)
    ax = plot_scorecard(results, figures)
    c = summary_counts(scorecard(results, figures))
    caption = (f"Each of the paper's {len(figures)} published figures as this run's value divided by the paper's "
               "(log scale; 1 = the same value), grouped by section. Grey bar: the figure's tolerance; dot: "
               f"{c['matched']} matched (green), {c['differs']} differ (orange), {c['infeasible']} not scored "
               "(hollow grey: the published figure cannot hold together with the paper's own counts). Triangles "
               "sit beyond 0.1 or 10, crosses mark figures this cohort cannot estimate.")
    alt = (f"Strip chart of {len(figures)} points in seven groups (cohort, efficacy, toxicity, kinetics, kinetics "
           "by subgroup, B-cell aplasia, transplant); the vertical axis is the ratio of this run to the paper from "
           f"0.1 to 10 on a log scale, with a line at 1. {c['matched']} green dots lie within their grey tolerance "
           f"bars, {c['differs']} orange dots outside them, {c['infeasible']} hollow grey dots are not scored.")
    return publish(ax.figure, "scorecard", caption, alt, figures_dir)
