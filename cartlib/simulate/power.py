"""Power and sample size for the paper's findings: a grid of study sizes x effect scenarios.

Each cell of the grid is one simulation (:func:`cartlib.simulate.simulate`) in
``<out>/runs/<scenario>/n<N>/``, all with the same study seed, on one Dask cluster. The power of
a finding is the share of replicates whose p-value (the analysis the paper used) is below
alpha; the sample size for 80 % power is read off the curve by interpolating the power
linearly in log n between the two grid sizes around 80 %.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .. import __version__
from ..atomic import write_file
from .engine import dask_client, prepare_folder, simulate
from .scenario import Scenario, load_scenario
from .store import is_own_folder
from .summary import ALPHA, csv_text

# finding -> (results key of its p-value, what the paper tested)
FINDINGS: dict[str, tuple[str, str]] = {
    "bca_on_lfs": ("efficacy.lfs.multi.bca_duration_days.p",
                   "B-cell aplasia duration on LFS (multivariable Cox)"),
    "female_on_lfs": ("efficacy.lfs.multi.female.p", "female sex on LFS (multivariable Cox)"),
    "mrd_on_scrs": ("toxicity.scrs.model1.preld_mrd_lt_1e-3.p",
                    "pre-LD MRD >= 1e-3 on grade >= 3 CRS (multivariable logistic, model 1)"),
    "hsct_on_os_low_burden": ("transplant.os_logrank_p.preld_mrd_lt_1e-4",
                              "HSCT on OS, pre-LD MRD < 1e-4 (log-rank)"),
    "cmax_mrd_cr": ("pk.cmax_mrdcr_mwu_p", "Cmax, MRD-negative CR vs not (Mann-Whitney)"),
}
# each study runs only the results sections the findings come from (the others, the kinetic-model
# fits above all, would cost time and change no power)
FINDING_SECTIONS = tuple(sorted({key.split(".")[0] for key, _ in FINDINGS.values()}))
TARGET_POWER = 0.8
SETTINGS = "power.json"
ENTRIES = frozenset({SETTINGS, "runs", "power.csv", "sample_size.csv", "power_curves.png"})


@dataclass(frozen=True)
class PowerResult:
    """The power table (one row per scenario x n x finding) and the sample size per finding."""

    out: Path | None
    power: pd.DataFrame
    sample_size: pd.DataFrame

    def plot(self, ax=None):
        """Power curves: power against n (log scale) per finding, one panel per scenario."""
        return plot_power(self.power, ax=ax)


def is_power_folder(path: Path) -> bool:
    """True for a folder written by ``cartlib power``."""
    return is_own_folder(path, SETTINGS, ENTRIES)


def sample_size_for(ns: Sequence[int], power: Sequence[float], target: float = TARGET_POWER) -> tuple[float, str]:
    """The n at which ``power`` first reaches ``target`` on the grid, interpolated in log n.

    Returns the number (NaN when the grid never reaches it) and a text: ``"<= 50"`` when the
    smallest n already has the power, ``"> 400"`` when the largest has not.

    >>> sample_size_for([50, 100, 200], [0.5, 0.7, 0.9])
    (141.4, '141')
    >>> sample_size_for([50, 100], [0.85, 0.9])[1], sample_size_for([50, 100], [0.1, 0.2])[1]
    ('<= 50', '> 100')
    """
    pairs = sorted(zip(ns, power))
    for k, (n, p) in enumerate(pairs):
        if p >= target:
            if k == 0:
                return float(n), f"<= {n}"
            (n0, p0) = pairs[k - 1]
            frac = (target - p0) / (p - p0)
            value = math.exp(math.log(n0) + frac * (math.log(n) - math.log(n0)))
            return round(value, 1), f"{value:.0f}"
    return math.nan, f"> {pairs[-1][0]}"


def power_table(runs: dict[tuple[str, int], pd.DataFrame], alpha: float = ALPHA) -> pd.DataFrame:
    """Power per finding of each grid cell's summary (``runs[(scenario, n)] = summary``)."""
    rows = []
    for (scenario, n), summary in sorted(runs.items()):
        by_key = summary.set_index("key")
        for finding, (key, _label) in FINDINGS.items():
            row = {"scenario": scenario, "n": n, "finding": finding, "key": key}
            if key in by_key.index:
                row.update(power=by_key.at[key, "power"], power_lo=by_key.at[key, "power_lo"],
                           power_hi=by_key.at[key, "power_hi"], not_estimable=by_key.at[key, "not_estimable"])
            rows.append(row)
    return pd.DataFrame(rows, columns=["scenario", "n", "finding", "key", "power", "power_lo", "power_hi",
                                       "not_estimable"])


def sample_sizes(power: pd.DataFrame, target: float = TARGET_POWER) -> pd.DataFrame:
    """The n for ``target`` power per scenario and finding (see :func:`sample_size_for`).

    >>> p = pd.DataFrame({"scenario": "s", "n": [50, 100], "finding": "bca_on_lfs", "power": [0.5, 0.9]})
    >>> sample_sizes(p)["n_for_80_text"].tolist()
    ['84']
    """
    rows = []
    for (scenario, finding), group in power.groupby(["scenario", "finding"], sort=True):
        group = group.dropna(subset=["power"])
        if group.empty:
            continue
        value, text = sample_size_for(group["n"].tolist(), group["power"].tolist(), target)
        rows.append({"scenario": scenario, "finding": finding, "n_for_80": value, "n_for_80_text": text,
                     "what": FINDINGS[finding][1]})
    return pd.DataFrame(rows, columns=["scenario", "finding", "n_for_80", "n_for_80_text", "what"])


def power_grid(out: str | os.PathLike, ns: Sequence[int], scenarios: Sequence[Scenario | str | None] = (None,),
               replicates: int = 200, seed: int = 0, overrides: dict[str, Any] | None = None,
               workers: int | None = None, scheduler: str | None = None, chunk_size: int | None = None,
               resume: bool = False, force: bool = False, alpha: float = ALPHA,
               progress: bool = True, client: Any = None) -> PowerResult:
    """Run every (scenario, n) cell and write ``power.csv``, ``sample_size.csv`` and
    ``power_curves.png`` into ``out``.

    Parameters are those of :func:`cartlib.simulate.simulate`; ``ns`` are the study sizes and
    ``scenarios`` the effect scenarios (None: the model unchanged). ``client`` is an open Dask
    client to use (otherwise one cluster is started for the whole grid).

    Examples
    --------
    >>> import tempfile
    >>> r = power_grid(Path(tempfile.mkdtemp()) / "p", ns=[20, 30], replicates=1, seed=1, workers=0,
    ...                progress=False)
    >>> sorted(set(r.power["n"])), len(r.power) == 2 * len(FINDINGS)
    ([20, 30], True)
    """
    loaded = [s if isinstance(s, Scenario) else load_scenario(s) for s in scenarios]
    if overrides:
        loaded = [s.with_overrides(overrides) for s in loaded]
    names = [s.name for s in loaded]
    if len(set(names)) != len(names):
        raise ValueError(f"scenario names must differ, got {names}")
    ns = sorted({int(n) for n in ns})
    settings = {"cartlib": __version__, "ns": ns, "scenarios": names, "replicates": int(replicates),
                "seed": int(seed), "alpha": alpha}
    inputs = [s.source for s in loaded if s.source]

    def conflict(target: Path) -> str | None:
        old = json.loads((target / SETTINGS).read_text(encoding="utf-8"))
        return None if old.get("seed") == settings["seed"] else f"seed was {old.get('seed')}, now {seed}"

    def unfinished(target: Path) -> str | None:
        return None if (target / "power.csv").exists() else "no power.csv yet"

    target = prepare_folder(out, is_own=is_power_folder, conflict=conflict, unfinished=unfinished,
                            resume=resume, force=force, inputs=inputs, what="power grid")
    write_file(target / SETTINGS, (json.dumps(settings, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    for name in ("power.csv", "sample_size.csv", "power_curves.png"):
        (target / name).unlink(missing_ok=True)
    runs: dict[tuple[str, int], pd.DataFrame] = {}
    own = client is None and not (workers == 0 and not scheduler)
    with dask_client(workers, scheduler) if own else contextlib.nullcontext(client) as client:
        for scenario in loaded:
            for n in ns:
                result = simulate(target / "runs" / scenario.name / f"n{n}", replicates, n=n, seed=seed,
                                  scenario=scenario, workers=workers, chunk_size=chunk_size, resume=resume,
                                  force=True, alpha=alpha, progress=progress, client=client,
                                  sections=FINDING_SECTIONS)
                runs[(scenario.name, n)] = result.summary
    power = power_table(runs, alpha)
    sizes = sample_sizes(power)
    write_file(target / "power.csv", csv_text(power).encode("utf-8"))
    write_file(target / "sample_size.csv", csv_text(sizes).encode("utf-8"))
    _save_figure(plot_power(power), target / "power_curves.png")
    return PowerResult(target, power, sizes)


def plot_power(power: pd.DataFrame, ax=None):
    """Power against n (log axis), one line per finding (its own colour and marker), with the
    Wilson 95 % band; one panel per scenario, side by side in a journal's page width, when
    ``ax`` is None. Returns the figure."""
    import matplotlib.pyplot as plt

    from ..plots.style import FIGURE_WIDTH_IN, OKABE_ITO

    scenarios = sorted(power["scenario"].unique())
    if ax is None:
        fig, axes = plt.subplots(1, len(scenarios), figsize=(FIGURE_WIDTH_IN, 2.5), squeeze=False, sharey=True,
                                 layout="constrained")
        axes = list(axes[0])
    else:
        fig, axes = ax.figure, [ax] * len(scenarios)
    # colour and marker shape per finding, the same in every panel (Okabe-Ito: distinguishable
    # with the common colour-vision deficiencies; the shape tells them apart in grey print too)
    findings = sorted(power["finding"].unique())
    colours = [c for name, c in OKABE_ITO.items() if name not in ("black", "yellow", "grey")]
    look = {f: (colours[i % len(colours)], "osD^v<>"[i % 7]) for i, f in enumerate(findings)}
    for axis, scenario in zip(axes, scenarios):
        part = power[power["scenario"] == scenario]
        for finding, group in part.groupby("finding", sort=True):
            group = group.sort_values("n")
            colour, marker = look[finding]
            axis.plot(group["n"], group["power"], marker=marker, ms=4, color=colour, label=finding)
            axis.fill_between(group["n"], group["power_lo"], group["power_hi"], color=colour, alpha=0.15, lw=0)
        axis.axhline(TARGET_POWER, color="grey", lw=0.8, ls="--")
        axis.set_xscale("log")
        axis.minorticks_off()   # only the grid's sizes are labelled
        ns = sorted(part["n"].unique())
        axis.set_xticks(ns, [str(n) for n in ns])
        axis.set_ylim(0, 1)
        axis.set_xlabel("patients per study (n)")
        axis.set_title(scenario)
    axes[0].set_ylabel(f"power (p < {ALPHA:g})")
    handles, labels = axes[-1].get_legend_handles_labels()
    if ax is None:   # under the panels, where it covers no curve
        fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize="small")
    else:
        axes[-1].legend(fontsize="small", loc="best", framealpha=0.9)
    return fig


def _save_figure(fig, path: Path) -> None:
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    write_file(path, buffer.getvalue())

