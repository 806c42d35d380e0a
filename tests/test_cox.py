"""Cox (Efron) and cox.zph(transform="km") against R `survival` goldens (make_golden.R)."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from r_models import assert_matches_r

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
    m = CoxModel().fit(COHORT.assign(event=0), "time", "event", ["x1", "const"])
    assert m.reason == "no events" and m.summary["hr"].isna().all()
    assert (m.summary["reason"] == "no events").all()
    # a constant covariate is dropped, as coxph does, and the other is fitted as if alone
    m = CoxModel().fit(COHORT, "time", "event", ["x1", "const"])
    alone = CoxModel().fit(COHORT, "time", "event", ["x1"])
    assert m.reason is None and m.converged and m.fitted_covariates == ["x1"]
    assert m.summary.loc["x1", "hr"] == alone.summary.loc["x1", "hr"]
    assert np.isnan(m.summary.loc["const", "hr"]) and list(m.zph().index) == ["x1", "GLOBAL"]


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


def test_newton_fallback_fits_what_the_damped_iteration_stops_on():
    """A group of 2 patients, both dead: lifelines' damped iteration (as CoxModel runs it) stops
    on a matrix it cannot solve, R's coxph (and the Newton–Raphson fallback) converge. Golden:
    tests/golden/survival/cox_small_group.R."""
    import json
    from pathlib import Path

    from cartlib.stats.efron import NotConverged, fit_standardised

    folder = Path(__file__).parent / "golden" / "survival"
    data = pd.read_csv(folder / "cox_small_group.csv")
    r = json.loads((folder / "cox_small_group.json").read_text())
    with pytest.raises(NotConverged):
        fit_standardised(data["time"], data["event"], data[["x"]], precision=1e-12, r_precision=1e-15, max_steps=200)
    m = CoxModel().fit(data, "time", "event", ["x"])
    assert m.reason is None and m.converged
    row = m.summary.loc["x"]
    assert abs(row["coef"] - r["coef"]) < 1e-6 and abs(row["se"] / r["se"] - 1) < 1e-6
    assert abs(row["p"] - r["p"]) < 1e-6 and abs(m.loglik - r["loglik"]) < 1e-6


def test_newton_fallback_also_follows_an_iteration_that_did_not_converge(monkeypatch):
    """The damped iteration can also end without converging on a runaway estimate instead of
    raising; the R-style Newton–Raphson decides then too. Same golden as above, for a fit that
    the damped iteration is made to report as not converged."""
    import json
    from pathlib import Path

    import cartlib.stats.cox as cox

    folder = Path(__file__).parent / "golden" / "survival"
    data = pd.read_csv(folder / "cox_small_group.csv")
    r = json.loads((folder / "cox_small_group.json").read_text())
    monkeypatch.setattr(cox, "fit_standardised", lambda *a, **k: (np.array([-8.8]), np.array([[4.0]]), -1e9, False))
    m = CoxModel().fit(data, "time", "event", ["x"])
    assert m.reason is None and m.converged
    assert abs(m.summary.loc["x", "coef"] - r["coef"]) < 1e-6 and abs(m.loglik - r["loglik"]) < 1e-6


# --- degenerate models: R's coxph drops what it cannot estimate (make_golden_degenerate.R) ------

DEGENERATE = pd.read_csv(GOLD / "degenerate_cohort.csv")
DEGENERATE_R = pd.read_csv(GOLD / "degenerate_cox.csv")
DEGENERATE_ZPH = pd.read_csv(GOLD / "degenerate_zph.csv")
# the golden's tiny frame: x varies only in a patient censored before the first death
OUTSIDE_RISK_SETS = pd.DataFrame({"time_mo": range(1, 9), "event": [0, 1, 1, 0, 1, 1, 0, 1],
                                  "x": [1, 0, 0, 0, 0, 0, 0, 0], "w": [1, 0, 1, 0, 0, 1, 1, 0]})


def _assert_matches_r(m, ref):
    assert_matches_r(m.summary, ref, "hr")
    assert (m.n, m.n_events) == (ref["n"].iloc[0], ref["n_events"].iloc[0])


@pytest.mark.parametrize("model", [m for m in DEGENERATE_R["model"].unique() if not m.startswith("uni_")])
def test_degenerate_model_matches_coxph(model):
    ref = DEGENERATE_R[DEGENERATE_R["model"] == model].set_index("term")
    data = OUTSIDE_RISK_SETS if model == "outside_risk_sets" else DEGENERATE
    m = CoxModel().fit(data, "time_mo", "event", list(ref.index))
    assert m.reason is None and m.converged
    assert list(m.summary.index) == list(ref.index)           # R's order, dropped terms included
    assert m.fitted_covariates == list(ref.index[ref["coef"].notna()])
    _assert_matches_r(m, ref)
    assert m.loglik == pytest.approx(ref["loglik"].iloc[0], abs=TOL)
    zph = DEGENERATE_ZPH[DEGENERATE_ZPH["model"] == model].set_index("term")
    if len(zph):                                               # cox.zph leaves the NA terms out
        z = m.zph()
        assert list(z.index) == list(zph.index)
        np.testing.assert_allclose(z["chisq"], zph["chisq"], rtol=0, atol=TOL)
        np.testing.assert_allclose(z["p"], zph["p"], rtol=0, atol=TOL)


def test_reasons_name_the_degeneracy():
    covs = ["prior_cart", "no_prior_cart", "neutropenia_g4", "icans", "bca_duration_days", "bca_duration_weeks"]
    m = CoxModel().fit(DEGENERATE, "time_mo", "event", covs)
    assert m.dropped == {
        "no_prior_cart": "no_prior_cart is collinear with prior_cart in this cohort: dropped from the model, as R does",
        "icans": "icans is constant in this cohort: dropped from the model, as R does",
        "bca_duration_weeks": "bca_duration_weeks is collinear with bca_duration_days in this cohort: "
                              "dropped from the model, as R does"}
    # R keeps the first of two aliased terms: in the other order the complement is kept
    first = CoxModel().fit(DEGENERATE, "time_mo", "event", ["prior_cart", "no_prior_cart", "neutropenia_g4"])
    swapped = CoxModel().fit(DEGENERATE, "time_mo", "event", ["no_prior_cart", "prior_cart", "neutropenia_g4"])
    assert swapped.fitted_covariates == ["no_prior_cart", "neutropenia_g4"]
    assert swapped.summary.loc["no_prior_cart", "coef"] == pytest.approx(-first.summary.loc["prior_cart", "coef"],
                                                                         abs=1e-8)
    m = CoxModel().fit(OUTSIDE_RISK_SETS, "time_mo", "event", ["w", "x"])
    assert m.dropped["x"].startswith("x does not vary within any risk set")


def test_all_missing_covariate_is_dropped_not_every_row():
    # R would remove every row (na.omit) and stop; the column is dropped and the rest fitted as
    # R fits the formula without it
    covs = ["no_prior_cart", "neutropenia_g4", "crs_ge_3", "icans", "hsct_after", "bca_duration_days"]
    m = CoxModel().fit(DEGENERATE, "time_mo", "event", [*covs, "il6_unmeasured"])
    assert m.reason is None and m.n == 78
    assert m.dropped["il6_unmeasured"].startswith("il6_unmeasured is missing for every patient")
    _assert_matches_r(m, DEGENERATE_R[DEGENERATE_R["model"] == "os_table1b"].set_index("term"))
    only = CoxModel().fit(DEGENERATE, "time_mo", "event", ["il6_unmeasured"])
    assert only.reason == "no covariate can be estimated" and not only.converged
    assert only.summary.loc["il6_unmeasured", "reason"] == only.dropped["il6_unmeasured"]
    assert only.zph()["p"].isna().all()


def test_monotone_likelihood_stays_null_beside_a_dropped_covariate():
    m = CoxModel().fit(COHORT, "time", "event", ["x1", "noevent_grp", "const"])
    assert not m.converged and "monotone" in m.reason
    assert m.summary[["hr", "p"]].isna().all().all()
    assert m.summary.loc["x1", "reason"] == m.reason and "constant" in m.summary.loc["const", "reason"]


def test_screen_with_a_constant_covariate():
    covs = ["female", "icans", "neutropenia_g4", "hsct_after", "bca_duration_days"]
    screen = cox_screen(DEGENERATE, "time_mo", "event", covs, screen_p=0.2)
    ref = DEGENERATE_R[DEGENERATE_R["model"].isin([f"uni_{c}" for c in covs])].set_index("term").loc[covs]
    assert screen.table.loc["icans", "reason"] == "icans is constant in this cohort: dropped from the model, as R does"
    assert screen.table.loc["icans", ["hr", "p"]].isna().all()
    others = [c for c in covs if c != "icans"]
    np.testing.assert_allclose(screen.table.loc[others, "hr"].astype(float), ref.loc[others, "hr"], rtol=TOL)
    np.testing.assert_allclose(screen.table.loc[others, "p"].astype(float), ref.loc[others, "p"], atol=TOL)
    assert screen.table.loc[others, "reason"].isna().all()
    assert screen.selected == [c for c in others if ref.loc[c, "p"] < 0.2] == ["bca_duration_days"]


def _efron_by_loop(start, stop, event, X, beta):
    """The Efron sums written the plain way (one pass over every row per event time): the oracle."""
    eta = X @ beta
    w = np.exp(eta)
    loglik, scores, infos = 0.0, [], []
    for t in np.unique(stop[event == 1]):
        risk = (start < t) & (stop >= t)
        dead = risk & (stop == t) & (event == 1)
        d = dead.sum()
        s0, s1, s2 = w[risk].sum(), w[risk] @ X[risk], (X[risk] * w[risk, None]).T @ X[risk]
        d0, d1, d2 = w[dead].sum(), w[dead] @ X[dead], (X[dead] * w[dead, None]).T @ X[dead]
        frac = np.arange(d)[:, None] / d
        r0 = s0 - frac[:, 0] * d0
        means = (s1[None, :] - frac * d1[None, :]) / r0[:, None]
        second = (s2[None] - frac[:, :, None] * d2[None]) / r0[:, None, None]
        scores.append(X[dead].sum(0) - means.sum(0))
        infos.append((second - means[:, :, None] * means[:, None, :]).sum(0))
        loglik += eta[dead].sum() - np.log(r0).sum()
    return loglik, np.array(scores), np.array(infos)


def _tied_data(seed, n=300):
    rng = np.random.default_rng(seed)
    t = rng.integers(1, 40, n).astype(float)          # heavy ties
    e = (rng.random(n) < 0.6).astype(float)
    X = np.column_stack([rng.integers(0, 2, n), rng.normal(size=n), rng.exponential(size=n)])
    return rng, t, e, X


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_efron_sums_equal_the_per_time_loop(seed):
    """The O(n log n) sums equal the loop, with many ties, for right-censored and start/stop rows."""
    from cartlib.stats.cox import efron_information_at_zero

    rng, t, e, X = _tied_data(seed)
    beta = np.array([0.3, -0.2, 0.1])
    for start in (np.full(t.size, -np.inf), np.where(rng.random(t.size) < 0.3, t - rng.integers(1, 5, t.size), 0.0)):
        ll, times, u, info = efron_terms(start, t, e, X, beta)
        ref_ll, ref_u, ref_info = _efron_by_loop(start, t, e, X, beta)
        assert ll == pytest.approx(ref_ll, rel=1e-12)
        np.testing.assert_allclose(u, ref_u, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(info, ref_info, rtol=1e-10, atol=1e-10)
    zero = _efron_by_loop(np.full(t.size, -np.inf), t, e, X, np.zeros(3))[2].sum(0)
    np.testing.assert_allclose(efron_information_at_zero(t, e, X), zero, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_damped_iteration_gives_lifelines_estimates(seed):
    """CoxModel and TimeVaryingCox iterate as lifelines' fitters do: the same estimates to ~1e-12."""
    import warnings

    lifelines = pytest.importorskip("lifelines")
    CoxPHFitter, CoxTimeVaryingFitter = lifelines.CoxPHFitter, lifelines.CoxTimeVaryingFitter
    from cartlib.stats.cox import FIT_OPTIONS
    from cartlib.stats.efron import fit_standardised

    rng, t, e, X = _tied_data(seed, n=120)
    df = pd.DataFrame(X, columns=["a", "b", "c"]).assign(t=t, e=e)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = CoxPHFitter().fit(df, "t", "e", fit_options=FIT_OPTIONS)
    m = CoxModel().fit(df, "t", "e", ["a", "b", "c"])
    np.testing.assert_allclose(m.params_, ref.params_.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(m.variance_, ref.variance_matrix_.to_numpy(), rtol=1e-10)
    assert m.loglik == pytest.approx(ref.log_likelihood_, rel=1e-12)
    ss = df.assign(id=np.arange(t.size), start=np.where(rng.random(t.size) < 0.3, t / 2, 0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = CoxTimeVaryingFitter().fit(ss[["id", "start", "t", "e", "a", "b"]], id_col="id", event_col="e",
                                         start_col="start", stop_col="t", fit_options=FIT_OPTIONS)
    coef, var, ll, ok = fit_standardised(ss["t"], ss["e"], ss[["a", "b"]], start=ss["start"], **FIT_OPTIONS)
    assert ok and ll == pytest.approx(ref.log_likelihood_, rel=1e-12)
    np.testing.assert_allclose(coef, ref.params_.to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(var, np.asarray(ref.variance_matrix_), rtol=1e-10)
