"""Every data-contract rule, one defect at a time (exactly one message each), and a cohort
with 20 defects yielding 20 messages that each name table, row, column and value."""
from __future__ import annotations

import pytest

from cartlib.errors import CohortError
from cartlib.io import load_cohort
from cohorts.base import add_column, set_cell, tables, write_csv


def _violations(tmp_path, tabs, after=None):
    folder = write_csv(tmp_path / "cohort", tabs)
    if after:
        after(folder)
    with pytest.raises(CohortError) as err:
        load_cohort(folder)
    return err.value.violations


def _mut(*cells):
    """A mutation setting cells (table, row, column, value) of the base cohort."""
    def apply(tabs):
        for c in cells:
            set_cell(tabs, *c)
    return apply


def _append(table, row):
    return lambda tabs: tabs[table].append(row)


# (id, mutation, expected (table, row, column, value), words the rule must contain)
CASES = [
    ("blank", _mut(("subjects", 3, "GENRISK", "")), ("subjects", 3, "GENRISK", ""), "blank"),
    ("not_number", _mut(("subjects", 2, "AGE", "ten")), ("subjects", 2, "AGE", "ten"), "must be a number"),
    ("decimal_comma", _mut(("subjects", 2, "DOSE", "1,5")), ("subjects", 2, "DOSE", "1,5"), "must be a number"),
    ("not_integer", _mut(("subjects", 2, "LAST_CONTACT_DAY", "1000.5")),
     ("subjects", 2, "LAST_CONTACT_DAY", "1000.5"), "whole number"),
    ("age_high", _mut(("subjects", 4, "AGE", "30.5")), ("subjects", 4, "AGE", "30.5"), "between 0 and 30"),
    ("age_negative", _mut(("subjects", 4, "AGE", "-1")), ("subjects", 4, "AGE", "-1"), "between 0 and 30"),
    ("mrd_range", _mut(("subjects", 5, "MRD_PRELD", "1.5")), ("subjects", 5, "MRD_PRELD", "1.5"), "between 0 and 1"),
    ("mrd_post_range", _mut(("subjects", 5, "MRD_POSTLD", "-0.1")),
     ("subjects", 5, "MRD_POSTLD", "-0.1"), "between 0 and 1"),
    ("dose_zero", _mut(("subjects", 6, "DOSE", "0")), ("subjects", 6, "DOSE", "0"), "> 0 and ≤ 1,000"),
    ("dx_negative", _mut(("subjects", 6, "DX_TO_INF_MO", "-2")), ("subjects", 6, "DX_TO_INF_MO", "-2"),
     "between 0 and 360"),
    ("lcd_negative", _mut(("subjects", 2, "LAST_CONTACT_DAY", "-1")),
     ("subjects", 2, "LAST_CONTACT_DAY", "-1"), "between 0 and 36,525"),
    ("sex_code", _mut(("subjects", 3, "SEX", "X")), ("subjects", 3, "SEX", "X"), "M, F"),
    ("response_code", _mut(("subjects", 3, "D28_RESPONSE", "PR")), ("subjects", 3, "D28_RESPONSE", "PR"), "CR, CRI, NR"),
    ("grade_high", _mut(("adverse_events", 2, "GRADE", "7")), ("adverse_events", 2, "GRADE", "7"), "between 1 and 5"),
    ("grade_zero", _mut(("adverse_events", 2, "GRADE", "0")), ("adverse_events", 2, "GRADE", "0"), "between 1 and 5"),
    ("grade_fraction", _mut(("adverse_events", 2, "GRADE", "2.5")), ("adverse_events", 2, "GRADE", "2.5"), "whole"),
    ("term_code", _mut(("adverse_events", 3, "TERM", "FEVER")), ("adverse_events", 3, "TERM", "FEVER"), "CRS"),
    ("conc_negative", _mut(("pk", 3, "CONC", "-5")), ("pk", 3, "CONC", "-5"), "between 0 and 1e12"),
    ("conc_text", _mut(("pk", 3, "CONC", "<LLOQ")), ("pk", 3, "CONC", "<LLOQ"), "or the text BLQ"),
    ("value_negative", _mut(("labs", 2, "VALUE", "-1")), ("labs", 2, "VALUE", "-1"), "between 0 and 1e9"),
    ("test_code", _mut(("labs", 2, "TEST", "CRP")), ("labs", 2, "TEST", "CRP"), "IL6"),
    ("event_code", _mut(("events", 2, "EVENT", "PROGRESSION")), ("events", 2, "EVENT", "PROGRESSION"), "RELAPSE"),
    ("event_day_negative", _mut(("events", 6, "DAY", "-1")), ("events", 6, "DAY", "-1"), "between 0 and 36,525"),
    ("death_day_negative", _mut(("events", 7, "DAY", "-90")), ("events", 7, "DAY", "-90"), "between 0 and 36,525"),
    ("event_day_fraction", _mut(("events", 6, "DAY", "60.5")), ("events", 6, "DAY", "60.5"), "whole"),
    ("event_after_last_contact", _mut(("events", 8, "DAY", "600")), ("events", 8, "DAY", "600"), "LAST_CONTACT_DAY"),
    ("death_not_on_last_contact", _mut(("events", 7, "DAY", "80")), ("events", 7, "DAY", "80"), "DEATH must be on"),
    ("detail_for_event", _mut(("events", 8, "DETAIL", "AUTO")), ("events", 8, "DETAIL", "AUTO"), "ALLO"),
    ("death_cause_code", _mut(("events", 3, "DETAIL", "CD19POS")), ("events", 3, "DETAIL", "CD19POS"), "RELAPSE, NRM"),
    ("two_relapses", _append("events", ["P02", "RELAPSE", "160", "CD19POS"]), ("events", 10, "EVENT", "RELAPSE"),
     "more than one RELAPSE"),
    ("two_deaths_case_insensitive", _append("events", ["P04", "death", "90", "NRM"]),
     ("events", 10, "EVENT", "death"), "more than one DEATH"),
    ("duplicate_id", _append("subjects", list(tables()["subjects"][5])), ("subjects", 7, "USUBJID", "P05"), "duplicate"),
    ("unknown_patient", _append("pk", ["P99", "7", "100"]), ("pk", 8, "USUBJID", "P99"), "not in subjects"),
    ("unknown_patient_events", _append("events", ["P99", "RELAPSE", "10", "CD19POS"]),
     ("events", 10, "USUBJID", "P99"), "not in subjects"),
    ("identifier_column", lambda t: add_column(t, "subjects", "patient_name", ["a"] * 5),
     ("subjects", None, "PATIENT_NAME", None), "identifier"),
    ("birth_column", lambda t: add_column(t, "subjects", "BIRTHDATE", ["x"] * 5),
     ("subjects", None, "BIRTHDATE", None), "identifier"),
    ("date_column", lambda t: add_column(t, "labs", "SAMPLED", [""] * 3 + ["04/03/2021"] + [""] * 21),
     ("labs", 5, "SAMPLED", "##/##/####"), "calendar date"),
    ("date_in_day_column", _mut(("pk", 4, "DAY", "2021/3/4")), ("pk", 4, "DAY", "####/#/#"), "calendar date"),
    ("missing_column", lambda t: [r.pop(3) for r in t["labs"]], ("labs", None, "VALUE", None), "missing"),
    ("extra_cells", _append("medications", ["P01", "TOCILIZUMAB", "7", "oops"]), ("medications", 6, None, "oops"),
     "4 cells but the header has 3"),
    ("empty_subjects", lambda t: t["subjects"].__delitem__(slice(1, None)), ("subjects", None, None, None),
     "no rows"),
    # numbers as the contract says: finite, in a documented range, ASCII digits; one message each
    ("lcd_overflow_int64", _mut(("subjects", 2, "LAST_CONTACT_DAY", "1e20")),
     ("subjects", 2, "LAST_CONTACT_DAY", "1e20"), "between 0 and 36,525"),
    ("start_day_1e308", _mut(("medications", 2, "START_DAY", "1e308")),
     ("medications", 2, "START_DAY", "1e308"), "between -365 and 36,525"),
    ("onset_day_1e19", _mut(("adverse_events", 2, "ONSET_DAY", "1e19")),
     ("adverse_events", 2, "ONSET_DAY", "1e19"), "between -365 and 36,525"),
    ("value_inf_overflow", _mut(("labs", 3, "VALUE", "1e400")), ("labs", 3, "VALUE", "1e400"), "too large"),
    ("conc_inf_overflow", _mut(("pk", 3, "CONC", "1e400")), ("pk", 3, "CONC", "1e400"), "too large"),
    ("pk_day_inf_overflow", _mut(("pk", 3, "DAY", "1e400")), ("pk", 3, "DAY", "1e400"), "too large"),
    ("conc_huge", _mut(("pk", 3, "CONC", "1e308")), ("pk", 3, "CONC", "1e308"), "between 0 and 1e12"),
    ("dx_1e308", _mut(("subjects", 3, "DX_TO_INF_MO", "1e308")), ("subjects", 3, "DX_TO_INF_MO", "1e308"),
     "between 0 and 360"),
    ("inf_text", _mut(("labs", 3, "VALUE", "inf")), ("labs", 3, "VALUE", "inf"), "finite"),
    ("nan_text", _mut(("pk", 4, "CONC", "NaN")), ("pk", 4, "CONC", "NaN"), "finite"),
    ("minus_infinity_text", _mut(("labs", 4, "DAY", "-Infinity")), ("labs", 4, "DAY", "-Infinity"), "finite"),
    ("arabic_indic_digits", _mut(("subjects", 2, "AGE", "\u0668")), ("subjects", 2, "AGE", "\u0668"), "non-ASCII digits"),
    ("fullwidth_digits", _mut(("labs", 2, "VALUE", "\uff11\uff10")), ("labs", 2, "VALUE", "\uff11\uff10"),
     "non-ASCII digits"),
    ("labs_day_range", _mut(("labs", 2, "DAY", "-366")), ("labs", 2, "DAY", "-366"), "between -365 and 36,525"),
    ("long_value_shortened", _mut(("subjects", 2, "AGE", "ten" * 2000)), ("subjects", 2, "AGE", "ten" * 20 + "\u2026"),
     "must be a number"),
]


@pytest.mark.parametrize("mutate, expected, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_rule_gives_exactly_one_clear_message(tmp_path, mutate, expected, words):
    tabs = tables()
    mutate(tabs)
    (v,) = _violations(tmp_path, tabs)
    assert (v.table, v.row, v.column, v.value) == expected
    assert words in v.rule
    assert words in str(v)


def test_nr_with_mrd_negative_is_valid(tmp_path):
    # The contract does not require D28_MRD_NEG = Y only with CR (P03 is NR and Y).
    tabs = tables()
    assert tabs["subjects"][3][11] == "NR" and tabs["subjects"][3][12] == "Y"
    load_cohort(write_csv(tmp_path / "c", tabs))


def test_twenty_defects_give_twenty_messages(tmp_path):
    tabs = tables()
    cells = [
        ("subjects", 2, "AGE", "31"), ("subjects", 3, "SEX", "X"), ("subjects", 4, "DOSE", "0"),
        ("subjects", 5, "MRD_PRELD", "1.5"), ("subjects", 6, "DX_TO_INF_MO", "-2"),
        ("subjects", 2, "GENRISK", ""), ("subjects", 3, "AGE", "twelve"),
        ("adverse_events", 2, "GRADE", "7"), ("adverse_events", 3, "TERM", "FEVER"),
        ("events", 8, "DAY", "600"), ("events", 7, "DAY", "80"), ("events", 9, "DETAIL", "CD22NEG"),
        ("pk", 3, "CONC", "-5"), ("labs", 2, "VALUE", "-1"),
    ]
    for c in cells:
        set_cell(tabs, *c)
    tabs["subjects"].append(list(tables()["subjects"][5]))          # duplicate P05, row 7
    add_column(tabs, "subjects", "PATIENT_NAME", ["n"] * 6)
    tabs["events"].append(["P99", "RELAPSE", "10", "CD19POS"])       # row 10: unknown patient
    tabs["events"].append(["P02", "RELAPSE", "160", "CD19POS"])      # row 11: second relapse
    add_column(tabs, "labs", "SAMPLE_DATE", ["2021-03-04"] + [""] * 24)
    del tabs["medications"]                                          # missing file

    found = _violations(tmp_path, tabs)
    expected = {(t, r, c, v) for t, r, c, v in cells} | {
        ("subjects", 7, "USUBJID", "P05"), ("subjects", None, "PATIENT_NAME", None),
        ("events", 10, "USUBJID", "P99"), ("events", 11, "EVENT", "RELAPSE"),
        ("labs", 2, "SAMPLE_DATE", "####-##-##"), ("medications", None, None, None),
    }
    assert len(expected) == 20
    assert len(found) == 20
    assert {(v.table, v.row, v.column, v.value) for v in found} == expected
    message = str(CohortError(found))
    assert message.startswith("The cohort breaks the data contract (20 problems):")
    assert "subjects, row 2, column AGE, value '31': must be between 0 and 30" in message
    assert "Traceback" not in message and "pandera" not in message.lower()


def test_invalid_event_codes_are_not_reported_as_duplicates(tmp_path):
    # Every EVENT code invalid: each row gets its code message, never "more than one 64".
    tabs = tables()
    for r in tabs["events"][1:]:
        r[1] = "64"
    found = _violations(tmp_path, tabs)
    assert {v.rule for v in found} == {"must be one of RELAPSE, DEATH, HSCT (any case)"}
    assert [v.row for v in found] == list(range(2, 10))


def test_a_cell_over_the_size_cap_is_one_clear_message(tmp_path):
    tabs = tables()
    add_column(tabs, "subjects", "COMMENT", ["x" * 10_001, "short", "", "", ""])
    (v,) = _violations(tmp_path, tabs)
    assert (v.table, v.row, v.column) == ("subjects", 2, "COMMENT")
    assert "10,001 characters" in v.rule and "10,000" in v.rule and len(str(v)) < 200
