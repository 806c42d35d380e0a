"""``cartlib init DIR``: a folder to explore the workbooks in JupyterLab.

The workspace holds copies of the notebooks, the parameter files and a short README, plus a
small manifest (``.cartlib-workspace.json``) recording the SHA-256 of every file it wrote. A
folder that is not empty is refused unless ``force``; even then only files this function wrote
itself and that are still unchanged are replaced, so a user's own files and edits are never
overwritten. Every file is written atomically (temporary file beside it, then rename).

>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as tmp:
...     ws = init_workspace(Path(tmp) / "ws")
...     sorted(p.name for p in ws.iterdir())
['.cartlib-workspace.json', 'README.md', 'notebooks', 'parameters']
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from . import __version__
from .atomic import make_partial, write_file
from .resources import notebooks_dir, parameters_dir

MANIFEST = ".cartlib-workspace.json"
log = logging.getLogger(__name__)

README = """\
# cartlib workspace

Written by `cartlib init` (cartlib {version}). It holds:

- `notebooks/`: one notebook per results section of the study, executed on the bundled
  synthetic cohort, so every table and figure can be read before anything is run;
- `parameters/`: `default.yaml` (the paper's analysis choices), `sensitivity.yaml`,
  `synthetic.yaml` (the generative model of `cartlib synth`) and `paper.yaml` (the published figures).

## Open it in JupyterLab

```bash
cd {folder}
jupyter lab
```

Use the Python environment where cartlib is installed (JupyterLab comes with it). Each notebook
starts with a cell tagged `parameters`; *Run > Run All Cells* re-executes it.

## Your own cohort

Check the cohort first (six CSV files in a folder, or one `.xlsx` workbook with six sheets):

```bash
cartlib validate --data path/to/cohort
```

Every problem is listed with its table, row, column and value. Then either set
`data = "path/to/cohort"` in a notebook's parameters cell and run it, or run the whole suite
into one report:

```bash
cartlib run --data path/to/cohort --params parameters/default.yaml --out reports/mysite
```

Copy `parameters/default.yaml` to change an analysis choice (`--set key=value` changes one);
`reports/mysite/report.html` is the report and `results.json` the machine-readable results.
"""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _contents(dest: Path) -> dict[str, bytes]:
    """Every file of the workspace, by its path relative to the workspace (POSIX form)."""
    files = {f"notebooks/{p.name}": p.read_bytes() for p in sorted(notebooks_dir().glob("*.ipynb"))}
    files.update({f"parameters/{p.name}": p.read_bytes() for p in sorted(parameters_dir().glob("*.yaml"))})
    files["README.md"] = README.format(version=__version__, folder=dest).encode("utf-8")
    return files


def _written_before(dest: Path) -> dict[str, str]:
    """The files a previous ``init`` wrote here and their hashes ({} when there was none)."""
    try:
        recorded = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in recorded["files"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def init_workspace(dest: Path, force: bool = False) -> Path:
    """Write a workspace (notebooks, parameter files, README) into ``dest``.

    Parameters
    ----------
    dest : pathlib.Path
        The folder to write; created (with its parents) when absent.
    force : bool, default False
        Write into a folder that is not empty. Files already there are kept unless this
        function wrote them and they are unchanged since; each file kept is logged.

    Returns
    -------
    pathlib.Path
        The workspace folder, resolved.

    Raises
    ------
    FileExistsError
        ``dest`` is a file, or a folder that is not empty and ``force`` is false.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     ws = init_workspace(Path(tmp))  # an existing empty folder is fine
    ...     (ws / "parameters" / "default.yaml").is_file()
    True
    """
    dest = Path(dest).expanduser().resolve()
    if dest.exists() and not dest.is_dir():
        raise FileExistsError(f"{dest} is a file, not a folder; give a new or empty folder for the workspace")
    if not dest.exists():
        return _write_new(dest)
    if any(dest.iterdir()) and not force:
        raise FileExistsError(
            f"{dest} is not empty; give a new or empty folder, or --force to add the workspace files "
            "(files already there are never overwritten, except unchanged ones an earlier init wrote)")
    files = _contents(dest)
    ours = _written_before(dest)
    written = {}
    for rel, data in files.items():
        path = dest / rel
        if path.exists() and (not path.is_file() or _sha256(path.read_bytes()) != ours.get(rel)):
            log.warning("kept %s as it is (not written by cartlib init, or changed since)", path)
            continue
        write_file(path, data)
        written[rel] = _sha256(data)
    # files an earlier init wrote and this one kept (e.g. edited notebooks) are no longer ours
    write_file(dest / MANIFEST, _manifest(written))
    return dest


def _write_new(dest: Path) -> Path:
    """A new folder: fill a temporary folder beside it, then rename it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_partial(dest)
    try:
        files = _contents(dest)
        for rel, data in files.items():
            write_file(tmp / rel, data)
        write_file(tmp / MANIFEST, _manifest({rel: _sha256(data) for rel, data in files.items()}))
        tmp.rename(dest)  # fails, leaving nothing behind, if a non-empty dest appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _manifest(written: dict[str, str]) -> bytes:
    return (json.dumps({"cartlib": __version__, "files": written}, indent=2, sort_keys=True) + "\n").encode("utf-8")
