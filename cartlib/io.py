"""Load a cohort (a folder of CSVs or one ``.xlsx`` workbook) into a validated :class:`Cohort`.

Every cell is first read as text (:mod:`cartlib.readers`) so a problem can be reported with
the raw value and its spreadsheet row (header = row 1); the rules live in :mod:`cartlib.validate`. All
problems of a load are raised together as one :class:`~cartlib.errors.CohortError`.
The input is only ever opened for reading.

Decisions (see docs/COHORT.md): all six tables are required; a long table with a
header and no rows is valid; subjects needs at least one row; header names are
stripped and upper-cased; cells are stripped; fully blank lines are skipped (row
numbers still count them, as a spreadsheet does); sheet names match ignoring case and
surrounding spaces, and two sheets that would both match a table are refused. A file (CSV or
workbook, and a workbook's unpacked size) over :data:`MAX_FILE_BYTES` is refused before it is
read, and a cell over :data:`~cartlib.validate.MAX_CELL_CHARS` characters is refused (in a
workbook before the cell is loaded).
"""
from __future__ import annotations

import hashlib
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cartlib.errors import CohortError, Violation
from cartlib.formats import read_table_file, table_files
from cartlib.readers import read_csv_table, read_workbook, too_big
from cartlib.validate import TABLES, check_tables, type_table

__all__ = ["Cohort", "load_cohort", "TABLES", "example_cohort", "write_example_cohort"]


@dataclass(frozen=True, eq=False)
class Cohort:
    """A loaded, validated cohort: six typed tables plus where they came from.

    Tables have upper-case column names as in the contract, codes in upper case and a
    RangeIndex. ``fingerprint`` is the SHA-256 over the input files' bytes in table
    order (for a workbook: its bytes). ``lloq`` is kept for NCA; the loader does not
    apply it.

    >>> import tempfile, cartlib.io as cio
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = cio.write_example_cohort(d)
    ...     c = load_cohort(d)
    >>> c.subjects[["USUBJID", "SEX", "LAST_CONTACT_DAY"]]
      USUBJID SEX  LAST_CONTACT_DAY
    0    P001   F               900
    1    P002   M               200
    >>> len(c.fingerprint)
    64
    """

    subjects: pd.DataFrame
    events: pd.DataFrame
    adverse_events: pd.DataFrame
    medications: pd.DataFrame
    pk: pd.DataFrame
    labs: pd.DataFrame
    source: str = ""
    fingerprint: str = ""
    lloq: float = field(default=100.0)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """The six tables by name, in contract order.

        >>> list(example_cohort().tables)
        ['subjects', 'events', 'adverse_events', 'medications', 'pk', 'labs']
        """
        return {t: getattr(self, t) for t in TABLES}

    def same_data(self, other: "Cohort") -> bool:
        """True when every table equals the other cohort's (values and dtypes);
        ``source``, ``fingerprint`` and ``lloq`` are ignored.

        >>> example_cohort().same_data(example_cohort())
        True
        """
        return all(a.equals(b) and list(a.columns) == list(b.columns) and (a.dtypes == b.dtypes).all()
                   for a, b in zip(self.tables.values(), other.tables.values()))


MAX_FILE_BYTES = 1 << 30
"""Largest input file read (1 GiB): a CSV, the workbook, and the workbook's unpacked size."""


def _read_file(file: Path, label: str, table: str, out: list[Violation]) -> bytes | None:
    """The bytes of one input file, or None with the reason (too big, unreadable) in ``out``."""
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            out.append(Violation(table, None, None, None, too_big(label, size, MAX_FILE_BYTES)))
            return None
        return file.read_bytes()
    except OSError as err:
        out.append(Violation(table, None, None, None, f"{label} cannot be read ({err.strerror or err})"))
        return None


def _read_folder(path: Path, out: list[Violation]) -> tuple[dict[str, pd.DataFrame | None], bytes]:
    raw, blob = {}, hashlib.sha256()
    for table in TABLES:
        found = table_files(path, table)  # <table>.csv or a statistical-package file (cartlib.formats)
        raw[table] = None
        if len(found) > 1:
            out.append(Violation(table, None, None, None, f"files {' and '.join(f.name for f in found)} of {path} "
                                 f"both hold table {table}; keep only one"))
            continue
        file = found[0] if found else path / f"{table}.csv"
        try:
            present = file.is_file()
        except OSError:  # e.g. a folder that may not be listed: reading says why
            present = True
        if not present:
            out.append(Violation(table, None, None, None, f"file {table}.csv is missing from {path}"))
            continue
        data = _read_file(file, f"file {file.name}", table, out)
        if data is not None:
            blob.update(data)
            raw[table] = (read_csv_table(table, data, out) if file.suffix == ".csv"
                          else read_table_file(table, file, out))
    return raw, blob.hexdigest()


def input_files(path) -> list[Path]:
    """The files :func:`load_cohort` reads: each table's file of a folder (CSV or a
    statistical-package file, see :mod:`cartlib.formats`), or the workbook.

    >>> import tempfile, cartlib.io as cio
    >>> with tempfile.TemporaryDirectory() as d:
    ...     [p.name for p in input_files(cio.write_example_cohort(d))][:2]
    ['subjects.csv', 'events.csv']
    """
    path = Path(path)
    return [(table_files(path, t) or [path / f"{t}.csv"])[0] for t in TABLES] if path.is_dir() else [path]


def cohort_fingerprint(path) -> str:
    """The fingerprint :func:`load_cohort` gives the cohort at ``path``, without reading it
    as tables (SHA-256 of the six CSVs' bytes in table order, or of the workbook).

    >>> import tempfile, cartlib.io as cio
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = cio.write_example_cohort(d)
    ...     cohort_fingerprint(d) == load_cohort(d).fingerprint
    True
    """
    blob = hashlib.sha256()
    for file in input_files(path):
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                blob.update(chunk)
    return blob.hexdigest()


def load_cohort(path, lloq: float = 100) -> Cohort:
    """Read, validate and type a cohort folder of CSVs or one ``.xlsx`` workbook.

    Raises :class:`~cartlib.errors.CohortError` listing every contract violation
    (table, spreadsheet row, column, raw value, rule); ``ValueError`` if ``lloq`` is
    not a finite positive number.

    >>> import tempfile, cartlib.io as cio
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = cio.write_example_cohort(d)
    ...     c = load_cohort(d)
    >>> c.pk.dtypes["CONC"], c.pk.BLQ_TEXT.sum()
    (dtype('float64'), np.int64(1))
    """
    if isinstance(lloq, bool) or not isinstance(lloq, numbers.Real) or not 0 < lloq < math.inf:
        raise ValueError(f"lloq must be a finite positive number, got {lloq!r}")
    path = Path(path)
    out: list[Violation] = []
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
    except OSError as err:  # e.g. a parent folder that may not be entered
        raise CohortError([Violation("cohort", None, None, None, f"{path} cannot be read ({err.strerror or err})")]) from None
    if is_dir:
        raw, fingerprint = _read_folder(path, out)
    elif is_file and path.suffix.lower() == ".xlsx":
        data = _read_file(path, path.name, path.name, out)
        if data is None:
            raise CohortError(out)
        fingerprint = hashlib.sha256(data).hexdigest()
        raw = read_workbook(path, data, out, MAX_FILE_BYTES)
    else:
        raise CohortError([Violation("cohort", None, None, None,
                                     f"{path} is not a folder of CSV files or an .xlsx workbook")])
    out += check_tables(raw)
    if out:
        raise CohortError(out)
    typed = {t: type_table(t, raw[t]) for t in TABLES}
    return Cohort(**typed, source=str(path), fingerprint=fingerprint, lloq=float(lloq))


EXAMPLE = {
    "subjects": "USUBJID,AGE,SEX,INDICATION,GENRISK,PRIOR_HSCT,PRIOR_CART,DX_TO_INF_MO,DOSE,"
                "MRD_PRELD,MRD_POSTLD,D28_RESPONSE,D28_MRD_NEG,LAST_CONTACT_DAY\n"
                "P001,8,F,MRD_PERSISTENT,STANDARD,N,N,14,1.0,0.002,0.0005,CR,Y,900\n"
                "P002,12,m,chemo_intolerance,HIGH,Y,N,30.5,2.5,0,0,CRI,N,200\n",
    "events": "USUBJID,EVENT,DAY,DETAIL\nP001,HSCT,75,ALLO\nP002,RELAPSE,150,CD19NEG\n"
              "P002,DEATH,200,RELAPSE\n",
    "adverse_events": "USUBJID,TERM,GRADE,ONSET_DAY,DETAIL\nP001,CRS,3,2,\nP002,INFECTION,2,10,cmv\n",
    "medications": "USUBJID,DRUG,START_DAY\nP001,TOCILIZUMAB,3\n",
    "pk": "USUBJID,DAY,CONC\nP001,7,12000\nP001,28,BLQ\nP002,10,3500\n",
    "labs": "USUBJID,DAY,TEST,VALUE\nP001,14,BCELL_PCT_WBC,0.1\nP001,60,BCELL_PCT_WBC,5\n"
            "P002,3,IL6,250\n",
}


def example_cohort() -> Cohort:
    """The docs/COHORT.md example cohort, loaded (written to a temporary folder first).

    >>> example_cohort().events.EVENT.tolist()
    ['HSCT', 'RELAPSE', 'DEATH']
    """
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return load_cohort(write_example_cohort(d))


def write_example_cohort(folder) -> Path:
    """Write a tiny valid two-patient cohort (the one in docs/COHORT.md) as CSVs into ``folder``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     sorted(p.name for p in write_example_cohort(d).iterdir())[:2]
    ['adverse_events.csv', 'events.csv']
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for table, text in EXAMPLE.items():
        (folder / f"{table}.csv").write_text(text, encoding="utf-8")
    return folder

