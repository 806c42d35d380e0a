"""Recording results.json keys from notebooks (scrapbook is unmaintained; this is all we need).

Values are normalised so that the same input gives byte-identical JSON: numbers are
rounded to 10 significant digits (far below any reported precision, far above the
last-bit noise of floating point), NaN/inf/None become ``null``, numpy scalars become
Python numbers and keys are written sorted.

>>> rec = Recorder(None, section="cohort")
>>> rec.record({"cohort.n": 50, "cohort.dose_median": 3.6800000000000006})
>>> rec.values
{'cohort.dose_median': 3.68, 'cohort.n': 50}
>>> print(dumps({"b": float("nan"), "a": 0.1 + 0.2}), end="")
{
  "a": 0.3,
  "b": null
}
"""
from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path
from typing import Any, Mapping

SIGNIFICANT_DIGITS = 10


def normalise(value: Any) -> int | float | None:
    """A JSON-safe, rounded number (or None) for one results value."""
    if value is None:
        return None
    if isinstance(value, (bool,)) or (hasattr(value, "dtype") and value.dtype == bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        if not math.isfinite(v):
            return None
        return float(f"{v:.{SIGNIFICANT_DIGITS}g}")
    raise TypeError(f"results values must be numbers or None, got {type(value).__name__}: {value!r}")


def dumps(values: Mapping[str, Any]) -> str:
    """Deterministic JSON text of a flat key -> number mapping."""
    clean = {str(k): normalise(v) for k, v in values.items()}
    return json.dumps(clean, indent=2, sort_keys=True, allow_nan=False) + "\n"


class Recorder:
    """Collects one notebook's results keys and writes them to ``path`` (JSON) as it goes.

    ``path`` None keeps the values in memory only (an interactive session or the committed
    teaching notebooks). Every key must start with ``section + "."``.
    """

    def __init__(self, path: str | os.PathLike | None, section: str):
        self.path = Path(path) if path else None
        self.section = section
        self.values: dict[str, int | float | None] = {}

    def record(self, values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            if not key.startswith(self.section + "."):
                raise ValueError(f"key {key!r} does not belong to section {self.section!r}")
            self.values[key] = normalise(value)
        self.values = dict(sorted(self.values.items()))
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(dumps(self.values), encoding="utf-8")

    def show(self, keys: list[str] | None = None, digits: int = 4):
        """The recorded values as a two-column table (fixed rounding, stable for nbval)."""
        import pandas as pd

        rows = [(k, format_value(v, digits)) for k, v in self.values.items() if keys is None or k in keys]
        return pd.DataFrame(rows, columns=["key", "value"]).set_index("key")


def format_value(v: int | float | None, digits: int = 4) -> str:
    """Fixed-precision text of a results value: integers as is, others to ``digits`` significant digits.

    Values of 1,000 or more are shown as whole numbers (a Cmax of 30,860 copies/µg, not 3.086e+04).

    >>> format_value(30860.4), format_value(0.74912345), format_value(None), format_value(49)
    ('30860', '0.7491', 'null', '49')
    """
    if v is None:
        return "null"
    if isinstance(v, int):
        return str(v)
    if abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def merge(paths: list[str | os.PathLike]) -> dict[str, int | float | None]:
    """Merge several sections' JSON files into one mapping; a key recorded twice is an error."""
    merged: dict[str, int | float | None] = {}
    for p in paths:
        for key, value in json.loads(Path(p).read_text(encoding="utf-8")).items():
            if key in merged:
                raise ValueError(f"results key {key!r} recorded by more than one notebook")
            merged[key] = value
    return dict(sorted(merged.items()))
