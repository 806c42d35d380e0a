"""cartlib init: the workspace's files, refusal of a non-empty folder, and never overwriting a user's file."""
import json
import logging
import os
import stat

import pytest

from cartlib.resources import notebooks_dir, parameters_dir
from cartlib.workspace import MANIFEST, init_workspace


def shipped(folder, pattern):
    return {p.name: p.read_bytes() for p in folder.glob(pattern)}


def test_a_new_workspace_holds_the_notebooks_parameters_and_readme(tmp_path):
    old_mask = os.umask(0o022)
    try:
        ws = init_workspace(tmp_path / "a" / "ws")
    finally:
        os.umask(old_mask)
    assert ws == (tmp_path / "a" / "ws").resolve()
    assert shipped(ws / "notebooks", "*.ipynb") == shipped(notebooks_dir(), "*.ipynb")
    assert shipped(ws / "parameters", "*.yaml") == shipped(parameters_dir(), "*.yaml")
    assert len(shipped(ws / "notebooks", "*.ipynb")) == len(list(notebooks_dir().glob("*.ipynb"))) >= 9
    readme = (ws / "README.md").read_text(encoding="utf-8")
    assert "jupyter lab" in readme and "cartlib run --data" in readme and "cartlib validate" in readme
    # the user's normal permissions, not a temporary folder's 0700 / 0600
    assert stat.S_IMODE(ws.stat().st_mode) == 0o755
    assert stat.S_IMODE((ws / "README.md").stat().st_mode) == 0o644
    assert not [p for p in tmp_path.rglob("*.partial")]
    recorded = json.loads((ws / MANIFEST).read_text())["files"]
    assert set(recorded) == {str(p.relative_to(ws)) for p in ws.rglob("*") if p.is_file() and p.name != MANIFEST}


def test_a_non_empty_folder_is_refused_without_force(tmp_path):
    (tmp_path / "thesis.docx").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty"):
        init_workspace(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["thesis.docx"]
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileExistsError, match="is a file"):
        init_workspace(tmp_path / "afile", force=True)


def test_force_adds_the_workspace_but_never_overwrites_a_users_file(tmp_path, caplog):
    (tmp_path / "README.md").write_text("my project's readme")
    (tmp_path / "notes.txt").write_text("my notes")
    with caplog.at_level(logging.WARNING, logger="cartlib.workspace"):
        init_workspace(tmp_path, force=True)
    assert (tmp_path / "README.md").read_text() == "my project's readme"
    assert (tmp_path / "notes.txt").read_text() == "my notes"
    assert (tmp_path / "notebooks" / "00_cohort.ipynb").is_file()
    assert "kept" in caplog.text and "README.md" in caplog.text


def test_force_again_refreshes_its_own_unchanged_files_and_keeps_edited_ones(tmp_path):
    ws = init_workspace(tmp_path / "ws")
    edited = ws / "notebooks" / "01_efficacy.ipynb"
    edited.write_text("my edits")
    deleted = ws / "parameters" / "default.yaml"
    deleted.unlink()
    unchanged = ws / "README.md"
    inode = unchanged.stat().st_ino
    init_workspace(ws, force=True)
    assert edited.read_text() == "my edits"
    assert deleted.read_bytes() == (parameters_dir() / "default.yaml").read_bytes()
    assert unchanged.stat().st_ino != inode  # its own unchanged file was replaced (atomically: a new inode)
    recorded = json.loads((ws / MANIFEST).read_text())["files"]
    assert "notebooks/01_efficacy.ipynb" not in recorded  # the user's now, kept on every later init
    assert "parameters/default.yaml" in recorded
