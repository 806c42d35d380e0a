"""Subject-level generative model of a CD19 CAR-T cohort (pediatric B-ALL, MRD-positive setting).

One call of :func:`simulate_subjects` draws, for n patients at once (numpy, no loops over
patients): baseline, MRD before/after lymphodepletion, CAR-T kinetic parameters, toxicity,
day-28 response, B-cell aplasia, relapse, bridging HSCT, deaths and follow-up. The causal
order is the clinical one, so the relationships the paper reports hold in expectation:
tumour burden and dose raise CRS; expansion drives response; persistence drives B-cell
aplasia, which (with female sex) protects against relapse. ``cal`` (quotas and pins, see
:mod:`calibration.figures`) only replaces thresholds; it never redraws.
"""
from __future__ import annotations

import numpy as np
import yaml

from ..resources import parameters_file
from .latent import categorical, decide, expit, logit, lognormal, ordinal, pin_counts, pin_ranks

PARAMETERS_FILE = parameters_file("synthetic.yaml")
INDICATIONS = ("MRD_REEMERGENCE", "MRD_PERSISTENT", "CHEMO_INTOLERANCE")
INFECTIONS = ("BACTERIAL", "CMV", "EBV", "FUNGAL")


def load_parameters(path=None) -> dict:
    """The generative model's parameters (``parameters/synthetic.yaml`` by default).

    >>> load_parameters()["kinetics"]["lloq"]
    100.0
    """
    with open(path or PARAMETERS_FILE, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _logistic(rng, size):
    return rng.logistic(size=size)


def baseline(rng, n, p, cal):
    """Age, sex, indication, genetic risk, prior HSCT / CAR-T, diagnosis-to-infusion, dose.

    >>> s = baseline(np.random.default_rng(0), 50, load_parameters(), {"female_n": 23})
    >>> int(s["female"].sum()), bool((s["dose"] > 0).all())
    (23, True)
    """
    b = p["baseline"]
    s = {}
    s["female"] = decide(logit(b["p_female"]) + _logistic(rng, n),
                         cal.get("female_n"))
    age = np.clip(lognormal(rng, b["age_log_median"], b["age_log_sd"], n), b["age_min"], b["age_max"])
    if "age_le_10_n" in cal:
        age = np.clip(pin_counts(age, {10.05: cal["age_le_10_n"]}), b["age_min"], b["age_max"])
    s["age"] = np.round(age, 1)
    probs = np.array([b["indication_p"][k] for k in INDICATIONS])
    logits = np.log(probs) + rng.gumbel(size=(n, len(INDICATIONS)))
    quota = cal.get("indication_n")
    s["indication"] = categorical(logits, None if quota is None else [quota[k] for k in INDICATIONS])
    s["genrisk_high"] = decide(logit(b["p_genrisk_high"])
                               + _logistic(rng, n), cal.get("genrisk_high_n"))
    hsct_ok = s["indication"] == 0
    lp = logit(b["p_prior_hsct"]) + _logistic(rng, n)
    s["prior_hsct"] = decide(lp, cal.get("prior_hsct_n"), eligible=hsct_ok)
    s["prior_cart"] = decide(logit(b["p_prior_cart"])
                             + _logistic(rng, n), cal.get("prior_cart_n"))
    dx = lognormal(rng, b["dx_to_inf_log_median_mo"], b["dx_to_inf_log_sd"], n)
    dx = dx * np.where(s["prior_hsct"], b["dx_to_inf_prior_hsct_factor"], 1.0)
    if "dx_to_inf_mo" in cal:
        dx = np.exp(pin_ranks(np.log(dx), {r: np.log(v) for r, v in cal["dx_to_inf_mo"].items()}))
    s["dx_to_inf_mo"] = np.round(np.clip(dx, b["dx_to_inf_min_mo"], b["dx_to_inf_max_mo"]), 1)
    dose = b["dose_mean"] + b["dose_sd"] * rng.standard_normal(n)
    if "dose" in cal:
        dose = pin_ranks(dose, cal["dose"])
    s["dose"] = np.round(np.clip(dose, b["dose_min"], b["dose_max"]), 2)
    return s


def mrd(rng, n, p, cal, s):
    """MRD fractions before and after lymphodepletion (0 = below detection).

    >>> p = load_parameters()
    >>> m = mrd(np.random.default_rng(0), 50, p, {"mrd_preld_lt_n": {1e-3: 29}}, {"indication": np.zeros(50, int)})
    >>> int((m["mrd_preld"] < 1e-3).sum())
    29
    """
    m = p["mrd"]
    pre = m["pre_mean_log10"] + m["pre_sd_log10"] * rng.standard_normal(n)
    pre = pre + np.where(s["indication"] == 2, m["intolerance_shift_log10"], 0.0)
    post = pre + m["post_shift_mean_log10"] + m["post_shift_sd_log10"] * rng.standard_normal(n)
    out = {}
    for name, y in (("mrd_preld", pre), ("mrd_postld", post)):
        if f"{name}_lt_n" in cal:
            y = pin_counts(y, {np.log10(t): k for t, k in cal[f"{name}_lt_n"].items()})
        y = np.minimum(y, m["max_log10"])
        value = np.where(y < m["detect_log10"], 0.0, 10.0 ** y)
        out[name] = np.round(value, 7)
        # the latent burden keeps acting below detection (log10 MRD floored at -5)
        out[f"log10_{name}"] = np.maximum(y, -5.0)
    return out


def kinetic_parameters(rng, n, p, s, side=None):
    """True Cmax, Tmax, fast fraction, contraction rates and day-0 level per patient.

    ``side``: the stream of the mechanisms added after calibration (early loss of the CAR-T
    cells: a share ``early_loss_p`` of patients has a persistence rate of at least
    ``early_loss_beta``); a child of ``rng`` when not given.

    >>> k = kinetic_parameters(np.random.default_rng(0), 3, load_parameters(),
    ...                        {"log10_mrd_preld": np.full(3, -3.0), "dose": np.full(3, 3.0)})
    >>> bool((k["c0"] < k["cmax_true"]).all())
    True
    """
    k = p["kinetics"]
    burden = s["log10_mrd_preld"] + 3.0
    log10_cmax = (k["log10_cmax_mean"] + k["log10_cmax_per_log10_mrd"] * burden
                  + k["log10_cmax_per_dose"] * (s["dose"] - 3.68)
                  + k["log10_cmax_sd"] * rng.standard_normal(n))
    out = {"cmax_true": 10.0 ** log10_cmax}
    out["tmax_true"] = np.clip(lognormal(rng, k["tmax_log_median"], k["tmax_log_sd"], n),
                               k["tmax_min"], k["tmax_max"])
    out["frac_fast"] = expit(k["fast_fraction_logit_mean"]
                             + k["fast_fraction_logit_sd"] * rng.standard_normal(n))
    out["alpha"] = lognormal(rng, k["alpha_log_median"], k["alpha_log_sd"], n)
    out["beta"] = np.maximum(lognormal(rng, k["beta_log_median"], k["beta_log_sd"], n), k["beta_min"])
    side = rng.spawn(1)[0] if side is None else side
    lost = side.uniform(size=n) < k.get("early_loss_p", 0.0)
    rate = k.get("early_loss_rate", 0.0)      # rejected cells: both phases decline at least this fast
    out["alpha"] = np.where(lost, np.maximum(out["alpha"], rate), out["alpha"])
    out["beta"] = np.where(lost, np.maximum(out["beta"], rate), out["beta"])
    out["c0"] = np.minimum(k["c0_per_dose"] * s["dose"], out["cmax_true"] / 2)
    return out


def toxicity(rng, n, p, cal, s, side=None):
    """CRS and ICANS grades, neutropenia (ANC nadir), infections, HLH, GVHD, drugs, IL-6.

    ``side``: the stream of the mechanisms added after calibration (the IL-6 peak day's pull
    towards the expansion peak and its extra spread); a child of ``rng`` when not given.

    >>> s = {"log10_mrd_preld": np.full(50, -3.0), "dose": np.full(50, 3.7),
    ...      "cmax_true": np.full(50, 3e4), "tmax_true": np.full(50, 10.0), "prior_hsct": np.zeros(50, bool)}
    >>> t = toxicity(np.random.default_rng(0), 50, load_parameters(), {"crs_ge_3_n": 8}, s)
    >>> int((t["crs_grade"] >= 3).sum())
    8
    """
    t = p["toxicity"]
    burden = s["log10_mrd_preld"] + 3.0
    lcmax = np.log10(s["cmax_true"]) - 4.5
    crs_latent = (t["crs_intercept"] + t["crs_per_log10_mrd"] * burden
                  + t["crs_per_dose"] * (s["dose"] - 3.68) + t["crs_per_log10_cmax"] * lcmax
                  + _logistic(rng, n))
    quotas = {g: cal[k] for g, k in ((1, "crs_any_n"), (3, "crs_ge_3_n")) if k in cal}
    out = {"crs_grade": np.minimum(ordinal(crs_latent, t["crs_cuts"], quotas), 4)}
    out["crs_onset"] = np.clip(np.round(lognormal(rng, t["crs_onset_log_median"],
                                                   t["crs_onset_log_sd"], n)), 0, 14)
    icans_latent = (t["icans_intercept"] + t["icans_per_crs_grade"] * out["crs_grade"]
                    + t["icans_per_log10_mrd"] * burden + _logistic(rng, n))
    out["icans"] = decide(icans_latent, cal.get("icans_n"))
    extra = rng.exponential(1.2, n)
    out["icans_grade"] = np.where(out["icans"], np.clip(1 + np.floor(extra + out["crs_grade"] / 3), 1, 4), 0)
    nadir = np.log(lognormal(rng, t["anc_nadir_log_median"], t["anc_nadir_log_sd"], n))
    nadir = nadir + t["anc_nadir_per_crs_grade"] * out["crs_grade"]
    if "neutropenia_g4_n" in cal:
        nadir = pin_counts(nadir, {np.log(0.5): cal["neutropenia_g4_n"]})
    out["anc_nadir"] = np.round(np.clip(np.exp(nadir), t["anc_nadir_min"], 1.45), 2)
    out["neutropenia_grade"] = 1 + (out["anc_nadir"] < 1.5) + (out["anc_nadir"] < 1.0) + (out["anc_nadir"] < 0.5)
    inf_latent = (t["infection_intercept"] + t["infection_per_neutropenia_g4"]
                  * (out["neutropenia_grade"] == 4) + _logistic(rng, n))
    dp = np.array([t["infection_detail_p"][k] for k in INFECTIONS])
    dlogits = np.log(dp) + rng.gumbel(size=(n, len(INFECTIONS)))
    quota = cal.get("infection_n")
    out["infection"] = decide(inf_latent, None if quota is None else sum(quota.values()))
    detail = np.full(n, -1)
    if quota is None:
        detail[out["infection"]] = categorical(dlogits[out["infection"]])
    else:
        detail[out["infection"]] = categorical(dlogits[out["infection"]], [quota[k] for k in INFECTIONS])
    out["infection_detail"] = detail
    out["infection_grade"] = np.where(out["infection"], 2 + rng.integers(0, 2, n), 0)
    out["infection_onset"] = rng.integers(3, 29, n)
    hlh_latent = (t["hlh_intercept"] + t["hlh_per_log10_mrd"] * burden
                  + t["hlh_per_crs_grade"] * out["crs_grade"] + _logistic(rng, n))
    out["hlh"] = decide(hlh_latent, cal.get("hlh_n"))
    gvhd_latent = logit(t["gvhd_prior_hsct_p"]) + _logistic(rng, n)
    out["gvhd"] = decide(gvhd_latent, cal.get("gvhd_n"), eligible=s["prior_hsct"])
    toci = t["toci_intercept"] + t["toci_per_crs_grade"] * out["crs_grade"] + _logistic(rng, n)
    out["tocilizumab"] = decide(toci, cal.get("tocilizumab_n"), eligible=out["crs_grade"] > 0)
    ster = (t["steroid_intercept"] + t["steroid_per_crs_grade"] * out["crs_grade"]
            + t["steroid_icans"] * out["icans"] + t["steroid_hlh"] * out["hlh"] + _logistic(rng, n))
    out["corticosteroid"] = decide(ster, cal.get("corticosteroid_n"))
    il6 = t["il6_elevated_intercept"] + t["il6_elevated_per_crs_grade"] * out["crs_grade"] + _logistic(rng, n)
    out["il6_elevated"] = decide(il6, cal.get("il6_elevated_n"))
    med = np.asarray(t["il6_peak_log_median_per_grade"])[out["crs_grade"]]
    peak = np.maximum(lognormal(rng, 1.0, t["il6_peak_log_sd"], n) * med, 7.6)
    day = out["crs_onset"] + rng.integers(1, 5, n)
    # IL-6 peaks with CAR-T expansion: the day moves towards Tmax, with extra spread
    side = rng.spawn(1)[0] if side is None else side
    pull, spread = t.get("il6_peak_day_pull_to_tmax", 0.0), t.get("il6_peak_day_extra_sd", 0.0)
    extra = spread * side.standard_normal(n)
    if pull or spread:
        day = np.round(day + pull * (s["tmax_true"] - day) + extra)
    day = np.clip(day, 1, 22).astype(float)
    up = out["il6_elevated"]
    if "il6_peak" in cal and up.any():
        peak[up] = np.exp(pin_ranks(np.log(peak[up]), {r: np.log(v) for r, v in cal["il6_peak"].items()}))
    if "il6_peak_day" in cal and up.any():
        day[up] = np.round(pin_ranks(day[up], cal["il6_peak_day"]))
    out["il6_peak"] = np.where(up, np.round(np.minimum(peak, 5000.0), 1), np.nan)
    out["il6_peak_day"] = day
    return out


def response(rng, n, p, cal, s):
    """Day-28 CR/CRi and MRD-negative CR from one latent driven by expansion.

    >>> r = response(np.random.default_rng(0), 50, load_parameters(), {"cr_n": 49, "mrd_cr_n": 48},
    ...              {"cmax_true": np.full(50, 3e4)})
    >>> int(r["cr"].sum()), int(r["mrd_neg"].sum())
    (49, 48)
    """
    r = p["response"]
    latent = r["intercept"] + r["per_log10_cmax"] * (np.log10(s["cmax_true"]) - 4.5) + _logistic(rng, n)
    cr = decide(latent - r["cut_cr"], cal.get("cr_n"))
    mrd_neg = decide(latent - r["cut_mrd_neg"], cal.get("mrd_cr_n")) & cr
    return {"cr": cr, "mrd_neg": mrd_neg}
