"""The command line: bad input exits 2 with a readable message and no traceback; nothing is written."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    assert proc.stderr.startswith("cartlib run: ") and proc.stderr.count("\n") == 1


def test_synth_writes_a_valid_cohort(tmp_path):
    out = tmp_path / "syn"
    assert main(["synth", "--n", "12", "--seed", "3", "--out", str(out)]) == 0
    assert main(["validate", "--data", str(out)]) == 0


def test_version(capsys):
    import cartlib

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"cartlib {cartlib.__version__}"


def test_run_help_lists_every_parameter_with_default_and_allowed_values(capsys):
    from cartlib.params import SCHEMA

    with pytest.raises(SystemExit) as exit_:
        main(["run", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # undo the wrapping
    for name, spec in SCHEMA.items():
        assert f"{name} = {json.dumps(spec.default, ensure_ascii=False)}" in text, name
        allowed = getattr(spec, "allowed", "")
        assert allowed == "" or f"allowed: {' '.join(allowed.split())}" in text, name
        assert " ".join(spec.doc.split()) in text, name
    assert 'km_ci = "plain"' in text and "--force" in text


def _actions(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _actions(sub)
        else:
            yield parser.prog, action


def test_every_option_has_help_text():
    from cartlib.cli import build_parser

    missing = [f"{prog} {action.option_strings or action.dest}" for prog, action in _actions(build_parser())
               if not action.help]
    assert missing == []


@pytest.mark.parametrize("argv, message", [
    (["synth", "--n", "0", "--out", "x"], "cartlib synth: argument --n: must be a whole number above 0, got '0'"),
    (["synth", "--n", "many", "--out", "x"], "argument --n: must be a whole number above 0, got 'many'"),
    (["synth", "--seed", "-1", "--out", "x"], "argument --seed: must be a whole number from 0 to 4294967295"),
    (["synth", "--seed", "4294967296", "--out", "x"], "argument --seed: must be a whole number from 0"),
    (["run", "--workers", "0", "--out", "x"], "argument --workers: must be a whole number above 0"),
    (["validate", "--data", "x", "--lloq", "nan"], "argument --lloq: must be a finite number above 0, got 'nan'"),
    (["run", "--out", "x", "--colour"], "unrecognized arguments: --colour"),
    (["run"], "the following arguments are required: --out"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_arguments_give_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert message in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["run", "--data", "{tmp}/no_such_cohort", "--out", "{tmp}/r"], "cartlib run: --data {tmp}/no_such_cohort does not exist"),
    (["validate", "--data", "{tmp}/no_such_cohort"], "cartlib validate: --data {tmp}/no_such_cohort does not exist"),
    (["run", "--params", "{tmp}/no.yaml", "--out", "{tmp}/r"], "cartlib run: --params {tmp}/no.yaml does not exist"),
    (["synth", "--params", "{tmp}/no.yaml", "--out", "{tmp}/r"], "cartlib synth: --params {tmp}/no.yaml does not exist"),
])
def test_missing_paths_give_one_line_and_exit_2(argv, message, capsys, tmp_path):
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err == message.format(tmp=tmp_path) + "\n"
    assert list(tmp_path.iterdir()) == []


def test_init_writes_a_workspace_and_refuses_a_non_empty_folder(tmp_path, capsys):
    dest = tmp_path / "ws"
    assert main(["init", str(dest)]) == 0
    assert f"wrote a workspace to {dest}" in capsys.readouterr().out
    assert (dest / "notebooks" / "00_cohort.ipynb").is_file() and (dest / "parameters" / "default.yaml").is_file()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep", encoding="utf-8")
    assert main(["init", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cartlib init: {mine} is not empty") and "Traceback" not in err
    assert main(["init", str(mine), "--force"]) == 0
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "keep"
