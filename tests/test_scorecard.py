import math

from cartlib.scorecard import display_table, key_table, load_paper_figures, scorecard, summary_counts, within_tolerance

FIGS = [
    {"key": "a.n", "value": 50, "tolerance": 0},
    {"key": "a.rate", "value": 0.749, "tolerance": 0.0005},
    {"key": "a.p", "value": 0.022, "tolerance": 0.001},
    {"key": "a.lo", "value": 0.648, "tolerance": 0.0005, "feasible": False, "why": "CI too narrow for n"},
]


def test_status_of_each_figure():
    card = scorecard({"a.n": 50, "a.rate": 0.7494, "a.p": None, "a.lo": 0.63}, FIGS)
    assert card["status"].to_dict() == {"a.n": "matched", "a.rate": "matched", "a.p": "missing", "a.lo": "infeasible"}
    assert summary_counts(card) == {"matched": 2, "differs": 0, "missing": 1, "infeasible": 1}
    assert scorecard({"a.n": 49}, FIGS[:1]).loc["a.n", "status"] == "differs"


def test_log_tolerance_is_symmetric_on_the_ratio_scale():
    hr = {"value": 2.0, "log_tolerance": 0.1}
    assert within_tolerance(2.0 * 1.105, hr) and within_tolerance(2.0 / 1.105, hr)
    assert not within_tolerance(2.0 * 1.106, hr) and not within_tolerance(2.0 / 1.106, hr)
    assert not within_tolerance(0.0, hr) and not within_tolerance(-2.0, hr)


def test_p_value_must_agree_on_significance():
    p = {"value": 0.03, "tolerance": 0.05, "kind": "p"}
    assert within_tolerance(0.049, p) and within_tolerance(0.0001, p)
    assert not within_tolerance(0.05, p) and not within_tolerance(0.07, p)
    assert within_tolerance(0.125, {"value": 0.171, "tolerance": 0.05, "kind": "p"})
    assert not within_tolerance(0.04, {"value": 0.06, "tolerance": 0.05, "kind": "p"})


def test_display_is_text():
    text = display_table(scorecard({"a.n": 50, "a.rate": 0.74912}, FIGS[:2]))
    assert text.loc["a.n", "paper"] == "50" and text.loc["a.rate", "this run"] == "0.7491"


def test_key_table_puts_the_paper_beside_recorded_keys():
    t = key_table({"a.n": 49, "b.x": 1.5}, FIGS)
    assert t.loc["a.n"].tolist() == ["49", "50"] and t.loc["b.x", "paper"] == ""


def test_paper_yaml_is_well_formed():
    figures = load_paper_figures()
    keys = [f["key"] for f in figures]
    assert len(keys) == len(set(keys)), "each published figure once"
    for f in figures:
        assert isinstance(f["value"], (int, float)) and not math.isnan(f["value"])
        assert f.get("where"), f["key"]
        if f.get("feasible", True) is False:
            assert f.get("why"), f"{f['key']}: an infeasible figure says why"
