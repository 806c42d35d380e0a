"""Small building blocks of the latent-variable model: decisions with or without exact quotas,
and monotone "pins" that move order statistics onto published values.

The generative model draws every random quantity once; calibration never redraws, it only
moves thresholds (a binary outcome becomes "the k largest latents" instead of "latent > 0")
or applies a monotone map to a continuous variable. Ranks, and so every association the
model builds in, are preserved.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def expit(x):
    """Logistic function.

    >>> float(expit(0.0))
    0.5
    """
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def logit(p):
    """Log-odds.

    >>> float(logit(0.5))
    0.0
    """
    return np.log(p / (1.0 - p))


def lognormal(rng, median, sd, size):
    """Log-normal draws given the median and the SD of the log.

    >>> bool((lognormal(np.random.default_rng(0), 10.0, 0.5, 4) > 0).all())
    True
    """
    return median * np.exp(sd * rng.standard_normal(size))


def decide(latent, quota=None, eligible=None):
    """True where the latent is above 0, or, with ``quota`` k, for the k largest latents.

    ``eligible`` (bool array) restricts who can be True; a quota larger than the number of
    eligible patients selects all eligible ones. Ties go to the earlier patient.

    >>> decide(np.array([-1.0, 2.0, 0.5])).tolist()
    [False, True, True]
    >>> decide(np.array([-1.0, 2.0, 0.5]), quota=1).tolist()
    [False, True, False]
    """
    latent = np.asarray(latent, dtype=float)
    ok = np.ones(latent.shape, bool) if eligible is None else np.asarray(eligible, bool)
    if quota is None:
        return (latent > 0) & ok
    order = np.argsort(-np.where(ok, latent, -np.inf), kind="stable")
    out = np.zeros(latent.shape, bool)
    chosen = order[: int(quota)]
    out[chosen[ok[chosen]]] = True
    return out


def ordinal(latent, cuts, quotas=None):
    """Ordinal grade 0..len(cuts): the number of cuts the latent exceeds.

    ``quotas`` maps a grade g to the exact number of patients with grade >= g; grades
    without a quota keep the cut-based split inside the band the quotas allow.

    >>> ordinal(np.array([-1.0, 0.5, 3.0]), [0.0, 1.0, 2.0]).tolist()
    [0, 1, 3]
    >>> ordinal(np.array([-1.0, 0.5, 3.0]), [0.0, 1.0, 2.0], {1: 3}).tolist()
    [1, 1, 3]
    """
    latent = np.asarray(latent, dtype=float)
    grade = np.searchsorted(np.asarray(cuts, float), latent, side="left").astype(int)
    for g, k in sorted((quotas or {}).items()):
        at_least = decide(latent, k)
        grade = np.where(at_least, np.maximum(grade, g), np.minimum(grade, g - 1))
    return grade


def categorical(logits, quotas=None):
    """One category index per row from a logits matrix (Gumbel noise already added).

    ``quotas`` (one count per category, summing to the rows) assigns exactly that many
    rows to each category: categories are filled from the rarest upwards, each taking
    the rows with the highest latent among those left.

    >>> categorical(np.array([[2.0, 0.0], [1.0, 0.5], [0.0, 3.0]])).tolist()
    [0, 0, 1]
    >>> categorical(np.array([[2.0, 0.0], [1.0, 0.5], [0.0, 3.0]]), [1, 2]).tolist()
    [0, 1, 1]
    """
    logits = np.asarray(logits, dtype=float)
    if quotas is None:
        return np.argmax(logits, axis=1)
    if sum(quotas) != logits.shape[0]:
        raise ValueError("category quotas must add up to the number of rows")
    out = np.full(logits.shape[0], -1)
    for c in np.argsort(quotas, kind="stable"):
        free = out < 0
        pick = decide(logits[:, c], quotas[c], eligible=free)
        out[pick] = c
    return out


def pin_ranks(x, rank_values: Mapping[int, float]):
    """Monotone piecewise-linear map sending the r-th smallest x (1-based) to a value.

    Between pinned ranks the map interpolates; beyond the outermost pins it shifts by the
    nearest pin's offset, so the order of all values is kept.

    >>> pin_ranks(np.array([3.0, 1.0, 2.0]), {1: 10.0, 3: 30.0}).tolist()
    [30.0, 10.0, 20.0]
    """
    x = np.asarray(x, dtype=float)
    # ties are broken by position so that every order statistic is a distinct point
    spread = (np.ptp(x) if x.size > 1 else 0.0) or 1.0
    x = x + np.argsort(np.argsort(x, kind="stable"), kind="stable") * spread * 1e-9
    srt = np.sort(x)
    ranks = sorted(r for r in rank_values if 1 <= r <= len(x))
    if not ranks:
        return x.copy()
    src = np.array([srt[r - 1] for r in ranks])
    dst = np.array([rank_values[r] for r in ranks], float)
    out = np.interp(x, src, dst)
    out = np.where(x < src[0], x - src[0] + dst[0], out)
    return np.where(x > src[-1], x - src[-1] + dst[-1], out)


def pin_counts(x, counts_below: Mapping[float, int]):
    """Monotone map after which exactly ``counts_below[t]`` values are < t, for each t.

    The midpoint between the k-th and (k+1)-th smallest x is sent to t; the extremes stay.

    >>> y = pin_counts(np.array([1.0, 2.0, 3.0, 4.0]), {2.5: 3})
    >>> int((y < 2.5).sum())
    3
    """
    x = np.asarray(x, dtype=float)
    srt = np.sort(x)
    src, dst = [], []
    for t, k in sorted(counts_below.items()):
        k = int(k)
        if k <= 0:
            src.append(srt[0] - 1e-9)
        elif k >= len(x):
            src.append(srt[-1] + 1e-9)
        else:
            src.append((srt[k - 1] + srt[k]) / 2)
        dst.append(t)
    lo = min(srt[0], min(dst)) - 1.0
    hi = max(srt[-1], max(dst)) + 1.0
    src = np.array([lo, *src, hi])
    dst = np.array([lo, *dst, hi])
    if np.any(np.diff(src) <= 0) or np.any(np.diff(dst) <= 0):
        raise ValueError("count targets are not monotone")
    return np.interp(x, src, dst)
