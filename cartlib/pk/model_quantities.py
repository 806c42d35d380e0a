"""Parameters and derived quantities of fitted kinetic curves, and their derivatives.

Used by :class:`cartlib.pk.model.KineticModelFitter` for its summary (values, delta-method
SEs, identifiability); usable on any ``theta`` of :mod:`cartlib.pk.model_core`.
"""
from __future__ import annotations

import numpy as np

from . import model_core as core

_LN2 = np.log(2.0)


def quantities(theta: np.ndarray, lloq: float, auc_end_day: float = 28.0) -> dict[str, np.ndarray]:
    """The parameters and derived quantities of each fitted curve (rows of ``theta``).

    ``doubling_time`` ln 2 / rho, ``contraction_half_life`` ln 2 / alpha,
    ``persistence_half_life`` ln 2 / beta (days); ``time_below_lloq`` the day the declining
    curve reaches the LLOQ (Tmax if Cmax is not above it); ``auc28`` the model's AUC from day
    0 to ``auc_end_day`` (copies/µg × day); ``fold_expansion`` Cmax / C(0) = exp(rho Tmax).

    >>> q = quantities(core.to_theta([1e4], [10.0], [np.log(2)], [0.3], [0.01], [0.005]), 100.0)
    >>> round(float(q["doubling_time"][0]), 3), round(float(q["fold_expansion"][0]))
    (1.0, 1024)
    """
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return _quantities(theta, lloq, auc_end_day)


def _quantities(theta, lloq, auc_end_day):
    p = core.natural(theta)
    cmax, tmax, rho, alpha, fb, beta = (p[k] for k in ("cmax", "tmax", "rho", "alpha", "fb", "beta"))
    out = dict(p)
    out["fold_expansion"] = np.exp(np.minimum(rho * tmax, 700.0))
    out["doubling_time"] = _LN2 / rho
    out["contraction_half_life"] = _LN2 / alpha
    out["persistence_half_life"] = _LN2 / beta
    out["time_below_lloq"] = tmax + _time_to_level(cmax, alpha, fb, beta, lloq)
    rise_end = np.minimum(tmax, auc_end_day)
    rising = cmax / rho * (np.exp(-rho * (tmax - rise_end)) - np.exp(-rho * tmax))
    s = np.maximum(auc_end_day - tmax, 0.0)
    falling = cmax * ((1 - fb) * -np.expm1(-alpha * s) / alpha + fb * -np.expm1(-beta * s) / beta)
    out["auc28"] = rising + falling
    return out


def _time_to_level(cmax, alpha, fb, beta, level):
    """Days after Tmax for the declining curve to reach ``level`` (bisection, vectorised).
    The crossing lies before ln(Cmax/level)/beta because the curve is below Cmax exp(-beta s)."""
    excess = np.log(np.maximum(cmax / level, 1.0))
    lo, hi = np.zeros_like(cmax), excess / beta
    log_target = np.log(level / cmax)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        above = np.logaddexp(np.log1p(-fb) - alpha * mid, np.log(fb) - beta * mid) > log_target
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return 0.5 * (lo + hi)


def quantity_jacobians(theta, lloq, auc_end_day):
    """d quantity / d theta for every quantity (central differences), each (n, 6).

    The 12 shifted copies of ``theta`` go through :func:`quantities` as one stacked batch:
    every quantity is computed row by row (the bisection too), so each row's value is the one
    a separate call gives, and the 60 bisection steps run once instead of 12 times."""
    n = theta.shape[0]
    shifted, steps = [], []
    for k in range(core.N_THETA):
        h = 1e-5 * (1.0 + np.abs(theta[:, k]))
        up, down = theta.copy(), theta.copy()
        up[:, k] += h
        down[:, k] -= h
        shifted += [up, down]
        steps.append(h)
    q = quantities(np.concatenate(shifted), lloq, auc_end_day)
    out = {}
    for k, h in enumerate(steps):
        for name, values in q.items():
            qu, qd = values[2 * k * n:(2 * k + 1) * n], values[(2 * k + 1) * n:(2 * k + 2) * n]
            out.setdefault(name, np.zeros(theta.shape))[:, k] = (qu - qd) / (2 * h)
    return out
