"""The command line: bad input exits 2 with a readable message and no traceback; nothing is written."""
import subprocess
import sys
from pathlib import Path


from cartlib.cli import main
from cartlib.io import write_example_cohort


def _snapshot(folder: Path):
    return sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir())


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cartlib.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_validate_accepts_a_valid_cohort(tmp_path, capsys):
    folder = write_example_cohort(tmp_path / "ok")
    assert main(["validate", "--data", str(folder)]) == 0
    assert "valid (2 patients" in capsys.readouterr().out


def test_validate_lists_every_problem_and_exits_2_without_traceback(tmp_path):
    folder = write_example_cohort(tmp_path / "bad")
    subjects = folder / "subjects.csv"
    subjects.write_text(subjects.read_text().replace("P001,8,F", "P001,-3,X"), encoding="utf-8")
    (folder / "events.csv").write_text("USUBJID,EVENT,DAY,DETAIL\nP009,DEATH,10,NRM\n", encoding="utf-8")
    before = _snapshot(folder)
    proc = _cli("validate", "--data", str(folder))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    for needle in ("subjects, row 2, column AGE, value '-3'", "column SEX, value 'X'", "events, row 2, column USUBJID, value 'P009'"):
        assert needle in proc.stderr
    assert _snapshot(folder) == before, "the input folder must never be written"


def test_run_refuses_bad_input_before_running_anything(tmp_path):
    folder = write_example_cohort(tmp_path / "bad")
    (folder / "pk.csv").unlink()
    out = tmp_path / "report"
    proc = _cli("run", "--data", str(folder), "--out", str(out), "--quiet")
    assert proc.returncode == 2
    assert "pk.csv is missing" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad"]


def test_run_refuses_an_unknown_parameter(tmp_path):
    proc = _cli("run", "--set", "km_cii=log", "--out", str(tmp_path / "r"), "--quiet")
    assert proc.returncode == 2
    assert "unknown parameter 'km_cii' (did you mean 'km_ci'?)" in proc.stderr


def test_synth_writes_a_valid_cohort(tmp_path):
    out = tmp_path / "syn"
    assert main(["synth", "--n", "12", "--seed", "3", "--out", str(out)]) == 0
    assert main(["validate", "--data", str(out)]) == 0
