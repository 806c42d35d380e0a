"""The hand-written fast paths give exactly what the slower, plainer code they replace gives.

A simulation study analyses thousands of cohorts, so the statistics avoid per-call pandas and
scipy overhead in a few places (ranks, one-row lookups, batched kinetic-model starts, a cached
sum). Each test below compares such a path with the library or the plain computation it
stands for, to the last bit where the arithmetic is the same.
"""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cartlib.io import example_cohort
from cartlib.pk import model_core as core
from cartlib.pk.nca import NCARules, daily_profile, partial_aucs
from cartlib.pk.summary import terminal_and_partial
from cartlib.pk.terminal import lambda_z
from cartlib.sections.common import model_keys, nan_to_none
from cartlib.stats.compare import correlation, fisher_exact, mann_whitney
from cartlib.stats.competing import CumulativeIncidence
from cartlib.stats.efron import RiskSets
from cartlib.stats.survival import KaplanMeier
from cartlib.synth import generate_cohort

RNG = np.random.default_rng(20251)


@pytest.mark.parametrize("trial", range(20))
def test_mann_whitney_and_spearman_equal_scipy(trial):
    x = RNG.integers(0, 6, RNG.integers(1, 30)).astype(float)   # many ties
    y = RNG.integers(0, 6, RNG.integers(1, 30)).astype(float)
    ours = mann_whitney(x, y)
    if np.unique(np.r_[x, y]).size > 1:
        ref = stats.mannwhitneyu(x, y, method="asymptotic", use_continuity=True)
        assert ours.statistic == ref.statistic
        np.testing.assert_allclose(ours.p_value, ref.pvalue, rtol=1e-12)
    else:
        assert np.isnan(ours.p_value) and "tied" in ours.reason
    z = x[: min(x.size, y.size)]
    w = y[: z.size]
    if z.size >= 3 and np.ptp(z) > 0 and np.ptp(w) > 0:
        ref = stats.spearmanr(z, w)
        res = correlation(z, w)
        np.testing.assert_allclose(res.estimate, ref.statistic, rtol=1e-12)
        np.testing.assert_allclose(res.p_value, ref.pvalue, rtol=1e-9)


def test_fisher_p_without_the_estimate_is_the_same_p():
    for table in ([[3, 1], [1, 3]], [[10, 2], [4, 30]], [[0, 5], [7, 2]]):
        full, quick = fisher_exact(table), fisher_exact(table, estimate=False)
        assert quick.p_value == full.p_value == stats.fisher_exact(table).pvalue
        assert np.isnan(quick.odds_ratio) and not np.isnan(full.odds_ratio)


def test_model_keys_read_rows_as_iterrows_does():
    # an integer column beside float ones reads as float (iterrows' common dtype); with a text
    # column every value keeps its own type
    for frame in (pd.DataFrame({"hr": [0.5, np.nan], "n": [12, 40]}, index=["a", "b"]),
                  pd.DataFrame({"hr": [0.5, 2.0], "n": [12, 40], "reason": [None, "why"]}, index=["a", "b"])):
        expected = {f"x.{cov}.{key}": nan_to_none(row[col]) if col in row else None
                    for cov, row in frame.iterrows() for key, col in {"hr": "hr", "n": "n", "z": "z"}.items()}
        got = model_keys("x", frame, {"hr": "hr", "n": "n", "z": "z"})
        assert got == expected
        assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]


def test_one_time_lookups_equal_the_tables():
    t = RNG.exponential(20, 60).round(1)
    e = (RNG.random(60) < 0.6).astype(int)
    km = KaplanMeier(ci="log-log").fit(t, e)
    for at in (0.0, float(t.min()) / 2, 10.0, float(np.median(t)), float(t.max()) + 5):
        row = km.summary_at([at]).iloc[0]
        np.testing.assert_array_equal(km.survival_at(at), row[["survival", "ci_lower", "ci_upper"]].to_numpy(float))
    status, groups = RNG.integers(0, 3, 60), RNG.integers(0, 2, 60)
    cif = CumulativeIncidence().fit(t, status, cause=1, groups=groups)
    for group in cif.groups_:
        tab = cif.table_[cif.table_.group == group]
        for at in (0.0, 5.0, 15.5, float(t[groups == group].max())):
            row = tab.iloc[np.searchsorted(tab.time.to_numpy(), at, side="right") - 1]
            np.testing.assert_array_equal(cif.at(at, group),
                                          row[["estimate", "variance", "ci_lower", "ci_upper"]].to_numpy(float))


def test_risk_sets_forget_the_event_sum_when_x_changes():
    t, e = RNG.exponential(10, 40), (RNG.random(40) < 0.7).astype(float)
    X = RNG.normal(size=(40, 2))
    rs = RiskSets(t, e, X)
    rs.derivatives(np.zeros(2))                # caches the event rows' sum of X
    rs.X = rs.X * 3.0 - 1.0                    # as a fit standardises its covariates
    fresh = RiskSets(t, e, X * 3.0 - 1.0)
    for got, want in zip(rs.derivatives(np.array([0.2, -0.1])), fresh.derivatives(np.array([0.2, -0.1]))):
        np.testing.assert_array_equal(got, want)


def test_levenberg_marquardt_rows_are_independent_of_the_batch():
    # the kinetic model fits all its starting points in one batch: each row must iterate exactly
    # as it would alone (same damping, same stop), so the batch gives the separate fits' numbers
    from cartlib.pk.model import KineticModelFitter

    fitter = KineticModelFitter().fit(generate_cohort(8, seed=3)["pk"], lloq=100)
    data, sigma = fitter.data_, fitter.sigma_
    lo, hi = core.box()
    first = np.nan_to_num(fitter.theta_, nan=1.0)
    second = first + np.array([0.3, 2.0, -0.2, 0.1, 0.5, 0.2])
    alone = [core.levenberg_marquardt(s, data, sigma, lo, hi, 60) for s in (first, second)]
    stacked = tuple(np.concatenate([a, a]) for a in data[:4]) + (data[4],)
    th, f, c = core.levenberg_marquardt(np.concatenate([first, second]), stacked, sigma, lo, hi, 60)
    n = len(first)
    for k, (th1, f1, c1) in enumerate(alone):
        np.testing.assert_array_equal(th[k * n:(k + 1) * n], th1)
        np.testing.assert_array_equal(f[k * n:(k + 1) * n], f1)
        np.testing.assert_array_equal(c[k * n:(k + 1) * n], c1)


def test_terminal_and_partial_share_one_profile():
    pk = generate_cohort(12, seed=5)["pk"].assign(BLQ_TEXT=False)
    rules = NCARules()
    shared = terminal_and_partial(pk, rules)
    separate = partial_aucs(pk, rules).join(lambda_z(pk, rules))
    pd.testing.assert_frame_equal(shared, separate)
    pd.testing.assert_frame_equal(lambda_z(pk, rules, profile=daily_profile(pk, rules)), lambda_z(pk, rules))
    assert partial_aucs(example_cohort().pk).equals(partial_aucs(example_cohort().pk,
                                                                 profile=daily_profile(example_cohort().pk)))


def test_quantity_jacobians_equal_one_shift_at_a_time():
    from cartlib.pk.model_quantities import quantities, quantity_jacobians

    theta = core.to_theta([1e4, 3e5, 800.0], [10.0, 7.0, 21.0], [0.5, 1.2, 0.2], [0.3, 0.9, 0.05],
                          [0.01, 0.2, 0.5], [0.005, 0.02, 0.001])
    got = quantity_jacobians(theta, 100.0, 28.0)
    for k in range(core.N_THETA):
        h = 1e-5 * (1.0 + np.abs(theta[:, k]))
        up, down = theta.copy(), theta.copy()
        up[:, k] += h
        down[:, k] -= h
        qu, qd = quantities(up, 100.0, 28.0), quantities(down, 100.0, 28.0)
        for name in qu:
            np.testing.assert_array_equal(got[name][:, k], (qu[name] - qd[name]) / (2 * h))
