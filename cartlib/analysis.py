"""From a cohort folder to the one-row-per-patient analysis table every section uses.

``cartlib run`` validates the cohort once and hands every notebook a *snapshot*: the
validated tables pickled by pandas into the run's own temporary folder, with the
fingerprint of the input files. A notebook loads the snapshot when given one and otherwise
(run directly in JupyterLab or by papermill) reads and validates the cohort itself.
Pickle rather than Parquet because it round-trips every pandas dtype exactly and needs no
extra dependency; it is only ever read from the folder the same run wrote it to.

>>> from cartlib.params import defaults
>>> p = defaults()
>>> cohort = load(p)                      # the bundled synthetic cohort
>>> table = analysis_table(cohort, p)
>>> len(table) == len(cohort.subjects)
True
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pandas as pd

from .resources import default_cohort_dir

DEFAULT_COHORT = default_cohort_dir()
SNAPSHOT_FORMAT = 1


def load(params: dict[str, Any], snapshot: str | os.PathLike | None = None):
    """Load and validate the cohort of ``params['data']`` (the bundled cohort when None).

    With ``snapshot`` (a file :func:`write_snapshot` made, as ``cartlib run`` passes it),
    the validated tables are read from it instead, after checking that the input files
    still have the snapshot's fingerprint and that ``lloq`` is the same; ``ValueError``
    otherwise.

    >>> import tempfile
    >>> from cartlib.params import defaults
    >>> p = defaults()
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = write_snapshot(load(p), d)
    ...     load(p, snapshot=path).same_data(load(p))
    True
    """
    from .io import load_cohort

    source = params["data"] or DEFAULT_COHORT
    if snapshot is None:
        return load_cohort(source, lloq=params["lloq"])
    return read_snapshot(snapshot, source, lloq=params["lloq"])


def write_snapshot(cohort, folder: str | os.PathLike) -> Path:
    """Write a validated cohort's tables and fingerprint into ``folder``; return the file.

    The file appears complete or not at all (written beside, then renamed).
    """
    target = Path(folder) / "cohort.pkl"
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    payload = {"format": SNAPSHOT_FORMAT, "fingerprint": cohort.fingerprint, "source": cohort.source,
               "lloq": cohort.lloq, "tables": cohort.tables}
    with open(partial, "wb") as fh:
        pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(partial, target)
    return target


def read_snapshot(path: str | os.PathLike, source: str | os.PathLike, lloq: float):
    """The cohort of a :func:`write_snapshot` file, checked against the input ``source``."""
    from .io import Cohort, cohort_fingerprint

    with open(path, "rb") as fh:
        payload = pickle.load(fh)  # our own file, in the run's own temporary folder
    if payload.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"cohort snapshot {path} has format {payload.get('format')!r}, "
                         f"expected {SNAPSHOT_FORMAT}")
    now = cohort_fingerprint(source)
    if now != payload["fingerprint"]:
        raise ValueError(f"cohort snapshot {path} was made from other data than {source} "
                         f"(fingerprint {payload['fingerprint'][:16]}, the files now {now[:16]})")
    if float(lloq) != payload["lloq"]:
        raise ValueError(f"cohort snapshot {path} was made with lloq={payload['lloq']:g}, not {lloq:g}")
    return Cohort(**payload["tables"], source=payload["source"], fingerprint=payload["fingerprint"],
                  lloq=payload["lloq"])


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
