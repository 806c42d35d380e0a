"""Load a cohort (a folder of CSVs or one ``.xlsx`` workbook) into a validated :class:`Cohort`.

Every cell is first read as text so a problem can be reported with the raw value and
its spreadsheet row (header = row 1); the rules live in :mod:`cartlib.validate`. All
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

import csv
import datetime as dt
import hashlib
import io as _io
import math
import numbers
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cartlib.errors import CohortError, Violation
from cartlib.formats import read_table_file, table_files
from cartlib.validate import MAX_CELL_CHARS, TABLES, check_tables, type_table

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


MAX_FILE_BYTES = 1 << 30
"""Largest input file read (1 GiB): a CSV, the workbook, and the workbook's unpacked size."""
_PRESCAN_RUN = 10 * MAX_CELL_CHARS + 100
"""In a workbook's XML, a stretch this long without a tag holds a cell over the cap (an XML
character takes at most 10 bytes, as ``&#x10FFFF;``): refused before the cell is loaded."""


def _too_big(name: str, size: int, what: str = "has") -> str:
    return f"{name} {what} {size:,} bytes; at most {MAX_FILE_BYTES:,} bytes are accepted"


def _frame(table: str, rows: list[list[str]], out: list[Violation],
           parsed: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """Raw text DataFrame from the rows of a file or sheet (row i is spreadsheet row i + 1); the
    first row with any text is the header; fully blank rows are skipped but still counted.
    ``parsed``: the rows after ``rows[0]`` already as a DataFrame of text (the fast CSV path)."""
    header_at = next((i for i, cells in enumerate(rows) if any(c.strip() for c in cells)), None)
    if header_at is None:
        out.append(Violation(table, None, None, None, "table is empty: no header row"))
        return None
    header_row, header = header_at + 1, rows[header_at]
    names = [h.strip().upper() for h in header]
    if len(names) == 1 and any(d in header[0] for d in (";", "\t")):
        sep = "';'" if ";" in header[0] else "a tab"
        out.append(Violation(table, header_row, None, header[0],
                             f"the header is one column containing {sep}: the file seems to use {sep} as "
                             "delimiter; the contract requires commas"))
        return None
    width = len(names)
    body = rows[header_at + 1:]
    # Column-wise, each distinct text stripped once: a long table costs a few passes in C.
    columns, filled = [], []
    cells = parsed if parsed is not None else pd.DataFrame(body, dtype=object) if body else pd.DataFrame()
    n = len(cells)
    for i in range(cells.shape[1]):
        codes, texts = pd.factorize(cells.iloc[:, i].to_numpy(), use_na_sentinel=True)  # a short row's None -> -1
        stripped = np.array([t.strip() for t in texts] + [""], dtype=object)     # code -1 reads the last: ""
        columns.append(stripped[codes])
        filled.append((stripped != "")[codes])
    columns += [np.full(n, "", dtype=object)] * (width - len(columns))
    filled += [np.zeros(n, dtype=bool)] * (width - len(filled))
    keep = np.logical_or.reduce(filled) if filled else np.zeros(n, dtype=bool)
    index = np.arange(header_row + 1, header_row + 1 + n)
    if len(columns) > width:
        for i in np.flatnonzero(np.logical_or.reduce(filled[width:])):
            out.append(Violation(table, int(index[i]), None, ",".join(c.strip() for c in body[i][width:]),
                                 f"row has {len(body[i])} cells but the header has {width}"))
    chosen = {}
    for i, name in enumerate(names):
        if name == "":
            if filled[i].any():
                out.append(Violation(table, header_row, f"#{i + 1}", None, "column has values but no name"))
            continue
        if len(name) > MAX_CELL_CHARS:
            out.append(Violation(table, header_row, name, None,
                                 f"column name has {len(name):,} characters; at most {MAX_CELL_CHARS:,} are accepted"))
            continue
        if name in chosen:
            out.append(Violation(table, header_row, name, None, "column name appears twice"))
            continue
        chosen[name] = columns[i][keep]
    return pd.DataFrame(chosen, index=index[keep], columns=list(chosen), dtype=object)


_FIRST_LINE = re.compile(r"[^\r\n]*")


def _parse_plain_csv(text: str) -> pd.DataFrame | None:
    """The cells of a CSV without quotes, NUL bytes or ragged rows, parsed by pandas' C reader
    (several times faster than the csv module on long tables), or None to use the csv module.
    Without quotes both read the same cells: split at commas and at \\n, \\r\\n or \\r; rows
    keep their count, blank ones included, and a short row is padded with blanks."""
    if '"' in text or "\x00" in text:
        return None
    first = _FIRST_LINE.match(text).group()
    if not first.replace(",", "").strip():  # the header must be the first line for the widths to agree
        return None
    try:
        cells = pd.read_csv(_io.StringIO(text), header=None, dtype=str, na_filter=False, skip_blank_lines=False,
                            engine="c", quoting=csv.QUOTE_NONE)
    except (pd.errors.ParserError, ValueError):  # a row longer than the first: the csv module reports it
        return None
    return cells.set_axis(range(cells.shape[1]), axis=1)


def _read_csv_table(table: str, data: bytes, out: list[Violation]) -> pd.DataFrame | None:
    text = _decode(table, data, out)
    if text is None:
        return None
    fast = _parse_plain_csv(text)
    if fast is not None:
        return _frame(table, [fast.iloc[0].tolist()], out, parsed=fast.iloc[1:])
    reader = csv.reader(_io.StringIO(text, newline=""), strict=True)
    try:
        rows = list(reader)
    except csv.Error as err:  # e.g. an unterminated quote: report it, never a traceback
        if "field larger than field limit" in str(err):
            out.append(Violation(table, reader.line_num, None, None,
                                 f"file {table}.csv has a cell longer than {MAX_CELL_CHARS:,} characters "
                                 f"(at most {MAX_CELL_CHARS:,} are accepted)"))
        else:
            out.append(Violation(table, reader.line_num, None, None,
                                 f"file {table}.csv cannot be read as CSV ({err})"))
        return None
    return _frame(table, rows, out)


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


def _longest_untagged_run(stream) -> int:
    """Length of the longest byte run without ``<`` in a binary stream, read in 1 MiB chunks."""
    longest = carry = 0
    while chunk := stream.read(1 << 20):
        tags = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == ord("<"))
        if len(tags) == 0:
            carry += len(chunk)
        else:
            gaps = np.diff(tags) - 1
            longest = max(longest, carry + int(tags[0]), int(gaps.max()) if len(gaps) else 0)
            carry = len(chunk) - int(tags[-1]) - 1
        longest = max(longest, carry)
        if longest > _PRESCAN_RUN:
            break
    return longest


def _workbook_problem(path: Path, data: bytes) -> str | None:
    """Why a workbook must not be unpacked (zip bomb, a cell over the cap), or None."""
    import zipfile

    try:
        with zipfile.ZipFile(_io.BytesIO(data)) as zf:
            parts = zf.infolist()
            unpacked = sum(p.file_size for p in parts)
            if unpacked > MAX_FILE_BYTES:
                return _too_big(path.name, unpacked, "unpacks to")
            for part in parts:
                if part.filename.endswith(".xml") and part.file_size > _PRESCAN_RUN:
                    with zf.open(part) as stream:
                        if _longest_untagged_run(stream) > _PRESCAN_RUN:
                            return (f"{part.filename} in {path.name} holds a cell longer than "
                                    f"{MAX_CELL_CHARS:,} characters (at most {MAX_CELL_CHARS:,} are accepted)")
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError):
        return None  # openpyxl will say it cannot read the file
    return None


def _sheet_name(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip().casefold()


def _read_workbook(path: Path, data: bytes, out: list[Violation]) -> dict[str, pd.DataFrame | None]:
    import openpyxl  # only needed for workbooks

    problem = _workbook_problem(path, data)
    if problem:
        out.append(Violation(path.name, None, None, None, problem))
        return {}
    try:
        wb = openpyxl.load_workbook(_io.BytesIO(data), read_only=True, data_only=True)
    except Exception as err:  # openpyxl raises many types for a broken file
        out.append(Violation(path.name, None, None, None, f"cannot be read as an .xlsx workbook ({err})"))
        return {}
    sheets: dict[str, list[str]] = {}
    for name in wb.sheetnames:
        sheets.setdefault(_sheet_name(name), []).append(name)
    raw = {}
    for table in TABLES:
        found = sheets.get(table, [])
        if len(found) != 1:
            rule = (f"sheet {table!r} is missing from {path.name}" if not found else
                    f"sheets {' and '.join(map(repr, found))} of {path.name} have the same name once case and "
                    "spaces are ignored; keep only one")
            out.append(Violation(table, None, None, None, rule))
            raw[table] = None
            continue
        rows = [[_cell_text(v) for v in values] for values in wb[found[0]].iter_rows(values_only=True)]
        raw[table] = _frame(table, rows, out)
    wb.close()
    return raw


def _read_file(file: Path, label: str, table: str, out: list[Violation]) -> bytes | None:
    """The bytes of one input file, or None with the reason (too big, unreadable) in ``out``."""
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            out.append(Violation(table, None, None, None, _too_big(label, size)))
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
            raw[table] = (_read_csv_table(table, data, out) if file.suffix == ".csv"
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
        raw = _read_workbook(path, data, out)
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

