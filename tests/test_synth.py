"""The synthetic-cohort generator: any size, deterministic, contract-valid, realistic in expectation."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cartlib.io import load_cohort
from cartlib.synth import DEFAULT_COHORT_DIR, generate_cohort, write_cohort
from cartlib.synth import generate as gen
from cartlib.synth.latent import categorical, decide, ordinal, pin_counts, pin_ranks

CONTRACT_COLUMNS = {  # docs/COHORT.md, in order
    "subjects": ["USUBJID", "AGE", "SEX", "INDICATION", "GENRISK", "PRIOR_HSCT", "PRIOR_CART",
                 "DX_TO_INF_MO", "DOSE", "MRD_PRELD", "MRD_POSTLD", "D28_RESPONSE", "D28_MRD_NEG",
                 "LAST_CONTACT_DAY"],
    "events": ["USUBJID", "EVENT", "DAY", "DETAIL"],
    "adverse_events": ["USUBJID", "TERM", "GRADE", "ONSET_DAY", "DETAIL"],
    "medications": ["USUBJID", "DRUG", "START_DAY"],
    "pk": ["USUBJID", "DAY", "CONC"],
    "labs": ["USUBJID", "DAY", "TEST", "VALUE"],
}


@pytest.fixture(scope="module")
def cohort200():
    return generate_cohort(200, seed=7)


@pytest.mark.parametrize("n", [5, 200])
def test_any_size_has_the_contract_shape(n):
    t = generate_cohort(n, seed=3)
    assert {k: list(v.columns) for k, v in t.items()} == CONTRACT_COLUMNS
    assert len(t["subjects"]) == n and t["subjects"]["USUBJID"].is_unique
    for name, df in t.items():
        assert set(df["USUBJID"]) <= set(t["subjects"]["USUBJID"]), name
    conc = t["pk"]["CONC"]
    assert all(v == "BLQ" or (isinstance(v, int) and v >= 100) for v in conc)


def test_same_seed_same_tables_other_seed_differs(cohort200):
    again = generate_cohort(200, seed=7)
    assert all(cohort200[k].equals(again[k]) for k in CONTRACT_COLUMNS)
    other = generate_cohort(200, seed=8)
    assert not cohort200["subjects"].equals(other["subjects"])


def test_chunked_generation_is_deterministic_and_ids_are_unique(monkeypatch):
    monkeypatch.setattr(gen, "CHUNK", 40)       # 3 chunks for 100 patients
    a, b = generate_cohort(100, seed=2), generate_cohort(100, seed=2)
    assert a["subjects"]["USUBJID"].tolist() == [f"SYN-{i:03d}" for i in range(1, 101)]
    assert all(a[k].equals(b[k]) for k in CONTRACT_COLUMNS)


def test_written_cohort_loads_with_the_contract_loader(cohort200, tmp_path):
    write_cohort(cohort200, tmp_path / "c")
    c = load_cohort(tmp_path / "c")
    assert len(c.subjects) == 200
    assert set(c.events.EVENT) <= {"RELAPSE", "DEATH", "HSCT"}
    assert set(c.labs.TEST) == {"BCELL_PCT_WBC", "BCELL_PCT_LYM", "IL6", "ANC"}
    assert c.pk.BLQ_TEXT.any() and (c.pk.CONC.dropna() >= 100).all()
    # every patient had a pre-infusion sample and one on or after day 28 (the response visit)
    assert (c.pk.groupby("USUBJID").DAY.min() <= 0).all()


def test_write_refuses_a_non_empty_folder_and_uses_plain_newlines(tmp_path):
    t = generate_cohort(5, seed=1)
    write_cohort(t, tmp_path)
    with pytest.raises(FileExistsError):
        write_cohort(t, tmp_path)
    raw = (tmp_path / "subjects.csv").read_bytes()
    assert b"\r" not in raw and raw.startswith(b"USUBJID,AGE,SEX,")


@pytest.mark.calibration
def test_regenerating_the_default_gives_the_committed_files_under_any_blas_kernel(calibration_runs):
    """``python -m calibration`` (``make calibrate``), run in two subprocesses under two OpenBLAS
    kernels and thread counts (tests/conftest.py), writes the committed bytes both times."""
    runs, _ = calibration_runs
    assert len(runs) == 2
    for kernel, threads, out in runs:
        assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.csv" for name in CONTRACT_COLUMNS)
        for name in CONTRACT_COLUMNS:
            assert (out / f"{name}.csv").read_bytes() == (DEFAULT_COHORT_DIR / f"{name}.csv").read_bytes(), \
                f"{name}.csv differs from the committed file (OPENBLAS_CORETYPE={kernel}, {threads} threads)"


def test_the_runtime_package_does_not_import_the_calibration():
    code = "import sys, cartlib, cartlib.synth, cartlib.cli; print(sorted(m for m in sys.modules if m.startswith('calibration')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- relationships in expectation (large N) -------------------------------------------------

@pytest.fixture(scope="module")
def large():
    t = generate_cohort(3000, seed=11)
    s = t["subjects"].set_index("USUBJID")
    ae = t["adverse_events"]
    crs = ae[ae.TERM == "CRS"].groupby("USUBJID").GRADE.max().reindex(s.index, fill_value=0)
    pk = t["pk"][t["pk"].DAY > 0]
    num = pd.to_numeric(pk.CONC, errors="coerce")
    q = pk[num >= 100].assign(CONC=num[num >= 100])
    from cartlib.derive import derive_bca

    bca = derive_bca(t["labs"], s.index)
    rel = t["events"][t["events"].EVENT == "RELAPSE"].set_index("USUBJID").DAY.reindex(s.index)
    return pd.DataFrame({
        "severe_crs": crs >= 3, "mrd_high": s.MRD_PRELD >= 1e-3, "female": s.SEX == "F",
        "mrd_cr": (s.D28_MRD_NEG == "Y") & s.D28_RESPONSE.isin(["CR", "CRI"]),
        "cmax": q.groupby("USUBJID").CONC.max().reindex(s.index),
        "tlast": q.groupby("USUBJID").DAY.max().reindex(s.index),
        "bca_days": bca["bca_duration_days"], "relapse": rel.notna()})


def test_severe_crs_is_more_frequent_with_mrd_at_least_1e_3(large):
    rates = large.groupby("mrd_high").severe_crs.mean()
    assert rates[True] > rates[False] + 0.05


def test_bca_duration_tracks_car_t_persistence(large):
    ok = large[["bca_days", "tlast"]].dropna()
    assert stats.spearmanr(ok.bca_days, ok.tlast)[0] > 0.3


def test_mrd_negative_cr_goes_with_higher_cmax(large):
    med = large.groupby("mrd_cr").cmax.median()
    assert med[True] > 2 * med[False]


def test_longer_bca_and_female_sex_protect_against_relapse(large):
    by_sex = large.groupby("female").relapse.mean()
    assert by_sex[True] < by_sex[False]
    long_bca = large.bca_days > large.bca_days.median()
    assert large[long_bca].relapse.mean() < large[~long_bca].relapse.mean()


# --- mechanisms added after the calibration (switched off for the bundled cohort) -----------

def _nrm_and_il6(params):
    t = generate_cohort(2000, seed=5, params=params)
    ev = t["events"]
    hsct = set(ev[ev.EVENT == "HSCT"].USUBJID)
    relapsed = set(ev[ev.EVENT == "RELAPSE"].USUBJID)
    nrm = set(ev[(ev.EVENT == "DEATH") & (ev.DETAIL == "NRM")].USUBJID)
    free = [u for u in t["subjects"].USUBJID if u not in relapsed]
    share = {arm: np.mean([u in nrm for u in free if (u in hsct) == arm]) for arm in (True, False)}
    il6 = t["labs"][t["labs"].TEST == "IL6"]
    peak = il6.loc[il6.groupby("USUBJID").VALUE.idxmax()]
    peak_day = peak.loc[peak.VALUE > 7, "DAY"]          # patients with elevated IL-6
    return share, peak_day


def test_transplant_related_mortality_and_il6_timing_are_on_by_default_and_off_when_calibrated():
    from calibration.pipeline import calibrated_parameters
    from cartlib.synth.model import load_parameters

    on, day_on = _nrm_and_il6(load_parameters())
    off, day_off = _nrm_and_il6(calibrated_parameters())
    # relapse-free transplanted patients die of the transplant at about the paper's 15 %
    assert 0.10 < on[True] < 0.22 and on[False] < 0.02
    assert off[True] < 0.08
    # the IL-6 peak day spreads towards the expansion peak (days 1-22 in the paper)
    assert day_on.std() > day_off.std() + 0.5
    assert day_on.min() == 1 and day_on.max() >= 18


# --- latent-variable building blocks (hand-computed cases) ---------------------------------

def test_decide_with_quota_takes_the_k_largest_eligible():
    lat = np.array([0.3, 2.0, -1.0, 1.5, 0.9])
    assert decide(lat, 2).tolist() == [False, True, False, True, False]
    assert decide(lat, 2, eligible=[True, False, True, True, True]).tolist() == [False, False, False, True, True]


def test_ordinal_quotas_fix_the_counts_and_keep_the_order():
    lat = np.linspace(-2, 3, 11)
    g = ordinal(lat, [0.0, 1.0, 2.0, 2.5], {1: 7, 3: 2})
    assert (g >= 1).sum() == 7 and (g >= 3).sum() == 2
    assert (np.diff(g) >= 0).all()


def test_categorical_quotas_are_exact():
    rng = np.random.default_rng(0)
    out = categorical(rng.normal(size=(50, 3)), [41, 2, 7])
    assert np.bincount(out).tolist() == [41, 2, 7]


def test_pins_hit_order_statistics_and_counts():
    x = np.array([5.0, 1.0, 3.0, 2.0, 4.0])
    y = pin_ranks(x, {1: 0.05, 3: 3.68, 5: 6.33})
    assert sorted(y.tolist())[0] == 0.05 and np.median(y) == pytest.approx(3.68)
    assert max(y) == pytest.approx(6.33) and np.argsort(y).tolist() == np.argsort(x).tolist()
    z = pin_counts(x, {2.5: 1, 4.5: 4})
    assert (z < 2.5).sum() == 1 and (z < 4.5).sum() == 4
