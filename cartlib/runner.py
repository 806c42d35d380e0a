"""What ``cartlib run`` does, around the notebooks: validate, execute, merge, report, atomically.

``run_suite`` validates the cohort, executes the section notebooks (one kernel each, up to the
number of cores at once, :mod:`cartlib.notebook_pool`), merges their results keys into
``results.json``, runs the scorecard notebook on it, builds ``report.html`` and
``manifest.json``, and moves the finished folder into place only at the end (the folder rules
are in :mod:`cartlib.outdir`). The worker processes start while the cohort is validated; the
scorecard's kernel starts, and runs the notebook's imports, in a process of its own beside the
first sections; its first cell waits for ``results.json``.

A notebook that fails does not stop the others: the report is written with a page naming
the failed notebook, cell and error in its place, and :class:`NotebookFailed` is raised
afterwards.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from . import __version__
from .analysis import DEFAULT_COHORT
from .notebook_files import leading_imports, parameter_names
from .notebook_pool import (NotebookFailed, NotebookFailure, NotebookJob, NotebookPool, execute_notebooks,
                            run_notebooks)
from .outdir import check_output, resolve_path, staged_output
from .params import resolve
from .results import dumps, merge

__all__ = ["NOTEBOOKS", "SCORECARD", "SECTIONS", "NotebookFailed", "NotebookFailure", "NotebookJob",
           "execute_in_place", "execute_notebooks", "longest_first", "notebook_dir", "notebook_parameters",
           "package_versions", "previous_timings", "run_notebooks", "run_suite", "strip_volatile_metadata"]

# notebooks run at once (all but 07_simulation record results keys); the scorecard reads the merged
# results.json. Listed longest first, as they usually take on the bundled cohort: a run with no
# earlier timings to go by (see longest_first) then does not start a long notebook last
SECTIONS = ["08_kinetic_model", "05_transplant", "01_efficacy", "02_toxicity", "03_pk", "07_simulation",
            "00_cohort", "04_bca"]
SCORECARD = "06_scorecard"
NOTEBOOKS = sorted(SECTIONS + [SCORECARD])  # the report's order


def notebook_dir() -> Path:
    """Where the workbook notebooks live (``CARTLIB_NOTEBOOKS`` overrides the shipped ones)."""
    from . import resources

    env = os.environ.get("CARTLIB_NOTEBOOKS")
    return Path(env) if env else resources.notebooks_dir()


def notebook_parameters(path: Path) -> set[str]:
    """Names declared in a notebook's cell tagged ``parameters``."""
    names = parameter_names(path)
    if names is None:  # not plain Python: papermill's own reading
        import papermill as pm

        names = set(pm.inspect_notebook(str(path)))
    return names


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    names = ["numpy", "scipy", "pandas", "lifelines", "statsmodels", "matplotlib",
             "seaborn", "papermill", "nbconvert", "ipykernel"]
    out = {"cartlib": __version__, "python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def run_suite(out: str | os.PathLike, data: str | os.PathLike | None = None,
              overrides: dict[str, Any] | None = None, with_code: bool = False,
              workers: int | None = None, progress: bool = True, force: bool = False,
              protect: tuple[str | os.PathLike, ...] = (), docx: bool = False) -> Path:
    """Validate, execute every notebook, and write the report folder ``out`` atomically.

    ``out`` must be absent, empty or an earlier report unless ``force``; it may never be or
    hold the input, nor any path in ``protect`` (e.g. the parameter file), nor the places
    :mod:`cartlib.outdir` lists (``PathError``). Raises ``CohortError`` (before anything runs)
    for bad input, leaving ``out`` as it was. When notebooks fail, the report is still
    written, with a page naming each failure, and then ``NotebookFailed`` is raised. ``docx``
    also writes ``report.docx``, the paper's tables for Word (:mod:`cartlib.word`).
    """
    from .analysis import write_snapshot
    from .io import load_cohort

    values = dict(overrides or {})
    if data is not None:
        values["data"] = str(data)
    params = resolve(values)
    source = DEFAULT_COHORT
    if params["data"] is not None:
        source = resolve_path(params["data"], "data", must_exist=True)
        params["data"] = str(source)
    inputs = [source, *protect]
    check_output(out, inputs=inputs, force=force)  # refuse a bad --out before the long work
    # the worker processes start (and import papermill) while the cohort is validated
    with NotebookPool(min(workers or os.cpu_count() or 1, len(SECTIONS)), gated=1) as pool:  # 1: the scorecard
        cohort = load_cohort(source, lloq=params["lloq"])  # the run's one validation
        with staged_output(out, inputs=inputs, force=force) as tmp:
            # the notebooks read this typed snapshot instead of reading and validating again; the
            # main process keeps only the fingerprint, not the cohort, while they run
            snapshot_dir = tmp / ".snapshot"
            snapshot_dir.mkdir()
            snapshot, fingerprint = write_snapshot(cohort, snapshot_dir), cohort.fingerprint
            del cohort
            failures = _write_report(tmp, params, fingerprint, source, with_code, pool, progress,
                                     snapshot, docx, previous_timings(out))
            snapshot.unlink()
            snapshot_dir.rmdir()
    out = Path(out).resolve()
    if failures:
        raise NotebookFailed(failures, out)
    return out


def previous_timings(out: str | os.PathLike) -> dict[str, float]:
    """Seconds per notebook of the earlier report in ``out`` (its manifest), {} when there is none."""
    try:
        timings = json.loads((Path(out) / "manifest.json").read_text(encoding="utf-8")).get("timings_s", {})
        return {str(k): float(v) for k, v in timings.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def longest_first(names: list[str], seconds: dict[str, float]) -> list[str]:
    """``names`` with the longest expected first (unknown ones first of all, in the given order):
    with fewer workers than notebooks, a long notebook started last would run on alone.

    >>> longest_first(["a", "b", "c"], {"a": 5.0, "c": 20.0})
    ['b', 'c', 'a']
    """
    return sorted(names, key=lambda n: -seconds.get(n, float("inf")))


def _write_report(tmp: Path, params: dict[str, Any], fingerprint: str, source: Path, with_code: bool,
                  pool: NotebookPool, progress: bool, snapshot: Path, docx: bool = False,
                  expected_s: dict[str, float] | None = None) -> list[NotebookFailure]:
    """Execute the notebooks in ``pool`` into ``tmp`` (the sections reading the cohort ``snapshot``)
    and write results, manifest and report there."""
    started = time.perf_counter()
    nb_dir, res_dir, log_dir, fig_dir = tmp / "notebooks", tmp / ".sections", tmp / "logs", tmp / "figures"
    for folder in (nb_dir, res_dir, log_dir, fig_dir):
        folder.mkdir()
    src = notebook_dir()

    def job(name: str, extra: dict[str, Any]) -> NotebookJob:
        declared = notebook_parameters(src / f"{name}.ipynb")
        given = {**params, "figures_dir": str(fig_dir), **extra}  # figures as SVG + PNG, where declared
        return NotebookJob(name, str(src / f"{name}.ipynb"), str(nb_dir / f"{name}.ipynb"),
                           {k: v for k, v in given.items() if k in declared}, str(tmp), str(log_dir / f"{name}.log"))

    scorecard = job(SCORECARD, {"results_json": str(tmp / "results.json")})
    # its kernel starts and imports beside the first sections; its first cell waits for results.json
    scorecard.warm_up, scorecard.gated = leading_imports(scorecard.source), True
    results: dict[str, Any] = {}
    preparing: list[threading.Thread] = []

    def write_results() -> None:
        results.update(merge(sorted(res_dir.glob("*.json"))))
        (tmp / "results.json").write_text(dumps(results), encoding="utf-8")
        # the report's modules import and its templates compile while the scorecard runs (not
        # before the first kernels start: the main process would delay them)
        from .report import prepare_report

        preparing.append(threading.Thread(target=prepare_report, args=(with_code,), name="cartlib-report", daemon=True))
        preparing[0].start()

    sections = [job(n, {"results_path": str(res_dir / f"{n}.json"), "cohort_snapshot": str(snapshot)})
                for n in longest_first(SECTIONS, expected_s or {})]
    timings, failures = pool.run(sections + [scorecard], progress, open_gate=write_results)
    for thread in preparing:
        thread.join()
    from .io import input_files
    from .report import build_report

    for leftover in res_dir.iterdir():
        leftover.unlink()
    res_dir.rmdir()

    manifest = {
        "cartlib": __version__,
        "command": " ".join(sys.argv),
        "data": params["data"] or "bundled default cohort",
        "data_fingerprint": fingerprint,
        "input_files": {p.name: _sha256(p) for p in input_files(source)},
        "parameters": params,
        "versions": package_versions(),
        "timings_s": {k: round(v, 2) for k, v in sorted(timings.items())},
        "total_s": round(time.perf_counter() - started, 2),
        "failures": [{k: v for k, v in asdict(f).items() if k != "traceback"} for f in failures],
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    build_report(nb_dir, tmp / "report.html", manifest, with_code=with_code,
                 failures=[asdict(f) for f in failures], notebooks=NOTEBOOKS, results=results)
    if docx:
        from .word import write_docx

        write_docx(tmp / "report.docx", params, snapshot)
    return failures


def execute_in_place(names: list[str] | None = None, workers: int | None = None, progress: bool = True) -> dict[str, float]:
    """Re-execute the committed teaching notebooks on the default cohort, in place
    (``make notebooks``); papermill's volatile metadata is removed for clean diffs."""
    src = notebook_dir()
    with tempfile.TemporaryDirectory() as logs:
        jobs = [NotebookJob(n, str(src / f"{n}.ipynb"), str(src / f"{n}.ipynb"), None, str(src),
                            str(Path(logs) / f"{n}.log")) for n in (names or NOTEBOOKS)]
        timings = execute_notebooks(jobs, workers, progress)
    for j in jobs:
        strip_volatile_metadata(Path(j.target))
    return timings


def strip_volatile_metadata(path: Path) -> None:
    """Drop papermill's timestamps and durations from a notebook file."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
