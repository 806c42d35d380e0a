"""HSCT after CAR-T as a time-varying exposure: start/stop data, Cox, Mantel–Byar,
Simon–Makuch curves and the landmark method.

The paper treats HSCT as time-fixed (``hsct_after``), which credits transplanted patients
with the time they survived before HSCT (immortal-time bias); these are the usual
corrections. Results agree with R ``coxph(Surv(start, stop, event) ~ hsct)`` and
``survfit(Surv(start, stop, event) ~ hsct)`` on the split data (goldens in
``tests/golden/survival``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from cartlib.stats.cox import FIT_OPTIONS, degenerate_reason, fit_problem, nan_summary, summary_frame
from cartlib.stats.efron import NotConverged, efron_terms, fit_standardised

__all__ = ["to_start_stop", "TimeVaryingCox", "MantelByarResult", "mantel_byar_test",
           "SimonMakuch", "landmark"]


def to_start_stop(durations, events, exposure_day, ids=None, exposure_name: str = "hsct") -> pd.DataFrame:
    """Split each patient's follow-up at the exposure day (as R ``tmerge(..., tdc(day))``).

    A patient exposed at day h with 0 < h < T gets rows (0, h] unexposed and (h, T] exposed
    (the event on the last row); h <= 0 means exposed from the start; h >= T or missing
    means never exposed. Columns: ``id, start, stop, event, <exposure_name>``.

    >>> to_start_stop([10, 8], [1, 0], [4, None], ids=["a", "b"]).to_numpy().tolist()
    [['a', 0.0, 4.0, 0, 0], ['a', 4.0, 10.0, 1, 1], ['b', 0.0, 8.0, 0, 0]]
    """
    t = np.asarray(durations, dtype=float)
    e = np.asarray(events, dtype=int)
    h = pd.to_numeric(pd.Series(exposure_day, dtype=object), errors="coerce").to_numpy(dtype=float)
    ids = np.arange(1, t.size + 1) if ids is None else np.asarray(ids)
    if not (t.size == e.size == h.size == ids.size):
        raise ValueError("durations, events, exposure_day and ids must have the same length")
    if (t <= 0).any() or np.isnan(t).any():
        raise ValueError("start/stop data need durations > 0 (an interval (0, 0] is empty)")
    split = ~np.isnan(h) & (h > 0) & (h < t)
    from_start = ~np.isnan(h) & (h <= 0)
    before = pd.DataFrame({"id": ids[split], "start": 0.0, "stop": h[split], "event": 0,
                           exposure_name: 0})
    after = pd.DataFrame({"id": ids[split], "start": h[split], "stop": t[split], "event": e[split],
                          exposure_name: 1})
    whole = pd.DataFrame({"id": ids[~split], "start": 0.0, "stop": t[~split], "event": e[~split],
                          exposure_name: from_start[~split].astype(int)})
    order = {v: i for i, v in enumerate(ids)}
    out = pd.concat([before, after, whole], ignore_index=True)
    out["_o"] = out["id"].map(order)
    return out.sort_values(["_o", "start"], kind="stable").drop(columns="_o").reset_index(drop=True)


def _columns(df, cols):
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"columns not in the data: {missing}")
    return df[list(cols)]


class TimeVaryingCox:
    """Cox model on start/stop data (Efron ties), as R ``coxph(Surv(start, stop, event) ~ ...)``.

    Same results attributes as :class:`cartlib.stats.cox.CoxModel` (``summary``, ``converged``,
    ``reason``, ``loglik``, ``n`` rows, ``n_events``).

    >>> ss = to_start_stop([5, 8, 3, 9, 12, 4, 7, 10], [1, 1, 1, 0, 1, 1, 0, 1],
    ...                    [2, None, None, 4, 6, None, 1, 3])
    >>> m = TimeVaryingCox().fit(ss, ["hsct"])
    >>> round(float(m.summary.loc["hsct", "hr"]), 4)  # R coxph: 0.25122276
    0.2512
    """

    def __init__(self, alpha: float = 0.05):
        self.alpha = alpha

    def fit(self, start_stop: pd.DataFrame, covariates=("hsct",), start_col: str = "start",
            stop_col: str = "stop", event_col: str = "event", id_col: str = "id") -> "TimeVaryingCox":
        """Fit on rows (start, stop] with the event at ``stop``; returns self.

        The iteration is that of lifelines' ``CoxTimeVaryingFitter`` (standardised covariates,
        damped Newton steps; :func:`cartlib.stats.efron.fit_standardised`)."""
        covariates = list(covariates)
        cols = [id_col, start_col, stop_col, event_col, *covariates]
        data = _columns(start_stop, cols).dropna().reset_index(drop=True)
        data[covariates] = data[covariates].astype(float)
        self.covariates, self.data_ = covariates, data
        self.cols_ = (start_col, stop_col, event_col)
        self.n, self.n_events = len(data), int(data[event_col].sum())
        self.converged, self.loglik = False, np.nan
        reason = degenerate_reason(data, covariates, self.n_events)
        if reason is None:
            try:
                X = data[covariates].to_numpy(float)
                coef, var, loglik, converged = fit_standardised(
                    data[stop_col].to_numpy(float), data[event_col].to_numpy(float), X,
                    start=data[start_col].to_numpy(float), **FIT_OPTIONS)
                reason = fit_problem(X, covariates, coef, var, converged)
            except NotConverged:
                reason = "did not converge (ConvergenceError)"
            except np.linalg.LinAlgError:
                reason = "did not converge (LinAlgError)"
        self.reason = reason
        if reason is not None:
            self.summary = nan_summary(covariates, reason)
            return self
        self.converged, self.loglik = True, loglik
        self.summary = summary_frame(coef, var, covariates, self.alpha)
        return self


@dataclass(frozen=True)
class MantelByarResult:
    """Score test of a time-varying exposure; NaN with a ``reason`` when it cannot be computed.

    >>> MantelByarResult(float("nan"), 1, float("nan"), "no events").reason
    'no events'
    """

    statistic: float
    df: int
    p_value: float
    reason: str | None = None


def mantel_byar_test(start_stop: pd.DataFrame, exposure_col: str = "hsct", start_col: str = "start",
                     stop_col: str = "stop", event_col: str = "event") -> MantelByarResult:
    """Mantel–Byar test: the score (log-rank) test at beta = 0 of the time-varying Cox model,
    as R ``summary(coxph(Surv(start, stop, event) ~ hsct))$sctest`` (Efron ties).

    >>> ss = to_start_stop([5, 8, 3, 9, 12, 4, 7, 10], [1, 1, 1, 0, 1, 1, 0, 1],
    ...                    [2, None, None, 4, 6, None, 1, 3])
    >>> round(mantel_byar_test(ss).p_value, 4)  # R sctest: 0.2326746
    0.2327
    """
    data = _columns(start_stop, [start_col, stop_col, event_col, exposure_col]).dropna()
    if data[event_col].sum() == 0:
        return MantelByarResult(np.nan, 1, np.nan, "no events")
    _, _, scores, infos = efron_terms(data[start_col], data[stop_col], data[event_col],
                                      data[[exposure_col]], [0.0])
    u, info = scores.sum(), infos.sum()
    if info <= 0:
        return MantelByarResult(np.nan, 1, np.nan, "no variance: exposure constant in every risk set")
    chi = float(u * u / info)
    return MantelByarResult(chi, 1, float(stats.chi2.sf(chi, 1)))


class SimonMakuch:
    """Simon–Makuch (1984) survival curves for a time-varying exposure.

    A product-limit estimator where the risk set at t of each curve is the rows of that
    exposure with start < t <= stop, so patients move from the unexposed to the exposed
    curve at their exposure time (R: ``survfit(Surv(start, stop, event) ~ hsct)`` on the
    split data). ``curves_`` maps exposure value (0, 1) -> DataFrame (time, n_risk, n_event,
    survival), one row per distinct stop time of that exposure.

    >>> sm = SimonMakuch().fit([5, 8, 3, 9], [1, 1, 1, 0], [2, None, None, 4])
    >>> sm.curves_[1][["time", "n_risk", "survival"]].to_numpy().tolist()
    [[5.0, 2.0, 0.5], [9.0, 1.0, 0.5]]
    """

    def fit(self, durations, events, exposure_day) -> "SimonMakuch":
        """Split follow-up at the exposure day (see :func:`to_start_stop`) and fit; returns self."""
        return self.fit_start_stop(to_start_stop(durations, events, exposure_day))

    def fit_start_stop(self, start_stop: pd.DataFrame, exposure_col: str = "hsct",
                       start_col: str = "start", stop_col: str = "stop",
                       event_col: str = "event") -> "SimonMakuch":
        """Estimate one curve per exposure value from start/stop rows; returns self.

        >>> ss = to_start_stop([5, 8, 3, 9], [1, 1, 1, 0], [2, None, None, 4])
        >>> SimonMakuch().fit_start_stop(ss).curves_[0]["n_risk"].tolist()
        [4.0, 3.0, 2.0, 1.0]
        """
        data = _columns(start_stop, [start_col, stop_col, event_col, exposure_col]).dropna()
        self.exposure_col, self.curves_ = exposure_col, {}
        for value, grp in data.groupby(exposure_col):
            start, stop = grp[start_col].to_numpy(float), grp[stop_col].to_numpy(float)
            event = grp[event_col].to_numpy(int)
            times = np.unique(stop)
            # at risk at t (start < t <= stop): rows with stop >= t less those with start >= t,
            # counted by sorting; a row with start >= stop is an empty interval, never at risk
            valid = start < stop
            n_risk = (np.searchsorted(np.sort(start[valid]), times, side="left")
                      - np.searchsorted(np.sort(stop[valid]), times, side="left")).astype(float)
            n_event = np.bincount(np.searchsorted(times, stop[event == 1]), minlength=times.size).astype(float)
            self.curves_[int(value)] = pd.DataFrame({
                "time": times, "n_risk": n_risk, "n_event": n_event,
                "survival": np.cumprod(1 - n_event / n_risk)})
        return self

    def plot(self, ax=None, labels: dict | None = None):
        """Step curves from S(0) = 1, one per exposure value; returns ax.

        >>> import matplotlib; matplotlib.use("Agg")
        >>> ax = SimonMakuch().fit([5, 8, 3, 9], [1, 1, 1, 0], [2, None, None, 4]).plot()
        >>> [line.get_label() for line in ax.lines]
        ['before or without HSCT', 'after HSCT']
        """
        import matplotlib.pyplot as plt

        ax = ax if ax is not None else plt.subplots(figsize=(6, 4))[1]
        name = self.exposure_col.upper()
        labels = {0: f"before or without {name}", 1: f"after {name}", **(labels or {})}
        for value, curve in self.curves_.items():
            ax.step(np.r_[0.0, curve["time"]], np.r_[1.0, curve["survival"]], where="post",
                    label=labels[value])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("Survival probability (Simon–Makuch)")
        ax.legend(frameon=False)
        return ax


def landmark(df: pd.DataFrame, day: float, duration_col: str = "os_days", event_col: str = "os_event",
             exposure_col: str = "hsct_day", exposed_col: str = "hsct_by_landmark") -> pd.DataFrame:
    """Landmark data set at ``day``: patients still at risk after the landmark
    (``duration > day``, hence alive and event-free at it), ``duration_col`` reset to the
    time since the landmark, and ``exposed_col`` = 1 if the exposure (HSCT) happened on or
    before the landmark day, else 0. Other columns are kept; the index is kept.

    >>> d = pd.DataFrame({"os_days": [50, 200, 300], "os_event": [1, 0, 1], "hsct_day": [20, 90, None]})
    >>> landmark(d, 100)[["os_days", "hsct_by_landmark"]].to_numpy().tolist()
    [[100.0, 1.0], [200.0, 0.0]]
    """
    if day < 0:
        raise ValueError("the landmark day must be >= 0")
    _columns(df, [duration_col, event_col, exposure_col])
    out = df[df[duration_col] > day].copy()
    h = pd.to_numeric(out[exposure_col], errors="coerce")
    out[exposed_col] = (h.notna() & (h <= day)).astype(int)
    out[duration_col] = out[duration_col].astype(float) - day
    return out
