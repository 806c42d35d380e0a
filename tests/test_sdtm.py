"""CDISC SDTM: a synthetic cohort exported as SDTM and imported back gives the CSV cohort's
analysis; bad SDTM data gives one message per problem (file, row, variable, value), exit 2 and
nothing written; no date reaches any output."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
import yaml

from cartlib import cli
from cartlib.io import load_cohort
from cartlib.privacy import date_cells
from cartlib.resources import parameters_file
from cartlib.sdtm import import_sdtm, write_sdtm
from cartlib.sections import compute_results
from cartlib.synth import generate_cohort

N, SEED = 30, 5


def dated(texts) -> list[str]:
    """The texts among ``texts`` that the loader's privacy rule reads as calendar dates."""
    series = pd.Series([str(t) for t in texts], dtype=object)
    return list(series[date_cells(series, column="DATE")]) if len(series) else []


def run(argv, capsys) -> tuple[int, str, str]:
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    """The CSV cohort and the SDTM export of the same seed, both written by ``cartlib synth``."""
    root = tmp_path_factory.mktemp("sdtm")
    assert cli.main(["synth", "--n", str(N), "--seed", str(SEED), "--out", str(root / "csv")]) == 0
    assert cli.main(["synth", "--n", str(N), "--seed", str(SEED), "--format", "sdtm", "--out", str(root / "sdtm")]) == 0
    csv = load_cohort(root / "csv")
    return root, csv, compute_results(csv)


@pytest.fixture
def sdtm(cohorts, tmp_path):
    """A fresh copy of the SDTM export, to break."""
    copy = tmp_path / "sdtm"
    copy.mkdir()
    for file in (cohorts[0] / "sdtm").iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    return copy


def edit(folder: Path, domain: str, change) -> None:
    path = folder / f"{domain.lower()}.xpt"
    data, _ = pyreadstat.read_xport(str(path))
    pyreadstat.write_xport(change(data), str(path), table_name=domain, file_format_version=5)


def test_round_trip_gives_the_csv_cohort_and_its_analysis(cohorts, tmp_path, capsys):
    root, csv, keys = cohorts
    assert sorted(p.name for p in (root / "sdtm").iterdir()) == sorted(
        f"{d}.xpt" for d in ("dm", "suppdm", "ex", "mh", "pr", "ae", "cm", "pc", "lb", "rs", "ds", "dd"))
    status, out, err = run(["import-sdtm", str(root / "sdtm"), "--out", str(tmp_path / "cohort")], capsys)
    assert (status, err) == (0, "") and f"wrote {N} patients" in out
    assert run(["validate", "--data", str(tmp_path / "cohort")], capsys)[0] == 0
    imported = load_cohort(tmp_path / "cohort")
    assert imported.same_data(csv)  # every table, value and type
    got = compute_results(imported)
    assert len(keys) > 300 and got == keys


def test_mapping_report_counts_every_record(cohorts):
    result = import_sdtm(cohorts[0] / "sdtm")
    report = result.report
    assert report["DM"] == {"file": "dm.xpt", "read": N, "used": N, "dropped": {}}
    # lymphodepletion and informed consent are in the export but not in the contract
    assert report["EX"]["dropped"] == {"not selected by the mapping: EXTRT CYCLOPHOSPHAMIDE": N,
                                       "not selected by the mapping: EXTRT FLUDARABINE": N}
    assert report["DS"]["dropped"] == {"not selected by the mapping: DSDECOD INFORMED CONSENT OBTAINED": N}
    for name, counts in report.items():
        assert counts["read"] == counts["used"] + sum(counts["dropped"].values()), name
    assert report["LB"]["used"] == len(cohorts[1].labs) + 3 * N  # + MRD before and after LD, MRD status day 28
    text = result.report_text()
    assert "EX      ex.xpt        90    30       60" in text


def test_screen_failures_and_tests_not_done_are_dropped_and_counted(sdtm):
    def screen_failure(d):
        extra = d.iloc[[0]].assign(USUBJID="SYN-SF", ARMCD="SCRNFAIL")
        return pd.concat([d, extra], ignore_index=True)
    edit(sdtm, "DM", screen_failure)
    edit(sdtm, "AE", lambda d: pd.concat([d, d.iloc[[0]].assign(USUBJID="SYN-SF")], ignore_index=True))
    edit(sdtm, "LB", lambda d: d.assign(LBSTAT=["NOT DONE"] + [""] * (len(d) - 1), LBSTRESN=d["LBSTRESN"].where(d.index != 0)))
    result = import_sdtm(sdtm)
    assert len(result.tables["subjects"]) == N
    assert result.report["DM"]["dropped"] == {"excluded by the mapping: ARMCD SCRNFAIL": 1}
    assert result.report["AE"]["dropped"] == {"subject not in the cohort (excluded from DM)": 1}
    assert result.report["LB"]["dropped"] == {"not done (LBSTAT NOT DONE)": 1}


def test_no_date_reaches_any_output(sdtm, tmp_path, capsys):
    dm, _ = pyreadstat.read_xport(str(sdtm / "dm.xpt"))
    assert len(dated(dm["RFSTDTC"])) == N  # the export has dates, and the detector finds them
    source = sdtm.rename(tmp_path / "export_2021-03-04")  # the report names the folder: masked
    status, out, _ = run(["import-sdtm", str(source), "--out", str(tmp_path / "cohort")], capsys)
    assert status == 0 and not dated([out.replace(str(tmp_path), "")])  # the paths typed are echoed
    files = list((tmp_path / "cohort").iterdir())
    assert {p.name for p in files} >= {"subjects.csv", "mapping_report.txt"}
    for file in files:
        if file.suffix == ".csv":
            cells = pd.read_csv(file, dtype=str, keep_default_na=False).to_numpy().ravel()
        else:
            cells = file.read_text(encoding="utf-8").split()
        assert not dated(cells), file.name


def test_infusion_from_a_named_variable_and_a_sas7bdat_dataset(cohorts, tmp_path, monkeypatch):
    """Day 0 from DM.RFXSTDTC instead of EX; LB read through the .sas7bdat entry point (pyreadstat
    cannot write .sas7bdat: the file is a transport file and the reader is the transport reader)."""
    root = cohorts[0]
    mapping = yaml.safe_load(parameters_file("sdtm_mapping.yaml").read_text(encoding="utf-8"))
    mapping["infusion"] = {"domain": "DM", "date": "RFXSTDTC"}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(mapping), encoding="utf-8")
    folder = tmp_path / "sdtm"
    folder.mkdir()
    for file in (root / "sdtm").iterdir():
        target = folder / ("LB.sas7bdat" if file.name == "lb.xpt" else file.name)
        target.write_bytes(file.read_bytes())
    calls = []
    monkeypatch.setattr(pyreadstat, "read_sas7bdat", lambda path, **kw: calls.append(path) or pyreadstat.read_xport(path))
    result = import_sdtm(folder, tmp_path / "mine.yaml")
    assert calls == [str(folder / "LB.sas7bdat")]
    assert result.report["EX"]["used"] == N  # EX still gives DOSE
    for table, frame in result.tables.items():  # the same study days, codes and numbers as the CSVs
        expected = pd.read_csv(root / "csv" / f"{table}.csv", dtype=str, keep_default_na=False)
        for column in ("USUBJID", "DAY", "ONSET_DAY", "START_DAY", "TERM", "TEST", "EVENT"):
            if column in frame:
                assert frame[column].tolist() == expected[column].tolist(), (table, column)


def problems_of(argv, capsys, out: Path) -> list[str]:
    status, stdout, err = run(argv + ["--out", str(out)], capsys)
    assert status == 2 and "Traceback" not in err and stdout == ""
    assert not out.exists() and not any(p.name.startswith(f".{out.name}") for p in out.parent.iterdir())
    assert not dated([err])  # a bad date is shown masked
    return [line[4:] for line in err.splitlines() if line.startswith("  - ")]


def test_each_problem_is_named_with_file_row_variable_and_value(sdtm, tmp_path, capsys):
    edit(sdtm, "DM", lambda d: d.assign(SEX=d["SEX"].where(d.index != 2, "U")))
    edit(sdtm, "AE", lambda d: d.assign(AETOXGR=d["AETOXGR"].where(d.index != 0, "6"),
                                        AESTDTC=d["AESTDTC"].where(d.index != 1, "2021-13-05")))
    edit(sdtm, "LB", lambda d: d.assign(LBDTC=d["LBDTC"].where(d.index != 4, "2021-03")))
    edit(sdtm, "PC", lambda d: d.assign(PCSTRESU=d["PCSTRESU"].where(d.index != 3, "NG/ML")))
    edit(sdtm, "EX", lambda d: d[~((d.USUBJID == "SYN-07") & (d.EXTRT == "CD19 CAR-T CELLS"))])
    edit(sdtm, "CM", lambda d: d.assign(USUBJID=d["USUBJID"].where(d.index != 0, "SYN-99")))
    found = problems_of(["import-sdtm", str(sdtm)], capsys, tmp_path / "cohort")
    assert found == sorted(found, key=lambda p: p.split(",")[0]) and len(found) == 7
    assert "dm.xpt, row 4, column SEX, value 'U': not one of the mapping's codes (M, F)" in found
    assert "ae.xpt, row 2, column AETOXGR, value '6': not one of the mapping's grades (1, 2, 3, 4, 5)" in found
    assert ("ae.xpt, row 3, column AESTDTC, value '####-##-##': month 13 is not a month "
            "(the value is shown masked: digits #, letters X)") in found
    assert ("lb.xpt, row 6, column LBDTC, value '####-##': a partial date (year, or year and month, only); "
            "a full date YYYY-MM-DD is needed (the value is shown masked: digits #, letters X)") in found
    assert any(p.startswith("pc.xpt, row 5, column PCSTRESU, value 'NG/ML': not one of the mapping's units "
                            "(COPIES/UG, COPIES/UG DNA)") for p in found)
    assert ("dm.xpt, row 8, column USUBJID, value 'SYN-07': no infusion date: no ex.xpt record with EXTRT "
            "CD19 CAR-T CELLS and a readable EXSTDTC") in found
    assert "cm.xpt, row 2, column USUBJID, value 'SYN-99': subject not in dm.xpt" in found


def test_missing_dataset_and_missing_variable(sdtm, tmp_path, capsys):
    (sdtm / "cm.xpt").unlink()
    edit(sdtm, "AE", lambda d: d.drop(columns="AETOXGR"))
    found = problems_of(["import-sdtm", str(sdtm)], capsys, tmp_path / "cohort")
    assert found == [
        "CM: no file cm.xpt or cm.sas7bdat in the SDTM folder",
        "ae.xpt, column AETOXGR: the file has no variable AETOXGR, which the mapping needs (adverse_events)",
    ]


def test_unknown_codes_in_events_and_two_records_where_one_is_needed(sdtm, tmp_path, capsys):
    edit(sdtm, "RS", lambda d: d.assign(RSSTRESC=d["RSSTRESC"].where(d.index != 0, "PARTIAL RESPONSE")))
    edit(sdtm, "SUPPDM", lambda d: pd.concat([d, d.iloc[[0]]], ignore_index=True))
    found = problems_of(["import-sdtm", str(sdtm)], capsys, tmp_path / "cohort")
    assert any(p.startswith("rs.xpt, row 2, column RSSTRESC, value 'PARTIAL RESPONSE': not one of the mapping's "
                            "RELAPSE codes or other values (CD19 POSITIVE RELAPSE, CD19 NEGATIVE RELAPSE, CR,") for p in found)
    assert any(p.startswith("rs.xpt, row 2, column RSSTRESC, value 'PARTIAL RESPONSE': not one of the mapping's "
                            "codes (CR, CRI,") for p in found)  # also the day-28 response
    assert (f"suppdm.xpt, row {2 * N + 2}, column USUBJID, value 'SYN-01': a second record for INDICATION of this "
            "subject (the first is row 2); the mapping needs one (or pick: first)") in found
    assert len(found) == 3


def test_a_cohort_that_breaks_the_contract_after_conversion_is_not_written(sdtm, tmp_path, capsys):
    # the end of participation before the relapse: the contract's rule on event days fails
    edit(sdtm, "DM", lambda d: d.assign(RFPENDTC=d["RFSTDTC"]))
    found = problems_of(["import-sdtm", str(sdtm)], capsys, tmp_path / "cohort")
    assert found[0].startswith("events, row 2, column DAY")
    assert "import: the tables made from the SDTM data break the cohort contract as listed; correct the SDTM " \
           "data or the mapping" in found


def test_a_bad_mapping_file_is_named(sdtm, tmp_path, capsys):
    mapping = yaml.safe_load(parameters_file("sdtm_mapping.yaml").read_text(encoding="utf-8"))
    mapping["subjects"]["SEX"]["codez"] = {"M": "M"}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(mapping), encoding="utf-8")
    status, _, err = run(["import-sdtm", str(sdtm), "--mapping", str(tmp_path / "bad.yaml"),
                          "--out", str(tmp_path / "cohort")], capsys)
    assert status == 2 and not (tmp_path / "cohort").exists()
    assert err.strip() == ("cartlib import-sdtm: mapping file bad.yaml: subjects.SEX: unknown key 'codez' "
                           "(known: codes, date, domain, exclude, flag, pick, units, variable, where)")


def test_export_is_deterministic_per_seed(tmp_path):
    """Same cohort and seed, same records (the transport header holds the time of writing);
    the seed moves the calendar, not the study days."""
    tables = generate_cohort(4, seed=1)
    read = lambda paths: [pyreadstat.read_xport(str(p))[0] for p in paths]  # noqa: E731
    first, again = read(write_sdtm(tables, tmp_path / "a", seed=1)), read(write_sdtm(tables, tmp_path / "b", seed=1))
    assert all(a.equals(b) for a, b in zip(first, again))
    other = read(write_sdtm(tables, tmp_path / "c", seed=2))
    assert first[0]["RFSTDTC"].tolist() == ["2018-01-02", "2018-01-09", "2018-01-16", "2018-01-23"]
    assert other[0]["RFSTDTC"].tolist()[0] == "2018-01-03"
