"""Load a cohort (a folder of CSVs or one ``.xlsx`` workbook) into a validated :class:`Cohort`.

Every cell is first read as text so a problem can be reported with the raw value and
its spreadsheet row (header = row 1); the rules live in :mod:`cartlib.validate`. All
problems of a load are raised together as one :class:`~cartlib.errors.CohortError`.
The input is only ever opened for reading.

Decisions (see docs/COHORT.md): all six tables are required; a long table with a
header and no rows is valid; subjects needs at least one row; header names are
stripped and upper-cased; cells are stripped; fully blank lines are skipped (row
numbers still count them, as a spreadsheet does); sheet names match case-insensitively.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import numbers
import io as _io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cartlib.errors import CohortError, Violation
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


def _decode(table: str, data: bytes, out: list[Violation]) -> str | None:
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        return data[3 if bom else 0:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = err.start + (3 if bom else 0)
        line = data[:offset].count(b"\n") + 1
        out.append(Violation(table, line, None, repr(data[offset:offset + 1]),
                             f"file {table}.csv is not UTF-8: first bad byte at offset {offset} "
                             f"(line {line}); re-save it as UTF-8"))
        return None


def _frame(table: str, records: list[tuple[int, list[str]]], out: list[Violation]) -> pd.DataFrame | None:
    """Raw text DataFrame from (spreadsheet row, cells) records; the first record is the header."""
    if not records:
        out.append(Violation(table, None, None, None, "table is empty: no header row"))
        return None
    header_row, header = records[0]
    names = [h.strip().upper() for h in header]
    if len(names) == 1 and any(d in header[0] for d in (";", "\t")):
        sep = "';'" if ";" in header[0] else "a tab"
        out.append(Violation(table, header_row, None, header[0][:60],
                             f"the header is one column containing {sep}: the file seems to use {sep} as "
                             "delimiter; the contract requires commas"))
        return None
    width = len(names)
    rows, index = [], []
    for row, cells in records[1:]:
        cells = [c.strip() for c in cells]
        if len(cells) > width and any(cells[width:]):
            out.append(Violation(table, row, None, ",".join(cells[width:])[:60],
                                 f"row has {len(cells)} cells but the header has {width}"))
        rows.append((cells + [""] * width)[:width])
        index.append(row)
    df = pd.DataFrame(rows, columns=range(width), index=index, dtype=object)
    keep, seen = [], set()
    for i, name in enumerate(names):
        if name == "":
            if df[i].ne("").any():
                out.append(Violation(table, header_row, f"#{i + 1}", None, "column has values but no name"))
            continue
        if name in seen:
            out.append(Violation(table, header_row, name, None, "column name appears twice"))
            continue
        seen.add(name)
        keep.append(i)
    df = df[keep].set_axis([names[i] for i in keep], axis=1)
    return df.astype(str) if len(df) else df.astype(object)


def _read_csv_table(table: str, data: bytes, out: list[Violation]) -> pd.DataFrame | None:
    text = _decode(table, data, out)
    if text is None:
        return None
    records, reader = [], csv.reader(_io.StringIO(text, newline=""), strict=True)
    try:
        for n, cells in enumerate(reader, start=1):
            if any(c.strip() for c in cells):
                records.append((n, cells))
    except csv.Error as err:  # e.g. an unterminated quote: report it, never a traceback
        out.append(Violation(table, reader.line_num, None, None, f"file {table}.csv cannot be read as CSV ({err})"))
        return None
    return _frame(table, records, out)


def _cell_text(value) -> str:
    """An xlsx cell as the text a CSV export would hold; datetimes become ISO text so
    the date rule sees them."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _read_workbook(path: Path, out: list[Violation]) -> dict[str, pd.DataFrame | None]:
    import openpyxl  # only needed for workbooks

    try:
        wb = openpyxl.load_workbook(_io.BytesIO(path.read_bytes()), read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many types for a broken file
        out.append(Violation(path.name, None, None, None, f"cannot be read as an .xlsx workbook ({err})"))
        return {}
    sheets = {name.strip().lower(): name for name in wb.sheetnames}
    raw = {}
    for table in TABLES:
        if table not in sheets:
            out.append(Violation(table, None, None, None, f"sheet {table!r} is missing from {path.name}"))
            raw[table] = None
            continue
        records = []
        for n, values in enumerate(wb[sheets[table]].iter_rows(values_only=True), start=1):
            cells = [_cell_text(v) for v in values]
            if any(c.strip() for c in cells):
                records.append((n, cells))
        raw[table] = _frame(table, records, out)
    wb.close()
    return raw


def _read_folder(path: Path, out: list[Violation]) -> tuple[dict[str, pd.DataFrame | None], bytes]:
    raw, blob = {}, hashlib.sha256()
    for table in TABLES:
        file = path / f"{table}.csv"
        if not file.is_file():
            out.append(Violation(table, None, None, None, f"file {table}.csv is missing from {path}"))
            raw[table] = None
            continue
        data = file.read_bytes()
        blob.update(data)
        raw[table] = _read_csv_table(table, data, out)
    return raw, blob.hexdigest()


def load_cohort(path, lloq: float = 100) -> Cohort:
    """Read, validate and type a cohort folder of CSVs or one ``.xlsx`` workbook.

    Raises :class:`~cartlib.errors.CohortError` listing every contract violation
    (table, spreadsheet row, column, raw value, rule); ``ValueError`` if ``lloq`` is
    not a positive number.

    >>> import tempfile, cartlib.io as cio
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = cio.write_example_cohort(d)
    ...     c = load_cohort(d)
    >>> c.pk.dtypes["CONC"], c.pk.BLQ_TEXT.sum()
    (dtype('float64'), np.int64(1))
    """
    if isinstance(lloq, bool) or not isinstance(lloq, numbers.Real) or not lloq > 0:
        raise ValueError(f"lloq must be a positive number, got {lloq!r}")
    path = Path(path)
    out: list[Violation] = []
    if path.is_dir():
        raw, fingerprint = _read_folder(path, out)
    elif path.is_file() and path.suffix.lower() == ".xlsx":
        fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()
        raw = _read_workbook(path, out)
    else:
        raise CohortError([Violation("cohort", None, None, str(path),
                                     "not a folder of CSV files or an .xlsx workbook")])
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

