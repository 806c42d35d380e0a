"""Logistic regression against R glm(binomial) + confint.default (tests/golden/glm/make_golden.R)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from r_models import assert_matches_r

from cartlib.stats.logistic import LogisticModel, logistic_screen

GOLD = Path(__file__).parent / "golden" / "glm"
FITS = pd.read_csv(GOLD / "fit_tight.csv")          # R glm run to the exact maximum
FITS_DEFAULT = pd.read_csv(GOLD / "fit_all.csv")    # R glm with its default epsilon = 1e-8
TOL = 1e-6


def _model_cases():
    for (data, model), ref in FITS.groupby(["data", "model"], sort=False):
        outcome = model.split("~")[0]
        covs = [t for t in ref.term if t != "(Intercept)"]
        yield pytest.param(data, outcome, covs, ref, id=f"{data}:{model}")


@pytest.mark.parametrize("data,outcome,covs,ref", list(_model_cases()))
def test_matches_r_glm(data, outcome, covs, ref):
    df = pd.read_csv(GOLD / f"data_{data}.csv")
    m = LogisticModel().fit(df, outcome, covs)
    ref = ref.set_index("term").loc[covs]
    assert m.n == ref.n.iloc[0] and m.n_dropped == len(df) - m.n
    assert not m.separation and m.summary.reason.isna().all()
    for col in ["coef", "se", "z", "or", "or_lo", "or_hi"]:
        np.testing.assert_allclose(m.summary[col].astype(float), ref[col], rtol=TOL, err_msg=col)
    np.testing.assert_allclose(m.summary["p"].astype(float), ref["p"], rtol=0, atol=TOL)


@pytest.mark.parametrize("data,outcome,covs,ref", list(_model_cases()))
def test_matches_r_glm_default_control(data, outcome, covs, ref):
    # R's default stopping rule leaves its SE at the weights of the previous IRLS step:
    # coefficients agree to 1e-6, SE-based columns only to 1e-3 relative (measured: < 1.1e-4)
    ref = FITS_DEFAULT[(FITS_DEFAULT.data == data) & FITS_DEFAULT.term.isin(covs)
                       & (FITS_DEFAULT.model == ref.model.iloc[0])].set_index("term").loc[covs]
    s = LogisticModel().fit(pd.read_csv(GOLD / f"data_{data}.csv"), outcome, covs).summary
    np.testing.assert_allclose(s["coef"].astype(float), ref["coef"], rtol=TOL)
    np.testing.assert_allclose(s["or"].astype(float), ref["or"], rtol=TOL)
    for col in ["se", "z", "or_lo", "or_hi"]:
        np.testing.assert_allclose(s[col].astype(float), ref[col], rtol=1e-3, err_msg=col)
    np.testing.assert_allclose(s["p"].astype(float), ref["p"], atol=1e-4)


def test_screen_selects_r_p_below_threshold():
    df = pd.read_csv(GOLD / "data_cart.csv")
    covs = ["female", "no_prior_hsct", "preld_mrd_lt_1e3", "dose_lt_median", "dose"]
    uni = FITS[(FITS.data == "cart") & FITS.model.isin([f"scrs~{c}" for c in covs])].set_index("term").loc[covs]
    res = logistic_screen(df, "scrs", covs, screen_p=0.2)
    assert res.selected == [c for c in covs if uni.loc[c, "p"] < 0.2]
    np.testing.assert_allclose(res.table["p"].astype(float), uni["p"], atol=TOL)
    assert res.table.loc["female", "n"] == 48   # two missing values in female, dropped for that model only


def test_complete_separation_gives_nan_not_giant_or():
    df = pd.DataFrame({"y": [0, 0, 0, 1, 1, 1], "x": [1, 2, 3, 4, 5, 6]})
    m = LogisticModel().fit(df, "y", ["x"])
    assert m.separation and "separation" in m.reason
    assert m.summary.loc["x", ["or", "or_lo", "or_hi", "z", "p"]].isna().all()


def test_quasi_separation_binary_covariate():
    # every x=1 has y=1 but x=0 has both outcomes: the MLE of the x coefficient is +infinity
    df = pd.DataFrame({"y": [0, 0, 0, 1, 1, 1, 1, 0, 1, 0], "x": [0, 0, 0, 1, 1, 1, 1, 0, 0, 0]})
    m = LogisticModel().fit(df, "y", ["x"])
    assert m.separation and np.isnan(m.summary.loc["x", "or"]) and np.isnan(m.summary.loc["x", "p"])
    res = logistic_screen(df, "y", ["x"])
    assert res.selected == []


def test_hand_computed_2x2_odds_ratio():
    # for one binary covariate the MLE OR is the sample OR (a d)/(b c) and se = sqrt(1/a+1/b+1/c+1/d)
    a, b, c, d = 7, 3, 4, 6    # x=1: 7 events, 3 non; x=0: 4 events, 6 non
    df = pd.DataFrame({"x": [1] * 10 + [0] * 10, "y": [1] * a + [0] * b + [1] * c + [0] * d})
    s = LogisticModel().fit(df, "y", "x").summary.loc["x"]
    assert s["or"] == pytest.approx(a * d / (b * c), rel=1e-8)
    assert s["se"] == pytest.approx(np.sqrt(1 / a + 1 / b + 1 / c + 1 / d), rel=1e-8)


def test_constant_outcome_and_bad_input():
    df = pd.DataFrame({"y": [0, 0, 0, 0], "x": [1, 2, 3, 4]})
    assert LogisticModel().fit(df, "y", ["x"]).summary.loc["x", "reason"] == "outcome constant"
    with pytest.raises(ValueError):
        LogisticModel().fit(df.assign(y=[0, 1, 2, 0]), "y", ["x"])
    with pytest.raises(ValueError):
        LogisticModel().fit(df, "y", ["missing_column"])


def test_non_numeric_covariate_raises():
    df = pd.DataFrame({"y": [0, 1, 0, 1], "x": ["a", "b", "1", "2"]})
    with pytest.raises(ValueError, match="non-numeric"):
        LogisticModel().fit(df, "y", ["x"])


# --- degenerate models: R's glm drops what it cannot estimate (make_golden_degenerate.R) --------

DEGENERATE = pd.read_csv(GOLD / "data_degenerate.csv")
DEGENERATE_R = pd.read_csv(GOLD / "fit_degenerate.csv")


def _assert_matches_r(m, ref):
    assert_matches_r(m.summary, ref, "or")
    assert m.n == ref["n"].iloc[0]


_NUMBERS = ["coef", "se", "or", "or_lo", "or_hi", "z", "p"]


@pytest.mark.parametrize("model", [m for m in DEGENERATE_R["model"].unique() if not m.startswith("uni_")])
def test_degenerate_model_matches_glm(model):
    ref = DEGENERATE_R[DEGENERATE_R["model"] == model].set_index("term")
    m = LogisticModel().fit(DEGENERATE, "crs_ge_3", list(ref.index))
    assert m.reason is None and not m.separation
    assert list(m.summary.index) == list(ref.index)           # R's order, aliased terms included
    assert m.fitted_covariates == list(ref.index[ref["coef"].notna()])
    _assert_matches_r(m, ref)


def test_reasons_name_the_degeneracy():
    covs = ["female", "no_prior_hsct", "prior_hsct", "icans", "bca_duration_days", "bca_duration_weeks"]
    m = LogisticModel().fit(DEGENERATE, "crs_ge_3", covs)
    assert m.dropped == {
        "prior_hsct": "prior_hsct is collinear with no_prior_hsct in this cohort: dropped from the model, as R does",
        "icans": "icans is constant in this cohort: dropped from the model, as R does",
        "bca_duration_weeks": "bca_duration_weeks is collinear with bca_duration_days in this cohort: "
                              "dropped from the model, as R does"}
    assert m.n_dropped == 2                                    # icans missing: rows go first, as na.omit


def test_all_missing_covariate_is_dropped_not_every_row():
    ref = DEGENERATE_R[DEGENERATE_R["model"] == "scrs_aliased"].set_index("term")
    m = LogisticModel().fit(DEGENERATE, "crs_ge_3", [*ref.index, "il6_unmeasured"])
    assert m.reason is None and m.n_dropped == 2
    assert m.dropped["il6_unmeasured"].startswith("il6_unmeasured is missing for every patient")
    _assert_matches_r(m, ref)
    only = LogisticModel().fit(DEGENERATE, "crs_ge_3", ["il6_unmeasured"])
    assert only.reason == "no covariate can be estimated" and only.summary.loc["il6_unmeasured", _NUMBERS].isna().all()


def test_separation_stays_null_beside_a_dropped_covariate():
    # nobody with a prior CAR-T had severe CRS: no finite estimate, whatever else is dropped
    m = LogisticModel().fit(DEGENERATE, "crs_ge_3", ["female", "icans", "prior_cart", "no_prior_cart"])
    assert m.separation and "separation" in m.reason
    assert m.summary[["or", "p"]].isna().all().all()
    assert m.summary.loc["female", "reason"] == m.reason
    assert "constant" in m.summary.loc["icans", "reason"] and "collinear" in m.summary.loc["no_prior_cart", "reason"]


def test_screen_with_a_constant_covariate():
    covs = ["female", "icans", "preld_mrd_lt_1e3", "dose_lt_median"]
    res = logistic_screen(DEGENERATE, "crs_ge_3", covs, screen_p=0.2)
    ref = DEGENERATE_R[DEGENERATE_R["model"].isin([f"uni_{c}" for c in covs])].set_index("term").loc[covs]
    assert res.table.loc["icans", "reason"] == "icans is constant in this cohort: dropped from the model, as R does"
    assert res.table.loc["icans", ["or", "p"]].isna().all() and res.table.loc["icans", "n"] == 78
    others = [c for c in covs if c != "icans"]
    np.testing.assert_allclose(res.table.loc[others, "or"].astype(float), ref.loc[others, "or"], rtol=TOL)
    np.testing.assert_allclose(res.table.loc[others, "p"].astype(float), ref.loc[others, "p"], atol=TOL)
    assert res.table.loc[others, "reason"].isna().all()
    assert res.selected == [c for c in others if ref.loc[c, "p"] < 0.2] == ["preld_mrd_lt_1e3"]


def test_nearly_collinear_covariates_are_kept():
    # only exact (to ~1e-9 of the variance) dependence drops a column: a covariate sharing
    # 99.99 % of its variance with another is fitted, as glm fits it
    from cartlib.stats.design import estimable_columns

    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    df = pd.DataFrame({"x": x, "near": x + 0.01 * rng.normal(size=200), "unit": 1000 * x - 7})
    kept, dropped = estimable_columns(df, ["x", "near", "unit"])
    assert kept == ["x", "near"] and list(dropped) == ["unit"]
    assert np.corrcoef(df["x"], df["near"])[0, 1] > 0.9999


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_newton_logit_iterates_as_statsmodels(seed):
    """The hand-written Newton iteration gives statsmodels' Logit estimates, SEs and convergence
    (also on a separated data set, where both stop at the same runaway estimate)."""
    sm = pytest.importorskip("statsmodels.api")
    import warnings

    from cartlib.stats.logistic import newton_logit

    rng = np.random.default_rng(seed)
    n = 60
    X = np.column_stack([np.ones(n), rng.integers(0, 2, n), rng.normal(size=n)])
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ [-0.3, 0.8, 0.5])))).astype(float)
    for outcome in (y, (X[:, 2] > 0.2).astype(float)):      # the second is separated by x2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = sm.Logit(outcome, X).fit(method="newton", maxiter=100, disp=0)
        fit = newton_logit(outcome, X)
        np.testing.assert_allclose(fit.params, ref.params, rtol=1e-9)
        np.testing.assert_allclose(fit.bse, ref.bse, rtol=1e-9)
        assert fit.converged == ref.mle_retvals["converged"]
