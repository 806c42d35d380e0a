"""Every results.json key of RESULTS.md, on the default cohort and on any valid cohort; determinism."""
from pathlib import Path

import pytest

from cartlib.analysis import load
from cartlib.io import example_cohort, load_cohort
from cartlib.params import defaults, resolve
from cartlib.results import dumps
from cartlib.sections import compute_results
from cartlib.synth import generate_cohort, write_cohort
from spec_keys import COVARIATES, FIXED, TOX_COVARIATES, spec_keys

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "RESULTS.md"


@pytest.mark.skipif(not SPEC.exists(), reason="the spec folder is not beside the repository")
def test_key_list_follows_the_spec_text():
    text = SPEC.read_text(encoding="utf-8")
    for key in FIXED:
        assert key in text, key
    for cov in COVARIATES + TOX_COVARIATES:
        assert f"`{cov}`" in text, cov


@pytest.fixture(scope="module")
def default_results():
    return compute_results(load(defaults()), defaults())


def test_default_cohort_has_every_spec_key_with_a_value(default_results):
    missing = [k for k in spec_keys() if k not in default_results]
    assert not missing
    empty = [k for k in spec_keys() if default_results[k] is None]
    assert not empty, f"the calibrated cohort should give every spec key a value: {empty}"


def test_results_are_byte_identical_across_runs(default_results):
    again = compute_results(load(defaults()), defaults())
    assert dumps(again) == dumps(default_results)


def test_every_key_exists_on_a_tiny_cohort_with_nulls_not_errors():
    r = compute_results(example_cohort(), resolve())
    assert [k for k in spec_keys() if k not in r] == []
    assert r["cohort.n"] == 2 and r["efficacy.relapse_n"] == 1
    # a 2-patient cohort cannot support a Cox model: null, not a made-up number
    assert r["efficacy.lfs.multi.female.hr"] is None


def test_every_key_exists_on_another_synthetic_cohort(tmp_path):
    folder = tmp_path / "c"
    write_cohort(generate_cohort(120, seed=11), folder)
    r = compute_results(load_cohort(folder), resolve())
    assert [k for k in spec_keys() if k not in r] == []
    assert r["cohort.n"] == 120


def test_parameters_change_what_they_should(default_results):
    p = resolve({"km_ci": "log-log", "auc_method": "linear"})
    r = compute_results(load(p), p)
    assert r["efficacy.os_5y"] == default_results["efficacy.os_5y"]
    assert r["efficacy.os_5y_lo"] != default_results["efficacy.os_5y_lo"]
    assert r["pk.cmax_median"] == default_results["pk.cmax_median"]
    assert r["pk.auc28_median"] != default_results["pk.auc28_median"]
