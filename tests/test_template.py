"""The cohort template workbook: its sheets, checks and comments come from the contract, and a
filled-in template loads to the same cohort and analysis as the same data in CSVs."""
from __future__ import annotations

import csv
from pathlib import Path

import openpyxl
import pytest

from cartlib import cli
from cartlib.io import load_cohort
from cartlib.sections import compute_results
from cartlib.synth import generate_cohort, write_cohort
from cartlib.template import EXAMPLE_PATIENT, FIELD_MEANING, column_codes, write_template
from cartlib.validate import SPEC, TABLES

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _validations(ws) -> dict[str, object]:
    """Column letter -> the data validation covering it from row 2 on."""
    return {str(rng).split(":")[0].rstrip("0123456789"): dv
            for dv in ws.data_validations.dataValidation for rng in dv.sqref.ranges}


def test_template_sheets_checks_and_comments_follow_the_contract(tmp_path):
    wb = openpyxl.load_workbook(write_template(tmp_path / "t.xlsx"))
    assert wb.sheetnames == ["README", *TABLES]
    for table in TABLES:
        ws = wb[table]
        cols = SPEC[table]
        assert [c.value for c in ws[1]] == [c.name for c in cols]
        assert {row[0] for row in ws.iter_rows(min_row=2, values_only=True)} == {EXAMPLE_PATIENT}
        checks = _validations(ws)
        for letter_index, col in enumerate(cols):
            letter = openpyxl.utils.get_column_letter(letter_index + 1)
            comment = ws[f"{letter}1"].comment
            assert comment is not None and comment.text.startswith(f"{col.name}: ")
            codes = column_codes(table, col)
            dv = checks.get(letter)
            if codes:
                assert dv.type == "list" and dv.formula1 == f'"{",".join(codes)}"'
            elif col.kind == "integer":
                assert dv.type == "whole" and (float(dv.formula1), float(dv.formula2)) == (col.lo, col.hi)
            elif col.kind == "number" and not (col.also or col.lo_open):
                assert dv.type == "decimal" and (float(dv.formula1), float(dv.formula2)) == (col.lo, col.hi)
            elif col.also or col.lo_open:
                assert dv.type == "custom" and (">0" in dv.formula1 if col.lo_open else '"BLQ"' in dv.formula1)
            else:
                assert dv is None
    # the explanations are the contract's own words (docs/COHORT.md's meaning column, without code marks)
    cohort_md = (DOCS / "COHORT.md").read_text(encoding="utf-8").replace("`", "")
    assert [key for key, meaning in FIELD_MEANING.items() if f"| {meaning} |" not in cohort_md] == []


def _as_typed(text: str):
    """A CSV cell as a user would type it into a spreadsheet (numbers as numbers)."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def test_filled_template_loads_like_the_csv_cohort(tmp_path):
    csv_dir = tmp_path / "csv"
    write_cohort(generate_cohort(30, seed=2), csv_dir)
    path = write_template(tmp_path / "cohort.xlsx")
    wb = openpyxl.load_workbook(path)
    for table in TABLES:
        ws = wb[table]
        ws.delete_rows(2, ws.max_row)  # the example patient goes
        order = [c.value for c in ws[1]]
        with open(csv_dir / f"{table}.csv", newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                ws.append([_as_typed(row.get(name, "")) for name in order])
    wb.save(path)

    from_csv, from_xlsx = load_cohort(csv_dir), load_cohort(path)
    assert len(from_xlsx.subjects) == 30
    assert from_xlsx.same_data(from_csv)
    assert compute_results(from_xlsx) == compute_results(from_csv)


def test_cli_template_refuses_to_overwrite_and_writes_atomically(tmp_path, capsys):
    out = tmp_path / "cohort.xlsx"
    assert cli.main(["template", "--out", str(out)]) == 0
    first = out.read_bytes()
    assert load_cohort(out).subjects.USUBJID.tolist() == [EXAMPLE_PATIENT]

    out.write_bytes(b"my own work")
    assert cli.main(["template", "--out", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"my own work"

    assert cli.main(["template", "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes()[:2] == first[:2] == b"PK"
    assert cli.main(["template", "--out", str(tmp_path / "cohort.csv")]) == 2
    assert ".xlsx" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.xlsx"]  # no temporary file left


@pytest.mark.parametrize("bad, rule", [("7", "must be one of M, F"), ("31", "must be between 0 and 30")])
def test_a_filled_template_with_bad_values_names_sheet_row_and_column(tmp_path, capsys, bad, rule):
    path = write_template(tmp_path / "cohort.xlsx")
    wb = openpyxl.load_workbook(path)
    column = "C" if rule.startswith("must be one of") else "B"
    wb["subjects"][f"{column}2"] = bad
    wb.save(path)
    assert cli.main(["validate", "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"subjects, row 2, column {'SEX' if column == 'C' else 'AGE'}, value '{bad}': {rule}" in err
    assert "Traceback" not in err
