"""Figures for the notebooks and the report (forest, PK spaghetti, swimmer, IL-6, AE grades).

Time-to-event figures (Kaplan–Meier with numbers at risk, cumulative incidence,
Simon–Makuch) are in ``curves.py``: they draw what the fitters of ``cartlib.stats`` estimated.
Every figure reaches a notebook through :func:`publish` (caption, alt text, optional SVG and
300-dpi PNG files, :func:`save_figure`).

Conventions: every function takes ``ax=None`` (a new figure of a journal's full width,
:data:`FIGURE_WIDTH_IN`, is made when it is None) and returns the Axes; nothing calls ``plt.show``, so
the functions run under the Agg backend. Colours come from the Okabe–Ito palette,
which stays distinguishable with the common colour-vision deficiencies, and markers
differ in shape as well as colour. Artists carry a ``gid`` (e.g. ``"lloq"``,
``"death (NRM)"``) so tests and users can find them. Call :func:`set_style` once per
notebook for the shared look.
"""
from .clinical import DAYS_PER_MONTH, plot_bca_duration, plot_forest, plot_grade_bars, plot_scatter_corr, plot_swimmer
from .kinetics import PK_SCHEDULE, median_pk_profile, plot_il6, plot_spaghetti
from .curves import plot_incidence, plot_simon_makuch, plot_survival
from .style import (FIGURE_WIDTH_IN, GROUP_COLOURS, OKABE_ITO, CaptionedFigure, plot_not_estimable, publish, save_figure,
                    set_style, time_ticks)

__all__ = ["set_style", "OKABE_ITO", "GROUP_COLOURS", "DAYS_PER_MONTH", "PK_SCHEDULE", "plot_forest", "plot_spaghetti",
           "median_pk_profile", "plot_swimmer", "plot_scatter_corr", "plot_il6", "plot_grade_bars",
           "plot_bca_duration", "plot_not_estimable", "plot_survival", "plot_incidence", "plot_simon_makuch",
           "publish", "save_figure", "CaptionedFigure", "time_ticks", "FIGURE_WIDTH_IN"]
