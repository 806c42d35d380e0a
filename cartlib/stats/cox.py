"""Cox proportional hazards (Efron ties), univariable screen and the ``cox.zph`` PH test.

Fits follow lifelines' ``CoxPHFitter`` (its damped Newton iteration on standardised
covariates, no penalty, tightened tolerances; :mod:`cartlib.stats.efron` evaluates the Efron
likelihood in O(n log n) for it) and agree with R ``coxph(ties="efron")``; where that iteration
stops without converging, R's own Newton–Raphson decides. The Efron risk-set sums also serve
the Grambsch–Therneau test here and the Mantel–Byar score test in ``timevarying``.
A covariate that is constant, collinear with covariates before it, or missing for every patient
is dropped from the model with a ``reason`` and the others fitted, as ``coxph`` gives it an NA
coefficient (:mod:`cartlib.stats.design`). A model that cannot be estimated (no events,
monotone likelihood, no convergence) reports NaN estimates with a ``reason``, never a huge
hazard ratio.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from .design import all_missing_columns, estimable_columns, with_dropped_rows
from .efron import (NotConverged, RiskSets, efron_information_at_zero, efron_terms,  # noqa: F401 (public here too)
                    fit_standardised, newton_raphson)
from .screening import ScreenResult

__all__ = ["CoxModel", "cox_screen", "efron_terms"]

_SUMMARY_COLS = ["coef", "se", "hr", "hr_lo", "hr_hi", "z", "p", "reason"]
# lifelines stops at ~1e-7 by default; these make the iteration agree with coxph(eps=1e-12) to < 1e-7
FIT_OPTIONS = {"precision": 1e-12, "r_precision": 1e-15, "max_steps": 200}
# |coef| or SE per standard deviation of the covariate beyond which the likelihood is taken to be
# monotone (an infinite estimate): a real effect of e^15 per SD does not occur in these data, while
# a group without events gives SEs of 1e3 to 1e6 per SD.
_MAX_STD_COEF, _MAX_STD_SE = 15.0, 50.0


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


def fit_problem(X, covariates, coef, var, converged: bool = True):
    """Why a finished fit must not be reported: infinite estimates or no convergence (else None).
    ``X``: the fitted covariates' values (rows x covariates)."""
    sd = np.asarray(X, float).std(axis=0, ddof=1)
    with np.errstate(invalid="ignore"):  # a negative variance is itself the sign of a flat likelihood
        se = np.sqrt(np.diag(var))
    flat = [c for c, b, s, k in zip(covariates, coef, se, sd)
            if not np.isfinite(b * s) or abs(b) * k > _MAX_STD_COEF or s * k > _MAX_STD_SE]
    if flat:
        return f"monotone likelihood (infinite estimate) for: {', '.join(flat)}"
    if not converged:
        return "did not converge"
    return None


def summary_frame(coef, var, covariates, alpha):
    """coef, se, hr, hr_lo, hr_hi, z, Wald p from estimates and their covariance matrix."""
    z = special.ndtri(1 - alpha / 2)  # stats.norm.ppf and .sf, without their per-call checks
    se = np.sqrt(np.diag(var))
    return pd.DataFrame({
        "coef": coef, "se": se, "hr": np.exp(coef), "hr_lo": np.exp(coef - z * se),
        "hr_hi": np.exp(coef + z * se), "z": coef / se,
        "p": 2 * special.ndtr(-np.abs(coef / se)), "reason": None},
        index=pd.Index(covariates, name="covariate"))


def nan_summary(covariates, reason):
    out = pd.DataFrame(np.nan, index=pd.Index(covariates, name="covariate"), columns=_SUMMARY_COLS)
    out["reason"] = reason
    return out


def _km_left_limit(durations, events, at):
    """1 - S(t-) of the KM of (durations, events) at ``at``: the ``transform="km"`` time scale."""
    times, d = np.unique(durations[events == 1], return_counts=True)
    ordered = np.sort(durations)
    n = (ordered.size - np.searchsorted(ordered, times, side="left")).astype(float)
    d = d.astype(float)
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
        # one float array, complete rows only (R's na.omit); built column by column, as selecting
        # from a wide analysis table would copy every column first
        columns = {c: df[c].to_numpy(dtype=float, na_value=np.nan) for c in [duration_col, event_col, *covariates]}
        self.dropped = all_missing_columns(columns, covariates)
        usable = [c for c in covariates if c not in self.dropped]
        names = [duration_col, event_col, *usable]
        values = np.column_stack([columns[c] for c in names])
        values = values[~np.isnan(values).any(axis=1)]
        self.data_ = pd.DataFrame(values, columns=names)
        self.covariates, self.duration_col, self.event_col = covariates, duration_col, event_col
        t, e, position = values[:, 0], values[:, 1], {c: 2 + i for i, c in enumerate(usable)}
        self.n, self.n_events = len(values), int(e.sum())
        self.converged, self.loglik, self.params_, self.variance_ = False, np.nan, None, None
        self.fitted_covariates = usable
        reason = "no events" if self.n_events == 0 else None
        if reason is None and usable:
            X = values[:, 2:]
            # column-major, as the frame's to_numpy gives it (the same sums, to the last bit)
            self.fitted_covariates, aliased = estimable_columns(np.asfortranarray(X), usable,
                                                                efron_information_at_zero(t, e, X))
            self.dropped.update(aliased)
        if reason is None and not self.fitted_covariates:
            reason = "no covariate can be estimated"
        if reason is None:
            reason = self._fit(t, e, values[:, [position[c] for c in self.fitted_covariates]])
        self.reason = reason
        if reason is not None:
            summary = nan_summary(self.fitted_covariates, reason)
        else:
            summary = summary_frame(self.params_, self.variance_, self.fitted_covariates, self.alpha)
        self.summary = with_dropped_rows(self.covariates, self.dropped, summary)
        return self

    def _fit(self, t, e, X):
        """lifelines' damped iteration first; R's Newton–Raphson where it stops without converging."""
        try:
            coef, var, loglik, converged = fit_standardised(t, e, X, **FIT_OPTIONS)
            failure = fit_problem(X, self.fitted_covariates, coef, var, converged)
        except NotConverged:
            failure = "did not converge (ConvergenceError)"
        except np.linalg.LinAlgError:
            failure = "did not converge (LinAlgError)"
        if failure is None:
            self.params_, self.variance_, self.converged, self.loglik = coef, var, True, loglik
            return None
        # the damped iteration can stop (a matrix it cannot solve, or a runaway estimate) where
        # R's coxph converges, e.g. a small group with all its members dead: R's way decides then
        fitted = self._fit_newton(t, e, X)
        if fitted is None:
            return failure
        coef, var, loglik = fitted
        reason = fit_problem(X, self.fitted_covariates, coef, var)
        if reason is None:
            self.params_, self.variance_, self.converged, self.loglik = coef, var, True, loglik
        return reason

    @staticmethod
    def _fit_newton(t, e, X, eps: float = 1e-12, max_iter: int = 100):
        """Newton–Raphson with step halving on the Efron partial likelihood, from beta = 0, stopping
        when the log-likelihood changes by less than ``eps`` relative, as R's ``coxph`` does
        (Therneau & Grambsch 2000, sec. 3.3). Returns (coef, variance, loglik), or None when it
        does not converge."""
        risk_sets = RiskSets(t, e, X)

        def terms(beta):
            hessian, score, ll = risk_sets.derivatives(beta, shift=True)
            return ll, score, -hessian

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
