"""Loading: typing, the CSV folder and the xlsx workbook giving the same Cohort, file-level
problems (missing, not UTF-8, wrong delimiter), the fingerprint, and the input left untouched."""
from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cartlib.errors import CohortError
from cartlib.io import EXAMPLE, TABLES, Cohort, example_cohort, load_cohort
from cohorts.base import add_column, set_cell, tables, write_csv, write_xlsx


@pytest.fixture
def folder(tmp_path):
    return write_csv(tmp_path / "cohort", tables())


def _errors(path):
    with pytest.raises(CohortError) as err:
        load_cohort(path)
    return err.value.violations


def test_types_codes_and_index(folder):
    c = load_cohort(folder)
    assert isinstance(c, Cohort) and c.source == str(folder)
    s = c.subjects
    assert list(s.columns) == tables()["subjects"][0]
    assert isinstance(s.index, pd.RangeIndex) and len(s) == 5
    assert s["AGE"].dtype == np.float64 and s["LAST_CONTACT_DAY"].dtype == np.int64
    assert s["AGE"].tolist() == [8.0, 12.0, 10.0, 15.0, 10.5]
    # codes are case-insensitive on input, upper case after loading
    assert s["SEX"].tolist() == ["F", "M", "F", "M", "F"]
    assert s.loc[2, ["INDICATION", "GENRISK", "PRIOR_HSCT"]].tolist() == ["CHEMO_INTOLERANCE", "HIGH", "N"]
    assert s.loc[4, ["D28_RESPONSE", "D28_MRD_NEG"]].tolist() == ["CR", "Y"]
    assert c.events["EVENT"].tolist()[6:] == ["HSCT", "RELAPSE"]
    assert c.events["DETAIL"].tolist()[6:] == ["ALLO", "CD19POS"]
    assert c.events["DAY"].dtype == np.int64
    assert c.adverse_events["GRADE"].dtype == np.int64
    assert c.adverse_events["DETAIL"].tolist() == [""] * 6 + ["CMV"]
    assert c.medications["DRUG"].tolist() == ["TOCILIZUMAB"] * 2 + ["CORTICOSTEROID", "DEXAMETHASONE"]
    assert c.labs["DAY"].dtype == np.float64 and c.labs["VALUE"].dtype == np.float64


def test_blq_only_profile_and_numeric_zero(folder):
    pk = load_cohort(folder).pk
    assert pk["CONC"].dtype == np.float64 and pk["BLQ_TEXT"].dtype == bool
    p02 = pk[pk.USUBJID == "P02"]
    assert p02["CONC"].isna().all() and p02["BLQ_TEXT"].all()      # 'BLQ' and 'blq'
    p03 = pk[pk.USUBJID == "P03"]
    assert p03["CONC"].tolist() == [0.0] and not p03["BLQ_TEXT"].any()  # a number, LLOQ is NCA's job
    assert pk.loc[2, "CONC"] == 4000.5


def test_extra_and_optional_columns_and_header_spelling(tmp_path):
    tabs = tables()
    add_column(tabs, "subjects", "SITE", ["A", "b", "A", "A", "C"])
    for r in tabs["adverse_events"]:
        del r[4]                                       # optional DETAIL absent
    tabs["labs"][0] = [" usubjid", "Day ", "test", "VALUE"]
    c = load_cohort(write_csv(tmp_path / "c", tabs))
    assert c.subjects["SITE"].tolist() == ["A", "b", "A", "A", "C"]   # extra column kept as text
    assert c.adverse_events["DETAIL"].tolist() == [""] * 7
    assert list(c.labs.columns) == ["USUBJID", "DAY", "TEST", "VALUE"]


def test_header_only_long_tables_are_valid(tmp_path):
    tabs = tables()
    for t in TABLES[1:]:
        del tabs[t][1:]
    c = load_cohort(write_csv(tmp_path / "c", tabs))
    assert len(c.subjects) == 5 and all(len(c.tables[t]) == 0 for t in TABLES[1:])
    assert c.events["DAY"].dtype == np.int64 and c.pk["CONC"].dtype == np.float64
    assert c.pk["BLQ_TEXT"].dtype == bool


def test_missing_files_are_all_reported(tmp_path):
    folder = write_csv(tmp_path / "c", {k: v for k, v in tables().items() if k not in ("pk", "labs")})
    found = _errors(folder)
    assert [(v.table, v.row, v.column) for v in found] == [("labs", None, None), ("pk", None, None)]
    assert all("missing" in v.rule for v in found)


def test_not_utf8_names_file_offset_and_line(folder):
    path = folder / "pk.csv"
    data = path.read_bytes().replace(b"P03,10,0", "P03,10,0,caf\u00e9".encode("latin-1"))
    data = data.replace(b"USUBJID,DAY,CONC", b"USUBJID,DAY,CONC,NOTE")
    path.write_bytes(data)
    (v,) = _errors(folder)
    offset = data.index(b"\xe9")                       # the latin-1 e-acute is invalid UTF-8 here
    assert (v.table, v.row, v.value) == ("pk", 7, "b'\\xe9'")   # 7th line of the file
    assert "pk.csv" in v.rule and f"offset {offset}" in v.rule and "line 7" in v.rule


def test_utf8_bom_and_crlf_are_accepted(folder):
    for t in ("subjects", "labs"):
        p = folder / f"{t}.csv"
        p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes().replace(b"\n", b"\r\n"))
    assert load_cohort(folder).subjects.columns[0] == "USUBJID"


@pytest.mark.parametrize("sep, word", [(";", "';'"), ("\t", "a tab")])
def test_wrong_delimiter_is_named(folder, sep, word):
    p = folder / "labs.csv"
    p.write_text(p.read_text().replace(",", sep))
    (v,) = _errors(folder)
    assert (v.table, v.row) == ("labs", 1) and word in v.rule and "commas" in v.rule


def test_empty_file_and_unreadable_path(folder, tmp_path):
    (folder / "medications.csv").write_bytes(b"")
    (v,) = _errors(folder)
    assert v.table == "medications" and "no header" in v.rule
    (v,) = _errors(tmp_path / "nowhere")
    assert v.table == "cohort" and "not a folder" in v.rule


def test_blank_lines_skipped_but_counted_in_row_numbers(folder):
    p = folder / "medications.csv"
    lines = p.read_text().splitlines()
    lines.insert(2, "")                                     # blank line = spreadsheet row 3
    lines[3] = lines[3].replace("tocilizumab,5", "tocilizumab,x")
    p.write_text("\n".join(lines) + "\n\n")
    (v,) = _errors(folder)
    assert (v.table, v.row, v.column, v.value) == ("medications", 4, "START_DAY", "x")


def test_lloq_must_be_positive(folder):
    for bad in (0, -1, "100", None, True):
        with pytest.raises(ValueError):
            load_cohort(folder, lloq=bad)
    assert load_cohort(folder, lloq=50).lloq == 50.0


def _snapshot(folder):
    return sorted((p.name, p.stat().st_mtime_ns, p.read_bytes()) for p in folder.iterdir())


def test_input_folder_is_never_written(folder):
    before = _snapshot(folder)
    load_cohort(folder)
    set_cell_tabs = tables()
    set_cell(set_cell_tabs, "subjects", 2, "AGE", "99")
    bad = write_csv(folder.parent / "bad", set_cell_tabs)
    bad_before = _snapshot(bad)
    with pytest.raises(CohortError):
        load_cohort(bad)
    assert _snapshot(folder) == before and _snapshot(bad) == bad_before


def test_fingerprint_is_sha256_of_files_in_table_order(folder):
    expected = hashlib.sha256(b"".join((folder / f"{t}.csv").read_bytes() for t in TABLES)).hexdigest()
    c = load_cohort(folder)
    assert c.fingerprint == expected
    p = folder / "labs.csv"
    p.write_bytes(p.read_bytes().replace(b"P04,2,IL6,10", b"P04,2,IL6,11"))
    assert load_cohort(folder).fingerprint != expected


def test_xlsx_and_csv_give_the_same_cohort(folder, tmp_path):
    book = write_xlsx(tmp_path / "cohort.xlsx", tables())
    a, b = load_cohort(folder), load_cohort(book)
    assert a.same_data(b)
    for t in TABLES:
        pd.testing.assert_frame_equal(a.tables[t], b.tables[t])
    assert b.fingerprint == hashlib.sha256(book.read_bytes()).hexdigest() and b.source == str(book)
    changed = tables()
    set_cell(changed, "labs", 2, "VALUE", "11")
    assert not a.same_data(load_cohort(write_csv(tmp_path / "c2", changed)))
    # sheet names match case-insensitively
    titled = write_xlsx(tmp_path / "titled.xlsx", {k.title(): v for k, v in tables().items()})
    assert a.same_data(load_cohort(titled))


def test_xlsx_datetime_cells_missing_sheet_and_broken_file(tmp_path):
    def to_date(table, row, name, value):
        return dt.datetime(2021, 3, 4) if (table, row, name) == ("pk", 3, "DAY") else value

    book = write_xlsx(tmp_path / "dates.xlsx", tables(), cell=to_date)
    (v,) = _errors(book)
    assert (v.table, v.row, v.column, v.value) == ("pk", 3, "DAY", "####-##-## ##:##:##")   # masked
    assert "calendar date" in v.rule

    tabs = tables()
    del tabs["events"]
    (v,) = _errors(write_xlsx(tmp_path / "no_events.xlsx", tabs))
    assert v.table == "events" and "sheet" in v.rule

    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip file")
    (v,) = _errors(broken)
    assert v.table == "broken.xlsx" and ".xlsx" in v.rule


def test_cohort_page_shows_the_example_cohort():
    page = (Path(__file__).parents[1] / "docs" / "COHORT.md").read_text(encoding="utf-8")
    for table, text in EXAMPLE.items():
        assert f"`{table}.csv`\n```\n{text}```" in page, table
    assert example_cohort().subjects["USUBJID"].tolist() == ["P001", "P002"]


def test_broken_quoting_is_a_violation_not_a_traceback(folder):
    p = folder / "medications.csv"
    p.write_text(p.read_text() + 'P04,"TOCILIZUMAB,9\n')        # quote never closed
    (v,) = _errors(folder)
    assert v.table == "medications" and "cannot be read as CSV" in v.rule


def test_sheet_names_equal_after_normalising_are_refused(tmp_path):
    tabs = tables()
    book = write_xlsx(tmp_path / "two.xlsx", {**tabs, "SUBJECTS ": tabs["subjects"]})
    (v,) = _errors(book)
    assert v.table == "subjects" and "'subjects'" in v.rule and "'SUBJECTS '" in v.rule and "same" in v.rule


def test_csv_cell_beyond_the_csv_field_limit_is_a_clear_message(folder):
    p = folder / "medications.csv"
    p.write_text(p.read_text() + "P04,TOCILIZUMAB,9," + "y" * 200_000 + "\n")
    (v,) = _errors(folder)
    assert v.table == "medications" and "10,000 characters" in v.rule and len(str(v)) < 300


def test_files_over_the_size_cap_are_refused_before_reading(folder, tmp_path, monkeypatch):
    import cartlib.io as cio

    monkeypatch.setattr(cio, "MAX_FILE_BYTES", 500)              # labs.csv is the one file above 500 bytes
    (v,) = _errors(folder)
    assert v.table == "labs" and "labs.csv" in v.rule and "at most 500 bytes" in v.rule
    book = write_xlsx(tmp_path / "cohort.xlsx", tables())
    monkeypatch.setattr(cio, "MAX_FILE_BYTES", 5_000)
    (v,) = _errors(book)
    assert v.table == "cohort.xlsx" and "at most 5,000 bytes" in v.rule


def _workbook_with_long_cell(path: Path, chars: int) -> Path:
    """The base cohort as a workbook whose subjects sheet has one extra text cell of ``chars``
    characters, streamed into the zip (never held in memory whole)."""
    import zipfile

    tabs = tables()
    add_column(tabs, "subjects", "COMMENT", ["@LONG@", "", "", "", ""])
    small = write_xlsx(path.with_suffix(".small.xlsx"), tabs)
    with zipfile.ZipFile(small) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if b"@LONG@" not in data:
                dst.writestr(info, data)
                continue
            head, tail = data.split(b"@LONG@")
            with dst.open(info.filename, "w", force_zip64=True) as out:
                out.write(head)
                block = b"A" * (1 << 20)
                for _ in range(chars >> 20):
                    out.write(block)
                out.write(tail)
    return path


def test_huge_xlsx_cell_is_refused_without_loading_it(tmp_path):
    import tracemalloc

    book = _workbook_with_long_cell(tmp_path / "long.xlsx", 64 << 20)
    assert book.stat().st_size < 2 << 20                     # compresses to almost nothing
    tracemalloc.start()
    try:
        (v,) = _errors(book)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "10,000 characters" in v.rule and len(str(v)) < 300
    assert peak < 32 << 20                                   # the 64 MiB cell was never read whole


def test_xlsx_long_cell_under_the_prescan_is_still_capped(tmp_path):
    tabs = tables()
    add_column(tabs, "subjects", "COMMENT", ["z" * 12_000, "", "", "", ""])
    (v,) = _errors(write_xlsx(tmp_path / "c.xlsx", tabs))
    assert (v.table, v.row, v.column) == ("subjects", 2, "COMMENT") and "12,000 characters" in v.rule


def test_unreadable_inputs_are_violations_not_tracebacks(folder, tmp_path):
    import os

    bad_name = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9"))          # not UTF-8: a surrogate in str
    (v,) = _errors(bad_name)
    assert v.table == "cohort" and "\\udce9" in str(v)
    str(v).encode("utf-8")                                                # printable as UTF-8
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    (v,) = _errors(loop)
    assert v.table == "cohort"
    (folder / "pk.csv").unlink()
    (folder / "pk.csv").mkdir()                                           # a folder where a file should be
    (v,) = _errors(folder)
    assert v.table == "pk" and "missing" in v.rule
    with pytest.raises(ValueError, match="finite"):
        load_cohort(folder, lloq=float("inf"))


_PLAIN_CELL = st.text(st.characters(blacklist_characters=',"\r\n\x00', blacklist_categories=("Cs",)), max_size=6)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_PLAIN_CELL, min_size=0, max_size=4), min_size=1, max_size=12),
       st.sampled_from(["\n", "\r\n", "\r"]), st.booleans())
def test_fast_csv_path_reads_what_the_csv_module_reads(rows, newline, final_newline):
    import cartlib.readers as readers

    text = newline.join(",".join(r) for r in rows) + (newline if final_newline else "")
    data = text.encode("utf-8")
    fast_out, slow_out = [], []
    fast = readers.read_csv_table("labs", data, fast_out)
    original = readers._parse_plain_csv
    try:
        readers._parse_plain_csv = lambda text: None
        slow = readers.read_csv_table("labs", data, slow_out)
    finally:
        readers._parse_plain_csv = original
    assert fast_out == slow_out
    assert (fast is None) == (slow is None)
    if fast is not None:
        pd.testing.assert_frame_equal(fast, slow)
