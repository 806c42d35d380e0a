"""Turn the simulated patients into the cohort tables of docs/COHORT.md (long PK / lab / AE / event tables).

Sampling follows the paper's schedules: qPCR before infusion, days ~4, 7, 10-11, 14, 21, 28,
weekly to day 60, weeks 12, 26, 39, 54, 104, then every 6 months until two consecutive
BLQ results; B cells at each visit until loss of aplasia (or transplant); IL-6 days 0-28;
ANC around the lymphodepletion nadir.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .kinetics import cart_curve, schedule, stop_after_two_blq
from .latent import pin_ranks
from .model import INDICATIONS, INFECTIONS


def _long(ids, days, values, mask, **const):
    """Flatten (n, m) matrices to a long frame, keeping cells where ``mask`` is True."""
    rows, cols = np.nonzero(mask)
    frame = {"USUBJID": ids[rows], "DAY": days[rows, cols]}
    frame.update({k: v for k, v in const.items()})
    frame["VALUE" if "TEST" in const else "CONC"] = values[rows, cols]
    return pd.DataFrame(frame)


def pk_table(rng, ids, s, p, cal):
    """qPCR transgene samples (CONC NaN = BLQ); ``cal['cmax_obs']`` pins observed Cmax ranks.

    >>> rng = np.random.default_rng(0)
    >>> from cartlib.synth.generate import simulate_subjects, subject_ids
    >>> from cartlib.synth.model import load_parameters
    >>> p = load_parameters(); s = simulate_subjects(rng, 4, p)
    >>> t = pk_table(rng, subject_ids(4), s, p, {})
    >>> bool((t.groupby("USUBJID").DAY.min() <= 0).all())
    True
    """
    k = p["kinetics"]
    n = len(ids)
    days = schedule(rng, n, k["schedule_days"], k["schedule_jitter"], (k["pre_day_min"], k["pre_day_max"]))
    post = days[:, 1:]
    true = cart_curve(post, s["c0"], s["cmax_true"], s["tmax_true"], s["frac_fast"], s["alpha"], s["beta"])
    after_hsct = np.clip(post - np.nan_to_num(s["hsct_day"], nan=np.inf)[:, None], 0, None)
    true = true * np.exp(-k["post_hsct_elimination_per_day"] * after_hsct)
    obs = true * np.exp(k["qpcr_cv_log"] * rng.standard_normal(post.shape))
    sampled = post <= s["last_contact"][:, None]
    if "cmax_obs" in cal:
        raw = np.log(np.where(sampled, obs, 1e-9).max(axis=1))
        # patients without MRD-negative CR take the lowest ranks (Table 3: median 863, n=2)
        neg = s["mrd_neg"]
        order = raw if neg.all() or not neg.any() else np.where(neg, raw, np.minimum(raw, raw[neg].min() - 0.1))
        pinned = pin_ranks(order, {r: np.log(v) for r, v in cal["cmax_obs"].items()})
        obs = obs * np.exp(pinned - raw)[:, None]
    obs = np.round(obs)
    quant = obs >= k["lloq"]
    # visits up to day 28 are protocol visits (response assessment); later ones stop after 2 BLQ
    protocol = np.asarray(k["schedule_days"]) <= 28
    taken = stop_after_two_blq(quant, sampled) | (sampled & protocol[None, :])
    conc = np.where(quant, obs, np.nan)
    pre = np.zeros((n, 1))
    table = pd.concat([
        _long(ids, days[:, :1], pre, np.ones((n, 1), bool)),
        _long(ids, post, conc, taken),
    ], ignore_index=True)
    table["CONC"] = table["CONC"].where(table["CONC"] >= k["lloq"])
    return table


def bcell_visit_days(rng, n, p):
    """B-cell visit days (n, m): the nominal schedule, +-3 days after day 28.

    >>> d = bcell_visit_days(np.random.default_rng(0), 2, {"bcell": {"schedule_days": [7, 60, 90]}})
    >>> d.shape, bool((d[:, 0] == 7).all())
    ((2, 3), True)
    """
    nominal = np.asarray(p["bcell"]["schedule_days"], float)
    jit = np.where(nominal > 28, np.round(rng.uniform(-3, 3, (n, nominal.size))), 0.0)
    return np.maximum.accumulate(nominal + jit, axis=1)


def bcell_labs(rng, ids, s, p):
    """B cells as % of WBC and of lymphocytes; aplasia from onset until CAR-T activity wanes.

    >>> rng = np.random.default_rng(0)
    >>> from cartlib.synth.generate import simulate_subjects, subject_ids
    >>> from cartlib.synth.model import load_parameters
    >>> p = load_parameters(); s = simulate_subjects(rng, 4, p)
    >>> sorted(bcell_labs(rng, subject_ids(4), s, p).TEST.unique())
    ['BCELL_PCT_LYM', 'BCELL_PCT_WBC']
    """
    b = p["bcell"]
    n = len(ids)
    drawn = bcell_visit_days(rng, n, p)
    # visit days drawn with the latent model (generate_cohort) win, so that calibration stages
    # see the B-cell aplasia durations the tables will give; the draw above keeps the stream
    days = np.asarray(s["bcell_visit_days"], float) if "bcell_visit_days" in s else drawn
    aplastic = s["bca"][:, None] & (days >= s["bca_onset_true"][:, None]) & (days < s["bca_end_true"][:, None])
    stop = np.fmin(s["last_contact"], np.nan_to_num(s["hsct_day"], nan=np.inf) - 1)
    after_loss = np.cumsum((days > 0) & ~aplastic & s["bca"][:, None]
                           & (days >= s["bca_onset_true"][:, None]), axis=1)
    taken = (days <= stop[:, None]) & (after_loss <= 2)
    lym = np.where(aplastic, rng.uniform(0.0, 2.5, days.shape),
                   np.maximum(b["normal_lym_pct_log_median"]
                              * np.exp(b["normal_lym_pct_log_sd"] * rng.standard_normal(days.shape)), 4.0))
    wbc = np.where(aplastic, np.minimum(lym * b["wbc_per_lym"] * rng.uniform(0.6, 1.4, days.shape), 1.0),
                   np.maximum(lym * b["wbc_per_lym"], 1.2))
    return pd.concat([_long(ids, days, np.round(wbc, 2), taken, TEST="BCELL_PCT_WBC"),
                      _long(ids, days, np.round(lym, 2), taken, TEST="BCELL_PCT_LYM")], ignore_index=True)


def il6_labs(rng, ids, s, p):
    """IL-6 days 0-28: a peak around CRS for patients with elevated IL-6, normal values otherwise.

    >>> rng = np.random.default_rng(0)
    >>> from cartlib.synth.generate import simulate_subjects, subject_ids
    >>> from cartlib.synth.model import load_parameters
    >>> p = load_parameters(); s = simulate_subjects(rng, 4, p)
    >>> bool(il6_labs(rng, subject_ids(4), s, p).DAY.between(0, 28).all())
    True
    """
    t = p["toxicity"]
    n = len(ids)
    nominal = np.broadcast_to(np.asarray(t["il6_days"], float), (n, len(t["il6_days"]))).copy()
    nearest = np.argmin(np.abs(nominal - s["il6_peak_day"][:, None]), axis=1)
    nominal[np.arange(n), nearest] = s["il6_peak_day"]
    days = np.sort(nominal, axis=1)
    base = np.minimum(t["il6_baseline_log_median"] * np.exp(t["il6_baseline_log_sd"]
                                                             * rng.standard_normal((n, 1))), 6.0)
    noise = np.exp(0.15 * rng.standard_normal(days.shape))
    noise[days == s["il6_peak_day"][:, None]] = 1.0      # the peak sample is the graded peak
    shape = np.exp(-(((days - s["il6_peak_day"][:, None]) / 2.5) ** 2))
    peak = np.nan_to_num(s["il6_peak"], nan=0.0)[:, None]
    elevated = base + (peak - base) * shape * np.minimum(noise, 1.0)
    normal = np.minimum(base * noise, t["il6_normal_max"])
    value = np.where(s["il6_elevated"][:, None], np.maximum(elevated, np.minimum(base * noise, 6.9)), normal)
    taken = days <= s["last_contact"][:, None]
    return _long(ids, days, np.round(value, 1), taken, TEST="IL6")


def anc_labs(rng, ids, s, p):
    """ANC around the lymphodepletion nadir; the nadir sample equals the graded nadir.

    >>> rng = np.random.default_rng(0)
    >>> from cartlib.synth.generate import simulate_subjects, subject_ids
    >>> from cartlib.synth.model import load_parameters
    >>> p = load_parameters(); s = simulate_subjects(rng, 4, p)
    >>> labs, _ = anc_labs(rng, subject_ids(4), s, p)
    >>> labs.groupby("USUBJID").VALUE.min().tolist() == s["anc_nadir"].tolist()
    True
    """
    t = p["toxicity"]
    n = len(ids)
    nadir_day = rng.integers(6, 13, n).astype(float)
    days = np.sort(np.column_stack([np.broadcast_to([-5.0, 0, 3, 14, 21, 28], (n, 6)), nadir_day]), axis=1)
    base = t["anc_baseline_log_median"] * np.exp(0.35 * rng.standard_normal(n))
    recov = np.maximum(s["anc_nadir"] * 2, 1.5 * np.exp(0.3 * rng.standard_normal(n)))
    lb, ln, lr = (np.log(np.maximum(v, 0.01))[:, None] for v in (base, s["anc_nadir"], recov))
    down = lb + (ln - lb) * np.clip((days + 5) / (nadir_day[:, None] + 5), 0, 1)
    up = ln + (lr - ln) * np.clip((days - nadir_day[:, None]) / (28 - nadir_day[:, None]), 0, 1)
    value = np.exp(np.where(days <= nadir_day[:, None], down, up))
    value = np.maximum(np.round(value, 2), s["anc_nadir"][:, None])
    taken = days <= s["last_contact"][:, None]
    return _long(ids, days, value, taken, TEST="ANC"), nadir_day


def subject_table(rng, ids, s):
    """subjects.csv.

    >>> rng = np.random.default_rng(0)
    >>> from cartlib.synth.generate import simulate_subjects, subject_ids
    >>> from cartlib.synth.model import load_parameters
    >>> p = load_parameters(); s = simulate_subjects(rng, 4, p)
    >>> subject_table(rng, subject_ids(4), s).shape
    (4, 14)
    """
    n = len(ids)
    cri = rng.uniform(size=n) < 0.25
    resp = np.where(s["cr"], np.where(cri, "CRI", "CR"), "NR")
    yn = lambda m: np.where(m, "Y", "N")  # noqa: E731
    return pd.DataFrame({
        "USUBJID": ids, "AGE": s["age"], "SEX": np.where(s["female"], "F", "M"),
        "INDICATION": np.asarray(INDICATIONS)[s["indication"]],
        "GENRISK": np.where(s["genrisk_high"], "HIGH", "STANDARD"),
        "PRIOR_HSCT": yn(s["prior_hsct"]), "PRIOR_CART": yn(s["prior_cart"]),
        "DX_TO_INF_MO": s["dx_to_inf_mo"], "DOSE": s["dose"],
        "MRD_PRELD": s["mrd_preld"], "MRD_POSTLD": s["mrd_postld"],
        "D28_RESPONSE": resp, "D28_MRD_NEG": yn(s["mrd_neg"]),
        "LAST_CONTACT_DAY": s["last_contact"].astype(np.int64)})


def _rows(ids, mask, **cols):
    return pd.DataFrame({"USUBJID": ids[mask], **{k: np.asarray(v)[mask] if np.ndim(v) else v
                                                 for k, v in cols.items()}})


def event_table(ids, s):
    """events.csv: RELAPSE, DEATH, HSCT.

    >>> rng = np.random.default_rng(0)
    >>> from cartlib.synth.generate import simulate_subjects, subject_ids
    >>> from cartlib.synth.model import load_parameters
    >>> p = load_parameters(); s = simulate_subjects(rng, 4, p)
    >>> list(event_table(subject_ids(4), s).columns)
    ['USUBJID', 'EVENT', 'DAY', 'DETAIL']
    """
    dead = ~np.isnan(s["death_day"])
    cause = np.where(s["death_relapse"] & ~np.isnan(s["relapse_day"]), "RELAPSE", "NRM")
    return pd.concat([
        _rows(ids, ~np.isnan(s["relapse_day"]), EVENT="RELAPSE", DAY=s["relapse_day"],
              DETAIL=np.where(s["cd19neg"], "CD19NEG", "CD19POS")),
        _rows(ids, dead, EVENT="DEATH", DAY=s["death_day"], DETAIL=cause),
        _rows(ids, ~np.isnan(s["hsct_day"]), EVENT="HSCT", DAY=s["hsct_day"], DETAIL="ALLO"),
    ], ignore_index=True).astype({"DAY": np.int64})


def adverse_event_table(ids, s, nadir_day):
    """adverse_events.csv (first 28 days); every patient has a NEUTROPENIA row (grade from the nadir).

    >>> rng = np.random.default_rng(0)
    >>> from cartlib.synth.generate import simulate_subjects, subject_ids
    >>> from cartlib.synth.model import load_parameters
    >>> p = load_parameters(); s = simulate_subjects(rng, 4, p)
    >>> int((adverse_event_table(subject_ids(4), s, np.full(4, 9.0)).TERM == "NEUTROPENIA").sum())
    4
    """
    onset = s["crs_onset"]
    return pd.concat([
        _rows(ids, s["crs_grade"] > 0, TERM="CRS", GRADE=s["crs_grade"], ONSET_DAY=onset, DETAIL=""),
        _rows(ids, s["icans"], TERM="ICANS", GRADE=s["icans_grade"], ONSET_DAY=onset + 2, DETAIL=""),
        _rows(ids, np.ones(len(ids), bool), TERM="NEUTROPENIA", GRADE=s["neutropenia_grade"],
              ONSET_DAY=nadir_day - 3, DETAIL=""),
        _rows(ids, s["infection"], TERM="INFECTION", GRADE=s["infection_grade"],
              ONSET_DAY=s["infection_onset"], DETAIL=np.asarray(INFECTIONS)[np.maximum(s["infection_detail"], 0)]),
        _rows(ids, s["hlh"], TERM="HLH", GRADE=4, ONSET_DAY=onset + 1, DETAIL=""),
        _rows(ids, s["gvhd"], TERM="GVHD", GRADE=2, ONSET_DAY=14, DETAIL=""),
    ], ignore_index=True).astype({"GRADE": np.int64, "ONSET_DAY": np.int64})


def medication_table(ids, s):
    """medications.csv: tocilizumab the day after CRS onset, corticosteroids a day later.

    >>> rng = np.random.default_rng(0)
    >>> from cartlib.synth.generate import simulate_subjects, subject_ids
    >>> from cartlib.synth.model import load_parameters
    >>> p = load_parameters(); s = simulate_subjects(rng, 4, p)
    >>> list(medication_table(subject_ids(4), s).columns)
    ['USUBJID', 'DRUG', 'START_DAY']
    """
    return pd.concat([
        _rows(ids, s["tocilizumab"], DRUG="TOCILIZUMAB", START_DAY=s["crs_onset"] + 1),
        _rows(ids, s["corticosteroid"], DRUG="CORTICOSTEROID", START_DAY=s["crs_onset"] + 2),
    ], ignore_index=True).astype({"START_DAY": np.int64})
