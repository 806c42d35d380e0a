"""Logistic regression (maximum likelihood, Wald CI and p) with separation detection.

Fitted with statsmodels ``Logit`` (Newton–Raphson); results equal R
``glm(family = binomial)`` with ``confint.default`` (goldens in ``tests/golden/glm``).
A covariate that is constant, collinear with the intercept and covariates before it, or
missing for every patient is dropped with a ``reason`` and the others fitted, as ``glm``
gives it an NA coefficient (:mod:`cartlib.stats.design`).
Under complete or quasi-complete separation the maximum likelihood estimate does not
exist: the fitter stops at some huge coefficient, and the OR / CI / p it would give
are artefacts of the stopping rule, so they are reported as NaN with a ``reason``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from .design import all_missing_columns, estimable_columns, with_dropped_rows
from .screening import ScreenResult   # shared with the Cox screen

__all__ = ["LogisticModel", "ScreenResult", "logistic_screen"]

# A fitted probability this close to 0 or 1 means the likelihood is still rising towards
# a boundary (R warns at 10 * machine epsilon after its own stopping rule).
_BOUNDARY = 1e-8
# Under separation Newton's coefficients diverge and their SEs explode (se ~ exp(|b|/2)).
_HUGE_COEF, _HUGE_SE = 10.0, 1e3

_COLUMNS = ["coef", "se", "or", "or_lo", "or_hi", "z", "p"]


def _complete_cases(df: pd.DataFrame, outcome: str, covariates: list[str]):
    missing = [c for c in [outcome, *covariates] if c not in df.columns]
    if missing:
        raise ValueError(f"columns not in the data: {missing}")
    data = df[[outcome, *covariates]].apply(pd.to_numeric, errors="coerce")
    bad = [c for c in data.columns if (data[c].isna() & df[c].notna()).any()]
    if bad:
        raise ValueError(f"non-numeric values in {bad}")
    empty = all_missing_columns(data, covariates)
    kept = data.drop(columns=list(empty)).dropna()
    y = kept[outcome]
    if not y.isin([0, 1]).all():
        raise ValueError(f"outcome {outcome!r} must be 0/1")
    return kept, len(data) - len(kept), empty


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
    the model was fitted. Separation (statsmodels' perfect-separation signal, no
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
        kept, self.n_dropped, self.dropped = _complete_cases(df, outcome, covariates)
        self.outcome, self.covariates, self.n = outcome, covariates, len(kept)
        self.fitted_covariates = [c for c in covariates if c not in self.dropped]
        self.n_events = int(kept[outcome].sum())
        self.separation, self.reason, self.result_ = False, None, None
        if self.n_events in (0, self.n):
            return self._not_fitted("outcome constant")
        if self.fitted_covariates:
            self.fitted_covariates, aliased = estimable_columns(kept, self.fitted_covariates)
            self.dropped.update(aliased)
        if not self.fitted_covariates:
            return self._not_fitted("no covariate can be estimated")
        if self.n <= len(self.fitted_covariates) + 1:
            return self._not_fitted("too few observations")
        X = sm.add_constant(kept[self.fitted_covariates].astype(float), has_constant="add")
        if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:   # a safety net behind estimable_columns
            return self._not_fitted("covariates are collinear")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = sm.Logit(kept[outcome].astype(float), X).fit(method="newton", maxiter=100, disp=0)
            except np.linalg.LinAlgError:
                return self._not_fitted("information matrix singular (separation or collinearity)")
            except Exception as err:   # statsmodels < 0.14 raised PerfectSeparationError
                if "separation" not in str(err).lower():
                    raise
                res = None
        signals = [str(w.message) for w in caught]
        self.result_ = res
        self.summary = with_dropped_rows(self.covariates, self.dropped, self._table(res, signals))
        return self

    def _not_fitted(self, reason):
        self.reason = reason
        self.summary = with_dropped_rows(self.covariates, self.dropped, self._empty(reason))
        return self

    def _empty(self, reason):
        out = pd.DataFrame(np.nan, index=pd.Index(self.fitted_covariates, name="covariate"), columns=_COLUMNS)
        out["reason"] = reason
        return out

    def _table(self, res, signals):
        if res is None:
            self.separation, self.reason = True, "perfect separation (no finite maximum likelihood estimate)"
            return self._empty(self.reason)
        coef, se = res.params[self.fitted_covariates], res.bse[self.fitted_covariates]
        fitted = res.predict()
        at_boundary = bool(np.any((fitted < _BOUNDARY) | (fitted > 1 - _BOUNDARY)))
        # a large intercept alone is legitimate (e.g. uncentred covariates); look at the covariates
        diverging = bool(np.any((coef.abs() > _HUGE_COEF) | (se > _HUGE_SE)))
        flagged = any("separation" in s.lower() for s in signals)
        converged = bool(res.mle_retvals.get("converged", True))
        out = pd.DataFrame({"coef": coef, "se": se})
        out.index.name = "covariate"
        if flagged or not converged or (at_boundary and diverging):
            self.separation = True
            self.reason = ("complete or quasi-complete separation: fitted probabilities at 0/1, "
                           "no finite maximum likelihood estimate")
            if not converged and not (flagged or at_boundary):
                self.separation, self.reason = False, "did not converge"
            for col in _COLUMNS[2:]:
                out[col] = np.nan
            out["reason"] = self.reason
            return out
        z = stats.norm.ppf(1 - self.alpha / 2)
        out["or"] = np.exp(coef)
        out["or_lo"], out["or_hi"] = np.exp(coef - z * se), np.exp(coef + z * se)
        out["z"] = coef / se
        out["p"] = 2 * stats.norm.sf(np.abs(out["z"]))
        out["reason"] = None
        return out[[*_COLUMNS, "reason"]]


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
    rows = []
    for cov in ([covariates] if isinstance(covariates, str) else covariates):
        m = LogisticModel(alpha).fit(df, outcome, [cov])
        rows.append(m.summary.loc[[cov]].assign(n=m.n))
    table = pd.concat(rows)
    selected = [c for c in table.index if table.loc[c, "p"] < screen_p]
    return ScreenResult(table, selected, screen_p)
