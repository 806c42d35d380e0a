"""The runner on tiny stand-in notebooks: results merged and sorted, output atomic, and a failing
notebook named on its own line and in the report, with the other sections still written."""
import contextlib
import io
import json
import re

import pytest

from cartlib import runner
from cartlib.cli import main
from cartlib.io import write_example_cohort
from cartlib.outdir import REPORT_ENTRIES
from fake_notebooks import write_fake_notebooks


def test_run_merges_results_and_writes_report(tmp_path, monkeypatch):
    monkeypatch.setenv("CARTLIB_NOTEBOOKS", str(write_fake_notebooks(tmp_path / "nbs")))
    data = write_example_cohort(tmp_path / "cohort")
    out = runner.run_suite(tmp_path / "out", data=data, overrides={"lloq": 50}, progress=False)
    results = json.loads((out / "results.json").read_text())
    assert list(results) == sorted(results) and len(results) == 2 * len(runner.SECTIONS)
    assert results["pk.lloq"] == 50.0 and results["bca.z"] == 0.3
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == sorted(f"{n}.ipynb" for n in runner.NOTEBOOKS)
    assert {p.name for p in out.iterdir()} <= REPORT_ENTRIES, "a report is recognised as ours next time"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["lloq"] == 50.0 and manifest["failures"] == [] and set(manifest["input_files"]) == {
        "subjects.csv", "events.csv", "adverse_events.csv", "medications.csv", "pk.csv", "labs.csv"}
    html = (out / "report.html").read_text()
    assert manifest["data_fingerprint"] in html and "<script" not in html
    assert "print(len(json.load" not in html, "code is hidden unless --with-code"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no partial folders left"


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """`cartlib run` (in-process, with the progress bar) whose 03_pk notebook raises, into the folder of
    an earlier report: (exit status, stderr, output folder)."""
    tmp = tmp_path_factory.mktemp("failed")
    nbs = write_fake_notebooks(tmp / "nbs", {"03_pk": "x = 1\nraise RuntimeError('boom in pk <b>')"})
    data = write_example_cohort(tmp / "cohort")
    out = tmp / "out"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"cartlib": "0.0.1"}), encoding="utf-8")
    (out / "results.json").write_text('{"old": 1}', encoding="utf-8")
    err = io.StringIO()  # the progress bar and the messages
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setenv("CARTLIB_NOTEBOOKS", str(nbs))
        status = main(["run", "--data", str(data), "--out", str(out)])
    return status, err.getvalue(), out


def test_a_failing_notebook_exits_1_and_is_named_on_its_own_line(failed_run):
    status, err, out = failed_run
    assert status == 1
    assert "notebooks:" in err, "the progress bar was shown"
    assert re.search(r"(?m)^cartlib run: notebook 03_pk failed in cell 4 \(execution count \[3\]\): "
                     r"RuntimeError: boom in pk <b>$", err), err[-2000:]
    assert re.search(rf"(?m)^cartlib run: the other sections are in {re.escape(str(out / 'report.html'))}$", err)
    assert "Traceback" not in err


def test_the_other_sections_are_written_with_a_page_naming_the_failure(failed_run):
    _, _, out = failed_run
    results = json.loads((out / "results.json").read_text())
    sections = {key.split(".")[0] for key in results}
    assert sections == {"cohort", "efficacy", "toxicity", "bca", "transplant", "simulation",
                        "kinetic_model"}, "every section but pk"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["failures"] == [{"notebook": "03_pk", "cell": 4, "execution_count": 3,
                                     "error": "RuntimeError: boom in pk <b>"}]
    html = (out / "report.html").read_text()
    assert "Section 03_pk: not completed" in html and "failed in cell 4 (execution count [3])" in html
    assert "RuntimeError: boom in pk &lt;b&gt;" in html and "boom in pk <b>" not in html, "escaped"
    for name in ("00_cohort", "01_efficacy", "02_toxicity", "04_bca", "05_transplant"):
        assert f"Section {name}</h1>" in html or f">Section {name}<" in html, name
    assert (out / "notebooks" / "03_pk.ipynb").exists(), "the failed notebook is kept for inspection"
    assert not any(p.name.startswith(".") for p in out.parent.iterdir()), "no temporary folder or lock left"


def test_sections_start_longest_first_by_the_previous_report(tmp_path):
    import json

    from cartlib.runner import SECTIONS, longest_first, previous_timings

    assert previous_timings(tmp_path) == {}                         # no earlier report
    (tmp_path / "manifest.json").write_text(json.dumps({"timings_s": {"00_cohort": 3.0, "05_transplant": 30.0}}))
    timings = previous_timings(tmp_path)
    order = longest_first(SECTIONS, timings)
    assert order[-2:] == ["05_transplant", "00_cohort"]              # unknown ones lead, then by seconds
    assert sorted(order) == sorted(SECTIONS)
    (tmp_path / "manifest.json").write_text("not json")
    assert previous_timings(tmp_path) == {}


def test_a_gated_notebook_warms_up_silently_and_runs_its_cells_after_the_gate(tmp_path):
    import nbformat

    from cartlib.notebook_pool import NotebookJob, run_notebooks
    from fake_notebooks import write_notebook

    opened = tmp_path / "opened.txt"
    write_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(2)", "Slow")
    write_notebook(tmp_path / "gated.ipynb", f"print(warmed, open({str(opened)!r}).read())", "Gated")
    jobs = [NotebookJob("slow", str(tmp_path / "slow.ipynb"), str(tmp_path / "slow.out.ipynb"), None, str(tmp_path)),
            NotebookJob("gated", str(tmp_path / "gated.ipynb"), str(tmp_path / "gated.out.ipynb"), None,
                        str(tmp_path), warm_up="warmed = 'warm'\nprint('warm-up output')", gated=True)]
    timings, failures = run_notebooks(jobs, workers=2, progress=False,
                                      open_gate=lambda: opened.write_text("after the gate"))
    assert failures == [] and set(timings) == {"slow", "gated"}
    cells = [c for c in nbformat.read(tmp_path / "gated.out.ipynb", as_version=4).cells if c.cell_type == "code"]
    assert [o.get("text") for o in cells[-1].outputs] == ["warm after the gate\n"], "warm-up first, cell after the gate"
    assert [c.execution_count for c in cells] == [1, 2], "the warm-up adds no execution count and no output"


def test_the_iri_grammar_is_compiled_only_when_a_format_check_needs_it():
    import subprocess
    import sys

    code = ("import sys, cartlib.notebook_pool, nbformat, jsonschema\n"
            "print('rfc3987_syntax.syntax_helpers' in sys.modules)\n"
            "checker = jsonschema.Draft7Validator.FORMAT_CHECKER\n"
            "v = jsonschema.Draft7Validator({'format': 'iri'}, format_checker=checker)\n"
            "print(v.is_valid('http://a b'), v.is_valid('http://example.org/ä'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True"], out


def test_a_gated_notebook_starts_its_kernel_beside_the_others_even_with_one_worker(tmp_path):
    import datetime

    import nbformat

    from cartlib.notebook_pool import NotebookJob, run_notebooks
    from fake_notebooks import write_notebook

    write_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(3)", "Slow")
    write_notebook(tmp_path / "gated.ipynb", "print('after')", "Gated")
    jobs = [NotebookJob("slow", str(tmp_path / "slow.ipynb"), str(tmp_path / "slow.out.ipynb"), None, str(tmp_path)),
            NotebookJob("gated", str(tmp_path / "gated.ipynb"), str(tmp_path / "gated.out.ipynb"), None,
                        str(tmp_path), warm_up="import json", gated=True)]
    timings, failures = run_notebooks(jobs, workers=1, progress=False)
    assert failures == []

    def stamp(name, which):
        text = nbformat.read(tmp_path / f"{name}.out.ipynb", as_version=4).metadata.papermill[which]
        return datetime.datetime.fromisoformat(text)

    assert stamp("gated", "start_time") < stamp("slow", "end_time"), "its kernel started while the other ran"
    assert stamp("gated", "end_time") > stamp("slow", "end_time"), "its cells ran after the gate"


def test_a_running_notebook_is_written_when_it_ends_not_around_every_cell(tmp_path, monkeypatch):
    import nbformat
    import papermill
    import papermill.engines

    from cartlib.notebook_pool import ENGINE_NAME, _register_progress_engine
    from fake_notebooks import write_notebook

    writes = []
    real = papermill.engines.write_ipynb
    monkeypatch.setattr(papermill.engines, "write_ipynb", lambda nb, path: (writes.append(path), real(nb, path)))
    _register_progress_engine(None)
    write_notebook(tmp_path / "many.ipynb", "x = 1", "Many")
    nb = nbformat.read(tmp_path / "many.ipynb", as_version=4)
    nb.cells += [nbformat.v4.new_code_cell(f"print({i})") for i in range(8)] + [nbformat.v4.new_code_cell("1 / 0")]
    nbformat.write(nb, tmp_path / "many.ipynb")
    with pytest.raises(papermill.PapermillExecutionError):
        papermill.execute_notebook(str(tmp_path / "many.ipynb"), str(tmp_path / "out.ipynb"), engine_name=ENGINE_NAME,
                                   kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    assert len(writes) <= 3, f"{len(writes)} writes for 11 cells (papermill's own engine writes 24)"
    cells = [c for c in nbformat.read(tmp_path / "out.ipynb", as_version=4).cells if c.cell_type == "code"]
    assert [o["text"] for c in cells[2:10] for o in c.outputs] == [f"{i}\n" for i in range(8)]
    assert cells[-1].outputs[-1]["ename"] == "ZeroDivisionError", "the failed notebook is saved with its error"


def test_the_parameters_read_as_json_are_those_papermill_reads():
    import papermill as pm

    from cartlib.runner import NOTEBOOKS, notebook_dir, notebook_parameters

    for name in NOTEBOOKS:
        path = notebook_dir() / f"{name}.ipynb"
        assert notebook_parameters(path) == set(pm.inspect_notebook(str(path))), name


def test_the_command_module_imports_no_analysis_module():
    """Every spawned notebook worker imports the command's module again; it must stay light."""
    import subprocess
    import sys

    code = "import sys, cartlib.cli; print(sorted(m for m in ('pandas', 'cartlib.params', 'cartlib.runner') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
