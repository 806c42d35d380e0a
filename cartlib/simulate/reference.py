"""The bundled reference study: large simulations of the unchanged model, shipped as small tables.

What the simulation notebook shows by default does not depend on the cohort: it comes from the
generative model (``parameters/synthetic.yaml``). So instead of a few rough live replicates on
every run, cartlib ships the results of large runs made once by
``scripts/build_simulation_reference.py`` (in the repository), in ``cartlib/data/simulation_reference/``:

* the **study**: replicates of n = 50 of the unchanged model with the paper's results sections
  (sampling distributions, the model check);
* the **power grid**: the paper's findings over study sizes (and effect scenarios);
* the **lesson**: the ``hsct_no_effect`` scenario, transplant section only (immortal-time bias).

Each loader returns an object with the vocabulary of the live results
(:class:`~cartlib.simulate.SimulationResult`, :class:`~cartlib.simulate.PowerResult`):
``summary``, ``model_check``, ``replicate_values()``, ``power``, ``sample_size``, ``plot()``,
plus ``provenance`` (replicates, n, seed, scenario, cartlib version, the build command). The
per-replicate values shipped are those of a few keys (the ones the notebook plots and the headline
figures), plus every key of the first replicates of each part (``first_replicates()``), which a
test recomputes with today's code to tell when the reference is stale.

>>> study = reference_study()
>>> study.replicates >= 1, study.n, study.scenario
(True, 50, 'default')
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from ..resources import simulation_reference_dir
from .power import PowerResult

PROVENANCE = "reference.json"
PARTS = ("study", "grid", "lesson")
# the files of each part (``<part>_<name>.csv``); "first_replicates" holds full results rows
PART_FILES = {"study": ("summary", "model_check", "values", "first_replicates"),
              "grid": ("power", "sample_size", "values", "first_replicates"),
              "lesson": ("summary", "values", "first_replicates")}
BUILD_SCRIPT = "scripts/build_simulation_reference.py"
_BOOLEAN_COLUMNS = ("outside", "headline", "feasible")


def model_fingerprint(model: dict[str, Any]) -> str:
    """SHA-256 of a generative model (the nested mapping of a scenario), key order aside.

    >>> model_fingerprint({"a": 1, "b": {"c": 2.0}}) == model_fingerprint({"b": {"c": 2.0}, "a": 1})
    True
    """
    return hashlib.sha256(json.dumps(model, sort_keys=True).encode("utf-8")).hexdigest()


def read_table(path: Path) -> pd.DataFrame:
    """A reference CSV as written by the build (empty cells are NaN, ``true``/``false`` are bool)."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""], true_values=["true"],
                        false_values=["false"])
    for column in ("key", "where", "error", "scenario", "finding", "n_for_80_text", "what"):
        if column in frame.columns:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    if "where" in frame.columns:
        frame["where"] = frame["where"].fillna("")
    return frame


@dataclass(frozen=True)
class ReferenceStudy:
    """A bundled simulation study (the vocabulary of :class:`~cartlib.simulate.SimulationResult`).

    Attributes
    ----------
    part : str
        ``"study"`` (the paper's sections, unchanged model) or ``"lesson"`` (``hsct_no_effect``).
    replicates, analysed, failed, n, seed : int
        As in a live result; ``seed`` is the study seed of the build.
    scenario : str
        The scenario name (``default``: the model of ``synthetic.yaml`` unchanged).
    summary : pandas.DataFrame
        One row per results key, the columns of ``summary.csv`` (6 significant digits).
    model_check : pandas.DataFrame
        Every paper figure beside its simulated central 95 % (empty for the lesson).
    provenance : dict
        How it was built: replicates, n, seed, scenario, sections, cartlib version, command.
    folder : pathlib.Path
        Where the files were read from.

    Examples
    --------
    >>> study = reference_study()
    >>> sorted(set(study.summary.columns) & {"key", "p2_5", "p97_5", "power"})
    ['key', 'p2_5', 'p97_5', 'power']
    >>> int(study.replicate_values()["replicate"].iloc[-1]) == study.replicates - 1
    True
    """

    part: str
    replicates: int
    analysed: int
    failed: int
    n: int
    seed: int
    scenario: str
    summary: pd.DataFrame = field(repr=False)
    model_check: pd.DataFrame = field(repr=False)
    provenance: dict[str, Any] = field(repr=False)
    folder: Path = field(repr=False)

    def replicate_values(self) -> pd.DataFrame:
        """Every replicate's values of the keys shipped per replicate (one row per replicate,
        sorted by index; columns ``replicate``, ``seed``, ``error`` and the keys)."""
        return read_table(self.folder / f"{self.part}_values.csv")

    def first_replicates(self) -> pd.DataFrame:
        """The full results of the first replicates (every key), as ``replicate_values`` shapes them."""
        return read_table(self.folder / f"{self.part}_first_replicates.csv")

    @property
    def sections(self) -> tuple[str, ...]:
        """The results sections every replicate ran."""
        return tuple(self.provenance[self.part]["sections"])

    def describe(self) -> str:
        """One sentence saying what this is and how it was made (for the notebook)."""
        return describe_part(self.provenance, self.part)


@dataclass(frozen=True)
class ReferencePower(PowerResult):
    """The bundled power grid (the vocabulary of :class:`~cartlib.simulate.PowerResult`:
    ``power``, ``sample_size``, ``plot()``), with ``replicates`` per grid cell, ``ns``,
    ``scenarios`` and ``provenance``.

    Examples
    --------
    >>> grid = reference_power()
    >>> grid.ns == sorted(set(grid.power["n"])), "n_for_80_text" in grid.sample_size.columns
    (True, True)
    """

    replicates: int = 0
    ns: list[int] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict, repr=False)
    folder: Path | None = field(default=None, repr=False)

    def replicate_values(self) -> pd.DataFrame:
        """Every replicate's p-values of the findings: ``scenario``, ``n``, ``replicate``, ``seed``,
        ``error`` and one column per finding's results key."""
        return read_table(self.folder / "grid_values.csv")

    def first_replicates(self) -> pd.DataFrame:
        """The full results (every key of the findings' sections) of the first replicates of the
        smallest study size of each scenario (columns ``scenario`` and ``n`` first)."""
        return read_table(self.folder / "grid_first_replicates.csv")

    def describe(self) -> str:
        """One sentence saying what this is and how it was made (for the notebook)."""
        return describe_part(self.provenance, "grid")


def describe_part(provenance: dict[str, Any], part: str) -> str:
    """The plain sentence the notebook prints about a bundled part.

    >>> describe_part({"seed": 3, "command": "python x.py", "grid": {"replicates": 2, "ns": [50, 100],
    ...                "scenarios": ["default"]}}, "grid")  # doctest: +NORMALIZE_WHITESPACE
    'Bundled reference: 2 studies per study size (n = 50, 100; scenario default), seed 3, built by
    `python x.py` (the full command is in its reference.json); the same for every cohort, because it
    comes from the generative model, not from the data.'
    """
    info = provenance[part]
    if part == "grid":
        what = (f"{info['replicates']:,} studies per study size (n = {', '.join(str(n) for n in info['ns'])}; "
                f"scenario {', '.join(info['scenarios'])})")
    else:
        what = f"{info['replicates']:,} studies of {info['n']} patients (scenario {info['scenario']})"
    return (f"Bundled reference: {what}, seed {provenance['seed']}, built by `{provenance['command'].split(' --')[0]}` "
            "(the full command is in its reference.json); the same for every cohort, because it comes "
            "from the generative model, not from the data.")


@functools.lru_cache(maxsize=4)
def _provenance(folder: Path) -> dict[str, Any]:
    path = folder / PROVENANCE
    if not path.is_file():
        raise FileNotFoundError(f"the bundled simulation reference is missing ({path}); reinstall cartlib, or "
                                f"rebuild it with {BUILD_SCRIPT}")
    return json.loads(path.read_text(encoding="utf-8"))


def load_provenance(folder: str | Path | None = None) -> dict[str, Any]:
    """How the bundled reference was built (``reference.json``).

    Parameters
    ----------
    folder : path, optional
        A reference folder (default: the one shipped in the package).

    Examples
    --------
    >>> p = load_provenance()
    >>> sorted(p)
    ['alpha', 'cartlib', 'command', 'grid', 'lesson', 'seed', 'study']
    >>> p["study"]["n"], p["lesson"]["scenario"]
    (50, 'hsct_no_effect')
    """
    return copy.deepcopy(_provenance(Path(folder) if folder else simulation_reference_dir()))


def _refuse(name: str, given: Any, reference: Any, counter: str) -> None:
    raise ValueError(f"{name} = {given!r} differs from the bundled reference ({name} = {reference!r}), which is "
                     f"shown when {counter} = 0: set {counter} above 0 to run a live study with your {name}, "
                     f"or leave {name} at {reference!r}")


def _check_scenario(scenario: str | None, reference: str, counter: str) -> None:
    if scenario is not None and str(scenario) != reference:
        _refuse("scenario", scenario, None, counter)


def _study(part: str, folder: Path | None) -> ReferenceStudy:
    folder = Path(folder) if folder else simulation_reference_dir()
    provenance = load_provenance(folder)
    info = provenance[part]
    summary = read_table(folder / f"{part}_summary.csv")
    check_file = folder / f"{part}_model_check.csv"
    check = read_table(check_file) if check_file.is_file() else summary.iloc[0:0]
    return ReferenceStudy(part, int(info["replicates"]), int(info["analysed"]), int(info["failed"]), int(info["n"]),
                          int(provenance["seed"]), str(info["scenario"]), summary, check, provenance, folder)


def reference_study(n: int = 50, scenario: str | None = None, folder: str | Path | None = None) -> ReferenceStudy:
    """The bundled study of the unchanged model: sampling distributions and the model check.

    Parameters
    ----------
    n : int, default 50
        The study size asked for; it must be the reference's (50).
    scenario : str, optional
        The scenario asked for; None or ``"default"`` (the reference's).
    folder : path, optional
        A reference folder (default: the one shipped in the package).

    Raises
    ------
    ValueError
        ``n`` or ``scenario`` differs from the reference (then run a live study instead).

    Examples
    --------
    >>> s = reference_study()
    >>> s.analysed + s.failed == s.replicates, bool(s.model_check["outside"].dtype == bool)
    (True, True)
    >>> reference_study(n=100)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: n = 100 differs from the bundled reference (n = 50), which is shown when replicates = 0: ...
    """
    result = _study("study", folder)
    if int(n) != result.n:
        _refuse("n", n, result.n, "replicates")
    _check_scenario(scenario, result.scenario, "replicates")
    return result


def reference_lesson(n: int = 50, folder: str | Path | None = None) -> ReferenceStudy:
    """The bundled immortal-time lesson (``hsct_no_effect``, transplant section only).

    Raises
    ------
    ValueError
        ``n`` differs from the reference's.

    Examples
    --------
    >>> lesson = reference_lesson()
    >>> lesson.scenario, lesson.sections
    ('hsct_no_effect', ('transplant',))
    """
    result = _study("lesson", folder)
    if int(n) != result.n:
        _refuse("n", n, result.n, "lesson_replicates")
    return result


def reference_power(grid_n: Sequence[int] | None = None, scenario: str | None = None,
                    folder: str | Path | None = None) -> ReferencePower:
    """The bundled power grid: power of the paper's findings per study size, n for 80 % power.

    Parameters
    ----------
    grid_n : sequence of int, optional
        The study sizes asked for; None or the reference's.
    scenario : str, optional
        One of the reference grid's scenarios (then only its rows); None: every scenario it holds.
    folder : path, optional
        A reference folder (default: the one shipped in the package).

    Raises
    ------
    ValueError
        ``grid_n`` differs from the reference's, or ``scenario`` is not one of its scenarios.

    Examples
    --------
    >>> grid = reference_power()
    >>> set(grid.sample_size["finding"]) <= set(grid.power["finding"]), grid.replicates >= 1
    (True, True)
    """
    folder = Path(folder) if folder else simulation_reference_dir()
    provenance = load_provenance(folder)
    info = provenance["grid"]
    ns = [int(n) for n in info["ns"]]
    if grid_n is not None and sorted({int(n) for n in grid_n}) != ns:
        _refuse("grid_n", list(grid_n), ns, "grid_replicates")
    scenarios = list(info["scenarios"])
    power = read_table(folder / "grid_power.csv")
    sizes = read_table(folder / "grid_sample_size.csv")
    if scenario is not None:
        if str(scenario) not in scenarios:
            _refuse("scenario", scenario, None, "grid_replicates")
        scenarios = [str(scenario)]
        power = power[power["scenario"] == scenario].reset_index(drop=True)
        sizes = sizes[sizes["scenario"] == scenario].reset_index(drop=True)
    return ReferencePower(None, power, sizes, int(info["replicates"]), ns, scenarios, provenance, folder)
