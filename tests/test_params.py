from pathlib import Path

import pytest

from cartlib import params as P

ROOT = Path(__file__).resolve().parents[1]


def test_default_yaml_is_the_schema_defaults():
    assert P.resolve(P.load_yaml(ROOT / "parameters" / "default.yaml")) == P.defaults()
    assert set(P.load_yaml(ROOT / "parameters" / "default.yaml")) == set(P.SCHEMA)


def test_every_parameter_file_is_valid():
    for path in sorted((ROOT / "parameters").glob("*.yaml")):
        if path.name in {"synthetic.yaml", "paper.yaml", "sdtm_mapping.yaml"}:
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
    ("screen_p", 2, "from 0 to 1"),
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


@pytest.mark.parametrize("key,value,message", [
    ("landmark_day", float("nan"), "finite"),
    ("auc_end_day", float("inf"), "finite"),
    ("lloq", float("nan"), "finite"),
    ("screen_p", float("nan"), "finite"),
    ("horizon_months", float("inf"), "finite"),
    ("landmark_day", 1e308, "≤ 36,525"),
    ("seed", 2**32, "0 to 4,294,967,295"),
    ("seed", -1, "0 to 4,294,967,295"),
    ("lfs_multivariable", [], "non-empty"),
    ("cox_covariates", ["female", "shoe_size"], "unknown covariate 'shoe_size'"),
    ("os_multivariable", ["icans", "icans"], "twice"),
    ("scrs_model1", ["crs_ge_3"], "outcome"),
    ("data", "", "non-empty"),
    ("data", "a\x00b", "NUL"),
    ("data", "bad\udcff", "UTF-8"),
])
def test_values_out_of_type_or_range_are_refused(key, value, message):
    with pytest.raises(P.ParameterError, match=message):
        P.resolve({key: value})


def test_mrd_cutoffs_must_be_ordered():
    with pytest.raises(P.ParameterError, match="mrd_low_cutoff.*below.*mrd_high_cutoff"):
        P.resolve({"mrd_low_cutoff": 0.1, "mrd_high_cutoff": 0.01})


def test_every_parameter_states_what_is_allowed():
    for name, spec in P.SCHEMA.items():
        assert isinstance(spec.allowed, str) and len(spec.allowed) > 5, name
        spec.check(spec.default)                       # the default passes its own check
    assert P.SCHEMA["seed"].allowed == "whole number 0 to 4,294,967,295"
    assert P.SCHEMA["km_ci"].allowed == "one of: plain, log, log-log"


@pytest.mark.parametrize("item", ["x=[unclosed", "data=!!python/object/apply:os.system ['true']",
                                  "lloq=!!python/name:os.system", "seed={a: [1, 2", "km_ci=*alias",
                                  "landmark_day=@bad"])
def test_parse_set_bad_yaml_is_one_line(item):
    with pytest.raises(P.ParameterError) as exc:
        P.parse_set([item])
    assert "\n" not in str(exc.value) and item.split("=")[0] in str(exc.value)


def _bomb(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("content, words", [
    (b"lloq: [1, 2\n", "cannot read"),
    (b"data: !!python/object/apply:os.system ['true']\n", "cannot read"),
    (_bomb().encode(), "aliases"),
    (b"km_ci: \"caf\xe9\"\n", "UTF-8"),
    (b"- 1\n- 2\n", "mapping"),
    (b"lloq: 1\n" + b"#" * (2 << 20), "1,048,576 bytes"),
])
def test_load_yaml_problems_are_one_line_naming_the_file(tmp_path, content, words):
    path = tmp_path / "p.yaml"
    path.write_bytes(content)
    with pytest.raises(P.ParameterError) as exc:
        P.load_yaml(path)
    message = str(exc.value)
    assert words in message and str(path) in message and "\n" not in message and len(message) < 400


def test_load_yaml_special_files_are_refused(tmp_path):
    for path in (Path("/dev/zero"), tmp_path, tmp_path / "missing.yaml"):
        with pytest.raises(P.ParameterError, match="parameter file"):
            P.load_yaml(path)
    unreadable = tmp_path / "secret.yaml"
    unreadable.write_text("lloq: 5\n")
    unreadable.chmod(0)
    try:
        import os
        if os.geteuid() != 0:                          # root reads anything
            with pytest.raises(P.ParameterError, match="cannot read"):
                P.load_yaml(unreadable)
    finally:
        unreadable.chmod(0o644)


def test_a_few_anchors_are_still_fine(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("cox_covariates: &c [female, icans]\nlfs_multivariable: *c\n")
    assert P.resolve(P.load_yaml(path))["lfs_multivariable"] == ["female", "icans"]
