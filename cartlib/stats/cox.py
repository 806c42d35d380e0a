"""Cox proportional hazards (Efron ties), univariable screen and the ``cox.zph`` PH test.

Fits use lifelines' ``CoxPHFitter`` (no penalty, tightened Newton–Raphson tolerances) and
agree with R ``coxph(ties="efron")``; the Efron risk-set sums needed for the
Grambsch–Therneau test (and the Mantel–Byar score test in ``timevarying``) are computed here.
A covariate that is constant, collinear with covariates before it, or missing for every patient
is dropped from the model with a ``reason`` and the others fitted, as ``coxph`` gives it an NA
coefficient (:mod:`cartlib.stats.design`). A model that cannot be estimated (no events,
monotone likelihood, no convergence) reports NaN estimates with a ``reason``, never a huge
hazard ratio.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .design import all_missing_columns, estimable_columns, with_dropped_rows
from .screening import ScreenResult

__all__ = ["CoxModel", "cox_screen", "efron_terms"]

_SUMMARY_COLS = ["coef", "se", "hr", "hr_lo", "hr_hi", "z", "p", "reason"]
# lifelines stops at ~1e-7 by default; these make it agree with coxph(eps=1e-12) to < 1e-7
FIT_OPTIONS = {"precision": 1e-12, "r_precision": 1e-15, "max_steps": 200}
# |coef| or SE per standard deviation of the covariate beyond which the likelihood is taken to be
# monotone (an infinite estimate): a real effect of e^15 per SD does not occur in these data, while
# a group without events gives SEs of 1e3 to 1e6 per SD.
_MAX_STD_COEF, _MAX_STD_SE = 15.0, 50.0


def efron_terms(start, stop, event, X, beta):
    """Efron log partial likelihood, and per distinct event time its score and information.

    Counting-process risk sets: a row is at risk at t when start < t <= stop (use
    ``start = -inf`` for right-censored data). Returns ``(loglik, times, scores, infos)``
    with ``scores`` of shape (k, p) and ``infos`` (k, p, p), one per event time; the total
    score is ``scores.sum(0)`` and the information ``infos.sum(0)``. Written from Efron
    (1977) and Therneau & Grambsch (2000, sec. 3.3): the d tied events at t are averaged over
    d risk sets where a fraction r/d (r = 0..d-1) of the events' weight is removed.

    >>> ll, times, u, i = efron_terms([-np.inf] * 3, [1, 2, 3], [1, 1, 0], [[0.0], [1.0], [1.0]], [0.0])
    >>> round(float(ll), 6), times.tolist(), u.sum(0).round(6).tolist()  # R loglik: -1.791759
    (-1.791759, [1.0, 2.0], [-0.666667])
    """
    start, stop = np.asarray(start, float), np.asarray(stop, float)
    event = np.asarray(event, float)
    X = np.asarray(X, float).reshape(stop.size, -1)
    eta = X @ np.asarray(beta, float)
    w = np.exp(eta - eta.max())  # scaling cancels in every ratio; the loglik adds it back
    times = np.unique(stop[event == 1])
    p = X.shape[1]
    scores, infos = np.zeros((times.size, p)), np.zeros((times.size, p, p))
    loglik = 0.0
    for k, t in enumerate(times):
        risk = (start < t) & (stop >= t)
        dead = risk & (stop == t) & (event == 1)
        d = dead.sum()
        s0, s1 = w[risk].sum(), w[risk] @ X[risk]
        s2 = (X[risk] * w[risk, None]).T @ X[risk]
        d0, d1 = w[dead].sum(), w[dead] @ X[dead]
        d2 = (X[dead] * w[dead, None]).T @ X[dead]
        frac = np.arange(d)[:, None] / d
        r0 = s0 - frac[:, 0] * d0
        means = (s1[None, :] - frac * d1[None, :]) / r0[:, None]
        second = (s2[None] - frac[:, :, None] * d2[None]) / r0[:, None, None]
        scores[k] = X[dead].sum(0) - means.sum(0)
        infos[k] = (second - means[:, :, None] * means[:, None, :]).sum(0)
        with np.errstate(divide="ignore"):  # an empty risk set gives -inf, which the caller refuses
            loglik += eta[dead].sum() - np.log(r0).sum() - d * eta.max()
    return loglik, times, scores, infos


def efron_information_at_zero(durations, events, X):
    """The Efron information matrix at beta = 0 for right-censored data, in O(n log n).

    Equal to ``efron_terms(-inf, durations, events, X, 0)[3].sum(0)``, which loops over event
    times with a pass over every row each (quadratic in n: minutes for 20,000 patients); here
    the risk-set sums come from reverse cumulative sums over rows sorted by time, and the d
    tied deaths at a time are expanded to the d Efron risk sets at once.

    >>> X = [[0.0], [1.0], [1.0], [0.0]]
    >>> i = efron_information_at_zero([1, 2, 2, 3], [1, 1, 1, 0], X)
    >>> ref = efron_terms([-np.inf] * 4, [1, 2, 2, 3], [1, 1, 1, 0], X, [0.0])[3].sum(0)
    >>> bool(np.allclose(i, ref, rtol=1e-12, atol=1e-14))
    True
    """
    stop, event = np.asarray(durations, float), np.asarray(events, float)
    X = np.asarray(X, float).reshape(stop.size, -1)
    order = np.argsort(stop, kind="stable")
    stop, event, X = stop[order], event[order], X[order]
    outer = X[:, :, None] * X[:, None, :]
    # at-risk sums for "time >= stop[i]": suffix sums from row i on (one extra zero row at the end)
    suffix1 = np.vstack([np.cumsum(X[::-1], axis=0)[::-1], np.zeros((1, X.shape[1]))])
    suffix2 = np.concatenate([np.cumsum(outer[::-1], axis=0)[::-1], np.zeros((1,) + outer.shape[1:])])
    dead = event == 1
    times, which = np.unique(stop[dead], return_inverse=True)
    first = np.searchsorted(stop, times, side="left")
    s0, s1, s2 = stop.size - first, suffix1[first], suffix2[first]
    d0 = np.bincount(which, minlength=times.size).astype(float)
    d1 = np.zeros((times.size, X.shape[1]))
    np.add.at(d1, which, X[dead])
    d2 = np.zeros((times.size,) + outer.shape[1:])
    np.add.at(d2, which, outer[dead])
    # one row per death: the r-th of the d tied deaths removes r/d of their weight from the risk set
    k = np.repeat(np.arange(times.size), d0.astype(int))
    r = np.arange(k.size) - np.repeat(np.cumsum(d0) - d0, d0.astype(int))
    frac = r / d0[k]
    r0 = s0[k] - frac * d0[k]
    means = (s1[k] - frac[:, None] * d1[k]) / r0[:, None]
    second = (s2[k] - frac[:, None, None] * d2[k]) / r0[:, None, None]
    return (second - means[:, :, None] * means[:, None, :]).sum(0)


def newton_raphson(terms, beta, max_iter=100, accept_eps=1e-12, done_eps=1e-12, halvings=40):
    """Maximise a log-likelihood by Newton–Raphson with step halving, as R's ``coxph`` iterates
    (Therneau & Grambsch 2000, sec. 3.3; hand-written: lifelines' fitter has no hook for it).

    ``terms(beta) -> (loglik, score, information)``. A step is halved (at most ``halvings``
    times) until the log-likelihood is finite and not lower than before (``accept_eps``
    relative); the iteration stops when it changes by at most ``done_eps`` relative. Returns
    ``(beta, loglik, information)`` there, or None (a singular information matrix, or no
    convergence in ``max_iter`` steps).

    >>> f = lambda b: (3 - float(((b - 2) ** 2).sum()), -2 * (b - 2), 2 * np.eye(1))
    >>> beta, ll, _ = newton_raphson(f, np.zeros(1))
    >>> beta.tolist(), ll
    ([2.0], 3.0)
    """
    ll, score, info = terms(beta)
    for _ in range(max_iter):
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            return None
        for _halving in range(halvings):
            new_ll, new_score, new_info = terms(beta + step)
            if np.isfinite(new_ll) and new_ll >= ll - accept_eps * abs(ll):
                break
            step = step / 2
        beta = beta + step
        done = abs(new_ll - ll) <= done_eps * abs(new_ll)
        ll, score, info = new_ll, new_score, new_info
        if done:
            return beta, ll, info
    return None


def degenerate_reason(data: pd.DataFrame, covariates, n_events: int):
    """Why a Cox model on ``data`` cannot be estimated before trying (None if it can)."""
    if n_events == 0:
        return "no events"
    constant = [c for c in covariates if data[c].nunique() < 2]
    if constant:
        return f"covariate(s) constant: {', '.join(constant)}"
    centred = data[covariates].to_numpy() - data[covariates].mean().to_numpy()
    if np.linalg.matrix_rank(centred) < len(covariates):
        return "covariates are collinear"
    return None


def fit_problem(data: pd.DataFrame, covariates, coef, var, caught_warnings):
    """Why a finished fit must not be reported: infinite estimates or no convergence (else None)."""
    from lifelines.exceptions import ConvergenceWarning

    sd = data[covariates].std().to_numpy()
    with np.errstate(invalid="ignore"):  # a negative variance is itself the sign of a flat likelihood
        se = np.sqrt(np.diag(var))
    flat = [c for c, b, s, k in zip(covariates, coef, se, sd)
            if not np.isfinite(b * s) or abs(b) * k > _MAX_STD_COEF or s * k > _MAX_STD_SE]
    if flat:
        return f"monotone likelihood (infinite estimate) for: {', '.join(flat)}"
    if any(issubclass(w.category, ConvergenceWarning) and "failed" in str(w.message)
           for w in caught_warnings):
        return "did not converge"
    return None


def summary_frame(coef, var, covariates, alpha):
    """coef, se, hr, hr_lo, hr_hi, z, Wald p from estimates and their covariance matrix."""
    z = stats.norm.ppf(1 - alpha / 2)
    se = np.sqrt(np.diag(var))
    return pd.DataFrame({
        "coef": coef, "se": se, "hr": np.exp(coef), "hr_lo": np.exp(coef - z * se),
        "hr_hi": np.exp(coef + z * se), "z": coef / se,
        "p": 2 * stats.norm.sf(np.abs(coef / se)), "reason": None},
        index=pd.Index(covariates, name="covariate"))


def nan_summary(covariates, reason):
    out = pd.DataFrame(np.nan, index=pd.Index(covariates, name="covariate"), columns=_SUMMARY_COLS)
    out["reason"] = reason
    return out


def _km_left_limit(durations, events, at):
    """1 - S(t-) of the KM of (durations, events) at ``at``: the ``transform="km"`` time scale."""
    times = np.unique(durations[events == 1])
    n = np.array([(durations >= u).sum() for u in times], float)
    d = np.array([((durations == u) & (events == 1)).sum() for u in times], float)
    surv = np.r_[1.0, np.cumprod(1 - d / n)]
    return 1.0 - surv[np.searchsorted(times, at, side="left")]


class CoxModel:
    """Cox proportional hazards model with Efron ties, as R ``coxph(ties="efron")``.

    ``summary`` (indexed by covariate, in the order given): coef, se, hr, hr_lo, hr_hi, z,
    p (Wald), reason. Also ``converged``, ``reason`` (None when the model was fitted),
    ``loglik``, ``n``, ``n_events``, ``fitted_covariates`` and ``dropped`` (covariate ->
    reason). Rows with a missing value in any model column are dropped (R's ``na.omit``).
    A covariate that is then constant, or collinear with covariates before it, is dropped from
    the model as ``coxph`` does (NA coefficient; ``cox.zph`` leaves it out too) and the others
    are fitted; a covariate missing for every patient is dropped instead of every row, where
    R would stop (see :mod:`cartlib.stats.design`). A dropped covariate's row is NaN with its
    reason.

    >>> df = pd.DataFrame({"t": [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "e": [1, 1, 1, 1, 0, 1, 1, 1, 0, 1],
    ...                    "x": [1, 1, 1, 0, 1, 0, 1, 0, 0, 0]})
    >>> m = CoxModel().fit(df, "t", "e", ["x"])
    >>> m.summary.loc["x", ["hr", "p"]].astype(float).round(4).tolist()  # R: 4.145113, 0.1094
    [4.1451, 0.1094]
    >>> CoxModel().fit(df.assign(e=0), "t", "e", ["x"]).reason
    'no events'
    >>> m = CoxModel().fit(df.assign(k=0), "t", "e", ["x", "k"])   # R: coef of k is NA
    >>> m.summary.loc["x", "hr"].round(4), m.summary.loc["k", "reason"]
    (np.float64(4.1451), 'k is constant in this cohort: dropped from the model, as R does')
    """

    def __init__(self, ties: str = "efron", alpha: float = 0.05):
        if ties != "efron":
            raise ValueError("only ties='efron' is implemented")
        self.ties, self.alpha = ties, alpha

    def fit(self, df: pd.DataFrame, duration_col: str, event_col: str, covariates) -> "CoxModel":
        """Fit the model on ``df[covariates]`` (numeric columns); returns self."""
        covariates = list(covariates)
        if not covariates:
            raise ValueError("at least one covariate is needed")
        missing = [c for c in [duration_col, event_col, *covariates] if c not in df.columns]
        if missing:
            raise ValueError(f"columns not in the data: {missing}")
        self.dropped = all_missing_columns(df, covariates)
        usable = [c for c in covariates if c not in self.dropped]
        data = df[[duration_col, event_col, *usable]].astype(float).dropna()
        self.covariates, self.duration_col, self.event_col = covariates, duration_col, event_col
        self.data_ = data.reset_index(drop=True)
        self.n, self.n_events = len(data), int(data[event_col].sum())
        self.converged, self.loglik, self.params_, self.variance_ = False, np.nan, None, None
        self.fitted_covariates = usable
        reason = "no events" if self.n_events == 0 else None
        if reason is None and usable:
            self.fitted_covariates, aliased = estimable_columns(data, usable, self._information_at_zero(usable))
            self.dropped.update(aliased)
        if reason is None and not self.fitted_covariates:
            reason = "no covariate can be estimated"
        if reason is None:
            reason = self._fit_lifelines(data[[duration_col, event_col, *self.fitted_covariates]])
        self.reason = reason
        if reason is not None:
            summary = nan_summary(self.fitted_covariates, reason)
        else:
            summary = summary_frame(self.params_, self.variance_, self.fitted_covariates, self.alpha)
        self.summary = with_dropped_rows(self.covariates, self.dropped, summary)
        return self

    def _information_at_zero(self, covariates):
        """Efron information matrix at beta = 0: the cross-products ``coxph`` tests for singularity."""
        return efron_information_at_zero(self.data_[self.duration_col].to_numpy(), self.data_[self.event_col].to_numpy(),
                                         self.data_[covariates].to_numpy(float))

    def _fit_lifelines(self, data):
        from lifelines import CoxPHFitter
        from lifelines.exceptions import ConvergenceError

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                cph = CoxPHFitter(penalizer=0.0, alpha=self.alpha).fit(
                    data, self.duration_col, self.event_col, fit_options=FIT_OPTIONS)
                failure = None
            except (ConvergenceError, np.linalg.LinAlgError) as err:
                cph, failure = None, f"did not converge ({type(err).__name__})"
        if cph is not None:
            coef = cph.params_[self.fitted_covariates].to_numpy()
            var = cph.variance_matrix_.loc[self.fitted_covariates, self.fitted_covariates].to_numpy()
            failure = fit_problem(data, self.fitted_covariates, coef, var, caught)
            if failure is None:
                self.params_, self.variance_, self.converged = coef, var, True
                self.loglik = float(cph.log_likelihood_)
                return None
        # lifelines' own stopping rule can fail (an exception, or a "failed" ConvergenceWarning
        # with a runaway estimate) where R's coxph converges, e.g. a small group with all its
        # members dead; R's Newton-Raphson decides then
        fitted = self._fit_newton(data)
        if fitted is None:
            return failure
        coef, var, loglik = fitted
        reason = fit_problem(data, self.fitted_covariates, coef, var, [])
        if reason is None:
            self.params_, self.variance_, self.converged, self.loglik = coef, var, True, loglik
        return reason

    def _fit_newton(self, data, eps: float = 1e-12, max_iter: int = 100):
        """Newton–Raphson with step halving on the Efron partial likelihood, from beta = 0, stopping
        when the log-likelihood changes by less than ``eps`` relative, as R's ``coxph`` does
        (Therneau & Grambsch 2000, sec. 3.3; hand-written: only the fallback of ``_fit_lifelines``).
        Returns (coef, variance, loglik), or None when it does not converge."""
        start = np.full(len(data), -np.inf)
        t, e = data[self.duration_col].to_numpy(), data[self.event_col].to_numpy()
        X = data[self.fitted_covariates].to_numpy(float)

        def terms(beta):
            ll, _, u, info = efron_terms(start, t, e, X, beta)
            return ll, u.sum(0), info.sum(0)

        found = newton_raphson(terms, np.zeros(X.shape[1]), max_iter=max_iter, accept_eps=eps, done_eps=eps)
        if found is None:
            return None
        beta, ll, info = found
        try:
            return beta, np.linalg.inv(info), float(ll)
        except np.linalg.LinAlgError:
            return None

    def zph(self, transform: str = "km") -> pd.DataFrame:
        """Grambsch–Therneau test of proportional hazards, as R ``cox.zph(fit, transform="km")``.

        Score test, at the fitted coefficients, for adding x·g(t) terms, g = 1 - S(t-) (KM,
        left-continuous) centred over the events, using the full information matrix of the
        augmented model (the survival >= 3.0 algorithm; Grambsch & Therneau 1994, Therneau &
        Grambsch 2000 sec. 6.2). Rows: each fitted covariate (df 1; a dropped one is left
        out, as in R) and GLOBAL (df = p); every covariate, NaN, when the model was not fitted.

        >>> df = pd.DataFrame({"t": [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "e": [1, 1, 1, 1, 0, 1, 1, 1, 0, 1],
        ...                    "x": [1, 1, 1, 0, 1, 0, 1, 0, 0, 0]})
        >>> CoxModel().fit(df, "t", "e", ["x"]).zph()["chisq"].round(6).tolist()  # R: 0.2275175
        [0.227518, 0.227518]
        """
        if transform != "km":
            raise ValueError("only transform='km' is implemented")
        if self.reason is not None:
            rows = [*self.covariates, "GLOBAL"]
            out = pd.DataFrame({"chisq": np.nan, "df": np.nan, "p": np.nan}, index=rows)
            out["reason"] = self.reason
            return out
        t = self.data_[self.duration_col].to_numpy()
        e = self.data_[self.event_col].to_numpy()
        X = self.data_[self.fitted_covariates].to_numpy()
        _, times, scores, infos = efron_terms(np.full(t.size, -np.inf), t, e, X, self.params_)
        g_obs = _km_left_limit(t, e, t)
        g = _km_left_limit(t, e, times) - g_obs[e == 1].mean()
        return _zph_tests(scores, infos, g, [*self.fitted_covariates, "GLOBAL"])


def _zph_tests(scores, infos, g, rows):
    """Score tests for the x·g(t) terms given per-time Efron scores/informations (see zph)."""
    p = scores.shape[1]
    u = np.r_[np.zeros(p), (g[:, None] * scores).sum(0)]
    a = infos.sum(0)
    b = (g[:, None, None] * infos).sum(0)
    c = (g[:, None, None] ** 2 * infos).sum(0)
    imat = np.block([[a, b], [b, c]])
    tests = [np.r_[np.arange(p), p + j] for j in range(p)] + [np.arange(2 * p)]
    chisq, reasons = [], []
    for keep in tests:
        try:
            chisq.append(float(u[keep] @ np.linalg.solve(imat[np.ix_(keep, keep)], u[keep])))
            reasons.append(None)
        except np.linalg.LinAlgError:  # e.g. g(t) constant over the event times
            chisq.append(np.nan)
            reasons.append("singular information matrix")
    out = pd.DataFrame({"chisq": chisq, "df": [1] * p + [p]}, index=rows)
    out["p"] = stats.chi2.sf(out["chisq"], out["df"])
    out["reason"] = reasons
    return out


def cox_screen(df: pd.DataFrame, duration_col: str, event_col: str, covariates, screen_p: float = 0.2,
               alpha: float = 0.05) -> ScreenResult:
    """Univariable Cox models, one per covariate; returns a :class:`ScreenResult`.

    ``.table`` is indexed by covariate with coef, se, hr, hr_lo, hr_hi, z, p, reason;
    ``.selected`` lists the covariates with p < ``screen_p`` (the paper's entry rule), in
    the given order. A covariate whose model cannot be estimated (e.g. constant: R gives NA)
    has NaN with a ``reason`` and is not selected.

    >>> df = pd.DataFrame({"t": [2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "e": [1, 1, 1, 1, 0, 1, 1, 1, 0, 1],
    ...                    "x": [1, 1, 1, 0, 1, 0, 1, 0, 0, 0], "k": 1})
    >>> res = cox_screen(df, "t", "e", ["x", "k"])
    >>> res.selected, res.table.loc["k", "reason"]
    (['x'], 'k is constant in this cohort: dropped from the model, as R does')
    """
    frames = [CoxModel(alpha=alpha).fit(df, duration_col, event_col, [c]).summary for c in covariates]
    results = pd.concat(frames) if frames else nan_summary([], None)
    selected = [c for c in covariates if results.loc[c, "p"] < screen_p]
    return ScreenResult(results, selected, screen_p)
