"""Tiny stand-ins for the workbook notebooks (seconds instead of a minute), for runner tests.

Each section notebook records two results keys; ``bodies`` replaces a notebook's code, e.g. to
make it fail or sleep. Point the runner at the folder with ``CARTLIB_NOTEBOOKS``.
"""
from pathlib import Path

import nbformat

from cartlib import runner


def write_notebook(path: Path, body: str, title: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("data = None\nlloq = 100.0\nresults_path = None\nresults_json = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}"), params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def recording_body(name: str) -> str:
    section = name.split("_", 1)[1]
    return ("from cartlib.results import Recorder\n"
            f"Recorder(results_path, section={section!r}).record("
            f"{{{section + '.lloq'!r}: lloq, {section + '.z'!r}: 0.1 + 0.2}})\n"
            "print('ran on', data)")


def write_fake_notebooks(folder: Path, bodies: dict[str, str] | None = None) -> Path:
    """Write the seven stand-in notebooks into ``folder``; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    bodies = bodies or {}
    for name in runner.SECTIONS:
        write_notebook(folder / f"{name}.ipynb", bodies.get(name, recording_body(name)), f"Section {name}")
    write_notebook(folder / f"{runner.SCORECARD}.ipynb",
                   bodies.get(runner.SCORECARD, "import json\nprint(len(json.load(open(results_json))))"),
                   "Scorecard")
    return folder
