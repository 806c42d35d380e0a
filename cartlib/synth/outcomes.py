"""Long-term part of the generative model: B-cell aplasia, bridging HSCT, relapse, death, follow-up.

Clinical order: CAR-T persistence sets how long B cells stay aplastic; short persistence
makes bridging to HSCT likelier; relapse risk falls with BCA duration and in girls
(paper Table 1A); CD19-negative relapses come early (antigen escape), CD19-positive ones
after loss of BCA; deaths follow relapse or, without relapse, transplant toxicity (NRM).
"""
from __future__ import annotations

import numpy as np

from .kinetics import time_below
from .latent import decide, logit, lognormal, pin_ranks


def bcell_aplasia(rng, n, p, cal, s):
    """BCA onset and the day CAR-T activity no longer keeps B cells aplastic.

    >>> from cartlib.synth.generate import simulate_subjects
    >>> from cartlib.synth.model import load_parameters
    >>> s = simulate_subjects(np.random.default_rng(0), 20, load_parameters())
    >>> bool((s["bca_end_true"] > s["bca_onset_true"]).all())
    True
    """
    b = p["bcell"]
    rate = np.log(s["cmax_true"] / s["c0"]) / s["tmax_true"]
    reach = np.log(np.maximum(b["onset_after_conc"] / s["c0"], 1.0)) / rate
    onset = np.clip(np.minimum(reach, s["tmax_true"]) + b["onset_lag_days"], 1.0, 25.0)
    functional_end = time_below(b["functional_conc"], s["cmax_true"], s["tmax_true"],
                                s["frac_fast"], s["alpha"], s["beta"])
    lag = lognormal(rng, b["loss_lag_log_median"], b["loss_lag_log_sd"], n)
    # without a day-28 MRD-negative response there was no functional CAR-T activity
    latent = np.log10(s["cmax_true"]) - 3.3 + 3.0 * s["mrd_neg"] + rng.logistic(size=n) * 0.3
    has = decide(latent, cal.get("bca_n"))
    return {"bca": has, "bca_onset_true": onset,
            "bca_end_true": np.maximum(functional_end + lag, onset + 7.0),
            "persistence_true": functional_end}


def _hsct_intent(rng, n, o, s):
    day = np.clip(lognormal(rng, o["hsct_day_log_median"], o["hsct_day_log_sd"], n),
                  o["hsct_day_min"], o["hsct_day_max"])
    latent = (o["hsct_intercept"] + o["hsct_per_log_persistence"]
              * np.log(np.maximum(s["persistence_true"], 1.0) / 60.0) + rng.logistic(size=n))
    return latent, day


def outcomes(rng, n, p, cal, s):
    """Relapse (and CD19 status), HSCT, death, last contact; all in study days.

    >>> from cartlib.synth.generate import simulate_subjects
    >>> from cartlib.synth.model import load_parameters
    >>> s = simulate_subjects(np.random.default_rng(0), 200, load_parameters())
    >>> bool((np.nan_to_num(s["death_day"]) <= s["last_contact"]).all())
    True
    """
    o = p["outcomes"]
    hsct_latent, hsct_day = _hsct_intent(rng, n, o, s)
    intended = decide(hsct_latent, cal.get("hsct_after_n"), eligible=s["cr"])
    bca_obs = np.where(s["bca"], np.minimum(s["bca_end_true"], np.where(intended, hsct_day, np.inf))
                       - s["bca_onset_true"], 0.0)
    log_bca = np.log1p(bca_obs / 60.0)
    # non-responders count as relapsed at the day-28 marrow (an LFS event, as in the paper)
    rel_latent = (o["relapse_intercept"] + o["relapse_per_bca_day"] * (bca_obs - 60.0) + 10.0 * ~s["cr"]
                  + o["relapse_female"] * s["female"]
                  + o["relapse_per_log10_mrd"] * (s["log10_mrd_preld"] + 3.0)
                  + o["relapse_not_mrd_cr"] * ~s["mrd_neg"] + o["relapse_hsct"] * intended
                  + rng.logistic(size=n))
    relapse = decide(rel_latent, cal.get("relapse_n"))
    # refractory disease after CD19 CAR-T is mostly antigen-negative escape
    neg_latent = (o["cd19neg_intercept"] + o["cd19neg_per_log_bca"] * log_bca + 4.0 * ~s["cr"]
                  + rng.logistic(size=n))
    cd19neg = decide(neg_latent, cal.get("relapse_cd19neg_n"), eligible=relapse)
    t_neg = lognormal(rng, o["cd19neg_time_log_median"], o["cd19neg_time_log_sd"], n)
    t_pos = s["bca_end_true"] + lognormal(rng, o["cd19pos_after_bca_loss_log_median"],
                                           o["cd19pos_after_bca_loss_log_sd"], n)
    t_rel = np.where(cd19neg, t_neg, t_pos)
    t_rel = np.where(s["cr"], t_rel, rng.uniform(14, 30, n))   # refractory: found at the day-28 marrow
    for mask, key in ((cd19neg, "relapse_cd19neg_days"), (relapse & ~cd19neg, "relapse_cd19pos_days")):
        if key in cal and mask.any():
            t_rel[mask] = pin_ranks(t_rel[mask], cal[key])
    t_rel = np.clip(np.round(t_rel), 1, o["relapse_max_day"])
    relapse_day = np.where(relapse, t_rel, np.nan)
    # bridging needs a patient in remission on the day of transplant
    free = ~relapse | (t_rel > hsct_day + 14)
    hsct = decide(hsct_latent, cal.get("hsct_after_n"), eligible=s["cr"] & free)
    if "hsct_days" in cal and hsct.any():
        hsct_day[hsct] = pin_ranks(hsct_day[hsct], cal["hsct_days"])
    hsct_day = np.where(hsct, np.round(hsct_day), np.nan)

    # refractory disease (no CR at day 28) is the likeliest to be fatal
    dies_rel = decide(logit(o["death_after_relapse_p"]) + o["death_refractory"] * ~s["cr"]
                      + rng.logistic(size=n), cal.get("relapse_death_n"), eligible=relapse)
    d_rel = t_rel + lognormal(rng, o["death_after_relapse_log_median"], o["death_after_relapse_log_sd"], n)
    nrm_lp = np.where(hsct, o["nrm_intercept_hsct"], o["nrm_intercept_no_hsct"])
    dies_nrm = decide(nrm_lp + rng.logistic(size=n), cal.get("nrm_n"), eligible=~relapse)
    d_nrm = np.where(hsct, np.nan_to_num(hsct_day) + lognormal(rng, o["nrm_after_hsct_log_median"],
                                                                o["nrm_after_hsct_log_sd"], n),
                     rng.uniform(60, 1500, n))
    death_day = np.where(dies_rel, d_rel, np.where(dies_nrm, d_nrm, np.nan))

    # accrual grew over the years (a new programme): more infusions late in the window
    infusion = o["accrual_days"] * rng.beta(o["accrual_beta_a"], 1.0, n)
    admin = o["data_cut_day"] - infusion
    lost = rng.uniform(0, 1, n) < o["p_lost_to_follow_up"]
    admin = np.where(lost, rng.uniform(365.0, np.maximum(admin, 366.0)), admin)
    out = {"hsct_day": hsct_day, "relapse_day": relapse_day, "cd19neg": cd19neg,
           "death_day": np.round(death_day), "admin_day": np.floor(admin),
           "death_relapse": dies_rel, "bca_obs_intended": bca_obs}
    return settle_follow_up(out)


def settle_follow_up(out):
    """Apply administrative censoring: events after the last contact are not observed.

    >>> r = settle_follow_up({"hsct_day": np.array([np.nan]), "relapse_day": np.array([50.0]),
    ...                       "cd19neg": np.array([True]), "death_day": np.array([4000.0]),
    ...                       "admin_day": np.array([3000.0]), "death_relapse": np.array([True])})
    >>> float(r["last_contact"][0]), bool(np.isnan(r["death_day"][0]))
    (3000.0, True)
    """
    dead = out["death_day"] <= out["admin_day"]
    out["death_day"] = np.where(dead, out["death_day"], np.nan)
    out["last_contact"] = np.where(dead, out["death_day"], out["admin_day"])
    for key in ("relapse_day", "hsct_day"):
        out[key] = np.where(out[key] <= out["last_contact"], out[key], np.nan)
    return out
