"""Tables and figures of a simulation for the notebook (07_simulation) and the documentation.

Every function takes what :func:`cartlib.simulate.simulate` or :func:`~cartlib.simulate.power_grid`
returned and formats it; none computes a statistic of its own.
"""
from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from .power import FINDINGS
from .summary import format_number, wilson_interval

# what section (a) shows: the paper's headline numbers that a repeat of the study could move
DISTRIBUTION_KEYS = ("efficacy.os_5y", "efficacy.lfs_5y", "toxicity.crs_ge_3_rate",
                     "efficacy.lfs.multi.female.hr", "bca.tlast_r", "pk.cmax_mrdcr_mwu_p")
# the immortal-time lesson: transplanted vs not, four ways (all in the transplant section)
LESSON_KEYS = {
    "transplant.os_logrank_p.all": "naive: ever vs never transplanted, log-rank from day 0",
    "transplant.tv_cox_os_p": "Cox model with HSCT as a time-varying covariate",
    "transplant.mantel_byar_os_p": "Mantel-Byar test (HSCT as a time-varying state)",
    "transplant.landmark_os_logrank_p": "landmark analysis (HSCT by the landmark day)",
}


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def distribution_table(summary: pd.DataFrame, keys: Sequence[str] = DISTRIBUTION_KEYS,
                       digits: int = 3) -> pd.DataFrame:
    """Per key: the paper's value, the simulated median and central 95 %, and where the paper's
    value falls among the replicates (percentile), as text with fixed rounding.

    >>> s = pd.DataFrame({"key": ["a"], "paper": [0.5], "p2_5": [0.1], "p50": [0.4], "p97_5": [0.8],
    ...                   "paper_percentile": [62.5], "not_estimable": [0.0]})
    >>> distribution_table(s, ["a"]).iloc[0].tolist()
    ['a', '0.500', '0.400', '0.100 – 0.800', '62', '0%']
    """
    rows = []
    by_key = summary.set_index("key")
    for key in keys:
        if key not in by_key.index:
            continue
        r = by_key.loc[key]
        rows.append({"key": key, "paper": _fmt(r["paper"], digits), "simulated median": _fmt(r["p50"], digits),
                     "central 95 %": f"{_fmt(r['p2_5'], digits)} – {_fmt(r['p97_5'], digits)}",
                     "paper percentile": "—" if pd.isna(r["paper_percentile"]) else f"{r['paper_percentile']:.0f}",
                     "not estimable": f"{r['not_estimable']:.0%}"})
    return pd.DataFrame(rows, columns=["key", "paper", "simulated median", "central 95 %", "paper percentile",
                                       "not estimable"])


def plot_distributions(values: pd.DataFrame, summary: pd.DataFrame, keys: Sequence[str] = DISTRIBUTION_KEYS,
                       ncols: int = 3):
    """A histogram per key of its values over the replicates, the paper's value as a vertical
    line and the central 95 % shaded. Returns the figure."""
    import matplotlib.pyplot as plt

    from ..plots.style import FIGURE_WIDTH_IN, OKABE_ITO

    keys = [k for k in keys if k in values.columns]
    nrows = max(1, math.ceil(len(keys) / ncols))
    # a journal's page width, whatever the number of columns
    fig, axes = plt.subplots(nrows, ncols, figsize=(FIGURE_WIDTH_IN, 1.4 * nrows + 0.3), squeeze=False,
                             layout="constrained")
    by_key = summary.set_index("key")
    for ax, key in zip(axes.flat, keys):
        data = values[key].dropna()
        ax.hist(data, bins=min(30, max(5, len(data) // 3)), color=OKABE_ITO["sky"], edgecolor="white")
        row = by_key.loc[key]
        if not pd.isna(row["p2_5"]):
            ax.axvspan(row["p2_5"], row["p97_5"], color="grey", alpha=0.12, lw=0, label="central 95 %")
        if not pd.isna(row["paper"]):
            ax.axvline(row["paper"], color=OKABE_ITO["vermillion"], lw=2, label="paper")
        ax.set_title(key, fontsize="small")
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("studies")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize="small")   # under the panels
    return fig


def distribution_figure(values: pd.DataFrame, summary: pd.DataFrame, figures_dir: str = ""):
    """:func:`plot_distributions`, captioned and published (file name ``simulation_distributions``)."""
    from ..plots import publish

    keys = [k for k in DISTRIBUTION_KEYS if k in values.columns]
    caption = (f"The paper's headline estimates over {len(values):,} simulated studies: a histogram per "
               "estimate, the central 95 % of the studies shaded and the paper's value as a vertical line.")
    alt = (f"{len(keys)} histograms, one per estimate ({', '.join(keys)}); each shows how the estimate varies "
           "between simulated repeats of the study, a grey band marks the central 95 % and a vertical line "
           "the paper's value.")
    return publish(plot_distributions(values, summary), "simulation_distributions", caption, alt, figures_dir)


def power_figure(power: pd.DataFrame, figures_dir: str = ""):
    """:func:`cartlib.simulate.power.plot_power`, captioned and published (``simulation_power``)."""
    from ..plots import publish
    from .power import plot_power

    scenarios = sorted(power["scenario"].unique())
    ns = sorted(power["n"].unique())
    caption = (f"Power (share of simulated studies with p < 0.05) against the number of patients per study "
               f"(n = {', '.join(str(n) for n in ns)}), one line per finding with its Wilson 95 % band, "
               f"one panel per scenario ({', '.join(scenarios)}); the dashed line is 80 % power.")
    alt = (f"{len(scenarios)} panels of power curves against study size on a log axis; each finding's power "
           "rises with n, and the dashed line at 0.8 shows where a trial would have 80 % power.")
    return publish(plot_power(power), "simulation_power", caption, alt, figures_dir)


def outside_table(check: pd.DataFrame, feasible_only: bool = True) -> pd.DataFrame:
    """The paper figures outside the simulated central 95 % (headline figures first), as text.

    >>> c = pd.DataFrame({"key": ["a", "b"], "paper": [5.0, 1.0], "p2_5": [1.0, 0.0], "p50": [2.0, 1.0],
    ...                   "p97_5": [3.0, 2.0], "paper_percentile": [100.0, 50.0], "outside": [True, False],
    ...                   "headline": [False, False], "feasible": [True, True], "where": ["T1", "T2"]})
    >>> outside_table(c)["key"].tolist()
    ['a']
    """
    rows = check[check["outside"] & (check["feasible"] | (not feasible_only))]
    rows = rows.sort_values(["headline", "key"], ascending=[False, True], kind="stable")
    return pd.DataFrame({
        "key": rows["key"], "headline": rows["headline"].map({True: "yes", False: ""}),
        "paper": rows["paper"].map(format_number),
        "simulated 2.5 – 97.5 %": [f"{format_number(a)} – {format_number(b)}"
                                   for a, b in zip(rows["p2_5"], rows["p97_5"])],
        "paper percentile": rows["paper_percentile"].map(lambda v: f"{v:.1f}"),
        "where": rows["where"]}).reset_index(drop=True)


def lesson_table(summary: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Type-I error of each way of comparing transplanted and non-transplanted patients, from a
    simulation where HSCT has no effect (the bundled ``hsct_no_effect`` scenario).

    >>> s = pd.DataFrame({"key": ["transplant.tv_cox_os_p"], "power": [0.05], "power_lo": [0.02],
    ...                   "power_hi": [0.1], "not_estimable": [0.0]})
    >>> lesson_table(s)["type-I error"].tolist()
    ['0.050']
    """
    rows = []
    by_key = summary.set_index("key")
    for key, label in LESSON_KEYS.items():
        if key not in by_key.index:
            continue
        r = by_key.loc[key]
        rows.append({"method": label, "key": key, "type-I error": _fmt(r["power"]),
                     "95 % CI": f"{_fmt(r['power_lo'])} – {_fmt(r['power_hi'])}",
                     "not estimable": f"{r['not_estimable']:.0%}"})
    return pd.DataFrame(rows, columns=["method", "key", "type-I error", "95 % CI", "not estimable"])


def power_text_table(power: pd.DataFrame, sample_size: pd.DataFrame | None = None) -> pd.DataFrame:
    """Power per finding (rows) and study size (columns), as fixed text: one block of columns per
    scenario when there are several, each followed by the n for 80 % power when ``sample_size``
    (of :func:`cartlib.simulate.power.sample_sizes`) is given.

    >>> p = pd.DataFrame({"scenario": "s", "n": [50, 100], "finding": "bca_on_lfs", "power": [0.25, 0.5]})
    >>> power_text_table(p).loc["bca_on_lfs"].tolist()
    ['0.25', '0.50']
    >>> s = pd.DataFrame({"scenario": ["s"], "finding": ["bca_on_lfs"], "n_for_80_text": ["> 100"]})
    >>> power_text_table(p, s).loc["bca_on_lfs"].tolist()
    ['0.25', '0.50', '> 100']
    """
    several = power["scenario"].nunique() > 1
    blocks = []
    for scenario, part in power.groupby("scenario", sort=False):
        table = part.pivot_table(index="finding", columns="n", values="power", aggfunc="first").map(lambda v: _fmt(v, 2))
        table.columns = [f"n={n}" for n in table.columns]
        if sample_size is not None:
            own = sample_size[sample_size["scenario"] == scenario].set_index("finding")["n_for_80_text"]
            table["n for 80 %"] = own.reindex(table.index).fillna("")
        if several:
            table.columns = pd.MultiIndex.from_product([[str(scenario)], table.columns])
        blocks.append(table)
    table = pd.concat(blocks, axis=1)
    return table.reindex([f for f in FINDINGS if f in table.index])


def finding_labels(sample_size: pd.DataFrame) -> dict[str, str]:
    """What each finding's short name stands for (the paper's test), in the order of the grid.

    >>> s = pd.DataFrame({"finding": ["bca_on_lfs", "bca_on_lfs"], "what": ["BCA duration on LFS"] * 2})
    >>> finding_labels(s)
    {'bca_on_lfs': 'BCA duration on LFS'}
    """
    labels = dict(zip(sample_size["finding"], sample_size["what"]))
    return {f: labels[f] for f in FINDINGS if f in labels}


def monte_carlo_half_width(replicates: int, power: float = 0.5) -> float:
    """Half-width of the Wilson 95 % interval of a power estimated from ``replicates`` studies.

    >>> round(monte_carlo_half_width(1000), 3)
    0.031
    """
    lo, hi = wilson_interval(round(power * replicates), replicates)
    return (hi - lo) / 2
