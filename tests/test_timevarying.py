"""Time-varying HSCT: start/stop split, Cox, Mantel–Byar, Simon–Makuch and landmark vs R goldens.

Goldens: tests/golden/survival/make_golden.R (R's `heart` = Stanford heart transplant data in
start/stop form, and the generated CAR-T cohort split with `tmerge(..., tdc(hsct_day))`).
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartlib.stats.survival import logrank_test
from cartlib.stats.timevarying import (SimonMakuch, TimeVaryingCox, landmark, mantel_byar_test,
                                       to_start_stop)

GOLD = Path(__file__).parent / "golden" / "survival"
TV = json.loads((GOLD / "timevarying.json").read_text())
COHORT = pd.read_csv(GOLD / "cart_cohort.csv")
SPLIT = pd.read_csv(GOLD / "cart_start_stop.csv")
TOL = 1e-6


def _frame(d):
    df = pd.DataFrame({"id": d["id"], "start": d["start"], "stop": d["stop"], "event": d["event"]})
    for name, values in zip(d["covariates"], d["X"]):
        df[name] = values
    return df


def test_to_start_stop_matches_tmerge():
    got = to_start_stop(COHORT["time"], COHORT["event"], COHORT["hsct_day"], ids=COHORT["id"])
    pd.testing.assert_frame_equal(got, SPLIT, check_dtype=False)
    # the generated cohort covers HSCT at day 0 (P01), on the last day (P02) and after it
    assert got.loc[got["id"] == "P01", "hsct"].tolist() == [1]
    assert got.loc[got["id"] == "P02", "hsct"].tolist() == [0]


def test_to_start_stop_rejects_zero_length_follow_up():
    with pytest.raises(ValueError):
        to_start_stop([0, 5], [1, 0], [None, 2])


@pytest.mark.parametrize("name", ["heart", "heart_multi", "cart"])
def test_time_varying_cox_matches_coxph(name):
    d = TV[name]
    m = TimeVaryingCox().fit(_frame(d), d["covariates"])
    assert m.converged and m.reason is None
    np.testing.assert_allclose(m.summary["coef"], d["coef"], rtol=0, atol=TOL)
    np.testing.assert_allclose(m.summary["se"], d["se"], rtol=0, atol=TOL)
    np.testing.assert_allclose(m.summary["hr"], np.exp(d["coef"]), rtol=TOL)
    np.testing.assert_allclose(m.summary["p"], d["p"], rtol=0, atol=TOL)
    assert m.loglik == pytest.approx(d["loglik"], abs=TOL)


@pytest.mark.parametrize("name", ["heart", "cart"])
def test_mantel_byar_matches_coxph_score_test(name):
    d = TV[name]
    r = mantel_byar_test(_frame(d), exposure_col="hsct")
    assert r.df == d["sctest"]["df"]
    assert r.statistic == pytest.approx(d["sctest"]["statistic"], abs=TOL)
    assert r.p_value == pytest.approx(d["sctest"]["p_value"], abs=TOL)


def test_mantel_byar_without_time_varying_exposure_is_the_logrank_test():
    # With exposure fixed from time 0 the Cox score test is the log-rank test when no two
    # events are tied (with ties Efron's information differs from the hypergeometric one).
    d = COHORT[~COHORT["time"].duplicated(keep=False)]
    ss = to_start_stop(d["time"], d["event"], np.where(d["x1"] == 1, 0, np.nan))
    lr = logrank_test(d["time"], d["event"], d["x1"])
    assert mantel_byar_test(ss).statistic == pytest.approx(lr.statistic, rel=1e-9)


def test_mantel_byar_without_events_has_reason():
    ss = to_start_stop([5, 8], [0, 0], [2, None])
    r = mantel_byar_test(ss)
    assert np.isnan(r.p_value) and r.reason == "no events"


@pytest.mark.parametrize("name", ["heart", "cart"])
def test_simon_makuch_matches_survfit_on_split_data(name):
    d = TV[name]
    sm = SimonMakuch().fit_start_stop(_frame(d))
    want = pd.DataFrame({k: d["simon_makuch"][k] for k in ("strata", "time", "n_risk", "n_event",
                                                             "survival")})
    for value, curve in sm.curves_.items():
        w = want[want["strata"] == f"hsct={value}"]
        np.testing.assert_allclose(curve["time"], w["time"])
        np.testing.assert_allclose(curve["n_risk"], w["n_risk"])
        np.testing.assert_allclose(curve["n_event"], w["n_event"])
        np.testing.assert_allclose(curve["survival"], w["survival"], atol=TOL)
    assert set(sm.curves_) == {0, 1}


def test_simon_makuch_fit_from_durations_equals_fit_from_split():
    a = SimonMakuch().fit(COHORT["time"], COHORT["event"], COHORT["hsct_day"])
    b = SimonMakuch().fit_start_stop(SPLIT)
    for value in (0, 1):
        pd.testing.assert_frame_equal(a.curves_[value], b.curves_[value])


def test_landmark_matches_r_subset_and_logrank():
    d = TV["cart_landmark"]
    lm = landmark(COHORT, d["day"], duration_col="time", event_col="event", exposure_col="hsct_day")
    assert lm["id"].tolist() == d["ids"]
    np.testing.assert_allclose(lm["time"], d["time"])
    assert lm["hsct_by_landmark"].tolist() == d["exposed"]
    p = logrank_test(lm["time"], lm["event"], lm["hsct_by_landmark"]).p_value
    assert p == pytest.approx(d["logrank_p"], abs=TOL)


def test_landmark_excludes_events_at_or_before_the_landmark():
    df = pd.DataFrame({"os_days": [100, 101, 30], "os_event": [1, 1, 0], "hsct_day": [50, 100, None]})
    lm = landmark(df, 100)
    assert lm.index.tolist() == [1] and lm["os_days"].tolist() == [1.0]
    assert lm["hsct_by_landmark"].tolist() == [1]


def test_degenerate_time_varying_model_has_reason():
    ss = to_start_stop([5, 8, 9], [1, 1, 0], [None, None, 2])  # the exposed patient has no event
    m = TimeVaryingCox().fit(ss, ["hsct"])
    assert m.reason and np.isnan(m.summary.loc["hsct", "hr"])
