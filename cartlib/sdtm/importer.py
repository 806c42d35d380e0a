"""``cartlib import-sdtm``: SDTM datasets in, a contract cohort folder and its mapping report out."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import CohortError, Violation
from ..validate import TABLES
from .convert import Conversion
from .domains import shown_value
from .mapping import load_mapping
from .report import render_report

__all__ = ["SdtmImport", "import_sdtm", "write_imported", "REPORT_FILE"]

REPORT_FILE = "mapping_report.txt"


@dataclass(frozen=True)
class SdtmImport:
    """The result of :func:`import_sdtm`: the six contract tables (text cells, as a CSV holds
    them) and, per domain, the records read, used and dropped (by reason)."""

    tables: dict[str, pd.DataFrame]
    report: dict[str, dict]
    source: str

    def report_text(self) -> str:
        """The mapping report (no dates: counts, names and codes)."""
        counts = {table: len(self.tables[table]) for table in TABLES}
        return render_report(self.report, counts, self.source)


def import_sdtm(sdtm_dir: str | Path, mapping: str | Path | dict | None = None) -> SdtmImport:
    """Read SDTM datasets and convert them to the cohort contract as ``mapping`` says.

    Parameters
    ----------
    sdtm_dir : str or pathlib.Path
        Folder of ``<domain>.xpt`` or ``<domain>.sas7bdat`` files (``dm.xpt``, ``ae.xpt``, ...).
    mapping : str, pathlib.Path or dict, optional
        A mapping YAML file, or a mapping already loaded with :func:`~cartlib.sdtm.load_mapping`;
        default the packaged ``parameters/sdtm_mapping.yaml``.

    Returns
    -------
    SdtmImport

    Raises
    ------
    CohortError
        Every problem at once, each naming file, row, variable and value: a missing domain or
        variable, an unknown code or unit, a date that cannot be read, a subject without
        infusion date, a USUBJID not in DM.
    MappingError
        The mapping file is not usable.

    Examples
    --------
    >>> import tempfile
    >>> from cartlib.sdtm import write_sdtm
    >>> from cartlib.synth import generate_cohort
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = write_sdtm(generate_cohort(3, seed=0), Path(d), seed=0)
    ...     result = import_sdtm(d)
    >>> list(result.tables["subjects"]["USUBJID"])
    ['SYN-1', 'SYN-2', 'SYN-3']
    """
    folder = Path(sdtm_dir)
    if not folder.is_dir():
        raise CohortError([Violation("SDTM", None, None, None, f"{folder} is not a folder of SDTM datasets")])
    rules = mapping if isinstance(mapping, dict) else load_mapping(mapping)
    conversion = Conversion(folder, rules)
    conversion.run()
    # the folder's name only (a date in it, e.g. export_2021-03-04, is masked)
    return SdtmImport(conversion.tables, conversion.usage.summary(), shown_value(folder.name))


def write_imported(result: SdtmImport, folder: str | Path) -> list[Path]:
    """Write the six tables as ``<table>.csv`` and the mapping report into ``folder`` (an empty
    folder: the command passes the temporary folder of :func:`cartlib.outdir.staged_output`),
    then load the written cohort as ``cartlib validate`` does.

    Raises
    ------
    CohortError
        The written cohort breaks the data contract (e.g. an event after the last contact day):
        the caller's temporary folder is then discarded, nothing is left behind.
    """
    from ..io import load_cohort  # the validator of the written cohort

    folder = Path(folder)
    paths = []
    for table in TABLES:
        path = folder / f"{table}.csv"
        frame = result.tables[table]
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(frame.columns)
            writer.writerows(frame.itertuples(index=False, name=None))
        paths.append(path)
    report = folder / REPORT_FILE
    report.write_text(result.report_text(), encoding="utf-8")
    try:
        load_cohort(folder)
    except CohortError as err:
        note = Violation("import", None, None, None, "the tables made from the SDTM data break the cohort "
                         "contract as listed; correct the SDTM data or the mapping")
        raise CohortError([note, *err.violations]) from None
    return paths + [report]
