"""B-cell aplasia analyses and the IL-6 association, checked against R and by hand.

Golden values: tests/golden/nca/make_golden.R (survfit(conf.type="plain"), cor.test(
method="spearman", exact=FALSE), fisher.test, sample OR with Woolf CI) on the seeded
synthetic analysis table analysis_synth.csv.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cartlib.bca import (bca_correlations, bca_loss_km, derive_il6_elevated,
                         il6_association, il6_summary)

GOLDEN = Path(__file__).parent / "golden" / "nca"


@pytest.fixture(scope="module")
def analysis():
    return pd.read_csv(GOLDEN / "analysis_synth.csv", index_col="USUBJID")


def test_bca_loss_km_matches_r(analysis):
    km = bca_loss_km(analysis, ci="plain")
    ref = pd.read_csv(GOLDEN / "golden_bca_km.csv")
    tab = km.table_.reset_index(drop=True)
    # R's survfit keeps only times with an event or censoring, like table_.
    np.testing.assert_array_equal(tab["time"], ref["time"])
    np.testing.assert_array_equal(tab["n_risk"], ref["n_risk"])
    for col in ("survival", "ci_lower", "ci_upper"):
        np.testing.assert_allclose(tab[col], ref[col], atol=1e-6, equal_nan=True)
    scal = pd.read_csv(GOLDEN / "golden_scalars.csv", index_col="name")["value"]
    assert km.median_ == scal["km_median"]
    assert len(km.durations_) == analysis["bca"].sum()   # patients with onset only


def test_bca_loss_km_without_onset():
    with pytest.raises(ValueError, match="no patient"):
        bca_loss_km(pd.DataFrame({"bca": [0], "bca_duration_days": [0.0], "bca_ongoing": [0]}))


def test_bca_correlations_match_r(analysis):
    got = bca_correlations(analysis)
    ref = pd.read_csv(GOLDEN / "golden_correlations.csv", index_col="name")
    assert list(got.index) == ["tlast", "cmax", "auc28"]
    for name in got.index:
        r = ref.loc[f"bca_{name}"]
        assert got.loc[name, "r"] == pytest.approx(r["r"], abs=1e-9)
        assert got.loc[name, "p"] == pytest.approx(r["p"], abs=1e-6)
        # all patients (no onset -> duration 0) minus those without the PK value
        assert got.loc[name, "n"] == r["n"] == analysis[name].notna().sum()


def test_derive_il6_elevated(analysis):
    flag = derive_il6_elevated(analysis, uln=7.0)
    # S11 missing -> 0, S12 exactly at the ULN -> 0, S13 at 7.1 -> 1
    assert flag[["S11", "S12", "S13"]].tolist() == [0, 0, 1]
    assert derive_il6_elevated(analysis, uln=7.05)["S13"] == 1
    assert derive_il6_elevated(analysis, uln=7.1)["S13"] == 0


def test_il6_association_matches_r(analysis):
    got = il6_association(analysis, uln=7.0)
    ref = pd.read_csv(GOLDEN / "golden_il6.csv", index_col="outcome")
    for outcome in ("crs_ge_3", "icans"):
        for cell in "abcd":
            assert got.loc[outcome, cell] == ref.loc[outcome, cell]
        for col in ("or", "or_lo", "or_hi"):
            assert got.loc[outcome, col] == pytest.approx(ref.loc[outcome, col], rel=1e-6)
        assert got.loc[outcome, "p"] == pytest.approx(ref.loc[outcome, "p"], abs=1e-6)


def test_il6_odds_ratio_by_hand():
    # Table [[3, 1], [1, 3]]: OR = 9 (the paper's ICANS value); Woolf SE = sqrt(4 * 1/1 ...)
    # = sqrt(1/3 + 1 + 1 + 1/3); Fisher p = 2 * (16 + 1) / 70 = 34/70 (hypergeometric, by hand:
    # tables with a = 3 or 4 have probabilities 16/70 and 1/70, doubled by symmetry).
    a = pd.DataFrame({"il6_peak": [50, 60, 70, 80, 1, 2, 3, 4.0],
                      "crs_ge_3": [1, 1, 1, 0, 1, 0, 0, 0], "icans": [0] * 8})
    res = il6_association(a).loc["crs_ge_3"]
    se = math.sqrt(1 / 3 + 1 + 1 + 1 / 3)
    assert res["or"] == pytest.approx(9.0)
    assert res["or_lo"] == pytest.approx(9 * math.exp(-1.959963984540054 * se))
    assert res["or_hi"] == pytest.approx(9 * math.exp(1.959963984540054 * se))
    assert res["p"] == pytest.approx(34 / 70)
    icans = il6_association(a).loc["icans"]
    assert np.isnan(icans["or"]) and "infinite" in icans["reason"]


def test_il6_summary_over_elevated_patients():
    a = pd.DataFrame({"il6_peak": [3.0, 7.6, 33.3, 5000.0, np.nan],
                      "il6_peak_day": [2.0, 1.0, 8.0, 22.0, np.nan]})
    s = il6_summary(a)
    assert (s["n"], s["n_elevated"]) == (5, 3)
    assert (s["peak_median"], s["peak_min"], s["peak_max"]) == (33.3, 7.6, 5000.0)
    assert (s["day_median"], s["day_min"], s["day_max"]) == (8.0, 1.0, 22.0)
