"""From the bytes of a CSV file or an ``.xlsx`` workbook to raw text tables, for :func:`cartlib.io.load_cohort`.

Every cell is read as text so that a problem can be reported with the raw value and its
spreadsheet row (header = row 1): the first row with any text is the header, header names are
stripped and upper-cased, cells are stripped, and fully blank rows are skipped (row numbers
still count them). Long CSV tables without quotes are parsed by pandas' C reader, others by the
csv module; a workbook is pre-scanned for zip bombs and over-long cells before it is unpacked.
"""
from __future__ import annotations

import csv
import datetime as dt
import io as _io
import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from cartlib.errors import Violation
from cartlib.validate import MAX_CELL_CHARS, TABLES

__all__ = ["read_csv_table", "read_workbook", "too_big", "PRESCAN_RUN"]


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


PRESCAN_RUN = 10 * MAX_CELL_CHARS + 100
"""In a workbook's XML, a stretch this long without a tag holds a cell over the cap (an XML
character takes at most 10 bytes, as ``&#x10FFFF;``): refused before the cell is loaded."""


def too_big(name: str, size: int, limit: int, what: str = "has") -> str:
    """The message for a file over the size cap ``limit`` (bytes)."""
    return f"{name} {what} {size:,} bytes; at most {limit:,} bytes are accepted"


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


def read_csv_table(table: str, data: bytes, out: list[Violation]) -> pd.DataFrame | None:
    """The raw text table of one CSV file's bytes, or None with the problems in ``out``."""
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
        if longest > PRESCAN_RUN:
            break
    return longest


def _workbook_problem(path: Path, data: bytes, max_bytes: int) -> str | None:
    """Why a workbook must not be unpacked (zip bomb, a cell over the cap), or None."""
    import zipfile

    try:
        with zipfile.ZipFile(_io.BytesIO(data)) as zf:
            parts = zf.infolist()
            unpacked = sum(p.file_size for p in parts)
            if unpacked > max_bytes:
                return too_big(path.name, unpacked, max_bytes, "unpacks to")
            for part in parts:
                if part.filename.endswith(".xml") and part.file_size > PRESCAN_RUN:
                    with zf.open(part) as stream:
                        if _longest_untagged_run(stream) > PRESCAN_RUN:
                            return (f"{part.filename} in {path.name} holds a cell longer than "
                                    f"{MAX_CELL_CHARS:,} characters (at most {MAX_CELL_CHARS:,} are accepted)")
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError):
        return None  # openpyxl will say it cannot read the file
    return None


def _sheet_name(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip().casefold()


def read_workbook(path: Path, data: bytes, out: list[Violation], max_bytes: int) -> dict[str, pd.DataFrame | None]:
    """The raw text tables of a workbook's sheets (None for a missing or doubled sheet), problems
    in ``out``; a workbook unpacking to more than ``max_bytes`` is not opened."""
    import openpyxl  # only needed for workbooks

    problem = _workbook_problem(path, data, max_bytes)
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
