from pathlib import Path

import pytest

from cartlib import params as P

ROOT = Path(__file__).resolve().parents[1]


def test_default_yaml_is_the_schema_defaults():
    assert P.resolve(P.load_yaml(ROOT / "parameters" / "default.yaml")) == P.defaults()
    assert set(P.load_yaml(ROOT / "parameters" / "default.yaml")) == set(P.SCHEMA)


def test_every_parameter_file_is_valid():
    for path in sorted((ROOT / "parameters").glob("*.yaml")):
        if path.name in {"synthetic.yaml", "paper.yaml"}:
            continue  # not analysis parameter sets
        P.resolve(P.load_yaml(path))


def test_sensitivity_changes_what_it_says():
    p = P.resolve(P.load_yaml(ROOT / "parameters" / "sensitivity.yaml"))
    assert (p["km_ci"], p["auc_method"], p["landmark_day"]) == ("log-log", "linear", 100.0)


def test_unknown_key_is_named():
    with pytest.raises(P.ParameterError, match="unknown parameter 'auc_methd'.*'auc_method'"):
        P.resolve({"auc_methd": "linear"})


@pytest.mark.parametrize("key,value,message", [
    ("km_ci", "loglog", "must be one of"),
    ("lloq", -1, "must be > 0"),
    ("lloq", "100", "must be a number"),
    ("screen_p", 2, "within"),
    ("lfs_multivariable", "female", "list of names"),
    ("seed", 1.5, "whole number"),
])
def test_bad_values_are_refused(key, value, message):
    with pytest.raises(P.ParameterError, match=message):
        P.resolve({key: value})


def test_all_problems_reported_together():
    with pytest.raises(P.ParameterError) as exc:
        P.resolve({"lloq": -1, "nope": 1})
    assert "lloq" in str(exc.value) and "nope" in str(exc.value)


def test_parse_set_reads_yaml_values():
    assert P.parse_set(["lloq=50", "data=null", "km_ci=log"]) == {"lloq": 50, "data": None, "km_ci": "log"}
    with pytest.raises(P.ParameterError, match="KEY=VALUE"):
        P.parse_set(["lloq"])


def test_mrd_label():
    assert [P.mrd_label(x) for x in (1e-4, 1e-3, 1e-2)] == ["1e-4", "1e-3", "1e-2"]
