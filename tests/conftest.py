"""Fixtures shared across test modules.

The calibration of the bundled cohort (``make calibrate``) is rebuilt once per session, in two
subprocesses running at the same time under two different OpenBLAS kernels and thread counts
(:data:`KERNEL_RUNS`): both must give the committed bytes (tests/test_synth.py), and the first
also hands back the intermediate records the stage tests check (tests/test_fit_*.py).
"""
import copy
import os
import pickle
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _has_avx2():
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


_X86 = platform.machine().lower() in ("x86_64", "amd64")
#: (OPENBLAS_CORETYPE, OPENBLAS_NUM_THREADS) of the two rebuilds: a modern and an old SSE3 x86-64
#: kernel (Haswell needs AVX2; without it, Nehalem), one and two threads. Other platforms keep
#: their kernel (None) and vary the threads; other BLAS libraries ignore both variables.
KERNEL_RUNS = ((("Haswell" if _has_avx2() else "Nehalem") if _X86 else None, "1"),
               ("Prescott" if _X86 else None, "2"))


def kernel_env(kernel: str | None, threads: str) -> dict[str, str]:
    """The environment of a subprocess that runs this checkout under OpenBLAS ``kernel`` (None:
    the machine's own) with ``threads`` threads."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=threads,
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("OPENBLAS_CORETYPE", None)
    if kernel is not None:
        env["OPENBLAS_CORETYPE"] = kernel
    return env


def pytest_collection_modifyitems(items):
    """Every test that needs the rebuild (directly or through the fixtures below) is marked
    ``calibration``, so ``pytest -m "not calibration"`` skips the slow part."""
    for item in items:
        if "calibration_runs" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.calibration)


@pytest.fixture(scope="session")
def e2e_run(tmp_path_factory):
    """The report folder of one real ``cartlib run --docx`` of the bundled cohort (see tests/e2e_run.py)."""
    from e2e_run import run_bundled

    return run_bundled(tmp_path_factory.mktemp("e2e"))


@pytest.fixture(scope="session")
def calibration_runs(tmp_path_factory):
    """``[(kernel, threads, out_dir), ...]`` of the rebuilds and the first one's pickled records
    (``before_kinetics``, ``latent``, ``tables``, ``kinetics``; see ``python -m calibration``)."""
    base = tmp_path_factory.mktemp("calibration")
    procs, runs = [], []
    for k, (kernel, threads) in enumerate(KERNEL_RUNS):
        out = base / f"cohort_{kernel}_{threads}"
        env = kernel_env(kernel, threads)
        cmd = [sys.executable, "-m", "calibration", "--out", str(out)]
        if k == 0:
            cmd += ["--stages", str(base / "stages.pkl")]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        runs.append((kernel, threads, out))
    for (kernel, threads, _), proc in zip(runs, procs):
        log = proc.communicate()[0].decode(errors="replace")
        assert proc.returncode == 0, f"python -m calibration under {kernel}/{threads} threads failed:\n{log}"
    with open(base / "stages.pkl", "rb") as fh:
        return runs, pickle.load(fh)


@pytest.fixture(scope="session")
def default_stages(calibration_runs):
    """Steps 1-4 of the default cohort: ``(tables, record)`` of
    :func:`calibration.pipeline.simulated_tables`, ``record`` holding the latent patients after
    the nudges, the toxicity stage and the outcome stage (tests take them from :func:`default_latent`)."""
    records = calibration_runs[1]
    return records["before_kinetics"], records["latent"]


@pytest.fixture(scope="module")
def default_latent(default_stages):
    """The recorded latent states (``nudged``, ``toxicity``, ``outcomes``), a private copy per test
    module (a test may not change another module's input)."""
    return copy.deepcopy(default_stages[1])


@pytest.fixture(scope="session")
def default_cohort(calibration_runs):
    """The regenerated default cohort: ``(tables, details)`` of
    :func:`calibration.pipeline.default_cohort_tables`, ``details`` being the kinetics stage's record."""
    records = calibration_runs[1]
    return records["tables"], records["kinetics"]
