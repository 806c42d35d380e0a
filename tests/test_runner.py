"""The runner on tiny stand-in notebooks: results merged and sorted, failures named, output atomic."""
import json
from pathlib import Path

import nbformat
import pytest

from cartlib import runner
from cartlib.io import write_example_cohort


def _notebook(path: Path, body: str):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("data = None\nlloq = 100.0\nresults_path = None\nresults_json = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def fake_notebooks(tmp_path, monkeypatch):
    folder = tmp_path / "nbs"
    folder.mkdir()
    for name in runner.SECTIONS:
        section = name.split("_", 1)[1]
        _notebook(folder / f"{name}.ipynb",
                  "from cartlib.results import Recorder\n"
                  f"Recorder(results_path, section={section!r}).record({{{section + '.lloq'!r}: lloq, {section + '.z'!r}: 0.1 + 0.2}})\n"
                  "print('ran on', data)")
    _notebook(folder / f"{runner.SCORECARD}.ipynb", "import json\nprint(len(json.load(open(results_json))))")
    monkeypatch.setenv("CARTLIB_NOTEBOOKS", str(folder))
    return folder


def test_run_merges_results_and_writes_report(tmp_path, fake_notebooks):
    data = write_example_cohort(tmp_path / "cohort")
    out = runner.run_suite(tmp_path / "out", data=data, overrides={"lloq": 50}, progress=False)
    results = json.loads((out / "results.json").read_text())
    assert list(results) == sorted(results) and len(results) == 2 * len(runner.SECTIONS)
    assert results["pk.lloq"] == 50.0 and results["bca.z"] == 0.3
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == sorted(f"{n}.ipynb" for n in runner.NOTEBOOKS)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["lloq"] == 50.0 and set(manifest["input_files"]) == {
        "subjects.csv", "events.csv", "adverse_events.csv", "medications.csv", "pk.csv", "labs.csv"}
    html = (out / "report.html").read_text()
    assert manifest["data_fingerprint"] in html and "<script src=\"http" not in html
    assert "print(len(json.load" not in html, "code is hidden unless --with-code"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "no partial folders left"


def test_failing_notebook_is_named_and_leaves_previous_output(tmp_path, fake_notebooks):
    data = write_example_cohort(tmp_path / "cohort")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("{\"old\": 1}")
    _notebook(fake_notebooks / "03_pk.ipynb", "x = 1\nraise RuntimeError('boom in pk')")
    with pytest.raises(runner.NotebookFailed, match=r"(?s)notebook 03_pk failed in cell 3 .*RuntimeError: boom in pk"):
        runner.run_suite(out, data=data, progress=False)
    assert (out / "results.json").read_text() == "{\"old\": 1}"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
