"""Cohort tables kept as statistical-package files: SPSS ``.sav``, Stata ``.dta``, SAS ``.sas7bdat`` and ``.xpt``.

A cohort folder may hold each table as ``<table>.csv`` or as ``<table>`` with one of
:data:`STAT_SUFFIXES` (read with pyreadstat). The file becomes the same raw text table a CSV
gives, so every contract rule of :mod:`cartlib.validate` applies unchanged:

- numbers become their shortest decimal text (``14.0`` -> ``"14"``, ``0.002`` -> ``"0.002"``);
  SPSS user-missing values and SAS/Stata missing values (``.``, ``.A`` to ``.Z``) become blank;
- a variable with value labels on a coded contract column is decoded through its labels: a
  label is matched to the column's codes ignoring case, spaces and hyphens (``"MRD persistent"``
  -> ``MRD_PERSISTENT``), or through :data:`LABEL_SYNONYMS` (``Male`` -> ``M``); a value that is
  itself a code is kept. Values without a usable label are refused, naming file, column, codes;
- row numbers count as in a spreadsheet view of the file: record 1 is row 2 (the header is row 1).

>>> import tempfile, pandas as pd, pyreadstat
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as d:
...     path = Path(d) / "subjects.sav"
...     pyreadstat.write_sav(pd.DataFrame({"usubjid": ["P1", "P2"], "sex": [1.0, 2.0], "age": [8.0, 12.5]}),
...                          str(path), variable_value_labels={"sex": {1: "Male", 2: "Female"}})
...     problems = []
...     raw = read_table_file("subjects", path, problems)
>>> raw
  USUBJID SEX   AGE
2      P1   M     8
3      P2   F  12.5
"""
from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import Violation
from .validate import EVENT_DETAIL, SPEC

__all__ = ["STAT_SUFFIXES", "LABEL_SYNONYMS", "table_files", "read_table_file", "decode_labels"]

STAT_SUFFIXES = {".sav": "SPSS", ".dta": "Stata", ".sas7bdat": "SAS", ".xpt": "SAS transport"}
"""File suffixes read besides ``.csv``, with the package that writes them."""
LABEL_SYNONYMS = {
    "MALE": "M", "MAN": "M", "BOY": "M",
    "FEMALE": "F", "WOMAN": "F", "GIRL": "F",
    "YES": "Y", "TRUE": "Y",
    "NO": "N", "FALSE": "N",
    "COMPLETE REMISSION": "CR", "CR WITH INCOMPLETE COUNT RECOVERY": "CRI", "NO RESPONSE": "NR",
    "STANDARD RISK": "STANDARD", "HIGH RISK": "HIGH",
}
"""Label texts that name a contract code in other words (compared like codes: ignoring case and
anything but letters and digits); used only where that code is allowed in the column."""
_FREE_CODE_COLUMNS = {t: {c.name for c in cols if c.kind == "code" and not c.codes}
                      for t, cols in SPEC.items()}
_NOT_ALPHANUMERIC = re.compile(r"[^0-9A-Za-z]+")


def table_files(folder: Path, table: str) -> list[Path]:
    """The files of ``folder`` that hold ``table``: ``<table>.csv`` and ``<table>`` with a suffix of
    :data:`STAT_SUFFIXES` (more than one is an error for the loader to report).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     (Path(d) / "pk.xpt").write_bytes(b"")
    ...     [p.name for p in table_files(Path(d), "pk")]
    0
    ['pk.xpt']
    """
    found = []
    for suffix in (".csv", *STAT_SUFFIXES):
        file = folder / f"{table}{suffix}"
        try:
            if file.is_file():
                found.append(file)
        except OSError:  # a folder that may not be listed: reading the CSV says why
            continue
    return found


def _allowed_codes(table: str, column: str) -> tuple[str, ...]:
    if table == "events" and column == "DETAIL":
        return tuple(code for codes in EVENT_DETAIL.values() for code in codes)
    col = next((c for c in SPEC[table] if c.name == column), None)
    return col.codes if col is not None and col.kind == "code" else ()


def _label_key(text: str) -> str:
    """A label or code compared ignoring case and separators: 'MRD re-emergence' -> 'MRDREEMERGENCE'."""
    return _NOT_ALPHANUMERIC.sub("", str(text)).upper()


_SYNONYM_KEYS = {_label_key(label): code for label, code in LABEL_SYNONYMS.items()}


def _code_for(label: str, codes: tuple[str, ...]) -> str | None:
    key = _label_key(label)
    by_key = {_label_key(code): code for code in codes}
    if key in by_key:
        return by_key[key]
    synonym = _SYNONYM_KEYS.get(key)
    return synonym if synonym in codes else None


def _value_text(value) -> str:
    """One cell as the text a CSV export would hold; missing values are blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, (dt.datetime, dt.date, pd.Timestamp)):  # a date: the privacy rule refuses it
        return value.isoformat()
    return str(value).strip()


def decode_labels(table: str, file_name: str, column: str, values: pd.Series, labels: dict,
                  out: list[Violation]) -> pd.Series:
    """Texts of a labelled coded column: each value's label mapped to a contract code, a value
    that is a code itself kept. Values with neither give one violation per distinct value
    (its first row, how many rows) and stay as written.

    >>> problems = []
    >>> decode_labels("subjects", "subjects.sav", "SEX", pd.Series(["1", "2", "3"], index=[2, 3, 4]),
    ...               {1.0: "Male", 2.0: "Female", 3.0: "Other"}, problems).tolist()
    ['M', 'F', '3']
    >>> print(problems[0])
    subjects, row 4, column SEX, value '3': file subjects.sav: value 3 has the label 'Other', which is none of the codes M, F (nor a known synonym); recode it or change its label
    """
    codes = _allowed_codes(table, column)
    by_text = {_value_text(k): v for k, v in labels.items()}
    mapped = {}
    for text in pd.unique(values):
        label = by_text.get(text)
        code = _code_for(label, codes) if label is not None else None
        if code is None and (text == "" or text.upper() in codes):
            code = text
        mapped[text] = code
    for text, code in mapped.items():
        if code is not None:
            continue
        rows = values.index[values.to_numpy() == text]
        label = by_text.get(text)
        why = (f"value {text} has the label {label!r}, which is" if label is not None
               else f"value {text} has no value label and is")
        count = f" ({len(rows)} rows)" if len(rows) > 1 else ""
        out.append(Violation(table, int(rows[0]), column, text,
                             f"file {file_name}: {why} none of the codes {', '.join(codes)} (nor a known synonym)"
                             f"{count}; recode it or change its label"))
    return values.map(lambda t: mapped[t] if mapped[t] is not None else t)


def _read(file: Path):
    import pyreadstat  # only needed for these files

    suffix = file.suffix.lower()
    if suffix == ".sav":
        return pyreadstat.read_sav(str(file), apply_value_formats=False, user_missing=False)
    if suffix == ".dta":
        return pyreadstat.read_dta(str(file), apply_value_formats=False)
    if suffix == ".sas7bdat":
        return pyreadstat.read_sas7bdat(str(file))
    return pyreadstat.read_xport(str(file))


def read_table_file(table: str, file: Path, out: list[Violation]) -> pd.DataFrame | None:
    """One contract table from a ``.sav``, ``.dta``, ``.sas7bdat`` or ``.xpt`` file as a raw text
    table (upper-case column names, index = row number, record 1 = row 2), value labels decoded;
    None, with the reason in ``out``, when the file cannot be read."""
    kind = STAT_SUFFIXES[file.suffix.lower()]
    try:
        data, meta = _read(file)
    except Exception as err:  # pyreadstat raises several types for a damaged file
        detail = str(err).strip() or type(err).__name__
        out.append(Violation(table, None, None, None,
                             f"file {file.name} cannot be read as a {kind} file ({detail})"))
        return None
    index = pd.RangeIndex(2, 2 + len(data))
    reported = len(out)
    raw, labels_of = {}, getattr(meta, "variable_value_labels", None) or {}
    for name in data.columns:
        column = str(name).strip().upper()
        if column in raw:
            out.append(Violation(table, 1, column, None, f"file {file.name}: variable appears twice (ignoring case)"))
            continue
        texts = pd.Series([_value_text(v) for v in data[name].to_numpy(dtype=object)], index=index, dtype=object)
        labels = labels_of.get(name)
        numeric = pd.api.types.is_numeric_dtype(data[name])
        if (labels or numeric) and _allowed_codes(table, column):  # numbers in a coded column need labels
            texts = decode_labels(table, file.name, column, texts, labels or {}, out)
        elif labels and column in _FREE_CODE_COLUMNS[table]:  # e.g. DRUG: the label is the name
            by_text = {_value_text(k): str(v).strip() for k, v in labels.items()}
            texts = texts.map(lambda t: by_text.get(t, t))
        raw[column] = texts
    if len(out) > reported:  # undecodable codes: the contract rules would only repeat them
        return None
    frame = pd.DataFrame(raw, index=index, columns=list(raw), dtype=object)
    return frame[frame.ne("").any(axis=1)] if len(frame.columns) else frame
