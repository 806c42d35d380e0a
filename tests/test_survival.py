"""Kaplan–Meier, numbers at risk, log-rank and median follow-up against R `survival` goldens.

Goldens: tests/golden/survival/make_golden.R (R's lung, veteran and a generated CAR-T-shaped
cohort with tied event/censoring times, a group without events and a one-patient group).
"""
import json
from pathlib import Path

import numpy as np
import pytest

from cartlib.stats.survival import KaplanMeier, at_risk, logrank_test, median_followup

GOLD = Path(__file__).parent / "golden" / "survival"
KM = json.loads((GOLD / "km.json").read_text())
LR = json.loads((GOLD / "logrank.json").read_text())
TOL = 1e-6
DATASETS = [k for k in KM if k != "meta"]


def _r(values):
    """R's NA/NaN/Inf were written as JSON null: compare them as NaN."""
    return np.array([np.nan if v is None else v for v in np.atleast_1d(values)], dtype=float)


def assert_close(got, want, tol=TOL):
    got = np.asarray(got, dtype=float)
    want = _r(want)
    got = np.where(np.isfinite(got), got, np.nan)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=0, atol=tol)


@pytest.mark.parametrize("ci", ["plain", "log", "log-log"])
@pytest.mark.parametrize("name", DATASETS)
def test_km_table_matches_survfit(name, ci):
    d, want = KM[name], KM[name][ci]
    km = KaplanMeier(ci=ci).fit(d["durations"], d["events"])
    tab = km.table_
    for col in ("time", "n_risk", "n_event", "n_censor", "survival", "std_err", "std_err_log",
                "ci_lower", "ci_upper"):
        assert_close(tab[col], want[col])


@pytest.mark.parametrize("ci", ["plain", "log", "log-log"])
@pytest.mark.parametrize("name", DATASETS)
def test_km_median_and_ci_match_print_survfit(name, ci):
    d, want = KM[name], KM[name][ci]
    km = KaplanMeier(ci=ci).fit(d["durations"], d["events"])
    assert_close([km.median_, *km.median_ci_], [want["median"], want["median_lo"], want["median_hi"]])


@pytest.mark.parametrize("ci", ["plain", "log", "log-log"])
@pytest.mark.parametrize("name", DATASETS)
def test_survival_at_matches_summary_times_extend(name, ci):
    d, want = KM[name], KM[name][ci]["at"]
    km = KaplanMeier(ci=ci).fit(d["durations"], d["events"])
    got = km.summary_at(want["times"])
    for col, rcol in (("survival", "survival"), ("std_err", "std_err"), ("ci_lower", "lower"),
                      ("ci_upper", "upper"), ("n_risk", "n_risk")):
        assert_close(got[col], want[rcol])
    est, lo, hi = km.survival_at(want["times"][-1])
    assert_close([est, lo, hi], [want["survival"][-1], want["lower"][-1], want["upper"][-1]])


def test_median_midpoint_rule_by_hand():
    # S = 0.75, 0.5, 0.25, 0 at t = 1..4: S is exactly 0.5 on [2, 3) so the median is 2.5
    assert KaplanMeier().fit([1, 2, 3, 4], [1, 1, 1, 1]).median_ == 2.5


def test_survival_is_right_continuous_at_event_time():
    km = KaplanMeier().fit([2, 4], [1, 1])
    assert km.survival_at(1.999)[0] == 1.0
    assert km.survival_at(2)[0] == 0.5


def test_at_risk_counts_ties_as_at_risk():
    assert at_risk([3, 3, 3, 7], [3, 3.5, 7, 8]).tolist() == [4, 1, 1, 0]


@pytest.mark.parametrize("name", DATASETS)
def test_median_followup_simple_and_reverse_km(name):
    d = KM[name]
    assert median_followup(d["durations"], d["events"]) == pytest.approx(d["simple_median"], abs=TOL)
    assert_close([median_followup(d["durations"], d["events"], method="reverse_km")],
                 [d["reverse_km_median"]])


@pytest.mark.parametrize("name", [k for k in LR if k != "meta"])
def test_logrank_matches_survdiff(name):
    d = LR[name]
    r = logrank_test(d["durations"], d["events"], d["groups"], d["strata"])
    assert r.df == d["df"]
    assert r.statistic == pytest.approx(d["statistic"], abs=TOL)
    assert r.p_value == pytest.approx(d["p_value"], abs=TOL)
    assert list(r.observed) == d["levels"]
    assert_close(list(r.observed.values()), d["observed"])
    assert_close(list(r.expected.values()), d["expected"])


def test_logrank_agrees_with_statsmodels_stratified():
    from statsmodels.duration.survfunc import survdiff

    d = LR["veteran_trt_strat"]
    r = logrank_test(d["durations"], d["events"], d["groups"], d["strata"])
    chi, p = survdiff(np.array(d["durations"]), np.array(d["events"]), np.array(d["groups"]),
                      strata=np.array(d["strata"]))
    assert r.statistic == pytest.approx(chi, abs=1e-8)


def test_logrank_needs_two_groups_and_reports_untestable():
    with pytest.raises(ValueError):
        logrank_test([1, 2], [1, 1], ["a", "a"])
    # group b's only patient leaves before the first event: expected 0, so no test is possible
    r = logrank_test([5, 6, 1], [1, 1, 0], ["a", "a", "b"])
    assert np.isnan(r.p_value) and r.reason


def test_bad_input_raises():
    with pytest.raises(ValueError):
        KaplanMeier(ci="arcsine")
    with pytest.raises(ValueError):
        KaplanMeier().fit([1, 2], [1, 2])
    with pytest.raises(ValueError):
        KaplanMeier().fit([-1, 2], [1, 0])


def test_plot_km_draws_curves_and_at_risk_numbers():
    import matplotlib

    matplotlib.use("Agg")
    from cartlib.stats.survival import plot_km

    d = KM["cart"]
    t, e = np.array(d["durations"]), np.array(d["events"])
    fits = {"all": KaplanMeier().fit(t, e), "first half": KaplanMeier().fit(t[:20], e[:20])}
    ax = plot_km(fits, at_risk_times=[0, 365, 730], time_unit="days")
    texts = [x.get_text() for x in ax.texts]
    assert str(int((t >= 365).sum())) in texts and str(int((t[:20] >= 730).sum())) in texts
    assert len(ax.lines) >= 2


def test_logrank_rejects_missing_group():
    with pytest.raises(ValueError):
        logrank_test([1, 2, 3], [1, 0, 1], ["a", None, "b"])


def test_km_point_estimate_agrees_with_lifelines():
    from lifelines import KaplanMeierFitter

    d = KM["lung"]
    ours = KaplanMeier().fit(d["durations"], d["events"]).table_
    theirs = KaplanMeierFitter().fit(d["durations"], d["events"]).survival_function_
    np.testing.assert_allclose(ours["survival"], theirs.loc[ours["time"]].to_numpy().ravel(), atol=1e-12)


def test_km_plot_marks_censoring_times_on_the_curve():
    import matplotlib

    matplotlib.use("Agg")
    km = KaplanMeier().fit([2, 3, 3, 5, 8], [1, 0, 1, 0, 1])
    ax = km.plot()
    marks = [ln for ln in ax.lines if ln.get_marker() == "|"]
    assert len(marks) == 1
    # censored at 3 (S = 0.6 after the tied event) and 5 (S = 0.6): right-continuous heights
    np.testing.assert_allclose(marks[0].get_xdata(), [3, 5])
    np.testing.assert_allclose(marks[0].get_ydata(), [0.6, 0.6])
