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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml


class ParameterError(ValueError):
    """A parameter set names an unknown parameter or gives a value of the wrong kind."""


@dataclass(frozen=True)
class Spec:
    default: Any
    check: Callable[[Any], Any]
    doc: str


def _number(lo=None, hi=None, positive=False):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ParameterError(f"must be a number, got {v!r}")
        v = float(v)
        if positive and v <= 0:
            raise ParameterError(f"must be > 0, got {v}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ParameterError(f"must be within [{lo}, {hi}], got {v}")
        return v
    return check


def _integer(lo=None):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ParameterError(f"must be a whole number, got {v!r}")
        if lo is not None and v < lo:
            raise ParameterError(f"must be ≥ {lo}, got {v}")
        return v
    return check


def _choice(*options):
    def check(v):
        if v not in options:
            raise ParameterError(f"must be one of {', '.join(options)}; got {v!r}")
        return v
    return check


def _str_list(v):
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        raise ParameterError(f"must be a list of names, got {v!r}")
    return list(v)


def _optional_path(v):
    if v is not None and not isinstance(v, str):
        raise ParameterError(f"must be a path (text) or null, got {v!r}")
    return v


COX_COVARIATES = [
    "female", "age_gt_10", "genrisk_high", "prior_hsct", "prior_cart", "preld_mrd_ge_1e-3",
    "crs_ge_3", "icans", "neutropenia_g4", "d28_mrd_neg", "hsct_after", "bca_duration_days",
]
SCRS_COVARIATES = ["female", "no_prior_hsct", "preld_mrd_lt_1e-3", "postld_mrd_lt_1e-3", "dose_lt_median"]

SCHEMA: dict[str, Spec] = {
    "data": Spec(None, _optional_path, "cohort folder or .xlsx workbook; null = the bundled default cohort"),
    "lloq": Spec(100.0, _number(positive=True), "qPCR lower limit of quantification, copies/µg DNA"),
    "auc_method": Spec("linear-up-log-down", _choice("linear-up-log-down", "linear"), "AUC integration rule (PK_NCA.md)"),
    "auc_end_day": Spec(28.0, _number(positive=True), "end of the AUC interval, days"),
    "expansion_min": Spec(1000.0, _number(lo=0), "Cmax at or above which a patient had effective expansion"),
    "km_ci": Spec("plain", _choice("plain", "log", "log-log"), "Kaplan–Meier CI transform (R conf.type)"),
    "horizon_months": Spec(60.0, _number(positive=True), "time point of the survival and incidence rates"),
    "screen_p": Spec(0.2, _number(lo=0, hi=1), "univariable p below which a covariate enters the multivariable model"),
    "cox_covariates": Spec(COX_COVARIATES, _str_list, "covariates of the univariable Cox screen"),
    "lfs_multivariable": Spec(["bca_duration_days", "female", "d28_mrd_neg"], _str_list, "covariates of the reported multivariable LFS model"),
    "os_multivariable": Spec(["no_prior_cart", "neutropenia_g4", "crs_ge_3", "icans", "hsct_after", "bca_duration_days"], _str_list,
                             "covariates of the reported multivariable OS model"),
    "scrs_covariates": Spec(SCRS_COVARIATES, _str_list, "covariates of the univariable logistic screen of grade-≥3 CRS"),
    "scrs_model1": Spec(["female", "no_prior_hsct", "preld_mrd_lt_1e-3", "dose_lt_median"], _str_list, "Table 2, multivariable model 1"),
    "scrs_model2": Spec(["female", "no_prior_hsct", "postld_mrd_lt_1e-3", "dose_lt_median"], _str_list, "Table 2, multivariable model 2"),
    "il6_uln": Spec(7.0, _number(lo=0), "IL-6 upper limit of normal, pg/mL"),
    "corr_method": Spec("spearman", _choice("spearman", "pearson"), "correlation method for kinetics and BCA"),
    "mrd_low_cutoff": Spec(1e-4, _number(lo=0, hi=1), "MRD below this is a low tumour burden (transplant strata)"),
    "mrd_high_cutoff": Spec(1e-2, _number(lo=0, hi=1), "MRD at or above this is a high tumour burden (transplant strata)"),
    "landmark_day": Spec(180.0, _number(positive=True), "landmark day of the transplant landmark analysis"),
    "seed": Spec(20250930, _integer(lo=0), "seed of every random step (figure jitter); results use none"),
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
    parameter names.
    """
    out = defaults()
    problems = []
    for key, value in (values or {}).items():
        if key not in SCHEMA:
            if ignore_unknown:
                continue
            close = difflib.get_close_matches(key, SCHEMA, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown parameter {key!r}{hint}")
            continue
        try:
            out[key] = SCHEMA[key].check(value)
        except ParameterError as exc:
            problems.append(f"parameter {key!r} {exc}")
    if problems:
        raise ParameterError("; ".join(problems))
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a parameter YAML file (a mapping), without applying defaults."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ParameterError(f"cannot read parameter file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ParameterError(f"parameter file {path} must hold a mapping of names to values")
    return data


def parse_set(assignments: list[str]) -> dict[str, Any]:
    """Parse ``--set KEY=VALUE`` strings; VALUE is read as YAML (numbers, lists, null).

    >>> parse_set(["km_ci=log", "landmark_day=100", "lfs_multivariable=[female]"])
    {'km_ci': 'log', 'landmark_day': 100, 'lfs_multivariable': ['female']}
    """
    out = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ParameterError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(raw)
    return out


def mrd_label(cutoff: float) -> str:
    """Key-friendly text of an MRD cut-off, as the results keys spell it.

    >>> mrd_label(1e-4), mrd_label(0.001), mrd_label(0.05)
    ('1e-4', '1e-3', '5e-2')
    """
    mantissa, exponent = f"{cutoff:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"
