"""Derivations on the hand-made cohort of tests/cohorts/base.py; every expected value is
worked out by hand from that file (reasoning in the comments)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartlib import derive as d
from cartlib.io import load_cohort
from cohorts.base import tables, write_csv

IDS = ["P01", "P02", "P03", "P04", "P05"]
NAN = np.nan


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return load_cohort(write_csv(tmp_path_factory.mktemp("derive") / "c", tables()))


def _check(frame, expected: dict):
    assert list(frame.index) == IDS and frame.index.name == "USUBJID"
    for name, values in expected.items():
        got = frame[name] if isinstance(frame, pd.DataFrame) else frame
        np.testing.assert_array_equal(got.to_numpy(dtype=object if values and isinstance(
            next((v for v in values if v is not None and v == v), 0), str) else float), values, err_msg=name)


def test_constants():
    assert d.DAYS_PER_MONTH == 30.4375 and d.DAYS_PER_YEAR == 365.25
    assert d.DAYS_PER_MONTH * 12 == d.DAYS_PER_YEAR


def test_os(cohort):
    # P01 alive 1000; P02 dies 200; P03 dies 300; P04 dies 90 (NRM); P05 alive at 500.
    _check(d.derive_os(cohort), {"os_days": [1000, 200, 300, 90, 500], "os_event": [0, 1, 1, 1, 0]})


def test_lfs(cohort):
    # first of relapse/death: P02 relapse 150 < death 200; P03 both 300; P05 relapse on the
    # last contact day 500 is an event.
    _check(d.derive_lfs(cohort), {"lfs_days": [1000, 150, 300, 90, 500], "lfs_event": [0, 1, 1, 1, 1]})


def test_competing_relapse(cohort):
    # P03 relapse and death the same day -> relapse (1); P04 death without relapse -> 2;
    # P05 relapse after HSCT at day 100 still counts (no censoring at HSCT).
    _check(d.derive_competing_relapse(cohort),
           {"crr_days": [1000, 150, 300, 90, 500], "crr_status": [0, 1, 1, 2, 1]})


def test_relapse_death_hsct(cohort):
    _check(d.derive_relapse(cohort), {"relapse_day": [NAN, 150, 300, NAN, 500],
                                      "relapse_cd19": [None, "CD19NEG", "CD19POS", None, "CD19POS"]})
    _check(d.derive_death(cohort), {"death_day": [NAN, 200, 300, 90, NAN],
                                    "death_cause": [None, "RELAPSE", "RELAPSE", "NRM", None]})
    _check(d.derive_hsct(cohort), {"hsct_day": [NAN, NAN, NAN, 60, 100]})


def test_response(cohort):
    # P02 CRi but MRD-positive; P03 NR with D28_MRD_NEG=Y is not an MRD-negative CR.
    _check(d.derive_response(cohort), {"cr": [1, 1, 0, 1, 1], "d28_mrd_neg": [1, 0, 0, 1, 1]})


def test_max_grade(cohort):
    ae, ids = cohort.adverse_events, cohort.subjects.USUBJID
    assert d.derive_max_grade(ae, "CRS", ids=ids).tolist() == [3, 0, 0, 2, 0]   # P01 grades 1 and 3
    assert d.derive_max_grade(ae, "neutropenia", ids=ids).tolist() == [0, 4, 3, 0, 0]
    assert d.derive_max_grade(ae, "ICANS", ids=ids).name == "icans_grade"
    # default ids: the patients with any adverse-event row (P05 has none)
    assert d.derive_max_grade(ae, "CRS").to_dict() == {"P01": 3, "P02": 0, "P03": 0, "P04": 2}
    with pytest.raises(ValueError):
        d.derive_max_grade(ae, "FEVER")


def test_medication_use(cohort):
    meds, ids = cohort.medications, cohort.subjects.USUBJID
    assert d.derive_medication_use(meds, "tocilizumab", ids=ids).tolist() == [1, 0, 0, 0, 0]
    # P04's DEXAMETHASONE is other text, not the contract code CORTICOSTEROID
    assert d.derive_medication_use(meds, "CORTICOSTEROID", ids=ids).tolist() == [1, 0, 0, 0, 0]


def test_bca(cohort):
    # P01: day 0 aplastic but onset needs DAY > 0 -> onset 7 (WBC 0.2 <= 1 although LYM 20);
    #      14 (LYM 1) and 30 (WBC 3 but LYM 2 <= 3) aplastic; 60 neither -> lost: 60 - 7 = 53.
    # P02: 10, 40, 90 all aplastic (WBC 1 <= 1 at the boundary) -> never lost: 90 - 10 = 80, ongoing.
    # P03: never aplastic; P04: no B-cell assessment -> bca 0, duration 0, onset NaN.
    # P05: 20 aplastic, 40 not (4 > 1), 60 aplastic again -> first episode only: 40 - 20 = 20.
    out = d.derive_bca(cohort.labs, ids=cohort.subjects.USUBJID)
    _check(out, {"bca": [1, 1, 0, 0, 1], "bca_onset_day": [7, 10, NAN, NAN, 20],
                 "bca_duration_days": [53, 80, 0, 0, 20], "bca_ongoing": [0, 1, 0, 0, 0]})


def test_bca_single_assessment_is_ongoing_with_zero_duration():
    labs = pd.DataFrame({"USUBJID": ["A", "B", "B"], "DAY": [5.0, 3.0, 3.0],
                         "TEST": ["BCELL_PCT_LYM", "BCELL_PCT_WBC", "BCELL_PCT_LYM"],
                         "VALUE": [3.0, 1.5, 3.5]})
    out = d.derive_bca(labs)
    # A: LYM 3 <= 3 at day 5, nothing later. B: neither 1.5 <= 1 nor 3.5 <= 3 -> no BCA.
    assert out.loc["A"].tolist() == [1, 5, 0, 1] and out.loc["B", "bca"] == 0


def test_il6_peak(cohort):
    # P01: day -1 (900) and day 29 (1000) are outside [0, 28]; 500 on days 3 and 5 -> first, 3.
    # P02: both window ends included: 50 on day 0, 60 on day 28.
    _check(d.derive_il6_peak(cohort.labs, ids=cohort.subjects.USUBJID),
           {"il6_peak": [500, 60, NAN, 10, NAN], "il6_peak_day": [3, 28, NAN, 2, NAN]})


def test_covariates(cohort):
    # DOSE 1, 2, 3, 4, 2.5: median 2.5, so P05 (2.5) is not below it.
    # AGE 8, 12, 10, 15, 10.5: > 10 strictly. MRD_PRELD 0.002, 0.001, 0.0009, 0, 0.5: >= 1e-3.
    # MRD_POSTLD 0.0005, 0.001, 0, 0.0001, 0.2: < 1e-3.
    cov = d.derive_covariates(cohort)
    assert list(cov.columns) == list(d.COVARIATES)
    assert all(cov[c].dtype == np.int64 for c in cov)
    _check(cov, {
        "female": [1, 0, 1, 0, 1], "age_gt_10": [0, 1, 0, 1, 1], "genrisk_high": [1, 0, 1, 0, 0],
        "prior_hsct": [0, 0, 0, 1, 0], "no_prior_hsct": [1, 1, 1, 0, 1],
        "prior_cart": [0, 0, 0, 1, 0], "no_prior_cart": [1, 1, 1, 0, 1],
        "preld_mrd_ge_1e-3": [1, 1, 0, 0, 1], "preld_mrd_lt_1e-3": [0, 0, 1, 1, 0],
        "postld_mrd_lt_1e-3": [1, 0, 1, 1, 0], "crs_ge_3": [1, 0, 0, 0, 0], "icans": [0, 1, 0, 0, 0],
        "neutropenia_g4": [0, 1, 0, 0, 0], "hsct_after": [0, 0, 0, 1, 1], "dose_lt_median": [1, 1, 0, 0, 0],
    })


DERIVED = ["os_days", "os_event", "lfs_days", "lfs_event", "crr_days", "crr_status", "relapse_day",
           "relapse_cd19", "death_day", "death_cause", "hsct_day", "cr", "d28_mrd_neg", "crs_grade",
           "icans_grade", "neutropenia_grade", "infection_grade", "hlh_grade", "gvhd_grade", "tocilizumab",
           "corticosteroid", "bca", "bca_onset_day", "bca_duration_days", "bca_ongoing", "il6_peak",
           "il6_peak_day", *d.COVARIATES]


def test_analysis_table_columns_and_values(cohort):
    t = d.derive_analysis_table(cohort)
    assert list(t.columns) == tables()["subjects"][0][1:] + DERIVED     # ARCHITECTURE.md order
    assert list(t.index) == IDS and t.index.name == "USUBJID"
    assert t["infection_grade"].tolist() == [0, 0, 0, 2, 0] and t["hlh_grade"].sum() == 0
    assert t.loc["P03", ["SEX", "crr_status", "lfs_days"]].tolist() == ["F", 1, 300]
    for c in ("os_event", "cr", "bca", "tocilizumab", *d.COVARIATES):
        assert t[c].dtype == np.int64, c


def test_cohort_without_any_event_or_measurement(tmp_path):
    tabs = tables()
    for name in ("events", "adverse_events", "medications", "pk", "labs"):
        del tabs[name][1:]
    t = d.derive_analysis_table(load_cohort(write_csv(tmp_path / "c", tabs)))
    assert t["os_days"].tolist() == [1000, 200, 300, 90, 500] and t["os_event"].sum() == 0
    assert t["crr_status"].sum() == 0 and t["lfs_event"].sum() == 0
    assert t["bca"].sum() == 0 and t["bca_duration_days"].sum() == 0 and t["bca_onset_day"].isna().all()
    assert t["il6_peak"].isna().all() and t["crs_grade"].sum() == 0 and t["hsct_after"].sum() == 0
    assert t["relapse_cd19"].isna().all() and t["death_cause"].isna().all()


def _cohort_from_events(patients):
    """A typed Cohort built in memory: patients = [(last_contact, relapse_day | None, died)]."""
    from cartlib.io import Cohort
    from cohorts.base import SUBJ_HEADER

    ids = [f"S{i}" for i in range(len(patients))]
    subj = pd.DataFrame([tables()["subjects"][1]] * len(patients), columns=SUBJ_HEADER)
    subj = subj.assign(USUBJID=ids, LAST_CONTACT_DAY=[p[0] for p in patients])
    rows = [(u, "RELAPSE", r, "CD19POS") for u, (_, r, _) in zip(ids, patients) if r is not None]
    rows += [(u, "DEATH", lcd, "NRM") for u, (lcd, _, died) in zip(ids, patients) if died]
    events = pd.DataFrame(rows, columns=["USUBJID", "EVENT", "DAY", "DETAIL"]).astype({"DAY": np.int64})
    empty = pd.DataFrame(columns=["USUBJID"])
    return Cohort(subjects=subj, events=events, adverse_events=empty, medications=empty, pk=empty, labs=empty)


@st.composite
def _patients(draw):
    out = []
    for _ in range(draw(st.integers(1, 8))):
        lcd = draw(st.integers(0, 3000))
        relapse = draw(st.one_of(st.none(), st.integers(0, lcd)))
        out.append((lcd, relapse, draw(st.booleans())))
    return out


@settings(max_examples=30, deadline=None, derandomize=True)
@given(_patients())
def test_endpoint_definitions_agree(patients):
    # Consequences of the contract's definitions, checked on any event pattern:
    # LFS ends at the first of relapse/death, so never after OS; the competing-risks time is
    # the LFS time, status 1 exactly for relapses and 2 for death without relapse.
    c = _cohort_from_events(patients)
    os_, lfs, crr = d.derive_os(c), d.derive_lfs(c), d.derive_competing_relapse(c)
    relapsed = np.array([r is not None for _, r, _ in patients])
    died = np.array([x for _, _, x in patients])
    assert (lfs.lfs_days <= os_.os_days).all()
    assert (crr.crr_days == lfs.lfs_days).all()
    assert ((crr.crr_status == 1) == relapsed).all()
    assert ((crr.crr_status == 2) == (died & ~relapsed)).all()
    assert ((crr.crr_status > 0) == lfs.lfs_event.astype(bool)).all()
    assert (os_.os_event.to_numpy() == died).all()


def _episode_by_loop(days, aplastic):
    """The B-cell aplasia rule for one patient, written the plain way (the oracle)."""
    onset = [k for k in range(len(days)) if days[k] > 0 and aplastic[k]]
    if not onset:
        return 0, float("nan"), 0.0, 0
    i = onset[0]
    for k in range(i + 1, len(days)):
        if not aplastic[k]:
            return 1, days[i], days[k] - days[i], 0
    return 1, days[i], days[-1] - days[i], 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bca_episodes_of_all_patients_at_once_equal_the_per_patient_rule(seed):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(40):
        days = np.unique(rng.integers(-10, 400, rng.integers(0, 9)))
        rows += [(f"P{p:02d}", float(d), bool(a)) for d, a in zip(days, rng.random(days.size) < 0.6)]
    labs = pd.DataFrame([(u, d, "BCELL_PCT_WBC", 0.5 if a else 5.0) for u, d, a in rows],
                        columns=["USUBJID", "DAY", "TEST", "VALUE"])
    ids = pd.Series([f"P{p:02d}" for p in range(42)])              # two patients without labs
    got = d.derive_bca(labs, ids=ids)
    for uid in ids:
        mine = [(d, a) for u, d, a in rows if u == uid]
        want = _episode_by_loop([d for d, _ in mine], [a for _, a in mine])
        row = got.loc[uid]
        assert (row["bca"], row["bca_duration_days"], row["bca_ongoing"]) == (want[0], want[2], want[3])
        assert (np.isnan(row["bca_onset_day"]) and np.isnan(want[1])) or row["bca_onset_day"] == want[1]
