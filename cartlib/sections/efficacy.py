"""Section 01: efficacy (response, OS, LFS, relapse, competing risks, Cox models)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..stats.compare import clopper_pearson
from ..stats.cox import CoxModel, cox_screen
from ..stats.survival import KaplanMeier
from ..tables import format_ci, format_median_range, format_p, not_estimable
from .common import (COVARIATE_LABELS, ENDPOINTS, cumulative_incidence,  # noqa: F401 (labels for notebooks)
                     max_or_none, median_or_none, min_or_none, model_keys, months, nan_to_none, survival_data)
# RESULTS.md asks for univariable keys of these covariates whatever the screen's list
# (no_prior_cart is prior_cart's complement: keyed, but not screened twice by default)
RESULTS_COVARIATES = ["female", "age_gt_10", "genrisk_high", "prior_hsct", "prior_cart", "no_prior_cart",
                      "preld_mrd_ge_1e-3", "crs_ge_3", "icans", "neutropenia_g4", "d28_mrd_neg", "hsct_after",
                      "bca_duration_days"]
UNI_KEYS = {"hr": "hr", "hr_lo": "hr_lo", "hr_hi": "hr_hi", "p": "p"}


def km(table: pd.DataFrame, endpoint: str, params: dict[str, Any], label: str | None = None) -> KaplanMeier:
    """Kaplan–Meier of OS or LFS in months with the CI transform of ``km_ci``."""
    d = survival_data(table, endpoint)
    return KaplanMeier(ci=params["km_ci"]).fit(d["time_mo"], d["event"], label=label or endpoint.upper())


def univariable(table: pd.DataFrame, endpoint: str, params: dict[str, Any]):
    """The paper's univariable Cox screen: ``.table`` of HR/CI/p per covariate, ``.selected`` (p < screen_p)."""
    d = survival_data(table, endpoint)
    return cox_screen(d, "time_mo", "event", params["cox_covariates"], screen_p=params["screen_p"])


def multivariable(table: pd.DataFrame, endpoint: str, covariates: list[str]) -> CoxModel:
    """Multivariable Cox model (Efron ties) of OS or LFS on ``covariates``."""
    d = survival_data(table, endpoint)
    return CoxModel().fit(d, "time_mo", "event", covariates)


def _rate_keys(prefix: str, k: int, n: int) -> dict[str, Any]:
    ci = clopper_pearson(k, n)
    return {f"{prefix}_rate": ci.estimate, f"{prefix}_rate_lo": ci.lower, f"{prefix}_rate_hi": ci.upper}


def relapse_keys(table: pd.DataFrame) -> dict[str, Any]:
    rel = months(table["relapse_day"].dropna())
    cd19 = table.loc[table["relapse_day"].notna(), "relapse_cd19"]
    out = {
        "efficacy.relapse_n": int(table["relapse_day"].notna().sum()),
        "efficacy.relapse_median_mo": median_or_none(rel),
        "efficacy.relapse_min_mo": min_or_none(rel),
        "efficacy.relapse_max_mo": max_or_none(rel),
        "efficacy.death_n": int(table["os_event"].sum()),
        "efficacy.nrm_n": int((table["crr_status"] == 2).sum()),
    }
    for code, name in (("CD19NEG", "cd19neg"), ("CD19POS", "cd19pos")):
        out[f"efficacy.relapse_{name}_n"] = int((cd19 == code).sum())
        out[f"efficacy.relapse_{name}_median_mo"] = median_or_none(rel[cd19 == code])
    return out


def results(cohort, table: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """efficacy.* keys."""
    n = len(table)
    horizon = params["horizon_months"]
    out: dict[str, Any] = {"efficacy.cr_n": int(table["cr"].sum()), "efficacy.mrd_cr_n": int(table["d28_mrd_neg"].sum())}
    out.update(_rate_keys("efficacy.cr", out["efficacy.cr_n"], n))
    out.update(_rate_keys("efficacy.mrd_cr", out["efficacy.mrd_cr_n"], n))
    for endpoint in ENDPOINTS:
        est, lo, hi = km(table, endpoint, params).survival_at(horizon)
        out[f"efficacy.{endpoint}_5y"], out[f"efficacy.{endpoint}_5y_lo"], out[f"efficacy.{endpoint}_5y_hi"] = est, lo, hi
    out.update(relapse_keys(table))
    for cause, name in ((1, "cir"), (2, "nrm")):
        est, _, lo, hi = cumulative_incidence(table, cause).at(horizon)
        out[f"efficacy.{name}_5y"], out[f"efficacy.{name}_5y_lo"], out[f"efficacy.{name}_5y_hi"] = est, lo, hi
    keyed = list(dict.fromkeys([*params["cox_covariates"], *RESULTS_COVARIATES]))
    for endpoint in ENDPOINTS:
        uni = univariable(table, endpoint, {**params, "cox_covariates": keyed})
        out.update(model_keys(f"efficacy.{endpoint}.uni", uni.table, UNI_KEYS))
        model = multivariable(table, endpoint, params[f"{endpoint}_multivariable"])
        out.update(model_keys(f"efficacy.{endpoint}.multi", model.summary, UNI_KEYS))
        out[f"efficacy.{endpoint}.zph_global_p"] = zph_global_p(model)
    return out


def zph_global_p(model: CoxModel) -> float | None:
    """Global p of the proportional-hazards test, None when the model could not be fitted."""
    if not getattr(model, "converged", True):
        return None
    try:
        return nan_to_none(model.zph().loc["GLOBAL", "p"])
    except (ValueError, KeyError, ArithmeticError):
        return None


# -- displays for notebook 01 ---------------------------------------------------------------

def response_table(table: pd.DataFrame) -> pd.DataFrame:
    """CR/CRi and MRD-negative CR at day 28: n/N and % with the exact 95 % CI."""
    n = len(table)
    rows = []
    for label, col in (("CR/CRi", "cr"), ("MRD-negative CR", "d28_mrd_neg")):
        k = int(table[col].sum())
        ci = clopper_pearson(k, n)
        rows.append({"response at day 28": label, "n/N": f"{k}/{n}",
                     "% (exact 95% CI)": format_ci(100 * ci.estimate, 100 * ci.lower, 100 * ci.upper, digits=1)})
    return pd.DataFrame(rows).set_index("response at day 28")


def plot_os_lfs(table: pd.DataFrame, params: dict[str, Any]):
    """KM curves of OS and LFS side by side with numbers at risk every 12 months."""
    import matplotlib.pyplot as plt

    from ..stats.survival import plot_km

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    ticks = list(range(0, 109, 12))
    for ax, endpoint in zip(axes, ENDPOINTS):
        plot_km({endpoint.upper(): km(table, endpoint, params)}, ax=ax, at_risk_times=ticks,
                title=f"{endpoint.upper()} (95% CI: {params['km_ci']})")
        ax.axvline(params["horizon_months"], color="grey", lw=0.8, ls=":")
    fig.tight_layout()
    return fig


def survival_table(table: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """5-year (``horizon_months``) OS and LFS with CI, events and median."""
    rows = []
    for endpoint in ENDPOINTS:
        fit = km(table, endpoint, params)
        est, lo, hi = fit.survival_at(params["horizon_months"])
        rows.append({"endpoint": endpoint.upper(), "events": int(fit.table_["n_event"].sum()),
                     f"{params['horizon_months']:g}-month rate, % (95% CI)": format_ci(100 * est, 100 * lo, 100 * hi, digits=1),
                     "median, months": "not reached" if pd.isna(fit.median_) else f"{fit.median_:.1f}"})
    return pd.DataFrame(rows).set_index("endpoint")


def relapse_table(table: pd.DataFrame) -> pd.DataFrame:
    """Relapses by CD19 status: n and time from infusion, months, median (range)."""
    rel = table[table["relapse_day"].notna()]
    rows = []
    for label, mask in (("CD19-negative", rel["relapse_cd19"] == "CD19NEG"),
                        ("CD19-positive", rel["relapse_cd19"] == "CD19POS"), ("all relapses", slice(None))):
        sub = rel[mask]
        rows.append({"relapse": label, "n": len(sub),
                     "months to relapse, median (range)": format_median_range(months(sub["relapse_day"]), digits=1)})
    return pd.DataFrame(rows).set_index("relapse")


def plot_cumulative_incidence(table: pd.DataFrame):
    """Cumulative incidence of relapse and NRM (Aalen–Johansen), one panel."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for cause, label in ((1, "relapse"), (2, "non-relapse mortality")):
        cumulative_incidence(table, cause).plot(ax=ax)
        ax.get_lines()[-1].set_label(label)
    ax.set_xlabel("months since infusion")
    ax.set_ylabel("cumulative incidence")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    return fig


def cumulative_incidence_table(table: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Relapse and NRM incidence at 1, 2 and ``horizon_months`` with 95 % CI (log-log)."""
    times = [12.0, 24.0, float(params["horizon_months"])]
    rows = []
    for cause, label in ((1, "relapse"), (2, "non-relapse mortality")):
        fit = cumulative_incidence(table, cause)
        row = {"cause": label}
        for t in times:
            est, _, lo, hi = fit.at(t)
            if pd.isna(est):   # beyond the last follow-up the curve is not estimated
                text = not_estimable(f"follow-up shorter than {t:g} months")
            elif est == 0:     # at an estimate of 0 the log-log interval is undefined: the estimate alone
                text = "0.0"
            else:
                text = format_ci(100 * est, 100 * lo, 100 * hi, digits=1)
            row[f"{t:g} months, % (95% CI)"] = text
        rows.append(row)
    return pd.DataFrame(rows).set_index("cause")


def zph_table(model: CoxModel) -> pd.DataFrame:
    """The proportional-hazards test of a fitted model, formatted (or why it is not available)."""
    if model.reason is not None:
        return pd.DataFrame({"PH test": [not_estimable(model.reason)]})
    z = model.zph()
    return pd.DataFrame({"chi-square": z["chisq"].map(lambda v: f"{v:.3f}"), "df": z["df"].map(lambda v: f"{v:g}"),
                         "p": z["p"].map(format_p)}).rename_axis("PH test (cox.zph, KM scale)")
