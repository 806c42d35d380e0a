"""Privacy: identifier-like column names refused by concept (not by a list of spellings),
calendar dates refused in any cell in the common clinical formats, USUBJID pseudonymous;
and no false positives on contract-valid cohorts (the bundled one and synthetic ones)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cartlib.errors import CohortError
from cartlib.io import load_cohort
from cartlib.privacy import IDENTIFIER_CONCEPTS, identifier_concept
from cohorts.base import add_column, set_cell, tables, write_csv

ROOT = Path(__file__).resolve().parents[1]

# 50 identifier column names: the spellings a fuzzed pass found accepted, then common others.
IDENTIFIER_VARIANTS = [
    "PATIENT NAME", "PatientName", "FIRST NAME", "GIVEN_NAME", "FULL_NAME", "INITIALS", "D.O.B.", "YOB",
    "MRN#", "MEDICAL_RECORD_NUMBER", "HOSPITAL_NUMBER", "NHS_NUMBER", "SSN", "HOME_ADDRESS", "POSTCODE",
    "ZIP", "PHONE_NUMBER", "TELEPHONE", "MOBILE", "E-MAIL", "EMAIL_ADDRESS", "NATIONAL ID",
    "\uff2e\uff21\uff2d\uff25", "NA\u200bME", "NAME", "PATIENT_NAME", "FIRST_NAME", "LAST_NAME", "SURNAME", "DOB",
    "MRN", "PHONE", "ADDRESS", "EMAIL", "NATIONAL_ID", "BIRTHDATE", "DATE_OF_BIRTH", "DateOfBirth",
    "year of birth", "Family Name", "forename", "Pt Initials", "Zip Code", "post_code", "Cell Phone",
    "Social Security No", "passport", "fax", "Mobile-Phone", "ADDR_LINE_1",
]
# 25 calendar-date spellings (one per cell) in the formats clinical exports produce.
DATE_VARIANTS = [
    "04MAR2021", "4MAR21", "March 4, 2021", "2021-03-04T10:30:00+01:00", "2021-03-04T10:30:00Z", "2021-03",
    "03/2021", "2021-063", "2021-03-04", "04/03/2021", "2021/3/4", "4 Mar 2021", "04-Mar-2021",
    "4 March 2021", "Thursday, March 4, 2021", "2021-03-04 10:30", "03/04/21", "4.3.2021",
    "04MAR2021:10:30:00", "March 2021", "2021-W09-4", "20210304T1030", "relapse on 2021-03-04",
    "4th March 2021", "mar 4 2021",
]


def _load_errors(tmp_path, tabs):
    with pytest.raises(CohortError) as err:
        load_cohort(write_csv(tmp_path / "c", tabs))
    return err.value.violations


def test_all_identifier_variants_are_refused(tmp_path):
    assert len(IDENTIFIER_VARIANTS) == 50 and len(set(IDENTIFIER_VARIANTS)) == 50
    tabs = tables()
    for name in IDENTIFIER_VARIANTS:
        add_column(tabs, "subjects", name, ["x"] * 5)
    found = _load_errors(tmp_path, tabs)
    refused = {v.column for v in found if "identifier" in v.rule}
    assert refused == {n.strip().upper() for n in IDENTIFIER_VARIANTS}
    assert len(found) == 50                                  # one message per column, nothing else


@pytest.mark.parametrize("name", ["USUBJID", "AGE", "DX_TO_INF_MO", "D28_MRD_NEG", "LAST_CONTACT_DAY", "DETAIL",
                                  "TERM", "DRUG", "TEST", "VALUE", "ZIPPER", "TRANSPLANT_NAME", "DRUG_NAME",
                                  "SITE", "NOTES", "MOBILITY_SCORE", "TELANGIECTASIA", "CONTACT_DAY", "DONOR_TYPE",
                                  "INITIAL_DOSE", "EMAILED", "ADDRESSED", "ORGANISM_NAME",
                                  "CELL_LINE_NAME", "PHONETIC"])
def test_plausible_clinical_names_are_not_identifiers(name):
    assert identifier_concept(name) is None


def test_all_date_variants_are_refused(tmp_path):
    assert len(DATE_VARIANTS) == 25
    tabs = tables()
    for i, text in enumerate(DATE_VARIANTS):
        add_column(tabs, "labs", f"NOTE{i}", [""] * (i % 20) + [text] + [""] * (24 - i % 20))
    found = _load_errors(tmp_path, tabs)
    dated = {v.column: v for v in found if "calendar date" in v.rule}
    assert len(found) == len(dated) == 25
    for i, text in enumerate(DATE_VARIANTS):
        v = dated[f"NOTE{i}"]
        assert v.row == 2 + i % 20                           # the spreadsheet row of the date
        assert not any(ch.isdigit() for ch in v.value)       # the example is masked
        assert str(v).startswith(f"labs, row {2 + i % 20}, column NOTE{i}, value ")


def test_yyyymmdd_counts_as_a_date_only_in_a_date_like_column(tmp_path):
    tabs = tables()
    add_column(tabs, "labs", "SAMPLE_DT", ["20210304"] + [""] * 24)
    add_column(tabs, "labs", "ACCESSION", ["20210304", "12345678"] + [""] * 23)
    add_column(tabs, "labs", "COLLECTED", ["20210304", "20210305"] + [""] * 23)
    found = _load_errors(tmp_path, tabs)
    assert {(v.column, v.row) for v in found} == {("SAMPLE_DT", 2), ("COLLECTED", 2)}


@pytest.mark.parametrize("uid, words", [
    ("Smith, John0", "person's name"),
    ("John Smith", "pseudonymous code"),
    ("p@example.org", "pseudonymous code"),
    ("X" * 65, "pseudonymous code"),
])
def test_usubjid_must_look_pseudonymous(tmp_path, uid, words):
    tabs = tables()
    for table in tabs:
        for r in tabs[table][1:]:
            if r[0] == "P02":
                r[0] = uid
    (v, *more) = _load_errors(tmp_path, tabs)
    assert not more, more                                    # no "not in subjects" echoes
    assert (v.table, v.row, v.column) == ("subjects", 3, "USUBJID") and words in v.rule
    assert "Smith" not in str(v) and "example" not in str(v)


def test_usubjid_problem_in_a_long_table_is_named_there(tmp_path):
    tabs = tables()
    set_cell(tabs, "pk", 3, "USUBJID", "Doe, Jane")
    (v,) = _load_errors(tmp_path, tabs)
    assert (v.table, v.row, v.column) == ("pk", 3, "USUBJID") and "person's name" in v.rule


# --- generated variants -----------------------------------------------------------------

_CONCEPT_WORDS = sorted(w for c in IDENTIFIER_CONCEPTS.values() for w in c["words"])
_FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}


@st.composite
def identifier_names(draw):
    word = draw(st.sampled_from(_CONCEPT_WORDS))
    before = draw(st.sampled_from(["", "PATIENT", "PT", "HOME", "PRIMARY", "MOTHER"]))
    after = draw(st.sampled_from(["", "1", "NUMBER", "TEXT", "VALUE"]))
    if word in ("NAME", "NAMES") and before == "":
        before = draw(st.sampled_from(["", "FIRST", "FULL"]))
    sep = draw(st.sampled_from(["_", " ", "-", ".", "", "__", "/"]))
    name = sep.join(w for w in (before, word, after) if w)
    case = draw(st.sampled_from(["upper", "lower", "title", "camel"]))
    name = {"upper": name.upper(), "lower": name.lower(), "title": name.title(),
            "camel": "".join(w.capitalize() for w in name.replace(sep, " ").split()) if sep else name.title()}[case]
    if draw(st.booleans()):
        name = "".join(_FULLWIDTH.get(ch, ch) for ch in name)
    if draw(st.booleans()):
        i = draw(st.integers(0, len(name)))
        name = name[:i] + draw(st.sampled_from(["\u200b", "\u200c", "\u200d", "\ufeff", "\u00ad"])) + name[i:]
    return name


@settings(max_examples=300, deadline=None)
@given(identifier_names())
def test_generated_identifier_names_are_refused(name):
    assert identifier_concept(name) is not None, name


_DATE_STYLES = [
    "%d%b%Y", "%d%b%y", "%B %d, %Y", "%b %d %Y", "%d %B %Y", "%d-%b-%Y", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S+01:00", "%Y-%m-%d %H:%M", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%Y-%m",
    "%m/%Y", "%Y-%j", "%B %Y", "%d%b%Y:%H:%M:%S", "%Y%m%dT%H%M",
]


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2099, 12, 31)),
       st.sampled_from(_DATE_STYLES), st.sampled_from(["upper", "lower", "keep"]))
def test_generated_dates_are_refused(when, style, case):
    import pandas as pd
    from cartlib.privacy import date_cells

    text = when.strftime(style)
    text = text.upper() if case == "upper" else text.lower() if case == "lower" else text
    assert date_cells(pd.Series([text, "7"])).tolist() == [True, False], text


_NUMBERS = st.one_of(st.integers(-365, 36525).map(str),
                     st.floats(0, 1e6, allow_nan=False).map(lambda x: f"{x:g}"),
                     st.floats(0, 1).map(repr))
_PSEUDONYMS = st.from_regex(r"(P|SYN|CART|S|PT)[-_]?[0-9]{1,6}", fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_NUMBERS, _PSEUDONYMS, st.sampled_from(["CD19NEG", "BLQ", "ALLO", "CMV", "Y", ""])),
                min_size=1, max_size=30))
def test_benign_values_are_not_dates(values):
    import pandas as pd
    from cartlib.privacy import date_cells, usubjid_problems

    assert not date_cells(pd.Series(values), column="VALUE").any(), values
    ids = pd.Series([v for v in values if v and "." not in v and "+" not in v] or ["P1"])
    assert (usubjid_problems(ids) == "").all()


def test_bundled_and_synthetic_cohorts_have_no_false_positives(tmp_path):
    from cartlib.synth import generate_cohort, write_cohort

    load_cohort(ROOT / "cartlib" / "data" / "default_cohort")
    for seed in (1, 2, 3):
        write_cohort(generate_cohort(200, seed=seed), tmp_path / f"s{seed}")
        assert len(load_cohort(tmp_path / f"s{seed}").subjects) == 200


def _number_text(lo, hi, whole=False):
    values = st.integers(int(lo), int(hi)) if whole else st.floats(lo, hi, allow_nan=False)
    return values.map(lambda x: str(x) if whole else f"{x:g}" if abs(x) >= 1e-4 or x == 0 else repr(x))


_CASED = lambda codes: st.sampled_from(codes).flatmap(lambda c: st.sampled_from([c, c.lower(), c.title()]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(
    _number_text(0, 30), _CASED(("M", "F")), _CASED(("MRD_REEMERGENCE", "MRD_PERSISTENT", "CHEMO_INTOLERANCE")),
    _CASED(("HIGH", "STANDARD")), _CASED(("Y", "N")), _CASED(("Y", "N")), _number_text(0, 360),
    _number_text(0.01, 1000), _number_text(0, 1), _number_text(0, 1), _CASED(("CR", "CRI", "NR")),
    _CASED(("Y", "N")), _number_text(0, 36525, whole=True)), min_size=1, max_size=8),
    st.lists(st.tuples(_number_text(-365, 36525), st.one_of(_number_text(0, 1e12), _CASED(("BLQ",)))), max_size=8))
def test_generated_contract_valid_tables_are_accepted(subjects, samples):
    import pandas as pd
    from cartlib.validate import SPEC, TABLES, check_tables

    ids = [f"SYN-{i:03d}" for i in range(len(subjects))]
    subj = pd.DataFrame([[uid, *row] for uid, row in zip(ids, subjects)], columns=[c.name for c in SPEC["subjects"]],
                        index=range(2, 2 + len(subjects)), dtype=object)
    pk = pd.DataFrame([[ids[i % len(ids)], *s] for i, s in enumerate(samples)], columns=["USUBJID", "DAY", "CONC"],
                      index=range(2, 2 + len(samples)), dtype=object)
    empty = {t: pd.DataFrame({c.name: [] for c in SPEC[t]}, dtype=object) for t in TABLES}
    assert check_tables({**empty, "subjects": subj, "pk": pk}) == []
