"""Cohort tables as SPSS, Stata and SAS files: the same cohort and analysis as from CSVs, value
labels decoded to the contract's codes, and clear errors (file, row, column, value; exit 2)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyreadstat
import pytest

from cartlib import cli
from cartlib.errors import CohortError
from cartlib.io import cohort_fingerprint, load_cohort
from cartlib.io import input_files
from cartlib.sections import compute_results
from cartlib.synth import generate_cohort, write_cohort
from cartlib.validate import TABLES

# SPSS and Stata keep codes as labelled numbers: these columns are written that way.
LABELLED = {"SEX": {1: "Male", 2: "Female"}, "PRIOR_HSCT": {0: "No", 1: "Yes"},
            "D28_MRD_NEG": {0: "no", 1: "YES"}, "GENRISK": {1: "High risk", 2: "Standard"},
            "INDICATION": {1: "MRD re-emergence", 2: "MRD persistent", 3: "chemo-intolerance"}}
WRITERS = {".sav": pyreadstat.write_sav, ".dta": pyreadstat.write_dta,
           ".xpt": lambda df, path, **kw: pyreadstat.write_xport(df, path, table_name=Path(path).stem[:8])}


def csv_table(path: Path) -> pd.DataFrame:
    """A CSV as a statistics package would hold it: all-number columns numeric, the rest text."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for name in df.columns:
        number = pd.to_numeric(df[name].replace("", None), errors="coerce")
        if number.notna().sum() == df[name].ne("").sum():
            df[name] = number.astype(float)
    return df


def write_stat_cohort(csv_dir: Path, out: Path, suffix: str, labelled: bool) -> Path:
    out.mkdir()
    for table in TABLES:
        df, labels = csv_table(csv_dir / f"{table}.csv"), {}
        if labelled:
            for name, mapping in LABELLED.items():
                if name in df.columns:
                    code_of = {text.upper(): value for value, text in mapping.items()}
                    code_of.update({"M": 1, "F": 2, "Y": 1, "N": 0, "HIGH": 1, "STANDARD": 2, "MRD_REEMERGENCE": 1,
                                    "MRD_PERSISTENT": 2, "CHEMO_INTOLERANCE": 3})
                    df[name] = df[name].str.upper().map(code_of).astype(float)
                    labels[name] = mapping
        WRITERS[suffix](df, str(out / f"{table}{suffix}"), **({"variable_value_labels": labels} if labels else {}))
    return out


@pytest.fixture(scope="module")
def csv_cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("formats") / "csv"
    write_cohort(generate_cohort(30, seed=2), folder)
    cohort = load_cohort(folder)
    return folder, cohort, compute_results(cohort)


@pytest.mark.parametrize("suffix, labelled", [(".sav", True), (".dta", True), (".xpt", False)])
def test_statistical_package_cohort_gives_the_csv_analysis(csv_cohort, tmp_path, suffix, labelled):
    folder, expected, keys = csv_cohort
    stat_dir = write_stat_cohort(folder, tmp_path / "stat", suffix, labelled)
    if labelled:  # the file really holds numbers with labels, not the codes
        data, meta = pyreadstat.read_sav(str(stat_dir / "subjects.sav")) if suffix == ".sav" else \
            pyreadstat.read_dta(str(stat_dir / "subjects.dta"))
        assert set(data["SEX"]) == {1.0, 2.0} and meta.variable_value_labels["SEX"] == LABELLED["SEX"]
    cohort = load_cohort(stat_dir)
    assert cohort.same_data(expected)
    assert compute_results(cohort) == keys
    # the fingerprint and the manifest hash the files actually read
    assert [p.name for p in input_files(stat_dir)] == [f"{t}{suffix}" for t in TABLES]
    assert cohort.fingerprint == cohort_fingerprint(stat_dir) != expected.fingerprint


def test_sas7bdat_goes_through_the_sas_reader(csv_cohort, tmp_path, monkeypatch):
    """pyreadstat cannot write .sas7bdat; the file here is a transport file under that name and
    pyreadstat's .sas7bdat reader is replaced by its transport reader, so the test checks that
    a .sas7bdat table is found, read with read_sas7bdat and decoded like the others."""
    folder, expected, _ = csv_cohort
    stat_dir = write_stat_cohort(folder, tmp_path / "stat", ".xpt", labelled=False)
    (stat_dir / "labs.xpt").rename(stat_dir / "labs.sas7bdat")
    calls = []
    monkeypatch.setattr(pyreadstat, "read_sas7bdat", lambda path, **kw: calls.append(path) or pyreadstat.read_xport(path))
    assert load_cohort(stat_dir).same_data(expected)
    assert calls == [str(stat_dir / "labs.sas7bdat")]


def test_missing_values_become_blank_and_user_missing_too(tmp_path):
    folder = tmp_path / "c"
    write_cohort(generate_cohort(3, seed=1), folder)
    ae = csv_table(folder / "adverse_events.csv").assign(DETAIL=99.0)
    (folder / "adverse_events.csv").unlink()
    pyreadstat.write_sav(ae, str(folder / "adverse_events.sav"), missing_ranges={"DETAIL": [99]})
    assert load_cohort(folder).adverse_events.DETAIL.eq("").all()


def problems(folder) -> list[str]:
    with pytest.raises(CohortError) as err:
        load_cohort(folder)
    return [str(v) for v in err.value.violations]


@pytest.fixture
def sav_cohort(csv_cohort, tmp_path):
    return write_stat_cohort(csv_cohort[0], tmp_path / "sav", ".sav", labelled=True)


def test_a_code_without_a_usable_label_is_named_once(sav_cohort):
    data, meta = pyreadstat.read_sav(str(sav_cohort / "subjects.sav"))
    data.loc[4, "SEX"] = 3.0
    data.loc[[6, 7], "PRIOR_HSCT"] = 5.0
    labels = dict(meta.variable_value_labels, SEX={1: "Male", 2: "Female", 3: "Unknown"})
    pyreadstat.write_sav(data, str(sav_cohort / "subjects.sav"), variable_value_labels=labels)
    assert problems(sav_cohort) == [
        "subjects, row 6, column SEX, value '3': file subjects.sav: value 3 has the label 'Unknown', which is "
        "none of the codes M, F (nor a known synonym); recode it or change its label",
        "subjects, row 8, column PRIOR_HSCT, value '5': file subjects.sav: value 5 has no value label and is "
        "none of the codes Y, N (nor a known synonym) (2 rows); recode it or change its label",
    ]


def test_numbers_in_a_coded_column_without_labels_are_named(sav_cohort):
    data, meta = pyreadstat.read_sav(str(sav_cohort / "subjects.sav"))
    labels = {k: v for k, v in meta.variable_value_labels.items() if k != "GENRISK"}
    pyreadstat.write_sav(data, str(sav_cohort / "subjects.sav"), variable_value_labels=labels)
    found = problems(sav_cohort)
    assert sorted(p.split(": ", 1)[0].rsplit(", ", 1)[1] for p in found) == ["value '1'", "value '2'"]  # one per code
    assert all("column GENRISK" in p and "file subjects.sav: value" in p and
               "has no value label and is none of the codes HIGH, STANDARD" in p for p in found)


def test_missing_variable_damaged_file_and_two_files_for_one_table(sav_cohort, tmp_path, capsys):
    data, meta = pyreadstat.read_sav(str(sav_cohort / "labs.sav"))
    pyreadstat.write_sav(data.drop(columns="VALUE"), str(sav_cohort / "labs.sav"))
    (sav_cohort / "pk.sav").write_bytes(b"this is not an SPSS file")
    (sav_cohort / "events.csv").write_text("USUBJID,EVENT,DAY,DETAIL\n", encoding="utf-8")
    found = problems(sav_cohort)
    assert "labs, column VALUE: required column is missing" in found
    assert any(p.startswith("pk: file pk.sav cannot be read as a SPSS file (") for p in found)
    assert f"events: files events.csv and events.sav of {sav_cohort} both hold table events; keep only one" in found
    assert len(found) == 3

    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert cli.main(["validate", "--data", str(sav_cohort)]) == 2
    err = capsys.readouterr().err
    assert "file pk.sav cannot be read" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def test_a_date_variable_is_refused_as_a_calendar_date(tmp_path):
    folder = tmp_path / "c"
    write_cohort(generate_cohort(3, seed=1), folder)
    labs = csv_table(folder / "labs.csv")
    labs["DAY"] = pd.Timestamp("2021-03-04") + pd.to_timedelta(labs["DAY"], unit="D")
    (folder / "labs.csv").unlink()
    pyreadstat.write_dta(labs, str(folder / "labs.dta"))
    assert any("column DAY" in p and "looks like a calendar date" in p for p in problems(folder))
