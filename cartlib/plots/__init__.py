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
from .clinical import DAYS_PER_MONTH, plot_bca_duration, plot_forest, plot_grade_bars, plot_scatter_corr, plot_swimmer
from .kinetics import PK_SCHEDULE, median_pk_profile, plot_il6, plot_spaghetti
from .style import OKABE_ITO, plot_not_estimable, set_style

__all__ = ["set_style", "OKABE_ITO", "DAYS_PER_MONTH", "PK_SCHEDULE", "plot_forest", "plot_spaghetti",
           "median_pk_profile", "plot_swimmer", "plot_scatter_corr", "plot_il6", "plot_grade_bars",
           "plot_bca_duration", "plot_not_estimable"]
