"""make bench: the suite's cost at scale, measured in one go and compared with its targets.

* ``cartlib run`` of 20,000 synthetic patients: wall time and peak memory summed over the
  whole process tree (main process, workers, kernels), sampled every 0.2 s;
* ``cartlib validate`` of 100,000 synthetic patients: wall time and peak memory;
* ``cartlib run`` of the bundled cohort against the bare cost of starting the same kernels
  with the same imports (the floor any run pays), as a ratio: one notebook per workbook
  notebook holding only the import statements that open its set-up cell, executed by the
  runner's own scheduler (the sections in parallel; the scorecard's kernel started, and its
  imports run, in a process of its own beside them, its cell after them);
* one replicate of a 50-patient study analysed at engine level: ``compute_results`` (no
  notebooks, no plots) on 20 fresh synthetic cohorts (``generate_cohort(50, seed)``, seeds
  1..20) in a warm process: the median process CPU time, judged against the target because it
  does not depend on how many other processes share the cores, and the median wall time. The
  target is judged on the paper's six results sections (the analysis it was set for); the CPU
  time with every section, the kinetic-model fits included, is recorded beside it.

Targets: 20,000-patient run <= 180 s and <= 4 GB; validate of 100,000 <= 15 s; default run
<= 1.5 x bare kernels; engine replicate of n = 50 <= 0.25 s median. The machine's load average
is recorded with the figures, since on a shared machine wall times depend on it. Writes
.bench/bench.json and prints a table. Seeds are fixed, so the inputs are the same every time.
Not part of ``make test``.

More measurements plug in without editing this file: every module ``scripts/bench_*.py``
(alphabetical order) that defines ``measure() -> list[dict]`` is imported and run after the
measurements above. Each dict is one row with the keys ``name`` (str, unique), ``value``
(number), ``unit`` (str), ``target`` (number, or None for a figure without a target) and
``met`` (bool; True when there is no target). The rows are printed in the table, stored under
``rows`` in .bench/bench.json, and a row with ``met`` False makes the exit status 1. A module
that fails to import, raises, or returns malformed rows is reported as a failed row named after
the module.
"""
from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from cartlib.notebook_files import leading_imports
from cartlib.notebook_pool import NotebookJob, execute_notebooks
from cartlib.sections import PAPER_SECTIONS

# nothing heavier at the top of this module: the notebook workers are spawned, and each imports
# its parent's main module (this file for the bare measurement; the light cartlib.cli for a run)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".bench"
CLI = str(Path(sys.executable).with_name("cartlib"))
TARGETS = {"n20000_run_s": 180, "n20000_peak_gb": 4.0, "validate_n100000_s": 15, "default_over_bare": 1.5,
           "engine_n50_median_cpu_s": 0.25}
UNITS = {"n20000_run_s": "s", "n20000_peak_gb": "GB", "validate_n100000_s": "s", "default_over_bare": "x",
         "engine_n50_median_cpu_s": "s"}
ROW_KEYS = {"name", "value", "unit", "target", "met"}


def _tree_rss_psutil(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:  # ended between listing and reading
            pass
    return total


def _tree_rss_proc(pid: int) -> int:
    """The same from /proc when psutil is not installed (Linux)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                pass
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(kids)
        frontier += kids
    total = 0
    for p in tree:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def tree_rss(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in bytes."""
    try:
        return _tree_rss_psutil(pid)
    except ImportError:
        return _tree_rss_proc(pid)


def measured(cmd: list[str]) -> tuple[float, int]:
    """Run ``cmd``; its wall time (s) and the peak of its process tree's summed RSS (bytes)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    return elapsed, peak


def bare_kernels(workers: int) -> float:
    """Seconds to execute, for each workbook notebook, a notebook of only the imports that open its
    set-up cell, scheduled as ``cartlib run`` schedules the real ones."""
    from cartlib.runner import NOTEBOOKS, SCORECARD, notebook_dir

    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for name in NOTEBOOKS:
            imports = leading_imports(notebook_dir() / f"{name}.ipynb")
            nb = nbformat.v4.new_notebook()
            nb.cells = [nbformat.v4.new_code_cell(imports)]
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
            path = Path(tmp) / f"{name}.ipynb"
            nbformat.write(nb, path)
            job = NotebookJob(name, str(path), str(path), None, tmp, str(Path(tmp) / f"{name}.log"))
            if name == SCORECARD:  # as the runner does: warmed up beside the sections, run after them
                job.warm_up, job.gated = imports, True
            jobs.append(job)
        start = time.perf_counter()
        execute_notebooks(jobs, workers, progress=False)
        return time.perf_counter() - start


def synthetic(n: int) -> Path:
    """A synthetic cohort of ``n`` patients (seed ``n``), made once and kept in .bench/."""
    folder = OUT / f"cohort_{n}"
    if not (folder / "labs.csv").exists():
        subprocess.run([CLI, "synth", "--n", str(n), "--seed", str(n), "--out", str(folder), "--overwrite"],
                       check=True, stdout=subprocess.DEVNULL)
    return folder


# the engine target is judged on the paper's results sections (PAPER_SECTIONS): the analysis it was
# set for, before the kinetic model, whose per-patient fits about double a replicate's cost
# (measured beside it, no target)


def engine_replicates(n: int = 50, seeds=range(1, 21), sections=PAPER_SECTIONS) -> tuple[float, float]:
    """Median wall and process CPU seconds of ``compute_results`` on fresh synthetic cohorts of ``n``
    patients (made and loaded before the clock starts; one warm-up analysis first)."""
    from cartlib.io import load_cohort
    from cartlib.params import resolve
    from cartlib.sections import compute_results
    from cartlib.synth import generate_cohort, write_cohort

    params = resolve(None)
    cohorts = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            folder = Path(tmp) / str(seed)
            write_cohort(generate_cohort(n, seed), folder)
            cohorts.append(load_cohort(folder, lloq=params["lloq"]))
    compute_results(cohorts[0], params, sections=sections)  # imports and caches, as in a warm worker
    walls, cpus = [], []
    for cohort in cohorts:
        wall, cpu = time.perf_counter(), time.process_time()
        compute_results(cohort, params, sections=sections)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def _plugin_rows(path: Path) -> list[dict]:
    """The rows of one ``scripts/bench_*.py`` module (see the module docstring), checked."""
    try:
        spec = importlib.util.spec_from_file_location(f"_bench_plugin_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rows = list(module.measure())
        bad = [r for r in rows if not isinstance(r, dict) or set(r) != ROW_KEYS or not isinstance(r["met"], bool)]
        if bad:
            raise ValueError(f"rows must be dicts with exactly the keys {sorted(ROW_KEYS)} and a bool 'met': {bad[0]!r}")
        return rows
    except (Exception, SystemExit) as err:  # one broken plug-in must not hide the other figures
        return [{"name": path.stem, "value": None, "unit": "", "target": None,
                 "met": False, "error": f"{type(err).__name__}: {err}"}]


def plugin_rows(folder: Path = Path(__file__).resolve().parent) -> list[dict]:
    """Rows of every ``bench_*.py`` beside this script, in file-name order."""
    return [row for path in sorted(folder.glob("bench_*.py")) for row in _plugin_rows(path)]


def main() -> int:
    OUT.mkdir(exist_ok=True)
    workers = os.cpu_count() or 1
    n20k, n100k = synthetic(20_000), synthetic(100_000)
    load_before = os.getloadavg()
    engine_s, engine_cpu_s = engine_replicates()
    from cartlib.sections import SECTION_NAMES
    _, engine_every_cpu_s = engine_replicates(sections=SECTION_NAMES)
    validate_s, validate_peak = measured([CLI, "validate", "--data", str(n100k)])
    run_s, run_peak = measured([CLI, "run", "--quiet", "--force", "--data", str(n20k),
                                "--out", str(OUT / "n20000")])
    bare = bare_kernels(workers)
    default_s, _ = measured([CLI, "run", "--quiet", "--force", "--out", str(OUT / "default")])
    gb = 1024 ** 3
    result = {
        "cores": workers,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "validate_n100000_s": round(validate_s, 1), "validate_n100000_peak_gb": round(validate_peak / gb, 2),
        "n20000_run_s": round(run_s, 1), "n20000_peak_gb": round(run_peak / gb, 2),
        "bare_kernels_s": round(bare, 1), "default_run_s": round(default_s, 1),
        "default_over_bare": round(default_s / bare, 2),
        "engine_n50_median_s": round(engine_s, 3), "engine_n50_median_cpu_s": round(engine_cpu_s, 3),
        "engine_n50_every_section_median_cpu_s": round(engine_every_cpu_s, 3),
        "targets": TARGETS,
    }
    result["met"] = {k: result[k] <= v for k, v in TARGETS.items()}
    rows = [{"name": k, "value": result[k], "unit": UNITS[k], "target": v, "met": result["met"][k]}
            for k, v in TARGETS.items()]
    rows += plugin_rows()
    result["rows"] = rows
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    (OUT / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        if key not in ("rows", "met", "targets"):
            print(f"{key:>26}: {value}")
    print(f"\n{'measurement':<34}{'value':>12} {'unit':<6}{'target':>10}  met")
    for row in rows:
        target = "" if row["target"] is None else f"<= {row['target']}"
        print(f"{row['name']:<34}{row['value']!s:>12} {row['unit']:<6}{target:>10}  {'yes' if row['met'] else 'NO'}"
              + (f"  ({row['error']})" if row.get("error") else ""))
    return 0 if all(row["met"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
