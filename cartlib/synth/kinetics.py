"""CAR-T cellular kinetics: the expansion / biphasic-contraction curve and its qPCR sampling.

The curve is the empirical CTL019 model of Mueller et al. (Blood 2017;130:2317) as used by
Stein et al. (CPT Pharmacometrics Syst Pharmacol 2019;8:285): exponential growth from the
infused level to Cmax at Tmax, then a fast and a slow (persistence) exponential decline.
Written here because no library ships it; it is four lines of algebra.
"""
from __future__ import annotations

import numpy as np


def cart_curve(t, c0, cmax, tmax, frac_fast, alpha, beta):
    """True transgene level (copies/ug) at days ``t`` for each patient (rows).

    Parameters broadcast per patient (1-D arrays of length n); ``t`` is (n, m) or (m,).

    >>> c = cart_curve(np.array([0.0, 10.0, 20.0]), np.array([10.0]), np.array([1e4]),
    ...                np.array([10.0]), np.array([0.9]), np.array([0.3]), np.array([0.01]))
    >>> [round(float(v)) for v in c[0]]
    [10, 10000, 1353]
    """
    t = np.asarray(t, dtype=float)
    if t.ndim == 1:
        t = np.broadcast_to(t, (len(cmax), t.size))
    col = [np.asarray(a, float)[:, None] for a in (c0, cmax, tmax, frac_fast, alpha, beta)]
    c0, cmax, tmax, frac_fast, alpha, beta = col
    rate = np.log(cmax / c0) / tmax
    rising = c0 * np.exp(rate * np.clip(t, 0, tmax))
    s = np.clip(t - tmax, 0, None)
    falling = cmax * (frac_fast * np.exp(-alpha * s) + (1 - frac_fast) * np.exp(-beta * s))
    return np.where(t <= tmax, rising, falling)


def time_below(level, cmax, tmax, frac_fast, alpha, beta, horizon=20000.0):
    """First day after Tmax at which the declining curve reaches ``level`` (vectorised bisection).

    Returns Tmax where Cmax is already below the level, and ``horizon`` if never reached.

    >>> d = time_below(100.0, np.array([1e4]), np.array([10.0]), np.array([1.0]),
    ...                np.array([np.log(10) / 10]), np.array([0.01]))
    >>> round(float(d[0]), 3)
    30.0
    """
    cmax = np.asarray(cmax, float)
    lo = np.zeros_like(cmax)
    hi = np.full_like(cmax, horizon - np.asarray(tmax, float).max())

    def level_at(s):
        return cmax * (frac_fast * np.exp(-alpha * s) + (1 - frac_fast) * np.exp(-beta * s))

    never = level_at(hi) > level
    for _ in range(80):
        mid = (lo + hi) / 2
        above = level_at(mid) > level
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    out = np.where(cmax <= level, 0.0, hi) + tmax
    return np.where(never, horizon, out)


def schedule(rng, n, days, jitter, pre_day_range):
    """Sampling days (n, m): a pre-infusion day, then nominal days with symmetric jitter.

    Jitter of 0.5 means "day d-0.5 or d+0.5" (e.g. the day-10/11 visit); days are integers.

    >>> s = schedule(np.random.default_rng(0), 2, [7, 10.5], [0, 0.5], (-5, -1))
    >>> s.shape, bool((s[:, 1] == 7).all()), set(s[:, 2]) <= {10, 11}
    ((2, 3), True, True)
    """
    days = np.asarray(days, float)
    jitter = np.asarray(jitter, float)
    u = rng.uniform(-1, 1, size=(n, days.size))
    noisy = days + np.where(jitter == 0.5, np.sign(u) * 0.5, np.round(u * jitter))
    pre = rng.integers(pre_day_range[0], pre_day_range[1] + 1, size=(n, 1))
    out = np.concatenate([pre, noisy], axis=1)
    return np.maximum.accumulate(np.round(out), axis=1)


def stop_after_two_blq(quantifiable, sampled):
    """Mask of samples actually taken: monitoring ends after two consecutive BLQ results.

    ``quantifiable`` and ``sampled`` are (n, m) booleans over post-infusion visits.

    >>> q = np.array([[True, False, False, True]])
    >>> stop_after_two_blq(q, np.ones((1, 4), bool)).tolist()
    [[True, True, True, False]]
    """
    blq = (~quantifiable) & sampled
    both = np.zeros_like(blq)
    both[:, 1:] = blq[:, 1:] & blq[:, :-1]
    stopped_before = np.zeros_like(blq)
    stopped_before[:, 1:] = np.cumsum(both, axis=1)[:, :-1] > 0
    return sampled & ~stopped_before
