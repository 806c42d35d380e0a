"""Executing the workbook notebooks with papermill: in parallel processes, with progress, atomically.

``run_suite`` is what ``cartlib run`` does: validate the cohort, execute the section
notebooks (one kernel each, up to the number of cores at once), merge their results
keys into ``results.json``, build ``report.html`` and ``manifest.json``, and move the
finished folder into place only at the end.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import nbformat

from . import __version__
from .analysis import DEFAULT_COHORT
from .params import resolve
from .results import dumps, merge

SECTIONS = ["00_cohort", "01_efficacy", "02_toxicity", "03_pk", "04_bca", "05_transplant"]
SCORECARD = "06_scorecard"
NOTEBOOKS = SECTIONS + [SCORECARD]
ENGINE_NAME = "cartlib-progress"
KERNEL_NAME = "python3"
CELL_TIMEOUT_S = 1800
KERNEL_START_TIMEOUT_S = 300  # a loaded 2-core machine can take a minute to start a kernel
KERNEL_START_ATTEMPTS = 3


def notebook_dir() -> Path:
    """Where the workbook notebooks live (``CARTLIB_NOTEBOOKS`` overrides the repository's)."""
    env = os.environ.get("CARTLIB_NOTEBOOKS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "notebooks"


class NotebookFailed(RuntimeError):
    """A notebook raised an error; the message names the notebook and the cell."""


@dataclass
class _Job:
    name: str
    source: str
    target: str
    parameters: dict[str, Any] | None
    cwd: str
    log: str | None = None  # the kernel's own stderr (start-up chatter, warnings) goes here


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


def _execute(job: _Job, queue) -> tuple[str, float]:
    """Worker: execute one notebook in its own kernel; raise NotebookFailed naming the cell."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    # the kernel inherits this; a caller's MPLBACKEND=Agg would leave every figure out of the report
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    if job.log:
        # the kernel inherits this worker's stderr; keep its chatter out of the user's terminal
        fd = os.open(job.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
    _register_progress_engine(queue)
    start = time.perf_counter()
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
        raise NotebookFailed(
            f"notebook {job.name} failed in cell {exc.cell_index + 1} (execution count [{exc.exec_count}]):\n"
            f"{exc.ename}: {exc.evalue}"
        ) from None
    return job.name, time.perf_counter() - start


def execute_notebooks(jobs: list[_Job], workers: int | None = None, progress: bool = True) -> dict[str, float]:
    """Execute ``jobs`` in separate processes (spawned: kernels and zmq don't survive fork
    well), showing one progress bar over all their cells. Returns seconds per notebook."""
    from tqdm.auto import tqdm

    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    ctx = mp.get_context("spawn")
    # papermill adds one code cell (the injected parameters) when it is given parameters
    totals = {j.name: _count_code_cells(j.source) + (1 if j.parameters else 0) for j in jobs}
    timings: dict[str, float] = {}
    with mp.Manager() as manager:
        queue = manager.Queue()
        bar = tqdm(total=sum(totals.values()), desc="notebooks", unit="cell", disable=not progress,
                   file=sys.stderr, dynamic_ncols=True)
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(_execute, job, queue): job.name for job in jobs}
            pending = set(futures)
            while pending:
                while not queue.empty():
                    name, _ = queue.get()
                    bar.set_postfix_str(name)
                    bar.update(1)
                done = {f for f in pending if f.done()}
                for f in done:
                    name, seconds = f.result()  # re-raises NotebookFailed
                    timings[name] = seconds
                pending -= done
                time.sleep(0.05)
            while not queue.empty():
                queue.get()
                bar.update(1)
        bar.close()
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


def input_files(data: Path) -> list[Path]:
    """The files the loader reads: the contract's six CSVs of a folder, or the workbook."""
    from .io import TABLES

    return [data / f"{t}.csv" for t in TABLES] if data.is_dir() else [data]


def package_versions() -> dict[str, str]:
    names = ["numpy", "scipy", "pandas", "pandera", "lifelines", "statsmodels", "matplotlib",
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
              workers: int | None = None, progress: bool = True) -> Path:
    """Validate, execute every notebook, and write the report folder ``out`` atomically.

    Raises ``CohortError`` (before anything runs) for bad input and ``NotebookFailed`` when a
    notebook fails; in both cases ``out`` is left as it was.
    """
    from .io import load_cohort
    from .report import build_report

    values = dict(overrides or {})
    if data is not None:
        values["data"] = str(data)
    params = resolve(values)
    if params["data"] is not None:
        params["data"] = str(Path(params["data"]).resolve())
    cohort = load_cohort(params["data"] or DEFAULT_COHORT, lloq=params["lloq"])  # validates first

    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    started = time.perf_counter()
    try:
        nb_dir = tmp / "notebooks"
        res_dir = tmp / ".sections"
        log_dir = tmp / "logs"
        for folder in (nb_dir, res_dir, log_dir):
            folder.mkdir()
        src = notebook_dir()

        def job(name: str, extra: dict[str, Any]) -> _Job:
            declared = notebook_parameters(src / f"{name}.ipynb")
            given = {**params, **extra}
            return _Job(name, str(src / f"{name}.ipynb"), str(nb_dir / f"{name}.ipynb"),
                        {k: v for k, v in given.items() if k in declared}, str(tmp), str(log_dir / f"{name}.log"))

        timings = execute_notebooks(
            [job(n, {"results_path": str(res_dir / f"{n}.json")}) for n in SECTIONS], workers, progress)
        results = merge(sorted(res_dir.glob("*.json")))
        (tmp / "results.json").write_text(dumps(results), encoding="utf-8")
        timings.update(execute_notebooks(
            [job(SCORECARD, {"results_json": str(tmp / "results.json")})], 1, progress))
        shutil.rmtree(res_dir)

        manifest = {
            "cartlib": __version__,
            "command": " ".join(sys.argv),
            "data": params["data"] or "bundled default cohort",
            "data_fingerprint": cohort.fingerprint,
            "input_files": {p.name: _sha256(p) for p in input_files(Path(params["data"] or DEFAULT_COHORT))},
            "parameters": params,
            "versions": package_versions(),
            "timings_s": {k: round(v, 2) for k, v in sorted(timings.items())},
            "total_s": round(time.perf_counter() - started, 2),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        build_report(nb_dir, tmp / "report.html", manifest, with_code=with_code)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _move_into_place(tmp: Path, out: Path) -> None:
    """Replace ``out`` by ``tmp`` with renames only, so no half-written folder ever has its name."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
