"""Scenarios: the generative model's parameters, changed by name, plus the study size.

A scenario file (``parameters/scenarios/*.yaml``, or any YAML file) holds::

    description: one line saying what the scenario changes
    n: 50                  # optional: patients per replicate (the command line's --n wins)
    model:                 # optional: values of parameters/synthetic.yaml, by their names
      outcomes:
        relapse_female: 0.0
    analysis:              # optional: analysis parameters (parameters/default.yaml names)
      landmark_day: 120

Every name must exist: a model name that ``parameters/synthetic.yaml`` does not have, or an
analysis parameter ``cartlib run`` does not know, is refused with its name, as ``--set`` is.
``--set model.outcomes.relapse_female=0`` changes one model value on top of the scenario;
``--set landmark_day=120`` one analysis parameter.
"""
from __future__ import annotations

import copy
import difflib
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..params import ParameterError, load_yaml, resolve
from ..resources import parameters_dir
from ..synth.model import load_parameters

SCENARIO_KEYS = ("description", "n", "model", "analysis")
MAX_N = 1_000_000


def scenarios_dir() -> Path:
    """The folder of the bundled scenario files.

    >>> (scenarios_dir() / "default.yaml").is_file()
    True
    """
    return parameters_dir() / "scenarios"


def bundled_scenarios() -> list[str]:
    """Names of the bundled scenarios (file names without ``.yaml``).

    >>> "hsct_no_effect" in bundled_scenarios()
    True
    """
    return sorted(p.stem for p in scenarios_dir().glob("*.yaml"))


@dataclass(frozen=True)
class Scenario:
    """A generative model (nested dict as in ``synthetic.yaml``), analysis parameters and n.

    >>> s = load_scenario(None)
    >>> s.name, s.n, s.model["outcomes"]["relapse_female"] == load_parameters()["outcomes"]["relapse_female"]
    ('default', None, True)
    """

    name: str
    description: str
    model: dict[str, Any]
    analysis: dict[str, Any] = field(default_factory=dict)
    n: int | None = None
    source: str = ""   # the file it was read from ("" for the unchanged model)

    def with_overrides(self, assignments: dict[str, Any]) -> "Scenario":
        """This scenario with ``--set`` values: ``model.A.B=v`` for the model, else analysis.

        >>> s = load_scenario(None).with_overrides({"model.outcomes.relapse_female": 0.0})
        >>> s.model["outcomes"]["relapse_female"]
        0.0
        >>> load_scenario(None).with_overrides({"model.outcomes.nope": 1})
        Traceback (most recent call last):
        ...
        cartlib.params.ParameterError: unknown model parameter 'outcomes.nope'; the names are those of parameters/synthetic.yaml
        """
        model = copy.deepcopy(self.model)
        analysis = dict(self.analysis)
        problems: list[str] = []
        for key, value in assignments.items():
            if key.startswith("model."):
                _assign(model, key[len("model."):].split("."), value, problems)
            else:
                analysis[key] = value
        _check_analysis(analysis, problems)
        if problems:
            raise ParameterError("; ".join(problems))
        return Scenario(self.name, self.description, model, analysis, self.n, self.source)


def _assign(model: dict, path: list[str], value: Any, problems: list[str]) -> None:
    """Set ``model[path]`` to ``value`` if the name exists and the value has the same shape."""
    node = model
    for depth, part in enumerate(path):
        name = ".".join(path[: depth + 1])
        if not isinstance(node, dict) or part not in node:
            options = list(node) if isinstance(node, dict) else []
            close = difflib.get_close_matches(part, options, n=1)
            hint = f" (did you mean {'.'.join(path[:depth] + [close[0]])!r}?)" if close else ""
            problems.append(f"unknown model parameter {name!r}{hint}; the names are those of "
                            "parameters/synthetic.yaml")
            return
        if depth < len(path) - 1:
            node = node[part]
    old = node[path[-1]]
    if isinstance(old, dict):
        problems.append(f"model parameter {'.'.join(path)!r} is a group; set one of its names "
                        f"({', '.join(sorted(old))})")
    elif _is_number(old) and not _is_number(value):
        problems.append(f"model parameter {'.'.join(path)!r} must be a number, got {value!r}")
    elif isinstance(old, list) and not (isinstance(value, list) and len(value) == len(old)
                                        and all(_is_number(v) for v in value)):
        problems.append(f"model parameter {'.'.join(path)!r} must be a list of {len(old)} numbers, got {value!r}")
    else:
        node[path[-1]] = float(value) if isinstance(old, float) and _is_number(value) else value


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check_analysis(analysis: dict[str, Any], problems: list[str]) -> None:
    try:
        resolve(analysis)
    except ParameterError as exc:
        problems.append(str(exc))


def load_scenario(path: str | Path | None, base: dict[str, Any] | None = None) -> Scenario:
    """Read a scenario file (None: the model as ``synthetic.yaml`` gives it, unchanged).

    ``path`` may also name a bundled scenario (``hsct_no_effect``; see :func:`bundled_scenarios`).
    Unknown top-level names, model names and analysis parameters are refused together, in one
    :class:`~cartlib.params.ParameterError` naming each.

    >>> s = load_scenario("hsct_no_effect")
    >>> s.model["outcomes"]["relapse_hsct"]
    0.0
    """
    model = copy.deepcopy(base) if base is not None else load_parameters()
    if path is None:
        return Scenario("default", "the generative model as parameters/synthetic.yaml gives it", model)
    file = Path(path)
    if not file.exists() and not file.suffix and file.name == str(path):
        if not (scenarios_dir() / f"{file.name}.yaml").is_file():
            raise ParameterError(f"scenario {str(path)!r} is neither a file nor a bundled scenario "
                                 f"({', '.join(bundled_scenarios())})")
        file = scenarios_dir() / f"{file.name}.yaml"
    data = load_yaml(file)
    where = f"scenario {file.name}"
    problems = [f"{where}: unknown name {k!r} (allowed: {', '.join(SCENARIO_KEYS)})"
                for k in data if k not in SCENARIO_KEYS]
    n = data.get("n")
    if n is not None and not (isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_N):
        problems.append(f"{where}: n must be a whole number from 1 to {MAX_N:,}, got {n!r}")
    changes = data.get("model") or {}
    analysis = data.get("analysis") or {}
    for name, value in (("model", changes), ("analysis", analysis)):
        if not isinstance(value, dict):
            problems.append(f"{where}: {name} must be a mapping of names to values")
    if problems:
        raise ParameterError("; ".join(problems))
    flat = {}
    _leaves(changes, [], flat)
    for dotted, value in flat.items():
        _assign(model, dotted.split("."), value, problems)
    _check_analysis(analysis, problems)
    if problems:
        raise ParameterError("; ".join(f"{where}: {p}" for p in problems))
    return Scenario(file.stem, str(data.get("description", "")), model, dict(analysis), n, str(file))


def _leaves(tree: dict, path: list[str], out: dict[str, Any]) -> None:
    """Dotted names of the values a scenario's ``model`` mapping sets."""
    for key, value in tree.items():
        if isinstance(value, dict):
            _leaves(value, path + [str(key)], out)
        else:
            out[".".join(path + [str(key)])] = value
