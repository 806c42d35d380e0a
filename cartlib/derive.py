"""Per-patient endpoints derived from a loaded cohort, one small function per endpoint.

Admiral style: each ``derive_*`` takes the :class:`~cartlib.io.Cohort` (or the table it
needs) and returns a Series/DataFrame indexed by ``USUBJID`` (in the order of
``subjects``). Definitions follow docs/COHORT.md, "What the analysis derives".
Days are the unit of storage; months = days / ``DAYS_PER_MONTH``.

The examples use the two-patient cohort of docs/COHORT.md (``cartlib.io.example_cohort()``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

DAYS_PER_MONTH = 30.4375
DAYS_PER_YEAR = 365.25

AE_TERMS = ("CRS", "ICANS", "NEUTROPENIA", "INFECTION", "HLH", "GVHD")
COVARIATES = (
    "female", "age_gt_10", "genrisk_high", "prior_hsct", "no_prior_hsct", "prior_cart",
    "no_prior_cart", "preld_mrd_ge_1e-3", "preld_mrd_lt_1e-3", "postld_mrd_lt_1e-3",
    "crs_ge_3", "icans", "neutropenia_g4", "hsct_after", "dose_lt_median",
)


def _index(subjects: pd.DataFrame) -> pd.Index:
    return pd.Index(subjects["USUBJID"], name="USUBJID")


def _ids(table: pd.DataFrame, ids) -> pd.Index:
    """The patients to report: ``ids`` if given, else those present in the table (first-seen order)."""
    if ids is None:
        ids = pd.unique(table["USUBJID"])
    return pd.Index(list(ids), name="USUBJID")


def _event(cohort, kind: str) -> pd.DataFrame:
    """DAY and DETAIL of the (single, by contract) event of a kind, one row per patient."""
    ev = cohort.events
    ev = ev[ev["EVENT"] == kind].set_index("USUBJID")[["DAY", "DETAIL"]]
    return ev.reindex(_index(cohort.subjects))


def derive_relapse(cohort) -> pd.DataFrame:
    """``relapse_day`` (NaN if none) and ``relapse_cd19`` (``CD19POS``/``CD19NEG``/None).

    >>> from cartlib.io import example_cohort; cohort = example_cohort()
    >>> derive_relapse(cohort)  # doctest: +NORMALIZE_WHITESPACE
             relapse_day relapse_cd19
    USUBJID
    P001             NaN         None
    P002           150.0      CD19NEG
    """
    ev = _event(cohort, "RELAPSE")
    return pd.DataFrame({"relapse_day": ev["DAY"].astype(float),
                         "relapse_cd19": ev["DETAIL"].astype(object).where(ev["DETAIL"].notna(), None)})


def derive_death(cohort) -> pd.DataFrame:
    """``death_day`` (NaN if alive) and ``death_cause`` (``RELAPSE``/``NRM``/None).

    >>> from cartlib.io import example_cohort; cohort = example_cohort()
    >>> derive_death(cohort).loc["P002"].to_dict()
    {'death_day': 200.0, 'death_cause': 'RELAPSE'}
    """
    ev = _event(cohort, "DEATH")
    return pd.DataFrame({"death_day": ev["DAY"].astype(float),
                         "death_cause": ev["DETAIL"].astype(object).where(ev["DETAIL"].notna(), None)})


def derive_hsct(cohort) -> pd.Series:
    """``hsct_day``: day of allo-HSCT after infusion (NaN if none).

    >>> from cartlib.io import example_cohort; cohort = example_cohort()
    >>> derive_hsct(cohort).tolist()
    [75.0, nan]
    """
    return _event(cohort, "HSCT")["DAY"].astype(float).rename("hsct_day")


def _last_contact(cohort) -> pd.Series:
    return cohort.subjects.set_index("USUBJID")["LAST_CONTACT_DAY"].rename_axis("USUBJID")


def _time_to(first_day: pd.Series, last: pd.Series, name: str) -> pd.DataFrame:
    """Time to an event day (event = 1) or censored at last contact (event = 0).
    An event on the last contact day is an event."""
    return pd.DataFrame({f"{name}_days": first_day.fillna(last).astype(np.int64),
                         f"{name}_event": first_day.notna().astype(np.int64)})


def derive_os(cohort) -> pd.DataFrame:
    """Overall survival: ``os_days`` to DEATH (``os_event`` 1) or LAST_CONTACT_DAY (0).

    >>> from cartlib.io import example_cohort; cohort = example_cohort()
    >>> derive_os(cohort)  # doctest: +NORMALIZE_WHITESPACE
             os_days  os_event
    USUBJID
    P001         900         0
    P002         200         1
    """
    return _time_to(derive_death(cohort)["death_day"], _last_contact(cohort), "os")


def derive_lfs(cohort) -> pd.DataFrame:
    """Leukemia-free survival: first of RELAPSE or DEATH (``lfs_event`` 1), else censored.

    >>> from cartlib.io import example_cohort; cohort = example_cohort()
    >>> derive_lfs(cohort).loc["P002"].tolist()
    [150, 1]
    """
    return _lfs(derive_relapse(cohort)["relapse_day"], derive_death(cohort)["death_day"], _last_contact(cohort))


def _lfs(relapse_day: pd.Series, death_day: pd.Series, last: pd.Series) -> pd.DataFrame:
    first = pd.concat([relapse_day, death_day], axis=1).min(axis=1, skipna=True)
    return _time_to(first, last, "lfs")


def derive_competing_relapse(cohort) -> pd.DataFrame:
    """Competing risks of relapse: ``crr_status`` 1 relapse, 2 death without prior relapse
    (NRM), 0 censored at LAST_CONTACT_DAY; ``crr_days`` the matching time. Not censored at
    HSCT. A relapse and a death on the same day count as relapse (relapse precedes death).

    >>> from cartlib.io import example_cohort; cohort = example_cohort()
    >>> derive_competing_relapse(cohort)  # doctest: +NORMALIZE_WHITESPACE
             crr_days  crr_status
    USUBJID
    P001          900           0
    P002          150           1
    """
    return _competing(derive_relapse(cohort)["relapse_day"], derive_death(cohort)["death_day"],
                      _last_contact(cohort))


def _competing(relapse: pd.Series, death: pd.Series, last: pd.Series) -> pd.DataFrame:
    status = np.select([relapse.notna(), death.notna()], [1, 2], 0)
    days = relapse.fillna(death).fillna(last)
    return pd.DataFrame({"crr_days": days.astype(np.int64), "crr_status": status.astype(np.int64)},
                        index=relapse.index)


def derive_response(cohort) -> pd.DataFrame:
    """Day-28 response: ``cr`` (CR or CRi) and ``d28_mrd_neg`` (CR and D28_MRD_NEG = Y).

    >>> from cartlib.io import example_cohort; cohort = example_cohort()
    >>> derive_response(cohort)  # doctest: +NORMALIZE_WHITESPACE
             cr  d28_mrd_neg
    USUBJID
    P001      1            1
    P002      1            0
    """
    s = cohort.subjects.set_index("USUBJID").rename_axis("USUBJID")
    cr = s["D28_RESPONSE"].isin(["CR", "CRI"])
    return pd.DataFrame({"cr": cr.astype(np.int64),
                         "d28_mrd_neg": (cr & s["D28_MRD_NEG"].eq("Y")).astype(np.int64)})


def derive_max_grade(adverse_events: pd.DataFrame, term: str, ids=None) -> pd.Series:
    """Maximum GRADE of an adverse-event TERM per patient, 0 for a patient without a row.

    ``ids``: the patients to report (e.g. ``cohort.subjects.USUBJID``); default those in
    the table. The Series is named ``<term>_grade``.

    >>> from cartlib.io import example_cohort; cohort = example_cohort()
    >>> derive_max_grade(cohort.adverse_events, "crs", ids=cohort.subjects.USUBJID).tolist()
    [3, 0]
    """
    term = term.upper()
    if term not in AE_TERMS:
        raise ValueError(f"term must be one of {', '.join(AE_TERMS)}, got {term!r}")
    ae = adverse_events[adverse_events["TERM"] == term]
    grade = ae.groupby("USUBJID")["GRADE"].max()
    return grade.reindex(_ids(adverse_events, ids), fill_value=0).astype(np.int64).rename(f"{term.lower()}_grade")


def derive_medication_use(medications: pd.DataFrame, drug: str, ids=None) -> pd.Series:
    """1 if the patient received DRUG at least once, else 0; Series named ``drug.lower()``.

    >>> from cartlib.io import example_cohort; cohort = example_cohort()
    >>> derive_medication_use(cohort.medications, "TOCILIZUMAB", ids=cohort.subjects.USUBJID).tolist()
    [1, 0]
    """
    drug = drug.upper()
    users = set(medications.loc[medications["DRUG"] == drug, "USUBJID"])
    idx = _ids(medications, ids)
    return pd.Series([int(u in users) for u in idx], index=idx, dtype=np.int64, name=drug.lower())


def derive_bca(labs: pd.DataFrame, ids=None) -> pd.DataFrame:
    """B-cell aplasia per the contract: ``bca``, ``bca_onset_day``, ``bca_duration_days``,
    ``bca_ongoing``.

    An assessment is one (USUBJID, DAY) with a BCELL_PCT_WBC or BCELL_PCT_LYM value; it
    is in aplasia if either test says so (WBC ≤ 1 % or LYM ≤ 3 %). Onset: the first
    assessment with DAY > 0 in aplasia. Duration: to the first later assessment not in
    aplasia, else to the last assessment (``bca_ongoing`` = 1). No onset (also: no
    B-cell assessment at all): ``bca`` 0, duration 0, onset NaN, ongoing 0.

    >>> from cartlib.io import example_cohort; cohort = example_cohort()
    >>> derive_bca(cohort.labs, ids=cohort.subjects.USUBJID)  # doctest: +NORMALIZE_WHITESPACE
             bca  bca_onset_day  bca_duration_days  bca_ongoing
    USUBJID
    P001       1           14.0               46.0            0
    P002       0            NaN                0.0            0
    """
    b = labs[labs["TEST"].isin(["BCELL_PCT_WBC", "BCELL_PCT_LYM"])]
    aplastic = ((b["TEST"] == "BCELL_PCT_WBC") & (b["VALUE"] <= 1)) | (
        (b["TEST"] == "BCELL_PCT_LYM") & (b["VALUE"] <= 3))
    assess = aplastic.groupby([b["USUBJID"], b["DAY"]]).any().sort_index()
    idx = _ids(labs, ids)
    episodes = _bca_episodes(assess.index.get_level_values("USUBJID"),
                             assess.index.get_level_values("DAY").to_numpy(float), assess.to_numpy(bool))
    out = episodes.reindex(idx)
    return out.fillna({"bca": 0, "bca_duration_days": 0.0, "bca_ongoing": 0}).astype(
        {"bca": np.int64, "bca_onset_day": float, "bca_duration_days": float, "bca_ongoing": np.int64})


def _bca_episodes(uids, days: np.ndarray, aplastic: np.ndarray) -> pd.DataFrame:
    """(bca, onset_day, duration_days, ongoing) of every patient with an assessment (indexed by
    USUBJID), from assessments sorted by (patient, day): onset at the first assessment with
    DAY > 0 in aplasia, to the first later one not in aplasia (else the last: ongoing).

    Hand-written, with array operations over all patients at once: it is the contract's own
    rule (docs/COHORT.md, B-cell aplasia; first episode only), which no library derives."""
    codes, names = pd.factorize(np.asarray(uids, dtype=object))
    n_rows, n_patients = codes.size, names.size
    pos = np.arange(n_rows)
    last = np.full(n_patients, -1)
    np.maximum.at(last, codes, pos)
    onset = np.full(n_patients, n_rows)
    candidate = (days > 0) & aplastic
    np.minimum.at(onset, codes[candidate], pos[candidate])
    # the first assessment not in aplasia at or after each row (n_rows when none)
    next_lost = np.minimum.accumulate(np.where(aplastic, n_rows, pos)[::-1])[::-1]
    has = onset < n_rows
    i = onset[has]
    j = np.append(next_lost, n_rows)[i + 1]
    lost = j <= last[has]
    bca = has.astype(np.int64)
    onset_day = np.full(n_patients, np.nan)
    onset_day[has] = days[i]
    duration = np.zeros(n_patients)
    duration[has] = np.where(lost, days[np.minimum(j, n_rows - 1)], days[last[has]]) - days[i]
    ongoing = np.zeros(n_patients, dtype=np.int64)
    ongoing[has] = (~lost).astype(np.int64)
    return pd.DataFrame({"bca": bca, "bca_onset_day": onset_day, "bca_duration_days": duration,
                         "bca_ongoing": ongoing}, index=pd.Index(names, name="USUBJID"))


def derive_il6_peak(labs: pd.DataFrame, ids=None) -> pd.DataFrame:
    """``il6_peak``: the largest IL6 VALUE with DAY in [0, 28]; ``il6_peak_day``: the first
    DAY it occurs. NaN for both when the patient has no IL6 value in that window.

    >>> from cartlib.io import example_cohort; cohort = example_cohort()
    >>> derive_il6_peak(cohort.labs, ids=cohort.subjects.USUBJID)  # doctest: +NORMALIZE_WHITESPACE
             il6_peak  il6_peak_day
    USUBJID
    P001          NaN           NaN
    P002        250.0           3.0
    """
    il6 = labs[(labs["TEST"] == "IL6") & labs["DAY"].between(0, 28)]
    il6 = il6.sort_values(["USUBJID", "VALUE", "DAY"], ascending=[True, False, True])
    first = il6.drop_duplicates("USUBJID").set_index("USUBJID")
    out = pd.DataFrame({"il6_peak": first["VALUE"], "il6_peak_day": first["DAY"]})
    return out.reindex(_ids(labs, ids)).astype(float)


def derive_covariates(cohort) -> pd.DataFrame:
    """The 0/1 model covariates of ARCHITECTURE.md / RESULTS.md (``COVARIATES`` order).

    ``female`` SEX = F; ``age_gt_10`` AGE > 10; ``genrisk_high``; ``prior_hsct`` /
    ``no_prior_hsct``; ``prior_cart`` / ``no_prior_cart``; ``preld_mrd_ge_1e-3`` MRD_PRELD
    ≥ 1e-3 and its complement ``preld_mrd_lt_1e-3``; ``postld_mrd_lt_1e-3`` MRD_POSTLD <
    1e-3; ``crs_ge_3`` max CRS grade ≥ 3; ``icans`` max ICANS grade ≥ 1;
    ``neutropenia_g4`` max NEUTROPENIA grade ≥ 4; ``hsct_after`` any HSCT event (time-fixed);
    ``dose_lt_median`` DOSE < the cohort median DOSE. (``bca_duration_days``, the one
    continuous covariate, comes from :func:`derive_bca`.)

    >>> from cartlib.io import example_cohort; cohort = example_cohort()
    >>> derive_covariates(cohort)[["female", "crs_ge_3", "hsct_after", "dose_lt_median"]]  # doctest: +NORMALIZE_WHITESPACE
             female  crs_ge_3  hsct_after  dose_lt_median
    USUBJID
    P001          1         1           1               1
    P002          0         0           0               0
    """
    s = cohort.subjects.set_index("USUBJID").rename_axis("USUBJID")
    grades = {t: derive_max_grade(cohort.adverse_events, t, ids=s.index) for t in ("CRS", "ICANS", "NEUTROPENIA")}
    return _covariates(s, grades, derive_hsct(cohort))


def _covariates(s: pd.DataFrame, grades: dict[str, pd.Series], hsct_day: pd.Series) -> pd.DataFrame:
    """:func:`derive_covariates` from the subjects (indexed by USUBJID), the max grades by term
    and the HSCT day, for a caller that has derived those already."""
    preld_hi = s["MRD_PRELD"] >= 1e-3
    flags = {
        "female": s["SEX"] == "F",
        "age_gt_10": s["AGE"] > 10,
        "genrisk_high": s["GENRISK"] == "HIGH",
        "prior_hsct": s["PRIOR_HSCT"] == "Y",
        "no_prior_hsct": s["PRIOR_HSCT"] == "N",
        "prior_cart": s["PRIOR_CART"] == "Y",
        "no_prior_cart": s["PRIOR_CART"] == "N",
        "preld_mrd_ge_1e-3": preld_hi,
        "preld_mrd_lt_1e-3": ~preld_hi,
        "postld_mrd_lt_1e-3": s["MRD_POSTLD"] < 1e-3,
        "crs_ge_3": grades["CRS"] >= 3,
        "icans": grades["ICANS"] >= 1,
        "neutropenia_g4": grades["NEUTROPENIA"] >= 4,
        "hsct_after": hsct_day.notna(),
        "dose_lt_median": s["DOSE"] < s["DOSE"].median(),
    }
    return pd.DataFrame({k: v.astype(np.int64) for k, v in flags.items()}, index=s.index)


def derive_analysis_table(cohort) -> pd.DataFrame:
    """One row per patient (index ``USUBJID``, order of ``subjects``): every subject column
    as loaded (upper case) followed by the derived columns of ARCHITECTURE.md:

    - ``os_days``, ``os_event``: :func:`derive_os`; ``lfs_days``, ``lfs_event``: :func:`derive_lfs`
    - ``crr_days``, ``crr_status`` (0 censored, 1 relapse, 2 NRM): :func:`derive_competing_relapse`
    - ``relapse_day``, ``relapse_cd19``; ``death_day``, ``death_cause``; ``hsct_day``
    - ``cr``, ``d28_mrd_neg``: :func:`derive_response`
    - ``crs_grade``, ``icans_grade``, ``neutropenia_grade``, ``infection_grade``,
      ``hlh_grade``, ``gvhd_grade``: max grade, 0 without a row
    - ``tocilizumab``, ``corticosteroid``: 0/1 any administration
    - ``bca``, ``bca_onset_day``, ``bca_duration_days``, ``bca_ongoing``: :func:`derive_bca`
    - ``il6_peak``, ``il6_peak_day``: :func:`derive_il6_peak`
    - the 0/1 covariates ``COVARIATES``: :func:`derive_covariates`

    >>> from cartlib.io import example_cohort; cohort = example_cohort()
    >>> t = derive_analysis_table(cohort)
    >>> t.loc["P002", ["os_days", "lfs_days", "crr_status", "relapse_cd19", "il6_peak"]].to_dict()
    {'os_days': 200, 'lfs_days': 150, 'crr_status': 1, 'relapse_cd19': 'CD19NEG', 'il6_peak': 250.0}
    """
    s = cohort.subjects.set_index("USUBJID").rename_axis("USUBJID")
    ids = s.index
    # each event table and grade derived once and shared (the public derive_* functions each
    # derive what they need from the cohort again)
    grades = {t: derive_max_grade(cohort.adverse_events, t, ids=ids) for t in AE_TERMS}
    drugs = [derive_medication_use(cohort.medications, d, ids=ids) for d in ("TOCILIZUMAB", "CORTICOSTEROID")]
    relapse, death, hsct = derive_relapse(cohort), derive_death(cohort), derive_hsct(cohort)
    last = _last_contact(cohort)
    parts = [s, _time_to(death["death_day"], last, "os"), _lfs(relapse["relapse_day"], death["death_day"], last),
             _competing(relapse["relapse_day"], death["death_day"], last),
             relapse, death, hsct, derive_response(cohort),
             *grades.values(), *drugs, derive_bca(cohort.labs, ids=ids), derive_il6_peak(cohort.labs, ids=ids),
             _covariates(s, grades, hsct)]
    return pd.concat(parts, axis=1)
