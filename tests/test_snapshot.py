"""Load and validate once: `cartlib run` validates the cohort in the main process and the
notebooks read its snapshot; a notebook run on its own still loads and validates itself.

Validations are counted across processes: a ``sitecustomize`` on ``PYTHONPATH`` (imported by
every Python process the run starts, kernels included) wraps the contract check and appends
one line per call to a log file.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from cartlib import analysis
from cartlib.io import load_cohort, write_example_cohort
from cartlib.params import defaults
from cartlib.runner import SECTIONS, notebook_dir

from fake_notebooks import write_notebook

CARTLIB = str(Path(sys.executable).with_name("cartlib"))
HOOK = textwrap.dedent("""
    import os
    if os.environ.get("VALIDATION_LOG"):
        import cartlib.io

        checked = cartlib.io.check_tables

        def counted_check_tables(*args, **kwargs):
            with open(os.environ["VALIDATION_LOG"], "a") as log:
                log.write(f"{os.getpid()}\\n")
            return checked(*args, **kwargs)

        cartlib.io.check_tables = counted_check_tables
""")
# reads the cohort as the real notebooks do and records what it saw
LOADING_BODY = ("from cartlib import analysis\n"
                "from cartlib.params import resolve\n"
                "from cartlib.results import Recorder\n"
                "cohort = analysis.load(resolve(globals(), ignore_unknown=True), snapshot=cohort_snapshot)\n"
                "Recorder(results_path, section={section!r}).record("
                "{{{section!r} + '.n': len(cohort.subjects), {section!r} + '.snapshot': cohort_snapshot is not None}})")


@pytest.fixture
def counting_env(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    log = tmp_path / "validations.log"
    env = {**os.environ, "VALIDATION_LOG": str(log),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))}
    return env, log


def _validations(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_a_run_validates_once_and_every_section_reads_the_snapshot(tmp_path, counting_env):
    env, log = counting_env
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    for name in SECTIONS:
        section = name.split("_", 1)[1]
        write_notebook(nbs / f"{name}.ipynb", LOADING_BODY.format(section=section), name)
        nb = nbformat.read(nbs / f"{name}.ipynb", as_version=4)
        nb.cells[1].source += "\ncohort_snapshot = None"
        nbformat.write(nb, nbs / f"{name}.ipynb")
    write_notebook(nbs / "06_scorecard.ipynb", "print('scorecard')", "Scorecard")
    data = write_example_cohort(tmp_path / "cohort")
    env["CARTLIB_NOTEBOOKS"] = str(nbs)
    done = subprocess.run([CARTLIB, "run", "--quiet", "--data", str(data), "--out", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(_validations(log)) == 1  # the main process only
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    for name in SECTIONS:
        section = name.split("_", 1)[1]
        assert results[f"{section}.n"] == 2 and results[f"{section}.snapshot"] == 1
    assert not list((tmp_path / "out").rglob("*.pkl")), "the snapshot does not stay in the report"


# the simulation notebook draws its own cohorts from the generative model and reads no cohort
@pytest.mark.parametrize("name", [n for n in SECTIONS if n != "07_simulation"])
def test_the_workbook_notebooks_take_the_snapshot(name):
    nb = nbformat.read(notebook_dir() / f"{name}.ipynb", as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "cohort_snapshot = None" in code[0]
    assert "analysis.load(params, snapshot=cohort_snapshot)" in code[1]


def test_a_notebook_run_directly_loads_and_validates_itself(tmp_path, counting_env):
    env, log = counting_env
    data = write_example_cohort(tmp_path / "cohort")
    out = tmp_path / "03_pk.ipynb"
    done = subprocess.run([sys.executable, "-m", "papermill", "--no-progress-bar", "-p", "data", str(data),
                           str(notebook_dir() / "03_pk.ipynb"), str(out)],
                          env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(_validations(log)) == 1  # the kernel's own
    first = [c for c in nbformat.read(out, as_version=4).cells if c.cell_type == "code"][2]
    assert "2 patients; data fingerprint" in "".join(o.get("text", "") for o in first.outputs)


def test_a_snapshot_equals_the_loaded_cohort_and_refuses_other_data(tmp_path):
    data = write_example_cohort(tmp_path / "cohort")
    params = {**defaults(), "data": str(data)}
    cohort = load_cohort(data)
    path = analysis.write_snapshot(cohort, tmp_path)
    again = analysis.load(params, snapshot=path)
    assert again.same_data(cohort) and again.fingerprint == cohort.fingerprint
    assert all(a.dtypes.equals(b.dtypes) for a, b in zip(again.tables.values(), cohort.tables.values()))
    with pytest.raises(ValueError, match="lloq=100, not 50"):
        analysis.load({**params, "lloq": 50.0}, snapshot=path)
    with open(data / "pk.csv", "a") as fh:
        fh.write("P002,20,900\n")
    with pytest.raises(ValueError, match="made from other data"):
        analysis.load(params, snapshot=path)
