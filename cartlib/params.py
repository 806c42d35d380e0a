"""Analysis parameters: one schema, with defaults (the paper's choices) and checks.

A parameter set is a YAML mapping of names to plain values (``parameters/default.yaml``,
``parameters/sensitivity.yaml``). Unknown names are an error naming the name, so a typo
never silently falls back to a default.

>>> p = resolve({"km_ci": "log-log"})
>>> p["km_ci"], p["lloq"]
('log-log', 100.0)
>>> resolve({"km_cl": "log"})
Traceback (most recent call last):
...
cartlib.params.ParameterError: unknown parameter 'km_cl' (did you mean 'km_ci'?)
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from cartlib.derive import COVARIATES, DAYS_PER_MONTH
from cartlib.errors import format_number
from cartlib.validate import DAY_MAX, MAX_CONC


class ParameterError(ValueError):
    """A parameter set names an unknown parameter or gives a value of the wrong kind."""


@dataclass(frozen=True)
class Spec:
    """One parameter: its default, its check (returns the value as used, or raises
    :class:`ParameterError`), what it means and, in words, what values it accepts.

    >>> SCHEMA["screen_p"].allowed
    'number from 0 to 1'
    """

    default: Any
    check: Callable[[Any], Any]
    doc: str
    allowed: str


SEED_MAX = 2**32 - 1
"""Largest seed (numpy's legacy seeding and most tools take 32-bit seeds); day-valued
parameters share the study-day cap of the cohort rules, ``DAY_MAX``."""
MONTH_MAX = DAY_MAX / DAYS_PER_MONTH
"""Largest month-valued parameter: the study-day cap (100 years) in months."""
LIMIT_MAX = MAX_CONC
"""Largest concentration or lab limit (the cap on pk CONC of the cohort rules)."""
YAML_MAX_BYTES = 1 << 20
"""Largest parameter file read (1 MiB): parameter sets are a few hundred bytes."""
YAML_MAX_ALIASES = 100
"""Most ``*alias`` references a parameter file may hold (a few are handy; thousands are a bomb)."""
YAML_MAX_VALUES = 10_000
"""Most values a parameter document may stand for once aliases are expanded."""

KNOWN_COVARIATES = (*COVARIATES, "d28_mrd_neg", "bca_duration_days")
"""Covariate names the analysis table provides (the 0/1 covariates, day-28 MRD-negative CR and
BCA duration in days)."""


def _checker(allowed: str, check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    check.allowed = allowed
    return check


def _number(lo=None, hi=None, positive=False):
    """A finite number within [lo, hi]; ``positive`` makes the lower bound strict at 0."""
    low = "> 0" if positive else f"≥ {format_number(lo)}" if lo is not None else ""
    if lo is not None and hi is not None and not positive:
        allowed = f"number from {format_number(lo)} to {format_number(hi)}"
    else:
        allowed = " and ".join(x for x in ("number " + low if low else "number", f"≤ {format_number(hi)}" if hi else "") if x)

    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ParameterError(f"must be a number, got {_show(v)}")
        try:
            v = float(v)
        except OverflowError:  # an int beyond float range
            raise ParameterError(f"must be a finite {allowed}, got {_show(v)}") from None
        if not math.isfinite(v):
            raise ParameterError(f"must be finite ({allowed}), got {v}")
        if positive and v <= 0:
            raise ParameterError(f"must be > 0, got {v:g}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ParameterError(f"must be a {allowed}, got {v:g}")
        return v
    return _checker(allowed, check)


def _integer(lo: int, hi: int):
    allowed = f"whole number {format_number(lo)} to {format_number(hi)}"

    def check(v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ParameterError(f"must be a whole number, got {_show(v)}")
        if not lo <= v <= hi:
            raise ParameterError(f"must be a {allowed}, got {_show(v)}")
        return v
    return _checker(allowed, check)


def _choice(*options):
    def check(v):
        if not isinstance(v, str) or v not in options:
            raise ParameterError(f"must be one of {', '.join(options)}; got {_show(v)}")
        return v
    return _checker(f"one of: {', '.join(options)}", check)


AUC_INTERVALS_MAX = 20
"""Most partial AUC intervals a parameter set may ask for (each adds results keys)."""


def _day_intervals():
    """A list of [start, end] day pairs (0 ≤ start < end ≤ DAY_MAX), each once; may be empty."""
    allowed = (f"list of up to {AUC_INTERVALS_MAX} [start, end] day pairs, "
               f"0 ≤ start < end ≤ {format_number(DAY_MAX)}, each once")

    def check(v):
        if not isinstance(v, (list, tuple)):
            raise ParameterError(f"must be a {allowed}, got {_show(v)}")
        if len(v) > AUC_INTERVALS_MAX:
            raise ParameterError(f"has {len(v)} intervals; at most {AUC_INTERVALS_MAX} are accepted")
        out = []
        for pair in v:
            numbers = isinstance(pair, (list, tuple)) and len(pair) == 2 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in pair)
            try:
                ok = numbers and all(math.isfinite(float(x)) for x in pair) and 0 <= pair[0] < pair[1] <= DAY_MAX
            except OverflowError:  # an int beyond float range
                ok = False
            if not ok:
                raise ParameterError(f"must be a {allowed}; {_show(pair)} is not such a pair")
            out.append([float(pair[0]), float(pair[1])])
        if len({tuple(x) for x in out}) != len(out):
            raise ParameterError(f"names an interval twice: {_show(v)}")
        return out
    return _checker(allowed, check)


def _covariates(*, not_outcomes: tuple[str, ...] = ()):
    """A non-empty list of known covariate names, each once; ``not_outcomes`` are names that
    are the outcome of the models using the list (a model cannot use its own outcome)."""
    def check(v):
        if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
            raise ParameterError(f"must be a list of names, got {_show(v)}")
        if not v:
            raise ParameterError("must be a non-empty list of covariate names")
        unknown = [x for x in v if x not in KNOWN_COVARIATES]
        if unknown:
            close = difflib.get_close_matches(unknown[0], KNOWN_COVARIATES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(KNOWN_COVARIATES)}"
            raise ParameterError(f"has unknown covariate {_show(unknown[0])}{hint}")
        twice = sorted({x for x in v if v.count(x) > 1})
        if twice:
            raise ParameterError(f"names {', '.join(twice)} twice")
        outcome = [x for x in v if x in not_outcomes]
        if outcome:
            raise ParameterError(f"cannot use {outcome[0]!r}: it is the outcome of these models")
        return list(v)
    extra = f", not {' or '.join(not_outcomes)}" if not_outcomes else ""
    return _checker(f"list of covariate names (non-empty, each once{extra})", check)


def _optional_path(v):
    if v is None:
        return v
    if not isinstance(v, str):
        raise ParameterError(f"must be a path (text) or null, got {_show(v)}")
    if not v.strip():
        raise ParameterError("must be a non-empty path or null")
    if "\x00" in v:
        raise ParameterError("must be a path without NUL characters")
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise ParameterError(f"must be a path that is valid UTF-8 text, got {_show(v)}") from None
    return v


_checker("path of a cohort folder or .xlsx workbook, or null", _optional_path)


def _show(v: Any) -> str:
    """A value as a message shows it: its repr, cut at 60 characters."""
    text = repr(v)
    return text if len(text) <= 60 else text[:60] + "…"


COX_COVARIATES = [
    "female", "age_gt_10", "genrisk_high", "prior_hsct", "prior_cart", "preld_mrd_ge_1e-3",
    "crs_ge_3", "icans", "neutropenia_g4", "d28_mrd_neg", "hsct_after", "bca_duration_days",
]
SCRS_COVARIATES = ["female", "no_prior_hsct", "preld_mrd_lt_1e-3", "postld_mrd_lt_1e-3", "dose_lt_median"]
_TOX_OUTCOMES = ("crs_ge_3", "icans")


def _spec(default: Any, check: Callable[[Any], Any], doc: str) -> Spec:
    return Spec(default, check, doc, check.allowed)


SCHEMA: dict[str, Spec] = {
    "data": _spec(None, _optional_path, "cohort folder or .xlsx workbook; null = the bundled default cohort"),
    "lloq": _spec(100.0, _number(positive=True, hi=LIMIT_MAX), "qPCR lower limit of quantification, copies/µg DNA"),
    "auc_method": _spec("linear-up-log-down", _choice("linear-up-log-down", "linear"), "AUC integration rule (docs/NCA.md)"),
    "auc_end_day": _spec(28.0, _number(positive=True, hi=DAY_MAX), "end of the AUC interval, days"),
    "auc_intervals": _spec([[0.0, 28.0], [0.0, 90.0]], _day_intervals(),
                           "partial AUC intervals [start, end], days after infusion (docs/NCA.md)"),
    "expansion_min": _spec(1000.0, _number(lo=0, hi=LIMIT_MAX), "Cmax at or above which a patient had effective expansion"),
    "km_ci": _spec("plain", _choice("plain", "log", "log-log"), "Kaplan–Meier CI transform (R conf.type)"),
    "horizon_months": _spec(60.0, _number(positive=True, hi=MONTH_MAX), "time point of the survival and incidence rates"),
    "screen_p": _spec(0.2, _number(lo=0, hi=1), "univariable p below which a covariate enters the multivariable model"),
    "cox_covariates": _spec(COX_COVARIATES, _covariates(), "covariates of the univariable Cox screen"),
    "lfs_multivariable": _spec(["bca_duration_days", "female", "d28_mrd_neg"], _covariates(),
                               "covariates of the reported multivariable LFS model"),
    "os_multivariable": _spec(["no_prior_cart", "neutropenia_g4", "crs_ge_3", "icans", "hsct_after", "bca_duration_days"],
                              _covariates(), "covariates of the reported multivariable OS model"),
    "scrs_covariates": _spec(SCRS_COVARIATES, _covariates(not_outcomes=_TOX_OUTCOMES),
                             "covariates of the univariable logistic screen of grade-≥3 CRS"),
    "scrs_model1": _spec(["female", "no_prior_hsct", "preld_mrd_lt_1e-3", "dose_lt_median"],
                         _covariates(not_outcomes=_TOX_OUTCOMES), "Table 2, multivariable model 1"),
    "scrs_model2": _spec(["female", "no_prior_hsct", "postld_mrd_lt_1e-3", "dose_lt_median"],
                         _covariates(not_outcomes=_TOX_OUTCOMES), "Table 2, multivariable model 2"),
    "il6_uln": _spec(7.0, _number(lo=0, hi=LIMIT_MAX), "IL-6 upper limit of normal, pg/mL"),
    "corr_method": _spec("spearman", _choice("spearman", "pearson"), "correlation method for kinetics and BCA"),
    "kinetic_blq": _spec("m3", _choice("m3", "zero", "half_lloq", "drop"),
                         "BLQ samples in the kinetic-model likelihood: censored (m3), 0, LLOQ/2 or dropped"),
    "kinetic_tmax_max": _spec(60.0, _number(lo=1, hi=DAY_MAX), "upper bound of the kinetic model's Tmax, days"),
    "kinetic_exposure": _spec("nca", _choice("nca", "model"),
                              "Cmax and AUC0–28d of the exposure–response models: from NCA or from the kinetic model"),
    "mrd_low_cutoff": _spec(1e-4, _number(lo=0, hi=1), "MRD below this is a low tumour burden (transplant strata)"),
    "mrd_high_cutoff": _spec(1e-2, _number(lo=0, hi=1), "MRD at or above this is a high tumour burden (transplant strata)"),
    "landmark_day": _spec(180.0, _number(positive=True, hi=DAY_MAX), "landmark day of the transplant landmark analysis"),
    "seed": _spec(20250930, _integer(0, SEED_MAX), "seed of every random step (figure jitter); results use none"),
}


def defaults() -> dict[str, Any]:
    """The paper's parameter set (a fresh copy).

    >>> defaults()["auc_method"]
    'linear-up-log-down'
    """
    return {k: (list(s.default) if isinstance(s.default, list) else s.default) for k, s in SCHEMA.items()}


def resolve(values: dict[str, Any] | None = None, *, ignore_unknown: bool = False) -> dict[str, Any]:
    """Defaults overlaid with ``values``, every value checked; unknown names are an error.

    ``ignore_unknown`` lets a notebook pass its whole namespace (``globals()``) and keep only
    parameter names. All problems are reported together, in one line.

    >>> resolve({"landmark_day": float("nan")})
    Traceback (most recent call last):
    ...
    cartlib.params.ParameterError: parameter 'landmark_day' must be finite (number > 0 and ≤ 36,525), got nan
    """
    out = defaults()
    problems = []
    for key, value in (values or {}).items():
        if not isinstance(key, str) or key not in SCHEMA:
            if ignore_unknown:
                continue
            close = difflib.get_close_matches(key, SCHEMA, n=1) if isinstance(key, str) else []
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown parameter {_show(key)}{hint}")
            continue
        try:
            out[key] = SCHEMA[key].check(value)
        except ParameterError as exc:
            problems.append(f"parameter {key!r} {exc}")
    low, high = out["mrd_low_cutoff"], out["mrd_high_cutoff"]
    if not problems and not low < high:
        problems.append(f"parameter 'mrd_low_cutoff' ({low:g}) must be below 'mrd_high_cutoff' ({high:g})")
    if problems:
        raise ParameterError("; ".join(problems))
    return out


def _display(path: Path) -> str:
    """A path as text that can always be printed (undecodable bytes escaped)."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def _expanded_size(node: yaml.Node, memo: dict[int, int], limit: int) -> int:
    """Number of values ``node`` stands for once its aliases are expanded (stops past ``limit``)."""
    key = id(node)
    if key in memo:
        if memo[key] < 0:
            raise ParameterError("refers to itself through an alias")
        return memo[key]
    memo[key] = -1
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    total = 1
    for child in children:
        total += _expanded_size(child, memo, limit)
        if total > limit:
            break
    memo[key] = total
    return total


def _read_yaml(text: str, where: str) -> Any:
    """YAML text to Python values (safe tags only), refusing alias bombs; one-line errors."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        aliases = sum(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=yaml.SafeLoader))
        if aliases > YAML_MAX_ALIASES:
            raise ParameterError(f"{where} uses {aliases} aliases; at most {YAML_MAX_ALIASES} are accepted")
        if _expanded_size(node, {}, YAML_MAX_VALUES) > YAML_MAX_VALUES:
            raise ParameterError(f"{where} expands to more than {YAML_MAX_VALUES:,} values through aliases; "
                                 "write the values out")
        return loader.construct_document(node)
    except ParameterError as exc:
        if str(exc).startswith(where):
            raise
        raise ParameterError(f"{where} {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = " ".join(str(exc.problem or exc.context or "not valid YAML").split())
        raise ParameterError(f"cannot read {where}: {_cut(problem)}{at}") from None
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        # ValueError: e.g. an integer of more digits than Python converts; RecursionError: deep nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else " ".join(str(exc).split())
        raise ParameterError(f"cannot read {where}: {_cut(reason)}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a parameter YAML file (a mapping), without applying defaults.

    The file must be a regular UTF-8 file of at most :data:`YAML_MAX_BYTES` bytes, hold plain
    YAML (no Python tags) and at most :data:`YAML_MAX_ALIASES` aliases; any problem is one
    line naming the file.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d, "p.yaml")
    ...     _ = p.write_text("km_ci: [log")
    ...     load_yaml(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cartlib.params.ParameterError: cannot read parameter file .../p.yaml: expected ',' or ']', but got '<stream end>' (line 1, column 12)
    """
    path = Path(path)
    where = f"parameter file {_display(path)}"
    try:
        if path.is_dir():
            raise ParameterError(f"cannot read {where}: it is a folder, not a file")
        if path.exists() and not path.is_file():
            raise ParameterError(f"cannot read {where}: not a regular file")
        with open(path, "rb") as f:
            data = f.read(YAML_MAX_BYTES + 1)
    except OSError as exc:
        raise ParameterError(f"cannot read {where}: {exc.strerror or exc}") from None
    if len(data) > YAML_MAX_BYTES:
        raise ParameterError(f"{where} is larger than {YAML_MAX_BYTES:,} bytes; a parameter file is a few lines")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParameterError(f"{where} is not UTF-8 text (first bad byte at offset {exc.start}); "
                             "re-save it as UTF-8") from None
    data = _read_yaml(text, where)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParameterError(f"{where} must hold a mapping of names to values")
    return data


def parse_set(assignments: list[str]) -> dict[str, Any]:
    """Parse ``--set KEY=VALUE`` strings; VALUE is read as YAML (numbers, lists, null).

    >>> parse_set(["km_ci=log", "landmark_day=100", "lfs_multivariable=[female]"])
    {'km_ci': 'log', 'landmark_day': 100, 'lfs_multivariable': ['female']}
    >>> parse_set(["lloq=[1"])
    Traceback (most recent call last):
    ...
    cartlib.params.ParameterError: cannot read --set 'lloq': expected ',' or ']', but got '<stream end>' (line 1, column 3)
    """
    out = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--set expects KEY=VALUE, got {_show(item)}")
        if len(raw) > YAML_MAX_BYTES:
            raise ParameterError(f"--set {_show(key.strip())}: the value is longer than {YAML_MAX_BYTES:,} characters")
        out[key.strip()] = _read_yaml(raw, f"--set {_show(key.strip())}")
    return out


def mrd_label(cutoff: float) -> str:
    """Key-friendly text of an MRD cut-off, as the results keys spell it.

    >>> mrd_label(1e-4), mrd_label(0.001), mrd_label(0.05)
    ('1e-4', '1e-3', '5e-2')
    """
    mantissa, exponent = f"{cutoff:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"
