"""Section 02: toxicity (CRS, ICANS, neutropenia, infections, IL-6, logistic models of severe CRS)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..bca import il6_association
from ..stats.logistic import LogisticModel, logistic_screen
from ..tables import captioned, format_ci, format_median_range, format_p, format_pct, not_estimable, selection_sentence
from .common import (COVARIATE_LABELS, forest_figure, max_or_none, median_or_none, min_or_none,  # noqa: F401
                     model_display, model_keys, paper_sentence)

OR_KEYS = {"or": "or", "or_lo": "or_lo", "or_hi": "or_hi", "p": "p"}
INFECTION_TYPES = ("BACTERIAL", "CMV", "EBV", "FUNGAL")


def infections_by_type(adverse_events: pd.DataFrame) -> dict[str, int]:
    """Patients with at least one infection of each DETAIL type (a patient may count in several)."""
    inf = adverse_events[adverse_events["TERM"] == "INFECTION"]
    detail = inf["DETAIL"] if "DETAIL" in inf else pd.Series("", index=inf.index)
    return {t: int(inf.loc[detail.astype(str).str.upper() == t, "USUBJID"].nunique()) for t in INFECTION_TYPES}


def severe_crs_screen(table: pd.DataFrame, params: dict[str, Any]):
    """Univariable logistic screen of grade-≥3 CRS: (table, covariates with p < screen_p)."""
    return logistic_screen(table, "crs_ge_3", params["scrs_covariates"], screen_p=params["screen_p"])


def icans_screen(table: pd.DataFrame, params: dict[str, Any]):
    """Univariable logistic screen of ICANS on the severe-CRS covariates (too few events for more)."""
    return logistic_screen(table, "icans", params["scrs_covariates"], screen_p=params["screen_p"])


def severe_crs_model(table: pd.DataFrame, covariates: list[str]) -> LogisticModel:
    """Multivariable logistic model of grade-≥3 CRS (the paper's Table 2 models 1 and 2)."""
    return LogisticModel().fit(table, "crs_ge_3", covariates)


def results(cohort, table: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """toxicity.* keys."""
    n = len(table)
    out: dict[str, Any] = {
        "toxicity.crs_any_n": int((table["crs_grade"] >= 1).sum()),
        "toxicity.crs_ge_3_n": int(table["crs_ge_3"].sum()),
        "toxicity.icans_n": int(table["icans"].sum()),
        "toxicity.neutropenia_g4_n": int(table["neutropenia_g4"].sum()),
        "toxicity.infection_n": int((table["infection_grade"] >= 1).sum()),
        "toxicity.hlh_n": int((table["hlh_grade"] >= 1).sum()),
        "toxicity.gvhd_n": int((table["gvhd_grade"] >= 1).sum()),
        "toxicity.tocilizumab_n": int(table["tocilizumab"].sum()),
        "toxicity.corticosteroid_n": int(table["corticosteroid"].sum()),
        "toxicity.il6_elevated_n": int(table["il6_elevated"].sum()),
    }
    # the paper's IL-6 figures (33.3 pg/mL, range 7.6 to >5000, day 8) describe the elevated patients
    elevated = table[table["il6_elevated"] == 1]
    out.update({
        "toxicity.il6_peak_median": median_or_none(elevated["il6_peak"]),
        "toxicity.il6_peak_day_median": median_or_none(elevated["il6_peak_day"]),
        "toxicity.il6_peak_day_min": min_or_none(elevated["il6_peak_day"]),
        "toxicity.il6_peak_day_max": max_or_none(elevated["il6_peak_day"]),
    })
    for name in ("crs_any", "crs_ge_3", "icans"):
        out[f"toxicity.{name.replace('_any', '')}_rate"] = out[f"toxicity.{name}_n"] / n if n else None
    for kind, k in infections_by_type(cohort.adverse_events).items():
        out[f"toxicity.infection.{kind}_n"] = k
    out.update(model_keys("toxicity.scrs.uni", severe_crs_screen(table, params).table, OR_KEYS))
    out.update(model_keys("toxicity.icans.uni", icans_screen(table, params).table, {"or": "or", "p": "p"}))
    for model in ("scrs_model1", "scrs_model2"):
        fit = severe_crs_model(table, params[model])
        out.update(model_keys(f"toxicity.scrs.{model.split('_')[1]}", fit.summary, OR_KEYS))
    assoc = il6_association(table, uln=params["il6_uln"])
    for outcome, name in (("crs_ge_3", "scrs"), ("icans", "icans")):
        out[f"toxicity.il6_{name}_or"] = assoc.loc[outcome, "or"]
        out[f"toxicity.il6_{name}_p"] = assoc.loc[outcome, "p"]
    return out


# -- displays for notebook 02 ---------------------------------------------------------------

TERMS = {"crs": "CRS", "icans": "ICANS", "neutropenia": "Neutropenia", "infection": "Infection",
         "hlh": "HLH", "gvhd": "GVHD"}


def grade_table(table: pd.DataFrame) -> pd.DataFrame:
    """Patients by maximum grade of each adverse-event term, n (%), and any grade / grade ≥ 3."""
    n = len(table)
    rows = []
    for term, label in TERMS.items():
        g = table[f"{term}_grade"]
        row = {"event": label}
        for grade in range(1, 6):
            row[f"grade {grade}"] = format_pct((g == grade).sum(), n)
        row["any grade"] = format_pct((g >= 1).sum(), n)
        row["grade ≥ 3"] = format_pct((g >= 3).sum(), n)
        rows.append(row)
    return captioned(pd.DataFrame(rows).set_index("event"),
                     f"Adverse events within four weeks of infusion by each patient's maximum grade, N = {n}, n (%). "
                     "CRS and ICANS graded by ASTCT 2018, other events by CTCAE v5."
                     + paper_sentence([("CRS", "toxicity.crs_any_n", "{} patients"), ("ICANS", "toxicity.icans_n", "{} patients")]))


def management_table(cohort, table: pd.DataFrame) -> pd.DataFrame:
    """Infections by type and toxicity management (tocilizumab, corticosteroids), n (%)."""
    n = len(table)
    rows = [(f"infection: {kind.lower()}", k) for kind, k in infections_by_type(cohort.adverse_events).items()]
    rows += [("tocilizumab", int(table["tocilizumab"].sum())), ("corticosteroids", int(table["corticosteroid"].sum()))]
    return captioned(pd.DataFrame([(label, format_pct(k, n)) for label, k in rows],
                                  columns=["", "patients, n (%)"]).set_index(""),
                     f"Infections by type (a patient may count under several) and toxicity management, N = {n}, n (%).")


def il6_table(table: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """IL-6 peak summary and its association with severe CRS and ICANS (2×2 OR, Fisher p)."""
    n = len(table)
    elevated = table["il6_elevated"] == 1
    rows = [("elevated IL-6 (peak > ULN)", format_pct(elevated.sum(), n)),
            ("peak, pg/mL, median (range)", format_median_range(table.loc[elevated, "il6_peak"], digits=1)),
            ("day of peak, median (range)", format_median_range(table.loc[elevated, "il6_peak_day"], digits=0))]
    assoc = il6_association(table, uln=params["il6_uln"])
    for outcome, label in (("crs_ge_3", "grade ≥ 3 CRS"), ("icans", "ICANS")):
        r = assoc.loc[outcome]
        if pd.isna(r["or"]):
            odds = not_estimable(r["reason"])
        elif pd.isna(r["or_lo"]):   # an estimate of 0 or without a Woolf interval
            odds = f"{r['or']:.3f} (95% CI {not_estimable(r['reason'])})"
        else:
            odds = format_ci(r["or"], r["or_lo"], r["or_hi"], digits=3)
        rows.append((f"elevated IL-6 → {label}: OR (95% CI), Fisher p", f"{odds}, p {format_p(r['p'])}"))
    return captioned(pd.DataFrame(rows, columns=["IL-6", "value"]).set_index("IL-6"),
                     f"IL-6 in days 0–28, N = {n}: elevated peak (> {params['il6_uln']:g} pg/mL), its size and day among "
                     "patients with an elevated peak, and its association with grade ≥ 3 CRS and ICANS "
                     "(2×2 odds ratio with Woolf 95% CI, Fisher's exact p).")


MODEL_TITLES = {"scrs_model1": "Table 2, model 1", "scrs_model2": "Table 2, model 2"}


def _or_caption(table: pd.DataFrame, what: str, outcome: str) -> str:
    return (f"{what} of {'grade ≥ 3 CRS' if outcome == 'crs_ge_3' else 'ICANS'}, N = {len(table)}, "
            f"{int(table[outcome].sum())} events: odds ratio (95% Wald CI) and Wald p (maximum likelihood, as R's glm).")


def screen_display(table: pd.DataFrame, screen, params: dict[str, Any], outcome: str = "crs_ge_3"):
    """A univariable logistic screen, captioned with the covariates it selects."""
    caption = _or_caption(table, "Univariable logistic regression", outcome)
    if outcome == "crs_ge_3":
        caption += " " + selection_sentence(screen.selected, COVARIATE_LABELS, params["screen_p"])
    return model_display(screen.table, caption, estimate="or")


def model_display_scrs(table: pd.DataFrame, name: str, model: LogisticModel):
    """One of the paper's multivariable models of severe CRS (``scrs_model1``/``scrs_model2``), captioned."""
    return model_display(model.summary, f"{MODEL_TITLES[name]}. " + _or_caption(table, "Multivariable logistic regression",
                                                                                "crs_ge_3"), estimate="or")


def model_forest(table: pd.DataFrame, name: str, model: LogisticModel, figures_dir: str = ""):
    """The forest plot of a multivariable model of severe CRS, captioned and published."""
    title = f"Grade ≥ 3 CRS, {MODEL_TITLES[name]}"
    caption = (f"Forest plot of {MODEL_TITLES[name]}: odds ratios of grade ≥ 3 CRS with 95% CI on a log scale, "
               f"N = {len(table)}, {int(table['crs_ge_3'].sum())} events; OR < 1 means protection.")
    return forest_figure(model.summary, f"toxicity_{name}_forest", title, caption, "or", figures_dir)


def grade_figure(table: pd.DataFrame, figures_dir: str = ""):
    """Stacked bars of patients by maximum grade per event, captioned and published."""
    from ..plots import plot_grade_bars, publish

    n = len(table)
    said = ", ".join(f"{label} {int((table[f'{t}_grade'] >= 1).sum())}/{n}"
                     for t, label in (("crs", "CRS"), ("icans", "ICANS"), ("neutropenia", "neutropenia"),
                                      ("infection", "infection")))
    return publish(plot_grade_bars(table), "toxicity_grades",
                   f"Patients by maximum grade of CRS, ICANS, neutropenia and infection within four weeks, N = {n}; "
                   "bar height = patients with the event (any grade), written above each bar.",
                   f"Stacked bar chart, one bar per event, coloured by grade 1 to 4 or 5. Patients with the event: {said}.",
                   figures_dir)


def il6_figure(cohort, table: pd.DataFrame, params: dict[str, Any], figures_dir: str = ""):
    """IL-6 courses over days 0–28 coloured by CRS grade, captioned and published."""
    from ..plots import plot_il6, publish

    il6 = cohort.labs[cohort.labs["TEST"].astype(str).str.upper().eq("IL6")]
    n = il6["USUBJID"].nunique()
    return publish(plot_il6(cohort.labs, table, uln=params["il6_uln"]), "toxicity_il6",
                   f"IL-6 over days 0–28 after infusion, one line per patient (n = {n} with IL-6 values), log scale, "
                   f"coloured by maximum CRS grade; dashed line: upper limit of normal ({params['il6_uln']:g} pg/mL).",
                   "Line chart of IL-6 in pg/mL on a log axis against days 0 to 28 (ticked weekly); blue lines for "
                   "patients with CRS grade 0–2, vermillion for grade 3 or more, which mostly peak higher in the "
                   "first two weeks.", figures_dir)
