"""Figures of the kinetic-model fits: the two phases explained, small multiples, goodness of fit.

Every function returns its Axes (or array of Axes) and draws with the suite's Okabe–Ito colours;
nothing calls ``plt.show``. BLQ samples are drawn at the LLOQ as open downward triangles (the
true level is somewhere below).

>>> import matplotlib.pyplot as plt
>>> ax = plot_two_phases()
>>> sorted(l.get_gid() for l in ax.lines if l.get_gid())[:2]
['effector fraction', 'lloq']
>>> plt.close(ax.figure)
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..plots.style import OKABE_ITO
from . import model_core as core

_FIT, _OBS, _BLQ = OKABE_ITO["blue"], OKABE_ITO["black"], OKABE_ITO["vermillion"]


def plot_two_phases(cmax=24_000.0, tmax=9.3, fold=3_900.0, alpha=0.16, fb=0.0079, beta=0.0032,
                    lloq=100.0, end_day=730.0, ax=None):
    """The model for a student: expansion to Tmax, then the effector fraction (1 − FB)
    contracting at rate α and the persisting fraction FB declining at rate β; defaults are
    Stein 2019's typical values."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    days = np.linspace(0.01, end_day, 2000)
    theta = core.to_theta([cmax], [tmax], [np.log(fold) / tmax], [alpha], [fb], [beta])
    curve = np.exp(core.log_curve(theta, days[None, :])[0])
    s = np.clip(days - tmax, 0, None)
    after = days >= tmax
    ax.plot(days, curve, color=_FIT, lw=2.5, gid="model", label="model: C(t)")
    ax.plot(days[after], cmax * (1 - fb) * np.exp(-alpha * s[after]), color=OKABE_ITO["orange"], ls="--",
            gid="effector fraction", label=f"effector fraction (1 − FB) contracting, α = {alpha:g}/day")
    ax.plot(days[after], cmax * fb * np.exp(-beta * s[after]), color=OKABE_ITO["green"], ls="--",
            gid="persisting fraction", label=f"persisting fraction FB = {fb:g}, β = {beta:g}/day")
    ax.axhline(lloq, color=OKABE_ITO["grey"], ls=":", gid="lloq", label=f"LLOQ {lloq:g}")
    ax.axvline(tmax, color=OKABE_ITO["grey"], lw=0.8)
    ax.annotate(f"expansion ×{fold:,.0f} to Cmax at Tmax = {tmax:g} d", (tmax, cmax), xytext=(60, cmax * 2),
                arrowprops={"arrowstyle": "->"})
    ax.set(yscale="log", xscale="symlog", ylim=(lloq / 10, cmax * 20), xlabel="days after infusion (symlog axis)",
           ylabel="transgene copies/µg DNA", title="Expansion, then two phases of decline")
    ax.legend(loc="lower left", fontsize="small")
    return ax


def plot_fits(fitter, patients=None, ncols: int = 6, axes=None, end_day: float | None = None):
    """Small multiples: each patient's samples (BLQ open triangles at the LLOQ), fitted curve,
    the LLOQ, and the fit's status when it is not "converged"."""
    ids = list(fitter.ids_) if patients is None else list(patients)
    if axes is None:
        nrows = max(1, -(-len(ids) // ncols))
        _, axes = plt.subplots(nrows, ncols, figsize=(2.1 * ncols, 1.7 * nrows), sharex=True, sharey=True,
                               squeeze=False)
    flat = np.asarray(axes).ravel()
    index = {uid: i for i, uid in enumerate(fitter.ids_)}
    last = end_day or float(np.nanmax(np.where(fitter.valid_, fitter.days_, np.nan)))
    grid = np.geomspace(0.5, max(last, 1.0), 300)
    curves = fitter.predict(grid, patients=ids)
    for ax, uid in zip(flat, ids):
        i = index[uid]
        v = fitter.valid_[i]
        t, y, blq = fitter.days_[i][v], fitter.log_conc_[i][v], fitter.blq_[i][v]
        ax.plot(t[~blq], np.exp(y[~blq]), "o", ms=3, color=_OBS, gid="observed")
        ax.plot(t[blq], np.full(blq.sum(), fitter.lloq), "v", ms=4, mfc="none", color=_BLQ, gid="BLQ")
        ax.plot(grid, curves.loc[uid].to_numpy(), color=_FIT, lw=1.2, gid="fit")
        ax.axhline(fitter.lloq, color=OKABE_ITO["grey"], ls=":", lw=0.8)
        status = fitter.summary.loc[uid, "status"]
        ax.set_title(uid if status == "converged" else f"{uid} ({status})", fontsize=7)
        ax.set(xscale="symlog", yscale="log")
        ax.tick_params(labelsize=6)
    for ax in flat[len(ids):]:
        ax.set_visible(False)
    rows = [index[uid] for uid in ids]
    observed = np.exp(np.nanmax(np.where(fitter.valid_[rows], fitter.log_conc_[rows], np.nan), initial=0.0))
    top = max(observed, np.nanmax(curves.to_numpy(), initial=fitter.lloq), fitter.lloq)
    flat[0].set_ylim(fitter.lloq / 5, top * 3)
    return axes


def plot_gof(fitter, axes=None):
    """Goodness of fit of the quantified samples: observed vs predicted (log scale, identity
    line) and standardised residuals vs time (±2 band); BLQ samples are censored, not residuals."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    res = fitter.residuals()
    q = res[~res["blq"]]
    ax = axes[0]
    ax.plot(np.exp(q["log_predicted"]), np.exp(q["log_observed"]), "o", ms=3, alpha=0.5, color=_OBS, gid="samples")
    lims = np.exp([min(q["log_predicted"].min(), q["log_observed"].min()),
                   max(q["log_predicted"].max(), q["log_observed"].max())]) if len(q) else [1, 10]
    ax.plot(lims, lims, color=_FIT, gid="identity")
    ax.set(xscale="log", yscale="log", xlabel="predicted, copies/µg", ylabel="observed, copies/µg",
           title="Observed vs predicted")
    ax = axes[1]
    ax.plot(q["DAY"], q["std_residual"], "o", ms=3, alpha=0.5, color=_OBS, gid="residuals")
    for level in (-2, 0, 2):
        ax.axhline(level, color=OKABE_ITO["grey"], ls="-" if level == 0 else ":")
    ax.set(xscale="symlog", xlabel="days after infusion (symlog axis)", ylabel="standardised residual",
           title=f"Residuals vs time (σ = {fitter.sigma_:.2f} on log scale)")
    return axes
