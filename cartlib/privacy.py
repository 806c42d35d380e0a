"""Privacy rules of the cohort loader: identifier-like column names, calendar dates in
cells, and the shape of a pseudonymous USUBJID. Refusal is by rule, not by a list of
spellings: a column name is normalised and matched against a vocabulary of identifier
*concepts*; a cell is matched against the date formats clinical exports produce.

The vocabularies are module constants so the documentation (docs/COHORT.md) and the
tests read the same rules as the code.

>>> identifier_concept("Patient Name"), identifier_concept("D.O.B."), identifier_concept("MRN#")
('name', 'birth date or year', 'record number')
>>> identifier_concept("DRUG_NAME") is None, identifier_concept("ZIPPER") is None
(True, True)
>>> import pandas as pd
>>> date_cells(pd.Series(["04MAR2021", "March 4, 2021", "7", "CD19NEG"])).tolist()
[True, True, False, False]
>>> mask("Smith, John0")
'XXXXX, XXXX#'
"""
from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np
import pandas as pd

from cartlib.errors import MESSAGE_VALUE_CHARS

__all__ = ["IDENTIFIER_CONCEPTS", "NON_PERSON_QUALIFIERS", "DATE_FORMATS", "USUBJID_PATTERN",
           "USUBJID_MAX_LENGTH", "normalise_name", "identifier_concept", "distinct", "dates_among",
           "date_cells", "flags", "mask", "shorten", "usubjid_problems"]

IDENTIFIER_CONCEPTS: dict[str, dict[str, tuple]] = {
    "name": {"words": ("NAME", "NAMES", "SURNAME", "SURNAMES", "FORENAME", "FORENAMES")},
    "initials": {"words": ("INITIALS", "INITS")},
    "birth date or year": {"words": ("BIRTH", "BIRTHDATE", "BIRTHDAY", "BIRTHYEAR", "DOB", "YOB", "BORN")},
    "record number": {
        "words": ("MRN", "MRNO", "NHS", "SSN", "PASSPORT"),
        "phrases": (("MEDICAL", "RECORD"), ("HOSPITAL", "NUMBER"), ("HOSPITAL", "NO"), ("HOSPITAL", "NUM"),
                    ("RECORD", "NUMBER"), ("NATIONAL", "ID"), ("NATIONAL", "NUMBER"), ("NATIONAL", "INSURANCE"),
                    ("SOCIAL", "SECURITY"), ("INSURANCE", "NUMBER"), ("HEALTH", "NUMBER")),
    },
    "address": {
        "words": ("ADDRESS", "ADDR", "STREET", "POSTCODE", "ZIP", "ZIPCODE"),
        "phrases": (("POST", "CODE"), ("POSTAL", "CODE")),
    },
    "phone": {"words": ("PHONE", "TELEPHONE", "TEL", "MOBILE", "CELLPHONE", "FAX")},
    "e-mail": {"words": ("EMAIL",), "phrases": (("E", "MAIL"),)},
}
"""Identifier concepts: a column whose normalised name contains one of a concept's words, or
a phrase's words in a row, is refused (privacy). Words are whole tokens, so ``ZIPPER`` is not
``ZIP``."""

NON_PERSON_QUALIFIERS = frozenset({
    "DRUG", "MEDICATION", "PRODUCT", "TEST", "LAB", "ASSAY", "SITE", "CENTRE", "CENTER", "HOSPITAL",
    "INSTITUTION", "STUDY", "TRIAL", "PROTOCOL", "SPONSOR", "TRANSPLANT", "REGIMEN", "EVENT", "TERM",
    "VARIABLE", "PARAMETER", "FILE", "SHEET", "COLUMN", "VECTOR", "CONSTRUCT", "BATCH", "LINE", "GENE",
    "MARKER", "ANTIGEN", "ANTIBODY", "ORGANISM", "PATHOGEN", "VIRUS", "DEVICE", "DISEASE",
})
"""A NAME word right after one of these words names a thing, not a person (``DRUG_NAME``,
``TRANSPLANT_NAME``, ``SITE_NAME`` are accepted); ``NAME_OF_DRUG`` is still refused."""

# Words a glued token may be made of (``PATIENTNAME`` = PATIENT + NAME, ``DATEOFBIRTH``):
# a token that splits entirely into these words is read as those words.
_GLUE_WORDS = frozenset({
    "PATIENT", "PT", "SUBJECT", "PERSON", "PERSONAL", "FIRST", "LAST", "GIVEN", "FAMILY", "FULL", "MIDDLE",
    "MAIDEN", "HOME", "WORK", "CONTACT", "MOTHER", "FATHER", "PARENT", "DATE", "YEAR", "DAY", "OF",
    "NUMBER", "NO", "NUM", "NR", "ID", "CODE", "CELL", "MEDICAL", "RECORD", "NATIONAL", "SOCIAL",
    "SECURITY", "INSURANCE", "HEALTH", "POST", "POSTAL", "MAIL", "E", "PRIMARY", "SECONDARY", "ALT",
    "OTHER", "CURRENT", "PREVIOUS", "TEXT", "VALUE", "LINE", "FIELD", "INFO", "DETAILS",
}) | NON_PERSON_QUALIFIERS | frozenset(
    w for concept in IDENTIFIER_CONCEPTS.values() for w in concept["words"])


def _split_camel(text: str) -> str:
    # "PatientName" -> "Patient Name", "MRNNumber" -> "MRN Number", "Name2" -> "Name 2"
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    text = re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", " ", text)
    return re.sub(r"(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])", " ", text)


def normalise_name(name: str) -> list[str]:
    """A column name as upper-case word tokens: Unicode NFKC (fullwidth letters become
    ASCII), format characters such as zero-width spaces dropped, CamelCase split, any
    other punctuation a separator, case-folded; a run of one-letter tokens is joined
    (``D.O.B.`` is ``DOB``).

    >>> normalise_name("PatientName"), normalise_name("Ｄ.Ｏ.Ｂ."), normalise_name("NA\u200bME")
    (['PATIENT', 'NAME'], ['DOB'], ['NAME'])
    """
    text = unicodedata.normalize("NFKC", str(name))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    tokens = [t for t in re.split(r"[\W_]+", _split_camel(text).casefold().upper()) if t]
    out, run = [], []
    for tok in tokens + [""]:
        if len(tok) == 1 and tok.isalpha():
            run.append(tok)
            continue
        if run:
            out.append("".join(run))
            run = []
        if tok:
            out.append(tok)
    return out


_MAX_GLUED = 40  # longer tokens are not split (bounds the work on hostile names)


@functools.lru_cache(maxsize=4096)
def _glued(token: str) -> tuple[str, ...] | None:
    """The fewest glue words ``token`` is made of, or None."""
    if token in _GLUE_WORDS:
        return (token,)
    if len(token) > _MAX_GLUED:
        return None
    best = None
    for i in range(len(token) - 1, 0, -1):
        head = token[:i]
        if head in _GLUE_WORDS:
            rest = _glued(token[i:])
            if rest is not None and (best is None or len(rest) + 1 < len(best)):
                best = (head, *rest)
    return best


def _words(name: str) -> list[str]:
    out = []
    for tok in normalise_name(name):
        out += _glued(tok) or (tok,)
    return out


def identifier_concept(name: str) -> str | None:
    """The identifier concept a column name names (a key of :data:`IDENTIFIER_CONCEPTS`), or None.

    >>> [identifier_concept(n) for n in ("GIVEN_NAME", "E-MAIL", "NATIONAL ID", "TRANSPLANT_NAME", "AGE")]
    ['name', 'e-mail', 'record number', None, None]
    """
    words = _words(name)
    for concept, vocab in IDENTIFIER_CONCEPTS.items():
        for i, w in enumerate(words):
            if w in vocab["words"]:
                if w in ("NAME", "NAMES") and i > 0 and words[i - 1] in NON_PERSON_QUALIFIERS:
                    continue
                return concept
        for phrase in vocab.get("phrases", ()):
            n = len(phrase)
            if any(tuple(words[i:i + n]) == phrase for i in range(len(words) - n + 1)):
                return concept
    return None


_Y4 = r"(?:19|20)\d{2}"
_MM = r"(?:0?[1-9]|1[0-2])"
_DD = r"(?:0?[1-9]|[12]\d|3[01])"
_MON = (r"(?:JAN(?:UARY)?|FEB(?:RUARY)?|MAR(?:CH)?|APR(?:IL)?|MAY|JUNE?|JULY?|AUG(?:UST)?"
        r"|SEP(?:T(?:EMBER)?)?|OCT(?:OBER)?|NOV(?:EMBER)?|DEC(?:EMBER)?)")
_ORD = r"(?:ST|ND|RD|TH)?"

DATE_FORMATS: dict[str, tuple[str, str, str]] = {
    # name: (where it is looked for, regex, examples)
    "ISO date, with or without time and zone": (
        "anywhere", rf"{_Y4}[-/.]{_MM}[-/.]{_DD}", "2021-03-04, 2021/3/4, 2021-03-04T10:30:00+01:00"),
    "day/month/year or month/day/year": (
        "anywhere", rf"{_DD}[-/.]{_DD}[-/.](?:{_Y4}|\d{{2}})", "04/03/2021, 03/04/2021, 4.3.21"),
    "day, month name, year (SAS DATE9/DATE7)": (
        "anywhere", rf"{_DD}{_ORD}[- ]?{_MON}\.?,?[- ]?(?:{_Y4}|\d{{2}})",
        "04MAR2021, 4MAR21, 04-Mar-2021, 4 March 2021, 04MAR2021:10:30:00"),
    "month name, day, year": (
        "anywhere", rf"(?<![A-Z]){_MON}\.? {_DD}{_ORD},? {_Y4}", "March 4, 2021, Mar 4 2021"),
    "ISO basic date-time": ("anywhere", rf"{_Y4}(?:0[1-9]|1[0-2]){_DD}T\d{{4}}", "20210304T1030"),
    "year and month": ("whole cell", rf"{_Y4}[-/]{_MM}|{_MM}[-/]{_Y4}", "2021-03, 2021/3, 03/2021"),
    "month name and year": (
        "whole cell", rf"{_MON}\.?[-, ]*{_Y4}|{_Y4}[- ]?{_MON}", "March 2021, MAR2021, 2021 Mar"),
    "ordinal date": ("whole cell", rf"{_Y4}-(?:00[1-9]|0[1-9]\d|[12]\d\d|3[0-5]\d|36[0-6])", "2021-063"),
    "ISO week date": ("whole cell", rf"{_Y4}-?W(?:0[1-9]|[1-4]\d|5[0-3])(?:-?[1-7])?", "2021-W09-4"),
    "YYYYMMDD in a column of dates": (
        "date-like column", rf"{_Y4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])", "20210304"),
}
"""Calendar-date formats refused in any cell (privacy). ``anywhere``: found inside longer text
too; ``whole cell``: only when the cell is just that; ``date-like column``: an eight-digit
YYYYMMDD number counts as a date only in a column whose name contains DATE or DT or whose
every non-blank cell is one (elsewhere it could be a count or an accession number)."""


def _joined(where: str) -> str:
    return "|".join(f"(?:{rx})" for kind, rx, _ in DATE_FORMATS.values() if kind == where)


_ANYWHERE = re.compile(rf"(?<![0-9])(?:{_joined('anywhere')})(?![0-9])", re.IGNORECASE | re.ASCII)
_WHOLE = re.compile(rf"\s*(?:{_joined('whole cell')})\s*", re.IGNORECASE | re.ASCII)
_COMPACT = re.compile(rf"\s*(?:{_joined('date-like column')})\s*", re.ASCII)
_DATE_COLUMN_WORDS = ("DATE", "DT", "DTC", "DTM")
_DIGIT = re.compile("[0-9]")


def distinct(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(codes, distinct texts) of a column: ``texts[codes]`` gives the column back as text.
    Rules run on the distinct texts only (long tables repeat values), then map back.

    >>> codes, texts = distinct(pd.Series(["a", "b", "a"]))
    >>> codes.tolist(), texts.tolist()
    ([0, 1, 0], ['a', 'b'])
    """
    codes, uniq = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=False)
    if not all(isinstance(t, str) for t in uniq):
        uniq = np.array([str(t) for t in uniq], dtype=object)
    return codes, np.asarray(uniq, dtype=object)


def flags(test, texts) -> np.ndarray:
    """``bool(test(text))`` for each text, as a boolean array (a plain loop: on distinct values
    it costs what pandas string methods cost, without their per-call overhead on small tables).

    >>> flags(re.compile("[0-9]+").fullmatch, ["12", "a"]).tolist()
    [True, False]
    """
    return np.fromiter((bool(test(t)) for t in texts), dtype=bool, count=len(texts))


def dates_among(texts: np.ndarray, column: str = "") -> np.ndarray:
    """Which of (distinct) cell texts hold a calendar date (:data:`DATE_FORMATS`); ``column``
    (the column's name) decides whether eight-digit YYYYMMDD numbers count."""
    hit = np.zeros(len(texts), dtype=bool)
    has_digit = flags(_DIGIT.search, texts)
    if not has_digit.any():
        return hit
    cand = texts[has_digit]
    found = flags(_ANYWHERE.search, cand) | flags(_WHOLE.fullmatch, cand)
    compact = flags(_COMPACT.fullmatch, cand)
    if compact.any():
        by_name = any(w in _DATE_COLUMN_WORDS for w in normalise_name(column))
        if by_name or compact.sum() == sum(1 for t in texts if t.strip()):
            found |= compact
    hit[has_digit] = found
    return hit


def date_cells(values: pd.Series, column: str = "") -> pd.Series:
    """Boolean mask of the cells that hold a calendar date (:data:`DATE_FORMATS`).

    >>> s = pd.Series(["2021-063", "20210304", "1.5", "12"])
    >>> date_cells(s).tolist(), date_cells(s, column="VISIT_DATE").tolist()
    ([True, False, False, False], [True, True, False, False])
    """
    codes, texts = distinct(values)
    return pd.Series(dates_among(texts, column)[codes], index=values.index, dtype=bool)


_LETTER = re.compile(r"[^\W\d_]")


def shorten(value: str) -> str:
    """A value as a message shows it: at most :data:`MESSAGE_VALUE_CHARS` characters then ``…``.

    >>> shorten("x" * 70) == "x" * 60 + "…"
    True
    """
    value = str(value)
    return value if len(value) <= MESSAGE_VALUE_CHARS else value[:MESSAGE_VALUE_CHARS] + "…"


def mask(value: str) -> str:
    """A value with its content hidden and its shape kept (digits ``#``, letters ``X``), shortened,
    for messages about values that may identify a person.

    >>> mask("04MAR2021"), mask("March 4, 2021")
    ('##XXX####', 'XXXXX #, ####')
    """
    return shorten(_LETTER.sub("X", re.sub(r"[0-9]", "#", str(value))))


USUBJID_PATTERN = r"[A-Za-z0-9._-]+"
"""A pseudonymous USUBJID: ASCII letters, digits, ``-``, ``_`` and ``.`` only."""
USUBJID_MAX_LENGTH = 64
_USUBJID = re.compile(USUBJID_PATTERN)
_NAME_SHAPE = re.compile(r".*\S,\s+\S.*")


def usubjid_problems(ids: pd.Series) -> pd.Series:
    """Per cell, why a USUBJID does not look pseudonymous ('' when it does, or is blank).

    >>> usubjid_problems(pd.Series(["SYN-01", "Smith, John0", "a b", ""])).str[:22].tolist()
    ['', "looks like a person's ", 'must be a pseudonymous', '']
    """
    codes, texts = distinct(ids)
    bad = flags(lambda t: t and (len(t) > USUBJID_MAX_LENGTH or not _USUBJID.fullmatch(t)), texts)
    why = np.full(len(texts), "", dtype=object)
    if bad.any():
        why[bad] = np.where(
            flags(_NAME_SHAPE.fullmatch, texts[bad]),
            "looks like a person's name ('surname, given name'); use a pseudonymous code",
            f"must be a pseudonymous code: ASCII letters, digits, '-', '_' and '.' only, "
            f"at most {USUBJID_MAX_LENGTH} characters")
    return pd.Series(why[codes], index=ids.index, dtype=object)
