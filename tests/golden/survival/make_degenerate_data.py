"""Input data of the degenerate-model goldens (make_golden_degenerate.R here and in ../glm).

A synthetic CAR-T cohort (``cartlib.synth.generate_cohort(80, seed=4)``, 80 patients, 25 OS
deaths) turned into a cohort where nobody had ICANS, with the columns a model can trip on:

- ``icans`` = 0 for everyone, missing for patients 7 and 30 (grade not recorded): constant
  once R's ``na.omit`` has removed those rows;
- ``prior_cart`` next to ``no_prior_cart`` (= 1 - prior_cart) and ``prior_hsct`` next to
  ``no_prior_hsct``: aliased with the earlier column (and the intercept);
- ``bca_duration_weeks`` = ``bca_duration_days`` / 7: aliased by a change of unit;
- ``il6_unmeasured``: missing for every patient.

Run from the repository root: ``python tests/golden/survival/make_degenerate_data.py``; it
writes ``degenerate_cohort.csv`` here and ``data_degenerate.csv`` in ../glm. The committed
CSVs are the goldens' inputs; the tests read them, never this script.
"""
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ["time_mo", "event", "crs_ge_3", "female", "no_prior_cart", "prior_cart", "no_prior_hsct", "prior_hsct",
           "neutropenia_g4", "icans", "hsct_after", "preld_mrd_lt_1e3", "dose_lt_median", "bca_duration_days",
           "bca_duration_weeks", "il6_unmeasured"]


def main():
    import tempfile

    import numpy as np

    from cartlib.analysis import analysis_table
    from cartlib.io import load_cohort
    from cartlib.params import defaults
    from cartlib.sections.common import survival_data
    from cartlib.synth import generate_cohort, write_cohort

    with tempfile.TemporaryDirectory() as folder:
        write_cohort(generate_cohort(80, seed=4), folder)
        table = analysis_table(load_cohort(folder), defaults())
    d = survival_data(table, "os").reset_index(drop=True)
    d["icans"] = 0.0
    d.loc[[6, 29], "icans"] = np.nan
    d["preld_mrd_lt_1e3"] = d["preld_mrd_lt_1e-3"]
    d["bca_duration_weeks"] = d["bca_duration_days"] / 7
    d["il6_unmeasured"] = np.nan
    d["time_mo"] = d["time_mo"].round(6)
    d = d[COLUMNS]
    d.to_csv(HERE / "degenerate_cohort.csv", index=False, float_format="%.15g")
    d.to_csv(HERE.parent / "glm" / "data_degenerate.csv", index=False, float_format="%.15g")


if __name__ == "__main__":
    main()
