"""Group comparisons, each equal to the base-R test named in its docstring.

Mann–Whitney (normal approximation, tie and continuity correction), Fisher's exact
test (2x2 with conditional MLE odds ratio and CI; r x c), chi-square (Yates for 2x2),
t-test (Welch by default), Pearson / Spearman correlation (Spearman p by the t
approximation) and the Clopper–Pearson interval. Missing values are dropped and
counted (``n_dropped``); a test that cannot be computed returns NaN with ``reason``.
Goldens: ``tests/golden/compare/make_golden.R``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import special, stats
from scipy.stats.contingency import odds_ratio

__all__ = ["TwoSampleResult", "TableResult", "CorrelationResult", "ProportionResult",
           "mann_whitney", "t_test", "fisher_exact", "chi_square", "correlation", "clopper_pearson"]

_NAN = float("nan")


@dataclass(frozen=True)
class TwoSampleResult:
    """Two-sample test: statistic (W, or t), p-value, df (t-test), CI of the mean difference (t-test)."""

    statistic: float
    p_value: float
    n_x: int
    n_y: int
    n_dropped: int = 0
    df: float = _NAN
    ci_lower: float = _NAN
    ci_upper: float = _NAN
    reason: str | None = None


@dataclass(frozen=True)
class TableResult:
    """Contingency-table test: p-value; chi-square statistic and df; Fisher 2x2 odds ratio and CI."""

    p_value: float
    statistic: float = _NAN
    df: float = _NAN
    odds_ratio: float = _NAN
    ci_lower: float = _NAN
    ci_upper: float = _NAN
    reason: str | None = None


@dataclass(frozen=True)
class CorrelationResult:
    """Correlation coefficient, its test p-value, complete pairs used, CI (Pearson only)."""

    estimate: float
    p_value: float
    n: int
    method: str
    n_dropped: int = 0
    ci_lower: float = _NAN
    ci_upper: float = _NAN
    reason: str | None = None


@dataclass(frozen=True)
class ProportionResult:
    """Proportion k/n with its exact (Clopper–Pearson) CI and the binomial test p-value against 0.5."""

    estimate: float
    lower: float
    upper: float
    p_value: float


def _finite(values):
    a = np.asarray(values, dtype=float).ravel()
    keep = ~np.isnan(a)
    return a[keep], int((~keep).sum())


def _two_samples(x, y, minimum: int = 2):
    (x, dx), (y, dy) = _finite(x), _finite(y)
    reason = f"fewer than {minimum} value{'s' if minimum > 1 else ''} in a group" if min(x.size, y.size) < minimum else None
    return x, y, dx + dy, reason


def mann_whitney(x, y) -> TwoSampleResult:
    """Wilcoxon rank-sum / Mann–Whitney test = R ``wilcox.test(x, y, exact=FALSE, correct=TRUE)``.

    ``statistic`` is R's W (rank sum of x minus n_x(n_x+1)/2); p from the normal
    approximation with the tie-corrected variance and a 0.5 continuity correction.

    >>> r = mann_whitney([1, 2, 2, 3], [2, 3, 3, 4, 5])
    >>> r.statistic, round(r.p_value, 4)
    (3.0, 0.0993)
    >>> round(mann_whitney([5], [1, 2, 3, 4, 6]).p_value, 4)  # R: 0.5582
    0.5582
    """
    # one value in a group is enough for R's normal approximation (Table 3 has groups of 1-2)
    x, y, dropped, reason = _two_samples(x, y, minimum=1)
    xy = np.concatenate([x, y])
    ranks, ties = _average_ranks(xy)
    if reason is None and ties.size < 2:
        reason = "all values tied: the rank statistic has no variance"
    if reason:
        return TwoSampleResult(_NAN, _NAN, x.size, y.size, dropped, reason=reason)
    # scipy's mannwhitneyu(method="asymptotic", use_continuity=True) written out: the same sums
    # in the same order, without its per-call input handling (Table 3 calls this dozens of times)
    n1, n2 = x.size, y.size
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    n = n1 + n2
    sd = np.sqrt(n1 * n2 / 12 * ((n + 1) - np.sum(ties ** 3 - ties) / (n * (n - 1))))
    z = (max(u1, n1 * n2 - u1) - n1 * n2 / 2 - 0.5) / sd
    p = float(np.clip(2 * special.ndtr(-z), 0.0, 1.0))
    return TwoSampleResult(float(u1), p, n1, n2, dropped)


def _average_ranks(values):
    """Ranks of ``values`` (ties get their average rank) and the size of each tie group in
    sorted order: ``scipy.stats.rankdata(values)`` and ``np.unique(values, return_counts=True)[1]``
    (as floats) in one sort, by scipy's own formula. Ranks are whole or half numbers, exact in
    floating point, so their sums are the same whichever way they are computed."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    new_value = np.r_[values.size > 0, ordered[1:] != ordered[:-1]]
    group = np.cumsum(new_value)
    bounds = np.r_[np.flatnonzero(new_value), values.size]
    ranks = np.empty(values.size)
    ranks[order] = 0.5 * (bounds[group] + bounds[group - 1] + 1)
    return ranks, np.diff(bounds).astype(float)


def t_test(x, y, equal_var: bool = False, alpha: float = 0.05) -> TwoSampleResult:
    """Two-sample t-test = R ``t.test(x, y)`` (Welch) or ``t.test(x, y, var.equal=TRUE)``.

    The CI is for mean(x) - mean(y).

    >>> r = t_test([1, 2, 2, 3], [2, 3, 3, 4, 5])
    >>> round(r.statistic, 4), round(r.df, 3), round(r.p_value, 4)
    (-2.1433, 6.959, 0.0695)
    """
    x, y, dropped, reason = _two_samples(x, y)
    if reason:
        return TwoSampleResult(_NAN, _NAN, x.size, y.size, dropped, reason=reason)
    res = stats.ttest_ind(x, y, equal_var=equal_var)
    ci = res.confidence_interval(1 - alpha)
    return TwoSampleResult(float(res.statistic), float(res.pvalue), x.size, y.size, dropped,
                           df=float(res.df), ci_lower=float(ci.low), ci_upper=float(ci.high))


def _table(table):
    t = np.asarray(table)
    if t.ndim != 2 or min(t.shape) < 2:
        raise ValueError("need a 2-D table with at least 2 rows and 2 columns")
    if np.any(t < 0) or np.any(t != np.round(t)):
        raise ValueError("table entries must be non-negative integers")
    return t.astype(np.int64)


def _nonempty(t):
    """The table without all-zero rows and columns (they do not change Fisher's p)."""
    return t[t.sum(1) > 0][:, t.sum(0) > 0]


def fisher_exact(table, alpha: float = 0.05, max_tables: float = 2e6, estimate: bool = True) -> TableResult:
    """Fisher's exact test = R ``fisher.test(table)``: 2x2 and r x c, two-sided.

    Two-sided p sums the probabilities (hypergeometric / multivariate hypergeometric
    with fixed margins) of all tables no more probable than the observed one, with
    R's relative tolerance 1e-7 for ties in probability. For 2x2 the odds ratio is
    the conditional maximum likelihood estimate and its exact CI, as R reports (R finds
    them with ``uniroot``'s loose default tolerance, so its digits beyond ~1e-4 relative,
    and occasionally its CI bounds at 1e-3, differ; these are the exact roots).
    An r x c table whose enumeration would exceed about ``max_tables`` tables gets
    p NaN with a ``reason`` (use ``chi_square``) rather than a long wait. ``estimate=False``
    skips the odds ratio and its CI (NaN) for a caller that needs only p: finding them takes
    more than ten times as long as the p-value.

    >>> r = fisher_exact([[3, 1], [1, 3]])
    >>> round(r.p_value, 4), round(r.odds_ratio, 4), round(r.ci_lower, 4), round(r.ci_upper, 2)
    (0.4857, 6.4083, 0.2117, 626.24)
    """
    full = _table(table)
    t = _nonempty(full)
    if min(t.shape) < 2:
        return TableResult(_NAN, reason="table has fewer than 2 non-empty rows or columns")
    if full.shape == (2, 2):
        p = stats.fisher_exact(t).pvalue
        if not estimate:
            return TableResult(float(p))
        est = odds_ratio(t, kind="conditional")
        ci = est.confidence_interval(1 - alpha)
        return TableResult(float(p), odds_ratio=float(est.statistic), ci_lower=float(ci.low), ci_upper=float(ci.high))
    work = _enumeration_size(t)
    if work > max_tables:
        return TableResult(_NAN, reason=f"table too large for exact enumeration (~{work:.1e} tables > max_tables)")
    return TableResult(_fisher_rxc(t))


def _oriented(t):
    if t.shape[0] > t.shape[1]:
        t = t.T   # fewer rows means fewer compositions per column
    return t[:, np.argsort(t.sum(0), kind="stable")]   # the two largest columns go to the vectorised tail


def _enumeration_size(t) -> float:
    """Upper bound on the number of tables the enumeration visits."""
    t = _oriented(t)
    rows = t.sum(1)
    return float(np.prod([len(_compositions(int(c), rows)) for c in t.sum(0)[:-1]]))


def _fisher_rxc(t) -> float:
    """Exact r x c p-value by enumerating every table with the observed margins.

    Hand-written because scipy's r x c ``fisher_exact`` differs from R (checked: it
    gives 0.7784 for the 4x4 table of R's ``fisher.test`` help, where R gives 0.7827).
    Tables are enumerated column by column (Freeman & Halton 1951), with the
    log-probabilities of the multivariate hypergeometric distribution; the last two
    columns are done at once with numpy and cached per remaining row margin. The p-value
    sums the tables with probability <= observed * (1 + 1e-7), R's tie tolerance.
    """
    t = _oriented(t)
    rows, cols = t.sum(1), t.sum(0)
    n = int(t.sum())
    lf = special.gammaln(np.arange(n + 1) + 1.0)
    const = lf[rows].sum() + lf[cols].sum() - lf[n]
    limit = (const - lf[t].sum()) + np.log1p(1e-7)
    cache = {}

    def tail(remaining):
        key = tuple(remaining)
        if key not in cache:
            comps = _compositions(int(cols[-2]), remaining)
            v = np.sort(-(lf[comps].sum(1) + lf[remaining - comps].sum(1)))
            cache[key] = (v, np.cumsum(np.exp(v - v[-1])))
        return cache[key]

    def mass(j, remaining, logp):
        if j == len(cols) - 2:
            v, cum = tail(remaining)
            k = np.searchsorted(v, limit - logp, side="right")
            return float(np.exp(logp + v[-1]) * cum[k - 1]) if k else 0.0
        return sum(mass(j + 1, remaining - c, logp - lf[c].sum()) for c in _compositions(int(cols[j]), remaining))

    return float(min(1.0, mass(0, rows, const)))


def _compositions(total, caps):
    """Array of all integer vectors c with 0 <= c <= caps and sum(c) == total (one per row)."""
    return _compositions_cached(int(total), tuple(int(c) for c in caps))


@functools.lru_cache(maxsize=200_000)
def _compositions_cached(total, caps):
    if len(caps) == 1:
        return np.array([[total]]) if total <= caps[0] else np.empty((0, 1), dtype=np.int64)
    rest = sum(caps[1:])
    parts = []
    for first in range(max(0, total - rest), min(caps[0], total) + 1):
        sub = _compositions_cached(total - first, caps[1:])
        parts.append(np.column_stack([np.full(len(sub), first), sub]))
    out = np.vstack(parts) if parts else np.empty((0, len(caps)), dtype=np.int64)
    out.flags.writeable = False   # shared by the cache
    return out


def chi_square(table, correct: bool = True) -> TableResult:
    """Pearson chi-square test of independence = R ``chisq.test(table, correct=correct)``.

    Yates' continuity correction applies to 2x2 tables only (as R). ``reason`` notes
    when an expected count is below 5 (R's "approximation may be incorrect").

    >>> r = chi_square([[12, 6], [5, 27]])
    >>> round(r.statistic, 4), r.df, round(r.p_value, 6)
    (11.1967, 1, 0.000819)
    """
    t = _table(table)
    if _nonempty(t).shape != t.shape:
        # expected counts of 0 make the statistic 0/0 (R returns NaN as well)
        return TableResult(_NAN, reason="a row or column total is 0")
    stat, p, df, expected = stats.chi2_contingency(t, correction=correct)
    note = "an expected count is below 5: the chi-square approximation may be poor" if expected.min() < 5 else None
    return TableResult(float(p), statistic=float(stat), df=int(df), reason=note)


def correlation(x, y, method: str = "spearman", alpha: float = 0.05) -> CorrelationResult:
    """Correlation test = R ``cor.test(x, y, method=method, exact=FALSE)``; pairs with a NaN are dropped.

    Spearman: rho is the Pearson correlation of mid-ranks; p from the t approximation
    t = rho sqrt((n-2)/(1-rho^2)) on n-2 df (what R does with ``exact=FALSE``).
    Pearson: r, t-test p and the Fisher-z CI (R needs n >= 4 for the CI).

    >>> r = correlation([1, 2, 2, 3, 5], [2, 1, 4, 4, 6])
    >>> round(r.estimate, 4), round(r.p_value, 4)
    (0.7632, 0.1333)
    """
    if method not in ("spearman", "pearson"):
        raise ValueError("method must be 'spearman' or 'pearson'")
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.size != y.size:
        raise ValueError("x and y must have the same length")
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y, n, dropped = x[keep], y[keep], int(keep.sum()), int((~keep).sum())
    if n < 3:
        return CorrelationResult(_NAN, _NAN, n, method, dropped, reason="fewer than 3 complete pairs")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return CorrelationResult(_NAN, _NAN, n, method, dropped, reason="a variable is constant")
    if method == "pearson":
        res = stats.pearsonr(x, y)
        lo, hi = (res.confidence_interval(1 - alpha) if n >= 4 else (_NAN, _NAN))
        return CorrelationResult(float(res.statistic), float(res.pvalue), n, method, dropped, float(lo), float(hi))
    rho = float(np.corrcoef(_average_ranks(x)[0], _average_ranks(y)[0])[0, 1])
    if abs(rho) >= 1:
        p = 0.0
    else:
        tstat = rho * np.sqrt((n - 2) / (1 - rho**2))
        p = float(2 * special.stdtr(n - 2, -abs(tstat)))   # stats.t.sf, without its per-call checks
    return CorrelationResult(rho, p, n, method, dropped)


def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> ProportionResult:
    """Proportion k/n with the exact Clopper–Pearson CI = R ``binom.test(k, n)``.

    >>> r = clopper_pearson(49, 50)
    >>> r.estimate, round(r.lower, 4), round(r.upper, 4)
    (0.98, 0.8935, 0.9995)
    """
    if n <= 0 or not 0 <= k <= n:
        raise ValueError("need 0 <= k <= n and n > 0")
    lo = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return ProportionResult(k / n, lo, hi, float(stats.binomtest(k, n).pvalue))
