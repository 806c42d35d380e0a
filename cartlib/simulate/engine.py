"""Run a simulation study on Dask: replicates in chunks, parts streamed to Parquet, summaries.

:func:`simulate` is what ``cartlib simulate`` calls. By default it starts an embedded
``dask.distributed`` LocalCluster (one single-threaded worker process per core; nothing to
install or start); ``scheduler="tcp://host:port"`` sends the same chunks to an existing Dask
cluster instead. ``workers=0`` runs the replicates in the calling process (no Dask), which gives
the same numbers and suits small runs in a notebook.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm  # the text bar: tqdm.auto warns in a kernel without ipywidgets

from ..atomic import LockHeld, output_lock, write_file
from ..outdir import PathError, check_output, make_parent, shown, staged_output
from ..params import ParameterError
from ..results import dumps
from . import store
from .replicate import StudySpec, run_chunk
from .scenario import Scenario, load_scenario
from .summary import ALPHA, csv_text, model_check, results_style, summarise

CONNECT_TIMEOUT_S = 20
MAX_CHUNK = 10


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate` wrote: the folder, the per-key summary and the model check."""

    out: Path
    replicates: int
    analysed: int
    failed: int
    computed: int
    summary: pd.DataFrame
    model_check: pd.DataFrame

    def replicate_values(self) -> pd.DataFrame:
        """Every replicate's results keys (one row per replicate, sorted by index)."""
        return store.read_replicates(self.out, self.replicates)


def open_client(workers: int | None = None, scheduler: str | None = None):
    """A Dask client: of a new embedded LocalCluster (``workers`` single-threaded processes,
    default one per core; closing the client closes it), or connected to ``scheduler``.
    Close it with ``client.close()`` (or use :func:`dask_client`).

    Raises
    ------
    ParameterError
        The scheduler cannot be reached within 20 seconds.
    """
    from dask.distributed import Client

    if scheduler:
        try:
            return Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ParameterError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    count = workers or os.cpu_count() or 1
    # ":0": a free port for the scheduler's HTTP endpoints, so a second cluster never clashes with one on 8787
    return Client(n_workers=count, threads_per_worker=1, processes=True, dashboard_address=":0",
                  silence_logs=logging.ERROR)


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """:func:`open_client` as a context manager: the client (and its embedded cluster) is
    closed when the block ends, however it ends."""
    client = open_client(workers, scheduler)
    try:
        yield client
    finally:
        client.close()


def chunks(indices: list[int], size: int) -> list[list[int]]:
    """Consecutive runs of at most ``size`` indices (a gap starts a new chunk).

    >>> chunks([0, 1, 2, 5, 6], 2)
    [[0, 1], [2], [5, 6]]
    """
    out: list[list[int]] = []
    for i in indices:
        if out and len(out[-1]) < size and out[-1][-1] == i - 1:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def default_chunk_size(todo: int, workers: int) -> int:
    """About four chunks per worker, at most 10 replicates each (progress and load balance).

    >>> default_chunk_size(1000, 2), default_chunk_size(6, 2)
    (10, 1)
    """
    return max(1, min(MAX_CHUNK, math.ceil(todo / (4 * max(workers, 1)))))


def prepare_folder(out: str | os.PathLike, *, is_own, conflict, unfinished, resume: bool, force: bool,
                   inputs=(), what: str = "simulation") -> Path:
    """Apply the --out rules; empty the folder for a fresh start, or check --resume may continue it.

    ``is_own(path)`` recognises the command's own folders; ``conflict(path)`` says why its
    settings forbid continuing (None: they match); ``unfinished(path)`` describes an unfinished
    run that only --resume or --force may touch (None: finished).
    """
    target, _ = check_output(out, inputs=inputs, force=force, is_own=is_own)
    if resume and is_own(target):
        reason = conflict(target)
        if reason:
            raise PathError(f"cannot resume {shown(target)}: it was started with other settings ({reason}); "
                            "choose another --out or drop --resume to start over")
        return target
    if resume and target.exists() and any(target.iterdir()):
        raise PathError(f"cannot resume {shown(target)}: it holds no {what}")
    state = unfinished(target) if not force and is_own(target) else None
    if state:
        raise PathError(f"refusing to write into {shown(target)}: it holds an unfinished {what} ({state}); "
                        "pass --resume to continue it or --force to start over")
    if target.exists() and any(target.iterdir()):
        # an earlier run (or, with --force, another folder) is replaced by an empty one, atomically
        with staged_output(target, inputs=inputs, force=True, is_own=is_own):
            pass
    make_parent(target, "--out")
    target.mkdir(exist_ok=True)
    return target


def _unfinished_simulation(target: Path) -> str | None:
    if (target / "summary.csv").exists():
        return None
    return f"{len(store.done_replicates(target))} replicates done"


def simulate(out: str | os.PathLike, replicates: int, n: int | None = None, seed: int = 0,
             scenario: Scenario | str | os.PathLike | None = None, overrides: dict[str, Any] | None = None,
             workers: int | None = None, scheduler: str | None = None, chunk_size: int | None = None,
             resume: bool = False, force: bool = False, sections: tuple[str, ...] | None = None,
             alpha: float = ALPHA, progress: bool = True, client: Any = None) -> SimulationResult:
    """Run ``replicates`` synthetic studies of ``n`` patients, analyse each, summarise.

    Parameters
    ----------
    out : path
        The simulation folder (see :mod:`cartlib.simulate.store`): absent, empty or an earlier
        simulation (replaced; an unfinished one only with ``resume`` or ``force``).
    replicates : int
        Number of replicates; replicate ``i`` uses the cohort seed ``replicate_seed(seed, i)``.
    n : int, optional
        Patients per replicate (default: the scenario's ``n``, else 50).
    seed : int, default 0
        The study seed.
    scenario : Scenario, path or bundled name, optional
        The model changes (default: the model of ``parameters/synthetic.yaml``).
    overrides : dict, optional
        ``--set`` values: ``model.A.B`` names a model parameter, other names analysis parameters.
    workers : int, optional
        Worker processes of the embedded cluster (default: one per core); 0 runs in this process.
    scheduler : str, optional
        Address of an existing Dask scheduler (instead of the embedded cluster).
    chunk_size : int, optional
        Replicates per task (default: about four tasks per worker, at most 10 replicates).
    resume : bool, default False
        Continue the folder: run only the replicates no finished part holds.
    force : bool, default False
        Replace a folder that holds other files or an unfinished simulation.
    sections : tuple of str, optional
        Run only these results sections (default: all, as ``cartlib run``).
    alpha : float, default 0.05
        Significance level of the power.
    progress : bool, default True
        Show replicates done, rate and time left on standard error.
    client : dask.distributed.Client, optional
        An open client to use (several simulations on one cluster); overrides workers/scheduler.

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> import tempfile
    >>> r = simulate(Path(tempfile.mkdtemp()) / "sim", replicates=3, n=12, seed=1, workers=0,
    ...              sections=("cohort",), progress=False)
    >>> r.analysed, float(r.summary.set_index("key").loc["cohort.n", "mean"])
    (3, 12.0)
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if overrides:
        scenario = scenario.with_overrides(overrides)
    n = int(n or scenario.n or 50)
    spec = StudySpec(n=n, seed=int(seed), model=scenario.model, analysis=scenario.analysis,
                     sections=tuple(sections) if sections else None)
    settings = {"n": n, "seed": int(seed), "replicates": int(replicates), "scenario": scenario.name,
                "description": scenario.description, "model": scenario.model, "analysis": scenario.analysis,
                "sections": list(spec.sections) if spec.sections else None, "alpha": alpha}
    inputs = [scenario.source] if scenario.source else []
    check_output(out, inputs=inputs, force=force, is_own=store.is_simulation_folder)
    # an existing cluster must answer before anything is written (the embedded one starts on demand)
    remote = open_client(None, scheduler) if scheduler and client is None else None
    with remote if remote is not None else contextlib.nullcontext():
        return _simulate_into(out, spec, settings, replicates, inputs, resume, force, workers, chunk_size,
                              alpha, progress, remote or client)


def _simulate_into(out, spec: StudySpec, settings: dict[str, Any], replicates: int, inputs, resume: bool,
                   force: bool, workers: int | None, chunk_size: int | None, alpha: float, progress: bool,
                   client: Any) -> SimulationResult:
    target = prepare_folder(out, is_own=store.is_simulation_folder, resume=resume, force=force, inputs=inputs,
                            conflict=lambda t: store.settings_conflict(store.read_settings(t), settings),
                            unfinished=_unfinished_simulation)
    try:
        with output_lock(target):
            store.write_settings(target, settings)
            for stale in (target / store.PARTS).glob(".*.partial") if (target / store.PARTS).is_dir() else ():
                stale.unlink(missing_ok=True)   # a temporary part of a run that was stopped
            for name in store.OUTPUTS:
                (target / name).unlink(missing_ok=True)   # summaries of fewer replicates are stale
            done = store.done_replicates(target)
            todo = [i for i in range(replicates) if i not in done]
            computed = _run(target, spec, todo, replicates, workers, chunk_size, progress, client)
            return _finish(target, replicates, alpha, settings, computed)
    except LockHeld as exc:
        raise PathError(f"another cartlib process (pid {exc.holder}) is writing {shown(target)}; "
                        "wait for it to finish or choose another --out") from None


def _run(target: Path, spec: StudySpec, todo: list[int], replicates: int, workers: int | None,
         chunk_size: int | None, progress: bool, client: Any = None) -> int:
    bar = tqdm(total=replicates, initial=replicates - len(todo), unit="replicate", desc="simulate",
               disable=not progress or not todo, file=sys.stderr, smoothing=0.1)
    with bar:
        if not todo:
            return 0
        if workers == 0 and client is None:
            for chunk in chunks(todo, chunk_size or MAX_CHUNK):
                store.write_part(target, run_chunk(spec, chunk))
                bar.update(len(chunk))
            return len(todo)
        with contextlib.nullcontext(client) if client is not None else dask_client(workers) as client:
            from dask.distributed import as_completed

            count = len(client.scheduler_info(n_workers=-1).get("workers", {})) or (workers or os.cpu_count() or 1)
            size = chunk_size or default_chunk_size(len(todo), count)
            spec_future = client.scatter(spec, broadcast=True)
            futures = [client.submit(run_chunk, spec_future, chunk, pure=False) for chunk in chunks(todo, size)]
            try:
                for future in as_completed(futures):
                    records = future.result()
                    store.write_part(target, records)
                    bar.update(len(records))
                    future.release()
            except BaseException:
                client.cancel(futures)
                raise
    return len(todo)


def _finish(target: Path, replicates: int, alpha: float, settings: dict[str, Any], computed: int) -> SimulationResult:
    data = store.read_replicates(target, replicates)
    failed = int(data["error"].notna().sum())
    summary = summarise(data, alpha)
    check = model_check(summary)
    meta = {"replicates": replicates, "analysed": len(data) - failed, "failed": failed, "n": settings["n"],
            "seed": settings["seed"], "alpha": alpha}
    errors = data.loc[data["error"].notna(), ["replicate", "seed", "error"]]
    write_file(target / "summary.csv", csv_text(summary).encode("utf-8"))
    write_file(target / "summary.json", dumps(results_style(summary, meta)).encode("utf-8"))
    write_file(target / "model_check.csv", csv_text(check).encode("utf-8"))
    write_file(target / "errors.csv", csv_text(errors).encode("utf-8"))
    return SimulationResult(target, replicates, len(data) - failed, failed, computed, summary, check)

