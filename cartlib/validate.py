"""The cohort rules of ``docs/COHORT.md`` (tables, columns, codes, ranges) applied to raw text tables.

The loader (:mod:`cartlib.io`) reads every cell as text and hands the tables here
as DataFrames whose index is the spreadsheet row number (header = row 1), so a
failure can name the row and the raw value the user typed. Every cell rule runs on a
column's distinct texts (long tables repeat values) and is mapped back to the rows, so
a check costs one vectorised pass per column; a cell breaks at most one rule, the first
of: size, blank, number shape, finiteness, whole number, range, code. The privacy rules
(identifier-like column names, calendar dates, pseudonymous USUBJID) are in
:mod:`cartlib.privacy`. :func:`check_tables` returns the list of
:class:`~cartlib.errors.Violation`; raising is the loader's job.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cartlib.errors import Violation, format_number
from cartlib.privacy import (IDENTIFIER_CONCEPTS, dates_among, distinct, flags, identifier_concept, mask,
                             normalise_name, usubjid_problems)

TABLES = ("subjects", "events", "adverse_events", "medications", "pk", "labs")

MAX_CELL_CHARS = 10_000
"""Longest cell accepted, in characters (a contract value is a few characters; a long cell is a
pasted document or an attack on memory)."""
DAY_MIN, DAY_MAX = -365, 36_525
"""Study days lie from a year before infusion to 100 years after it."""
MAX_DX_TO_INF_MO = 360
"""Months from diagnosis to infusion: at most 30 years, the AGE cap."""
MAX_DOSE = 1_000
"""CAR-T dose cap, 10^6 cells/kg (doses given are about 0.1 to 10)."""
MAX_CONC = 1e12
"""pk CONC cap, copies/µg DNA (far above any qPCR result; keeps AUCs finite)."""
MAX_LAB_VALUE = 1e9
"""labs VALUE cap (IL-6 in pg/mL and ANC in 10^9/L stay far below it; B-cell % at most 100)."""

IDENTIFIER_NAMES = frozenset(w for concept in IDENTIFIER_CONCEPTS.values() for w in concept["words"])
"""The single words of the identifier concepts (:data:`cartlib.privacy.IDENTIFIER_CONCEPTS` also
has phrases such as MEDICAL RECORD and NATIONAL ID)."""

# Plain decimal numbers in ASCII digits ("\d" would also take Arabic-Indic or fullwidth digits).
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = re.compile(r"[+-]?(?:inf(?:inity)?|nan)", re.IGNORECASE)
_NON_ASCII_DIGIT = re.compile(r"(?![0-9])\d")


@dataclass(frozen=True)
class Col:
    """One contract column: its kind (text / code / number / integer) and its limits.

    ``codes`` empty on a code column means any text, upper-cased on loading.
    ``lo_open`` makes the lower bound strict (DOSE > 0). ``also`` lists texts a
    number column accepts besides numbers (``BLQ`` in pk.CONC).

    >>> Col("AGE", "number", lo=0, hi=30).rule_range(), Col("DOSE", "number", lo=0, hi=1000, lo_open=True).rule_range()
    ('must be between 0 and 30', 'must be > 0 and ≤ 1,000')
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
        lo = None if self.lo is None else format_number(self.lo)
        hi = None if self.hi is None else format_number(self.hi)
        if lo is not None and hi is not None:
            return f"must be > {lo} and ≤ {hi}" if self.lo_open else f"must be between {lo} and {hi}"
        if lo is not None:
            return f"must be {'>' if self.lo_open else '≥'} {lo}"
        return f"must be ≤ {hi}" if hi is not None else ""

    def within(self, x: np.ndarray) -> np.ndarray:
        """Which finite numbers satisfy the range rule."""
        ok = np.ones(len(x), dtype=bool)
        if self.lo is not None:
            ok &= x > self.lo if self.lo_open else x >= self.lo
        if self.hi is not None:
            ok &= x <= self.hi
        return ok


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
        Col("DX_TO_INF_MO", "number", lo=0, hi=MAX_DX_TO_INF_MO),
        Col("DOSE", "number", lo=0, hi=MAX_DOSE, lo_open=True),
        Col("MRD_PRELD", "number", lo=0, hi=1),
        Col("MRD_POSTLD", "number", lo=0, hi=1),
        Col("D28_RESPONSE", "code", ("CR", "CRI", "NR")),
        Col("D28_MRD_NEG", "code", _YN),
        Col("LAST_CONTACT_DAY", "integer", lo=0, hi=DAY_MAX),
    ),
    "events": (
        _ID,
        Col("EVENT", "code", ("RELAPSE", "DEATH", "HSCT")),
        Col("DAY", "integer", lo=0, hi=DAY_MAX),
        Col("DETAIL", "code"),  # allowed codes depend on EVENT: checked in _event_rules
    ),
    "adverse_events": (
        _ID,
        Col("TERM", "code", ("CRS", "ICANS", "NEUTROPENIA", "INFECTION", "HLH", "GVHD")),
        Col("GRADE", "integer", lo=1, hi=5),
        Col("ONSET_DAY", "integer", lo=DAY_MIN, hi=DAY_MAX),
        Col("DETAIL", "code", optional=True),
    ),
    "medications": (_ID, Col("DRUG", "code"), Col("START_DAY", "integer", lo=DAY_MIN, hi=DAY_MAX)),
    "pk": (_ID, Col("DAY", "number", lo=DAY_MIN, hi=DAY_MAX), Col("CONC", "number", lo=0, hi=MAX_CONC, also=("BLQ",))),
    "labs": (
        _ID,
        Col("DAY", "number", lo=DAY_MIN, hi=DAY_MAX),
        Col("TEST", "code", ("BCELL_PCT_WBC", "BCELL_PCT_LYM", "IL6", "ANC")),
        Col("VALUE", "number", lo=0, hi=MAX_LAB_VALUE),
    ),
}
EVENT_DETAIL = {"RELAPSE": ("CD19POS", "CD19NEG"), "DEATH": ("RELAPSE", "NRM"), "HSCT": ("ALLO",)}


def _numbers(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(plain, value) of stripped texts: ``plain`` where the text is a plain ASCII decimal
    number, ``value`` its float (inf on overflow) and NaN elsewhere."""
    plain = flags(_NUMBER.fullmatch, texts)
    x = np.full(len(texts), np.nan)
    if plain.any():
        x[plain] = [float(t) for t in texts[plain]]
    return plain, x


def _upper(texts: np.ndarray) -> np.ndarray:
    return np.array([t.upper() for t in texts], dtype=object)


def _strip(texts: np.ndarray) -> np.ndarray:
    return np.array([t.strip() for t in texts], dtype=object)


def parse_number(s: pd.Series) -> pd.Series:
    """Text to float64, NaN where the text is not a plain decimal number in ASCII digits or
    does not fit a float.

    Stricter than ``float()``: ``nan``, ``inf``, ``1e400``, ``1,5`` and Arabic-Indic digits are
    not numbers here.

    >>> parse_number(pd.Series(["1", "2.5e-3", "nan", "1,5", "", "1e400", "\u0663"])).tolist()
    [1.0, 0.0025, nan, nan, nan, nan, nan]
    """
    codes, texts = distinct(s)
    _, x = _numbers(_strip(texts))
    x[~np.isfinite(x)] = np.nan
    return pd.Series(x[codes], index=s.index, dtype="float64")


def _cell_messages(col: Col, texts: np.ndarray, msg: np.ndarray) -> None:
    """Fill ``msg`` (one per distinct stripped text, '' = fine so far) with the first rule of
    ``col`` each text breaks."""
    def flag(where, text):
        where = np.asarray(where, dtype=bool) & (msg == "")
        msg[where] = text

    blank = flags(lambda t: t == "", texts)
    if not col.optional:
        flag(blank, "required value is blank")
    if col.kind in ("number", "integer"):
        also = flags(set(col.also).__contains__, _upper(texts))
        plain, x = _numbers(texts)
        other = ~blank & ~plain & ~also
        if other.any():
            flag(other & flags(_NON_ASCII_DIGIT.search, texts),
                 "is written with non-ASCII digits (e.g. Arabic-Indic); use the digits 0-9")
            flag(other & flags(_NON_FINITE.fullmatch, texts), "must be a finite number: inf and nan are not numbers here")
            word = "a whole number" if col.kind == "integer" else "a number"
            flag(other, f"must be {word}{''.join(f' or the text {a}' for a in col.also)}")
        finite = plain & np.isfinite(x)
        flag(plain & ~finite, "is too large: beyond the range of a 64-bit number")
        if col.kind == "integer":
            flag(finite & (np.nan_to_num(x) % 1 != 0), "must be a whole number")
        if col.rule_range():
            flag(finite & ~col.within(np.nan_to_num(x)), col.rule_range())
    if col.codes:
        flag(~blank & ~flags(set(col.codes).__contains__, _upper(texts)),
             f"must be one of {', '.join(col.codes)} (any case)")


def _emit(table: str, column: str, df: pd.DataFrame, codes: np.ndarray, msg: np.ndarray,
          masked: bool = False) -> list[Violation]:
    per_row = msg[codes]
    rows = np.flatnonzero(per_row != "")
    values = df[column].to_numpy()
    return [Violation(table, int(df.index[i]), column, mask(values[i]) if masked else str(values[i]), per_row[i])
            for i in rows]


def _columns(table: str, df: pd.DataFrame) -> tuple[list[Violation], list[str]]:
    """Cell size, privacy and column rules of one table; returns the violations and the columns
    refused as a whole (identifiers, dates: left out of later rules, one problem one message)."""
    out, refused = [], []
    spec = {c.name: c for c in SPEC[table]}
    for name in df.columns:
        concept = None if name in spec else identifier_concept(name)
        if concept:
            out.append(Violation(table, None, name, None,
                                 f"column name looks like a direct identifier ({concept}; read as "
                                 f"{' '.join(normalise_name(name))}): remove the column (privacy)"))
            refused.append(name)
            continue
        codes, texts = distinct(df[name])
        msg = np.full(len(texts), "", dtype=object)
        long = flags(lambda t: len(t) > MAX_CELL_CHARS, texts)
        if long.any():
            msg[long] = [f"cell has {len(t):,} characters; at most {MAX_CELL_CHARS:,} are accepted" for t in texts[long]]
            texts = np.where(long, "", texts)
        texts = _strip(texts)
        dates = dates_among(texts, name)
        if dates.any():
            rows = np.flatnonzero(dates[codes])
            example = df[name].iat[rows[0]]
            out.append(Violation(table, int(df.index[rows[0]]), name, mask(example),
                                 f"looks like a calendar date ({len(rows)} cell(s) in this column; value masked); "
                                 "use study days since infusion, never dates (privacy)"))
            refused.append(name)
            out += _emit(table, name, df, codes, np.where(long, msg, ""))
            continue
        if name in spec:
            _cell_messages(spec[name], texts, msg)
        out += _emit(table, name, df, codes, msg)
    return out, refused


def _valid_days(s: pd.Series, col: Col) -> pd.Series:
    """The column's numbers where they pass its rules, NaN elsewhere (a bad cell already has
    its message; a rule built on it would only repeat it)."""
    day = parse_number(s)
    ok = day.notna() & col.within(day.fillna(0).to_numpy())
    if col.kind == "integer":
        ok &= day % 1 == 0
    return day.where(ok)


def _event_rules(ev: pd.DataFrame, subj: pd.DataFrame | None) -> list[Violation]:
    """Per-event rules: DETAIL codes per EVENT, one event of a kind, DAY ≤ last contact,
    DEATH on the last contact day."""
    out = []
    if not {"USUBJID", "EVENT", "DAY"} <= set(ev.columns):
        return out
    kind = ev["EVENT"].str.strip().str.upper()
    if "DETAIL" in ev.columns:
        detail = ev["DETAIL"].str.strip().str.upper()
        for code, allowed in EVENT_DETAIL.items():
            bad = (kind == code) & detail.ne("") & ~detail.isin(allowed)
            out += [Violation("events", int(row), "DETAIL", ev.at[row, "DETAIL"],
                              f"for EVENT {code} must be one of {', '.join(allowed)}") for row in ev.index[bad.to_numpy()]]
    # Plain arrays, not a filtered frame: assigning a Series to an empty frame adopts the Series'
    # index, which once made every row of an all-invalid EVENT column a "duplicate".
    keys = pd.DataFrame({"USUBJID": ev["USUBJID"].to_numpy(), "EVENT": kind.to_numpy()})
    dup = keys.duplicated().to_numpy() & kind.isin(EVENT_DETAIL).to_numpy()
    out += [Violation("events", int(ev.index[i]), "EVENT", ev["EVENT"].iat[i],
                      f"more than one {kind.iat[i]} for patient {ev['USUBJID'].iat[i]} (at most one of each kind)")
            for i in np.flatnonzero(dup)]
    if subj is None or not {"USUBJID", "LAST_CONTACT_DAY"} <= set(subj.columns):
        return out
    spec = {c.name: c for c in SPEC["subjects"] + SPEC["events"][2:3]}
    last = _valid_days(subj["LAST_CONTACT_DAY"], spec["LAST_CONTACT_DAY"]).groupby(subj["USUBJID"].to_numpy()).first()
    day = _valid_days(ev["DAY"], spec["DAY"])
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
    """USUBJID: pseudonymous, unique in subjects, and every long-table patient in subjects.
    A non-pseudonymous id is reported once, where it is defined (subjects), or in a long table
    instead of "not in subjects"; its value is masked."""
    subj = raw.get("subjects")
    if subj is None or "USUBJID" not in subj.columns:
        return []
    out = []
    if len(subj) == 0:
        out.append(Violation("subjects", None, None, None, "table has no rows: at least one patient is required"))
    ids = subj["USUBJID"]
    why = usubjid_problems(ids)
    out += [Violation("subjects", int(row), "USUBJID", mask(ids[row]), why[row]) for row in ids.index[why.ne("")]]
    valid = ids.ne("") & why.eq("")
    dup = valid & ids.duplicated(keep="first")
    if dup.any():
        first = pd.Series(ids.index, index=ids.to_numpy())[valid.to_numpy()].groupby(level=0).first()
        out += [Violation("subjects", int(row), "USUBJID", ids[row],
                          f"duplicate USUBJID (first on row {first[ids[row]]}); must be unique")
                for row in ids.index[dup.to_numpy()]]
    if not ids.ne("").any():  # no patients: "not in subjects" on every long row would only bury the real problem
        return out
    known = pd.unique(ids.to_numpy(dtype=object))
    for table in TABLES[1:]:
        df = raw.get(table)
        if df is None or "USUBJID" not in df.columns:
            continue
        missing = df["USUBJID"][~df["USUBJID"].isin(known) & df["USUBJID"].ne("")]
        why = usubjid_problems(missing)
        out += [Violation(table, int(r), "USUBJID", mask(missing[r]) if why[r] else missing[r], why[r] or "not in subjects")
                for r in missing.index]
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
        found, refused = _columns(table, df)
        out += found
        df = df.drop(columns=refused)
        raw[table] = df
        for col in SPEC[table]:
            if not col.optional and col.name not in df.columns and col.name not in refused:
                out.append(Violation(table, None, col.name, None, "required column is missing"))
    out += _subject_rules(raw)
    if raw.get("events") is not None:
        out += _event_rules(raw["events"], raw.get("subjects"))
    return out


def _per_distinct(s: pd.Series, convert) -> np.ndarray:
    """``convert`` (distinct stripped texts -> array) applied once per distinct value."""
    codes, texts = distinct(s)
    return np.asarray(convert(_strip(texts)))[codes]


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
    spec = {c.name: c for c in SPEC[table]}
    columns = {}
    for name in df.columns:
        col = spec.get(name)
        if col is not None and col.kind == "code":
            columns[name] = _per_distinct(df[name], _upper)
        elif col is not None and col.kind in ("number", "integer"):
            x = parse_number(df[name]).to_numpy()
            columns[name] = x.astype(np.int64) if col.kind == "integer" else x
        else:
            columns[name] = _per_distinct(df[name], lambda t: t)
    for col in SPEC[table]:
        if col.name not in columns:
            columns[col.name] = np.full(len(df), "", dtype=object)
    out = pd.DataFrame(columns, index=pd.RangeIndex(len(df)))
    if table == "pk":
        out["BLQ_TEXT"] = _per_distinct(df["CONC"], lambda t: flags(lambda x: x.upper() == "BLQ", t))
    return out
