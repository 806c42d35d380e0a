"""The data-contract rules (``../shared/spec/DATA_CONTRACT.md``) applied to raw text tables.

The loader (:mod:`cartlib.io`) reads every cell as text and hands the tables here
as DataFrames whose index is the spreadsheet row number (header = row 1), so a
failure can name the row and the raw value the user typed. Column-level rules run
through pandera (``lazy=True`` collects every failure); rules spanning tables or
rows are written by hand. :func:`check_tables` returns the list of
:class:`~cartlib.errors.Violation`; raising is the loader's job.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
try:
    import pandera.pandas as pa
except ImportError:  # pandera before the pandera.pandas namespace (pyproject allows >= 0.20)
    import pandera as pa
from pandera.errors import SchemaErrors

from cartlib.errors import Violation

TABLES = ("subjects", "events", "adverse_events", "medications", "pk", "labs")

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# Calendar dates in the spellings exports produce: ISO (optionally with a time,
# which is how an xlsx datetime cell reads as text), d/m/y or m/d/y, y/m/d, 04-Mar-2021.
_DATE = re.compile(
    r"^(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?"
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    r"|\d{1,2}[- ]?(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?[- ,]+\d{2,4})$",
    re.IGNORECASE,
)
IDENTIFIER_NAMES = frozenset(
    {"NAME", "PATIENT_NAME", "FIRST_NAME", "LAST_NAME", "SURNAME", "DOB", "MRN",
     "PHONE", "ADDRESS", "EMAIL", "NATIONAL_ID"}
)


@dataclass(frozen=True)
class Col:
    """One contract column: its kind (text / code / number / integer) and its limits.

    ``codes`` empty on a code column means any text, upper-cased on loading.
    ``lo_open`` makes the lower bound strict (DOSE > 0). ``also`` lists texts a
    number column accepts besides numbers (``BLQ`` in pk.CONC).

    >>> Col("AGE", "number", lo=0, hi=30).rule_range()
    'must be between 0 and 30'
    """

    name: str
    kind: str
    codes: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    optional: bool = False
    also: tuple[str, ...] = ()

    def rule_range(self) -> str:
        """The human wording of the range rule (empty when there is none)."""
        if self.lo is not None and self.hi is not None:
            return f"must be between {self.lo:g} and {self.hi:g}"
        if self.lo is not None:
            return f"must be {'>' if self.lo_open else '≥'} {self.lo:g}"
        return ""


_ID = Col("USUBJID", "text")
_YN = ("Y", "N")
SPEC: dict[str, tuple[Col, ...]] = {
    "subjects": (
        _ID,
        Col("AGE", "number", lo=0, hi=30),
        Col("SEX", "code", ("M", "F")),
        Col("INDICATION", "code", ("MRD_REEMERGENCE", "MRD_PERSISTENT", "CHEMO_INTOLERANCE")),
        Col("GENRISK", "code", ("HIGH", "STANDARD")),
        Col("PRIOR_HSCT", "code", _YN),
        Col("PRIOR_CART", "code", _YN),
        Col("DX_TO_INF_MO", "number", lo=0),
        Col("DOSE", "number", lo=0, lo_open=True),
        Col("MRD_PRELD", "number", lo=0, hi=1),
        Col("MRD_POSTLD", "number", lo=0, hi=1),
        Col("D28_RESPONSE", "code", ("CR", "CRI", "NR")),
        Col("D28_MRD_NEG", "code", _YN),
        Col("LAST_CONTACT_DAY", "integer", lo=0),
    ),
    "events": (
        _ID,
        Col("EVENT", "code", ("RELAPSE", "DEATH", "HSCT")),
        Col("DAY", "integer", lo=0),
        Col("DETAIL", "code"),  # allowed codes depend on EVENT: checked in _event_rules
    ),
    "adverse_events": (
        _ID,
        Col("TERM", "code", ("CRS", "ICANS", "NEUTROPENIA", "INFECTION", "HLH", "GVHD")),
        Col("GRADE", "integer", lo=1, hi=5),
        Col("ONSET_DAY", "integer"),
        Col("DETAIL", "code", optional=True),
    ),
    "medications": (_ID, Col("DRUG", "code"), Col("START_DAY", "integer")),
    "pk": (_ID, Col("DAY", "number"), Col("CONC", "number", lo=0, also=("BLQ",))),
    "labs": (
        _ID,
        Col("DAY", "number"),
        Col("TEST", "code", ("BCELL_PCT_WBC", "BCELL_PCT_LYM", "IL6", "ANC")),
        Col("VALUE", "number", lo=0),
    ),
}
EVENT_DETAIL = {"RELAPSE": ("CD19POS", "CD19NEG"), "DEATH": ("RELAPSE", "NRM"), "HSCT": ("ALLO",)}


def _num(text: str) -> float | None:
    text = text.strip()
    return float(text) if _NUMBER.match(text) else None


def parse_number(s: pd.Series) -> pd.Series:
    """Text to float64, NaN where the text is not a plain decimal number.

    Stricter than ``float()``: ``nan``, ``inf`` and ``1,5`` are not numbers here.

    >>> parse_number(pd.Series(["1", "2.5e-3", "nan", "1,5", ""])).tolist()
    [1.0, 0.0025, nan, nan, nan]
    """
    values = [_num(str(v)) for v in s]
    return pd.Series([np.nan if v is None else v for v in values], index=s.index, dtype="float64")


def _per_cell(ok) -> callable:
    """A column check from a predicate on one cell's text (a plain loop: the tables are
    small and pandas string methods cost more per call than the loop)."""
    return lambda s: pd.Series([bool(ok(v)) for v in s], index=s.index, dtype=bool)


def _within(col: Col, x: float | None) -> bool:
    if x is None:
        return True
    above = x > col.lo if col.lo_open else x >= col.lo
    return above and (col.hi is None or x <= col.hi)


def _cell_checks(col: Col) -> list[pa.Check]:
    """pandera checks for one column; each passes blanks and values an earlier check rejects,
    so a cell breaks exactly one rule."""
    checks = []
    if not col.optional:
        checks.append(pa.Check(_per_cell(lambda v: v.strip() != ""), error="required value is blank"))
    if col.kind in ("number", "integer"):
        also = set(col.also)
        word = "a whole number" if col.kind == "integer" else "a number"
        extra = "".join(f" or the text {a}" for a in col.also)
        checks.append(pa.Check(
            _per_cell(lambda v: v.strip() == "" or _num(v) is not None or v.strip().upper() in also),
            error=f"must be {word}{extra}"))
        if col.kind == "integer":
            checks.append(pa.Check(_per_cell(lambda v: (_num(v) or 0) % 1 == 0), error="must be a whole number"))
        if col.rule_range():
            checks.append(pa.Check(_per_cell(lambda v: _within(col, _num(v))), error=col.rule_range()))
    if col.codes:
        codes = set(col.codes)
        checks.append(pa.Check(_per_cell(lambda v: v.strip() == "" or v.strip().upper() in codes),
                               error=f"must be one of {', '.join(col.codes)} (any case)"))
    return checks


def _column_rules(table: str, df: pd.DataFrame) -> list[Violation]:
    # dtype None: the frames hold text by construction, and pandera's per-call str dtype
    # check costs more than all the rules together.
    cols = {c.name: pa.Column(None, _cell_checks(c), required=False) for c in SPEC[table]}
    try:
        pa.DataFrameSchema(cols).validate(df, lazy=True)
    except SchemaErrors as err:
        fc = err.failure_cases
        # A failure without an index (a check that itself failed) is still reported, never dropped.
        return [Violation(table, None if pd.isna(r.index) else int(r.index), r.column,
                          str(r.failure_case), str(r.check)) for r in fc.itertuples()]
    return []


def _privacy(table: str, df: pd.DataFrame) -> tuple[list[Violation], list[str]]:
    """Identifier-like column names and columns holding calendar dates; returns the
    violations and the offending columns (left out of later rules: one problem, one message)."""
    out, bad = [], []
    for c in df.columns:
        if c in IDENTIFIER_NAMES or "BIRTH" in c:
            out.append(Violation(table, None, c, None,
                                 "column name looks like a direct identifier (privacy): remove the column"))
            bad.append(c)
            continue
        dates = pd.Series([bool(_DATE.match(str(v).strip())) for v in df[c]], index=df.index, dtype=bool)
        if dates.any():
            row = dates.idxmax()
            out.append(Violation(table, int(row), c, df.at[row, c],
                                 f"looks like a calendar date ({int(dates.sum())} cell(s) in this column); "
                                 "use study days since infusion, never dates (privacy)"))
            bad.append(c)
    return out, bad


def _event_rules(ev: pd.DataFrame, subj: pd.DataFrame | None) -> list[Violation]:
    """Per-event rules: DETAIL codes per EVENT, one event of a kind, DAY ≤ last contact,
    DEATH on the last contact day."""
    out = []
    if not {"USUBJID", "EVENT", "DAY"} <= set(ev.columns):
        return out
    kind = ev["EVENT"].str.strip().str.upper()
    if "DETAIL" in ev.columns:
        detail = ev["DETAIL"].str.strip().str.upper()
        for row in ev.index:
            allowed = EVENT_DETAIL.get(kind[row])
            if allowed and detail[row] not in allowed and detail[row] != "":
                out.append(Violation("events", int(row), "DETAIL", ev.at[row, "DETAIL"],
                                     f"for EVENT {kind[row]} must be one of {', '.join(allowed)}"))
    known = kind.isin(EVENT_DETAIL)
    dup = ev[known].assign(_K=kind).duplicated(["USUBJID", "_K"])
    for row in dup[dup].index:
        out.append(Violation("events", int(row), "EVENT", ev.at[row, "EVENT"],
                             f"more than one {kind[row]} for patient {ev.at[row, 'USUBJID']} "
                             "(at most one of each kind)"))
    if subj is None or not {"USUBJID", "LAST_CONTACT_DAY"} <= set(subj.columns):
        return out
    last = parse_number(subj["LAST_CONTACT_DAY"]).groupby(subj["USUBJID"].to_numpy()).first()
    day = parse_number(ev["DAY"])
    day = day.where((day >= 0) & (day % 1 == 0))  # a bad DAY already has its message
    lcd = ev["USUBJID"].map(last)
    for row in ev.index[(day > lcd).to_numpy()]:
        out.append(Violation("events", int(row), "DAY", ev.at[row, "DAY"],
                             f"after the patient's LAST_CONTACT_DAY ({lcd[row]:g})"))
    death = (kind == "DEATH") & day.notna() & lcd.notna() & (day < lcd)
    for row in ev.index[death.to_numpy()]:
        out.append(Violation("events", int(row), "DAY", ev.at[row, "DAY"],
                             f"DEATH must be on the patient's LAST_CONTACT_DAY ({lcd[row]:g})"))
    return out


def _subject_rules(raw: dict[str, pd.DataFrame | None]) -> list[Violation]:
    subj = raw.get("subjects")
    if subj is None or "USUBJID" not in subj.columns:
        return []
    out = []
    if len(subj) == 0:
        out.append(Violation("subjects", None, None, None, "table has no rows: at least one patient is required"))
    ids = subj["USUBJID"]
    first = {}
    for row, uid in ids.items():
        if uid.strip() == "":
            continue
        if uid in first:
            out.append(Violation("subjects", int(row), "USUBJID", uid,
                                 f"duplicate USUBJID (first on row {first[uid]}); must be unique"))
        else:
            first[uid] = row
    if not first:  # no patients: "not in subjects" on every long row would only bury the real problem
        return out
    for table in TABLES[1:]:
        df = raw.get(table)
        if df is None or "USUBJID" not in df.columns:
            continue
        unknown = ~df["USUBJID"].isin(list(first)) & df["USUBJID"].str.strip().ne("")
        out += [Violation(table, int(r), "USUBJID", df.at[r, "USUBJID"], "not in subjects")
                for r in df.index[unknown.to_numpy()]]
    return out


def check_tables(raw: dict[str, pd.DataFrame | None]) -> list[Violation]:
    """All contract violations of raw text tables (index = spreadsheet row, header = row 1).

    A table given as ``None`` could not be read (its problem is already reported by the
    loader); rules needing it are skipped.

    >>> subj = pd.DataFrame({c.name: ["1"] for c in SPEC["subjects"]}, index=[2])
    >>> subj = subj.assign(USUBJID="P1", SEX="m", INDICATION="MRD_PERSISTENT", GENRISK="high",
    ...                    PRIOR_HSCT="N", PRIOR_CART="N", D28_RESPONSE="CR", D28_MRD_NEG="Y", AGE="31")
    >>> empty = {t: pd.DataFrame({c.name: [] for c in SPEC[t]}, dtype=str) for t in TABLES[1:]}
    >>> for v in check_tables({"subjects": subj, **empty}): print(v)
    subjects, row 2, column AGE, value '31': must be between 0 and 30
    """
    out = []
    raw = dict(raw)
    for table in TABLES:
        df = raw.get(table)
        if df is None:
            continue
        found, bad = _privacy(table, df)
        out += found
        df = df.drop(columns=bad)
        raw[table] = df
        for col in SPEC[table]:
            if not col.optional and col.name not in df.columns and col.name not in bad:
                out.append(Violation(table, None, col.name, None, "required column is missing"))
        out += _column_rules(table, df)
    out += _subject_rules(raw)
    if raw.get("events") is not None:
        out += _event_rules(raw["events"], raw.get("subjects"))
    return out


def type_table(table: str, df: pd.DataFrame) -> pd.DataFrame:
    """Typed copy of a validated raw table: numbers float64, contract integers int64,
    codes upper case, text stripped, a RangeIndex. pk gains ``BLQ_TEXT`` (bool) and has
    CONC NaN where the text ``BLQ`` was given. A missing optional column is added blank.

    >>> raw = pd.DataFrame({"USUBJID": ["P1", "P1"], "DAY": ["7", "14"], "CONC": ["5000", "blq"]})
    >>> type_table("pk", raw)
      USUBJID   DAY    CONC  BLQ_TEXT
    0      P1   7.0  5000.0     False
    1      P1  14.0     NaN      True
    """
    out = pd.DataFrame({c: pd.Series([str(v).strip() for v in df[c]], dtype=object) for c in df.columns})
    for col in SPEC[table]:
        s = out[col.name] if col.name in out.columns else pd.Series([""] * len(out), dtype=object)
        if col.kind == "code":
            s = pd.Series([v.upper() for v in s], dtype=object)
        elif col.kind == "number":
            s = parse_number(s)
        elif col.kind == "integer":
            s = parse_number(s).astype(np.int64)
        out[col.name] = s.to_numpy()
    if table == "pk":
        out["BLQ_TEXT"] = np.array([str(v).strip().upper() == "BLQ" for v in df["CONC"]], dtype=bool)
    return out
