"""From a cohort folder to the one-row-per-patient analysis table every section uses.

>>> from cartlib.params import defaults
>>> p = defaults()
>>> cohort = load(p)                      # the bundled synthetic cohort
>>> table = analysis_table(cohort, p)
>>> len(table) == len(cohort.subjects)
True
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from .resources import default_cohort_dir

DEFAULT_COHORT = default_cohort_dir()


def load(params: dict[str, Any]):
    """Load and validate the cohort of ``params['data']`` (the bundled cohort when None)."""
    from .io import load_cohort

    return load_cohort(params["data"] or DEFAULT_COHORT, lloq=params["lloq"])


def analysis_table(cohort, params: dict[str, Any]) -> pd.DataFrame:
    """Derived endpoints (``derive_analysis_table``), NCA parameters and the IL-6 flag, one row a patient.

    Patients without any PK sample get missing PK parameters, no expansion and zero sample counts.
    """
    from .bca import derive_il6_elevated
    from .derive import derive_analysis_table
    from .pk.nca import NCARules, nca

    table = derive_analysis_table(cohort)
    pk = nca(cohort.pk, NCARules.from_params(params)).reindex(table.index)
    for col in ("expansion", "n_samples", "n_blq"):
        if col in pk:
            pk[col] = pk[col].fillna(0).astype(int)
    table = table.join(pk, how="left")
    table["il6_elevated"] = derive_il6_elevated(table, uln=params["il6_uln"]).astype(int)
    return table
