"""Output folders: which are refused (with or without --force), which are allowed, and how they
are written (umask permissions, atomic replace, stale temporary folders, one writer at a time).

The `run` cases go through the command line in-process: a refused folder is refused before any
notebook starts, so these tests need no kernel."""
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cartlib import atomic
from cartlib.cli import main
from cartlib.io import write_example_cohort
from cartlib.atomic import output_lock
from cartlib.outdir import OutputFolderBusy, PathError, check_output, staged_output


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in sorted(folder.rglob("*"))}


@pytest.fixture
def cohort(tmp_path):
    return write_example_cohort(tmp_path / "cohort")


def _run(capsys, *args):
    status = main(["run", "--quiet", *args])
    err = capsys.readouterr().err
    return status, err


def _own_report(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"cartlib": "0.1.0"}), encoding="utf-8")
    (folder / "report.html").write_text("<html></html>", encoding="utf-8")
    (folder / "notebooks").mkdir()
    return folder


# -- refused -------------------------------------------------------------------------------------

def test_a_foreign_folder_is_refused_without_force_and_kept(tmp_path, cohort, capsys):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.docx").write_text("years of work", encoding="utf-8")
    before = _tree(mine)
    status, err = _run(capsys, "--data", str(cohort), "--out", str(mine))
    assert status == 2
    assert err.strip() == (f"cartlib run: refusing to write into {mine}: it is not empty and is not a cartlib "
                           "report (it holds chapter1.docx); choose another folder or pass --force to replace it")
    assert _tree(mine) == before


def test_a_report_folder_with_the_users_own_files_added_is_not_ours(tmp_path):
    report = _own_report(tmp_path / "report")
    (report / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(PathError, match="is not a cartlib report"):
        check_output(report)


@pytest.mark.parametrize("where, reason", [
    ("data", "it is the input folder"),
    ("parent", "it holds the input"),
    ("inside", "it lies inside the input"),
])
def test_the_input_folder_its_parents_and_its_inside_are_refused_even_with_force(tmp_path, cohort, capsys,
                                                                                  where, reason):
    out = {"data": cohort, "parent": cohort.parent, "inside": cohort / "report"}[where]
    before = _tree(tmp_path)
    status, err = _run(capsys, "--data", str(cohort), "--out", str(out), "--force")
    assert status == 2 and reason in err and str(out) in err and "Traceback" not in err
    assert _tree(tmp_path) == before


def test_the_folder_of_an_xlsx_input_and_of_the_parameter_file_are_refused(tmp_path):
    book = tmp_path / "site" / "cohort.xlsx"
    book.parent.mkdir()
    book.write_bytes(b"PK")
    params = tmp_path / "p" / "mine.yaml"
    params.parent.mkdir()
    params.write_text("lloq: 50\n", encoding="utf-8")
    with pytest.raises(PathError, match="it holds the input .*cohort.xlsx"):
        check_output(book.parent, inputs=[book], force=True)
    with pytest.raises(PathError, match="it holds the input .*mine.yaml"):
        check_output(tmp_path, inputs=[params], force=True)
    check_output(book.parent / "reports" / "x", inputs=[book])  # beside a workbook is fine


def test_the_working_directory_and_what_holds_it_are_refused(tmp_path, monkeypatch, capsys):
    work = tmp_path / "project" / "analysis"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    for out, reason in ((".", "it is the working directory"), ("..", "it holds the working directory")):
        status, err = _run(capsys, "--out", out, "--force")
        assert status == 2 and reason in err
    assert work.is_dir()


def test_the_home_folder_and_the_filesystem_root_are_refused(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home" / "me"
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for out, reason in ((home, "it is your home folder"), (home.parent, "it holds your home folder"),
                        ("/", "it is the filesystem root"), ("~", "it is your home folder")):
        status, err = _run(capsys, "--out", str(out), "--force")
        assert status == 2 and reason in err, (out, err)


def test_a_repository_root_is_refused_even_with_force(tmp_path, capsys):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    status, err = _run(capsys, "--out", str(repo), "--force")
    assert status == 2 and "it is a repository root (it holds .git)" in err
    assert (repo / ".git").is_dir()


def test_a_file_is_refused_even_with_force(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("keep", encoding="utf-8")
    status, err = _run(capsys, "--out", str(target), "--force")
    assert status == 2 and "it is a file, not a folder" in err
    assert target.read_text(encoding="utf-8") == "keep"


def test_synth_refuses_a_non_empty_folder_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "syn"
    out.mkdir()
    (out / "keep.csv").write_text("x\n", encoding="utf-8")
    assert main(["synth", "--n", "5", "--seed", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "it is not empty (it holds keep.csv); choose another folder or pass --overwrite" in err
    assert main(["synth", "--n", "5", "--seed", "1", "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["subjects.csv", "events.csv", "adverse_events.csv", "medications.csv", "pk.csv", "labs.csv"])
    assert main(["validate", "--data", str(out)]) == 0


def test_synth_never_writes_into_the_working_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.txt").write_text("keep", encoding="utf-8")
    assert main(["synth", "--n", "5", "--out", ".", "--overwrite"]) == 2
    assert "it is the working directory" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


# -- allowed -------------------------------------------------------------------------------------

def test_absent_empty_and_own_folders_are_allowed_and_force_replaces_a_foreign_one(tmp_path):
    check_output(tmp_path / "absent" / "deeper")
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty")
    check_output(_own_report(tmp_path / "previous"))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "old.txt").write_text("x", encoding="utf-8")
    with staged_output(foreign, force=True) as tmp:
        (tmp / "manifest.json").write_text('{"cartlib": "0"}', encoding="utf-8")
    assert sorted(p.name for p in foreign.iterdir()) == ["manifest.json"]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_new_folders_get_the_users_usual_permissions(tmp_path, umask):
    previous = os.umask(umask)
    try:
        with staged_output(tmp_path / "a" / "report") as tmp:
            (tmp / "notebooks").mkdir()
    finally:
        os.umask(previous)
    expected = 0o777 & ~umask
    assert (tmp_path / "a" / "report").stat().st_mode & 0o777 == expected
    assert (tmp_path / "a").stat().st_mode & 0o777 == expected
    assert (tmp_path / "a" / "report" / "notebooks").stat().st_mode & 0o777 == expected


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_a_failure_while_writing_leaves_the_previous_folder_as_it_was(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "swap_paths", lambda a, b: False)
    previous = _own_report(tmp_path / "report")
    before = _tree(previous)
    with pytest.raises(RuntimeError, match="half-way"):
        with staged_output(previous) as tmp:
            (tmp / "manifest.json").write_text('{"cartlib": "new"}', encoding="utf-8")
            raise RuntimeError("half-way")
    assert _tree(previous) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"], "no temporary folder, no lock file left"
    with staged_output(previous) as tmp:
        (tmp / "manifest.json").write_text('{"cartlib": "new"}', encoding="utf-8")
    assert json.loads((previous / "manifest.json").read_text()) == {"cartlib": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


# -- dead runs and concurrent runs ----------------------------------------------------------------

def test_stale_partials_of_dead_runs_are_removed_by_the_next_run(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f".report.{dead_pid}.0a1b.partial"
        stale_old = tmp_path / f".report.{dead_pid}.77ff.old"
        running = tmp_path / f".report.{alive.pid}.c0de.partial"
        other_target = tmp_path / f".other.{dead_pid}.0a1b.partial"
        for folder in (stale, stale_old, running, other_target):
            (folder / "notebooks").mkdir(parents=True)
        with staged_output(tmp_path / "report") as tmp:
            (tmp / "manifest.json").write_text('{"cartlib": "0"}', encoding="utf-8")
        assert not stale.exists() and not stale_old.exists()
        assert running.exists(), "a live process's folder is not touched"
        assert other_target.exists(), "only the temporary folders of the same target are cleaned"
    finally:
        alive.kill()
        alive.wait()


def test_a_second_writer_of_the_same_folder_is_refused_with_a_clear_message(tmp_path, capsys):
    out = tmp_path / "report"
    with output_lock(out.resolve()):
        with pytest.raises(OutputFolderBusy, match=rf"another cartlib process \(pid {os.getpid()}\) is writing"):
            with staged_output(out):
                pass
        assert main(["synth", "--n", "5", "--out", str(out)]) == 2
        assert "is writing" in capsys.readouterr().err
        assert not out.exists()
    with staged_output(out) as tmp:  # released: the next writer gets in
        (tmp / "x").write_text("y", encoding="utf-8")
    assert (out / "x").exists() and not (tmp_path / ".report.lock").exists()


def test_a_lock_held_by_another_process_is_seen(tmp_path):
    out = (tmp_path / "report").resolve()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from cartlib.atomic import output_lock\n"
         "with output_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputFolderBusy, match=rf"pid {holder.pid}\)"):
            with staged_output(out):
                pass
    finally:
        holder.kill()
        holder.wait()
    with staged_output(out):  # the lock died with its holder
        pass


# -- operating-system errors ---------------------------------------------------------------------

def test_disk_full_while_writing_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys):
    import cartlib.synth

    def full_disk(tables, folder, overwrite=False):
        (Path(folder) / "subjects.csv").write_text("USUBJID\n", encoding="utf-8")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(Path(folder) / "events.csv"))

    monkeypatch.setattr(cartlib.synth, "write_cohort", full_disk)
    out = tmp_path / "syn"
    assert main(["synth", "--n", "5", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [], "no half-written folder, no temporary folder"


def test_an_unwritable_parent_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert main(["synth", "--n", "5", "--out", str(tmp_path / "ro" / "syn")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot create {tmp_path / 'ro'}: Permission denied" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_a_read_only_parent_is_one_line_and_exit_2(tmp_path, capsys):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        assert main(["synth", "--n", "5", "--out", str(parent / "syn")]) == 2
        assert "permission denied" in capsys.readouterr().err.lower()
    finally:
        parent.chmod(0o755)


def test_a_path_that_is_not_utf8_is_refused(tmp_path, capsys):
    bad = str(tmp_path) + "/co\udcffhort"
    assert main(["synth", "--n", "5", "--out", bad]) == 2
    assert "the path is not valid UTF-8" in capsys.readouterr().err
    assert main(["validate", "--data", bad]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err


def test_a_symlink_loop_as_data_is_one_line(tmp_path, capsys):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for argv in (["validate", "--data", str(tmp_path / "a")],
                 ["run", "--quiet", "--data", str(tmp_path / "a"), "--out", str(tmp_path / "r")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "symbolic link loop" in err
    assert not (tmp_path / "r").exists()
