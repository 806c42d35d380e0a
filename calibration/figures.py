"""Step 1 of the calibration: the paper's figures as quotas and pins, and the tables as the suite
sees them.

:func:`paper_figures` reads ``parameters/paper.yaml``; :func:`paper_calibration` turns every
published count into an exact quota on the matching latent variable (the k patients with the
largest latent get the outcome) and every published median/range into a monotone pin of order
statistics (:mod:`cartlib.synth.latent`), so ranks, and the model's associations, are kept.
:func:`as_cohort` and :func:`evaluate` give a candidate's tables and results.json figures without
writing files; :func:`loss` scores results against the paper.
"""
from __future__ import annotations

import pandas as pd

from cartlib.derive import DAYS_PER_MONTH
from cartlib.io import Cohort
from cartlib.scorecard import PAPER_YAML as PAPER_FILE, load_paper_figures, miss
from cartlib.synth.generate import TABLES, format_column
from cartlib.synth.model import INDICATIONS, INFECTIONS
from cartlib.validate import type_table

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



def as_cohort(tables):
    """The tables as :func:`cartlib.io.load_cohort` would type them after writing (no validation,
    no files: fast enough for the seed search; the tests load the written files instead).

    >>> from cartlib.synth import generate_cohort
    >>> as_cohort(generate_cohort(3, seed=0)).pk["CONC"].dtype
    dtype('float64')
    """
    text = {t: pd.DataFrame({c: format_column(tables[t][c]) for c in tables[t].columns}) for t in TABLES}
    return Cohort(**{t: type_table(t, text[t]) for t in TABLES}, source="synthetic")


def evaluate(tables, params=None) -> dict:
    """results.json figures of a cohort given as tables (via :func:`as_cohort` and ``compute_results``).

    >>> from cartlib.synth import generate_cohort
    >>> evaluate(generate_cohort(20, seed=0))["cohort.n"]
    20
    """
    from cartlib.sections import compute_results  # the whole suite: only when asked

    return compute_results(as_cohort(tables), params)



def loss(results, figures) -> float:
    """Sum of squared misses in units of tolerance over the feasible, non-count figures
    (:func:`cartlib.scorecard.miss`, squared, each capped at 100; a missing result counts 100).

    >>> f = [{"key": "a", "value": 1.0, "tolerance": 0.1, "kind": "continuous", "feasible": True}]
    >>> round(loss({"a": 1.2}, f), 6), loss({}, f)
    (4.0, 100.0)
    """
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
