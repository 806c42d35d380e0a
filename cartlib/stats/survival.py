"""Kaplan–Meier with R's confidence intervals, numbers at risk, (stratified) log-rank, follow-up.

Everything here reproduces R ``survival`` (``survfit``, ``summary.survfit``, ``print.survfit``,
``survdiff``); the goldens in ``tests/golden/survival`` were made with R 4.2 / survival 3.5.
Times are in whatever unit the caller passes (the notebooks pass months).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

__all__ = ["KaplanMeier", "LogrankResult", "logrank_test", "median_followup", "plot_km", "at_risk"]

_CI_TYPES = ("plain", "log", "log-log")


def _check_survival_data(durations, events) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(durations, dtype=float)
    e = np.asarray(events, dtype=float)
    if t.ndim != 1 or t.shape != e.shape:
        raise ValueError("durations and events must be 1-D and of the same length")
    if t.size == 0:
        raise ValueError("no observations")
    if np.isnan(t).any() or np.isnan(e).any():
        raise ValueError("durations and events must not be missing")
    if (t < 0).any():
        raise ValueError("durations must be >= 0")
    if not np.isin(e, (0, 1)).all():
        raise ValueError("events must be 0 (censored) or 1 (event)")
    return t, e.astype(int)


def at_risk(durations, times) -> np.ndarray:
    """Numbers at risk at each of ``times``: #{T >= t}, as R counts them.

    >>> at_risk([1, 2, 2, 5], [0, 2, 3, 6]).tolist()
    [4, 3, 1, 0]
    """
    t = np.sort(np.asarray(durations, dtype=float))
    return t.size - np.searchsorted(t, np.asarray(times, dtype=float), side="left")


def _confint(surv: np.ndarray, se_log: np.ndarray, ci: str, z: float):
    """Pointwise CI of S as R ``survfit(conf.type=ci)``; ``se_log`` is the Greenwood SE of log S."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if ci == "plain":
            se = se_log * surv
            lower, upper = np.maximum(surv - z * se, 0.0), np.minimum(surv + z * se, 1.0)
        elif ci == "log":
            s = np.where(surv > 0, surv, np.nan)
            lower, upper = s * np.exp(-z * se_log), np.minimum(s * np.exp(z * se_log), 1.0)
        else:  # log-log: undefined at S = 0 and S = 1, where R gives NA
            s = np.where((surv > 0) & (surv < 1), surv, np.nan)
            eta, w = np.log(-np.log(s)), z * se_log / np.log(s)
            lower, upper = np.exp(-np.exp(eta - w)), np.exp(-np.exp(eta + w))
    bad = ~np.isfinite(lower) | ~np.isfinite(upper)
    return np.where(bad, np.nan, lower), np.where(bad, np.nan, upper)


def _first_below_half(y: np.ndarray, x: np.ndarray) -> float:
    """First x where the curve y is <= 0.5, with R's midpoint rule when y is exactly 0.5.

    Written after R's ``print.survfit`` convention (Therneau, survival package docs):
    if the curve equals 0.5 on an interval, the median is the mean of its two ends.
    """
    tol = np.sqrt(np.finfo(float).eps)
    keep = ~np.isnan(y) & (y < 0.5 + tol)
    if not keep.any():
        return float("nan")
    x, y = x[keep], y[keep]
    if abs(y[0] - 0.5) < tol and (y < y[0]).any():
        return float((x[0] + x[np.argmax(y < y[0])]) / 2)
    return float(x[0])


class KaplanMeier:
    """Kaplan–Meier estimate with Greenwood variance and R's plain/log/log-log CI.

    ``table_`` has one row per distinct time: ``time, n_risk, n_event, n_censor, survival,
    std_err, std_err_log, ci_lower, ci_upper``. ``std_err`` is the SE of S(t) (what
    ``summary(survfit)`` prints as ``std.err``); ``std_err_log`` is the Greenwood SE of
    log S(t) (the ``std.err`` stored in the ``survfit`` object). Where S = 0 the SE and CI are
    NaN, as R's NA. ``median_`` and ``median_ci_`` follow ``print(survfit)``: the median is
    the first time S <= 0.5; its lower (upper) bound is the first time the lower (upper) CI
    curve is <= 0.5; NaN when not reached.

    >>> km = KaplanMeier(ci="log-log").fit([1, 2, 3, 4], [1, 1, 1, 1])
    >>> km.table_["survival"].tolist()
    [0.75, 0.5, 0.25, 0.0]
    >>> km.median_, km.median_ci_[0]
    (2.5, 1.0)
    >>> km.survival_at(2.5)[0], km.survival_at(0)
    (0.5, (1.0, 1.0, 1.0))
    """

    def __init__(self, ci: str = "log-log", alpha: float = 0.05):
        if ci not in _CI_TYPES:
            raise ValueError(f"ci must be one of {_CI_TYPES}, not {ci!r}")
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        self.ci, self.alpha = ci, alpha

    def fit(self, durations, events, label: str | None = None) -> "KaplanMeier":
        """Estimate S(t) from right-censored data (events: 1 event, 0 censored); returns self."""
        t, e = _check_survival_data(durations, events)
        self.label = label
        self.durations_, self.events_ = t, e
        times, inv = np.unique(t, return_inverse=True)
        n_event = np.bincount(inv, weights=e, minlength=times.size)
        n_censor = np.bincount(inv, weights=1 - e, minlength=times.size)
        n_risk = at_risk(t, times).astype(float)
        surv = np.cumprod(1.0 - n_event / n_risk)
        with np.errstate(divide="ignore", invalid="ignore"):
            # Greenwood: var(log S) = sum d / (n (n - d)); infinite once everyone has failed
            terms = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
            se_log = np.sqrt(np.cumsum(terms))
            se = np.where(np.isfinite(se_log), se_log * surv, np.nan)
        z = special.ndtri(1 - self.alpha / 2)   # stats.norm.ppf without its per-call checks
        lower, upper = _confint(surv, se_log, self.ci, z)
        self.table_ = pd.DataFrame({
            "time": times, "n_risk": n_risk.astype(int), "n_event": n_event.astype(int),
            "n_censor": n_censor.astype(int), "survival": surv, "std_err": se,
            "std_err_log": se_log, "ci_lower": lower, "ci_upper": upper})
        self.median_ = _first_below_half(surv, times)
        self.median_ci_ = (_first_below_half(lower, times), _first_below_half(upper, times))
        return self

    def summary_at(self, times) -> pd.DataFrame:
        """Values at ``times`` as R ``summary(fit, times=, extend=TRUE)``.

        Before the first time: S = 1 with SE 0 and CI (1, 1); after the last time: the last
        row's values (R's ``extend=TRUE``), with ``n_risk`` 0.

        >>> KaplanMeier().fit([2, 3, 3, 8], [1, 0, 1, 0]).summary_at([1, 3, 9])["n_risk"].tolist()
        [4, 3, 0]
        """
        tab = self.table_
        times = np.atleast_1d(np.asarray(times, dtype=float))
        idx = np.searchsorted(tab["time"].to_numpy(), times, side="right") - 1
        out = {"time": times, "n_risk": at_risk(self.durations_, times)}
        for col, before in (("survival", 1.0), ("std_err", 0.0), ("ci_lower", 1.0), ("ci_upper", 1.0)):
            vals = tab[col].to_numpy()
            out[col] = np.where(idx >= 0, vals[np.maximum(idx, 0)], before)
        return pd.DataFrame(out)

    def survival_at(self, t: float) -> tuple[float, float, float]:
        """(estimate, lower, upper) of the right-continuous step function at ``t``.

        Beyond the last time: the last values (R ``summary(fit, times=t, extend=TRUE)``).

        >>> KaplanMeier(ci="plain").fit([2, 3, 3, 8], [1, 0, 1, 0]).survival_at(5)[0]
        0.5
        """
        # summary_at's values for one time, read from the arrays (no one-row frame)
        tab = self.table_
        i = int(np.searchsorted(tab["time"].to_numpy(), float(t), side="right")) - 1
        if i < 0:
            return 1.0, 1.0, 1.0
        return tuple(float(tab[col].to_numpy()[i]) for col in ("survival", "ci_lower", "ci_upper"))

    def at_risk(self, times) -> np.ndarray:
        """Numbers at risk #{T >= t} at ``times``.

        >>> KaplanMeier().fit([1, 2, 2, 5], [1, 0, 1, 1]).at_risk([2, 6]).tolist()
        [3, 0]
        """
        return at_risk(self.durations_, times)

    def plot(self, ax=None, ci: bool = True, censor_marks: bool = True, at_risk_times=None,
             **line_kw):
        """Draw the step curve (from S(0) = 1) with its CI band and censoring ticks; returns ax.

        >>> import matplotlib; matplotlib.use("Agg")
        >>> ax = KaplanMeier().fit([1, 2, 2, 5], [1, 0, 1, 1], label="all").plot(at_risk_times=[0, 2, 4])
        >>> len(ax.lines) >= 1
        True
        """
        import matplotlib.pyplot as plt

        ax = ax if ax is not None else plt.subplots(figsize=(6, 4))[1]
        tab = self.table_
        x = np.r_[0.0, tab["time"].to_numpy()]
        y = np.r_[1.0, tab["survival"].to_numpy()]
        line_kw.setdefault("label", self.label)
        (line,) = ax.step(x, y, where="post", **line_kw)
        if ci:
            lo = np.r_[1.0, tab["ci_lower"].to_numpy()]
            hi = np.r_[1.0, tab["ci_upper"].to_numpy()]
            ax.fill_between(x, lo, hi, step="post", alpha=0.15, color=line.get_color(), linewidth=0)
        if censor_marks:
            cens = tab[tab["n_censor"] > 0]
            ax.plot(cens["time"], cens["survival"], linestyle="none", marker="|", markersize=8,
                    color=line.get_color())
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("Survival probability")
        if at_risk_times is not None:
            _at_risk_table(ax, {self.label or "": self}, at_risk_times)
        return ax


def _at_risk_table(ax, fits: dict, times) -> None:
    """Write the numbers at risk under the x axis, one text row per curve."""
    from matplotlib.transforms import blended_transform_factory

    times = np.asarray(times, dtype=float)
    ax.set_xticks(times)
    ax.set_xlim(left=min(0.0, times.min()))
    under = blended_transform_factory(ax.transData, ax.transAxes)  # x in data, y in axes units
    ax.text(0, -0.14, "Number at risk", transform=ax.transAxes, ha="left", va="center",
            fontsize=8, fontweight="bold")
    for row, (name, fit) in enumerate(fits.items(), start=1):
        y = -0.14 - 0.06 * row
        ax.text(-0.06, y, str(name), transform=ax.transAxes, ha="right", va="center", fontsize=8)
        for t, n in zip(times, fit.at_risk(times)):
            ax.text(t, y, str(int(n)), transform=under, ha="center", va="center", fontsize=8)


def plot_km(fits: dict, ax=None, at_risk_times=None, time_unit: str = "months", title=None,
            ci: bool = False, empty_reason: str = "no patients"):
    """Several KM curves on one axis with a numbers-at-risk table (R counting) under it.

    With no fit at all (an empty subgroup) the axes say ``not estimable (empty_reason)``
    instead, so a figure of several panels still shows the others.

    >>> import matplotlib; matplotlib.use("Agg")
    >>> fits = {"A": KaplanMeier().fit([1, 3, 4], [1, 0, 1]), "B": KaplanMeier().fit([2, 5], [0, 1])}
    >>> ax = plot_km(fits, at_risk_times=[0, 2, 4], title="OS")
    >>> ax.get_xlabel()
    'Time (months)'
    >>> [t.get_text() for t in plot_km({}, title="OS").texts]
    ['not estimable (no patients)']
    """
    import matplotlib.pyplot as plt

    from ..plots.style import plot_not_estimable

    ax = ax if ax is not None else plt.subplots(figsize=(7, 5))[1]
    if not fits:
        return plot_not_estimable(empty_reason, ax=ax, title=title)
    for name, fit in fits.items():
        fit.plot(ax=ax, ci=ci, label=name)
    ax.set_xlabel(f"Time ({time_unit})")
    ax.legend(frameon=False)
    if title:
        ax.set_title(title)
    if at_risk_times is not None:
        _at_risk_table(ax, fits, at_risk_times)
        ax.figure.subplots_adjust(bottom=0.18 + 0.06 * len(fits))
    return ax


@dataclass(frozen=True)
class LogrankResult:
    """Result of :func:`logrank_test`; ``statistic``/``p_value`` are NaN with a ``reason`` if undefined.

    >>> LogrankResult(3.84, 1, 0.05).reason is None
    True
    """

    statistic: float
    df: int
    p_value: float
    observed: dict = field(default_factory=dict)
    expected: dict = field(default_factory=dict)
    reason: str | None = None


def _logrank_sums(t, e, g, k):
    """Observed, expected and hypergeometric covariance over one stratum (Mantel–Haenszel)."""
    ev_times = np.unique(t[e == 1])
    risk = np.stack([at_risk(t[g == j], ev_times) for j in range(k)], axis=1).astype(float)
    dead = np.zeros_like(risk)
    np.add.at(dead, (np.searchsorted(ev_times, t[e == 1]), g[e == 1]), 1.0)
    n, d = risk.sum(axis=1), dead.sum(axis=1)
    frac = risk / n[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(n > 1, d * (n - d) / (n - 1), 0.0)
    var = np.einsum("t,tj,jk->jk", c, frac, np.eye(k)) - np.einsum("t,tj,tk->jk", c, frac, frac)
    return dead.sum(axis=0), (frac * d[:, None]).sum(axis=0), var


def logrank_test(durations, events, groups, strata=None) -> LogrankResult:
    """Log-rank test of >= 2 groups, optionally stratified, as R ``survdiff(Surv ~ g + strata(s))``.

    Groups whose expected count is 0 are left out of the test and of ``df``, as R does.
    Groups are ordered as R orders factor levels (sorted).

    >>> r = logrank_test([1, 2, 3, 4, 5, 6], [1, 1, 0, 1, 1, 0], ["a", "b", "a", "b", "a", "b"])
    >>> r.df, round(r.p_value, 4), r.observed
    (1, 0.7857, {'a': 2.0, 'b': 2.0})
    """
    t, e = _check_survival_data(durations, events)
    if pd.isna(pd.Series(groups, dtype=object)).any() or (
            strata is not None and pd.isna(pd.Series(strata, dtype=object)).any()):
        raise ValueError("groups and strata must not be missing")
    labels, g = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    if labels.size < 2:
        raise ValueError("logrank_test needs at least 2 groups")
    s = np.zeros(t.size, int) if strata is None else np.unique(np.asarray(strata).astype(str),
                                                               return_inverse=True)[1]
    if s.size != t.size or g.size != t.size:
        raise ValueError("groups and strata must have one value per observation")
    k = labels.size
    obs, exp, var = np.zeros(k), np.zeros(k), np.zeros((k, k))
    for level in np.unique(s):
        m = s == level
        o, x, v = _logrank_sums(t[m], e[m], g[m], k)
        obs, exp, var = obs + o, exp + x, var + v
    used = exp > 0
    observed = {str(lab): float(v) for lab, v in zip(labels, obs)}
    expected = {str(lab): float(v) for lab, v in zip(labels, exp)}
    df = int(used.sum()) - 1
    if df < 1:
        return LogrankResult(np.nan, max(df, 0), np.nan, observed, expected,
                             "fewer than 2 groups with an expected number of events > 0")
    diff = (obs - exp)[used][1:]
    vv = var[np.ix_(used, used)][1:, 1:]
    try:
        chi = float(diff @ np.linalg.solve(vv, diff))
    except np.linalg.LinAlgError:
        return LogrankResult(np.nan, df, np.nan, observed, expected, "singular variance matrix")
    return LogrankResult(chi, df, float(stats.chi2.sf(chi, df)), observed, expected)


def median_followup(durations, events, method: str = "simple") -> float:
    """Median follow-up: ``simple`` = median of all observation times (the paper's);
    ``reverse_km`` = median of the KM with censoring as the event (R ``survfit(Surv(t, 1 - e) ~ 1)``).

    >>> median_followup([1, 4, 6, 8], [1, 0, 1, 0])
    5.0
    >>> median_followup([1, 4, 6, 8], [1, 0, 1, 0], method="reverse_km")
    8.0
    """
    t, e = _check_survival_data(durations, events)
    if method == "simple":
        return float(np.median(t))
    if method == "reverse_km":
        return KaplanMeier().fit(t, 1 - e).median_
    raise ValueError("method must be 'simple' or 'reverse_km'")
