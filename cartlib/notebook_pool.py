"""Executing notebooks with papermill in worker processes: in parallel, with progress, carrying on past failures.

:func:`run_notebooks` runs a list of :class:`NotebookJob` (one spawned worker process per core,
one kernel per notebook) and shows one progress bar over all their cells; :class:`NotebookPool`
does the same with processes started before the jobs are ready. A job marked ``gated`` (the
scorecard, which reads what the others recorded) gets a process of its own: its kernel starts
and runs the notebook's own import statements beside the first jobs, then it waits until every
other job has finished and the caller's ``open_gate`` has run (e.g. written ``results.json``)
before its first cell.

The worker processes watch the main process (:mod:`cartlib.processes`) and, when it is gone or
asks them to stop, kill their kernels and exit, so nothing keeps running after the run has ended.
"""
from __future__ import annotations

import importlib
import importlib.util
import multiprocessing as mp
import os
import queue as queue_module
import re
import sys
import time
import types
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from .notebook_files import count_code_cells
from .processes import end_with_parent, redirect_output

ENGINE_NAME = "cartlib-progress"
KERNEL_NAME = "python3"
CELL_TIMEOUT_S = 1800
KERNEL_START_TIMEOUT_S = 300  # a loaded 2-core machine can take a minute to start a kernel
KERNEL_START_ATTEMPTS = 3
SAVE_EVERY_S = 30  # a running notebook's file is rewritten at most this often (and when it ends)


def defer_iri_grammar() -> None:
    """Make importing nbformat (and so papermill and nbconvert) about a second cheaper per process.

    nbformat imports jsonschema, which imports ``rfc3987_syntax`` for its optional ``iri`` format
    check, and that module compiles its grammar when imported (about 1 s of CPU in every process
    that touches a notebook file: the main process and each worker). Nothing here checks that
    format, so a stand-in module is registered that imports the real one on first use: jsonschema
    behaves the same, the grammar is compiled only if ever needed. Does nothing when the package is
    absent or already imported.
    """
    name = "rfc3987_syntax"
    if name in sys.modules or importlib.util.find_spec(name) is None:
        return
    stand_in = types.ModuleType(name)

    def real_module():
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        return importlib.import_module(name)

    def is_valid_syntax(*args, **kwargs):
        return real_module().is_valid_syntax(*args, **kwargs)

    def other_attribute(attribute: str):
        if attribute.startswith("__"):  # the import machinery's own questions (__path__, ...)
            raise AttributeError(attribute)
        return getattr(real_module(), attribute)

    stand_in.is_valid_syntax = is_valid_syntax
    stand_in.__getattr__ = other_attribute
    sys.modules[name] = stand_in


defer_iri_grammar()  # before anything imports nbformat: here, in the main process and in every worker


@dataclass
class NotebookJob:
    """One notebook to execute: ``source`` into ``target`` with papermill ``parameters`` (None:
    run as it is), working directory ``cwd``, the kernel's own stderr into ``log``.

    ``warm_up`` is code run silently in the kernel as soon as it has started (it adds no output
    and no execution count); ``gated`` holds the first cell until :func:`run_notebooks` opens the
    gate.
    """

    name: str
    source: str
    target: str
    parameters: dict[str, Any] | None
    cwd: str
    log: str | None = None
    warm_up: str = ""
    gated: bool = False


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

    def __init__(self, failures: list[NotebookFailure], out=None):
        self.failures = list(failures)
        self.out = out
        super().__init__("\n".join(str(f) for f in self.failures))


# in a worker: the gate of gated jobs, and how long the last job waited at it (set by
# _start_worker and the engine's client)
_gate = None
_gate_wait_s = 0.0


def _register_progress_engine(queue) -> None:
    """A papermill engine that reports every finished cell on ``queue`` (papermill has no hook)
    and runs a job's warm-up code and gate between the kernel's start and the first cell."""
    import papermill.engines as engines
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.utils import merge_kwargs, remove_args

    class GatedClient(PapermillNotebookClient):
        warm_up = ""
        gated = False

        def papermill_execute_cells(self):
            global _gate_wait_s
            if self.warm_up:
                self.wait_for_reply(self.kc.execute(self.warm_up, silent=True, store_history=False,
                                                    stop_on_error=False))
            if self.gated and _gate is not None:
                waited = time.perf_counter()
                _gate.wait()
                _gate_wait_s = time.perf_counter() - waited
            return super().papermill_execute_cells()

    class ProgressEngine(engines.NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None,
                                     cartlib_name="", warm_up="", gated=False, **kwargs):
            total = sum(1 for c in nb_man.nb.cells if c.cell_type == "code")
            complete = nb_man.cell_complete

            def cell_complete(cell, cell_index=None, **kw):
                if queue is not None and cell.cell_type == "code":
                    queue.put((cartlib_name, total))
                return complete(cell, cell_index=cell_index, **kw)

            nb_man.cell_complete = cell_complete
            # as papermill's NBClientEngine does, with the client above and one change: a kernel whose
            # notebook has ended is killed at once (its outputs are in the notebook; a graceful shutdown
            # waits a second or more for the interpreter's teardown before the worker's next notebook)
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            client = GatedClient(nb_man, **merge_kwargs(
                kwargs, timeout=execution_timeout, startup_timeout=start_timeout, kernel_name=kernel_name,
                log=engines.logger, log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file,
                shutdown_kernel="immediate"))
            client.warm_up, client.gated = warm_up, gated
            # papermill writes the whole notebook (validated, images and all) before and after every
            # cell, about a second of CPU per run spent on files nobody reads mid-run (they are in
            # the run's hidden temporary folder); write it at most every SAVE_EVERY_S while it runs,
            # and once when it ends (papermill's notebook_complete, also after a failure)
            save = nb_man.save

            def save_now_and_then(**kw):
                if (nb_man.now() - nb_man.last_save_time).total_seconds() >= SAVE_EVERY_S:
                    save(**kw)

            nb_man.save = save_now_and_then
            try:
                return client.execute()
            finally:
                nb_man.save = save

    engines.papermill_engines.register(ENGINE_NAME, ProgressEngine)


def _start_worker(progress_queue, stop, gate, parent_pid: int) -> None:
    """Pool initializer: report cells on ``progress_queue``; hold gated jobs at ``gate``; end
    with the main process; import papermill and register the engine now, once per worker (a pool
    started ahead of its jobs does this while the main process still validates the cohort)."""
    global _gate
    _gate = gate
    end_with_parent(stop, parent_pid)
    _register_progress_engine(progress_queue)


def _ready() -> None:
    """A task that does nothing: submitted once per worker, it makes the pool start its processes."""


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _execute(job: NotebookJob) -> tuple[str, float, NotebookFailure | None]:
    """Worker: execute one notebook in its own kernel; a failure is returned, naming the cell.
    The seconds returned leave out the time spent waiting at the gate."""
    global _gate_wait_s
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    # the kernel inherits this; a caller's MPLBACKEND=Agg would leave every figure out of the report
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    redirect_output(job.log)
    start, _gate_wait_s = time.perf_counter(), 0.0
    failure = None
    try:
        for attempt in range(KERNEL_START_ATTEMPTS):
            try:
                pm.execute_notebook(
                    job.source, job.target, parameters=job.parameters, engine_name=ENGINE_NAME,
                    kernel_name=KERNEL_NAME, progress_bar=False, cwd=job.cwd, log_output=False,
                    execution_timeout=CELL_TIMEOUT_S, start_timeout=KERNEL_START_TIMEOUT_S, cartlib_name=job.name,
                    warm_up=job.warm_up, gated=job.gated,
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
    return job.name, time.perf_counter() - start - _gate_wait_s, failure


class NotebookPool:
    """Worker processes for notebooks, started before their jobs are known.

    ``workers`` processes execute the jobs; ``gated`` more each take one gated job at once, so
    that its kernel starts and runs its warm-up (the notebook's imports) beside the first jobs
    instead of after the last, then waits at the gate. The processes (spawned: kernels and zmq
    don't survive fork well) start and import papermill as soon as the pool is made, so a
    caller can make it first and prepare the jobs meanwhile (``cartlib run`` validates the cohort
    while they start). :meth:`run` executes one list of jobs; leaving the ``with`` block ends the
    processes: at once after a run, and after telling them to kill their kernels when an
    exception (e.g. a signal turned into one) leaves it.

    >>> with NotebookPool(workers=1) as pool:
    ...     pool.run([], progress=False)
    ({}, [])
    """

    def __init__(self, workers: int | None = None, gated: int = 0):
        self.workers, self.gated = max(1, workers or os.cpu_count() or 1), max(0, gated)
        ctx = mp.get_context("spawn")
        self._cells, self._stop, self._gate = ctx.Queue(), ctx.Event(), ctx.Event()
        self._finished, self._jobs_run = False, 0
        size = self.workers + self.gated
        self._executor = ProcessPoolExecutor(max_workers=size, mp_context=ctx, initializer=_start_worker,
                                             initargs=(self._cells, self._stop, self._gate, os.getpid()))
        for _ in range(size):  # one process is started per task waiting for a free one
            self._executor.submit(_ready)

    def __enter__(self) -> "NotebookPool":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self._stop.set()  # every worker kills its kernel and exits; shutdown below then returns at once
        # after the last notebook, the idle workers end in the background (a fraction of a second
        # of interpreter teardown each) while the caller goes on; when interrupted, wait for them,
        # and also when some process may not have had a job: it may still be starting, and would
        # fail noisily if this process ended first
        busy = self._jobs_run >= self.workers + self.gated
        self._executor.shutdown(wait=kind is not None or not busy, cancel_futures=True)
        if kind is not None:
            self._cells.close()

    def run(self, jobs: list[NotebookJob], progress: bool = True,
            open_gate: Callable[[], None] | None = None) -> tuple[dict[str, float], list[NotebookFailure]]:
        """Execute ``jobs``, showing one progress bar over all their cells, and carry on past failures.

        Jobs are started in the given order, the ``gated`` ones first when the pool has a
        process for each of them (else last). Once every other job has finished (or failed),
        ``open_gate()`` is called if given (e.g. to merge what they recorded), and then the
        gated jobs go on from their warmed-up kernels to their first cell. Returns seconds per
        notebook and the failures (sorted by notebook). Once per pool.
        """
        from tqdm.auto import tqdm

        if self._finished:
            raise RuntimeError("a NotebookPool runs one list of jobs")
        gated, ungated = [j for j in jobs if j.gated], [j for j in jobs if not j.gated]
        # a gated job holds its process at the gate: first only when it has a process of its own
        jobs = gated + ungated if 0 < len(gated) <= self.gated else ungated + gated
        # papermill adds one code cell (the injected parameters) when it is given parameters
        totals = {j.name: count_code_cells(j.source) + (1 if j.parameters else 0) for j in jobs}
        timings: dict[str, float] = {}
        failures: list[NotebookFailure] = []
        bar = tqdm(total=sum(totals.values()), desc="notebooks", unit="cell", disable=not progress,
                   file=sys.stderr, dynamic_ncols=True)
        try:
            futures = {self._executor.submit(_execute, job): job for job in jobs}
            pending = set(futures)
            ungated = {f for f, job in futures.items() if not job.gated}
            while pending:
                done, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                _show_progress(self._cells, bar)
                for f in done:
                    try:
                        name, seconds, failure = f.result()
                    except Exception as exc:  # the worker process itself died (e.g. out of memory)
                        name, seconds = futures[f].name, 0.0
                        failure = NotebookFailure(name, None, None, f"its process ended: {type(exc).__name__}: {exc}")
                    timings[name] = seconds
                    if failure is not None:
                        failures.append(failure)
                pending -= done
                if not self._gate.is_set() and not (ungated & pending):
                    if open_gate is not None:
                        open_gate()
                    self._gate.set()
            _show_progress(self._cells, bar)
            self._finished, self._jobs_run = True, len(jobs)
        finally:
            bar.close()  # before anyone prints: a message must not share the bar's line
        return timings, sorted(failures, key=lambda f: f.notebook)


def run_notebooks(jobs: list[NotebookJob], workers: int | None = None, progress: bool = True,
                  open_gate: Callable[[], None] | None = None) -> tuple[dict[str, float], list[NotebookFailure]]:
    """Execute ``jobs`` in a :class:`NotebookPool` of ``workers`` processes (at most one per job;
    default: one per core) and one more per gated job: :meth:`NotebookPool.run`, which says how. When interrupted (any
    exception, e.g. a signal turned into one), the workers are told to stop, kill their kernels
    and exit before the exception goes on.
    """
    gated = sum(1 for j in jobs if j.gated)
    with NotebookPool(min(workers or os.cpu_count() or 1, max(len(jobs) - gated, 1)), gated) as pool:
        return pool.run(jobs, progress, open_gate)


def _show_progress(cells, bar) -> None:
    while True:
        try:
            name, _ = cells.get_nowait()
        except queue_module.Empty:
            return
        bar.set_postfix_str(name)
        bar.update(1)


def execute_notebooks(jobs: list[NotebookJob], workers: int | None = None, progress: bool = True,
                      open_gate: Callable[[], None] | None = None) -> dict[str, float]:
    """:func:`run_notebooks`, raising :class:`NotebookFailed` if any notebook failed.
    Returns seconds per notebook."""
    timings, failures = run_notebooks(jobs, workers, progress, open_gate)
    if failures:
        raise NotebookFailed(failures)
    return timings
