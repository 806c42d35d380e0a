"""Build the bundled simulation reference (``cartlib/data/simulation_reference/``).

The simulation notebook shows, by default, large simulations of the unchanged generative model
instead of a few live replicates: they do not depend on the cohort, so they are made once, here,
and shipped as small CSV/JSON files (read by :mod:`cartlib.simulate.reference`). Three parts, each
run through :func:`cartlib.simulate.simulate` / :func:`cartlib.simulate.power_grid` on one
embedded Dask cluster:

* study: ``--replicates`` studies of n = 50 of the unchanged model, the paper's results sections
  (not the kinetic-model fits): sampling distributions and the model check;
* grid: the power grid of ``--grid-n`` x ``--grid-scenario`` with ``--grid-replicates`` studies per
  cell (200 give a Monte Carlo half-width of about 0.07 at a power of 0.5);
* lesson: ``--lesson-replicates`` studies of the ``hsct_no_effect`` scenario, transplant section only.

Besides the summaries it stores the per-replicate values of a few keys (those the notebook plots,
the headline figures, the findings' p-values, the lesson's keys) and the full results of the
first ``--first`` replicates of each part, from which ``tests/test_simulation_reference.py``
recomputes them with the current code: when that test fails, the model or the analysis changed,
and this script must be run again. The folder is written whole (a temporary folder beside it,
then renamed). The timings are printed (not stored: they are not reproducible).

Usage (from the repository root; about 26 minutes with 2 workers on a busy 2-core machine)::

    .venv/bin/python scripts/build_simulation_reference.py
    .venv/bin/python scripts/build_simulation_reference.py --replicates 20 --grid-replicates 4 \\
        --lesson-replicates 20 --out /tmp/small_reference          # a quick look
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cartlib import __version__  # noqa: E402
from cartlib.atomic import make_partial, output_lock, replace_folder, write_file  # noqa: E402
from cartlib.simulate import FINDINGS, dask_client, load_scenario, power_grid, simulate  # noqa: E402
from cartlib.simulate.display import DISTRIBUTION_KEYS, LESSON_KEYS  # noqa: E402
from cartlib.simulate.power import FINDING_SECTIONS  # noqa: E402
from cartlib.simulate.reference import PROVENANCE, BUILD_SCRIPT, model_fingerprint  # noqa: E402
from cartlib.simulate.store import FIXED_COLUMNS, read_replicates  # noqa: E402
from cartlib.sections import PAPER_SECTIONS  # noqa: E402
from cartlib.simulate.summary import HEADLINE_KEYS  # noqa: E402

DEFAULT_OUT = ROOT / "cartlib" / "data" / "simulation_reference"
SEED = 20250930            # the seed of the notebook's live studies
LESSON_EXTRA = ("transplant.tv_cox_os_hr",)   # the notebook quotes its median


def number(value) -> str:
    """A value as CSV text that reads back to the same float (empty for NaN/None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return repr(float(value))


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as CSV with round-trip floats, ``\\n`` line ends, no index."""
    lines = [",".join(frame.columns)]
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            text = number(value)
            cells.append(f'"{text}"' if isinstance(value, str) and any(c in text for c in ',"\n') else text)
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode("utf-8")


def grid_first_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Grid rows as ``scenario``, ``n``, the fixed columns, then the results keys sorted."""
    keys = sorted(c for c in frame.columns if c not in ("scenario", "n", *FIXED_COLUMNS))
    return frame[["scenario", "n", *FIXED_COLUMNS, *keys]]


def shipped_values(values: pd.DataFrame, keys) -> pd.DataFrame:
    keep = [k for k in sorted(set(keys)) if k in values.columns]
    return values[list(FIXED_COLUMNS) + keep]


def part_info(result, n, scenario, sections, first) -> dict:
    return {"replicates": result.replicates, "analysed": result.analysed, "failed": result.failed, "n": n,
            "scenario": scenario.name, "description": scenario.description, "sections": list(sections),
            "model_sha256": model_fingerprint(scenario.model), "first_replicates": first}


def command_line(args) -> str:
    parts = ["python", BUILD_SCRIPT, "--seed", str(args.seed), "--replicates", str(args.replicates),
             "--grid-n", ",".join(str(n) for n in args.grid_n), "--grid-replicates", str(args.grid_replicates)]
    for name in args.grid_scenario:
        parts += ["--grid-scenario", name]
    parts += ["--lesson-replicates", str(args.lesson_replicates)]
    return " ".join(parts)


def timed(label: str, timings: dict, func):
    load = os.getloadavg()[0]
    start = time.perf_counter()
    result = func()
    timings[label] = {"wall_s": round(time.perf_counter() - start, 1), "load_before": round(load, 2),
                      "load_after": round(os.getloadavg()[0], 2)}
    print(f"{label}: {timings[label]['wall_s']} s wall (load average {load:.2f} -> "
          f"{timings[label]['load_after']:.2f})", flush=True)
    return result


def build(args) -> dict:
    files: dict[str, bytes] = {}
    timings: dict = {}
    default = load_scenario(None)
    lesson_scenario = load_scenario("hsct_no_effect")
    grid_scenarios = [load_scenario(None if name == "default" else name) for name in args.grid_scenario]
    with tempfile.TemporaryDirectory(prefix="cartlib-reference-") as tmp, dask_client(args.workers) as client:
        work = Path(tmp)
        study = timed(f"(a) study: {args.replicates} replicates of n=50, {args.workers} workers", timings,
                      lambda: simulate(work / "study", args.replicates, n=50, seed=args.seed, scenario=default,
                                       sections=PAPER_SECTIONS, client=client, progress=not args.quiet))
        values = study.replicate_values()
        files["study_summary.csv"] = (study.out / "summary.csv").read_bytes()
        files["study_model_check.csv"] = (study.out / "model_check.csv").read_bytes()
        files["study_values.csv"] = csv_bytes(shipped_values(values, (*DISTRIBUTION_KEYS, *HEADLINE_KEYS)))
        files["study_first_replicates.csv"] = csv_bytes(values.head(args.first))

        grid = timed(f"(b) grid: n={args.grid_n} x {args.grid_scenario}, {args.grid_replicates} replicates per cell, "
                     f"{args.workers} workers", timings,
                     lambda: power_grid(work / "power", args.grid_n, grid_scenarios, replicates=args.grid_replicates,
                                        seed=args.seed, client=client, progress=not args.quiet))
        files["grid_power.csv"] = (grid.out / "power.csv").read_bytes()
        files["grid_sample_size.csv"] = (grid.out / "sample_size.csv").read_bytes()
        cells, firsts = [], []
        for scenario in grid_scenarios:
            for n in sorted(args.grid_n):
                full = read_replicates(grid.out / "runs" / scenario.name / f"n{n}", args.grid_replicates)
                cell = shipped_values(full, [key for key, _ in FINDINGS.values()])
                cells.append(cell.assign(scenario=scenario.name, n=n))
                if n == min(args.grid_n):
                    firsts.append(full.head(args.first).assign(scenario=scenario.name, n=n))
        grid_values = pd.concat(cells, ignore_index=True)
        files["grid_values.csv"] = csv_bytes(grid_values[["scenario", "n"] + [c for c in grid_values.columns
                                                                             if c not in ("scenario", "n")]])
        files["grid_first_replicates.csv"] = csv_bytes(grid_first_columns(pd.concat(firsts, ignore_index=True)))

        lesson = timed(f"(c) lesson: {args.lesson_replicates} replicates of n=50 (transplant section), "
                       f"{args.workers} workers", timings,
                       lambda: simulate(work / "lesson", args.lesson_replicates, n=50, seed=args.seed,
                                        scenario=lesson_scenario, sections=("transplant",), client=client,
                                        progress=not args.quiet))
        lesson_values = lesson.replicate_values()
        files["lesson_summary.csv"] = (lesson.out / "summary.csv").read_bytes()
        files["lesson_values.csv"] = csv_bytes(shipped_values(lesson_values, (*LESSON_KEYS, *LESSON_EXTRA)))
        files["lesson_first_replicates.csv"] = csv_bytes(lesson_values.head(args.first))

    provenance = {
        "cartlib": __version__, "seed": args.seed, "command": command_line(args), "alpha": 0.05,
        "study": part_info(study, 50, default, PAPER_SECTIONS, args.first),
        "grid": {"replicates": args.grid_replicates, "ns": sorted(args.grid_n),
                 "scenarios": [s.name for s in grid_scenarios], "sections": list(FINDING_SECTIONS),
                 "model_sha256": {s.name: model_fingerprint(s.model) for s in grid_scenarios},
                 "first_replicates": args.first, "first_replicates_n": min(args.grid_n)},
        "lesson": part_info(lesson, 50, lesson_scenario, ("transplant",), args.first),
    }
    files[PROVENANCE] = (json.dumps(provenance, indent=2, sort_keys=True) + "\n").encode("utf-8")
    write_folder(Path(args.out), files)
    total = sum(len(b) for b in files.values())
    print(f"wrote {len(files)} files, {total / 1024:.0f} KiB, to {args.out}", flush=True)
    print(json.dumps(timings, indent=2), flush=True)
    return timings


def write_folder(target: Path, files: dict[str, bytes]) -> None:
    """The reference folder written whole: a temporary folder beside it, renamed into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(target):
        stage = make_partial(target)
        try:
            for name, data in files.items():
                write_file(stage / name, data)
            replace_folder(stage, target)
        except BaseException:
            import shutil
            shutil.rmtree(stage, ignore_errors=True)
            raise


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=SEED, help=f"study seed of every part (default {SEED})")
    parser.add_argument("--replicates", type=int, default=1000, help="studies of the model check (default 1000)")
    parser.add_argument("--grid-n", type=lambda t: sorted({int(x) for x in t.split(",")}), default=[50, 100, 200, 400],
                        help="study sizes of the power grid (default 50,100,200,400)")
    parser.add_argument("--grid-scenario", action="append", default=None,
                        help="effect scenarios of the grid (repeatable; default: default and half_effects)")
    parser.add_argument("--grid-replicates", type=int, default=200, help="studies per grid cell (default 200)")
    parser.add_argument("--lesson-replicates", type=int, default=1000, help="studies of the lesson (default 1000)")
    parser.add_argument("--first", type=int, default=3, help="replicates stored in full per part (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the embedded cluster (default 2)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="the reference folder (default: the package's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    args.grid_scenario = args.grid_scenario or ["default", "half_effects"]
    return args


if __name__ == "__main__":   # the embedded cluster spawns worker processes
    build(parse())
