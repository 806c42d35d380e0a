"""Executing the workbook notebooks with papermill: in parallel processes, with progress, atomically.

``run_suite`` is what ``cartlib run`` does: validate the cohort, execute the section
notebooks (one kernel each, up to the number of cores at once), merge their results
keys into ``results.json``, build ``report.html`` and ``manifest.json``, and move the
finished folder into place only at the end (the folder rules are in :mod:`cartlib.outdir`).

A notebook that fails does not stop the others: the report is written with a page naming
the failed notebook, cell and error in its place, and :class:`NotebookFailed` is raised
afterwards. The worker processes watch the main process and, when it is gone or asks them
to stop, kill their kernels and exit, so nothing keeps running after the run has ended.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import platform
import queue as queue_module
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat

from . import __version__
from .analysis import DEFAULT_COHORT
from .outdir import check_output, resolve_path, staged_output
from .params import resolve
from .processes import end_with_parent, redirect_output
from .results import dumps, merge

# notebooks run at once (all but 07_simulation record results keys); the scorecard reads the merged
# results.json
SECTIONS = ["00_cohort", "01_efficacy", "02_toxicity", "03_pk", "04_bca", "05_transplant", "07_simulation",
            "08_kinetic_model"]
SCORECARD = "06_scorecard"
NOTEBOOKS = sorted(SECTIONS + [SCORECARD])  # the report's order
ENGINE_NAME = "cartlib-progress"
KERNEL_NAME = "python3"
CELL_TIMEOUT_S = 1800
KERNEL_START_TIMEOUT_S = 300  # a loaded 2-core machine can take a minute to start a kernel
KERNEL_START_ATTEMPTS = 3


def notebook_dir() -> Path:
    """Where the workbook notebooks live (``CARTLIB_NOTEBOOKS`` overrides the shipped ones)."""
    from . import resources

    env = os.environ.get("CARTLIB_NOTEBOOKS")
    return Path(env) if env else resources.notebooks_dir()


@dataclass(frozen=True)
class NotebookFailure:
    """Where and how one notebook failed: its name, the 1-based cell (None if the notebook
    never reached a cell), the error line and the traceback as plain text.

    >>> str(NotebookFailure("03_pk", 3, 2, "RuntimeError: boom"))
    'notebook 03_pk failed in cell 3 (execution count [2]): RuntimeError: boom'
    """

    notebook: str
    cell: int | None
    execution_count: int | None
    error: str
    traceback: str = ""

    def __str__(self) -> str:
        where = (f"in cell {self.cell} (execution count [{self.execution_count}])" if self.cell is not None
                 else "before its first cell")
        first_line = (self.error.strip().splitlines() or [""])[0]
        return f"notebook {self.notebook} failed {where}: {first_line[:300]}"


class NotebookFailed(RuntimeError):
    """One or more notebooks raised an error; one line per failure names the notebook and cell.

    ``failures`` lists them; ``out`` is the report folder written with the other sections
    (None when no report was written).
    """

    def __init__(self, failures: list[NotebookFailure], out: Path | None = None):
        self.failures = list(failures)
        self.out = out
        super().__init__("\n".join(str(f) for f in self.failures))


@dataclass
class _Job:
    name: str
    source: str
    target: str
    parameters: dict[str, Any] | None
    cwd: str
    log: str | None = None  # the kernel's own stderr (start-up chatter, warnings) goes here


_progress_queue = None  # in a worker: where finished cells are reported (set by _start_worker)


def _register_progress_engine(queue) -> None:
    """A papermill engine that reports every finished cell on ``queue`` (papermill has no hook)."""
    import papermill.engines as engines

    class ProgressEngine(engines.NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            total = sum(1 for c in nb_man.nb.cells if c.cell_type == "code")
            complete = nb_man.cell_complete

            def cell_complete(cell, cell_index=None, **kw):
                if queue is not None and cell.cell_type == "code":
                    queue.put((kwargs.get("cartlib_name", ""), total))
                return complete(cell, cell_index=cell_index, **kw)

            nb_man.cell_complete = cell_complete
            kwargs.pop("cartlib_name", None)
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    engines.papermill_engines.register(ENGINE_NAME, ProgressEngine)


def _start_worker(progress_queue, stop, parent_pid: int) -> None:
    """Pool initializer: report cells on ``progress_queue``; end with the main process."""
    global _progress_queue
    _progress_queue = progress_queue
    end_with_parent(stop, parent_pid)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _execute(job: _Job) -> tuple[str, float, NotebookFailure | None]:
    """Worker: execute one notebook in its own kernel; a failure is returned, naming the cell."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    # the kernel inherits this; a caller's MPLBACKEND=Agg would leave every figure out of the report
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    redirect_output(job.log)
    _register_progress_engine(_progress_queue)
    start = time.perf_counter()
    failure = None
    try:
        for attempt in range(KERNEL_START_ATTEMPTS):
            try:
                pm.execute_notebook(
                    job.source, job.target, parameters=job.parameters, engine_name=ENGINE_NAME,
                    kernel_name=KERNEL_NAME, progress_bar=False, cwd=job.cwd, log_output=False,
                    execution_timeout=CELL_TIMEOUT_S, start_timeout=KERNEL_START_TIMEOUT_S, cartlib_name=job.name,
                )
                break
            except RuntimeError as exc:
                # kernels started at the same moment can race for TCP ports; nothing has run yet
                if "before replying to kernel_info" not in str(exc) or attempt == KERNEL_START_ATTEMPTS - 1:
                    raise
    except PapermillExecutionError as exc:
        failure = NotebookFailure(job.name, exc.cell_index + 1, exc.exec_count, f"{exc.ename}: {exc.evalue}",
                                  _ANSI.sub("", "\n".join(exc.traceback or [])))
    except Exception as exc:  # the kernel died or never started: still one notebook's failure
        failure = NotebookFailure(job.name, None, None, f"{type(exc).__name__}: {exc}")
    return job.name, time.perf_counter() - start, failure


def run_notebooks(jobs: list[_Job], workers: int | None = None,
                  progress: bool = True) -> tuple[dict[str, float], list[NotebookFailure]]:
    """Execute ``jobs`` in separate processes (spawned: kernels and zmq don't survive fork
    well), showing one progress bar over all their cells, and carry on past failures.

    Returns seconds per notebook and the failures (sorted by notebook). When interrupted
    (any exception, e.g. a signal turned into one), the workers are told to stop, kill their
    kernels and exit before the exception goes on.
    """
    from tqdm.auto import tqdm

    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    ctx = mp.get_context("spawn")
    # papermill adds one code cell (the injected parameters) when it is given parameters
    totals = {j.name: _count_code_cells(j.source) + (1 if j.parameters else 0) for j in jobs}
    timings: dict[str, float] = {}
    failures: list[NotebookFailure] = []
    cells, stop = ctx.Queue(), ctx.Event()
    bar = tqdm(total=sum(totals.values()), desc="notebooks", unit="cell", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_start_worker,
                               initargs=(cells, stop, os.getpid()))
    try:
        futures = {pool.submit(_execute, job): job.name for job in jobs}
        pending = set(futures)
        while pending:
            _show_progress(cells, bar)
            done = {f for f in pending if f.done()}
            for f in done:
                try:
                    name, seconds, failure = f.result()
                except Exception as exc:  # the worker process itself died (e.g. out of memory)
                    name, seconds = futures[f], 0.0
                    failure = NotebookFailure(name, None, None, f"its process ended: {type(exc).__name__}: {exc}")
                timings[name] = seconds
                if failure is not None:
                    failures.append(failure)
            pending -= done
            time.sleep(0.05)
        _show_progress(cells, bar)
    except BaseException:
        stop.set()  # every worker kills its kernel and exits; shutdown below then returns at once
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()  # before anyone prints: a message must not share the bar's line
        cells.close()
    return timings, sorted(failures, key=lambda f: f.notebook)


def _show_progress(cells, bar) -> None:
    while True:
        try:
            name, _ = cells.get_nowait()
        except queue_module.Empty:
            return
        bar.set_postfix_str(name)
        bar.update(1)


def execute_notebooks(jobs: list[_Job], workers: int | None = None, progress: bool = True) -> dict[str, float]:
    """:func:`run_notebooks`, raising :class:`NotebookFailed` if any notebook failed.
    Returns seconds per notebook."""
    timings, failures = run_notebooks(jobs, workers, progress)
    if failures:
        raise NotebookFailed(failures)
    return timings


def _count_code_cells(path: str) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum(1 for c in nb.cells if c.cell_type == "code")


def notebook_parameters(path: Path) -> set[str]:
    """Names declared in a notebook's cell tagged ``parameters``."""
    import papermill as pm

    return set(pm.inspect_notebook(str(path)))


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
    cohort = load_cohort(source, lloq=params["lloq"])  # the run's one validation
    with staged_output(out, inputs=inputs, force=force) as tmp:
        # the notebooks read this typed snapshot instead of reading and validating again; the
        # main process keeps only the fingerprint, not the cohort, while they run
        snapshot_dir = tmp / ".snapshot"
        snapshot_dir.mkdir()
        snapshot, fingerprint = write_snapshot(cohort, snapshot_dir), cohort.fingerprint
        del cohort
        failures = _write_report(tmp, params, fingerprint, source, with_code, workers, progress,
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
                  workers: int | None, progress: bool, snapshot: Path, docx: bool = False,
                  expected_s: dict[str, float] | None = None) -> list[NotebookFailure]:
    """Execute the notebooks into ``tmp`` (the sections reading the cohort ``snapshot``) and
    write results, manifest and report there."""
    from .io import input_files
    from .report import build_report

    started = time.perf_counter()
    nb_dir, res_dir, log_dir, fig_dir = tmp / "notebooks", tmp / ".sections", tmp / "logs", tmp / "figures"
    for folder in (nb_dir, res_dir, log_dir, fig_dir):
        folder.mkdir()
    src = notebook_dir()

    def job(name: str, extra: dict[str, Any]) -> _Job:
        declared = notebook_parameters(src / f"{name}.ipynb")
        given = {**params, "figures_dir": str(fig_dir), **extra}  # figures as SVG + PNG, where declared
        return _Job(name, str(src / f"{name}.ipynb"), str(nb_dir / f"{name}.ipynb"),
                    {k: v for k, v in given.items() if k in declared}, str(tmp), str(log_dir / f"{name}.log"))

    timings, failures = run_notebooks(
        [job(n, {"results_path": str(res_dir / f"{n}.json"), "cohort_snapshot": str(snapshot)})
         for n in longest_first(SECTIONS, expected_s or {})], workers, progress)
    results = merge(sorted(res_dir.glob("*.json")))
    (tmp / "results.json").write_text(dumps(results), encoding="utf-8")
    more_timings, more_failures = run_notebooks(
        [job(SCORECARD, {"results_json": str(tmp / "results.json")})], 1, progress)
    timings.update(more_timings)
    failures += more_failures
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
        jobs = [_Job(n, str(src / f"{n}.ipynb"), str(src / f"{n}.ipynb"), None, str(src), str(Path(logs) / f"{n}.log"))
                for n in (names or NOTEBOOKS)]
        timings = execute_notebooks(jobs, workers, progress)
    for j in jobs:
        strip_volatile_metadata(Path(j.target))
    return timings


def strip_volatile_metadata(path: Path) -> None:
    """Drop papermill's timestamps and durations from a notebook file."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
