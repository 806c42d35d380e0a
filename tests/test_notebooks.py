"""The notebooks' parameters cells: plain literals equal to the schema defaults, one per parameter."""
import ast

import nbformat
import pytest

from cartlib.params import SCHEMA, defaults
from cartlib.runner import NOTEBOOKS, notebook_dir

EXTRA = {"results_path", "results_json", "cohort_snapshot", "figures_dir"}
# the simulation notebook studies the generative model, not the run's cohort: it takes the run's
# seed and sizes of its own (docs/SIMULATION.md), not the analysis parameters
SIMULATION = "07_simulation"
SIMULATION_OWN = {"replicates", "n", "scenario", "workers", "grid_n", "grid_replicates", "lesson_replicates",
                  "sections"}


def _parameters_cell(name):
    nb = nbformat.read(notebook_dir() / f"{name}.ipynb", as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{name}: exactly one cell tagged 'parameters'"
    return nb, cells[0]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_holds_every_parameter_as_a_default_literal(name):
    _, cell = _parameters_cell(name)
    values = {}
    for node in ast.parse(cell.source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, f"{name}: only plain assignments"
        values[node.targets[0].id] = ast.literal_eval(node.value)  # plain literals only (papermill)
    if name == SIMULATION:
        assert set(values) - EXTRA - set(SCHEMA) == SIMULATION_OWN
    else:
        assert set(values) - EXTRA == set(SCHEMA)
    assert {k: v for k, v in values.items() if k in SCHEMA} == {k: v for k, v in defaults().items()
                                                                 if k in values or name != SIMULATION}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_executed_and_checks_its_numbers(name):
    nb, _ = _parameters_cell(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("outputs") or "parameters" in c.metadata.get("tags", []) or not c.source.strip()
               for c in code if "NBVAL_CHECK_OUTPUT" in c.source), f"{name}: a checked cell has no stored output"
    assert sum("NBVAL_CHECK_OUTPUT" in c.source for c in code) >= 2
    assert not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", []))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_hold_no_analysis_logic(name):
    """Code cells call cartlib; they define no functions or classes and loop only to display."""
    nb, _ = _parameters_cell(name)
    for cell in nb.cells:
        if cell.cell_type == "code":
            tree = ast.parse(cell.source)
            assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
