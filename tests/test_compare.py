"""Group comparisons against base R (goldens from tests/golden/compare/make_golden.R)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartlib.stats.compare import chi_square, clopper_pearson, correlation, fisher_exact, mann_whitney, t_test

GOLD = Path(__file__).parent / "golden" / "compare"
TOL = 1e-6
SAMPLES = pd.read_csv(GOLD / "samples.csv")
TWO = pd.read_csv(GOLD / "two_sample.csv").set_index("set")
PAIRS = pd.read_csv(GOLD / "pairs.csv")
CORR = pd.read_csv(GOLD / "correlation.csv").set_index("set")
CONT = pd.read_csv(GOLD / "contingency.csv").set_index("table")


def _xy(name):
    d = SAMPLES[SAMPLES.set == name]
    return d.value[d.arm == "x"].to_numpy(), d.value[d.arm == "y"].to_numpy()


def _table(name):
    d = pd.read_csv(GOLD / "tables.csv").query("table == @name")
    m = np.zeros((d.row.max(), d.col.max()), dtype=int)
    m[d.row - 1, d.col - 1] = d["count"]
    return m


@pytest.mark.parametrize("name", TWO.index)
def test_mann_whitney_matches_wilcox_test(name):
    x, y = _xy(name)
    ref, res = TWO.loc[name], mann_whitney(x, y)
    assert (res.n_x, res.n_y) == (ref.nx, ref.ny)
    assert res.n_dropped == np.isnan(x).sum() + np.isnan(y).sum()
    assert res.statistic == pytest.approx(ref.W, rel=TOL)
    assert res.p_value == pytest.approx(ref.W_p, abs=TOL)


@pytest.mark.parametrize("name", TWO.index)
@pytest.mark.parametrize("kind", ["welch", "pooled"])
def test_t_test_matches_r(name, kind):
    x, y = _xy(name)
    ref, res = TWO.loc[name], t_test(x, y, equal_var=(kind == "pooled"))
    assert res.statistic == pytest.approx(ref[f"{kind}_t"], rel=TOL)
    assert res.df == pytest.approx(ref[f"{kind}_df"], rel=TOL)
    assert res.p_value == pytest.approx(ref[f"{kind}_p"], abs=TOL)
    assert (res.ci_lower, res.ci_upper) == pytest.approx((ref[f"{kind}_lo"], ref[f"{kind}_hi"]), rel=TOL)


@pytest.mark.parametrize("name", CORR.index)
def test_correlations_match_cor_test(name):
    d, ref = PAIRS[PAIRS.set == name], CORR.loc[name]
    sp, pe = correlation(d.x, d.y, "spearman"), correlation(d.x, d.y, "pearson")
    assert sp.n == pe.n == ref.n and sp.n_dropped == len(d) - ref.n
    assert sp.estimate == pytest.approx(ref.rho, rel=TOL) and sp.p_value == pytest.approx(ref.rho_p, abs=TOL)
    assert pe.estimate == pytest.approx(ref.r, rel=TOL) and pe.p_value == pytest.approx(ref.r_p, abs=TOL)
    assert (pe.ci_lower, pe.ci_upper) == pytest.approx((ref.r_lo, ref.r_hi), rel=TOL)


@pytest.mark.parametrize("name", [t for t in CONT.index if t != "job"])
def test_fisher_matches_fisher_test(name):
    ref, res = CONT.loc[name], fisher_exact(_table(name))
    assert res.p_value == pytest.approx(ref.fisher_p, abs=TOL)
    if not np.isnan(ref.fisher_or):
        # 2x2: conditional MLE and exact CI. fisher.test solves its equations with uniroot's
        # default tolerance (~1e-4; its CI bound for t2_a is 0.7 % off), so the 1e-6 check is
        # against the same equations solved by R to 1e-13 (tight_*), and fisher.test's own
        # numbers are checked to its precision.
        got = (res.odds_ratio, res.ci_lower, res.ci_upper)
        assert got == pytest.approx((ref.tight_or, ref.tight_lo, ref.tight_hi), rel=TOL, abs=1e-12)
        assert got == pytest.approx((ref.fisher_or, ref.fisher_lo, ref.fisher_hi), rel=1e-2, abs=1e-12)


def test_fisher_large_table_refused_with_reason():
    res = fisher_exact(_table("job"))
    assert np.isnan(res.p_value) and "too large" in res.reason


def test_fisher_rxc_tolerance_rule_by_hand():
    # 2x3 table [[1,0,0],[0,1,1]]: margins rows (1,2), cols (1,1,1); the 3 possible tables
    # (the row-1 count sits in column 1, 2 or 3) each have probability 1/3, so the
    # two-sided p is 1 only if equal probabilities count as "as extreme" (R's 1e-7 rule).
    assert fisher_exact([[1, 0, 0], [0, 1, 1]]).p_value == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("name", CONT.index)
def test_chi_square_matches_chisq_test(name):
    ref, t = CONT.loc[name], _table(name)
    yates, plain = chi_square(t), chi_square(t, correct=False)
    assert yates.statistic == pytest.approx(ref.chisq, rel=TOL) and yates.df == ref.chisq_df
    assert yates.p_value == pytest.approx(ref.chisq_p, abs=TOL)
    assert plain.statistic == pytest.approx(ref.chisq_nc, rel=TOL)
    assert plain.p_value == pytest.approx(ref.chisq_nc_p, abs=TOL)


@pytest.mark.parametrize("row", pd.read_csv(GOLD / "binom.csv").itertuples(), ids=lambda r: f"{r.k}/{r.n}")
def test_clopper_pearson_matches_binom_test(row):
    res = clopper_pearson(row.k, row.n)
    assert res.estimate == pytest.approx(row.p, abs=1e-15)
    assert (res.lower, res.upper) == pytest.approx((row.lo, row.hi), abs=TOL)
    assert res.p_value == pytest.approx(row.p_value, abs=TOL)


def test_paper_response_rate_interval():
    # the paper's 49/50 CR rate: R binom.test gives [0.8935, 0.9995]
    res = clopper_pearson(49, 50)
    assert (round(res.lower, 4), round(res.upper, 4)) == (0.8935, 0.9995)


def test_too_few_values_give_nan_with_reason():
    res = t_test([1], [2, 3])
    assert np.isnan(res.p_value) and res.reason == "fewer than 2 values in a group"
    res = mann_whitney([np.nan], [2, 3, 4])
    assert np.isnan(res.p_value) and res.reason == "fewer than 1 value in a group" and res.n_dropped == 1
    assert mann_whitney([2.0], [2, 2]).reason == "all values tied: the rank statistic has no variance"


def test_mann_whitney_with_one_value_in_a_group_matches_r():
    # R: wilcox.test(5, c(1, 2, 3, 4, 6), exact = FALSE)$p.value; with NaN dropped first
    assert abs(mann_whitney([5.0, np.nan], [1, 2, 3, 4, 6]).p_value - 0.5581846494) < 1e-9
    assert np.isnan(correlation([1, 2], [3, 4]).p_value)
    assert correlation([1, 1, 1], [1, 2, 3]).reason == "a variable is constant"


def test_bad_input_raises():
    with pytest.raises(ValueError):
        fisher_exact([[1, -1], [2, 3]])
    with pytest.raises(ValueError):
        correlation([1, 2, 3], [1, 2], "spearman")
    with pytest.raises(ValueError):
        clopper_pearson(5, 3)


def test_empty_row_or_column():
    # an all-zero column leaves Fisher's p unchanged (R: 1 for both) but gives no 2x2 odds ratio;
    # chi-square expected counts of 0 make the statistic undefined (R: NaN)
    res = fisher_exact([[3, 0, 5], [2, 0, 4]])
    assert res.p_value == pytest.approx(fisher_exact([[3, 5], [2, 4]]).p_value) and np.isnan(res.odds_ratio)
    assert np.isnan(chi_square([[3, 0, 5], [2, 0, 4]]).p_value)


def test_mann_whitney_equals_scipy_asymptotic_test():
    """The written-out normal approximation gives scipy's statistic and p, ties included."""
    from scipy import stats as sps

    from cartlib.stats.compare import mann_whitney

    rng = np.random.default_rng(5)
    for nx, ny in ((1, 5), (7, 9), (30, 41)):
        x, y = rng.integers(0, 6, nx).astype(float), rng.integers(1, 8, ny).astype(float)
        ref = sps.mannwhitneyu(x, y, use_continuity=True, alternative="two-sided", method="asymptotic")
        got = mann_whitney(x, y)
        assert got.statistic == ref.statistic
        assert got.p_value == pytest.approx(ref.pvalue, rel=1e-13, abs=1e-300)
