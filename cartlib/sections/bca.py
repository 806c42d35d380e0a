"""Section 04: B-cell aplasia (onset, duration, loss, correlation with persistence)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..bca import bca_correlations, bca_loss_km
from .common import format_correlations, median_or_none, nan_to_none, paper_sentence

NO_ONSET = "no patient with B-cell aplasia onset"


def results(cohort, table: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """bca.* keys."""
    onset = table[table["bca"] == 1]
    out: dict[str, Any] = {
        "bca.n": int(table["bca"].sum()),
        "bca.duration_median_days": median_or_none(onset["bca_duration_days"]),
        "bca.onset_median_day": median_or_none(onset["bca_onset_day"]),
        "bca.ongoing_n": int(table["bca_ongoing"].sum()),
        "bca.loss_median_days": nan_to_none(bca_loss_km(table, ci=params["km_ci"]).median_) if len(onset) else None,
    }
    corr = bca_correlations(table, method=params["corr_method"])
    for name in ("tlast", "cmax", "auc28"):
        out[f"bca.{name}_r"] = nan_to_none(corr.loc[name, "r"])
        out[f"bca.{name}_p"] = nan_to_none(corr.loc[name, "p"])
    return out


# -- displays for notebook 04 ---------------------------------------------------------------

def bca_summary(table: pd.DataFrame) -> pd.DataFrame:
    """BCA onset, duration and ongoing aplasia, formatted."""
    from ..tables import format_median_range, format_pct

    onset = table[table["bca"] == 1]
    rows = [("B-cell aplasia", format_pct(len(onset), len(table))),
            ("onset day, median (range)", format_median_range(onset["bca_onset_day"], digits=0)),
            ("duration, days, median (range)", format_median_range(onset["bca_duration_days"], digits=0)),
            ("ongoing at last assessment", format_pct(int(onset["bca_ongoing"].sum()), len(onset)))]
    from ..tables import captioned

    return captioned(pd.DataFrame(rows, columns=["", "value"]).set_index(""),
                     f"B-cell aplasia (BCA), N = {len(table)}: patients with onset, n (%); onset day and duration "
                     "among them, median (range); aplasia still ongoing at the last assessment, n (% of onsets)."
                     + paper_sentence([("BCA", "bca.n", "{} patients"), ("onset day", "bca.onset_median_day", "{:g}"),
                                       ("duration", "bca.duration_median_days", "{:g} days")]))


def plot_bca_loss(table: pd.DataFrame, params: dict[str, Any]):
    """KM curve of time from BCA onset to loss, with numbers at risk."""
    from ..derive import DAYS_PER_MONTH
    from ..plots import plot_survival

    title = "Time from onset to loss of B-cell aplasia"
    fits = {"patients with BCA": bca_loss_km(table, ci=params["km_ci"])} if table["bca"].eq(1).any() else {}
    # fitted in days (the results' unit), drawn in months ticked by the year as every time axis
    return plot_survival(fits, time_unit="months", time_scale=DAYS_PER_MONTH, title=title, ci=True,
                         ylabel="Probability of ongoing B-cell aplasia", xlabel="Months since onset of aplasia",
                         colours={"patients with BCA": "black"},
                         empty_reason=NO_ONSET)


def bca_loss_figure(table: pd.DataFrame, params: dict[str, Any], figures_dir: str = ""):
    """:func:`plot_bca_loss`, captioned and published."""
    from ..plots import publish

    onset = table[table["bca"] == 1]
    median = bca_loss_km(table, ci=params["km_ci"]).median_ if len(onset) else float("nan")
    said = "not reached" if pd.isna(median) else f"{median:.0f} days"
    return publish(plot_bca_loss(table, params), "bca_loss",
                   f"Duration of B-cell aplasia: Kaplan–Meier probability that aplasia is still ongoing, from onset, "
                   f"n = {len(onset)} patients with onset; aplasia ongoing at the last assessment is censored (ticks); "
                   f"95% CI ({params['km_ci']}) shaded; numbers at risk under the axis."
                   + paper_sentence([("median duration (plain median of durations)", "bca.duration_median_days",
                                      "{:g} days")]),
                   f"A falling Kaplan–Meier step curve with a shaded band, months since onset on the x axis, "
                   f"probability of ongoing aplasia on the y axis; median duration {said}.", figures_dir)


def plot_bca_tlast(table: pd.DataFrame, params: dict[str, Any]):
    """BCA duration against Tlast, Cmax and AUC0–28d, with r and p (the paper's Figure 2)."""
    import matplotlib.pyplot as plt

    from ..plots import FIGURE_WIDTH_IN, plot_scatter_corr
    from ..plots.clinical import share_row

    corr = bca_correlations(table, method=params["corr_method"])
    # one row at full width, the panels sharing the BCA-duration axis (labelled once, on the left)
    fig, axes = plt.subplots(1, 3, figsize=(FIGURE_WIDTH_IN, 2.9), layout="constrained")
    for ax, (col, label) in zip(axes, (("tlast", "Tlast, days"), ("cmax", "Cmax, copies/µg"),
                                       ("auc28", "AUC0–28d, copies/µg×day"))):
        # all on log axes: durations, Tlast, Cmax and AUC are right-skewed (0 stays visible: symmetric log)
        plot_scatter_corr(table[col], table["bca_duration_days"], ax=ax, xlabel=f"{label} (log scale)",
                          ylabel="BCA duration, days (log scale)", r=corr.loc[col, "r"], p=corr.loc[col, "p"],
                          method=params["corr_method"], logx=True, logy=True)
    share_row(axes)
    return fig


def bca_kinetics_figure(table: pd.DataFrame, params: dict[str, Any], figures_dir: str = ""):
    """:func:`plot_bca_tlast` (the paper's Figure 2), captioned and published."""
    from ..plots import publish

    return publish(plot_bca_tlast(table, params), "bca_kinetics",
                   f"B-cell aplasia duration against persistence (Tlast, left), peak expansion (Cmax, middle) and "
                   f"exposure (AUC0–28d, right), N = {len(table)} (patients without aplasia at duration 0); log axes "
                   f"(symmetric-log where a value is 0); {params['corr_method'].capitalize()} r and p above each panel."
                   + paper_sentence([("BCA duration–Tlast r", "bca.tlast_r", "{:.3f}"), ("p", "bca.tlast_p", "{:.4f}")]),
                   "Three scatter plots, one point per patient, BCA duration in days on the y axes against Tlast, "
                   "Cmax and AUC0–28d on log x axes; the correlation coefficient and p-value are written above each "
                   "panel.", figures_dir)


def correlation_table(table: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Correlation of BCA duration with Tlast, Cmax and AUC0–28d: r, p, n."""
    from ..tables import captioned

    corr = bca_correlations(table, method=params["corr_method"])
    labels = {"tlast": "Tlast, days", "cmax": "Cmax, copies/µg", "auc28": "AUC0–28d, copies/µg×day"}
    return captioned(format_correlations(corr, "BCA duration against").rename(index=labels),
                     f"{params['corr_method'].capitalize()} correlation of B-cell aplasia duration with Tlast, Cmax "
                     "and AUC0–28d: r, p and the number of patients with both values."
                     + paper_sentence([("Tlast r", "bca.tlast_r", "{:.3f}"), ("p", "bca.tlast_p", "{:.4f}")]))
