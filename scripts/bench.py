"""make bench: time `cartlib run` on the default cohort and on 5,000 synthetic patients, and the
bare cost of starting the same kernels with the same imports (the floor any run pays).

Targets: default run <= 2 x bare cost; 5,000-patient run <= 3 x default run.
Writes .bench/bench.json and prints a table. Seeds are fixed, so the inputs are the same every time.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from cartlib.runner import NOTEBOOKS, SECTIONS, _Job, execute_notebooks

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".bench"
SETUP_IMPORTS = """
import numpy as np
import pandas as pd
from IPython.display import display
from cartlib import analysis, plots, tables
from cartlib.params import resolve
from cartlib.results import Recorder
from cartlib.scorecard import key_table
from cartlib.sections import compute_results
"""


def bare_kernels(workers: int) -> float:
    """Execute one import-only notebook per workbook notebook, as the runner schedules them."""
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for name in NOTEBOOKS:
            nb = nbformat.v4.new_notebook()
            nb.cells = [nbformat.v4.new_code_cell(SETUP_IMPORTS)]
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
            path = Path(tmp) / f"{name}.ipynb"
            nbformat.write(nb, path)
            jobs.append(_Job(name, str(path), str(path), None, tmp, str(Path(tmp) / f"{name}.log")))
        start = time.perf_counter()
        # the runner runs the sections in parallel, then the scorecard alone: do the same
        execute_notebooks([j for j in jobs if j.name in SECTIONS], workers, progress=False)
        execute_notebooks([j for j in jobs if j.name not in SECTIONS], 1, progress=False)
        return time.perf_counter() - start


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    OUT.mkdir(exist_ok=True)
    workers = os.cpu_count() or 1
    cli = [str(Path(sys.executable).with_name("cartlib"))]
    big = OUT / "cohort_5000"
    if not big.exists():
        subprocess.run(cli + ["synth", "--n", "5000", "--seed", "5000", "--out", str(big)], check=True)
    bare = bare_kernels(workers)
    default = timed(cli + ["run", "--quiet", "--out", str(OUT / "default")])
    large = timed(cli + ["run", "--quiet", "--data", str(big), "--out", str(OUT / "n5000")])
    result = {"cores": workers, "bare_kernels_s": round(bare, 1), "default_run_s": round(default, 1),
              "n5000_run_s": round(large, 1), "default_over_bare": round(default / bare, 2),
              "n5000_over_default": round(large / default, 2),
              "targets": {"default_over_bare": 2.0, "n5000_over_default": 3.0}}
    (OUT / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:>22}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
