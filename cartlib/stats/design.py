"""Which covariates of a regression can be estimated: R's handling of degenerate columns.

R's ``coxph`` and ``glm`` do not give up on a model with a useless column: a covariate that
is constant, or a linear combination of covariates before it in the formula ("aliased"), gets
an ``NA`` coefficient and the others are fitted as if it were absent. The Cox and logistic
fitters of :mod:`cartlib.stats` do the same through :func:`estimable_columns`, and report the
dropped covariate's estimates as missing with a ``reason``.

A covariate missing for every patient is dropped too (:func:`all_missing_columns`). R would
instead drop every row (``na.action = na.omit`` removes rows, never columns) and stop with
"no (non-missing) observations"; dropping the column is the defensible reading of that
model, since such a covariate carries no information, and it gives the fit R gives for the
formula without it. A covariate missing for only some patients removes those rows, as in R.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ALIAS_TOLERANCE", "all_missing_columns", "estimable_columns"]

# A covariate is aliased when regressing it on the covariates kept before it leaves less than
# this fraction of its variance (R^2 > 1 - 1e-9). Exactly dependent columns leave ~1e-16, real
# covariates far more. R's thresholds are of another form (coxph: a Cholesky tolerance of
# eps^0.75 ~ 1.8e-12; glm: a QR tolerance of min(1e-7, epsilon / 1000) on column norms) and
# find the same exact aliases; a variance ratio computed from cross-products, as here, cannot
# resolve much below 1e-12, hence the looser threshold, on a scale-free measure.
ALIAS_TOLERANCE = 1e-9
# Coefficients (in standard-deviation units) below this do not count as part of the alias.
_PART_OF_ALIAS = 1e-6

DROPPED = "dropped from the model, as R does"


def all_missing_columns(data, columns) -> dict[str, str]:
    """Columns of ``data`` (a DataFrame, or a mapping name -> float array) missing in every row,
    with the reason they are left out of the model.

    >>> all_missing_columns(pd.DataFrame({"a": [1, 2], "b": [None, None]}), ["a", "b"])
    {'b': 'b is missing for every patient in this cohort: dropped from the model (R would keep no rows)'}
    """
    return {c: f"{c} is missing for every patient in this cohort: dropped from the model (R would keep no rows)"
            for c in columns if _all_missing(data[c])}


def _all_missing(column) -> bool:
    if isinstance(column, np.ndarray):
        return bool(np.isnan(column).all())
    return bool(column.isna().all())


def estimable_columns(data, columns, gram=None, tolerance: float = ALIAS_TOLERANCE):
    """Split ``columns`` into those a regression can estimate and those it must drop, in order.

    ``data`` is a DataFrame, or a float array whose columns are ``columns`` (a fitter that
    already holds its complete cases as an array passes that, column-major as a frame gives it).

    A column constant in ``data`` is dropped; so is one whose variance, given the columns kept
    before it, is below ``tolerance`` of its own (the earlier column wins, as R keeps the
    first of two aliased terms). ``gram`` is the cross-product matrix the fit's information
    is built on, columns in the order given: by default the centred ``X'X`` (a model with an
    intercept, as ``glm``); a Cox model passes its information matrix at beta = 0 (centring
    within risk sets), where a column that varies only outside every risk set also vanishes.

    Returns ``(kept, dropped)``: the kept names, and a dict name -> reason.

    >>> df = pd.DataFrame({"a": [0, 1, 1, 0, 1], "b": [1, 0, 0, 1, 0], "k": 3, "c": [2, 5, 1, 4, 4]})
    >>> kept, dropped = estimable_columns(df, ["a", "b", "k", "c"])
    >>> kept
    ['a', 'c']
    >>> dropped["b"]
    'b is collinear with a in this cohort: dropped from the model, as R does'
    >>> dropped["k"]
    'k is constant in this cohort: dropped from the model, as R does'
    """
    columns = list(columns)
    values = np.asarray(data, float) if isinstance(data, np.ndarray) else data[columns].to_numpy(float)
    centred = values - values.mean(axis=0)
    spread = (centred ** 2).sum(axis=0)
    gram = centred.T @ centred if gram is None else np.asarray(gram, float)
    dropped: dict[str, str] = {}
    kept: list[int] = []
    for j, name in enumerate(columns):
        if _constant(values[:, j]):
            dropped[name] = f"{name} is constant in this cohort: {DROPPED}"
            continue
        if not gram[j, j] > tolerance * spread[j]:
            dropped[name] = f"{name} does not vary within any risk set: {DROPPED}"
            continue
        left, combination = _variance_left(gram, kept, j)
        if left < tolerance:
            partners = " and ".join(columns[k] for k, b in zip(kept, combination) if abs(b) > _PART_OF_ALIAS)
            dropped[name] = f"{name} is collinear with {partners or 'the covariates before it'} in this cohort: {DROPPED}"
            continue
        kept.append(j)
    return [columns[k] for k in kept], dropped


def with_dropped_rows(covariates, dropped: dict[str, str], summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` reindexed to every requested covariate, a dropped one as a NaN row with its reason.

    >>> s = pd.DataFrame({"coef": [0.5], "reason": [None]}, index=pd.Index(["a"], name="covariate"))
    >>> with_dropped_rows(["a", "b"], {"b": "b is constant"}, s)["reason"].tolist()
    [None, 'b is constant']
    """
    if not dropped:
        return summary
    out = summary.reindex(pd.Index(list(covariates), name="covariate"))
    for covariate, why in dropped.items():
        out.loc[covariate, "reason"] = why
    return out


def _constant(column) -> bool:
    """Fewer than two distinct non-missing values (``Series.nunique() < 2``)."""
    present = column[~np.isnan(column)]
    return present.size == 0 or bool((present == present[0]).all())


def _variance_left(gram, kept, j):
    """Fraction of column j's variance not explained by the kept columns, and the regression's
    coefficients (both on the correlation scale, so that units do not matter)."""
    if not kept:
        return 1.0, np.zeros(0)
    idx = [*kept, j]
    scale = 1 / np.sqrt(np.diag(gram)[idx])
    corr = gram[np.ix_(idx, idx)] * scale[:, None] * scale[None, :]
    # kept columns are never (near-)aliased among themselves, so this system is well posed
    coef = np.linalg.solve(corr[:-1, :-1], corr[:-1, -1])
    return float(corr[-1, -1] - corr[:-1, -1] @ coef), coef
