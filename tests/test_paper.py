"""The bundled synthetic cohort reproduces every feasible figure of parameters/paper.yaml.

The figures come from the paper (Wang et al., Front Immunol 2025;16:1672509), typed into
paper.yaml with their place in the text; they are not this code's output. Each feasible
row must hold within its tolerance when the suite's own analysis (``compute_results``)
runs on the committed default cohort. Infeasible rows must say why.
"""
from __future__ import annotations

import math

import pytest

from cartlib.io import load_cohort
from cartlib.synth import DEFAULT_COHORT_DIR
from cartlib.synth.calibrate import paper_figures

FIGURES = paper_figures()
FEASIBLE = [f for f in FIGURES if f["feasible"] and f.get("calibrated", True)]


@pytest.fixture(scope="module")
def results():
    from cartlib.sections import compute_results

    return compute_results(load_cohort(DEFAULT_COHORT_DIR))


def test_paper_yaml_is_well_formed():
    keys = [f["key"] for f in FIGURES]
    assert len(keys) == len(set(keys)), "a figure is listed twice"
    for f in FIGURES:
        assert f["kind"] in {"count", "continuous", "p"}, f["key"]
        assert f["tolerance"] >= 0 and f["where"], f["key"]
        if f["kind"] == "count":
            assert f["tolerance"] == 0, f"{f['key']}: counts are exact"
        if not f["feasible"] or not f.get("calibrated", True):
            assert f["why"], f"{f['key']}: an infeasible or untargeted figure needs a reason"


def test_paper_keys_are_results_keys(results):
    missing = [f["key"] for f in FIGURES if f["key"] not in results]
    assert not missing, f"compute_results has no key for these paper figures: {missing}"


@pytest.mark.parametrize("figure", FEASIBLE, ids=[f["key"] for f in FEASIBLE])
def test_default_cohort_reproduces_the_paper(figure, results):
    key = figure["key"]
    assert key in results, f"compute_results has no key {key!r}"
    got = results[key]
    assert got is not None and not (isinstance(got, float) and math.isnan(got)), f"{key} is missing in the results"
    assert abs(float(got) - float(figure["value"])) <= float(figure["tolerance"]) + 1e-9, (
        f"{key}: synthetic {got} vs paper {figure['value']} (tolerance {figure['tolerance']}, {figure['where']})")
