"""Linear algebra on many tiny matrices (the kinetic model's 6 parameters), without BLAS or LAPACK.

Why by hand: ``numpy.linalg.solve``, ``eigh`` and ``@`` hand their work to OpenBLAS, whose CPU
kernels (Haswell, SkylakeX, Prescott, ...) round differently in the last bit. The
Levenberg–Marquardt fit repeats a solve about a thousand times and the last-bit differences grow
into the tenth significant digit of results.json, so the same cohort gave different files on
different machines. These functions use only element-wise NumPy arithmetic and reductions, which
round the same way whatever BLAS kernel is loaded. They are written for matrices of at most a
few dozen rows, where the loops over a dimension cost nothing.
"""
from __future__ import annotations

import numpy as np

JACOBI_SWEEPS = 50   # cyclic sweeps; a 6 x 6 matrix converges to machine precision in under ten


def solve_positive_definite(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``A[i] x[i] = b[i]`` for a stack of symmetric positive definite matrices by Cholesky.

    Parameters
    ----------
    A : ndarray, shape (n, k, k)
        Symmetric matrices (only the lower triangle is read).
    b : ndarray, shape (n, k)

    Returns
    -------
    x : ndarray, shape (n, k)
        The solutions; 0 where the matrix is not positive definite.
    ok : ndarray of bool, shape (n,)
        False where a pivot was not positive (the matrix is not numerically positive definite).

    Examples
    --------
    >>> A = np.array([[[4.0, 2.0], [2.0, 3.0]], [[1.0, 2.0], [2.0, 1.0]]])
    >>> x, ok = solve_positive_definite(A, np.array([[2.0, 1.0], [1.0, 1.0]]))
    >>> np.round(x[0], 12).tolist(), ok.tolist()
    ([0.5, 0.0], [True, False])
    """
    A = np.asarray(A, float)
    n, k = A.shape[0], A.shape[1]
    L = np.zeros_like(A)
    ok = np.ones(n, bool)
    # einsum without optimize= runs NumPy's own loops (it never hands a product to BLAS)
    for j in range(k):
        pivot = A[:, j, j] - np.einsum("nk,nk->n", L[:, j, :j], L[:, j, :j])
        ok &= pivot > 0
        L[:, j, j] = np.sqrt(np.where(pivot > 0, pivot, 1.0))
        L[:, j + 1:, j] = ((A[:, j + 1:, j] - np.einsum("nik,nk->ni", L[:, j + 1:, :j], L[:, j, :j]))
                           / L[:, j, j][:, None])
    y = np.zeros((n, k))
    for i in range(k):   # L y = b
        y[:, i] = (b[:, i] - np.einsum("nk,nk->n", L[:, i, :i], y[:, :i])) / L[:, i, i]
    x = np.zeros((n, k))
    for i in reversed(range(k)):   # L^T x = y
        x[:, i] = (y[:, i] - np.einsum("nk,nk->n", L[:, i + 1:, i], x[:, i + 1:])) / L[:, i, i]
    x[~ok] = 0.0
    return x, ok


def symmetric_eigen(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors (columns) of one small symmetric matrix, by the
    cyclic Jacobi method (Golub & Van Loan, Matrix Computations, section 8.5).

    Examples
    --------
    >>> values, vectors = symmetric_eigen(np.array([[2.0, 1.0], [1.0, 2.0]]))
    >>> np.round(values, 12).tolist()
    [1.0, 3.0]
    >>> bool(np.allclose(vectors @ np.diag(values) @ vectors.T, [[2.0, 1.0], [1.0, 2.0]]))
    True
    """
    a = np.array(S, float)
    k = a.shape[0]
    v = np.eye(k)
    if k == 0:
        return np.zeros(0), v
    scale = np.max(np.abs(a)) if a.size else 0.0
    for _ in range(JACOBI_SWEEPS):
        off = np.sqrt(np.sum(np.tril(a, -1) ** 2))
        if off <= 1e-300 or off <= 1e-17 * scale:
            break
        for p in range(k - 1):
            for q in range(p + 1, k):
                if abs(a[p, q]) <= max(1e-300, 1e-18 * (abs(a[p, p]) + abs(a[q, q]))):
                    a[p, q] = a[q, p] = 0.0   # negligible: its effect on the eigenvalues is below rounding
                    continue
                theta = (a[q, q] - a[p, p]) / (2.0 * a[p, q])
                t = (0.5 / theta if abs(theta) > 1e150   # theta squared would overflow
                     else np.copysign(1.0, theta) / (abs(theta) + np.sqrt(theta * theta + 1.0)))
                c = 1.0 / np.sqrt(t * t + 1.0)
                s = t * c
                rows_p, rows_q = a[p, :].copy(), a[q, :].copy()
                a[p, :], a[q, :] = c * rows_p - s * rows_q, s * rows_p + c * rows_q
                cols_p, cols_q = a[:, p].copy(), a[:, q].copy()
                a[:, p], a[:, q] = c * cols_p - s * cols_q, s * cols_p + c * cols_q
                vec_p, vec_q = v[:, p].copy(), v[:, q].copy()
                v[:, p], v[:, q] = c * vec_p - s * vec_q, s * vec_p + c * vec_q
    values = np.diag(a).copy()
    order = np.argsort(values, kind="stable")
    return values[order], v[:, order]
