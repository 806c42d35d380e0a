import math

from cartlib.scorecard import display_table, key_table, load_paper_figures, scorecard, summary_counts

FIGS = [
    {"key": "a.n", "value": 50, "tolerance": 0},
    {"key": "a.rate", "value": 0.749, "tolerance": 0.0005},
    {"key": "a.p", "value": 0.022, "tolerance": 0.001},
    {"key": "a.lo", "value": 0.648, "tolerance": 0.0005, "feasible": False, "why": "CI too narrow for n"},
]


def test_status_of_each_figure():
    card = scorecard({"a.n": 50, "a.rate": 0.7494, "a.p": None, "a.lo": 0.63}, FIGS)
    assert card["status"].to_dict() == {"a.n": "matched", "a.rate": "matched", "a.p": "missing", "a.lo": "infeasible"}
    assert summary_counts(card) == {"matched": 2, "differs": 0, "not targeted": 0, "missing": 1, "infeasible": 1}
    assert scorecard({"a.n": 49}, FIGS[:1]).loc["a.n", "status"] == "differs"
    untargeted = [{**FIGS[0], "calibrated": False}]
    assert scorecard({"a.n": 49}, untargeted).loc["a.n", "status"] == "not targeted"
    assert scorecard({"a.n": 50}, untargeted).loc["a.n", "status"] == "matched"


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
