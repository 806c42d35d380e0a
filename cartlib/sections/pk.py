"""Section 03: cellular kinetics (NCA medians, Table 3, correlations, expansion by response)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..pk.nca import NCARules
from ..pk.summary import (kinetics_correlations, summarise_nca, summarise_terminal_and_partial, table3,
                          terminal_and_partial)
from ..stats.compare import mann_whitney
from ..tables import captioned, format_p, not_estimable
from .common import (format_correlations, format_number, max_or_none, median_or_none, min_or_none, nan_to_none,
                     or_reason, paper_sentence)


def summary_by_mrd_cr(table: pd.DataFrame) -> pd.DataFrame:
    """NCA summaries (``summarise_nca``) of MRD-negative CR patients (group 1) and the others (0)."""
    return summarise_nca(table, by="d28_mrd_neg")


def _stat(summary: pd.DataFrame, group: int, parameter: str, stat: str):
    """One statistic of a by-group summary; None when the group has no patient."""
    return nan_to_none(summary[stat].get((group, parameter)))


def by_mrd_cr(table: pd.DataFrame, column: str):
    """Mann–Whitney of ``column`` between MRD-negative CR patients and the others."""
    yes = table.loc[table["d28_mrd_neg"] == 1, column]
    no = table.loc[table["d28_mrd_neg"] == 0, column]
    return mann_whitney(yes, no)


def table3_keys(t3: pd.DataFrame) -> dict[str, Any]:
    """``pk.table3.ROW.LEVEL.stat`` and ``pk.table3.ROW.stat_p`` keys of the paper's Table 3."""
    out: dict[str, Any] = {}
    position = {c: i for i, c in enumerate(t3.columns)}
    # rows of ``t3.values``: what ``iterrows`` gives (a common dtype), without a Series per row
    for (row, level), r in zip(t3.index, t3.values):
        for stat in ("n", "cmax_median", "auc28_median", "tlast_median"):
            out[f"pk.table3.{row}.{level}.{stat}"] = nan_to_none(r[position[stat]])
        for stat in ("cmax_p", "auc28_p", "tlast_p"):
            out[f"pk.table3.{row}.{stat}"] = nan_to_none(r[position[stat]])
    return out


def results(cohort, table: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """pk.* keys."""
    summary = summarise_nca(table)
    out: dict[str, Any] = {
        "pk.cmax_median": median_or_none(table["cmax"]),
        "pk.tmax_median": median_or_none(table["tmax"]),
        "pk.auc28_median": median_or_none(table["auc28"]),
        "pk.tlast_median": median_or_none(table["tlast"]),
        "pk.expansion_n": int(table["expansion"].sum()),
        "pk.cmax_min": min_or_none(table["cmax"]),
        "pk.cmax_max": max_or_none(table["cmax"]),
        "pk.tmax_min": min_or_none(table["tmax"]),
        "pk.tmax_max": max_or_none(table["tmax"]),
        "pk.cmax_geomean": nan_to_none(summary.loc["cmax", "geomean"]),
        "pk.cmax_geocv_pct": nan_to_none(summary.loc["cmax", "geocv_pct"]),
        "pk.auc28_geomean": nan_to_none(summary.loc["auc28", "geomean"]),
    }
    by_response = summary_by_mrd_cr(table)
    out["pk.cmax_geomean_mrdcr"] = _stat(by_response, 1, "cmax", "geomean")
    out["pk.cmax_geomean_not_mrdcr"] = _stat(by_response, 0, "cmax", "geomean")
    for column in ("cmax", "auc28", "tlast"):
        out[f"pk.{column}_mrdcr_mwu_p"] = nan_to_none(by_mrd_cr(table, column).p_value)
    corr = kinetics_correlations(table, method=params["corr_method"])
    for name in ("cmax", "auc28"):
        out[f"pk.{name}_tlast_r"] = nan_to_none(corr.loc[name, "r"])
        out[f"pk.{name}_tlast_p"] = nan_to_none(corr.loc[name, "p"])
    out.update(table3_keys(table3(table)))
    terminal = terminal_and_partial(cohort.pk, NCARules.from_params(params), patients=table.index)
    for (quantity, stat), value in summarise_terminal_and_partial(terminal).items():
        out[f"pk.{quantity}_{stat}"] = nan_to_none(value)
    return out


# -- displays for notebook 03 ---------------------------------------------------------------

NCA_LABELS = {"cmax": "Cmax, copies/µg", "tmax": "Tmax, days", "clast": "Clast, copies/µg", "tlast": "Tlast, days",
              "auc28": "AUC0–28d, copies/µg×day", "expansion": "expansion (0/1)", "n_samples": "samples",
              "n_blq": "BLQ samples"}


def nca_head(table: pd.DataFrame, n: int = 8) -> pd.DataFrame:
    """The first ``n`` patients' NCA parameters, formatted."""
    cols = ["cmax", "tmax", "tlast", "auc28", "expansion", "n_samples", "n_blq"]
    out = table[cols].head(n).copy()
    for c in ("cmax", "auc28", "tmax", "tlast"):
        out[c] = out[c].map(format_number)
    return captioned(out.rename(columns=NCA_LABELS),
                     f"Non-compartmental parameters of the first {min(n, len(table))} of {len(table)} patients "
                     "(samples after infusion; BLQ counts as 0; AUC by the linear-up/log-down rule).")


def nca_summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """n, median (range), geometric mean and CV % of the NCA parameters (formatted, or why not)."""
    s = summarise_nca(table)
    rows = []
    for param in ("cmax", "tmax", "auc28", "tlast"):
        r = s.loc[param]
        geo = param in ("cmax", "auc28")
        spread = (f"{format_number(r['median'])} ({format_number(r['min'])}–{format_number(r['max'])})" if r["n"]
                  else not_estimable(r["reason"]))
        rows.append({"parameter": NCA_LABELS[param], "n": int(r["n"]), "median (range)": spread,
                     "geometric mean": or_reason(r["geomean"], format_number, r["reason"]) if geo else "",
                     "geometric CV %": or_reason(r["geocv_pct"], "{:.0f}", r["reason"]) if geo else ""})
    return captioned(pd.DataFrame(rows).set_index("parameter"),
                     f"Cellular kinetics, N = {len(table)}: median (range), and for the log-normal Cmax and AUC0–28d "
                     f"the geometric mean and geometric CV %. Effective expansion (Cmax ≥ expansion_min): "
                     f"{int(table['expansion'].sum())} of {len(table)} patients."
                     + paper_sentence([("median Cmax", "pk.cmax_median", "{:,.0f}"), ("median Tmax", "pk.tmax_median", "{:g}")]))


def mrd_cr_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """Cmax, AUC0–28d and Tlast of MRD-negative CR vs other patients: medians, geometric means, MWU p."""
    s = summary_by_mrd_cr(table)
    rows = []
    for column in ("cmax", "auc28", "tlast"):
        n_yes, n_no = (int(_stat(s, g, column, "n") or 0) for g in (1, 0))
        test = by_mrd_cr(table, column)
        rows.append({"parameter": NCA_LABELS[column],
                     "MRD-CR: n, median": f"{n_yes}, {format_number(_stat(s, 1, column, 'median'))}",
                     "others: n, median": f"{n_no}, {format_number(_stat(s, 0, column, 'median'))}",
                     "geometric means": (f"{format_number(_stat(s, 1, column, 'geomean'))} vs "
                                         f"{format_number(_stat(s, 0, column, 'geomean'))}" if column != "tlast" else ""),
                     "Mann–Whitney p": or_reason(test.p_value, format_p, test.reason)})
    return captioned(pd.DataFrame(rows).set_index("parameter"),
                     "Expansion and persistence by day-28 response: patients with MRD-negative CR against the others, "
                     "medians, geometric means and Mann–Whitney p (normal approximation with continuity correction)."
                     + paper_sentence([("p (Cmax)", "pk.cmax_mrdcr_mwu_p", "{:.3f}"), ("p (AUC0–28d)", "pk.auc28_mrdcr_mwu_p", "{:.3f}"),
                                       ("p (Tlast)", "pk.tlast_mrdcr_mwu_p", "{:.3f}")]))


def table3_display(table: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 3, formatted: n, medians and Mann–Whitney p (or why not) per characteristic."""
    t3 = table3(table)
    t3.index = pd.MultiIndex.from_arrays([t3["characteristic"], t3["level_label"]], names=["characteristic", ""])

    def p_text(stat: str) -> list[str]:
        return [or_reason(p, format_p, why) for p, why in zip(t3[f"{stat}_p"], t3[f"{stat}_p_reason"])]

    return pd.DataFrame({
        "n": t3["n"].astype(int),
        "median Cmax": t3["cmax_median"].map(format_number),
        "p (Cmax)": p_text("cmax"),
        "median AUC0–28d": t3["auc28_median"].map(format_number),
        "p (AUC)": p_text("auc28"),
        "median Tlast": t3["tlast_median"].map(format_number),
        "p (Tlast)": p_text("tlast"),
    }, index=t3.index).pipe(captioned, f"Table 3. Clinical determinants of CAR-T kinetics, N = {len(table)}: median Cmax "
                            "(copies/µg), AUC0–28d (copies/µg×day) and Tlast (days) by characteristic, Mann–Whitney p.")


def correlation_table(table: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Correlation of Cmax and AUC0–28d with Tlast: r, p, n."""
    corr = kinetics_correlations(table, method=params["corr_method"])
    return captioned(format_correlations(corr, "parameter").rename(index=NCA_LABELS),
                     f"{params['corr_method'].capitalize()} correlation of Cmax and AUC0–28d with persistence "
                     "(Tlast): r, p and the number of patients with both values."
                     + paper_sentence([("Cmax r", "pk.cmax_tlast_r", "{:.3f}"), ("p", "pk.cmax_tlast_p", "{:.3f}"),
                                       ("AUC0–28d r", "pk.auc28_tlast_r", "{:.3f}"), ("p", "pk.auc28_tlast_p", "{:.3f}")]))


def plot_kinetics_correlations(table: pd.DataFrame, params: dict[str, Any]):
    """Scatter plots of Cmax and AUC0–28d against Tlast (log x) with r and p."""
    import matplotlib.pyplot as plt

    from ..plots import FIGURE_WIDTH_IN, plot_scatter_corr
    from ..plots.clinical import share_row

    corr = kinetics_correlations(table, method=params["corr_method"])
    # the panels share the Tlast axis, labelled once on the left
    fig, axes = plt.subplots(1, 2, figsize=(FIGURE_WIDTH_IN, 3.2), layout="constrained")
    for ax, col in zip(axes, ("cmax", "auc28")):
        plot_scatter_corr(table[col], table["tlast"], ax=ax, xlabel=f"{NCA_LABELS[col]} (log scale)",
                          ylabel=f"{NCA_LABELS['tlast']} (log scale)", r=corr.loc[col, "r"], p=corr.loc[col, "p"],
                          method=params["corr_method"], logx=True, logy=True)
    share_row(axes)
    return fig


def kinetics_correlation_figure(table: pd.DataFrame, params: dict[str, Any], figures_dir: str = ""):
    """:func:`plot_kinetics_correlations`, captioned and published."""
    from ..plots import publish

    n = int((table["tlast"].notna() & table["cmax"].notna()).sum())
    return publish(plot_kinetics_correlations(table, params), "pk_expansion_persistence",
                   f"Expansion against persistence, n = {n} patients with both values: Cmax (left) and AUC0–28d "
                   f"(right) against Tlast, all on log axes; {params['corr_method'].capitalize()} r and p above each panel."
                   + paper_sentence([("Cmax–Tlast r", "pk.cmax_tlast_r", "{:.3f}"), ("p", "pk.cmax_tlast_p", "{:.3f}"),
                                     ("AUC0–28d–Tlast r", "pk.auc28_tlast_r", "{:.3f}"), ("p", "pk.auc28_tlast_p", "{:.3f}")]),
                   "Two scatter plots on log–log axes, one point per patient: Cmax and AUC0–28d on the x axes against "
                   "Tlast in days on the y axes; the correlation coefficient and p-value are written above each panel.",
                   figures_dir)


def spaghetti_figure(cohort, table: pd.DataFrame, params: dict[str, Any], figures_dir: str = ""):
    """Every patient's transgene profile with the median, captioned and published."""
    from ..plots import plot_spaghetti, publish

    n = cohort.pk.loc[cohort.pk["DAY"] > 0, "USUBJID"].nunique()
    return publish(plot_spaghetti(cohort.pk, table, lloq=params["lloq"]), "pk_profiles",
                   f"CAR-T transgene levels (copies/µg DNA, log scale) after infusion, one grey line per patient "
                   f"(n = {n}); open circles: BLQ samples drawn at half the LLOQ ({params['lloq']:g}); triangles: "
                   "each patient's Cmax; red: median at each nominal visit (open where at least half are BLQ). "
                   "Main panel: days 0–120; right: all follow-up on log time."
                   + paper_sentence([("median Cmax", "pk.cmax_median", "{:,.0f} copies/µg"),
                                     ("median Tmax", "pk.tmax_median", "{:g} days")]),
                   "Spaghetti plot of transgene copies per microgram DNA on a log axis against days after infusion: "
                   "levels rise to a peak in the first one to three weeks, then fall in a fast and then a slow phase "
                   "towards the dashed LLOQ line; a side panel shows all follow-up on a log time axis.", figures_dir)
