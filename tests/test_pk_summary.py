"""NCA summaries, the paper's Table 3 and the kinetics correlations, checked against R.

Golden values: tests/golden/nca/make_golden.R (wilcox.test(exact=FALSE), cor.test(
method="spearman", exact=FALSE), medians, geometric mean/CV) on the seeded synthetic
analysis table analysis_synth.csv written by the same script.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartlib.pk.nca import NCARules
from cartlib.pk.summary import (correlation_table, kinetics_correlations, summarise_columns, summarise_nca,
                                summarise_terminal_and_partial, table3, terminal_and_partial)

GOLDEN = Path(__file__).parent / "golden" / "nca"


@pytest.fixture(scope="module")
def analysis():
    return pd.read_csv(GOLDEN / "analysis_synth.csv", index_col="USUBJID")


@pytest.fixture(scope="module")
def t3(analysis):
    return table3(analysis)


@pytest.fixture(scope="module")
def scalars():
    return pd.read_csv(GOLDEN / "golden_scalars.csv", index_col="name")["value"]


class TestTable3:
    def test_matches_r(self, t3):
        got = t3
        ref = pd.read_csv(GOLDEN / "golden_table3.csv").set_index(["row", "level"])
        assert list(got.index) == list(ref.index)          # rows, levels and their order
        assert got["n"].tolist() == ref["n"].tolist()
        for col in ("cmax_median", "auc28_median", "tlast_median"):
            np.testing.assert_allclose(got[col], ref[col], rtol=1e-12)
        for col in ("cmax_p", "auc28_p", "tlast_p"):
            np.testing.assert_allclose(got[col], ref[col], atol=1e-6, rtol=0)

    def test_dose_cut_is_cohort_median_by_default(self, analysis, t3, scalars):
        assert t3.attrs["dose_cut"] == pytest.approx(scalars["dose_cut"])
        t = table3(analysis, dose_cut=3.0)
        assert t.loc[("dose", "lt"), "n"] == (analysis["DOSE"] < 3.0).sum()

    def test_missing_characteristic_left_out(self, t3):
        t = t3
        # S08 has no MRD_PRELD: 39 of 40 patients in each pre-LD split
        assert t.loc["preld_mrd_1e-3", "n"].sum() == 39
        assert t.loc["postld_mrd_1e-3", "n"].sum() == 40

    def test_printable_labels(self, analysis, t3):
        t = t3
        assert t.loc[("crs", "ge_3"), "characteristic"] == "CRS"
        assert t.loc[("age", "le_10"), "level_label"] == "0-10"
        # age 10 counts in 0-10, 10.1 in >10 (S01, S02)
        assert t.loc[("age", "le_10"), "n"] == (analysis["AGE"] <= 10).sum()

    def test_nan_p_has_a_reason(self, analysis, t3):
        assert t3["p_reason"].isna().all()              # every p computable here
        # a single patient with HSCT history still has R's normal-approximation p ...
        one = analysis[(analysis["PRIOR_HSCT"] == "N") | (analysis.index == "S01")].copy()
        one.loc["S01", "PRIOR_HSCT"] = "Y"
        row = table3(one).loc[("prior_hsct", "yes")]
        assert row["n"] == 1 and 0 < row["cmax_p"] <= 1
        # ... none with it has no test, and the table says why
        none = analysis[analysis["PRIOR_HSCT"] == "N"]
        row = table3(none).loc[("prior_hsct", "yes")]
        assert row["n"] == 0 and np.isnan(row["cmax_p"]) and "no value" in row["p_reason"]

    def test_missing_column_is_an_error(self, analysis):
        with pytest.raises(ValueError, match="tlast"):
            table3(analysis.drop(columns="tlast"))


class TestSummariseNCA:
    def test_matches_r(self, analysis, scalars):
        s = summarise_nca(analysis)
        for p in ("cmax", "auc28"):
            assert s.loc[p, "geomean"] == pytest.approx(scalars[f"{p}_geomean"], rel=1e-9)
            assert s.loc[p, "geocv_pct"] == pytest.approx(scalars[f"{p}_geocv_pct"], rel=1e-9)
            assert s.loc[p, "n_geo"] == scalars[f"{p}_n_geo"]
        for p in ("cmax", "tmax", "tlast", "auc28"):
            assert s.loc[p, "median"] == pytest.approx(scalars[f"{p}_median"])
        # auc28: 39 values, one of them 0 -> 38 enter the geometric statistics
        assert s.loc["auc28", "n"] == 39

    def test_geometric_cv_by_hand(self):
        # logs 0 and 2: mean 1 -> geomean e; sd_log^2 = 2 -> CV = sqrt(e^2 - 1) * 100
        df = pd.DataFrame({"cmax": [1.0, math.e ** 2], "auc28": [0.0, 3.0],
                           "tmax": [7.0, 14.0], "tlast": [28.0, np.nan]})
        s = summarise_nca(df)
        assert s.loc["cmax", "geomean"] == pytest.approx(math.e)
        assert s.loc["cmax", "geocv_pct"] == pytest.approx(math.sqrt(math.e ** 2 - 1) * 100)
        assert s.loc["auc28", "geomean"] == pytest.approx(3.0)    # the 0 is left out
        assert np.isnan(s.loc["auc28", "geocv_pct"]) and s.loc["auc28", "reason"]
        assert np.isnan(s.loc["tmax", "geomean"])                 # no geometric stats
        assert (s.loc["tlast", "n"], s.loc["tlast", "median"]) == (1, 28.0)

    def test_by_group(self, analysis):
        s = summarise_nca(analysis, by="d28_mrd_neg")
        assert s.index.names == ["d28_mrd_neg", "parameter"]
        for g, part in analysis.groupby("d28_mrd_neg"):
            pd.testing.assert_frame_equal(s.loc[g], summarise_nca(part), check_names=False)


class TestTerminalAndPartialSummary:
    # A: 8000 at day 7 halving every 7 days to 1000 at 28 -> half-life 7 (days 14-28), AUClast
    #    28000 + 49000/ln2 (exact exponential area), AUC0-14 28000 + 28000/ln2.
    # B: 2000 at 7, 16000 at 14, then 4000, 1000, 250 at 21, 28, 35 -> half-life 3.5
    #    (quartering every 7 days). AUC0-14 = 7000 + 7*18000/2 = 70000.
    # C: one quantifiable day after Tmax -> not estimable; D: no PK row at all.
    ROWS = {"USUBJID": ["A"] * 4 + ["B"] * 5 + ["C"] * 3, "DAY": [7, 14, 21, 28, 7, 14, 21, 28, 35, 7, 14, 28],
            "CONC": [8000.0, 4000, 2000, 1000, 2000, 16000, 4000, 1000, 250, 3000, 500, np.nan],
            "BLQ_TEXT": [False] * 11 + [True]}

    @pytest.fixture(scope="class")
    def per_patient(self):
        pk = pd.DataFrame(self.ROWS)
        return terminal_and_partial(pk, NCARules(auc_intervals=[[0, 14]]), patients=["A", "B", "C", "D"])

    def test_per_patient_columns(self, per_patient):
        ln2 = math.log(2)
        assert per_patient.loc["A", "half_life"] == pytest.approx(7.0)
        assert per_patient.loc["B", "half_life"] == pytest.approx(3.5)
        assert per_patient.loc["A", "auclast"] == pytest.approx(28000 + 49000 / ln2)
        assert per_patient.loc["A", "auc_0_14"] == pytest.approx(28000 + 28000 / ln2)
        assert per_patient.loc["B", "auc_0_14"] == pytest.approx(70000.0)
        assert per_patient["lambda_z_status"].tolist() == ["estimated"] * 2 + ["not estimable"] * 2
        assert per_patient.loc["D", "lambda_z_reason"] == "no sample after day 0"
        assert per_patient.attrs["auc_intervals"] == {"auc_0_14": (0.0, 14.0)}

    def test_cohort_statistics(self, per_patient):
        s = summarise_terminal_and_partial(per_patient)
        assert s[("half_life", "n")] == 2 and s[("lambda_z_not_estimable", "n")] == 2
        assert s[("half_life", "median")] == pytest.approx(5.25)          # (7 + 3.5) / 2
        assert (s[("half_life", "min")], s[("half_life", "max")]) == pytest.approx((3.5, 7.0))
        assert s[("lambda_z", "median")] == pytest.approx((math.log(2) / 7 + math.log(2) / 3.5) / 2)
        assert s[("lambda_z_n_points", "median")] == 3.0
        assert s[("auc_0_14", "n")] == 3 and s[("auclast", "n")] == 3      # D has none
        # C: 0-7 rising 7*3000/2 = 10500, 7-14 falling 3000 -> 500 on the log scale 7*2500/ln6
        c_auc = 10500 + 7 * 2500 / math.log(6)
        a_auc = 28000 + 28000 / math.log(2)
        assert s[("auc_0_14", "median")] == pytest.approx(sorted([a_auc, 70000.0, c_auc])[1])
        assert s[("auc_0_14", "geomean")] == pytest.approx((a_auc * 70000.0 * c_auc) ** (1 / 3))
        assert all(isinstance(v, (int, float)) for v in s.values)

    def test_summarise_columns(self):
        df = pd.DataFrame({"x": [1.0, 4.0, np.nan], "y": [0.0, 2.0, 8.0]})
        s = summarise_columns(df, ["x", "y"], geometric=["y"])
        assert (s.loc["x", "n"], s.loc["x", "median"]) == (2, 2.5)
        assert (s.loc["y", "n_geo"], s.loc["y", "geomean"]) == (2, pytest.approx(4.0))   # 0 left out
        with pytest.raises(ValueError, match="no column"):
            summarise_columns(df, ["z"])


@pytest.fixture(scope="module")
def ref():
    return pd.read_csv(GOLDEN / "golden_correlations.csv", index_col="name")


class TestCorrelations:
    def test_kinetics_match_r(self, analysis, ref):
        got = kinetics_correlations(analysis)
        for name in ("cmax", "auc28"):
            r = ref.loc[f"kin_{name}"]
            assert got.loc[name, "r"] == pytest.approx(r["r"], abs=1e-9)
            assert got.loc[name, "p"] == pytest.approx(r["p"], abs=1e-6)
            assert got.loc[name, "n"] == r["n"]

    def test_pairwise_dropping(self):
        df = pd.DataFrame({"x": [1, 2, 3, np.nan, 5], "y": [1, 3, 2, 4, np.nan]})
        res = correlation_table(df, {"xy": ("x", "y")})
        # pairs (1,1), (2,3), (3,2): ranks x 1,2,3, y 1,3,2 -> rho = 1 - 6*2/(3*8) = 0.5
        assert res.loc["xy", "n"] == 3 and res.loc["xy", "r"] == pytest.approx(0.5)
