"""Calibration of the 50-patient default cohort to the paper's figures (docs/SYNTHETIC.md).

Three deterministic steps, none of which types numbers into rows:

1. **Quotas and pins** (:func:`paper_calibration`): every published count becomes an exact
   quota on the matching latent variable (the k patients with the largest latent get the
   outcome) and every published median/range becomes a monotone pin of order statistics
   (:mod:`cartlib.synth.latent`). Ranks, and so the model's associations, are kept.
2. **Seed search** (:func:`search`): seeds 0..K (and two small knobs, the numbers of deaths
   after relapse and of non-relapse deaths) are scored on the figures quotas cannot fix
   (5-year OS/LFS, the LFS Cox model, correlations, p-values); the best is recorded in
   ``parameters/synthetic.yaml`` (``calibration``).
3. **Nudges** (:func:`nudge`): a few documented single-patient adjustments.
"""
from __future__ import annotations

import copy

import numpy as np

from ..analysis import DEFAULT_COHORT
from ..derive import DAYS_PER_MONTH
from .generate import generate_cohort, write_cohort
from .model import INDICATIONS, INFECTIONS, PARAMETERS_FILE, load_parameters
from .latent import pin_ranks
from .outcomes import settle_follow_up

PAPER_FILE = PARAMETERS_FILE.parent / "paper.yaml"
DEFAULT_COHORT_DIR = DEFAULT_COHORT
COUNT_KEYS = {  # calibration quota <- paper.yaml key
    "female_n": "cohort.female_n", "age_le_10_n": "cohort.age_le_10_n",
    "prior_hsct_n": "cohort.prior_hsct_n", "prior_cart_n": "cohort.prior_cart_n",
    "cr_n": "efficacy.cr_n", "mrd_cr_n": "efficacy.mrd_cr_n",
    "crs_any_n": "toxicity.crs_any_n", "crs_ge_3_n": "toxicity.crs_ge_3_n", "icans_n": "toxicity.icans_n",
    "neutropenia_g4_n": "toxicity.neutropenia_g4_n", "hlh_n": "toxicity.hlh_n", "gvhd_n": "toxicity.gvhd_n",
    "tocilizumab_n": "toxicity.tocilizumab_n", "corticosteroid_n": "toxicity.corticosteroid_n",
    "il6_elevated_n": "toxicity.il6_elevated_n", "bca_n": "bca.n", "relapse_n": "efficacy.relapse_n",
    "relapse_cd19neg_n": "efficacy.relapse_cd19neg_n", "hsct_after_n": "transplant.hsct_after_n",
}


def paper_figures(path=None) -> list[dict]:
    """The rows of ``parameters/paper.yaml`` (key, value, tolerance, where, kind, feasible, why).

    >>> f = {r["key"]: r for r in paper_figures()}
    >>> f["cohort.female_n"]["value"], f["efficacy.os_5y_lo"]["feasible"]
    (23, False)
    """
    from ..scorecard import load_paper_figures

    return load_paper_figures(path or PAPER_FILE)


def _days(months):
    return round(months * DAYS_PER_MONTH)


def _median_pair(n, median, step):
    """Pins of the two middle order statistics (n even) around a published median."""
    lo, hi = round(median - step, 6), round(median + step, 6)
    return {n // 2: lo, n // 2 + 1: hi} if n % 2 == 0 else {n // 2 + 1: median}


def paper_calibration(path=None) -> dict:
    """Quotas and pins derived from the paper's figures (the ``cal`` of :func:`generate_cohort`).

    >>> cal = paper_calibration()
    >>> cal["female_n"], cal["dose"][25], cal["mrd_preld_lt_n"][1e-3]
    (23, 3.67, 29)
    """
    v = {r["key"]: r["value"] for r in paper_figures(path)}
    n = v["cohort.n"]
    cal = {k: v[key] for k, key in COUNT_KEYS.items()}
    cal["indication_n"] = {c: v[f"cohort.indication.{c}_n"] for c in INDICATIONS}
    cal["infection_n"] = {c: v[f"toxicity.infection.{c}_n"] for c in INFECTIONS}
    for when in ("preld", "postld"):
        cal[f"mrd_{when}_lt_n"] = {float(c): v[f"cohort.{when}_mrd_lt_{c}_n"] for c in ("1e-4", "1e-3", "1e-2")}
    # Table 3 splits the dose 25/25 at 3.68, so the middle pair straddles the median
    cal["dose"] = {1: v["cohort.dose_min"], **_median_pair(n, v["cohort.dose_median"], 0.01), n: v["cohort.dose_max"]}
    cal["dx_to_inf_mo"] = {1: v["cohort.dx_to_inf_min_mo"], **_median_pair(n, v["cohort.dx_to_inf_median_mo"], 0.1),
                           n: v["cohort.dx_to_inf_max_mo"]}
    n_neg, n_rel = v["efficacy.relapse_cd19neg_n"], v["efficacy.relapse_n"]
    n_pos = n_rel - n_neg
    neg_mid = _days(v["efficacy.relapse_cd19neg_median_mo"])
    # all CD19-negative relapses precede the overall median, which is then a CD19-positive one
    cal["relapse_cd19neg_days"] = {1: _days(v["efficacy.relapse_min_mo"]), **_median_pair(n_neg, neg_mid, 12),
                                   n_neg: round(0.7 * _days(v["efficacy.relapse_median_mo"]))}
    cal["relapse_cd19pos_days"] = {(n_rel + 1) // 2 - n_neg: _days(v["efficacy.relapse_median_mo"]),
                                   (n_pos + 1) // 2: _days(v["efficacy.relapse_cd19pos_median_mo"]),
                                   n_pos: _days(v["efficacy.relapse_max_mo"])}
    k = v["transplant.hsct_after_n"]
    cal["hsct_days"] = {1: _days(v["transplant.hsct_min_mo"]), **_median_pair(k, _days(v["transplant.hsct_median_mo"]), 1),
                        k: _days(v["transplant.hsct_max_mo"])}
    cmax_no = v["pk.table3.d28_mrd_neg.no.cmax_median"]
    cal["cmax_obs"] = {1: 2 * cmax_no - v["pk.cmax_min"], 2: v["pk.cmax_min"],
                       **_median_pair(n, v["pk.cmax_median"], 360), n: v["pk.cmax_max"]}
    m = v["toxicity.il6_elevated_n"]
    cal["il6_peak"] = {1: 7.6, **_median_pair(m, v["toxicity.il6_peak_median"], 0.0), m: 5000.0}
    cal["il6_peak_day"] = {1: v["toxicity.il6_peak_day_min"], (m + 1) // 2: v["toxicity.il6_peak_day_median"],
                           m: v["toxicity.il6_peak_day_max"]}
    cal["followup_max_day"] = _days(v["cohort.followup_max_mo"])
    cal["followup_min_day"] = _days(v["cohort.followup_min_mo"])
    cal["followup_median_day"] = v["cohort.followup_median_mo"] * DAYS_PER_MONTH
    cal["os_5y"], cal["lfs_5y"] = v["efficacy.os_5y"], v["efficacy.lfs_5y"]
    return cal


def nudge(s, cal):
    """Documented single-patient adjustments applied after simulation (docs/SYNTHETIC.md, step 3).

    1. the HLH patient's pre-LD MRD is the paper's 3.22 % (if already >= 1e-2);
    2. survivors' follow-up (set by their infusion dates) is pinned so that the maximum and
       the median of all OS times are the published ones;
    3. the last non-relapse death is placed on the day that brings 5-year LFS nearest the
       paper, then the last death after relapse on the day that does so for 5-year OS;
    4. the earliest death moves to the published minimum follow-up if that keeps it after
       the patient's relapse and HSCT and before the next death.

    >>> from cartlib.synth.generate import simulate_subjects
    >>> s = simulate_subjects(np.random.default_rng(0), 50, load_parameters())
    >>> t = nudge(s, {"followup_max_day": 2968})
    >>> float(t["admin_day"][np.isnan(t["death_day"])].max())
    2968.0
    """
    s = dict(s)
    hlh = np.flatnonzero(s["hlh"])
    if hlh.size == 1 and s["mrd_preld"][hlh[0]] >= 1e-2:
        s["mrd_preld"] = s["mrd_preld"].copy()
        s["mrd_preld"][hlh[0]] = 0.0322
        s["log10_mrd_preld"] = s["log10_mrd_preld"].copy()
        s["log10_mrd_preld"][hlh[0]] = np.log10(0.0322)
    alive = np.isnan(s["death_day"])
    if alive.any() and "followup_max_day" in cal:
        s["admin_day"] = _pin_survivor_follow_up(s["admin_day"], alive, s["death_day"], cal)
    s = settle_follow_up(s)
    for endpoint, who in (("lfs", ~s["death_relapse"]), ("os", s["death_relapse"])):
        if f"{endpoint}_5y" in cal:
            _place_death(s, who & ~np.isnan(s["death_day"]), endpoint, cal[f"{endpoint}_5y"])
    dead = np.flatnonzero(~np.isnan(s["death_day"]))
    if dead.size and "followup_min_day" in cal:
        order = dead[np.argsort(s["death_day"][dead])]
        first = order[0]
        floor = np.nanmax([s["relapse_day"][first], s["hsct_day"][first], 0.0])
        ceiling = s["death_day"][order[1]] if order.size > 1 else np.inf
        if floor < cal["followup_min_day"] < ceiling:
            s["death_day"][first] = cal["followup_min_day"]
    return settle_follow_up(s)


def _survival_5y(s, endpoint):
    from ..stats.survival import KaplanMeier

    death = np.nan_to_num(s["death_day"], nan=np.inf)
    first = death if endpoint == "os" else np.fmin(death, np.nan_to_num(s["relapse_day"], nan=np.inf))
    event = first <= s["admin_day"]
    time = np.where(event, first, s["admin_day"])
    return KaplanMeier(ci="plain").fit(time / DAYS_PER_MONTH, event.astype(int)).survival_at(60.0)[0]


def _place_death(s, candidates, endpoint, target):
    """Move the latest death among ``candidates`` to the day (within its follow-up and after its
    relapse/HSCT) whose 5-year KM estimate of ``endpoint`` is nearest ``target``; in place."""
    idx = np.flatnonzero(candidates)
    if idx.size == 0:
        return
    i = idx[np.argmax(s["death_day"][idx])]
    lo = np.nanmax([s["relapse_day"][i], s["hsct_day"][i], 0.0]) + 30
    hi = min(s["admin_day"][i], 60 * DAYS_PER_MONTH)
    best, best_gap = s["death_day"][i], abs(_survival_5y(s, endpoint) - target)
    for day in np.arange(np.ceil(lo), np.floor(hi) + 1, 3.0):
        s["death_day"][i] = day
        gap = abs(_survival_5y(s, endpoint) - target)
        if gap < best_gap - 1e-12:
            best, best_gap = day, gap
    s["death_day"][i] = best


def _pin_survivor_follow_up(admin, alive, death_day, cal):
    """Pin survivors' administrative follow-up: the maximum, and the two middle OS times."""
    n, k = admin.size, int(alive.sum())
    pins = {1: float(admin[alive].min()), k: float(cal["followup_max_day"])}
    median = cal.get("followup_median_day")
    if median is not None and n % 2 == 0:
        below = int((death_day[~alive] < median).sum())   # deaths all come before the median
        lo, hi = n // 2 - below, n // 2 + 1 - below       # survivor ranks holding OS ranks n/2, n/2+1
        if 1 < lo and hi < k:
            pins.update({lo: median - 3.0, hi: median + 3.0})
    out = admin.copy()
    out[alive] = np.round(pin_ranks(admin[alive], pins))
    return out


def calibrated_settings(params=None) -> dict:
    """The recorded search result (``calibration`` of parameters/synthetic.yaml).

    >>> sorted(calibrated_settings())
    ['nrm_n', 'relapse_death_n', 'seed', 'stages']
    """
    return dict((params or load_parameters())["calibration"])


def simulated_tables(params=None, paper=None, details=None) -> dict:
    """Steps 1-4 (docs/SYNTHETIC.md): the model's draws with quotas, pins and nudges, and the
    stages on the latent patients (:func:`~cartlib.synth.fit_toxicity.fit_toxicity`, then
    :func:`~cartlib.synth.fit_outcomes.fit_outcomes`), as tables; the kinetics stage follows
    in :func:`default_cohort_tables`. ``details``: an optional dict, filled with copies of the
    latent patients after the nudges (``nudged``), the toxicity stage (``toxicity``) and the
    outcome stage (``outcomes``).
    """
    from .fit_outcomes import fit_outcomes
    from .fit_toxicity import fit_toxicity

    params = params or load_parameters()
    settings = calibrated_settings(params)
    stages = settings.get("stages", {})
    cal = paper_calibration(paper)
    cal.update(relapse_death_n=settings["relapse_death_n"], nrm_n=settings["nrm_n"])
    figures = paper_figures(paper)
    n = {r["key"]: r["value"] for r in figures}["cohort.n"]

    def record(name, s):
        if details is not None:
            details[name] = copy.deepcopy(s)
        return s

    def adjust(s):
        s = record("nudged", nudge(s, cal))
        s = record("toxicity", fit_toxicity(s, figures, **stages.get("toxicity", {})))
        return record("outcomes", fit_outcomes(s, figures, params=params, **stages.get("outcomes", {})))

    return generate_cohort(n, settings["seed"], params, cal=cal, adjust=adjust)


def default_cohort_tables(params=None, paper=None, details=None, simulated=None) -> dict:
    """The calibrated 50-patient default cohort, re-derived deterministically from the model:
    :func:`simulated_tables`, then the kinetics stage (about 80 s; tests/test_synth.py checks it)
    (:func:`~cartlib.synth.fit_kinetics.fit_kinetics`, step 5; ``details`` is its record of what
    it assigned). ``simulated``: the result of :func:`simulated_tables` with the same arguments,
    if already at hand (the tests share one).

    >>> t = default_cohort_tables()       # doctest: +SKIP
    >>> len(t["subjects"]), int((t["subjects"]["SEX"] == "F").sum())   # doctest: +SKIP
    (50, 23)
    """
    from .fit_kinetics import fit_kinetics

    params = params or load_parameters()
    stages = calibrated_settings(params).get("stages", {})
    tables = simulated_tables(params, paper) if simulated is None else simulated
    return fit_kinetics(tables, paper_figures(paper), params=params, details=details,
                        **stages.get("kinetics", {}))


def write_default_cohort(out_dir=DEFAULT_COHORT_DIR):
    """(Re)write the bundled cohort files from :func:`default_cohort_tables` (overwrites them).

    >>> import tempfile
    >>> [p.name for p in write_default_cohort(tempfile.mkdtemp())][0]   # doctest: +SKIP
    'subjects.csv'
    """
    return write_cohort(default_cohort_tables(), out_dir, overwrite=True)


def as_cohort(tables):
    """The tables as :func:`cartlib.io.load_cohort` would type them after writing (no validation,
    no files: fast enough for the seed search; the tests load the written files instead).

    >>> as_cohort(generate_cohort(3, seed=0)).pk["CONC"].dtype
    dtype('float64')
    """
    import pandas as pd

    from ..io import Cohort
    from ..validate import type_table
    from .generate import TABLES, _fmt

    text = {t: pd.DataFrame({c: _fmt(tables[t][c]) for c in tables[t].columns}) for t in TABLES}
    return Cohort(**{t: type_table(t, text[t]) for t in TABLES}, source="synthetic")


def evaluate(tables, params=None) -> dict:
    """results.json figures of a cohort given as tables (via :func:`as_cohort` and ``compute_results``).

    >>> evaluate(generate_cohort(20, seed=0))["cohort.n"]
    20
    """
    from ..sections import compute_results

    return compute_results(as_cohort(tables), params)


def loss(results, figures) -> float:
    """Sum of squared misses in units of tolerance over the feasible, non-count figures
    (:func:`cartlib.scorecard.miss`, squared, each capped at 100; a missing result counts 100).

    >>> f = [{"key": "a", "value": 1.0, "tolerance": 0.1, "kind": "continuous", "feasible": True}]
    >>> round(loss({"a": 1.2}, f), 6), loss({}, f)
    (4.0, 100.0)
    """
    from ..scorecard import miss

    total = 0.0
    for f in figures:
        if not f["feasible"] or f["kind"] == "count":
            continue
        got = results.get(f["key"])
        if got is None:
            total += 100.0
            continue
        total += min(miss(got, f) ** 2, 100.0)
    return total


def search(seeds, relapse_deaths=(10, 11, 12), nrm=(1,), params=None, evaluate_fn=evaluate):
    """Score every (seed, deaths after relapse, NRM) combination; returns rows sorted by loss.

    ``evaluate_fn(tables, params) -> dict`` gives the results keys (default: the suite's
    ``compute_results``); :func:`loss` compares them with paper.yaml. Slow (seconds per
    candidate); run by hand, then record the choice in synthetic.yaml (docs/SYNTHETIC.md).

    >>> rows = search([0], relapse_deaths=(10,), nrm=(1,), evaluate_fn=lambda t, p: {})
    >>> rows[0][1:]                       # (loss, seed, deaths after relapse, NRM)
    (0, 10, 1)
    """
    params = params or load_parameters()
    figures = paper_figures()
    base = paper_calibration()
    rows = []
    for seed in seeds:
        for rd in relapse_deaths:
            for k in nrm:
                cal = dict(base, relapse_death_n=rd, nrm_n=k)
                tables = generate_cohort(50, seed, params, cal=cal, adjust=lambda s, c=cal: nudge(s, c))
                rows.append((loss(evaluate_fn(tables, None), figures), seed, rd, k))
    return sorted(rows)
