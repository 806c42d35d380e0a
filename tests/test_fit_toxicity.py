"""The Table 2 calibration stage (calibration.fit_toxicity): bundles swapped, never changed."""
import numpy as np
import pandas as pd
import pytest

from calibration.figures import evaluate, paper_calibration, paper_figures
from calibration.fit_toxicity import HISTORY_KEYS, TOXICITY_KEYS, fit_toxicity, post_ld_pairing_ok, survival_guard
from calibration.nudges import nudge
from calibration.pipeline import calibrated_parameters, calibrated_settings
from calibration.table2_objective import covariate, table2_figures
from cartlib.scorecard import within_tolerance
from cartlib.stats.logistic import LogisticModel
from cartlib.synth import model
from cartlib.synth.generate import generate_cohort, simulate_subjects


@pytest.fixture(scope="module")
def latent(default_latent):
    """The default cohort's latent dict right after ``nudge`` (as calibration.pipeline.simulated_tables records it)."""
    return default_latent["nudged"]


@pytest.fixture(scope="module")
def fitted(default_latent):
    """The stage as the default pipeline runs it (settings recorded in parameters/synthetic.yaml)."""
    return default_latent["toxicity"]


@pytest.fixture(scope="module")
def table2():
    return {f["key"]: f for f in paper_figures() if f["key"].startswith("toxicity.scrs.model")}


def _bundles(s):
    return [tuple(str(np.asarray(s[k])[i]) for k in TOXICITY_KEYS) for i in range(len(s["crs_grade"]))]


def _fit_table2(s, figures):
    """Table 2 figures as the suite computes them (cartlib.stats.logistic on the derived 0/1 covariates)."""
    out = {}
    for m in ("model1", "model2"):
        covs = list(dict.fromkeys(k.split(".")[3] for k in figures if k.split(".")[2] == m))
        df = pd.DataFrame({c: covariate(s, c) for c in covs})
        df["crs_ge_3"] = (np.asarray(s["crs_grade"]) >= 3).astype(int)
        summary = LogisticModel().fit(df, "crs_ge_3", covs).summary
        out.update({f"toxicity.scrs.{m}.{c}.{st}": float(summary.loc[c, st])
                    for c in covs for st in ("or", "or_lo", "or_hi", "p")})
    return out


def _matched(s, figures):
    got = _fit_table2(s, figures)
    return {k for k, f in figures.items() if f.get("feasible", True) and within_tolerance(got[k], f)}


def test_bundle_keys_are_what_the_model_draws():
    s = {"log10_mrd_preld": np.full(20, -3.0), "dose": np.full(20, 3.7),
         "cmax_true": np.full(20, 3e4), "tmax_true": np.full(20, 10.0), "prior_hsct": np.zeros(20, bool)}
    drawn = model.toxicity(np.random.default_rng(0), 20, model.load_parameters(), {}, s)
    assert set(drawn) == set(TOXICITY_KEYS)


def test_whole_bundles_move_and_every_marginal_is_kept(latent, fitted):
    assert sorted(_bundles(fitted)) == sorted(_bundles(latent))     # a permutation of whole bundles
    assert _bundles(fitted) != _bundles(latent)                       # and it did something
    for k in TOXICITY_KEYS:
        a, b = np.sort(np.asarray(latent[k], float)), np.sort(np.asarray(fitted[k], float))
        np.testing.assert_array_equal(a, b)
    post = ("mrd_postld", "log10_mrd_postld")
    for k in set(latent) - set(TOXICITY_KEYS) - set(post) - set(HISTORY_KEYS):            # the rest of the patient is untouched
        np.testing.assert_array_equal(np.asarray(latent[k]), np.asarray(fitted[k]))
    # post-LD MRD moves as a (value, latent) pair, every count kept, the <1e-4 strata unchanged
    pairs = lambda s: sorted(zip(*(np.asarray(s[k]).tolist() for k in post)))
    assert pairs(fitted) == pairs(latent)
    np.testing.assert_array_equal(fitted["mrd_postld"] < 1e-4, latent["mrd_postld"] < 1e-4)
    ok = post_ld_pairing_ok(latent)
    src = [int(np.flatnonzero(latent["log10_mrd_postld"] == v)[0]) for v in fitted["log10_mrd_postld"]]
    assert all(ok[i, j] for i, j in enumerate(src))                    # plausible lymphodepletion shifts
    r = np.corrcoef(latent["log10_mrd_preld"], fitted["log10_mrd_postld"])[0, 1]
    assert r > 0.75


def test_histories_move_whole_and_stay_coherent(latent, fitted):
    history = lambda s: [tuple(np.asarray(s[k])[i].item() for k in HISTORY_KEYS) for i in range(len(s["female"]))]
    assert sorted(history(fitted)) == sorted(history(latent))        # a permutation of whole histories
    assert history(fitted) != history(latent)                        # and the recorded stage uses it
    # a prior HSCT only after an MRD re-emergence (the model's eligibility), 5 of them
    assert (fitted["indication"][fitted["prior_hsct"]] == 0).all() and fitted["prior_hsct"].sum() == 5
    dead = ~np.isnan(latent["death_day"])                             # both groups keep a death
    assert dead[fitted["prior_hsct"]].any() and dead[~fitted["prior_hsct"]].any()
    off = fit_toxicity(latent, iterations=30)                        # off unless asked for
    assert history(off) == history(latent)


def test_constraints_hlh_and_gvhd(latent, fitted):
    hlh = np.flatnonzero(latent["hlh"])
    assert _bundles(fitted)[hlh[0]] == _bundles(latent)[hlh[0]]      # keeps its nudged pre-LD MRD
    assert not (fitted["gvhd"] & ~fitted["prior_hsct"]).any()


def test_deterministic_and_input_unchanged(latent, fitted):
    before = {k: np.array(v, copy=True) for k, v in latent.items()}
    again = fit_toxicity(latent, **calibrated_settings()["stages"]["toxicity"])
    for k in fitted:
        np.testing.assert_array_equal(np.asarray(again[k]), np.asarray(fitted[k]))
    for k in before:
        np.testing.assert_array_equal(before[k], np.asarray(latent[k]))


def test_table2_on_default_pipeline(latent, fitted, table2):
    before, after = _matched(latent, table2), _matched(fitted, table2)
    assert before <= after                            # nothing matched is lost
    feasible = {k for k, f in table2.items() if f.get("feasible", True)}
    assert after == feasible, sorted(feasible - after)   # every feasible Table 2 figure
    assert {"toxicity.scrs.model2.postld_mrd_lt_1e-3.or", "toxicity.scrs.model2.female.or"} <= after
    got = _fit_table2(fitted, table2)
    for cov in ("preld_mrd_lt_1e-3", "dose_lt_median"):            # burden and dose raise severe CRS
        assert got[f"toxicity.scrs.model1.{cov}.or"] < 1
    # the stage's own fast fit is the suite's logistic model
    fast = table2_figures(fitted)
    for k, v in got.items():
        assert fast[k] == pytest.approx(v, rel=1e-6)


def test_bundles_only_is_the_old_stage(latent, table2):
    t = fit_toxicity(latent, permute_post_ld=False, iterations=30)
    np.testing.assert_array_equal(t["mrd_postld"], latent["mrd_postld"])
    assert _matched(latent, table2) <= _matched(t, table2)


@pytest.mark.parametrize("n", [1, 3, 12])
def test_small_cohorts_do_not_crash(n):
    s = simulate_subjects(np.random.default_rng(5), n, model.load_parameters())
    t = fit_toxicity(s, iterations=20)
    assert sorted(_bundles(t)) == sorted(_bundles(s))


def test_no_targets_is_a_no_op(latent):
    t = fit_toxicity(latent, figures=[])
    assert _bundles(t) == _bundles(latent)


def test_survival_guard_is_exact_and_holds_lfs_figures(latent):
    """The guard's LFS Cox figures are the suite's (CoxModel on the derived tables), and a sex
    permutation it accepts keeps the Table 1A LFS figures within tolerance."""
    figs = paper_figures()
    by_key = {f["key"]: f for f in figs}
    guard = survival_guard(latent, figs)
    assert guard is not None
    p = calibrated_parameters()  # the bundled cohort's parameters (mechanisms added later switched off)
    st = calibrated_settings(p)
    cal = paper_calibration()
    cal.update(relapse_death_n=st["relapse_death_n"], nrm_n=st["nrm_n"])
    suite = evaluate(generate_cohort(50, st["seed"], p, cal=cal, adjust=lambda s: nudge(s, cal)))
    for k, v in guard.start.items():                 # exact: the suite's CoxModel on the derived tables
        assert v == pytest.approx(suite[k], rel=1e-6), k
    ident = np.arange(latent["female"].size)
    assert guard(ident, ident)
    t = fit_toxicity(latent, figs, permute_sex=True, seed=3)
    moved = np.flatnonzero(t["female"] != latent["female"])
    assert moved.size > 0 and sorted(t["female"]) == sorted(latent["female"])
    got = survival_guard(t, figs).start
    for k, v in guard.start.items():
        if k in by_key and within_tolerance(v, by_key[k]):
            assert within_tolerance(got[k], by_key[k]), k
