"""Aalen–Johansen CIF and Gray's test against R cmprsk (goldens from tests/golden/cmprsk/make_golden.R)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartlib.stats.competing import CumulativeIncidence, gray_test

GOLD = Path(__file__).parent / "golden" / "cmprsk"
DATASETS = ["helpex", "ties", "mgus2", "cart", "nocause1"]
TOL = 1e-6


def _data(name):
    return pd.read_csv(GOLD / f"data_{name}.csv")


@pytest.mark.parametrize("name", DATASETS)
def test_cuminc_estimate_and_variance_match_r(name):
    d, gold = _data(name), pd.read_csv(GOLD / f"cuminc_{name}.csv")
    for (by, group, cause), ref in gold.groupby(["by", "group", "cause"]):
        fit = CumulativeIncidence().fit(d.time, d.status, cause=cause, groups=None if by == "none" else d.group)
        tab = fit.table_[fit.table_.group == (fit.groups_[0] if by == "none" else group)]
        # cuminc lists (0,0), then each cause time twice (before/after the jump), then the last time
        ref = ref.iloc[::2]
        assert len(tab) == len(ref)
        np.testing.assert_allclose(tab.time, ref.time, rtol=0, atol=0)
        np.testing.assert_allclose(tab.estimate, ref.est, rtol=0, atol=TOL)
        np.testing.assert_allclose(tab.variance, ref["var"], rtol=0, atol=TOL)


@pytest.mark.parametrize("name", DATASETS)
def test_at_matches_r_timepoints(name):
    d, gold = _data(name), pd.read_csv(GOLD / f"timepoints_{name}.csv")
    for (by, cause), ref in gold.groupby(["by", "cause"]):
        fit = CumulativeIncidence().fit(d.time, d.status, cause=cause, groups=None if by == "none" else d.group)
        for row in ref.itertuples():
            est, var, _, _ = fit.at(row.time, None if by == "none" else row.group)
            if np.isnan(row.est):   # R: beyond the group's follow-up
                assert np.isnan(est)
            else:
                assert est == pytest.approx(row.est, abs=TOL)
                assert var == pytest.approx(row.var, abs=TOL)


@pytest.mark.parametrize("name", DATASETS)
def test_gray_test_matches_r(name):
    d, gold = _data(name), pd.read_csv(GOLD / f"gray_{name}.csv")
    for row in gold.itertuples():
        strata = None if row.strata == "none" else d.strata
        res = gray_test(d.time, d.status, d.group, cause=row.cause, strata=strata, rho=row.rho)
        assert res.statistic == pytest.approx(row.stat, rel=TOL)
        assert res.p_value == pytest.approx(row.pv, abs=TOL)
        assert res.df == row.df and res.reason is None


def test_hand_computed_curve_with_tie_across_causes():
    # t=1: 6 at risk, 1 cause-1 -> F=1/6, S=5/6; t=2: 5 at risk, one of each cause leave together
    # -> F=1/6+5/6*1/5=1/3, S=1/2; t=3 censored; t=4: 2 at risk, 1 cause-1 -> F=1/3+1/2*1/2=7/12.
    fit = CumulativeIncidence().fit([1, 2, 2, 3, 4, 5], [1, 2, 1, 0, 1, 0])
    assert fit.table_.estimate.tolist() == pytest.approx([0, 1 / 6, 1 / 3, 7 / 12])
    # first-time variance: d(n-d)/(n^2 (n-1)) = 1*5/(36*5)
    assert fit.table_.variance.iloc[1] == pytest.approx(1 / 36)


def test_row_order_and_tie_order_do_not_matter():
    d = _data("ties")
    perm = np.random.default_rng(0).permutation(len(d))
    a = CumulativeIncidence().fit(d.time, d.status, groups=d.group).table_
    b = CumulativeIncidence().fit(d.time[perm], d.status[perm], groups=d.group[perm]).table_
    pd.testing.assert_frame_equal(a, b)
    g1 = gray_test(d.time, d.status, d.group, strata=d.strata)
    g2 = gray_test(d.time[perm], d.status[perm], d.group[perm], strata=d.strata[perm])
    assert g1.statistic == pytest.approx(g2.statistic, rel=1e-12)


def test_confidence_intervals_by_formula():
    d = _data("cart")
    ll = CumulativeIncidence(alpha=0.05).fit(d.time, d.status).table_.iloc[1:]
    pl = CumulativeIncidence(alpha=0.05, ci="plain").fit(d.time, d.status).table_.iloc[1:]
    z = 1.959963984540054
    se = np.sqrt(ll.variance)
    np.testing.assert_allclose(pl.ci_lower, np.clip(ll.estimate - z * se, 0, 1))
    k = z * se / (ll.estimate * np.log(ll.estimate))
    np.testing.assert_allclose(ll.ci_upper, ll.estimate ** np.exp(k))
    assert (ll.ci_lower < ll.estimate).all() and (ll.estimate < ll.ci_upper).all()


def test_missing_values_dropped_and_counted():
    fit = CumulativeIncidence().fit([1, 2, np.nan, 4], [1, 0, 1, np.nan])
    assert fit.n_dropped_ == 2 and fit.summary.n.iloc[0] == 2


def test_gray_test_without_cause_events_is_nan_with_reason():
    res = gray_test([1, 2, 3, 4], [2, 0, 2, 0], ["a", "a", "b", "b"])
    assert np.isnan(res.statistic) and np.isnan(res.p_value) and "singular" in res.reason
    one = gray_test([1, 2], [1, 0], ["a", "a"])
    assert np.isnan(one.p_value) and one.reason == "fewer than 2 groups"


def test_bad_input_raises():
    with pytest.raises(ValueError):
        CumulativeIncidence().fit([-1, 2], [1, 0])
    with pytest.raises(ValueError):
        CumulativeIncidence(ci="log")


def test_numeric_groups_in_numeric_order():
    fit = CumulativeIncidence().fit([1, 2, 3, 4, 5, 6], [1, 0, 1, 0, 1, 0], groups=[10, 10, 2, 2, 1, 1])
    assert fit.groups_ == [1, 2, 10]


def test_gray_statistic_does_not_depend_on_group_labels():
    # the K scores sum to 0, so dropping any one group (R drops the last level) gives the same statistic
    d = _data("ties")
    relabelled = d.group.map({"g1": "z", "g2": "a", "g3": "m"})
    a = gray_test(d.time, d.status, d.group, strata=d.strata)
    b = gray_test(d.time, d.status, relabelled, strata=d.strata)
    assert a.statistic == pytest.approx(b.statistic, rel=1e-10) and a.df == b.df == 2
