"""The results.json keys against docs/RESULTS.md, on the default cohort and on any valid cohort; determinism."""
import pytest

from cartlib.analysis import load
from cartlib.io import example_cohort, load_cohort
from cartlib.params import defaults, resolve
from cartlib.results import dumps
from cartlib.sections import SECTION_NAMES, compute_results
from cartlib.sections.efficacy import RESULTS_COVARIATES
from cartlib.synth import generate_cohort, write_cohort
from spec_keys import SECTIONS, documented_keys, documented_patterns, placeholders, spec_keys


@pytest.fixture(scope="module")
def default_results():
    return compute_results(load(defaults()), defaults())


def _differences(produced, documented) -> str:
    undocumented = sorted(set(produced) - set(documented))
    missing = sorted(set(documented) - set(produced))
    return f"produced but not in docs/RESULTS.md: {undocumented[:20]}; documented but not produced: {missing[:20]}"


def test_the_default_run_produces_exactly_the_documented_keys(default_results):
    documented = documented_keys()
    assert len(documented) > 500          # the key tables were read, not silently skipped
    assert set(default_results) == set(documented), _differences(default_results, documented)


def test_the_document_names_sections_and_placeholders_as_the_code_does():
    assert SECTIONS + ("kinetic_model",) == SECTION_NAMES   # its keys are pk.model.*, under pk
    assert {k.split(".")[0] for k in documented_keys()} == set(SECTIONS)
    assert any(k.startswith("pk.model.") for k in documented_keys())
    assert len(spec_keys()) >= 100 and set(spec_keys()) <= set(documented_keys())
    p, names = defaults(), placeholders()
    # the document lists the model covariates of the default parameters
    assert sorted(names["COX_COV"]) == sorted({*p["cox_covariates"], *RESULTS_COVARIATES})
    for placeholder, parameter in (("LFS_MULTI", "lfs_multivariable"), ("OS_MULTI", "os_multivariable"),
                                   ("SCRS_COV", "scrs_covariates"), ("SCRS_MODEL1", "scrs_model1"),
                                   ("SCRS_MODEL2", "scrs_model2")):
        assert names[placeholder] == p[parameter], placeholder
    # every placeholder defined is used by some key, so none is stale
    used = "".join(d.pattern for d in documented_patterns()) + "".join(v for vs in names.values() for v in vs)
    assert [n for n in names if "{" + n + "}" not in used] == []


def test_default_cohort_has_every_core_key_with_a_value(default_results):
    empty = [k for k in spec_keys() if default_results[k] is None]
    assert not empty, f"the calibrated cohort should give every core key a value: {empty}"


def test_results_are_byte_identical_across_runs(default_results):
    again = compute_results(load(defaults()), defaults())
    assert dumps(again) == dumps(default_results)


def test_every_key_exists_on_a_tiny_cohort_with_nulls_not_errors():
    r = compute_results(example_cohort(), resolve())
    assert set(r) == set(documented_keys()), _differences(r, documented_keys())
    assert r["cohort.n"] == 2 and r["efficacy.relapse_n"] == 1
    # a 2-patient cohort cannot support a Cox model: null, not a made-up number
    assert r["efficacy.lfs.multi.female.hr"] is None


def test_every_key_exists_on_another_synthetic_cohort(tmp_path):
    folder = tmp_path / "c"
    write_cohort(generate_cohort(120, seed=11), folder)
    r = compute_results(load_cohort(folder), resolve())
    assert set(r) == set(documented_keys()), _differences(r, documented_keys())
    assert r["cohort.n"] == 120


def test_model_keys_follow_their_parameters():
    p = resolve({"lfs_multivariable": ["female", "icans"]})
    r = compute_results(example_cohort(), p)
    assert sorted(k for k in r if k.startswith("efficacy.lfs.multi.")) == sorted(
        f"efficacy.lfs.multi.{c}.{s}" for c in ("female", "icans") for s in ("hr", "hr_lo", "hr_hi", "p"))


def test_parameters_change_what_they_should(default_results):
    p = resolve({"km_ci": "log-log", "auc_method": "linear"})
    r = compute_results(load(p), p)
    assert r["efficacy.os_5y"] == default_results["efficacy.os_5y"]
    assert r["efficacy.os_5y_lo"] != default_results["efficacy.os_5y_lo"]
    assert r["pk.cmax_median"] == default_results["pk.cmax_median"]
    assert r["pk.auc28_median"] != default_results["pk.auc28_median"]
