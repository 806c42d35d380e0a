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

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..plots.kinetics import MAX_LINES, sample_patients
from ..plots.style import FIGURE_WIDTH_IN, MAX_HEIGHT_IN, OKABE_ITO, plain_log_ticks
from . import model_core as core
from .model import FITTED

_FIT, _OBS, _BLQ = OKABE_ITO["blue"], OKABE_ITO["black"], OKABE_ITO["vermillion"]
CURVE_STATUSES = FITTED   # the statuses whose curve is a fit


def plot_two_phases(cmax=24_000.0, tmax=9.3, fold=3_900.0, alpha=0.16, fb=0.0079, beta=0.0032,
                    lloq=100.0, end_day=730.0, ax=None):
    """The model for a student: expansion to Tmax, then the effector fraction (1 − FB)
    contracting at rate α and the persisting fraction FB declining at rate β; defaults are
    Stein 2019's typical values."""
    if ax is None:
        _, ax = plt.subplots(figsize=(FIGURE_WIDTH_IN, 3.6), layout="constrained")
    days = np.linspace(0.01, end_day, 2000)
    theta = core.to_theta([cmax], [tmax], [np.log(fold) / tmax], [alpha], [fb], [beta])
    curve = np.exp(core.log_curve(theta, days[None, :])[0])
    s = np.clip(days - tmax, 0, None)
    after = days >= tmax
    ax.plot(days, curve, color=_FIT, lw=2.0, gid="model", label="model: C(t)")
    ax.plot(days[after], cmax * (1 - fb) * np.exp(-alpha * s[after]), color=OKABE_ITO["orange"], ls="--",
            gid="effector fraction", label=f"effector fraction (1 − FB) contracting, α = {alpha:g}/day")
    ax.plot(days[after], cmax * fb * np.exp(-beta * s[after]), color=OKABE_ITO["green"], ls="--",
            gid="persisting fraction", label=f"persisting fraction FB = {fb:g}, β = {beta:g}/day")
    ax.axhline(lloq, color=OKABE_ITO["grey"], ls=":", gid="lloq", label=f"LLOQ {lloq:g}")
    ax.axvline(tmax, color=OKABE_ITO["grey"], lw=0.8)
    # the note in the empty upper left, the legend under the axes: nothing covers a curve
    ax.annotate(f"expansion ×{fold:,.0f} to Cmax\nat Tmax = {tmax:g} days", (tmax, cmax), xytext=(0.03, 0.95),
                textcoords="axes fraction", ha="left", va="top", arrowprops={"arrowstyle": "->", "color": "0.3"})
    ax.set(yscale="log", ylim=(lloq / 10, cmax * 20), xlabel="days after infusion (linear to 1, then log)",
           ylabel="transgene copies/µg DNA", title="Expansion, then two phases of decline")
    _days_axis(ax, end_day / 1.1)
    plain_log_ticks(ax.yaxis)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize="small")
    return ax


def fit_quality(fitter) -> pd.Series:
    """Root-mean-square standardised residual of each patient's quantified samples (lower is a
    closer fit), indexed by USUBJID in the fit's order; NaN for a patient without a fitted curve
    or without a quantified sample.

    >>> from cartlib.synth import generate_cohort
    >>> from cartlib.pk.model import KineticModelFitter
    >>> fit = KineticModelFitter().fit(generate_cohort(6, seed=2)["pk"], lloq=100)
    >>> q = fit_quality(fit)
    >>> len(q), bool((q.dropna() >= 0).all())
    (6, True)
    """
    res = fitter.residuals()
    res = res[~res["blq"]]
    rms = (res["std_residual"] ** 2).groupby(res["USUBJID"], sort=False).mean() ** 0.5
    return rms.reindex(pd.Index(fitter.ids_, name="USUBJID"))


def representative_patients(fitter, k: int = 12, quality: pd.Series | None = None) -> list:
    """``k`` patients spanning the range of fit quality, from the closest fit to the worst.

    The rule: patients are ranked by :func:`fit_quality` (ties by USUBJID; a patient without a
    fitted curve or quantified sample ranks last, as the worst), and the patients at ``k``
    evenly spaced ranks are taken: the first, the last and ``k − 2`` between them (every patient
    when there are at most ``k``). So the panels show the best, the typical and the worst fits,
    not a hand-picked set. ``quality``: :func:`fit_quality` of ``fitter``, when the caller has it.

    >>> from cartlib.synth import generate_cohort
    >>> from cartlib.pk.model import KineticModelFitter
    >>> fit = KineticModelFitter().fit(generate_cohort(9, seed=2)["pk"], lloq=100)
    >>> chosen = representative_patients(fit, 4)
    >>> len(chosen), chosen[0] == fit_quality(fit).sort_values().index[0]
    (4, True)
    """
    q = fit_quality(fitter) if quality is None else quality
    order = sorted(q.index, key=lambda uid: (np.isnan(q[uid]), q[uid] if np.isfinite(q[uid]) else 0.0, str(uid)))
    if len(order) <= k:
        return order
    return [order[i] for i in np.linspace(0, len(order) - 1, k).round().astype(int)]


def _decades(lo: float, hi: float, every: int = 1) -> list[float]:
    first, last = int(np.ceil(np.log10(lo) - 1e-9)), int(np.floor(np.log10(hi) + 1e-9))
    return [10.0 ** e for e in range(first, last + 1) if (e - first) % every == 0]


def _plain(values) -> list[str]:
    return [f"{v:,.0f}" if v >= 1 else f"{v:g}" for v in values]


class _Frame:
    """What every fit panel shares: the time grid, the fitted curves on it, the log axis limits
    and ticks, computed once for all patients."""

    def __init__(self, fitter, end_day=None, patients=None):
        self.fitter, self.index = fitter, {uid: i for i, uid in enumerate(fitter.ids_)}
        last = max(end_day or float(np.nanmax(np.where(fitter.valid_, fitter.days_, np.nan), initial=1.0)), 1.0)
        # the Tmax of every patient drawn joins the grid, so each curve's peak (a corner) is drawn
        # exactly; only the patients drawn (``patients``, None: all): a grid of every Tmax of a
        # 20,000-patient cohort, times 20,000 curves, would take tens of gigabytes
        rows = (np.arange(len(fitter.ids_)) if patients is None
                else np.sort([self.index[uid] for uid in set(patients)]).astype(int))
        tmax = core.natural(fitter.theta_[rows].reshape(-1, core.N_THETA))["tmax"]
        tmax = tmax[np.isfinite(tmax) & (tmax > 0.5) & (tmax < last)]
        self.grid = np.unique(np.concatenate([np.geomspace(0.5, last, 300), tmax]))
        self.curves = fitter.predict(self.grid, None if patients is None else fitter.ids_[rows])
        observed = np.exp(np.nanmax(np.where(fitter.valid_, fitter.log_conc_, np.nan), initial=0.0))
        top = max(observed, np.nanmax(self.curves.to_numpy(), initial=fitter.lloq), fitter.lloq)
        self.xlim, self.ylim = (0.4, last * 1.5), (fitter.lloq / 5, top * 3)
        self.xticks = _decades(*self.xlim)
        self.yticks = _decades(*self.ylim, every=2 if np.log10(self.ylim[1] / self.ylim[0]) > 5 else 1)

    def samples(self, uid):
        i, f = self.index[uid], self.fitter
        v = f.valid_[i]
        return f.days_[i][v], np.exp(f.log_conc_[i][v]), f.blq_[i][v]

    def axes(self, ax, fontsize=None):
        """A whole Axes on the shared scales (the overview of all patients)."""
        ax.set(xscale="log", yscale="log", xlim=self.xlim, ylim=self.ylim)
        ax.set_xticks(self.xticks, _plain(self.xticks))
        ax.set_yticks(self.yticks, _plain(self.yticks))
        ax.minorticks_off()
        if fontsize:
            ax.tick_params(labelsize=fontsize)


class _Trellis:
    """Small multiples drawn as regions of one Axes whose data units are inches.

    A Matplotlib Axes per patient costs more to create and to draw (spines, tick machinery,
    title placement) than everything the panel shows; fifty of them made the fits figure the
    slowest of the report. Here every panel is a rectangle of one Axes with its axis hidden:
    the curves are clipped to their panel, and frames, ticks and the LLOQ lines of all panels
    are one artist each, so the grid costs about as much as a single plot.
    """

    # inches between panels (a row's gap holds the titles of the row below, up to two lines at
    # FONTSIZE), and above the top row
    GAP_X, GAP_Y, TITLE = 0.14, 0.32, 0.3
    FONTSIZE = 6.5   # panel titles and tick labels: the style's smallest text, so narrow panels fit

    def __init__(self, ax, frame: _Frame, n: int, ncols: int):
        self.ax, self.frame, self.ncols = ax, frame, ncols
        self.nrows = max(1, -(-n // ncols))
        box = ax.get_position()
        fw, fh = ax.figure.get_size_inches()
        self.width, self.height = box.width * fw, box.height * fh
        self.pw = (self.width - (ncols - 1) * self.GAP_X) / ncols
        self.ph = (self.height - self.TITLE - (self.nrows - 1) * self.GAP_Y) / self.nrows
        ax.set(xlim=(0, self.width), ylim=(0, self.height))
        ax.set_axis_off()
        self.lx, self.ly = np.log10(frame.xlim), np.log10(frame.ylim)

    def origin(self, k: int) -> tuple[float, float]:
        row, col = divmod(k, self.ncols)
        return col * (self.pw + self.GAP_X), self.height - self.TITLE - row * (self.ph + self.GAP_Y) - self.ph

    def place(self, k: int, x, y):
        x0, y0 = self.origin(k)
        with np.errstate(divide="ignore"):   # a curve that underflows to 0 leaves its panel below
            u = (np.log10(np.asarray(x, float)) - self.lx[0]) / (self.lx[1] - self.lx[0])
            v = (np.log10(np.asarray(y, float)) - self.ly[0]) / (self.ly[1] - self.ly[0])
        return x0 + u * self.pw, y0 + v * self.ph

    def draw(self, ids, notes=None, fontsize=FONTSIZE):
        from matplotlib.collections import LineCollection
        from matplotlib.lines import TICKDOWN, TICKLEFT
        from matplotlib.transforms import Bbox, TransformedBbox, offset_copy

        ax, frame, f = self.ax, self.frame, self.frame.fitter
        edge, lw = mpl.rcParams["axes.edgecolor"], mpl.rcParams["axes.linewidth"]
        below = offset_copy(ax.transData, ax.figure, y=-4, units="points")
        left = offset_copy(ax.transData, ax.figure, x=-4, units="points")
        frames, lloq, xt, yt, obs, blq = [], [], [], [], [], []
        for k, uid in enumerate(ids):
            x0, y0 = self.origin(k)
            frames.append([(x0, y0 + self.ph), (x0, y0), (x0 + self.pw, y0)])
            lloq.append([(x0, self.place(k, 1, f.lloq)[1]), (x0 + self.pw, self.place(k, 1, f.lloq)[1])])
            xs, _ = self.place(k, frame.xticks, np.ones(len(frame.xticks)))
            _, ys = self.place(k, np.ones(len(frame.yticks)), frame.yticks)
            xt += [(x, y0) for x in xs]
            yt += [(x0, y) for y in ys]
            if k + self.ncols >= len(ids):   # no panel below: this one labels the x axis
                for x, label in zip(xs, _plain(frame.xticks)):
                    ax.text(x, y0, label, transform=below, ha="center", va="top", fontsize=fontsize)
            if k % self.ncols == 0:
                for y, label in zip(ys, _plain(frame.yticks)):
                    ax.text(x0, y, label, transform=left, ha="right", va="center", fontsize=fontsize)
            line, = ax.plot(*self.place(k, frame.grid, frame.curves.loc[uid].to_numpy()), color=_FIT, lw=1.2,
                            gid=f"fit:{uid}")
            line.set_clip_box(TransformedBbox(Bbox.from_bounds(x0, y0, self.pw, self.ph), ax.transData))
            t, y, is_blq = frame.samples(uid)
            obs.append(np.column_stack(self.place(k, t[~is_blq], y[~is_blq])))
            blq.append(np.column_stack(self.place(k, t[is_blq], np.full(int(is_blq.sum()), f.lloq))))
            status = f.summary.loc[uid, "status"]
            title = uid if status in CURVE_STATUSES else f"{uid}\n({status})"   # two lines: a narrow panel
            ax.text(x0 + self.pw / 2, y0 + self.ph + 0.04, f"{title}{(notes or {}).get(uid, '')}", ha="center",
                    va="bottom", fontsize=fontsize, gid="patient")
        ax.add_collection(LineCollection(frames, colors=edge, linewidths=lw, gid="frames"))
        ax.add_collection(LineCollection(lloq, colors=OKABE_ITO["grey"], linestyles=":", linewidths=0.8, gid="lloq"))
        for points, marker in ((xt, TICKDOWN), (yt, TICKLEFT)):
            ax.plot(*np.asarray(points).T, ls="none", marker=marker, ms=2.5, mew=lw, color=edge, gid="ticks")
        obs, blq = (np.concatenate(a) if a else np.empty((0, 2)) for a in (obs, blq))
        ax.plot(obs[:, 0], obs[:, 1], "o", ms=2.5, color=_OBS, gid="observed")
        ax.plot(blq[:, 0], blq[:, 1], "v", ms=3.5, mfc="none", mew=0.8, color=_BLQ, gid="BLQ")


def _legend_handles(lloq: float):
    from matplotlib.lines import Line2D

    return [Line2D([], [], ls="none", marker="o", ms=3, color=_OBS, label="quantified sample"),
            Line2D([], [], ls="none", marker="v", ms=4, mfc="none", color=_BLQ, label="BLQ sample (at the LLOQ)"),
            Line2D([], [], color=_FIT, lw=1.2, label="fitted curve"),
            Line2D([], [], color=OKABE_ITO["grey"], ls=":", label=f"LLOQ {lloq:g} copies/µg")]


def _label_figure(fig, lloq: float):
    fig.supxlabel("days after infusion (log scale)", y=0.01, va="bottom")
    fig.supylabel("transgene copies/µg DNA (log scale)", x=0.01, ha="left")
    fig.legend(handles=_legend_handles(lloq), loc="upper center", ncol=4, frameon=False, bbox_to_anchor=(0.5, 1.0))


ROW_IN = 1.15   # height (inches) a row of patients' panels takes, the gap above it included
MARGINS_IN = (0.8, 0.05, 0.45, 0.35)   # left, right, bottom, top: axis labels, tick labels, legend


def _row_height(nrows: int, extra_height: float = 0.0) -> float:
    """A row's height: :data:`ROW_IN`, or less where the rows would make the figure taller than a
    journal page (:data:`~cartlib.plots.style.MAX_HEIGHT_IN`)."""
    room = MAX_HEIGHT_IN - 0.1 - extra_height - MARGINS_IN[2] - MARGINS_IN[3]
    return min(ROW_IN, room / nrows)


def _figure(nrows: int, extra_height: float = 0.0):
    """A figure of the full page width with ``nrows`` rows of panels and ``extra_height`` inches above them."""
    bottom, top = MARGINS_IN[2:]
    return plt.figure(figsize=(FIGURE_WIDTH_IN, _row_height(nrows, extra_height) * nrows + extra_height + bottom + top))


def plot_fits(fitter, patients=None, ncols: int = 6, axes=None, end_day: float | None = None, notes=None):
    """Small multiples, one panel per patient: samples (BLQ open triangles at the LLOQ), fitted
    curve, the LLOQ, the patient's id (and the fit's status when the curve is not a fit); one
    log–log scale for every panel, labelled on the outer panels. ``notes`` maps a patient to
    text added to its id. The panels are regions of one Axes (``axes``, or a new figure's),
    which is returned.

    >>> from cartlib.synth import generate_cohort
    >>> from cartlib.pk.model import KineticModelFitter
    >>> fit = KineticModelFitter().fit(generate_cohort(4, seed=2)["pk"], lloq=100)
    >>> ax = plot_fits(fit, ncols=3)
    >>> [t.get_text() for t in ax.texts if t.get_gid() == "patient"]
    ['SYN-1', 'SYN-2', 'SYN-3', 'SYN-4']
    >>> plt.close(ax.figure)
    """
    ids = list(fitter.ids_) if patients is None else list(patients)
    if axes is None:
        nrows = max(1, -(-len(ids) // ncols))
        fig = _figure(nrows)
        w, h = fig.get_size_inches()
        left, right, bottom, top = MARGINS_IN
        axes = fig.add_axes((left / w, bottom / h, 1 - (left + right) / w, 1 - (bottom + top) / h))
        _label_figure(fig, fitter.lloq)
    frame = _Frame(fitter, end_day, patients=ids)
    _Trellis(axes, frame, len(ids), ncols).draw(ids, notes)
    return axes


def plot_fit_overview(fitter, k: int = 12, ncols: int = 4, end_day: float | None = None):
    """The fits on one page: every patient's fitted curve and samples overlaid (top), then the
    ``k`` :func:`representative_patients` as small multiples, best fit first, each with its
    root-mean-square standardised residual. Returns the Figure.

    >>> from cartlib.synth import generate_cohort
    >>> from cartlib.pk.model import KineticModelFitter
    >>> fit = KineticModelFitter().fit(generate_cohort(8, seed=2)["pk"], lloq=100)
    >>> fig = plot_fit_overview(fit, k=4, ncols=4)
    >>> len(fig.axes), [c.get_gid() for c in fig.axes[0].collections]
    (2, ['fits'])
    >>> plt.close(fig)
    """
    from matplotlib.collections import LineCollection

    quality = fit_quality(fitter)
    chosen = representative_patients(fitter, k, quality)
    nrows = max(1, -(-len(chosen) // ncols))
    # inches from the grid up: the grid's heading (0.3), the overlay's axis labels (0.4), the
    # overlay (2.2) and its heading (0.25)
    heading, labels, height, title = 0.3, 0.4, 2.2, 0.25
    above = heading + labels + height + title
    fig = _figure(nrows, above)
    w, h = fig.get_size_inches()
    left, right, bottom, top = MARGINS_IN
    width, grid_h = 1 - (left + right) / w, _row_height(nrows, above) * nrows
    ax = fig.add_axes((left / w, (bottom + grid_h + heading + labels) / h, width, height / h))
    f = fitter
    # a large cohort's overlay draws a deterministic sample of patients (as the spaghetti plots do):
    # tens of thousands of curves and points would be an unreadable blot and cost gigabytes
    drawn = np.isin(np.asarray(f.ids_, dtype=object), list(sample_patients(f.ids_, MAX_LINES)))
    frame = _Frame(fitter, end_day, patients=set(np.asarray(f.ids_)[drawn]) | set(chosen))
    curves = frame.curves.loc[np.asarray(f.ids_)[drawn]].to_numpy()
    lines = [np.column_stack([frame.grid, c]) for c in curves if np.isfinite(c).all()]
    ax.add_collection(LineCollection(lines, colors=_FIT, linewidths=0.7, alpha=0.45, gid="fits"))
    quantified, blq = f.valid_ & ~f.blq_ & drawn[:, None], f.valid_ & f.blq_ & drawn[:, None]
    ax.plot(f.days_[quantified], np.exp(f.log_conc_[quantified]), "o", ms=2, alpha=0.5, color=_OBS, gid="observed")
    ax.plot(f.days_[blq], np.full(int(blq.sum()), f.lloq), "v", ms=3, mfc="none", mew=0.7, alpha=0.7, color=_BLQ,
            gid="BLQ")
    ax.axhline(f.lloq, color=OKABE_ITO["grey"], ls=":", lw=0.8, gid="lloq")
    frame.axes(ax)
    ax.set_xlabel("days after infusion (log scale)")
    who = (f"All {len(f.ids_)} patients" if drawn.all()
           else f"{int(drawn.sum()):,} of {len(f.ids_):,} patients (a fixed sample)")
    ax.text(0.0, 1.02, f"{who}: fitted curves ({len(lines)}) and samples", transform=ax.transAxes,
            ha="left", va="bottom")
    grid = fig.add_axes((left / w, bottom / h, width, grid_h / h))
    which = f"all {len(chosen)} patients" if len(chosen) == len(f.ids_) else f"{len(chosen)} patients"
    grid.text(0.0, 1.0 + 0.1 / grid_h, f"{which.capitalize()}, from the closest fit to the worst "
              "(RMS: root-mean-square standardised residual)", transform=grid.transAxes, ha="left", va="bottom")
    notes = {uid: "" if np.isnan(quality[uid]) else f", RMS {quality[uid]:.2f}" for uid in chosen}
    plot_fits(fitter, chosen, ncols=ncols, axes=grid, end_day=end_day, notes=notes)
    _label_figure(fig, f.lloq)
    return fig


def plot_gof(fitter, axes=None):
    """Goodness of fit of the quantified samples: observed vs predicted (log scale, identity
    line) and standardised residuals vs time (±2 band); BLQ samples are censored, not residuals."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(FIGURE_WIDTH_IN, 3.2), layout="constrained")
    res = fitter.residuals()
    q = res[~res["blq"]]
    ax = axes[0]
    ax.plot(np.exp(q["log_predicted"]), np.exp(q["log_observed"]), "o", ms=3, alpha=0.5, color=_OBS, gid="samples")
    lims = np.exp([min(q["log_predicted"].min(), q["log_observed"].min()),
                   max(q["log_predicted"].max(), q["log_observed"].max())]) if len(q) else [1, 10]
    ax.plot(lims, lims, color=_FIT, gid="identity")
    ax.set(xscale="log", yscale="log", xlabel="predicted, copies/µg", ylabel="observed, copies/µg",
           title="Observed vs predicted")
    plain_log_ticks(ax.xaxis, numticks=5)   # "1,000,000" is wider than a decade of this axis
    plain_log_ticks(ax.yaxis, numticks=5)
    ax = axes[1]
    ax.plot(q["DAY"], q["std_residual"], "o", ms=3, alpha=0.5, color=_OBS, gid="residuals")
    for level in (-2, 0, 2):
        ax.axhline(level, color=OKABE_ITO["grey"], ls="-" if level == 0 else ":")
    ax.set(xlabel="days after infusion (linear to 1, then log)", ylabel="standardised residual",
           title=f"Residuals vs time (σ = {fitter.sigma_:.2f} on log scale)")
    _days_axis(ax, float(q["DAY"].max()) if len(q) else 1.0)
    return axes


def _days_axis(ax, last: float) -> None:
    """Days from 0 on a symmetric-log axis, linear to day 1 and labelled 0, 1, 10, 100 ...: the
    first days and the years after stay readable, and no axis runs into negative days."""
    ax.set_xscale("symlog", linthresh=1.0, linscale=0.5)
    ticks = [0.0] + [10.0 ** e for e in range(0, int(np.log10(max(last, 1.0))) + 1)]
    ax.set_xticks(ticks, [f"{t:,.0f}" for t in ticks])
    ax.set_xlim(0, max(last, 1.0) * 1.1)
