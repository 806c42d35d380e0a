"""AUClast, partial AUCs and the terminal phase (lambda_z) per docs/NCA.md.

Expected numbers are worked out by hand in the comment next to them, or come from Phoenix
WinNonlin's published Theoph results, PKNCA's own vignette, or an independent R reading of
the rules (tests/golden/nca/README.md); none was copied from cartlib.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartlib.params import ParameterError, resolve
from cartlib.pk.nca import NCARules, auc_interval_name, nca, partial_aucs
from cartlib.pk.terminal import LAMBDA_Z_COLUMNS, lambda_z, lambda_z_profile
from test_nca import EXP_ROWS, GOLDEN, LN2, make_pk

# PKNCA's AUC vignette profile (times in hours): conc 0 at 0 h and BLQ (0) at 12 and 24 h.
VIGNETTE_TIME = [0, 1, 2, 3, 4, 5, 8, 12, 24]
VIGNETTE_CONC = [0, 2.5, 3, 2, 1.5, 1.2, 1.1, 0, 0]


def vignette_pk():
    rows = [("V", t, c if c > 0 else "BLQ") for t, c in zip(VIGNETTE_TIME, VIGNETTE_CONC) if t > 0]
    return make_pk(rows)


class TestPartialAUCs:
    def test_exponential_profile_by_hand(self):
        # EXP_ROWS: (0,0) -> 8000 at day 7, halving every 7 days to 1000 at day 28.
        # [0, 28]: 28000 + 49000/ln2 (tests/test_nca.py); [14, 21]: 4000*7/ln2*(1/2) = 14000/ln2;
        # [10, 17]: 8000*2^(-3/7) * 7/ln2 * (1 - 2^-1); AUClast = [0, 28] (Tlast is day 28).
        res = partial_aucs(make_pk(EXP_ROWS), auc_intervals=[[0, 28], [14, 21], [10, 17]]).loc["P"]
        assert res["auc_0_28"] == pytest.approx(28000 + 49000 / LN2, rel=1e-12)
        assert res["auc_14_21"] == pytest.approx(14000 / LN2, rel=1e-12)
        assert res["auc_10_17"] == pytest.approx(8000 * 2 ** (-3 / 7) * 3.5 / LN2, rel=1e-12)
        assert res["auclast"] == pytest.approx(res["auc_0_28"], rel=1e-15)

    def test_auclast_stops_at_tlast_and_blq_after(self):
        # 8000 at 7, 2000 at 14, BLQ at 21 and 35, linear: AUClast = 28000 + 7*10000/2 = 63000;
        # [0, 21] adds the fall to 0: 7*2000/2 = 7000; after the last (BLQ) sample the profile
        # stays 0, so [0, 90] = [0, 35] = 70000 and [40, 90] = 0.
        rows = [("P", 7, 8000.0), ("P", 14, 2000.0), ("P", 21, "BLQ"), ("P", 35, "BLQ")]
        res = partial_aucs(make_pk(rows), auc_method="linear",
                           auc_intervals=[[0, 21], [0, 90], [40, 90]]).loc["P"]
        assert res["auclast"] == pytest.approx(63000.0)
        assert res["auc_0_21"] == pytest.approx(70000.0)
        assert res["auc_0_90"] == pytest.approx(70000.0)
        assert res["auc_40_90"] == 0.0

    def test_interval_past_a_quantifiable_last_sample_is_missing(self):
        res = partial_aucs(make_pk(EXP_ROWS[:3]), auc_intervals=[[0, 28], [0, 21], [21, 28]]).loc["P"]
        assert math.isnan(res["auc_0_28"]) and math.isnan(res["auc_21_28"])
        assert res["auc_0_21"] == pytest.approx(res["auclast"], rel=1e-15)   # Tlast = 21

    def test_pieces_add_up_and_start_between_samples(self):
        # Interpolated starts and ends use the same segment rule, so the pieces are additive.
        pk = make_pk([("P", 4, 900.0), ("P", 11, 7000.0), ("P", 20, 3000.0), ("P", 45, 150.0),
                      ("P", 60, "BLQ")])
        for method in ("linear", "linear-up-log-down"):
            r = partial_aucs(pk, auc_method=method, auc_intervals=[[0, 90], [0, 12.5], [12.5, 33], [33, 90]])
            r = r.loc["P"]
            assert r["auc_0_12p5"] + r["auc_12p5_33"] + r["auc_33_90"] == pytest.approx(r["auc_0_90"], rel=1e-12)

    def test_all_blq_no_sample_and_equality_with_auc28(self):
        rows = [("C", 7, "BLQ"), ("C", 21, 40.0), ("E", -2, 500.0)] + EXP_ROWS
        res = partial_aucs(make_pk(rows))
        assert res.loc["C"].tolist() == [0.0, 0.0, 0.0]                # never quantifiable
        assert res.loc["E"].isna().all()                               # only a baseline sample
        # auc_0_28 is auc28 wherever auc28 has a value; C's samples stop before day 28 on a
        # BLQ sample: auc28 missing (its own rule), auc_0_28 complete at 0.
        base = nca(make_pk(rows))
        assert res.loc["P", "auc_0_28"] == base.loc["P", "auc28"]
        assert math.isnan(base.loc["C", "auc28"])

    def test_pknca_vignette_auclast_aucall_and_aucint(self):
        # PKNCA "AUC Calculation with PKNCA", lin up/log down: auclast 12.9965842, aucall
        # 15.1965842 (our [0, 24], the linear fall to the BLQ at 12 h, then 0), aucint.last
        # 4 over [0, 2] and 2.5625 over [0, 1.5].
        res = partial_aucs(vignette_pk(), lloq=0.01, auc_intervals=[[0, 24], [0, 2], [0, 1.5]]).loc["V"]
        assert res["auclast"] == pytest.approx(12.9965842, abs=5e-8)
        assert res["auc_0_24"] == pytest.approx(15.1965842, abs=5e-8)
        assert res["auc_0_2"] == pytest.approx(4.0, rel=1e-12)
        assert res["auc_0_1p5"] == pytest.approx(2.5625, rel=1e-12)

    def test_interval_names_and_rules(self):
        assert auc_interval_name(0, 28) == "auc_0_28" and auc_interval_name(7.25, 90.5) == "auc_7p25_90p5"
        assert auc_interval_name(0.1, 1) != auc_interval_name(0.10000000000000002, 1)
        assert NCARules(auc_intervals=[[0, 14.0]]).auc_intervals == ((0.0, 14.0),)
        for bad in ([[5, 5]], [[-1, 3]], [[0, np.inf]], [[0, 1, 2]], [[0, 1], [0.0, 1.0]], 7, [["a", 2]]):
            with pytest.raises(ValueError):
                NCARules(auc_intervals=bad)

    def test_parameter_checks(self):
        assert resolve({"auc_intervals": [[0, 14], [28, 90.5]]})["auc_intervals"] == [[0.0, 14.0], [28.0, 90.5]]
        assert resolve({"auc_intervals": []})["auc_intervals"] == []
        assert NCARules.from_params(resolve()).auc_intervals == ((0.0, 28.0), (0.0, 90.0))
        for bad, message in (([[28, 0]], "is not such a pair"), ([[0, 40000]], "is not such a pair"),
                             ("0-28", "must be a list"), ([[0, 28], [0, 28]], "twice"),
                             ([[0, True]], "is not such a pair"), ([[0, 1]] * 21, "at most 20")):
            with pytest.raises(ParameterError, match=message):
                resolve({"auc_intervals": bad})


class TestLambdaZByHand:
    def test_exact_exponential_tail(self):
        # EXP_ROWS: Tmax day 7 is left out; 14, 21, 28 halve every 7 days: lambda_z = ln2/7,
        # half-life 7, R^2 = 1, one candidate (3 points), span ratio (28 - 14)/7 = 2.
        res = lambda_z(make_pk(EXP_ROWS)).loc["P"]
        assert res["lambda_z"] == pytest.approx(LN2 / 7, rel=1e-12)
        assert res["half_life"] == pytest.approx(7.0, rel=1e-12)
        assert (res["lambda_z_n_points"], res["lambda_z_time_first"], res["lambda_z_time_last"]) == (3, 14, 28)
        assert res["r_squared"] == pytest.approx(1.0) and res["span_ratio"] == pytest.approx(2.0)
        assert res["clast_pred"] == pytest.approx(1000.0) and res["lambda_z_status"] == "estimated"
        assert res["lambda_z_reason"] is None
        # With the Tmax day allowed in (PKNCA's allow.tmax.in.half.life), 4 exact points.
        assert lambda_z(make_pk(EXP_ROWS), include_tmax=True).loc["P", "lambda_z_n_points"] == 4

    def test_most_points_win_within_the_tolerance(self):
        # 6400 at 7 (Tmax), then halving every 7 days over 5 days: every candidate fit (3, 4,
        # 5 points) is exact, adjusted R^2 = 1 for all; the one with most points (5) wins.
        rows = [("P", 4, 100.0), ("P", 7, 6400.0)] + [("P", 7 * k, 6400.0 / 2 ** (k - 1)) for k in range(2, 7)]
        res = lambda_z(make_pk(rows)).loc["P"]
        assert (res["lambda_z_n_points"], res["lambda_z_time_first"]) == (5, 14)
        assert res["half_life"] == pytest.approx(7.0, rel=1e-12)

    def test_tolerance_decides_between_fewer_and_more_points(self):
        # Exact halving every 7 days on days 21, 28, 35 (adjusted R^2 = 1) and one earlier point
        # on day 14 off the line by a factor f. The 4-point fit joins only when its adjusted
        # R^2 is above 1 - 1e-4. Computed directly with numpy's least squares for each f.
        for factor, joins in ((1.003, True), (1.2, False)):
            rows = [("P", 7, 9000.0), ("P", 14, 4000.0 * factor), ("P", 21, 2000.0), ("P", 28, 1000.0),
                    ("P", 35, 500.0)]
            x = np.array([14.0, 21, 28, 35])
            y = np.log([4000.0 * factor, 2000, 1000, 500])
            r2 = np.corrcoef(x, y)[0, 1] ** 2
            adj4 = 1 - (1 - r2) * 3 / 2
            assert (adj4 > 1 - 1e-4) == joins            # the two cases are on either side
            res = lambda_z(make_pk(rows)).loc["P"]
            assert res["lambda_z_n_points"] == (4 if joins else 3)
            assert res["adj_r_squared"] == pytest.approx(adj4 if joins else 1.0, abs=1e-12)

    def test_rising_tail_is_not_estimable(self):
        # After Tmax (day 7): 20000, 10000, 1000, 2000, 4000. The last 3 points rise exactly
        # (doubling every 7 days, adjusted R^2 = 1, lambda_z < 0); PKNCA takes the best adjusted
        # R^2 over all candidates, so no declining fit qualifies.
        rows = [("P", 7, 50000.0), ("P", 14, 20000.0), ("P", 21, 10000.0), ("P", 28, 1000.0),
                ("P", 35, 2000.0), ("P", 42, 4000.0)]
        res = lambda_z(make_pk(rows)).loc["P"]
        assert res["lambda_z_status"] == "not estimable" and math.isnan(res["half_life"])
        assert "do not decline" in res["lambda_z_reason"]

    def test_blq_inside_the_tail_and_tied_maximum(self):
        # BLQ on day 21 is left out: 14 (4000), 28 (1000), 35 (500) lie on a 7-day half-life.
        blq = lambda_z(make_pk([("P", 7, 8000.0), ("P", 14, 4000.0), ("P", 21, "BLQ"), ("P", 28, 1000.0),
                                ("P", 35, 500.0)])).loc["P"]
        assert blq["half_life"] == pytest.approx(7.0) and blq["lambda_z_n_points"] == 3
        # Cmax 5000 on days 7 and 14: Tmax is day 7, so day 14 is a candidate point.
        tie = lambda_z(make_pk([("P", 7, 5000.0), ("P", 14, 5000.0), ("P", 21, 2500.0),
                                ("P", 28, 1250.0)])).loc["P"]
        assert tie["lambda_z_time_first"] == 14 and tie["half_life"] == pytest.approx(7.0)

    def test_reasons(self):
        rows = [("A", 7, 5000.0), ("A", 14, 900.0), ("A", 21, "BLQ"),     # 1 point after Tmax
                ("B", 7, "BLQ"), ("C", -1, 300.0)]
        res = lambda_z(make_pk(rows))
        assert res["lambda_z_reason"].tolist() == ["1 quantifiable day(s) after Tmax; at least 3 needed",
                                                   "no quantifiable sample after day 0", "no sample after day 0"]
        assert (res["lambda_z_status"] == "not estimable").all() and res["lambda_z"].isna().all()
        assert tuple(res.columns) == LAMBDA_Z_COLUMNS
        assert lambda_z_profile([], [])["lambda_z_reason"] == "no sample"

    def test_options_are_checked(self):
        with pytest.raises(ValueError, match="min_points"):
            lambda_z(make_pk(EXP_ROWS), min_points=2)
        with pytest.raises(ValueError, match="adj_r_squared_factor"):
            lambda_z(make_pk(EXP_ROWS), adj_r_squared_factor=-1)
        with pytest.raises(ValueError, match="distinct"):
            lambda_z_profile([1, 1, 2], [3, 2, 1])


# --- external references ----------------------------------------------------------------

def test_theoph_lambda_z_matches_winnonlin():
    # Phoenix WinNonlin "best fit" on R's Theoph (values printed to 7 decimals).
    data = pd.read_csv(GOLDEN / "theoph.csv")
    ref = pd.read_csv(GOLDEN / "winnonlin_theoph_lambda_z.csv").set_index("Subject")
    for subject, g in data.groupby("Subject"):
        fit, want = lambda_z_profile(g["Time"], g["conc"]), ref.loc[subject]
        assert fit["lambda_z_n_points"] == want["No_points_lambda_z"], subject
        assert fit["lambda_z_time_first"] == want["Lambda_z_lower"], subject
        assert fit["lambda_z_time_last"] == want["Lambda_z_upper"], subject
        for ours, theirs in (("lambda_z", "Lambda_z"), ("half_life", "HL_Lambda_z"),
                             ("r_squared", "Rsq"), ("adj_r_squared", "Rsq_adjusted")):
            assert fit[ours] == pytest.approx(want[theirs], abs=5.1e-8), (subject, ours)


def test_pknca_vignette_half_life():
    # PKNCA's AUC vignette: lambda.z 0.1075592, r.squared 0.7580245, adj.r.squared 0.6370368,
    # 4 points from 3 h, clast.pred 1.0216136, half.life 6.4443313, span.ratio 0.7758757.
    fit = lambda_z_profile(VIGNETTE_TIME, VIGNETTE_CONC)
    expected = {"lambda_z": 0.1075592, "r_squared": 0.7580245, "adj_r_squared": 0.6370368,
                "clast_pred": 1.0216136, "half_life": 6.4443313, "span_ratio": 0.7758757}
    for key, value in expected.items():
        assert fit[key] == pytest.approx(value, abs=5.1e-8), key
    assert (fit["lambda_z_n_points"], fit["lambda_z_time_first"], fit["lambda_z_time_last"]) == (4, 3, 8)
    assert lambda_z(vignette_pk(), lloq=0.01).loc["V", "half_life"] == pytest.approx(fit["half_life"], rel=1e-12)


@pytest.mark.parametrize("cohort", ["pk_synth", "pk_tails"])
def test_cohort_matches_independent_r_implementation(cohort):
    # make_golden_terminal.R: loop-based R reading of docs/NCA.md, lm() per candidate fit.
    raw = pd.read_csv(GOLDEN / f"{cohort}.csv", dtype={"CONC": str})
    pk = make_pk(list(raw.itertuples(index=False, name=None)))
    ref = pd.read_csv(GOLDEN / f"golden_terminal_{cohort}.csv", index_col="USUBJID")
    got = lambda_z(pk)
    assert list(got.index) == list(ref.index)
    assert got["lambda_z"].notna().sum() >= 15 and got["lambda_z"].isna().sum() >= 10   # both kinds
    for col in ("lambda_z", "half_life", "lambda_z_n_points", "r_squared", "adj_r_squared",
                "lambda_z_time_first", "clast_pred"):
        np.testing.assert_allclose(got[col].astype(float), ref[col], rtol=1e-9, equal_nan=True, err_msg=col)
    intervals = [[0, 28], [7, 60], [0, 12.5], [30, 365]]
    for method, suffix in (("linear-up-log-down", "logdown"), ("linear", "linear")):
        aucs = partial_aucs(pk, auc_method=method, auc_intervals=intervals)
        for col in aucs.columns:
            np.testing.assert_allclose(aucs[col], ref[f"{col}_{suffix}"], rtol=1e-9, equal_nan=True,
                                       err_msg=f"{col} {method}")


# --- properties -------------------------------------------------------------------------

@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(st.lists(st.floats(1.0, 1e6), min_size=2, max_size=9, unique=True), st.floats(1e-3, 1e3),
       st.floats(-50.0, 50.0))
def test_lambda_z_ignores_units_and_time_origin(conc, scale, shift):
    # Scaling every concentration multiplies clast_pred and leaves the fit's shape alone;
    # shifting every day moves the days of the fit and nothing else.
    days = np.arange(1.0, len(conc) + 1) * 3.5
    base = lambda_z_profile(days, conc)
    scaled = lambda_z_profile(days, np.asarray(conc) * scale)
    shifted = lambda_z_profile(days + shift, conc)
    assert base["lambda_z_status"] == scaled["lambda_z_status"] == shifted["lambda_z_status"]
    if base["lambda_z_status"] == "estimated":
        assert base["lambda_z"] > 0 and 3 <= base["lambda_z_n_points"] <= len(conc) - 1
        assert base["adj_r_squared"] <= 1.0 + 1e-12
        for other in (scaled, shifted):
            assert other["lambda_z_n_points"] == base["lambda_z_n_points"]
            assert other["lambda_z"] == pytest.approx(base["lambda_z"], rel=1e-6)
        assert scaled["clast_pred"] == pytest.approx(base["clast_pred"] * scale, rel=1e-6)
        assert shifted["lambda_z_time_first"] == pytest.approx(base["lambda_z_time_first"] + shift)
    else:
        assert base["lambda_z_reason"]
