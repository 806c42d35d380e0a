"""Arithmetic the calibration's decisions rest on: free of BLAS and LAPACK, and settled above noise.

The searches take thousands of decisions (accept a swap, keep the best state, stop a descent) on
losses computed from small model fits. Two rules make those decisions, and so the bundled cohort,
the same on every machine:

* **No BLAS, no LAPACK.** A matrix product's summation order depends on the BLAS kernel
  (``OPENBLAS_CORETYPE``) and on the thread count, so its last bits do too. The fits of the
  searches use :func:`rowdot` (an element-wise product and numpy's own summation, whose order is
  fixed by the array shape), :func:`contract` (numpy's ``einsum`` loops) and :func:`solve` /
  :func:`inverse` (Gauss-Jordan elimination written out element-wise, for batches of small
  positive definite systems). Element-wise IEEE
  operations are correctly rounded, so these results are bit-identical whatever BLAS is loaded.
* **Settled values.** What is compared is first rounded to :data:`SIGNIFICANT_BITS` significant
  bits (:func:`settle`, about 1e-9 relative), far above the last-bit noise that a different CPU's
  vectorised ``exp``/``log`` may leave, and fits are iterated to full convergence, so that the
  noise cannot reach the ninth digit. Ties between settled values are broken by a fixed order
  (stable sorts, the first candidate).

>>> settle(0.1 + 0.2) == settle(0.3)
True
>>> solve(np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([3.0, 5.0])).tolist()
[0.8, 1.4]
"""
from __future__ import annotations

import math

import numpy as np

SIGNIFICANT_BITS = 30   # 2**-30 ~ 9.3e-10 relative
_SCALE = 2.0 ** SIGNIFICANT_BITS


def settle(x):
    """``x`` rounded to :data:`SIGNIFICANT_BITS` significant bits (floats or arrays; inf/NaN kept).

    Values that differ only by floating-point noise settle on the same number (unless they
    straddle a rounding boundary, about one chance in 10^6 for noise of 1e-15), so comparisons
    between settled values do not depend on the machine.

    >>> settle(1.0 + 1e-13), settle(np.array([2.5, -0.1])).tolist(), settle(float("inf"))
    (1.0, [2.5, -0.09999999997671694], inf)
    """
    if np.ndim(x) == 0 and not isinstance(x, np.ndarray):
        x = float(x)
        if not math.isfinite(x):
            return x
        m, e = math.frexp(x)
        return math.ldexp(round(m * _SCALE), e - SIGNIFICANT_BITS)
    a = np.asarray(x, float)
    m, e = np.frexp(a)
    finite = np.isfinite(a)
    return np.where(finite, np.ldexp(np.round(np.where(finite, m, 0.0) * _SCALE), e - SIGNIFICANT_BITS), a)


def rowdot(a, b):
    """``(a * b).sum(axis=-1)`` with broadcasting: a dot product without BLAS.

    >>> rowdot(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 1.0])).tolist()
    [3.0, 7.0]
    """
    return (np.asarray(a, float) * np.asarray(b, float)).sum(axis=-1)


def contract(subscripts, *operands):
    """:func:`numpy.einsum` without BLAS (``optimize=False``: numpy's own loops, whose summation
    order is fixed by the shapes), for the products of the searches' fits.

    >>> contract("ij,j->i", np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 1.0])).tolist()
    [3.0, 7.0]
    """
    return np.einsum(subscripts, *operands, optimize=False)


def solve(A, b, rcond=None):
    """Solution of ``A x = b`` for one or a batch of small symmetric positive definite systems (the
    information matrices of the fits; ``A``: (..., k, k), ``b``: (..., k) or (..., k, m)), by
    Gauss-Jordan elimination written out element-wise (no LAPACK; no pivoting, which such systems
    do not need). Raises :class:`numpy.linalg.LinAlgError` when a pivot is not positive (the
    matrix is singular or not positive definite). With ``rcond``, returns ``(x, singular)``
    instead: a system whose smallest pivot is at most ``rcond`` times its largest (or not
    positive) is flagged, its ``x`` meaningless, and nothing is raised.

    >>> solve(np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([3.0, 5.0])).tolist()
    [0.8, 1.4]
    >>> solve(np.array([[[1.0, 1.0], [1.0, 1.0]]]), np.ones((1, 2)), rcond=1e-12)[1].tolist()
    [True]
    """
    A = np.array(A, float)
    k, batch = A.shape[-1], A.shape[:-2]
    vector = np.ndim(b) == A.ndim - 1
    x = np.array(b, float)[..., None] if vector else np.array(b, float)
    m = x.shape[-1]
    # one augmented array [A | x] per system, eliminated column by column
    Ax = np.concatenate([A.reshape(-1, k, k), x.reshape(-1, k, m)], axis=2)
    pivots = np.empty((Ax.shape[0], k))
    for c in range(k):
        pivot = Ax[:, c, c].copy()
        pivots[:, c] = pivot
        bad = ~(pivot > 0) | ~np.isfinite(pivot)
        if bad.any():
            if rcond is None:
                raise np.linalg.LinAlgError("matrix is singular or not positive definite")
            pivot[bad] = 1.0
        row = Ax[:, c, :] / pivot[:, None]
        factor = Ax[:, :, c].copy()
        factor[:, c] = 0.0
        Ax -= factor[:, :, None] * row[:, None, :]
        Ax[:, c, :] = row
    x = Ax[:, :, k:].reshape(batch + (k, m))
    x = x[..., 0] if vector else x
    if rcond is None:
        return x
    with np.errstate(invalid="ignore"):
        singular = ~(pivots.min(axis=1) > rcond * np.abs(pivots).max(axis=1)) | ~np.isfinite(Ax).all(axis=(1, 2))
    return x, singular.reshape(batch)


def inverse(A):
    """Inverse of one or a batch of small square matrices (:func:`solve` on the identity).

    >>> inverse(np.array([[4.0, 0.0], [0.0, 0.5]])).tolist()
    [[0.25, 0.0], [0.0, 2.0]]
    """
    A = np.asarray(A, float)
    return solve(A, np.broadcast_to(np.eye(A.shape[-1]), A.shape).copy())


def newton(terms, beta, max_iter=30, accept_eps=1e-12, done_eps=1e-11, halvings=30, polish=2):
    """Maximise a log-likelihood by Newton-Raphson with step halving, BLAS-free (:func:`solve`).

    ``terms(beta) -> (loglik, score, information)``. A step is halved (at most ``halvings``
    times) until the log-likelihood is finite and not lower than before (``accept_eps``
    relative). Once it changes by at most ``done_eps`` relative, ``polish`` more full steps
    take the estimate to machine precision, so where the stopping rule triggered leaves no
    trace in the result. Returns ``(beta, loglik, information)``, or None (a singular
    information matrix, or no convergence in ``max_iter`` steps).

    >>> f = lambda b: (3 - float(((b - 2) ** 2).sum()), -2 * (b - 2), 2 * np.eye(1))
    >>> beta, ll, _ = newton(f, np.zeros(1))
    >>> beta.tolist(), ll
    ([2.0], 3.0)
    """
    ll, score, info = terms(beta)
    extra = None
    for _ in range(max_iter + polish):
        try:
            step = solve(info, score)
        except np.linalg.LinAlgError:
            return None
        new = terms(beta + step)
        for _halving in range(halvings if extra is None else 0):
            if np.isfinite(new[0]) and new[0] >= ll - accept_eps * abs(ll):
                break
            step = step / 2
            new = terms(beta + step)
        if not np.isfinite(new[0]):
            return None
        beta = beta + step
        done = abs(new[0] - ll) <= done_eps * abs(new[0])
        ll, score, info = new
        if extra is not None:
            extra -= 1
        elif done:
            extra = polish
        if extra == 0:
            return beta, ll, info
    return None
