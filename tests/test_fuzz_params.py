"""Parameters from arbitrary ``--set`` strings: a ParameterError or a checked parameter set,
never another exception; and every checked set has the types and ranges the notebooks use."""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from cartlib import params as P
from cartlib.derive import COVARIATES

_KEYS = st.sampled_from(sorted(P.SCHEMA) + ["nope", "", " lloq "])
_YAMLISH = st.one_of(
    st.text(max_size=40),
    st.sampled_from([".nan", ".inf", "-.inf", "1e308", "1e400", "-0", "0", "[]", "[female]", "{}", "null", "~",
                     "true", "4294967296", "0x10", "!!binary aGk=", "!!python/none", "&a [1]", "*a", "[a, *b]",
                     "'unclosed", "[1, [2", "2021-03-04", "0.5", "100", "log-log"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-2**70, 2**70).map(str),
    st.lists(st.sampled_from([*COVARIATES, "bca_duration_days", "x"]), max_size=4).map(lambda v: "[" + ", ".join(v) + "]"),
)


def _check_resolved(p):
    assert set(p) == set(P.SCHEMA)
    for key in ("lloq", "auc_end_day", "horizon_months", "landmark_day"):
        assert isinstance(p[key], float) and math.isfinite(p[key]) and p[key] > 0, key
    for key in ("expansion_min", "il6_uln", "screen_p", "mrd_low_cutoff", "mrd_high_cutoff"):
        assert isinstance(p[key], float) and math.isfinite(p[key]) and p[key] >= 0, key
    assert 0 <= p["screen_p"] <= 1 and p["mrd_low_cutoff"] < p["mrd_high_cutoff"] <= 1
    assert type(p["seed"]) is int and 0 <= p["seed"] < 2**32
    known = set(P.KNOWN_COVARIATES) | {*COVARIATES}
    for key in ("cox_covariates", "lfs_multivariable", "os_multivariable", "scrs_covariates", "scrs_model1",
                "scrs_model2"):
        assert p[key] and set(p[key]) <= known and len(set(p[key])) == len(p[key]), key
    assert p["data"] is None or (isinstance(p["data"], str) and p["data"])
    assert p["km_ci"] in ("plain", "log", "log-log") and p["corr_method"] in ("spearman", "pearson")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_KEYS, _YAMLISH), max_size=4), st.lists(st.text(max_size=20), max_size=2))
def test_set_strings_give_a_parameter_error_or_a_checked_set(pairs, raw_items):
    items = [f"{k}={v}" for k, v in pairs] + raw_items
    try:
        p = P.resolve(P.parse_set(items))
    except P.ParameterError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 2000
        return
    _check_resolved(p)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(P.SCHEMA)),
                       st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(), st.text(max_size=10),
                                 st.lists(st.sampled_from([*COVARIATES, "bca_duration_days"]), max_size=5)),
                       max_size=6))
def test_resolve_of_any_plain_values_is_checked(values):
    try:
        p = P.resolve(values)
    except P.ParameterError:
        return
    _check_resolved(p)
