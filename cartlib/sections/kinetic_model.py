"""Section 08: the cellular-kinetic model fitted to every patient, its population summary and
exposure–response (``pk.model.*`` keys; docs/KINETIC_MODEL.md for the method)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..pk.model import FITTED, KineticModelFitter
from ..pk.model_population import LABELS, PARAMETERS, population_summary
from ..stats.compare import correlation
from ..stats.cox import CoxModel
from ..stats.logistic import LogisticModel
from .common import median_or_none, nan_to_none

#: The geometric summaries of the six parameters (overall and by day-28 MRD-negative CR) and
#: the medians of the derived quantities that results.json holds.
DERIVED_KEYS = ("doubling_time", "contraction_half_life", "persistence_half_life", "time_below_lloq")
EXPOSURES = ("cmax", "auc28")
TUMOUR_BURDEN = "preld_mrd_ge_1e-3"
RESPONSE_GROUPS = {1: "mrdcr", 0: "not_mrdcr"}


def fit_cohort(cohort, table: pd.DataFrame, params: dict[str, Any]) -> KineticModelFitter:
    """The model fitted to every patient of the cohort, samples after an HSCT left out.

    >>> from cartlib.io import example_cohort
    >>> from cartlib.analysis import analysis_table
    >>> from cartlib.params import resolve
    >>> c = example_cohort()
    >>> fit_cohort(c, analysis_table(c, resolve()), resolve()).summary["status"].tolist()
    ['not identifiable', 'not identifiable']
    """
    fitter = KineticModelFitter(blq=params["kinetic_blq"], tmax_max=params["kinetic_tmax_max"],
                                auc_end_day=params["auc_end_day"])
    return fitter.fit(cohort.pk, lloq=params["lloq"], end_day=table["hsct_day"])


def exposure_table(table: pd.DataFrame, fitter: KineticModelFitter, params: dict[str, Any]) -> pd.DataFrame:
    """The analysis table joined with the model's per-patient columns (``model_*``) and the
    exposure measures of the exposure–response models: ``log10_cmax`` and ``log10_auc28`` from
    NCA or from the model (parameter ``kinetic_exposure``), and ``log2_persistence``, log2 of
    the model's predicted day below the LLOQ."""
    out = table.join(fitter.analysis_columns(), how="left")
    source = {"nca": {"cmax": "cmax", "auc28": "auc28"},
              "model": {"cmax": "model_cmax", "auc28": "model_auc28"}}[params["kinetic_exposure"]]
    with np.errstate(divide="ignore", invalid="ignore"):
        for name, column in source.items():
            values = out[column].astype(float)
            out[f"log10_{name}"] = np.log10(values.where(values > 0))
        persistence = out["model_time_below_lloq"].astype(float)
        out["log2_persistence"] = np.log2(persistence.where(persistence > 0))
    return out


def exposure_response(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The exposure–response models, each summary indexed by covariate.

    ``scrs``: grade ≥ 3 CRS on log10 exposure (one model per exposure); ``scrs_adj``: the same
    adjusted for pre-LD MRD ≥ 10⁻³; ``mrdcr``: day-28 MRD-negative CR on log10 exposure;
    ``lfs``: Cox model of LFS on log2 model persistence; ``bca``: Spearman correlations of
    BCA duration with model persistence and with NCA Tlast.
    """
    out: dict[str, pd.DataFrame] = {}
    for model, outcome, extra in (("scrs", "crs_ge_3", []), ("scrs_adj", "crs_ge_3", [TUMOUR_BURDEN]),
                                  ("mrdcr", "d28_mrd_neg", [])):
        parts = []
        for exposure in EXPOSURES:
            fit = LogisticModel().fit(data, outcome, [f"log10_{exposure}", *extra])
            rows = fit.summary.copy()
            rows["reason"] = rows["reason"].where(rows["reason"].notna(), fit.reason)
            rows.index = [f"{exposure}" if i.startswith("log10_") else f"{exposure}.{i}" for i in rows.index]
            parts.append(rows)
        out[model] = pd.concat(parts)
    cox = CoxModel().fit(data, "lfs_days", "lfs_event", ["log2_persistence"])
    out["lfs"] = cox.summary.rename(index={"log2_persistence": "persistence"})
    rows = {}
    for name, column in (("persistence", "model_time_below_lloq"), ("tlast", "tlast")):
        r = correlation(data[column], data["bca_duration_days"], method="spearman")
        rows[name] = {"r": r.estimate, "p": r.p_value, "n": r.n, "reason": r.reason}
    out["bca"] = pd.DataFrame(rows).T
    return out


def results(cohort, table: pd.DataFrame, params: dict[str, Any], fitter: KineticModelFitter | None = None
            ) -> dict[str, Any]:
    """pk.model.* keys (``fitter``: an existing fit of this cohort, to avoid fitting twice)."""
    fitter = fitter or fit_cohort(cohort, table, params)
    s = fitter.summary
    counts = s["status"].value_counts()
    fitted = s["status"].isin(FITTED).any()
    out: dict[str, Any] = {
        "pk.model.n_patients": len(s),
        "pk.model.n_converged": int(counts.get("converged", 0)),
        "pk.model.n_partly_identifiable": int(counts.get("partly identifiable", 0)),
        "pk.model.n_not_identifiable": int(counts.get("not identifiable", 0)),
        "pk.model.n_not_converged": int(counts.get("not converged", 0)),
        "pk.model.sigma": fitter.sigma_ if fitted else None,
    }
    pop = population_summary(s, quantities=PARAMETERS)
    for q in PARAMETERS:
        for stat in ("n", "geomean", "geocv_pct"):
            out[f"pk.model.{q}.{stat}"] = nan_to_none(pop.loc[q, stat])
    by = population_summary(s, by=table["d28_mrd_neg"], quantities=PARAMETERS)
    for group, label in RESPONSE_GROUPS.items():
        for q in PARAMETERS:
            value = by["geomean"].get((group, q)) if (group, q) in by.index else None
            out[f"pk.model.{q}.{label}.geomean"] = nan_to_none(value)
    ok = s["status"].isin(FITTED)
    for q in DERIVED_KEYS:
        out[f"pk.model.{q}.median"] = median_or_none(s.loc[ok, q])
    er = exposure_response(exposure_table(table, fitter, params))
    for model in ("scrs", "scrs_adj", "mrdcr"):
        for exposure in EXPOSURES:
            row = er[model].loc[exposure]
            for stat in ("or", "or_lo", "or_hi", "p"):
                out[f"pk.model.er.{model}.{exposure}.{stat}"] = nan_to_none(row[stat])
    for exposure in EXPOSURES:
        row = er["scrs_adj"].loc[f"{exposure}.{TUMOUR_BURDEN}"]
        out[f"pk.model.er.scrs_adj.{exposure}.mrd_or"] = nan_to_none(row["or"])
        out[f"pk.model.er.scrs_adj.{exposure}.mrd_p"] = nan_to_none(row["p"])
    for stat in ("hr", "hr_lo", "hr_hi", "p"):
        out[f"pk.model.er.lfs.persistence.{stat}"] = nan_to_none(er["lfs"].loc["persistence", stat])
    for name in ("persistence", "tlast"):
        for stat in ("r", "p"):
            out[f"pk.model.er.bca.{name}.{stat}"] = nan_to_none(er["bca"].loc[name, stat])
    return out


# -- displays for notebook 08 ---------------------------------------------------------------

def status_table(fitter: KineticModelFitter) -> pd.DataFrame:
    """How many fits ended in each status, with each reason."""
    s = fitter.summary
    reasons = s["reason"].fillna("—")
    return (pd.DataFrame({"status": s["status"], "reason": reasons}).value_counts()
            .rename("patients").reset_index().set_index(["status", "reason"]))


def fits_head(fitter: KineticModelFitter, n: int = 8) -> pd.DataFrame:
    """The first patients' parameters and SEs, rounded to 3 significant digits, as text."""
    s = fitter.summary.head(n)
    cols = {}
    for q in PARAMETERS:
        cols[LABELS[q]] = [_estimate_se(v, se) for v, se in zip(s[q], s[f"{q}_se"])]
    cols["status"] = s["status"]
    return pd.DataFrame(cols, index=s.index)


def _estimate_se(value, se) -> str:
    if not np.isfinite(value):
        return "–"
    text = f"{value:.3g}"
    return f"{text} ({se:.2g})" if np.isfinite(se) else text


def derived_table(fitter: KineticModelFitter, table: pd.DataFrame) -> pd.DataFrame:
    """Median (IQR) of the derived quantities over identifiable fits, beside NCA Tlast."""
    s = fitter.summary[fitter.summary["status"].isin(FITTED)]
    rows = {LABELS[q]: s[q] for q in DERIVED_KEYS}
    rows["NCA Tlast (last quantifiable day), days"] = table["tlast"]
    out = {}
    for label, values in rows.items():
        v = pd.Series(values, dtype=float).dropna()
        out[label] = {"n": len(v), "median (IQR)": "–" if v.empty else
                      f"{v.median():.3g} ({v.quantile(0.25):.3g}–{v.quantile(0.75):.3g})"}
    return pd.DataFrame(out).T


def exposure_response_table(er: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every exposure–response estimate as text: OR or HR (95 % CI), p, for the notebook."""
    from ..tables import format_p

    rows = []
    titles = {"scrs": "CRS ≥ 3 on exposure", "scrs_adj": "CRS ≥ 3 on exposure + pre-LD MRD ≥ 10⁻³",
              "mrdcr": "day-28 MRD-negative CR on exposure"}
    for model, title in titles.items():
        for name, r in er[model].iterrows():
            label = (f"pre-LD MRD ≥ 10⁻³ (model with {'Cmax' if name.startswith('cmax') else 'AUC0–28d'})"
                     if name.endswith(TUMOUR_BURDEN) else name)
            rows.append({"model": title, "term": _term(label), "estimate (95% CI)": _ratio(r, "or"),
                         "p": format_p(r["p"])})
    r = er["lfs"].loc["persistence"]
    rows.append({"model": "LFS (Cox)", "term": "model persistence (per doubling)",
                 "estimate (95% CI)": _ratio(r, "hr"), "p": format_p(r["p"])})
    for name, r in er["bca"].iterrows():
        rows.append({"model": "BCA duration (Spearman)", "term": "model persistence" if name == "persistence"
                     else "NCA Tlast", "estimate (95% CI)": "–" if pd.isna(r["r"]) else f"r = {r['r']:.3f}",
                     "p": format_p(r["p"])})
    return pd.DataFrame(rows).set_index(["model", "term"])


def _term(label: str) -> str:
    return {"cmax": "Cmax (per 10-fold)", "auc28": "AUC0–28d (per 10-fold)"}.get(label, label)


def _ratio(r, est: str) -> str:
    if pd.isna(r[est]):
        return f"not estimable ({r.get('reason') or 'no estimate'})"
    return f"{r[est]:.2f} ({r[f'{est}_lo']:.2f}–{r[f'{est}_hi']:.2f})"


def plot_exposure_response(er: dict[str, pd.DataFrame], ax=None):
    """Forest plot of the odds ratios per 10-fold exposure (unadjusted and adjusted)."""
    from ..plots import plot_forest

    parts = []
    for model, tag in (("scrs", "CRS≥3"), ("scrs_adj", "CRS≥3 adj."), ("mrdcr", "MRD-neg CR")):
        rows = er[model].loc[list(EXPOSURES)].copy()
        rows.index = [f"{tag}: {'Cmax' if e == 'cmax' else 'AUC0–28d'}" for e in rows.index]
        parts.append(rows)
    data = pd.concat(parts)
    return plot_forest(data, ax=ax, estimate="or", lower="or_lo", upper="or_hi", xlabel="Odds ratio (95% CI)")


def by_response_table(fitter: KineticModelFitter, table: pd.DataFrame) -> pd.DataFrame:
    """Geometric mean (n) of each parameter among day-28 MRD-negative CR patients and the others."""
    pop = population_summary(fitter.summary, by=table["d28_mrd_neg"], quantities=PARAMETERS)
    out = {}
    for group, label in ((1, "MRD-negative CR"), (0, "other patients")):
        out[label] = [("–" if (group, q) not in pop.index or pop.loc[(group, q), "n"] == 0 else
                       f"{pop.loc[(group, q), 'geomean']:.3g} (n = {pop.loc[(group, q), 'n']})") for q in PARAMETERS]
    return pd.DataFrame(out, index=[LABELS[q] for q in PARAMETERS])


def two_phase_figure(params: dict[str, Any], figures_dir: str = ""):
    """The model explained: Stein 2019's typical curve with its two declining fractions."""
    from ..pk.model_plots import plot_two_phases
    from ..plots.style import publish

    return publish(plot_two_phases(lloq=params["lloq"]), "kinetic_model_phases",
                   "The expansion–contraction model with Stein 2019's typical values: exponential expansion to "
                   "Cmax at Tmax, then the effector fraction (1 − FB) contracts at rate α and the persisting "
                   "fraction FB declines at rate β; the sum (blue) is the level measured by qPCR.",
                   "Log-scale CAR-T level against days after infusion on a symmetric-log axis: a straight rise to "
                   "a peak near day 9, a steep fall (orange dashed, effector cells) and a nearly flat tail (green "
                   "dashed, persisting cells) that the total curve follows after about two months.", figures_dir)


#: the largest cohort whose every fit is saved as one page of small multiples (beyond about 80
#: panels a page of 9.4 in is too small to read)
MAX_PANELS_ALL = 80


def fits_figure(fitter: KineticModelFitter, figures_dir: str = "", panels: int = 12):
    """The fits on one page: every patient's fitted curve and samples overlaid, then ``panels``
    representative patients (evenly spaced in fit quality, best first; the rule of
    :func:`cartlib.pk.model_plots.representative_patients`). With ``figures_dir``, every
    patient's fit as small multiples is saved beside it as ``kinetic_model_fits_all``."""
    import matplotlib.pyplot as plt

    from ..pk.model_plots import plot_fit_overview, plot_fits
    from ..plots.style import publish, save_figure

    n = len(fitter.ids_)
    counts = fitter.summary["status"].value_counts()
    statuses = "; ".join(f"{k} {v}" for k, v in counts.items())
    every = ""
    if figures_dir and n <= MAX_PANELS_ALL:
        fig = plot_fits(fitter, ncols=5).figure   # five panels a row: a title of two lines fits each
        save_figure(fig, figures_dir, "kinetic_model_fits_all", tight=False)
        plt.close(fig)
        every = " Every patient's fit: kinetic_model_fits_all (SVG, PNG) in the figures folder."
    elif figures_dir:
        every = (f" The page of every patient's fit is written for cohorts of up to {MAX_PANELS_ALL} patients "
                 "(its panels would be too small to read); KineticModelFitter.plot_fits draws any subset.")
    shown = f"{panels} patients at evenly spaced ranks of fit quality" if panels < n else "every patient"
    return publish(plot_fit_overview(fitter, k=panels), "kinetic_model_fits",
                   f"Kinetic-model fits of all {n} patients (statuses: {statuses}). Top: every fitted curve (blue) "
                   "with every quantified sample (dots) and BLQ sample (open triangles at the LLOQ, dotted; the true "
                   f"level is below). Below: {shown}, from the closest fit to the worst (RMS: root-mean-square "
                   "standardised residual of the quantified samples; a status is named where the curve is not a "
                   "fit). Log axes." + every,
                   f"Top: a wide log–log panel of {n} overlaid rise-and-fall curves through a cloud of sample points, "
                   "with open triangles on the LLOQ line. Below: a grid of small log–log panels, one per selected "
                   "patient, each with its samples and fitted curve; the residual size grows from the first panel "
                   "to the last.", figures_dir, tight=False)


def gof_figure(fitter: KineticModelFitter, figures_dir: str = ""):
    """Goodness of fit: observed vs predicted and residuals vs time."""
    from ..plots.style import publish

    axes = fitter.plot_gof()
    return publish(axes[0].figure, "kinetic_model_gof",
                   "Goodness of fit over the quantified samples of fitted patients: observed against predicted "
                   "level (left, identity line) and standardised residuals (log-scale residual / σ) against time "
                   "(right, ±2 dotted). BLQ samples enter the likelihood as censored and have no residual.",
                   "Left: scatter of observed against predicted levels on log axes around the identity line. "
                   "Right: residuals against days after infusion scattered around zero, mostly within ±2.",
                   figures_dir)


def exposure_response_figure(er: dict[str, pd.DataFrame], figures_dir: str = ""):
    """Forest plot of the exposure–response odds ratios."""
    from ..plots.style import publish

    ax = plot_exposure_response(er)
    return publish(ax.figure, "kinetic_model_exposure_response",
                   "Odds ratios (95 % Wald CI, log axis) per 10-fold higher Cmax or AUC0–28d for grade ≥ 3 CRS "
                   "(alone and adjusted for pre-LD MRD ≥ 10⁻³) and for day-28 MRD-negative CR.",
                   "Forest plot: one row per exposure and outcome, a point with a horizontal confidence interval "
                   "on a log odds-ratio axis, with the line of no effect at 1.", figures_dir)
