"""Section 04: B-cell aplasia (onset, duration, loss, correlation with persistence)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..bca import bca_correlations, bca_loss_km
from .common import format_correlations, median_or_none, nan_to_none

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
    return pd.DataFrame(rows, columns=["", "value"]).set_index("")


def plot_bca_loss(table: pd.DataFrame, params: dict[str, Any]):
    """KM curve of time from BCA onset to loss, with numbers at risk."""
    from ..stats.survival import plot_km

    title = "Time to loss of B-cell aplasia"
    fits = {"B-cell aplasia": bca_loss_km(table, ci=params["km_ci"])} if table["bca"].eq(1).any() else {}
    return plot_km(fits, at_risk_times=[0, 30, 60, 90, 180, 365, 730], time_unit="days", title=title,
                   empty_reason=NO_ONSET)


def plot_bca_tlast(table: pd.DataFrame, params: dict[str, Any]):
    """BCA duration against Tlast, Cmax and AUC0–28d, with r and p (the paper's Figure 2)."""
    import matplotlib.pyplot as plt

    from ..plots import plot_scatter_corr

    corr = bca_correlations(table, method=params["corr_method"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    for ax, (col, label, logx) in zip(axes, (("tlast", "Tlast, days", False), ("cmax", "Cmax, copies/µg", True),
                                             ("auc28", "AUC0–28d, copies/µg×day", True))):
        plot_scatter_corr(table[col], table["bca_duration_days"], ax=ax, xlabel=label, ylabel="BCA duration, days",
                          r=corr.loc[col, "r"], p=corr.loc[col, "p"], method=params["corr_method"], logx=logx)
    fig.tight_layout()
    return fig


def correlation_table(table: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Correlation of BCA duration with Tlast, Cmax and AUC0–28d: r, p, n."""
    corr = bca_correlations(table, method=params["corr_method"])
    return format_correlations(corr, f"BCA duration vs ({params['corr_method']})")
