"""The simulation folder: its settings, the replicate results as Parquet parts, and the rules
for starting, continuing (``--resume``) or replacing it.

Layout of ``--out DIR``::

    simulation.json          the settings (n, seed, scenario, model, analysis, sections)
    replicates/part-<first>-<last>.parquet   one file per finished chunk (written atomically)
    summary.csv, summary.json, model_check.csv, errors.csv   written when every replicate is in

A part has one row per replicate: ``replicate`` (0-based index), ``seed`` (the cohort seed),
``error`` (null, or what the replicate raised) and one float64 column per results key (NaN where
not estimable). Parts are written whole (temporary file, then rename), so a stopped run leaves
only complete parts, and ``--resume`` runs the replicates no part holds.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..atomic import write_file
from ..outdir import HOUSEKEEPING_ENTRIES, PathError, shown

SETTINGS = "simulation.json"
PARTS = "replicates"
OUTPUTS = frozenset({"summary.csv", "summary.json", "model_check.csv", "errors.csv"})
ENTRIES = frozenset({SETTINGS, PARTS}) | OUTPUTS
FIXED_COLUMNS = ("replicate", "seed", "error")
_PART = re.compile(r"^part-(\d+)-(\d+)\.parquet$")
# settings that must match for --resume to continue a folder (replicates may grow)
SAME_FOR_RESUME = ("n", "seed", "model", "analysis", "sections")


def is_simulation_folder(path: Path) -> bool:
    """True for a folder written by ``cartlib simulate`` (its ``simulation.json`` names cartlib
    and it holds nothing else but what a simulation writes).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> write_settings(d, {"n": 5})
    >>> is_simulation_folder(d)
    True
    """
    return is_own_folder(path, SETTINGS, ENTRIES)


def is_own_folder(path: Path, settings_file: str, entries: frozenset[str]) -> bool:
    """True when ``path`` holds a ``settings_file`` written by cartlib and nothing but ``entries``
    (and the files file managers add): a folder a simulation command may replace or resume."""
    try:
        settings = json.loads((path / settings_file).read_text(encoding="utf-8"))
        names = {p.name for p in path.iterdir()}
    except (OSError, ValueError):
        return False
    return isinstance(settings, dict) and "cartlib" in settings and names <= entries | HOUSEKEEPING_ENTRIES


def read_settings(path: Path) -> dict[str, Any]:
    """The settings a simulation folder was started with."""
    return json.loads((path / SETTINGS).read_text(encoding="utf-8"))


def write_settings(path: Path, settings: dict[str, Any]) -> None:
    """Write ``simulation.json`` atomically (sorted keys, so the same settings give the same bytes)."""
    data = {"cartlib": __version__, **settings}
    write_file(path / SETTINGS, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def settings_conflict(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why a folder started with ``old`` settings cannot be continued with ``new`` ones, or None.

    >>> settings_conflict({"n": 50, "seed": 1}, {"n": 100, "seed": 1})
    'n was 50, now 100'
    """
    for name in SAME_FOR_RESUME:
        if json.dumps(old.get(name), sort_keys=True) != json.dumps(new.get(name), sort_keys=True):
            was, now = old.get(name), new.get(name)
            if isinstance(was, dict) or isinstance(now, dict):
                return f"the {name} parameters differ"
            return f"{name} was {was}, now {now}"
    return None


def part_files(path: Path) -> list[Path]:
    """The finished parts, in replicate order."""
    folder = path / PARTS
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _PART.match(p.name)), key=lambda p: int(_PART.match(p.name)[1]))


def done_replicates(path: Path) -> set[int]:
    """Indices of the replicates some part already holds (read from the parts' index column)."""
    done: set[int] = set()
    for part in part_files(path):
        done.update(pq.read_table(part, columns=["replicate"]).column("replicate").to_pylist())
    return done


def records_table(records: list[dict[str, Any]]) -> pa.Table:
    """One chunk's replicate records as an Arrow table (keys as sorted float64 columns).

    >>> t = records_table([{"replicate": 0, "seed": 9, "error": None, "values": {"b": 1.0, "a": None}}])
    >>> t.column_names
    ['replicate', 'seed', 'error', 'a', 'b']
    """
    keys = sorted({k for r in records for k in r["values"]})
    columns: dict[str, pa.Array] = {
        "replicate": pa.array([r["replicate"] for r in records], pa.int64()),
        "seed": pa.array([r["seed"] for r in records], pa.int64()),
        "error": pa.array([r["error"] for r in records], pa.string()),
    }
    for key in keys:
        values = [r["values"].get(key) for r in records]
        columns[key] = pa.array([float("nan") if v is None else float(v) for v in values], pa.float64())
    return pa.table(columns)


def write_part(path: Path, records: list[dict[str, Any]]) -> Path:
    """Write one finished chunk as ``replicates/part-<first>-<last>.parquet`` (atomically)."""
    first, last = records[0]["replicate"], records[-1]["replicate"]
    sink = pa.BufferOutputStream()
    pq.write_table(records_table(records), sink, compression="zstd")
    target = path / PARTS / f"part-{first:07d}-{last:07d}.parquet"
    write_file(target, sink.getvalue().to_pybytes())
    return target


def read_replicates(path: Path, replicates: int | None = None) -> pd.DataFrame:
    """Every replicate of a simulation folder, one row each, sorted by replicate index
    (the first ``replicates`` only, when given); a key missing from a part is NaN there.

    Raises
    ------
    PathError
        A part cannot be read (named in the message).
    """
    frames = []
    for part in part_files(path):
        try:
            frames.append(pq.read_table(part).to_pandas())
        except (OSError, pa.ArrowException) as exc:
            raise PathError(f"cannot read {shown(part)}: {exc}; remove it and run again with --resume") from None
    if not frames:
        return pd.DataFrame(columns=list(FIXED_COLUMNS))
    data = pd.concat(frames, ignore_index=True, sort=False)
    data = data.drop_duplicates("replicate", keep="first")
    if replicates is not None:
        data = data[data["replicate"] < replicates]
    keys = sorted(c for c in data.columns if c not in FIXED_COLUMNS)
    return data.sort_values("replicate", kind="stable")[list(FIXED_COLUMNS) + keys].reset_index(drop=True)
