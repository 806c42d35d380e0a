"""The shared look of cartlib's figures: Okabe–Ito colours, sizes, axis helpers."""
from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import seaborn as sns

OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00",
             "purple": "#CC79A7", "grey": "#999999"}

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


def figure_axes(ax, figsize):
    """``ax`` when given, else the axes of a new constrained-layout figure of ``figsize`` inches."""
    if ax is not None:
        return ax
    return plt.subplots(figsize=figsize, layout="constrained")[1]


def plot_not_estimable(reason: str | None, ax=None, title: str | None = None, figsize=(7, 4.5)):
    """An empty panel saying ``not estimable (reason)`` in the place of a figure; returns the Axes.

    A cohort can lack what a figure needs (no patient in a subgroup, no PK sample, no
    B-cell aplasia); the report then shows why instead of stopping. The text carries the
    gid ``"not estimable"``.

    >>> ax = plot_not_estimable("no patient with B-cell aplasia", title="BCA loss")
    >>> [t.get_text() for t in ax.texts], ax.get_title()
    (['not estimable (no patient with B-cell aplasia)'], 'BCA loss')
    >>> plt.close(ax.figure)
    """
    from ..tables import not_estimable

    ax = figure_axes(ax, figsize)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, not_estimable(reason), transform=ax.transAxes, ha="center", va="center",
            wrap=True, color=OKABE_ITO["grey"], gid="not estimable")
    if title:
        ax.set_title(title)
    return ax


def plain_log_ticks(axis) -> None:
    """Label a log axis with plain numbers (1,000 rather than 1e+03) and no minor labels."""
    # "1,000,000" reads better in a clinical report than "1e+06" or 10^6.
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(mticker.NullFormatter())


# --- forest ---------------------------------------------------------------------------

