"""The expansion / biphasic-contraction curve and its censored likelihood, for many patients at once.

The shape is the empirical CAR-T cellular-kinetic model of Stein et al. (CPT Pharmacometrics
Syst Pharmacol 2019;8:285): exponential growth at rate ``rho`` from infusion to ``tmax``, then
a fast contraction (rate ``alpha``) of the effector fraction ``1 - fb`` and a slow decline
(rate ``beta``) of the persisting fraction ``fb``::

    log C(t) = log Cmax - rho (tmax - t)                                   t <= tmax
    log C(t) = log Cmax + log((1 - fb) exp(-alpha s) + fb exp(-beta s))    s = t - tmax > 0

The optimiser works on an unconstrained vector ``theta`` per patient (log Cmax, tmax,
log rho, log(alpha - beta), logit fb, log beta): positivity and ``alpha > beta`` (which
labels the fast phase, so the two phases cannot swap) hold by construction, and a box on
``theta`` keeps every step finite. All functions take arrays of shape (patients, samples),
padded; ``valid`` marks the real samples. This module is the numerical engine of
:mod:`cartlib.pk.model`, which users call.
"""
from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr

from .small_linalg import solve_positive_definite

#: Order of the unconstrained coordinates.
THETA = ("log_cmax", "tmax", "log_rho", "log_alpha_minus_beta", "logit_fb", "log_beta")
N_THETA = len(THETA)
_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def box(tmax_max: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of ``theta``: wide, but finite so that no step overflows.

    Cmax 1 to 10^9 copies/µg, Tmax 0.5 to ``tmax_max`` days, expansion rate 0.01 to 20 per
    day, alpha - beta 0.001 to 10 per day, fb 10^-6 to 0.999, beta 10^-5 to 2 per day.

    >>> lo, hi = box()
    >>> round(float(np.exp(hi[0])))
    1000000000
    """
    lo = np.array([0.0, 0.5, np.log(0.01), np.log(1e-3), np.log(1e-6 / (1 - 1e-6)), np.log(1e-5)])
    hi = np.array([np.log(1e9), float(tmax_max), np.log(20.0), np.log(1.0), np.log(0.999 / 0.001), np.log(1.0)])
    return lo, hi


def natural(theta: np.ndarray) -> dict[str, np.ndarray]:
    """The natural parameters of ``theta`` (n, 6): cmax, tmax, rho, alpha, fb, beta.

    >>> p = natural(np.array([[np.log(1e4), 10.0, np.log(0.8), np.log(0.2), 0.0, np.log(0.01)]]))
    >>> {k: round(float(v[0]), 4) for k, v in p.items()}
    {'cmax': 10000.0, 'tmax': 10.0, 'rho': 0.8, 'alpha': 0.21, 'fb': 0.5, 'beta': 0.01}
    """
    theta = np.asarray(theta, float)
    beta = np.exp(theta[:, 5])
    return {"cmax": np.exp(theta[:, 0]), "tmax": theta[:, 1], "rho": np.exp(theta[:, 2]),
            "alpha": beta + np.exp(theta[:, 3]), "fb": 1.0 / (1.0 + np.exp(-theta[:, 4])), "beta": beta}


def to_theta(cmax, tmax, rho, alpha, fb, beta) -> np.ndarray:
    """Inverse of :func:`natural` (``alpha`` must exceed ``beta``, ``fb`` lie in (0, 1)).

    >>> t = to_theta([1e4], [10.0], [0.8], [0.21], [0.5], [0.01])
    >>> round(float(natural(t)["alpha"][0]), 6)
    0.21
    """
    cmax, tmax, rho, alpha, fb, beta = (np.asarray(a, float) for a in (cmax, tmax, rho, alpha, fb, beta))
    return np.column_stack([np.log(cmax), tmax, np.log(rho), np.log(alpha - beta),
                            np.log(fb) - np.log1p(-fb), np.log(beta)])


def _pieces(theta, t):
    th = [theta[:, k][:, None] for k in range(N_THETA)]
    log_cmax, tmax, rho, delta, logit_fb, beta = th[0], th[1], np.exp(th[2]), np.exp(th[3]), th[4], np.exp(th[5])
    alpha = beta + delta
    s = t - tmax
    sp = np.maximum(s, 0.0)
    log_fb = -np.logaddexp(0.0, -logit_fb)
    log_fast = -np.logaddexp(0.0, logit_fb)
    a = log_fast - alpha * sp
    b = log_fb - beta * sp
    tail = np.logaddexp(a, b)
    mu = np.where(s <= 0, log_cmax + rho * np.minimum(s, 0.0), log_cmax + tail)
    return mu, s, sp, rho, delta, beta, alpha, logit_fb, a - tail, b - tail


def log_curve(theta: np.ndarray, t: np.ndarray) -> np.ndarray:
    """log C(t) for every patient (rows of ``theta``) at days ``t`` (n, m).

    >>> theta = to_theta([1e4], [10.0], [0.5], [0.3], [0.01], [0.005])
    >>> [round(float(np.exp(v)), 1) for v in log_curve(theta, np.array([[0.0, 10.0, 40.0]]))[0]]
    [67.4, 10000.0, 87.3]
    """
    return _pieces(np.asarray(theta, float), np.asarray(t, float))[0]


def log_curve_and_jacobian(theta: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log C(t) (n, m) and its derivatives with respect to ``theta`` (n, m, 6), analytic.

    At ``t == tmax`` (the corner of the curve) the rising branch's derivatives are used.
    """
    mu, s, sp, rho, delta, beta, alpha, logit_fb, log_wa, log_wb = _pieces(np.asarray(theta, float), t)
    wa, wb = np.exp(log_wa), np.exp(log_wb)
    fb = 1.0 / (1.0 + np.exp(-logit_fb))
    rising = s <= 0
    jac = np.empty(mu.shape + (N_THETA,))
    jac[..., 0] = 1.0
    jac[..., 1] = np.where(rising, -rho, wa * alpha + wb * beta)
    jac[..., 2] = np.where(rising, rho * np.minimum(s, 0.0), 0.0)
    jac[..., 3] = np.where(rising, 0.0, -wa * sp * delta)
    jac[..., 4] = np.where(rising, 0.0, -wa * fb + wb * (1.0 - fb))
    jac[..., 5] = np.where(rising, 0.0, -sp * beta)
    return mu, jac


def neg_loglik_terms(mu, y, censored, valid, sigma, log_lloq):
    """Per-sample negative log-likelihood: normal on log C for quantified samples, and for a
    censored (BLQ) sample -log P(log C < log LLOQ) (Beal's M3). Padding contributes 0.

    >>> terms = neg_loglik_terms(np.array([[5.0, 4.0]]), np.array([[5.0, np.nan]]),
    ...                          np.array([[False, True]]), np.ones((1, 2), bool), 1.0, np.log(100.0))
    >>> [round(float(v), 4) for v in terms[0]]
    [0.9189, 0.3182]
    """
    return _terms(mu, np.nan_to_num(y), censored, valid, np.asarray(sigma, float), log_lloq)


def _terms(mu, y_filled, censored, valid, sigma, log_lloq):
    """:func:`neg_loglik_terms` with the NaN of ``y`` already replaced by 0 (``np.nan_to_num``)."""
    z_q = (y_filled - mu) / sigma
    z_c = (log_lloq - mu) / sigma
    quant = 0.5 * z_q ** 2 + np.log(sigma) + _LOG_SQRT_2PI
    cens = -log_ndtr(z_c)
    return np.where(valid, np.where(censored, cens, quant), 0.0)


def _dnll_dmu(mu, y, censored, valid, sigma, log_lloq):
    """Derivative of each sample's term with respect to mu (used for the gradient)."""
    z_q = (np.nan_to_num(y) - mu) / sigma
    z_c = (log_lloq - mu) / sigma
    mills = np.exp(-0.5 * z_c ** 2 - _LOG_SQRT_2PI - log_ndtr(z_c))
    return np.where(valid, np.where(censored, mills / sigma, -z_q / sigma), 0.0)


def gradient(theta, data, sigma) -> np.ndarray:
    """Gradient of each patient's negative log-likelihood with respect to ``theta`` (n, 6)."""
    t, y, censored, valid, log_lloq = data
    mu, jac = log_curve_and_jacobian(theta, t)
    d = _dnll_dmu(mu, y, censored, valid, sigma, log_lloq)
    return np.einsum("nm,nmk->nk", d, jac)


def neg_loglik(theta, data, sigma) -> np.ndarray:
    """Each patient's negative log-likelihood (n,)."""
    t, y, censored, valid, log_lloq = data
    return neg_loglik_terms(log_curve(theta, t), y, censored, valid, sigma, log_lloq).sum(axis=1)


def _filled(data):
    """``data`` with the NaN of y (BLQ samples) replaced by 0 once, as every evaluation would."""
    t, y, censored, valid, log_lloq = data
    return t, np.nan_to_num(y), censored, valid, log_lloq


def _neg_loglik_filled(theta, data, sigma) -> np.ndarray:
    """:func:`neg_loglik` of :func:`_filled` data."""
    t, y_filled, censored, valid, log_lloq = data
    return _terms(log_curve(theta, t), y_filled, censored, valid, np.asarray(sigma, float), log_lloq).sum(axis=1)


def _residuals(theta, data, sigma):
    """Residuals whose half sum of squares is the negative log-likelihood (up to a constant),
    and their Jacobian: quantified (y - mu)/sigma; censored sqrt(-2 log Phi(z)). ``data`` is
    :func:`_filled`."""
    t, y_filled, censored, valid, log_lloq = data
    mu, jac = log_curve_and_jacobian(theta, t)
    z_q = (y_filled - mu) / sigma
    z_c = (log_lloq - mu) / sigma
    g = -log_ndtr(z_c)
    r_c = np.sqrt(2.0 * np.maximum(g, 0.0))
    mills = np.exp(-0.5 * z_c ** 2 - _LOG_SQRT_2PI - log_ndtr(z_c))
    # d r_c / d mu = mills / (sigma r_c); where r_c underflows the sample carries no information
    with np.errstate(divide="ignore", invalid="ignore"):
        dr_c = np.where(r_c > 1e-150, mills / (sigma * r_c), 0.0)
    r = np.where(valid, np.where(censored, r_c, -z_q), 0.0)
    dr = np.where(valid, np.where(censored, dr_c, 1.0 / sigma), 0.0)
    return r, dr[..., None] * jac


def levenberg_marquardt(theta, data, sigma, lo, hi, max_iter: int = 300, tol: float = 1e-5):
    """Minimise every patient's negative log-likelihood at once (batched Levenberg–Marquardt,
    steps projected onto the box). Returns (theta, nll, converged) per patient.

    A patient stops when an accepted step improves its log-likelihood by less than ``tol``
    (far below any statistical meaning; along a flat ridge steps keep gaining a little) or
    when no step improves it any more (a minimum, possibly at the corner of the curve).
    """
    theta = np.clip(np.array(theta, float), lo, hi)
    n = theta.shape[0]
    # this loop runs about a thousand times per cohort on small arrays, so what does not change
    # between iterations (the filled data, the active patients' rows) is made once
    data = _filled(data)
    f = _neg_loglik_filled(theta, data, sigma)
    damping = np.full(n, 1e-3)
    done = np.zeros(n, bool)
    converged = np.zeros(n, bool)
    eye = np.eye(N_THETA)
    act = sub = None
    for _ in range(max_iter):
        if act is None or done[act].any():   # patients only ever leave the active set
            act = np.flatnonzero(~done)
            sub = tuple(a[act] for a in data[:4]) + (data[4],)
        if act.size == 0:
            break
        theta_act, f_act, damping_act = theta[act], f[act], damping[act]
        r, J = _residuals(theta_act, sub, sigma)
        g = np.einsum("nm,nmk->nk", r, J)
        H = np.einsum("nmi,nmj->nij", J, J)
        diag = np.maximum(np.einsum("nii->ni", H), 1e-12)
        A = H + damping_act[:, None, None] * diag[:, :, None] * eye
        step, _ = solve_positive_definite(A + 1e-12 * eye, -g)   # 0 where A is not positive definite:
        #   the step fails, the damping grows and the next A is more diagonal
        trial = np.clip(theta_act + step, lo, hi)
        f_new = _neg_loglik_filled(trial, sub, sigma)
        better = np.isfinite(f_new) & (f_new < f_act)
        gain = f_act - np.where(better, f_new, f_act)
        theta[act[better]] = trial[better]
        small = better & (gain <= tol)
        f[act[better]] = f_new[better]
        damping[act] = np.where(better, np.maximum(damping_act / 5.0, 1e-9), damping_act * 10.0)
        stuck = damping[act] > 1e10
        finished = small | stuck
        converged[act[finished]] = True
        done[act[finished]] = True
    return theta, f, converged


def hessian(theta, data, sigma, step: float = 1e-4) -> np.ndarray:
    """Observed information: the Hessian of each patient's negative log-likelihood (n, 6, 6),
    by central differences of the analytic gradient, symmetrised."""
    n = theta.shape[0]
    out = np.empty((n, N_THETA, N_THETA))
    for k in range(N_THETA):
        h = step * (1.0 + np.abs(theta[:, k]))
        up, down = theta.copy(), theta.copy()
        up[:, k] += h
        down[:, k] -= h
        out[:, :, k] = (gradient(up, data, sigma) - gradient(down, data, sigma)) / (2 * h[:, None])
    return 0.5 * (out + np.transpose(out, (0, 2, 1)))
