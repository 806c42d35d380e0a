"""Reading SDTM datasets as text tables, and turning their ISO 8601 dates into study days.

A domain ``XX`` is the file ``xx.xpt`` or ``xx.sas7bdat`` of the SDTM folder (file names in any
case). Every cell becomes text, as a CSV export would hold it (``3.0`` -> ``"3"``; SAS missing
values blank), variable names upper case; the index is the row number of a spreadsheet view of
the file (the first record is row 2, as for every cohort file, see docs/FORMATS.md).

Study days: day 0 is the infusion date, day -1 the day before, day 28 four weeks after. This
differs from SDTM's own --DY, which has no day 0 (day 1 is the reference date, the day before
is -1); --DY variables are not read. Times are ignored: a day is a difference of calendar dates.

>>> dates_to_days(pd.Series(["2021-03-04", "2021-03-01T08:30", "2021-13-01"], index=[2, 3, 4]))
(2    737853.0
3    737850.0
4         NaN
dtype: float64, {4: 'month 13 is not a month'})
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import Violation
from ..privacy import dates_among, mask

__all__ = ["Domain", "SUFFIXES", "code_key", "cell_text", "find_domain_files", "read_domain",
           "dates_to_days", "shown_value"]

SUFFIXES = (".xpt", ".sas7bdat")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"T\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?")
_SAS_DATE = re.compile(r"\d{1,2}[A-Za-z]{3}\d{2,4}(:[0-9:.]+)?")
_PARTIAL = re.compile(r"\d{4}(-(\d{2}|-))?(-(\d{2}|-))?(T.*)?")


@dataclass
class Domain:
    """One SDTM dataset: its name (``AE``), the file's name and its cells as text."""

    name: str
    file: str
    data: pd.DataFrame

    def has(self, variable: str) -> bool:
        return variable in self.data.columns


def code_key(text) -> str:
    """A code compared ignoring case and repeated spaces.

    >>> code_key("  Cytokine release   syndrome ")
    'CYTOKINE RELEASE SYNDROME'
    """
    return " ".join(str(text).upper().split())


def cell_text(value) -> str:
    """One cell as text: whole numbers without ``.0``, other numbers in the shortest exact form,
    missing values blank, dates (a SAS date variable) in ISO form.

    >>> cell_text(3.0), cell_text(0.1), cell_text(float("nan")), cell_text(dt.date(2021, 3, 4)), cell_text(" CR ")
    ('3', '0.1', '', '2021-03-04', 'CR')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, (dt.datetime, dt.date, pd.Timestamp)):
        return value.isoformat()
    return str(value).strip()


def shown_value(text: str, is_date: bool = False) -> str:
    """A value as messages and the mapping report show it: a date (or a value of a date variable)
    masked (digits ``#``, letters ``X``), anything else as it is.

    >>> shown_value("2021-03-04"), shown_value("CRS"), shown_value("UNK", is_date=True)
    ('####-##-##', 'CRS', 'XXX')
    """
    if is_date or dates_among(np.array([str(text)], dtype=object)).any():
        return mask(text)
    return str(text)


def find_domain_files(folder: Path) -> dict[str, list[Path]]:
    """The dataset files of ``folder`` by domain name (upper case); a domain may have several
    (an error for whoever needs it).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / "DM.XPT").write_bytes(b""), (Path(d) / "notes.txt").write_bytes(b"")
    ...     {k: [p.name for p in v] for k, v in find_domain_files(Path(d)).items()}
    {'DM': ['DM.XPT']}
    """
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        suffix = path.suffix.lower()
        if suffix in SUFFIXES and path.is_file():
            found.setdefault(path.stem.upper(), []).append(path)
    return found


def read_domain(name: str, file: Path, out: list[Violation]) -> Domain | None:
    """Read one dataset file as a :class:`Domain`; None, with the reason in ``out``, when it
    cannot be read."""
    import pyreadstat  # only needed here

    try:
        if file.suffix.lower() == ".xpt":
            data, _ = pyreadstat.read_xport(str(file))
        else:
            data, _ = pyreadstat.read_sas7bdat(str(file))
    except Exception as err:  # pyreadstat raises several types for a damaged file
        detail = str(err).strip() or type(err).__name__
        out.append(Violation(file.name, None, None, None, f"cannot be read as a SAS dataset ({detail})"))
        return None
    index = pd.RangeIndex(2, 2 + len(data))
    columns = {}
    for column in data.columns:
        upper = str(column).strip().upper()
        if upper in columns:
            out.append(Violation(file.name, 1, upper, None, "variable appears twice (ignoring case)"))
            continue
        columns[upper] = [cell_text(v) for v in data[column].to_numpy(dtype=object)]
    return Domain(name, file.name, pd.DataFrame(columns, index=index, dtype=object))


def _date_problem(text: str) -> str:
    """Why ``text`` is not a full ISO 8601 date (or date-time)."""
    if not text:
        return "the date is blank"
    match = _DATE.match(text)
    if not match and _PARTIAL.fullmatch(text):
        return "a partial date (year, or year and month, only); a full date YYYY-MM-DD is needed"
    if not match and _SAS_DATE.fullmatch(text):
        return "a SAS date text (DDMONYYYY); SDTM dates are ISO 8601 (YYYY-MM-DD)"
    if not match:
        return "not an ISO 8601 date (YYYY-MM-DD, optionally followed by a time)"
    year, month, day = (int(g) for g in match.groups())
    if not 1 <= month <= 12:
        return f"month {month} is not a month"
    if not 1 <= day <= 31:
        return f"day {day} is not a day of a month"
    try:
        dt.date(year, month, day)
    except ValueError:
        return f"day {day} does not exist in month {month} of that year"
    return "not an ISO 8601 date-time (the part after the date is not a time)"


def dates_to_days(texts: pd.Series) -> tuple[pd.Series, dict[int, str]]:
    """Each ISO 8601 date (or date-time, whose time is ignored) as a day number (the proleptic
    Gregorian ordinal, so differences are days), NaN where it cannot be read; and for those rows
    why not.

    >>> dates_to_days(pd.Series(["2021-02-29", "2021-03", "04MAR2021"], index=[2, 3, 4]))[1]
    {2: 'day 29 does not exist in month 2 of that year', 3: 'a partial date (year, or year and month, only); a full date YYYY-MM-DD is needed', 4: 'a SAS date text (DDMONYYYY); SDTM dates are ISO 8601 (YYYY-MM-DD)'}
    """
    days = np.full(len(texts), np.nan)
    problems: dict[int, str] = {}
    for i, (row, text) in enumerate(texts.items()):
        match = _DATE.match(text)
        if match and (len(text) == 10 or _TIME.fullmatch(text[10:])):
            try:
                days[i] = dt.date(*(int(g) for g in match.groups())).toordinal()
                continue
            except ValueError:
                pass
        problems[int(row)] = _date_problem(text)
    return pd.Series(days, index=texts.index), problems
