"""Logistic regression (maximum likelihood, Wald CI and p) with separation detection.

Fitted by Newton–Raphson as statsmodels ``Logit(...).fit(method="newton")`` iterates (written
out in :func:`newton_logit`, a few array operations per step instead of a model object per
fit); results equal R ``glm(family = binomial)`` with ``confint.default`` (goldens in
``tests/golden/glm``).
A covariate that is constant, collinear with the intercept and covariates before it, or
missing for every patient is dropped with a ``reason`` and the others fitted, as ``glm``
gives it an NA coefficient (:mod:`cartlib.stats.design`).
Under complete or quasi-complete separation the maximum likelihood estimate does not
exist: the fitter stops at some huge coefficient, and the OR / CI / p it would give
are artefacts of the stopping rule, so they are reported as NaN with a ``reason``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from .design import all_missing_columns, estimable_columns, with_dropped_rows
from .screening import ScreenResult   # shared with the Cox screen

__all__ = ["LogisticModel", "ScreenResult", "logistic_screen", "newton_logit"]

# A fitted probability this close to 0 or 1 means the likelihood is still rising towards
# a boundary (R warns at 10 * machine epsilon after its own stopping rule).
_BOUNDARY = 1e-8
# Under separation Newton's coefficients diverge and their SEs explode (se ~ exp(|b|/2)).
_HUGE_COEF, _HUGE_SE = 10.0, 1e3

_COLUMNS = ["coef", "se", "or", "or_lo", "or_hi", "z", "p"]


@dataclass(frozen=True)
class NewtonFit:
    """What :func:`newton_logit` found: coefficients (intercept first), their SEs, the fitted
    probabilities, whether it converged, and whether an iterate predicted every outcome."""

    params: np.ndarray
    bse: np.ndarray
    fitted: np.ndarray
    converged: bool
    perfect_prediction: bool


def newton_logit(y, X, maxiter: int = 100, tol: float = 1e-8, ridge: float = 1e-10) -> NewtonFit:
    """Logistic regression by Newton–Raphson from 0, as statsmodels' ``method="newton"``: the
    mean log-likelihood's Hessian with ``ridge`` added to its diagonal, steps until no
    coefficient moves by more than ``tol``; SEs from the inverse Hessian at the estimate.

    ``X`` includes the intercept column. Raises ``LinAlgError`` on a singular Hessian.

    >>> X = np.column_stack([np.ones(10), [1, 2, 3, 4, 5, 6, 2, 8, 3, 1]])
    >>> fit = newton_logit(np.array([0, 0, 1, 1, 0, 1, 0, 1, 1, 0.0]), X)
    >>> fit.params.round(4).tolist(), fit.converged   # R glm: -2.8712, 0.8797
    ([-2.8712, 0.8797], True)
    """
    y, X = np.asarray(y, float), np.asarray(X, float)
    nobs = y.shape[0]

    def probabilities(params):
        return 1 / (1 + np.exp(-np.dot(X, params)))

    def hessian(fitted):  # of the negative mean log-likelihood
        return np.dot(fitted * (1 - fitted) * X.T, X) / nobs

    old, params, iterations, perfect = np.inf, np.zeros(X.shape[1]), 0, False
    with np.errstate(over="ignore"):  # a separated fit drives exp(-eta) to inf: probability 0, as wanted
        fitted = probabilities(params)
        while iterations < maxiter and np.any(np.abs(params - old) > tol):
            H = hessian(fitted)
            H[np.diag_indices(H.shape[0])] += ridge
            old = params
            params = old - np.linalg.solve(H, -np.dot(y - fitted, X) / nobs)
            fitted = probabilities(params)
            # statsmodels' check after each step: np.allclose(fitted - y, 0), i.e. within 1e-8
            perfect = perfect or bool(np.all(np.abs(fitted - y) <= 1e-8))
            iterations += 1
    with np.errstate(invalid="ignore"):
        bse = np.sqrt(np.diag(np.linalg.inv(hessian(fitted)) / nobs))
    return NewtonFit(params, bse, fitted, iterations != maxiter, perfect)


def _complete_cases(df: pd.DataFrame, outcome: str, covariates: list[str]):
    """The model's columns as one float array (outcome first), complete rows only (R's na.omit),
    and the number of rows dropped and the covariates missing for every patient.

    Built column by column in NumPy: a screen fits a dozen one-covariate models on a wide
    analysis table, and selecting and filtering data frames cost far more than the fits."""
    names = [outcome, *covariates]
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise ValueError(f"columns not in the data: {missing}")
    columns, bad = [], []
    for name in names:
        column = df[name]
        if column.dtype.kind not in "biuf":   # text or objects: numbers where they parse
            numeric = pd.to_numeric(column, errors="coerce")
            if (numeric.isna() & column.notna()).any():
                bad.append(name)
            column = numeric
        columns.append(column.to_numpy(dtype=float, na_value=np.nan))
    if bad:
        raise ValueError(f"non-numeric values in {bad}")
    empty = all_missing_columns(dict(zip(covariates, columns[1:])), covariates)
    columns = [columns[0], *[v for c, v in zip(covariates, columns[1:]) if c not in empty]]
    complete = ~np.isnan(columns).any(axis=0)
    # column-major, as DataFrame.to_numpy lays a frame out: sums over rows then run in the
    # order they ran on a frame, to the last bit
    values = np.array([v[complete] for v in columns]).T
    if not np.isin(values[:, 0], (0.0, 1.0)).all():
        raise ValueError(f"outcome {outcome!r} must be 0/1")
    return values, len(df) - len(values), empty


class LogisticModel:
    """Binary logistic regression of ``outcome`` on ``covariates`` (numeric columns of a DataFrame).

    ``fit(df, outcome, covariates)`` returns self; ``summary`` is indexed by covariate
    with coef, se, or, or_lo, or_hi (Wald, ``confint.default``), z, p (Wald) and
    ``reason`` (None, or why or/CI/p are NaN). Rows with a missing value in the
    outcome or a covariate are dropped (``n_dropped``). A covariate that is then constant,
    or collinear with the intercept and covariates before it, is dropped from the model as
    ``glm`` does (NA coefficient) and the others are fitted; a covariate missing for every
    patient is dropped instead of every row, where R would stop (see
    :mod:`cartlib.stats.design`). Dropped covariates (``dropped``: name -> reason) have a
    NaN row with their reason; ``fitted_covariates`` are the others. ``reason`` is None when
    the model was fitted. Separation (an iterate that predicts every outcome, no
    convergence, or fitted probabilities at 0/1 together with a diverging coefficient)
    sets ``separation = True`` and NaN in or/CI/z/p.

    >>> df = pd.DataFrame({"y": [0, 0, 1, 1, 0, 1, 0, 1, 1, 0], "x": [1, 2, 3, 4, 5, 6, 2, 8, 3, 1]})
    >>> m = LogisticModel().fit(df, "y", ["x"])
    >>> m.summary.loc["x", ["coef", "or", "p"]].astype(float).round(4).tolist()
    [0.8797, 2.4102, 0.1222]
    >>> m = LogisticModel().fit(df.assign(k=1), "y", ["x", "k"])   # R: coef of k is NA
    >>> round(float(m.summary.loc["x", "or"]), 4), m.dropped
    (2.4102, {'k': 'k is constant in this cohort: dropped from the model, as R does'})
    >>> sep = pd.DataFrame({"y": [0, 0, 0, 1, 1, 1], "x": [1, 2, 3, 4, 5, 6]})
    >>> m = LogisticModel().fit(sep, "y", ["x"])
    >>> m.separation, m.summary.loc["x", ["or", "p"]].isna().all()
    (True, np.True_)
    """

    def __init__(self, alpha: float = 0.05):
        if not 0 < alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        self.alpha = alpha

    def fit(self, df: pd.DataFrame, outcome: str, covariates):
        covariates = [covariates] if isinstance(covariates, str) else list(covariates)
        values, self.n_dropped, self.dropped = _complete_cases(df, outcome, covariates)
        self.outcome, self.covariates, self.n = outcome, covariates, len(values)
        self.fitted_covariates = [c for c in covariates if c not in self.dropped]
        position = {c: 1 + i for i, c in enumerate(self.fitted_covariates)}
        y = values[:, 0]
        self.n_events = int(y.sum())
        self.separation, self.reason, self.result_ = False, None, None
        if self.n_events in (0, self.n):
            return self._not_fitted("outcome constant")
        if self.fitted_covariates:
            self.fitted_covariates, aliased = estimable_columns(values[:, 1:], self.fitted_covariates)
            self.dropped.update(aliased)
        if not self.fitted_covariates:
            return self._not_fitted("no covariate can be estimated")
        if self.n <= len(self.fitted_covariates) + 1:
            return self._not_fitted("too few observations")
        X = np.column_stack([np.ones(self.n), values[:, [position[c] for c in self.fitted_covariates]]])
        if np.linalg.matrix_rank(X) < X.shape[1]:   # a safety net behind estimable_columns
            return self._not_fitted("covariates are collinear")
        try:
            res = newton_logit(y, X)
        except np.linalg.LinAlgError:
            return self._not_fitted("information matrix singular (separation or collinearity)")
        self.result_ = res
        self.summary = with_dropped_rows(self.covariates, self.dropped, self._table(res))
        return self

    def _not_fitted(self, reason):
        self.reason = reason
        self.summary = with_dropped_rows(self.covariates, self.dropped, self._empty(reason))
        return self

    def _empty(self, reason):
        out = pd.DataFrame(np.nan, index=pd.Index(self.fitted_covariates, name="covariate"), columns=_COLUMNS)
        out["reason"] = reason
        return out

    def _table(self, res: NewtonFit):
        # NumPy columns, one frame at the end (column by column a frame costs milliseconds)
        coef, se = res.params[1:], res.bse[1:]
        fitted = res.fitted
        at_boundary = bool(np.any((fitted < _BOUNDARY) | (fitted > 1 - _BOUNDARY)))
        # a large intercept alone is legitimate (e.g. uncentred covariates); look at the covariates
        diverging = bool(np.any((np.abs(coef) > _HUGE_COEF) | (se > _HUGE_SE)))
        flagged, converged = res.perfect_prediction, res.converged
        index = pd.Index(self.fitted_covariates, name="covariate")
        if flagged or not converged or (at_boundary and diverging):
            self.separation = True
            self.reason = ("complete or quasi-complete separation: fitted probabilities at 0/1, "
                           "no finite maximum likelihood estimate")
            if not converged and not (flagged or at_boundary):
                self.separation, self.reason = False, "did not converge"
            return pd.DataFrame({"coef": coef, "se": se, **dict.fromkeys(_COLUMNS[2:], np.nan),
                                 "reason": self.reason}, index=index)
        z = special.ndtri(1 - self.alpha / 2)   # stats.norm.ppf and .sf without their per-call checks
        wald = coef / se
        return pd.DataFrame({"coef": coef, "se": se, "or": np.exp(coef), "or_lo": np.exp(coef - z * se),
                             "or_hi": np.exp(coef + z * se), "z": wald, "p": 2 * special.ndtr(-np.abs(wald)),
                             "reason": None}, index=index)


def logistic_screen(df: pd.DataFrame, outcome: str, covariates, screen_p: float = 0.2,
                    alpha: float = 0.05) -> ScreenResult:
    """Fit one univariable logistic model per covariate; select those with Wald p < ``screen_p``.

    Each model uses its own complete cases (column ``n``). A covariate whose p is NaN
    (separation, constant) is never selected; ``reason`` says why.

    >>> df = pd.DataFrame({"y": [0, 0, 1, 1, 0, 1, 0, 1, 1, 0], "x": [1, 2, 3, 4, 5, 6, 2, 8, 3, 1],
    ...                    "w": [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]})
    >>> res = logistic_screen(df, "y", ["x", "w"])
    >>> res.selected
    ['x']
    >>> res.table["p"].round(3).tolist()
    [0.122, 0.53]
    """
    models = [LogisticModel(alpha).fit(df, outcome, [cov])
              for cov in ([covariates] if isinstance(covariates, str) else covariates)]
    table = pd.concat([m.summary for m in models])   # one row each: the model's only covariate
    table["n"] = [m.n for m in models]
    selected = [c for c in table.index if table.loc[c, "p"] < screen_p]
    return ScreenResult(table, selected, screen_p)
