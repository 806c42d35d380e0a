"""Section 01: efficacy (response, OS, LFS, relapse, competing risks, Cox models)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..stats.compare import clopper_pearson
from ..stats.cox import CoxModel, cox_screen
from ..stats.survival import KaplanMeier
from ..tables import captioned, format_ci, format_median_range, format_p, not_estimable
from .common import (COVARIATE_LABELS, ENDPOINTS, cumulative_incidence,  # noqa: F401 (labels for notebooks)
                     forest_figure, max_or_none, paper_sentence, median_or_none, min_or_none, model_display, model_keys, months,
                     nan_to_none, survival_data)
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
        # the models' columns only: survival_data copies the table it is given, for every model
        needed = dict.fromkeys([*ENDPOINTS[endpoint], *keyed, *params[f"{endpoint}_multivariable"]])
        narrow = table[[c for c in needed if c in table.columns]]
        uni = univariable(narrow, endpoint, {**params, "cox_covariates": keyed})
        out.update(model_keys(f"efficacy.{endpoint}.uni", uni.table, UNI_KEYS))
        model = multivariable(narrow, endpoint, params[f"{endpoint}_multivariable"])
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
    return captioned(pd.DataFrame(rows).set_index("response at day 28"),
                     f"Response at day 28 (N = {n}): complete remission with or without count recovery (CR/CRi) "
                     "and MRD-negative CR (flow MRD < 10⁻⁴); % with exact Clopper–Pearson 95% CI."
                     + paper_sentence([("CR/CRi", "efficacy.cr_rate", "{:.0%}"),
                                       ("MRD-negative CR", "efficacy.mrd_cr_rate", "{:.0%}")]))


def plot_os_lfs(table: pd.DataFrame, params: dict[str, Any]):
    """KM curves of OS and LFS side by side with numbers at risk every 12 months."""
    import matplotlib.pyplot as plt

    from ..plots import FIGURE_WIDTH_IN, plot_survival

    fig, axes = plt.subplots(1, 2, figsize=(FIGURE_WIDTH_IN, 3.6), layout="constrained")
    for ax, endpoint in zip(axes, ENDPOINTS):
        plot_survival({"all patients": km(table, endpoint, params)}, ax=ax, ci=True, title=ENDPOINT_NAMES[endpoint],
                      ylabel=f"{ENDPOINT_NAMES[endpoint]} probability", colours={"all patients": "black"})
        ax.axvline(params["horizon_months"], color="grey", lw=0.8, ls=":", gid="horizon")
    return fig


ENDPOINT_NAMES = {"os": "Overall survival", "lfs": "Leukaemia-free survival"}


def os_lfs_figure(table: pd.DataFrame, params: dict[str, Any], figures_dir: str = ""):
    """:func:`plot_os_lfs` with its caption and alt text (published; saved when ``figures_dir``)."""
    from ..plots import publish

    n, h = len(table), params["horizon_months"]
    rates = []
    for endpoint in ENDPOINTS:
        est, lo, hi = km(table, endpoint, params).survival_at(h)
        rates.append(f"{ENDPOINT_NAMES[endpoint].lower()} {format_ci(100 * est, 100 * lo, 100 * hi, digits=1)} %")
    caption = (f"Overall survival (left) and leukaemia-free survival (right) after CAR-T infusion, N = {n}. "
               f"Kaplan–Meier estimates with 95% confidence bands ({params['km_ci']} Greenwood CI, shaded); "
               f"ticks mark censored patients; the dotted line marks {h:g} months; numbers at risk (follow-up ≥ t) "
               "under each axis." + paper_sentence([("5-year OS", "efficacy.os_5y", "{:.1%}"),
                                                    ("5-year LFS", "efficacy.lfs_5y", "{:.1%}")]))
    alt = (f"Two Kaplan–Meier step curves with shaded 95% bands, time since infusion in months on the x axis "
           f"(ticked every 12 months), probability on the y axis. At {h:g} months: {'; '.join(rates)}.")
    return publish(plot_os_lfs(table, params), "efficacy_os_lfs", caption, alt, figures_dir)


def survival_table(table: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """5-year (``horizon_months``) OS and LFS with CI, events and median."""
    rows = []
    for endpoint in ENDPOINTS:
        fit = km(table, endpoint, params)
        est, lo, hi = fit.survival_at(params["horizon_months"])
        rows.append({"endpoint": endpoint.upper(), "events": int(fit.table_["n_event"].sum()),
                     f"{params['horizon_months']:g}-month rate, % (95% CI)": format_ci(100 * est, 100 * lo, 100 * hi, digits=1),
                     "median, months": "not reached" if pd.isna(fit.median_) else f"{fit.median_:.1f}"})
    return captioned(pd.DataFrame(rows).set_index("endpoint"),
                     f"Overall (OS) and leukaemia-free survival (LFS), N = {len(table)}: events, Kaplan–Meier rate at "
                     f"{params['horizon_months']:g} months with 95% CI ({params['km_ci']}) and median survival."
                     + paper_sentence([("5-year OS", "efficacy.os_5y", "{:.1%}"), ("5-year LFS", "efficacy.lfs_5y", "{:.1%}")]))


def relapse_table(table: pd.DataFrame) -> pd.DataFrame:
    """Relapses by CD19 status: n and time from infusion, months, median (range)."""
    rel = table[table["relapse_day"].notna()]
    rows = []
    for label, mask in (("CD19-negative", rel["relapse_cd19"] == "CD19NEG"),
                        ("CD19-positive", rel["relapse_cd19"] == "CD19POS"), ("all relapses", slice(None))):
        sub = rel[mask]
        rows.append({"relapse": label, "n": len(sub),
                     "months to relapse, median (range)": format_median_range(months(sub["relapse_day"]), digits=1)})
    return captioned(pd.DataFrame(rows).set_index("relapse"),
                     f"Relapses by CD19 status of the relapse, N = {len(table)} patients: number and months from "
                     "infusion to relapse, median (range).")


def plot_cumulative_incidence(table: pd.DataFrame):
    """Cumulative incidence of relapse and NRM (Aalen–Johansen), one panel."""
    import matplotlib.pyplot as plt

    from ..plots import FIGURE_WIDTH_IN, plot_incidence

    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH_IN, 3.8), layout="constrained")
    last = float(months(table["crr_days"]).max())
    plot_incidence({label: (cumulative_incidence(table, cause), "all", last)
                    for cause, label in ((1, "relapse"), (2, "non-relapse mortality"))}, ax=ax)
    return fig


def cumulative_incidence_figure(table: pd.DataFrame, params: dict[str, Any], figures_dir: str = ""):
    """:func:`plot_cumulative_incidence` with its caption and alt text."""
    from ..plots import publish

    h = params["horizon_months"]
    at = {label: cumulative_incidence(table, cause).at(h)[0] for cause, label in ((1, "relapse"), (2, "NRM"))}
    said = "; ".join(f"{k} {'not estimable' if pd.isna(v) else f'{100 * v:.1f} %'}" for k, v in at.items())
    caption = (f"Cumulative incidence of relapse and of non-relapse mortality (NRM, the competing event), N = "
               f"{len(table)}: Aalen–Johansen estimates with 95% log(−log) confidence bands (shaded).")
    alt = (f"Two rising step curves, months since infusion on the x axis (ticked every 12), cumulative incidence "
           f"from 0 to 1 on the y axis; relapse in orange, NRM in pink. At {h:g} months: {said}.")
    return publish(plot_cumulative_incidence(table), "efficacy_cumulative_incidence", caption, alt, figures_dir)


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
    return captioned(pd.DataFrame(rows).set_index("cause"),
                     f"Cumulative incidence of relapse and of non-relapse mortality, N = {len(table)}: Aalen–Johansen "
                     "estimates, % with 95% CI (delta-method variance, log(−log) transform).")


def zph_table(model: CoxModel) -> pd.DataFrame:
    """The proportional-hazards test of a fitted model, formatted (or why it is not available)."""
    caption = ("Proportional-hazards check of the model above (Grambsch–Therneau test as R's cox.zph, "
               "Kaplan–Meier time scale): a small p warns that a hazard ratio changes over time.")
    if model.reason is not None:
        return captioned(pd.DataFrame({"PH test": [not_estimable(model.reason)]}), caption)
    z = model.zph()
    z.index = [{"GLOBAL": "global test"}.get(c, COVARIATE_LABELS.get(c, c)) for c in z.index]
    return captioned(pd.DataFrame({"chi-square": z["chisq"].map(lambda v: f"{v:.3f}"), "df": z["df"].map(lambda v: f"{v:g}"),
                                   "p": z["p"].map(format_p)}).rename_axis("covariate"), caption)


def _events(table: pd.DataFrame, endpoint: str) -> int:
    return int(table[ENDPOINTS[endpoint][1]].sum())


def screen_display(table: pd.DataFrame, endpoint: str, screen, params: dict[str, Any]):
    """The univariable Cox screen of ``endpoint``, captioned with the covariates it selects."""
    from ..tables import selection_sentence

    caption = (f"Univariable Cox regression of {ENDPOINT_NAMES[endpoint].lower()} ({endpoint.upper()}), N = {len(table)}, "
               f"{_events(table, endpoint)} events: hazard ratio (95% Wald CI) and Wald p (Efron ties). "
               + selection_sentence(screen.selected, COVARIATE_LABELS, params["screen_p"]))
    return model_display(screen.table, caption)


def multivariable_display(table: pd.DataFrame, endpoint: str, model: CoxModel, label: str):
    """A multivariable Cox model of ``endpoint`` as the paper prints it, captioned (``label``: e.g. "Table 1A")."""
    return model_display(model.summary, f"{label}. Multivariable Cox regression of {ENDPOINT_NAMES[endpoint].lower()} "
                                         f"({endpoint.upper()}), N = {len(table)}, {_events(table, endpoint)} events: "
                                         "hazard ratio (95% Wald CI) and Wald p (Efron ties).")


def multivariable_forest(table: pd.DataFrame, endpoint: str, model: CoxModel, label: str, figures_dir: str = ""):
    """The forest plot of a multivariable Cox model, captioned and published."""
    title = f"{endpoint.upper()}, multivariable Cox ({label})"
    caption = (f"Forest plot of {label}: hazard ratios of {ENDPOINT_NAMES[endpoint].lower()} with 95% CI on a log "
               f"scale, N = {len(table)}, {_events(table, endpoint)} events; HR < 1 means a lower hazard.")
    return forest_figure(model.summary, f"efficacy_{endpoint}_forest", title, caption, "hr", figures_dir)
