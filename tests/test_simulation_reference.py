"""The bundled simulation reference (cartlib/data/simulation_reference): still what today's code
gives, internally consistent, refused where it does not apply, and found in an installed layout.

Cheap on purpose: the staleness check recomputes five replicates (two of the study, one of the
power grid at its smallest n, two of the lesson); nothing else runs a simulation.
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cartlib.resources import notebooks_dir, simulation_reference_dir
from cartlib.simulate import load_scenario, replicate_seed, summarise
from cartlib.simulate.power import power_table, sample_sizes
from cartlib.simulate.reference import (load_provenance, model_fingerprint, reference_lesson, reference_power,
                                        reference_study)
from cartlib.simulate.replicate import StudySpec, run_replicate
from cartlib.simulate.summary import csv_text, model_check

ROOT = Path(__file__).resolve().parents[1]
REBUILD = "re-run scripts/build_simulation_reference.py (it rebuilds cartlib/data/simulation_reference)"
RTOL = 1e-9


@pytest.fixture(scope="module")
def provenance():
    return load_provenance()


def _spec(provenance, part, scenario, n, sections):
    model = load_scenario(None if scenario == "default" else scenario).model
    return StudySpec(n=int(n), seed=int(provenance["seed"]), model=model, sections=tuple(sections))


def _assert_same_replicate(part, stored, spec, index):
    record = run_replicate(spec, index)
    assert record["seed"] == int(stored["seed"]), f"{part}: replicate {index} seed differs; {REBUILD}"
    assert record["error"] is None, f"{part}: replicate {index} now raises {record['error']}; {REBUILD}"
    keys = {k for k in stored.index if k not in ("replicate", "seed", "error", "scenario", "n")}
    assert keys == set(record["values"]), (
        f"{part}: replicate {index} has other results keys now (new: {sorted(set(record['values']) - keys)[:5]}, "
        f"gone: {sorted(keys - set(record['values']))[:5]}); {REBUILD}")
    changed = []
    for key in sorted(keys):
        old, new = float(stored[key]), record["values"][key]
        if not ((math.isnan(old) and math.isnan(new)) or np.isclose(new, old, rtol=RTOL, atol=0.0)):
            changed.append(f"{key}: stored {old!r}, now {new!r}")
    assert not changed, (f"the bundled simulation reference is stale ({part}, replicate {index}: {len(changed)} keys "
                         f"changed, e.g. {changed[:3]}); {REBUILD}")


def test_stored_replicates_are_what_todays_code_computes(provenance):
    study, grid, lesson = reference_study(), reference_power(), reference_lesson()
    # the models themselves first: a changed synthetic.yaml or scenario makes every part stale
    for part, name in (("study", study.scenario), ("lesson", lesson.scenario)):
        assert provenance[part]["model_sha256"] == model_fingerprint(load_scenario(
            None if name == "default" else name).model), f"the generative model of {part} changed; {REBUILD}"
    for name, digest in provenance["grid"]["model_sha256"].items():
        assert digest == model_fingerprint(load_scenario(None if name == "default" else name).model), \
            f"the generative model of the grid's {name} scenario changed; {REBUILD}"
    first = study.first_replicates()
    spec = _spec(provenance, "study", study.scenario, study.n, study.sections)
    for index in (0, 1):
        _assert_same_replicate("study", first.iloc[index], spec, index)
    rows = grid.first_replicates()
    row = rows[(rows["scenario"] == grid.scenarios[0]) & (rows["replicate"] == 0)].iloc[0]
    spec = _spec(provenance, "grid", row["scenario"], row["n"], provenance["grid"]["sections"])
    _assert_same_replicate("grid", row, spec, 0)
    first = lesson.first_replicates()
    spec = _spec(provenance, "lesson", lesson.scenario, lesson.n, lesson.sections)
    for index in (0, 1):
        _assert_same_replicate("lesson", first.iloc[index], spec, index)


def _shipped_lines(name: str, keys) -> list[str]:
    lines = (simulation_reference_dir() / name).read_text(encoding="utf-8").splitlines()
    wanted = set(keys)
    return [line for line in lines[1:] if line.split(",", 1)[0] in wanted]


def test_shipped_summaries_are_what_the_summary_code_gives_from_the_shipped_replicates(provenance):
    for part, result in (("study", reference_study()), ("lesson", reference_lesson())):
        values = result.replicate_values()
        info = provenance[part]
        assert len(values) == info["replicates"] == result.replicates
        assert int(values["error"].notna().sum()) == info["failed"]
        assert values["seed"].tolist() == [replicate_seed(provenance["seed"], i) for i in range(len(values))]
        summary = summarise(values)
        keys = summary["key"].tolist()
        assert len(keys) >= 5
        assert csv_text(summary).splitlines()[1:] == _shipped_lines(f"{part}_summary.csv", keys), part
        if part == "study":
            check = model_check(summary)
            assert check["key"].tolist(), "no headline figure among the shipped values"
            assert csv_text(check).splitlines()[1:] == _shipped_lines("study_model_check.csv", check["key"])
    grid = reference_power()
    values = grid.replicate_values()
    runs = {}
    for (scenario, n), cell in values.groupby(["scenario", "n"], sort=True):
        assert len(cell) == grid.replicates
        runs[(scenario, int(n))] = summarise(cell.drop(columns=["scenario", "n"]), figures=[])
    power = power_table(runs)
    assert csv_text(power) == (simulation_reference_dir() / "grid_power.csv").read_text(encoding="utf-8")
    assert csv_text(sample_sizes(power)) == (simulation_reference_dir() / "grid_sample_size.csv").read_text(
        encoding="utf-8")


def test_loaders_refuse_a_study_the_reference_is_not():
    with pytest.raises(ValueError, match=r"^n = 100 differs from the bundled reference \(n = 50\).*replicates"):
        reference_study(n=100)
    with pytest.raises(ValueError, match=r"^scenario = 'half_effects' differs"):
        reference_study(scenario="half_effects")
    with pytest.raises(ValueError, match=r"^grid_n = \[50, 150\] differs.*grid_replicates"):
        reference_power(grid_n=[50, 150])
    with pytest.raises(ValueError, match=r"^n = 60 differs.*lesson_replicates"):
        reference_lesson(n=60)
    assert reference_study(n=50, scenario="default").n == 50


def _notebook_code(name="07_simulation"):
    nb = nbformat.read(notebooks_dir() / f"{name}.ipynb", as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("changes, parameter", [({"n": 100}, "n"), ({"scenario": "half_effects"}, "scenario")])
def test_notebook_refuses_other_n_or_scenario_without_replicates(changes, parameter, tmp_path, monkeypatch):
    """The notebook's own cells, with replicates = 0 and another n or scenario: one ValueError naming it."""
    monkeypatch.chdir(tmp_path)
    cells = _notebook_code()
    namespace: dict = {}
    exec(cells[0], namespace)   # the parameters cell
    assert namespace["replicates"] == 0 and namespace["grid_replicates"] == 0 and namespace["lesson_replicates"] == 0
    namespace.update(changes)
    with pytest.raises(ValueError, match=rf"^{parameter} = .* differs from the bundled reference"):
        for source in cells[1:]:
            exec(source, namespace)
    shutil.rmtree(namespace["out"], ignore_errors=True)


def test_reference_is_found_in_an_installed_layout(tmp_path):
    """The package copied as a wheel lays it out (Python files plus pyproject's package data), run
    from an unrelated folder: the loaders read the copy, with every shipped file."""
    folder = simulation_reference_dir()
    shipped = sorted(p.name for p in folder.iterdir())
    assert all(name.endswith((".csv", ".json")) for name in shipped), shipped
    assert sum((folder / name).stat().st_size for name in shipped) < 1_000_000
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["cartlib"]
    package = tmp_path / "site" / "cartlib"
    source = ROOT / "cartlib"
    for path in source.rglob("*.py"):
        if "__pycache__" not in path.parts and "_bundled" not in path.parts:
            (package / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, package / path.relative_to(source))
    for pattern in globs:
        for path in source.glob(pattern):
            if path.is_file():
                (package / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, package / path.relative_to(source))
    shutil.copytree(ROOT / "parameters", package / "_bundled" / "parameters")   # as setup.py packs them
    code = ("import json, cartlib\n"
            "from cartlib.simulate.reference import reference_study, reference_power, reference_lesson\n"
            "s, g, l = reference_study(), reference_power(), reference_lesson()\n"
            "print(json.dumps([cartlib.__file__, str(s.folder), len(s.replicate_values()), s.replicates,"
            " len(g.power), len(l.first_replicates())]))\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    work = tmp_path / "elsewhere"
    work.mkdir()
    done = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    module, found, rows, replicates, power_rows, firsts = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(module).is_relative_to(package) and Path(found) == package / "data" / "simulation_reference"
    assert rows == replicates and power_rows > 0 and firsts >= 2
