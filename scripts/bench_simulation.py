"""Scale of the simulation engine (``cartlib simulate`` on the embedded Dask cluster).

* 1,000 replicates of n = 50 analysed as the paper was (its six results sections, as the
  simulation notebook and ``cartlib power`` run them) with 2 workers and with 1 worker, one after
  the other in the same bench run: the wall time of each (target for 2 workers: 3 minutes) and
  the speed-up of 2 workers over 1 (target: at least 1.7). The targets date from before the
  kinetic-model section, which doubles a replicate's cost; the default ``cartlib simulate``
  (every section) is measured with 2 workers as a figure without a target;
* 20 replicates of n = 5,000 with 2 workers: the peak memory of the whole process tree
  (command, scheduler, workers), sampled every 0.2 s (target: within 16 GB).

Each run is the command line in a subprocess, writing into a temporary folder. The machine's
load average is given with the figures (wall times depend on it). ``CARTLIB_BENCH_SIM_REPLICATES``
lowers the 1,000 replicates for a quick look (the rows then say how many ran).

``measure()`` returns the rows for ``scripts/bench.py``; run as a script it prints them.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import CLI, PAPER_SECTIONS, measured  # noqa: E402  (the process-tree sampler of make bench)

REPLICATES = int(os.environ.get("CARTLIB_BENCH_SIM_REPLICATES", "1000"))
TARGET_2_WORKERS_S = 180.0
TARGET_SPEEDUP = 1.7
TARGET_PEAK_GB = 16.0


def _simulate(folder: Path, replicates: int, n: int, workers: int, sections: str | None = None) -> tuple[float, int]:
    cmd = [CLI, "simulate", "--replicates", str(replicates), "--n", str(n), "--seed", "1",
           "--workers", str(workers), "--quiet", "--force", "--out", str(folder)]
    return measured(cmd + (["--sections", sections] if sections else []))


def _row(name: str, value: float, unit: str, target: float | None, met: bool) -> dict:
    return {"name": name, "value": value, "unit": unit, "target": target, "met": bool(met)}


def measure() -> list[dict]:
    """The figures of the module docstring, as rows (name, value, unit, target, met)."""
    with tempfile.TemporaryDirectory(prefix="cartlib-bench-sim-") as tmp:
        load_before = os.getloadavg()[0]
        two_s, _ = _simulate(Path(tmp) / "two", REPLICATES, 50, 2, ",".join(PAPER_SECTIONS))
        one_s, _ = _simulate(Path(tmp) / "one", REPLICATES, 50, 1, ",".join(PAPER_SECTIONS))
        every_s, _ = _simulate(Path(tmp) / "every", REPLICATES, 50, 2)
        same = (Path(tmp) / "two" / "summary.csv").read_bytes() == (Path(tmp) / "one" / "summary.csv").read_bytes()
        big_s, big_peak = _simulate(Path(tmp) / "big", 20, 5_000, 2)
        load_after = os.getloadavg()[0]
    speedup = one_s / two_s
    label = f"{REPLICATES:,} replicates of n=50 (paper's sections)"
    gb = big_peak / 1e9
    return [
        _row(f"simulate {label}, 2 workers (wall)", round(two_s, 1), "s", TARGET_2_WORKERS_S,
             two_s <= TARGET_2_WORKERS_S),
        _row(f"simulate {label}, 1 worker (wall)", round(one_s, 1), "s", None, True),
        _row(f"simulate {label}, speed-up of 2 workers over 1", round(speedup, 2), "x", TARGET_SPEEDUP,
             speedup >= TARGET_SPEEDUP),
        _row(f"simulate {label}, summary identical for 1 and 2 workers", int(same), "bool", 1, same),
        _row(f"simulate {REPLICATES:,} replicates of n=50 (every section), 2 workers (wall)", round(every_s, 1), "s",
             None, True),
        _row("simulate 20 replicates of n=5,000, 2 workers: peak memory of the process tree", round(gb, 2), "GB",
             TARGET_PEAK_GB, gb <= TARGET_PEAK_GB),
        _row("simulate 20 replicates of n=5,000, 2 workers (wall)", round(big_s, 1), "s", None, True),
        _row("load average (1 min) before the simulation bench", round(load_before, 2), "", None, True),
        _row("load average (1 min) after the simulation bench", round(load_after, 2), "", None, True),
    ]


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
