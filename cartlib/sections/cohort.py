"""Section 00: the cohort (baseline characteristics, follow-up)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..params import mrd_label
from ..stats.survival import median_followup
from .common import max_or_none, median_or_none, min_or_none, months

INDICATIONS = ("CHEMO_INTOLERANCE", "MRD_REEMERGENCE", "MRD_PERSISTENT")
MRD_CUTOFFS = (1e-4, 1e-3, 1e-2)


def results(cohort, table: pd.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    """cohort.* keys: size, sex, indication, dose, MRD categories, follow-up."""
    fu = months(table["os_days"])
    out: dict[str, Any] = {
        "cohort.n": len(table),
        "cohort.female_n": int(table["female"].sum()),
        "cohort.followup_median_mo": median_or_none(fu),
        "cohort.followup_min_mo": min_or_none(fu),
        "cohort.followup_max_mo": max_or_none(fu),
        "cohort.followup_reverse_km_mo": median_followup(fu, table["os_event"], method="reverse_km"),
        "cohort.dose_median": median_or_none(table["DOSE"]),
        "cohort.dose_min": min_or_none(table["DOSE"]),
        "cohort.dose_max": max_or_none(table["DOSE"]),
        "cohort.dx_to_inf_median_mo": median_or_none(table["DX_TO_INF_MO"]),
        "cohort.dx_to_inf_min_mo": min_or_none(table["DX_TO_INF_MO"]),
        "cohort.dx_to_inf_max_mo": max_or_none(table["DX_TO_INF_MO"]),
        "cohort.age_le_10_n": int((table["AGE"] <= 10).sum()),
        "cohort.prior_hsct_n": int(table["prior_hsct"].sum()),
        "cohort.prior_cart_n": int(table["prior_cart"].sum()),
        "cohort.genrisk_high_n": int(table["genrisk_high"].sum()),
    }
    for code in INDICATIONS:
        out[f"cohort.indication.{code}_n"] = int((table["INDICATION"] == code).sum())
    for when, col in (("preld", "MRD_PRELD"), ("postld", "MRD_POSTLD")):
        for cut in MRD_CUTOFFS:
            out[f"cohort.{when}_mrd_lt_{mrd_label(cut)}_n"] = int((table[col] < cut).sum())
    return out


# -- displays for notebook 00 ---------------------------------------------------------------

def table_sizes(cohort) -> pd.DataFrame:
    """Rows and patients per loaded table."""
    from ..tables import captioned

    rows = [(name, len(df), df["USUBJID"].nunique()) for name, df in cohort.tables.items()]
    return captioned(pd.DataFrame(rows, columns=["table", "rows", "patients"]).set_index("table"),
                     "The cohort's tables as loaded and validated: rows and patients per table.")


def followup_table(table: pd.DataFrame) -> pd.DataFrame:
    """Median follow-up in months: the paper's simple median (with range) and the reverse KM median."""
    fu = months(table["os_days"])
    reverse = median_followup(fu, table["os_event"], method="reverse_km")
    from ..tables import captioned

    return captioned(pd.DataFrame({"months": [f"{fu.median():.1f} ({fu.min():.1f}–{fu.max():.1f})",
                                              "not reached" if pd.isna(reverse) else f"{reverse:.1f}"]},
                                  index=pd.Index(["median (range) of observation times (paper)",
                                                  "reverse Kaplan–Meier median"], name="follow-up")),
                     f"Follow-up after infusion, N = {len(table)}, months: the paper's median of all observation "
                     "times, and the reverse Kaplan–Meier median (censoring as the event).")


def baseline_display(table: pd.DataFrame):
    """The baseline table (the paper's Table S1), captioned."""
    from ..tables import baseline_table, captioned

    return captioned(baseline_table(table),
                     f"Table S1. Baseline characteristics, N = {len(table)}: n (%) or median (range). MRD: bone-marrow "
                     "flow MRD before and after lymphodepletion (LD).")


def swimmer_figure(table: pd.DataFrame, figures_dir: str = ""):
    """Every patient's course (swimmer plot), captioned and published."""
    from ..plots import plot_swimmer, publish

    n = len(table)
    return publish(plot_swimmer(table), "cohort_swimmer",
                   f"Every patient's course after CAR-T infusion, N = {n}, longest follow-up on top: bar to last contact; "
                   "markers for day-28 response (filled diamond MRD-negative CR, open diamond MRD-positive CR/CRi, "
                   "open square no CR/CRi), HSCT, relapse by CD19 status, death by cause, and an arrow when alive.",
                   f"Swimmer plot: {n} horizontal bars labelled by pseudonymous patient id, months since infusion on "
                   f"the x axis (ticked every 12); {int(table['os_event'].sum())} bars end in a death cross, "
                   f"{int(table['hsct_after'].sum())} carry an HSCT marker and {int(table['relapse_day'].notna().sum())} "
                   "a relapse circle; the legend on the right names every marker.", figures_dir)
