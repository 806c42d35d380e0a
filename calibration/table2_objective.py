"""The toxicity stage's objective (:mod:`calibration.fit_toxicity`): the Table 2 covariates of a
latent dict (as :func:`cartlib.derive.derive_covariates` derives them from the tables), the paper's
Table 2 targets, and the loss of a candidate severe-CRS placement.

:func:`logistic_batch` fits many logistic models at once on grouped data (vectorised
Newton-Raphson), written by hand because the search scores ~10^5 candidate tables;
tests/test_fit_toxicity.py checks it against the suite's :class:`cartlib.stats.logistic.LogisticModel`.
"""
from __future__ import annotations

import math
import re

import numpy as np
from scipy.special import erfc

from .figures import paper_figures
from .numerics import contract, settle, solve

_KEY = re.compile(r"^toxicity\.scrs\.(model\d+)\.(.+)\.(or|or_lo|or_hi|p)$")
_MRD = re.compile(r"^(preld|postld)_mrd_(lt|ge)_(.+)$")
_Z = 1.959963984540054
_MISS = 10.0          # extra loss of a figure outside its tolerance
_NO_FIT = 50.0        # tolerance units of every figure of a model without a finite MLE
SEVERE_GRADE = 3           # severe CRS: grade >= 3
KEEP_LOSS = 1e3           # loss of losing a figure that was within tolerance before the stage


def covariate(s, name):
    """A 0/1 Table 2 covariate of the latent dict, derived as :func:`cartlib.derive.derive_covariates` does.

    >>> s = {"female": np.array([True, False]), "prior_hsct": np.array([False, True]),
    ...      "mrd_preld": np.array([0.0, 0.02]), "dose": np.array([3.0, 4.0])}
    >>> covariate(s, "no_prior_hsct").tolist(), covariate(s, "preld_mrd_lt_1e-3").tolist()
    ([1, 0], [1, 0])
    >>> covariate(s, "dose_lt_median").tolist()
    [1, 0]
    """
    if name == "female":
        x = np.asarray(s["female"], bool)
    elif name in ("prior_hsct", "no_prior_hsct"):
        x = np.asarray(s["prior_hsct"], bool)
        x = ~x if name.startswith("no_") else x
    elif name == "dose_lt_median":
        dose = np.asarray(s["dose"], float)
        x = dose < np.median(dose)
    elif _MRD.match(name):
        when, side, cut = _MRD.match(name).groups()
        x = np.asarray(s[f"mrd_{when}"], float) < float(cut)
        x = x if side == "lt" else ~x
    else:
        raise KeyError(f"unknown Table 2 covariate {name!r}")
    return x.astype(np.int64)


def table2_targets(figures):
    """``{model: {covariate: {stat: (target, tolerance)}}}`` of the feasible Table 2 multivariable figures.

    OR and CI bounds are on the natural-log scale: the figure's ``log_tolerance`` or, if it
    has none, the rule ``SE_paper / 2`` with SE_paper from the narrower half of the paper's
    CI (a bound whose log half-width is over 1.5 times the other's cannot be a Wald bound
    around the OR - a typo - and is not targeted). p-values: the figure's ``tolerance`` or
    the rule (0.05 when the paper's p < 0.2, else 0.10).

    >>> figs = [{"key": f"toxicity.scrs.model1.x.{k}", "value": v, "feasible": True}
    ...         for k, v in (("or", 1.0), ("or_lo", 0.5), ("or_hi", 2.0), ("p", 0.3))]
    >>> t = table2_targets(figs)["model1"]["x"]
    >>> round(t["or"][1], 4), t["p"]
    (0.1768, (0.3, 0.1))
    """
    raw, given = {}, {}
    for f in figures:
        m = _KEY.match(str(f["key"]))
        if m and f.get("feasible", True) is not False:
            model, cov, stat = m.groups()
            raw.setdefault(model, {}).setdefault(cov, {})[stat] = float(f["value"])
            tol = f.get("log_tolerance") if stat != "p" else f.get("tolerance")
            if tol is not None:
                given[(model, cov, stat)] = float(tol)
    out = {}
    for model, covs in sorted(raw.items()):
        for cov, v in covs.items():
            t = {}
            if v.get("or", 0) > 0:
                halves = {b: abs(math.log(v[b] / v["or"])) for b in ("or_lo", "or_hi") if v.get(b, 0) > 0}
                half = min(halves.values(), default=0.0)
                if half > 0:
                    for stat in ("or", *(b for b, h in halves.items() if h <= 1.5 * half)):
                        t[stat] = (math.log(v[stat]), given.get((model, cov, stat), half / _Z / 2))
            if "p" in v:
                t["p"] = (v["p"], given.get((model, cov, "p"), 0.05 if v["p"] < 0.2 else 0.10))
            if t:
                out.setdefault(model, {})[cov] = t
    return out


def logistic_batch(X, K, M, max_iter=60):
    """Logistic fits of many outcome vectors on grouped binary data, by Newton-Raphson at once.

    ``X`` (cells x covariates) without the intercept, ``K`` (fits x cells) events, ``M``
    patients per cell (cells, or fits x cells). Returns ``coef``, ``se`` (fits x covariates,
    Wald) and ``ok``: False where no finite maximum likelihood estimate exists (separation: a
    diverging coefficient or fitted probabilities at 0/1) or Newton did not converge.

    >>> X = np.array([[0.0], [1.0]])
    >>> coef, se, ok = logistic_batch(X, np.array([[2, 6], [0, 5]]), np.array([10, 10]))
    >>> round(float(np.exp(coef[0, 0])), 4), round(float(se[0, 0]), 4), ok.tolist()
    (6.0, 1.0206, [True, False])
    """
    K = np.atleast_2d(np.asarray(K, float))
    M = np.asarray(M, float)
    M = np.broadcast_to(M, K.shape) if M.ndim == 1 else M
    A = np.column_stack([np.ones(len(X)), np.asarray(X, float)])
    n_fit, P = K.shape[0], A.shape[1]
    AA = (A[:, :, None] * A[:, None, :]).reshape(len(A), P * P)
    beta = np.zeros((n_fit, P))
    events = K.sum(axis=1)
    beta[:, 0] = np.log((events + 0.5) / (M.sum(axis=1) - events + 0.5))
    active = np.ones(n_fit, bool); ok = np.ones(n_fit, bool)
    # products over cells and solves without BLAS/LAPACK (calibration.numerics): bit-identical fits
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0: break
        b = beta[idx]; Mi = M[idx]
        p = 1.0 / (1.0 + np.exp(-contract("fp,cp->fc", b, A)))
        info = contract("fc,cq->fq", Mi * p * (1 - p), AA).reshape(idx.size, P, P)
        grad = contract("fc,cp->fp", K[idx] - Mi * p, A)
        step, singular = solve(info, grad, rcond=1e-12)
        step[singular] = 0.0
        b = b + step; beta[idx] = b
        diverged = singular | (np.abs(b[:, 1:]) > 10).any(axis=1) | ~np.isfinite(b).all(axis=1)
        ok[idx[diverged]] = False
        active[idx[diverged | (np.abs(step).max(axis=1) < 1e-10)]] = False
    ok &= ~active
    beta = np.where(ok[:, None], beta, 0.0)
    p = 1.0 / (1.0 + np.exp(-contract("fp,cp->fc", beta, A)))
    ok &= ~(((p < 1e-8) | (p > 1 - 1e-8)) & (M > 0)).any(axis=1)
    info = contract("fc,cq->fq", M * p * (1 - p), AA).reshape(n_fit, P, P)
    info[~ok] = np.eye(P)
    var, singular = solve(info, np.broadcast_to(np.eye(P), info.shape).copy(), rcond=0.0)
    ok &= ~singular
    se = np.sqrt(np.abs(np.diagonal(np.where(ok[:, None, None], var, 1.0), axis1=1, axis2=2)))
    ok &= (se[:, 1:] < 1e3).all(axis=1)
    return settle(beta[:, 1:]), settle(se[:, 1:]), ok


def model_figures(coef, se):
    """A covariate's figures on the fitting scale (log OR, its CI bounds, Wald p) from coefficients and SEs."""
    return {"or": coef, "or_lo": coef - _Z * se, "or_hi": coef + _Z * se,
            "p": erfc(np.abs(coef / se) / math.sqrt(2))}


def scaled_misses(got, ok, wanted):
    """Each wanted figure's distance from the paper in units of its tolerance (> 1: a miss): ``got``
    from :func:`model_figures`, ``ok`` whether the fit exists (else ``_NO_FIT``), ``wanted`` maps a
    stat to (paper value, tolerance); a p on the other side of 0.05 than the paper's is a miss.

    >>> got = model_figures(np.array([0.1, 1.0]), np.array([0.5, 0.5]))
    >>> r = scaled_misses(got, np.array([True, True]), {"p": (0.03, 0.05)})
    >>> (r["p"] > 1).tolist()
    [True, False]
    """
    out = {}
    for stat, (value, tol) in wanted.items():
        r = np.abs(got[stat] - value) / tol
        if stat == "p":
            wrong_side = (got["p"] < 0.05) != (value < 0.05)
            r = np.where(wrong_side, np.maximum(r, 1 + np.abs(got["p"] - 0.05) / tol), r)
        out[stat] = np.where(ok, r, _NO_FIT)
    return out


def table2_loss(X, Y, targets, names, keep=()):
    """(loss, misses, within) of candidate cohorts: ``X`` (fits x patients x covariates, 0/1, in
    the order of ``names``) and ``Y`` (fits x patients, severe CRS 0/1). ``within`` maps each
    (model, covariate, stat) to a bool array (within tolerance); a figure in ``keep`` that
    falls outside its tolerance costs ``KEEP_LOSS``; an OR on the wrong side of 1 costs ``_MISS``.

    >>> t = {"model1": {"x": {"or": (0.0, 0.5)}}}
    >>> X = np.array([[[0], [0], [1], [1], [0], [1]]]); Y = np.array([[1, 0, 1, 0, 0, 1]])
    >>> loss, misses, within = table2_loss(X, Y, t, ["x"])
    >>> misses.tolist(), within[("model1", "x", "or")].tolist()
    ([1], [False])
    """
    X, Y = np.asarray(X, np.int64), np.asarray(Y, np.int64)
    n_fit = X.shape[0]
    loss, misses = np.zeros(n_fit), np.zeros(n_fit, np.int64)
    within = {}
    for model, covs in targets.items():
        cols = [names.index(c) for c in covs]
        q = len(cols)
        cells = ((np.arange(2 ** q)[:, None] >> np.arange(q)[None, :]) & 1).astype(float)
        code = (X[:, :, cols] << np.arange(q)).sum(axis=2) + (np.arange(n_fit) * 2 ** q)[:, None]
        M = np.bincount(code.ravel(), minlength=n_fit * 2 ** q).reshape(n_fit, -1)
        K = np.bincount(code.ravel(), weights=Y.ravel(), minlength=n_fit * 2 ** q).reshape(n_fit, -1)
        # each distinct (events, patients) table is fitted once
        _, first, back = np.unique(np.hstack([K, M]), axis=0, return_index=True, return_inverse=True)
        coef, se, ok = (a[back.ravel()] for a in logistic_batch(cells, K[first], M[first]))
        se = np.where(ok[:, None], se, 1.0)
        for j, (cov, wanted) in enumerate(covs.items()):
            for stat, r in scaled_misses(model_figures(coef[:, j], se[:, j]), ok, wanted).items():
                loss += r * r + np.where(r > 1, _MISS + (r - 1) ** 2, 0.0)
                loss += np.where(r > 1, KEEP_LOSS, 0.0) if (model, cov, stat) in keep else 0.0
                misses += r > 1
                within[(model, cov, stat)] = r <= 1
            if "or" in wanted:
                loss += _MISS * (np.sign(coef[:, j]) * np.sign(wanted["or"][0]) < 0)
    return settle(loss), misses, within


def table2_figures(s, figures=None):
    """The Table 2 multivariable figures (results.json keys, OR scale) of a latent dict.

    >>> rng = np.random.default_rng(0)
    >>> s = {"female": rng.random(200) < 0.5, "prior_hsct": rng.random(200) < 0.3,
    ...      "mrd_preld": 10 ** rng.uniform(-5, -1, 200), "mrd_postld": 10 ** rng.uniform(-5, -1, 200),
    ...      "dose": rng.uniform(2, 5, 200), "crs_grade": rng.integers(0, 5, 200)}
    >>> f = table2_figures(s)
    >>> len(f), f["toxicity.scrs.model1.female.or_lo"] < f["toxicity.scrs.model1.female.or"]
    (32, True)
    """
    if figures is None:
        figures = paper_figures()
    covs = {}
    for f in figures:
        m = _KEY.match(str(f["key"]))
        if m:
            covs.setdefault(m.group(1), {})[m.group(2)] = None
    y = (np.asarray(s["crs_grade"]) >= SEVERE_GRADE).astype(float)
    out = {}
    for model, names in covs.items():
        X = np.column_stack([covariate(s, c) for c in names]).astype(float)
        coef, se, ok = logistic_batch(X, y[None], np.ones_like(y))
        if not ok[0]:
            continue
        got = model_figures(coef[0], se[0])
        for j, cov in enumerate(names):
            key = f"toxicity.scrs.{model}.{cov}"
            out.update({f"{key}.{stat}": float(np.exp(v[j]) if stat != "p" else v[j]) for stat, v in got.items()})
    return out
