"""The Efron partial likelihood of a Cox model and the Newton–Raphson iterations that maximise it.

Every sum over a risk set comes from cumulative sums over rows sorted by time, so one
evaluation costs O(n log n) for n rows (a loop over event times with a pass over every row each
costs O(n x events): minutes for 20,000 patients). The d tied events at a time are expanded to
the d Efron risk sets at once (a fraction r/d, r = 0..d-1, of their weight removed; Efron 1977,
Therneau & Grambsch 2000, sec. 3.3). Right-censored data (``start`` None) and counting-process
data (a row is at risk at t when start < t <= stop) are both handled.

Two iterations are offered: :func:`newton_raphson` with step halving, as R's ``coxph``, and
:func:`damped_newton`, the damped iteration of lifelines' ``CoxPHFitter`` and
``CoxTimeVaryingFitter`` (step size 0.95 adapted to the step norms, on standardised
covariates), written out here so that a fit needs no data frame round trips and gives the
estimates lifelines gives.
"""
from __future__ import annotations

import functools
import warnings

import numpy as np
from scipy import linalg

__all__ = ["RiskSets", "efron_terms", "efron_information_at_zero", "newton_raphson", "damped_newton",
           "fit_standardised", "NotConverged"]


def _quiet(method):
    """Without floating-point warnings: a diverging fit (monotone likelihood) overflows in the
    sums, and the callers judge the result."""
    @functools.wraps(method)
    def quiet(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return method(*args, **kwargs)
    return quiet


def _suffix_sums(values, positions):
    """Sums of ``values`` (rows) from each of ``positions`` to the last row; a position past the
    end gives 0. One reversed cumulative sum: the rows are added one at a time from the end."""
    n = values.shape[0]
    from_end = np.cumsum(values[::-1], axis=0)
    back = n - 1 - positions
    out = from_end[np.maximum(back, 0)]
    out[back < 0] = 0.0
    return out


class RiskSets:
    """Rows sorted by (stop, event), with the risk-set and tie positions of every event time.

    Sums over rows are taken of one stacked array per evaluation (the weight, the weighted
    covariates and their weighted cross-products side by side), so an evaluation is a fixed,
    small number of array operations whatever the number of covariates.

    >>> rs = RiskSets([3, 1, 2, 2], [0, 1, 1, 1], [[1.0], [0.0], [1.0], [0.0]])
    >>> rs.times.tolist(), rs.ties.tolist()
    ([1.0, 2.0], [1, 2])
    """

    def __init__(self, stop, event, X, start=None):
        stop, event = np.asarray(stop, float), np.asarray(event, float) == 1
        X = np.asarray(X, float).reshape(stop.size, -1)
        order = np.lexsort((event, stop))  # stable: lifelines' sort by duration, then event
        self.stop, self.event, self.X = stop[order], event[order], X[order]
        self.dead = np.flatnonzero(self.event)  # event rows, in time order
        self.times, self.ties = np.unique(self.stop[self.dead], return_counts=True)
        self.first = np.searchsorted(self.stop, self.times, side="left")  # at risk: rows first.. (stop >= t)
        self.tie_start = np.cumsum(self.ties) - self.ties  # each time's first row in ``dead``
        group = np.repeat(np.arange(self.times.size), self.ties)
        self.group = group
        self.frac = (np.arange(group.size) - self.tie_start[group]) / self.ties[group]
        self.late = None
        if start is not None:  # rows entering at or after t are not at risk at t
            start = np.asarray(start, float)[order]
            self.late = np.argsort(start, kind="stable")
            self.late_first = np.searchsorted(start[self.late], self.times, side="left")

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    @property
    def X(self) -> np.ndarray:
        return self._X

    @X.setter
    def X(self, values) -> None:   # a fit standardises X after sorting: forget what was summed
        self._X, self._dead_sum_of = values, None

    def _dead_sum(self) -> np.ndarray:
        """The covariates summed over the event rows (the same at every beta)."""
        if self._dead_sum_of is None:
            self._dead_sum_of = self.X[self.dead].sum(0)
        return self._dead_sum_of

    def _sums(self, beta, shift):
        """eta, the shift, and per event time the risk-set sums and the tied events' sums of
        [w, w x, w x x'] (columns 0, 1..p, then p x p), w = exp(eta - shift)."""
        X = self.X
        n, p = X.shape
        eta = X @ np.asarray(beta, float)
        top = eta.max() if shift else 0.0
        w = np.exp(eta - top)
        wx = w[:, None] * X
        moments = np.concatenate([w[:, None], wx, (wx[:, :, None] * X[:, None, :]).reshape(n, p * p)], axis=1)
        risk = _suffix_sums(moments, self.first)
        if self.late is not None:
            risk -= _suffix_sums(moments[self.late], self.late_first)
        tied = np.add.reduceat(moments[self.dead], self.tie_start)
        return eta, top, risk, tied

    @_quiet
    def expanded(self, beta, shift: bool):
        """Per event (one row per Efron risk set): 1/r0 and the weighted means; the summed
        second moments; the log-likelihood; the per-time second-moment sums (risk set, ties).

        ``shift`` scales the weights by exp(-max eta) (cancels in every ratio; added back to the
        log-likelihood), as R does; lifelines does not.
        """
        return self._expanded(beta, shift)

    def _expanded(self, beta, shift: bool):
        # the body of ``expanded`` for callers already inside np.errstate (a Newton iteration
        # evaluates it a dozen times per fit, hundreds of fits per cohort)
        p = self.X.shape[1]
        eta, top, risk, tied = self._sums(beta, shift)
        g, frac = self.group, self.frac
        inv_r0 = 1.0 / (risk[g, 0] - frac * tied[g, 0])
        means = (risk[g, 1:p + 1] - frac[:, None] * tied[g, 1:p + 1]) * inv_r0[:, None]
        # the second moments only as their per-time sums, weighted (no events x p x p array)
        a = np.add.reduceat(inv_r0, self.tie_start)
        b = np.add.reduceat(frac * inv_r0, self.tie_start)
        s2, d2 = risk[:, p + 1:], tied[:, p + 1:]
        second = (a @ s2 - b @ d2).reshape(p, p)
        loglik = float(eta[self.dead].sum() + np.log(inv_r0).sum() - self.dead.size * top)
        return inv_r0, means, second, loglik, (s2.reshape(-1, p, p), d2.reshape(-1, p, p))

    @_quiet
    def derivatives(self, beta, shift: bool = False):
        """(hessian, gradient, loglik) of the Efron log partial likelihood at ``beta``.

        >>> rs = RiskSets([1, 2, 3], [1, 1, 0], [[0.0], [1.0], [1.0]])
        >>> h, g, ll = rs.derivatives([0.0])
        >>> round(ll, 6), g.round(6).tolist()   # R: loglik -1.791759
        (-1.791759, [-0.666667])
        """
        _, means, second, loglik, _ = self._expanded(beta, shift)
        gradient = self._dead_sum() - means.sum(0)
        hessian = means.T @ means - second
        return hessian, gradient, loglik

    @_quiet
    def per_time(self, beta):
        """Per distinct event time: score (k, p) and information (k, p, p), and the log-likelihood."""
        inv_r0, means, _, loglik, (s2, d2) = self._expanded(beta, shift=True)
        g, frac = self.group, self.frac
        second = (s2[g] - frac[:, None, None] * d2[g]) * inv_r0[:, None, None]
        scores = np.add.reduceat(self.X[self.dead] - means, self.tie_start)
        infos = np.add.reduceat(second - means[:, :, None] * means[:, None, :], self.tie_start)
        return loglik, scores, infos


def efron_terms(start, stop, event, X, beta):
    """Efron log partial likelihood, and per distinct event time its score and information.

    Counting-process risk sets: a row is at risk at t when start < t <= stop (use
    ``start = -inf`` for right-censored data). Returns ``(loglik, times, scores, infos)``
    with ``scores`` of shape (k, p) and ``infos`` (k, p, p), one per event time; the total
    score is ``scores.sum(0)`` and the information ``infos.sum(0)``.

    >>> ll, times, u, i = efron_terms([-np.inf] * 3, [1, 2, 3], [1, 1, 0], [[0.0], [1.0], [1.0]], [0.0])
    >>> round(float(ll), 6), times.tolist(), u.sum(0).round(6).tolist()  # R loglik: -1.791759
    (-1.791759, [1.0, 2.0], [-0.666667])
    """
    start = np.asarray(start, float)
    counting = bool(np.isfinite(start).any())
    rs = RiskSets(stop, event, X, start=start if counting else None)
    p = rs.n_features
    if rs.times.size == 0:
        return 0.0, rs.times, np.zeros((0, p)), np.zeros((0, p, p))
    loglik, scores, infos = rs.per_time(beta)  # an empty risk set gives inf, which the caller refuses
    return loglik, rs.times, scores, infos


def efron_information_at_zero(durations, events, X):
    """The Efron information matrix at beta = 0 for right-censored data (what ``coxph`` tests
    for singular columns), in O(n log n).

    >>> X = [[0.0], [1.0], [1.0], [0.0]]
    >>> efron_information_at_zero([1, 2, 2, 3], [1, 1, 1, 0], X).round(6).tolist()
    [[0.722222]]
    """
    rs = RiskSets(durations, events, X)
    if rs.times.size == 0:
        return np.zeros((rs.n_features, rs.n_features))
    hessian, _, _ = rs.derivatives(np.zeros(rs.n_features), shift=True)
    return -hessian


def newton_raphson(terms, beta, max_iter=100, accept_eps=1e-12, done_eps=1e-12, halvings=40):
    """Maximise a log-likelihood by Newton–Raphson with step halving, as R's ``coxph`` iterates
    (Therneau & Grambsch 2000, sec. 3.3).

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


class NotConverged(Exception):
    """The damped iteration stopped on a matrix it cannot solve or a NaN step."""


class _StepSizer:
    """lifelines' step-size rule: shrink after a long step, grow back after shrinking norms."""

    def __init__(self, initial: float):
        self.initial, self.size, self.temper_back_up, self.norms = initial, initial, False, []

    def update(self, norm_of_delta: float) -> float:
        self.norms.append(norm_of_delta)
        if self.temper_back_up:
            self.size = min(self.size * 1.3, self.initial)
        if norm_of_delta >= 15.0:
            self.size *= 0.1
            self.temper_back_up = True
        elif 15.0 > norm_of_delta > 5.0:
            self.size *= 0.25
            self.temper_back_up = True
        last = self.norms[-3:]   # np.diff(...) < 0 of three floats, without the arrays
        decreasing = len(last) == 3 and last[1] - last[0] < 0 and last[2] - last[1] < 0
        if len(self.norms) >= 3 and not decreasing:
            self.size *= 0.98
        if decreasing:
            self.size = min(self.size * 1.3, 1.0)
        return self.size


def damped_newton(derivatives, n_features: int, precision=1e-7, r_precision=1e-9, max_steps=500,
                  step_size=0.95, counting_process: bool = False):
    """Maximise a log-likelihood with lifelines' damped Newton iteration.

    ``derivatives(beta) -> (hessian, gradient, loglik)``. The step ``step_size x
    solve(-hessian, gradient)`` (Cholesky) stops when its norm or the Newton decrement is below
    ``precision`` or the log-likelihood changes by less than ``r_precision`` relative.
    ``counting_process`` selects the variant of ``CoxTimeVaryingFitter`` (the last step is
    taken, its norm includes the step size, no log-likelihood rule). Returns ``(beta,
    loglik, hessian, converged)``; raises :class:`NotConverged` on a matrix that is not
    positive definite or a NaN step.

    >>> f = lambda b: (-2 * np.eye(1), -2 * (b - 2), -1 - float(((b - 2) ** 2).sum()))
    >>> beta, ll, _, ok = damped_newton(f, 1, precision=1e-12)
    >>> round(float(beta[0]), 9), ok
    (2.0, True)
    """
    beta = np.zeros(n_features)
    sizer = _StepSizer(step_size)
    step, delta, previous_ll, i = sizer.size, np.zeros(n_features), 0.0, 0
    while True:
        if not counting_process:
            beta = beta + step * delta
        i += 1
        h, g, ll = derivatives(beta)
        try:
            direction = linalg.solve(-h, g, assume_a="pos", check_finite=counting_process)
        except (ValueError, linalg.LinAlgError) as err:
            raise NotConverged(str(err)) from None
        delta = step * direction if counting_process else direction
        if np.isnan(delta).any():
            raise NotConverged("the step has NaN values")
        hessian = h
        norm_delta = linalg.norm(delta) if delta.size else 0.0
        decrement = g.dot(direction) / 2
        stop, converged = True, True
        if norm_delta < precision or decrement < precision:
            pass
        elif not counting_process and previous_ll != 0 and abs(ll - previous_ll) / (-previous_ll) < r_precision:
            pass
        elif i >= max_steps or step <= (1e-4 if counting_process else 1e-5) or (abs(ll) < 1e-4 and norm_delta > 1):
            converged = False
        else:
            stop = False
        previous_ll = ll
        step = sizer.update(norm_delta)
        if counting_process:
            beta = beta + delta
        if stop:
            return beta, ll, hessian, converged


def _mean_sd(X):
    """Column means and SDs (n - 1) computed as pandas computes them (lifelines standardises so)."""
    cols = np.ascontiguousarray(X.T)
    mean = cols.sum(axis=1) / cols.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(((mean[:, None] - cols) ** 2).sum(axis=1) / (cols.shape[1] - 1))
    return mean, sd


def fit_standardised(stop, event, X, start=None, **options):
    """A Cox fit as lifelines makes it: covariates standardised (mean 0, SD 1), the damped
    iteration of :func:`damped_newton`, estimates scaled back.

    Returns ``(coef, variance, loglik, converged)``; raises :class:`NotConverged`, or
    ``LinAlgError`` when the final information matrix cannot be inverted. ``start`` given:
    counting-process data, as ``CoxTimeVaryingFitter``.

    >>> coef, var, ll, ok = fit_standardised([2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [1, 1, 1, 1, 0, 1, 1, 1, 0, 1],
    ...                                      [[1], [1], [1], [0], [1], [0], [1], [0], [0], [0]], precision=1e-12)
    >>> round(float(np.exp(coef[0])), 4), ok   # R coxph: HR 4.145113
    (4.1451, True)
    """
    # an ill-conditioned step matrix (a diverging fit) makes scipy warn; the caller judges the
    # fit by its estimates, so the warning would only be noise in a notebook
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        return _fit_standardised(stop, event, X, start, options)


def _fit_standardised(stop, event, X, start, options):
    X = np.asarray(X, float).reshape(len(stop), -1)
    counting = start is not None
    if counting:  # CoxTimeVaryingFitter standardises the rows as given, CoxPHFitter once sorted
        mean, sd = _mean_sd(X)
    rs = RiskSets(stop, event, X, start=start)
    if not counting:
        mean, sd = _mean_sd(rs.X)
    rs.X = (rs.X - mean) / sd
    beta, loglik, hessian, converged = damped_newton(rs.derivatives, rs.n_features, counting_process=counting,
                                                     **options)
    variance = -linalg.inv(hessian) / np.outer(sd, sd)
    return beta / sd, variance, float(loglik), converged
