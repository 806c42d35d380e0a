"""An installed wheel works from any folder, with no source checkout in sight.

The wheel is built the way a package index would get it (source distribution first, then the
wheel from the unpacked sdist, so a file missing from MANIFEST.in fails here), installed into a
fresh virtual environment outside the repository, and the ``cartlib`` command of that
environment runs ``synth``, ``validate``, ``init`` and ``run`` from an unrelated folder. The
new environment sees this one's site-packages (and nbconvert's templates) for the dependencies
(nothing is downloaded: ``--no-index`` throughout) but not its editable cartlib. About a minute
and a half, mostly the one run.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import cartlib

ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv*", "reports", "build", "dist", "*.egg-info", "__pycache__",
                                    ".hypothesis", ".pytest_cache", ".bench", ".ipynb_checkpoints", "tests")


def run(cmd, cwd, env=None, timeout=900):
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory) -> Path:
    """sdist of a copy of the source tree, then the wheel built from that sdist."""
    tmp = tmp_path_factory.mktemp("build")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)  # never build inside the working tree
    sdist_name = run([sys.executable, "-c", "from setuptools import build_meta as b; print(b.build_sdist('sdist'))"],
                     cwd=source).strip().splitlines()[-1]
    with tarfile.open(source / "sdist" / sdist_name) as archive:
        archive.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet",
         "-w", tmp / "dist", unpacked], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("cartlib-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(built_wheel, tmp_path_factory) -> Path:
    """A virtual environment holding the wheel; its dependencies are this environment's."""
    env_dir = tmp_path_factory.mktemp("installed") / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", env_dir], cwd=env_dir.parent)
    site = Path(run([env_dir / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=env_dir.parent).strip())
    # a plain path line: this environment's packages, but not its .pth hooks (the editable cartlib)
    shared = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "dependencies.pth").write_text("\n".join(shared) + "\n")
    # nbconvert's templates are data files under an environment's share/, which a .pth cannot reach
    templates = env_dir / "share" / "jupyter" / "nbconvert"
    templates.parent.mkdir(parents=True)
    templates.symlink_to(Path(sys.prefix) / "share" / "jupyter" / "nbconvert", target_is_directory=True)
    run([env_dir / "bin" / "python", "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", built_wheel],
        cwd=env_dir.parent)
    return env_dir


def test_the_wheel_carries_the_notebooks_parameters_and_cohort_and_nothing_else(built_wheel):
    names = zipfile.ZipFile(built_wheel).namelist()
    shipped = {n for n in names if n.startswith("cartlib/_bundled/")}
    assert shipped == ({f"cartlib/_bundled/notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.ipynb")}
                       | {f"cartlib/_bundled/parameters/{p.name}" for p in (ROOT / "parameters").glob("*.yaml")}
                       | {f"cartlib/_bundled/parameters/scenarios/{p.name}"
                          for p in (ROOT / "parameters" / "scenarios").glob("*.yaml")})
    assert len(shipped) >= 19  # nine notebooks, five parameter files, five simulation scenarios
    cohort = {n for n in names if n.startswith("cartlib/data/default_cohort/")}
    assert cohort == {f"cartlib/data/default_cohort/{p.name}" for p in (ROOT / "cartlib/data/default_cohort").glob("*.csv")}
    assert len(cohort) == 6
    # only the runtime package: no calibration search, tests or scripts
    assert {n.split("/")[0] for n in names} == {"cartlib", f"cartlib-{cartlib.__version__}.dist-info"}
    assert not [n for n in names if "calibrat" in n.lower()]
    entry_points = zipfile.ZipFile(built_wheel).read(f"cartlib-{cartlib.__version__}.dist-info/entry_points.txt")
    assert b"cartlib = cartlib.cli:main" in entry_points


def test_the_installed_command_works_from_another_folder(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "CARTLIB_NOTEBOOKS", "VIRTUAL_ENV"}}
    # no kernel spec of the user's own may stand in for the environment's python
    env["JUPYTER_DATA_DIR"] = str(tmp_path / "jupyter-data")
    cli = installed / "bin" / "cartlib"

    where = run([installed / "bin" / "python", "-c",
                 "import cartlib, cartlib.resources as r; print(cartlib.__file__); print(r.notebooks_dir())"],
                cwd=elsewhere, env=env).split()
    assert all(p.startswith(str(installed)) for p in where), where  # the wheel's files, not the checkout's

    run([cli, "synth", "--n", "30", "--seed", "1", "--out", "cohort"], cwd=elsewhere, env=env)
    assert len(list((elsewhere / "cohort").glob("*.csv"))) == 6
    run([cli, "validate", "--data", "cohort"], cwd=elsewhere, env=env)

    run([cli, "run", "--quiet", "--data", "cohort", "--out", "report"], cwd=elsewhere, env=env)
    assert (elsewhere / "report" / "report.html").stat().st_size > 0
    results = json.loads((elsewhere / "report" / "results.json").read_text())
    assert results["cohort.n"] == 30
    assert len(results) > 100

    run([cli, "init", "workspace"], cwd=elsewhere, env=env)
    assert len(list((elsewhere / "workspace" / "notebooks").glob("*.ipynb"))) == len(list((ROOT / "notebooks").glob("*.ipynb")))
    assert (elsewhere / "workspace" / "parameters" / "default.yaml").is_file()
    assert (elsewhere / "workspace" / "README.md").is_file()
