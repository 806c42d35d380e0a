"""Cox (Efron) and cox.zph(transform="km") against R `survival` goldens (make_golden.R)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartlib.stats.cox import CoxModel, cox_screen, efron_terms

GOLD = Path(__file__).parent / "golden" / "survival"
COX = json.loads((GOLD / "cox.json").read_text())
COHORT = pd.read_csv(GOLD / "cart_cohort.csv")
MODELS = ["lung", "lung_uni", "veteran", "pbc", "cart"]
TOL = 1e-6


def _frame(d):
    df = pd.DataFrame({c: v for c, v in zip(d["covariates"], d["X"])})
    return df.assign(t=d["durations"], e=d["events"])


@pytest.fixture(scope="module", params=MODELS)
def fitted(request):
    d = COX[request.param]
    return d, CoxModel().fit(_frame(d), "t", "e", d["covariates"])


def test_coefficients_match_coxph(fitted):
    d, m = fitted
    s = m.summary
    assert m.converged and m.reason is None
    assert list(s.index) == d["covariates"]
    np.testing.assert_allclose(s["coef"], d["coef"], rtol=0, atol=TOL)
    np.testing.assert_allclose(s["se"], d["se"], rtol=0, atol=TOL)
    np.testing.assert_allclose(s["z"], d["z"], rtol=0, atol=TOL)
    for col in ("hr", "hr_lo", "hr_hi"):  # ratios: relative tolerance
        np.testing.assert_allclose(s[col], d[col], rtol=TOL, atol=0)
    np.testing.assert_allclose(s["p"], d["p"], rtol=0, atol=TOL)
    assert m.loglik == pytest.approx(d["loglik"], abs=TOL)
    assert (m.n, m.n_events) == (d["n"], d["n_events"])


def test_zph_matches_cox_zph_km(fitted):
    d, m = fitted
    z = m.zph()
    assert list(z.index) == d["zph"]["rows"]
    np.testing.assert_allclose(z["chisq"], d["zph"]["chisq"], rtol=0, atol=TOL)
    np.testing.assert_allclose(z["df"], d["zph"]["df"])
    np.testing.assert_allclose(z["p"], d["zph"]["p"], rtol=0, atol=TOL)


def test_efron_loglik_at_zero_and_at_fit_match_r(fitted):
    d, m = fitted
    t = np.asarray(d["durations"], float)
    X = np.column_stack(d["X"])
    ll0 = efron_terms(np.full(t.size, -np.inf), t, d["events"], X, np.zeros(X.shape[1]))[0]
    ll, _, u, info = efron_terms(np.full(t.size, -np.inf), t, d["events"], X, m.summary["coef"])
    assert ll0 == pytest.approx(d["loglik0"], abs=TOL)
    assert ll == pytest.approx(d["loglik"], abs=TOL)
    # the score vanishes at the MLE (standardised, as covariates are on different scales)
    assert np.all(np.abs(u.sum(0)) / np.sqrt(np.diag(info.sum(0))) < 1e-6)


def test_efron_score_by_hand():
    # x = 0, 1, 1; events at t=1 (x=0) and t=2 (x=1); beta = 0.
    # t=1: x - mean = 0 - 2/3; t=2: risk set {x=1, x=1}, 1 - 1 = 0 -> U = -2/3.
    # information: t=1 var of {0,1,1} = 2/9; t=2 var 0 -> I = 2/9; loglik = -log 3 - log 2.
    ll, times, u, i = efron_terms([-np.inf] * 3, [1, 2, 3], [1, 1, 0], [[0.0], [1.0], [1.0]], [0.0])
    assert ll == pytest.approx(-np.log(6))
    assert u.sum() == pytest.approx(-2 / 3) and i.sum() == pytest.approx(2 / 9)


def test_efron_ties_by_hand():
    # two tied events at t=1 among x = 0, 1, 1 (events: x=0 and first x=1), beta = 0:
    # Efron risk sums 3 and 3 - 1/2*2 = 2, so loglik = -log 3 - log 2; means 2/3 and (2 - 1/2)/2.
    ll, _, u, _ = efron_terms([-np.inf] * 3, [1, 1, 2], [1, 1, 0], [[0.0], [1.0], [1.0]], [0.0])
    assert ll == pytest.approx(-np.log(3) - np.log(2))
    assert u.sum() == pytest.approx(1 - 2 / 3 - 0.75)


def test_monotone_likelihood_gives_nan_not_huge_hr():
    # R gives coef -25 with SE 2e5 for a group without events (stored in the golden)
    assert abs(COX["cart_monotone_R"]["coef"]) > 15 and COX["cart_monotone_R"]["se"] > 1e4
    for covs in (["noevent_grp"], ["x1", "noevent_grp"]):
        m = CoxModel().fit(COHORT, "time", "event", covs)
        assert not m.converged and "monotone" in m.reason
        assert m.summary[["hr", "p"]].isna().all().all()
        assert m.zph()["p"].isna().all()


def test_single_patient_group_without_event_is_monotone():
    df = COHORT.assign(grp_d=(COHORT["grp"] == "D").astype(int))
    assert "monotone" in CoxModel().fit(df, "time", "event", ["grp_d"]).reason


def test_no_events_and_constant_covariate():
    assert CoxModel().fit(COHORT.assign(event=0), "time", "event", ["x1"]).reason == "no events"
    m = CoxModel().fit(COHORT, "time", "event", ["x1", "const"])
    assert "constant" in m.reason and m.summary["hr"].isna().all()


def test_missing_rows_are_dropped_like_na_omit():
    df = COHORT.copy()
    df.loc[[0, 5], "x2"] = np.nan
    m = CoxModel().fit(df, "time", "event", ["x1", "x2"])
    ref = CoxModel().fit(df.drop(index=[0, 5]), "time", "event", ["x1", "x2"])
    assert m.n == len(COHORT) - 2
    np.testing.assert_allclose(m.summary["coef"], ref.summary["coef"])


def test_cox_screen_matches_univariable_coxph_and_selects():
    d = COX["cart_screen"]
    screen = cox_screen(COHORT, "time", "event", d["covariates"], screen_p=0.2)
    res, selected = screen.table, screen.selected
    np.testing.assert_allclose(res.loc[["x1", "x2"], "p"], d["p"], atol=TOL)
    np.testing.assert_allclose(res.loc[["x1", "x2"], "hr"], d["hr"], rtol=TOL)
    assert np.isnan(res.loc["noevent_grp", "hr"]) and res.loc["noevent_grp", "reason"]
    assert selected == [c for c, p in zip(["x1", "x2"], d["p"]) if p < 0.2]
    everything = cox_screen(COHORT, "time", "event", ["x1", "x2"], screen_p=1.0).selected
    assert everything == ["x1", "x2"]


def test_bad_arguments():
    with pytest.raises(ValueError):
        CoxModel(ties="breslow")
    with pytest.raises(ValueError):
        CoxModel().fit(COHORT, "time", "event", ["nope"])


def test_zph_with_a_single_event_time_is_not_computable():
    # one event: g(t) is a single centred value 0, so the x*g(t) information is singular
    # (the event's x = 0.5 lies inside its risk set's range, so the coefficient is finite)
    df = pd.DataFrame({"t": [1, 2, 3, 4, 5], "e": [0, 1, 0, 0, 0], "x": [0.0, 0.5, 1.0, 0.2, 0.9]})
    m = CoxModel().fit(df, "t", "e", ["x"])
    assert m.reason is None
    z = m.zph()
    assert z["p"].isna().all() and z["reason"].notna().all()


def test_newton_fallback_fits_what_lifelines_stops_on():
    """A group of 2 patients, both dead: lifelines raises ConvergenceError, R's coxph (and the
    Newton–Raphson fallback) converge. Golden: tests/golden/survival/cox_small_group.R."""
    import json
    from pathlib import Path

    folder = Path(__file__).parent / "golden" / "survival"
    data = pd.read_csv(folder / "cox_small_group.csv")
    r = json.loads((folder / "cox_small_group.json").read_text())
    m = CoxModel().fit(data, "time", "event", ["x"])
    assert m.reason is None and m.converged
    row = m.summary.loc["x"]
    assert abs(row["coef"] - r["coef"]) < 1e-6 and abs(row["se"] / r["se"] - 1) < 1e-6
    assert abs(row["p"] - r["p"]) < 1e-6 and abs(m.loglik - r["loglik"]) < 1e-6


def test_newton_fallback_also_follows_a_failed_convergence_warning(monkeypatch):
    """lifelines can also stop with a "failed" ConvergenceWarning and a runaway estimate instead
    of raising; the R-style Newton–Raphson decides then too. Same golden as above, for a
    fit that lifelines is made to report as failed."""
    import json
    import warnings
    from pathlib import Path

    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceWarning

    folder = Path(__file__).parent / "golden" / "survival"
    data = pd.read_csv(folder / "cox_small_group.csv")
    r = json.loads((folder / "cox_small_group.json").read_text())

    def failing_fit(self, df, duration_col, event_col, **kwargs):
        self.params_ = pd.Series([-8.8], index=["x"])
        self.variance_matrix_ = pd.DataFrame([[4.0]], index=["x"], columns=["x"])
        self.log_likelihood_ = -1e9
        warnings.warn("Newton-Raphson failed to converge sufficiently", ConvergenceWarning)
        return self

    monkeypatch.setattr(CoxPHFitter, "fit", failing_fit)
    m = CoxModel().fit(data, "time", "event", ["x"])
    assert m.reason is None and m.converged
    assert abs(m.summary.loc["x", "coef"] - r["coef"]) < 1e-6 and abs(m.loglik - r["loglik"]) < 1e-6
