import math

import pandas as pd

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


# --- for the reader: labels, plain reasons, the figure, the headline ----------------------------

import re  # noqa: E402

import matplotlib  # noqa: E402
import pytest  # noqa: E402

from cartlib import scorecard as sc  # noqa: E402
from cartlib import scorecard_plot  # noqa: E402
from cartlib.headline import HEADLINES, headline_table  # noqa: E402
from cartlib.keylabels import key_label, untranslated  # noqa: E402
from spec_keys import documented_keys  # noqa: E402

JARGON = re.compile(r"calibrat|\bSE\b|seed|stage|Greenwood|Wald|fit_|latent|iteration|sqrt|log scale", re.I)


@pytest.fixture(scope="module")
def bundled_results():
    from cartlib.analysis import load
    from cartlib.params import defaults
    from cartlib.sections import compute_results

    return compute_results(load(defaults()), defaults())


def test_every_documented_key_reads_as_words():
    keys = documented_keys()
    assert len(keys) > 500
    assert {k: untranslated(k) for k in keys if untranslated(k)} == {}
    labels = [key_label(k) for k in keys]
    assert not [x for x in labels if "_" in x], "no code names left"
    assert key_label("efficacy.lfs.multi.female.hr_lo") == "LFS · multivariable Cox · Female · HR, lower 95% limit"
    assert key_table({"cohort.n": 50}, [], labels=True).loc["cohort.n", "label"] == "patients, n"


def test_every_unmatched_figure_has_a_plain_reason(bundled_results):
    figures = load_paper_figures()
    table = sc.differences_table(bundled_results, figures)
    card = scorecard(bundled_results, figures)
    assert len(table) == int((card["status"] != "matched").sum()) > 0
    for (_, key), row in table.iterrows():
        assert row["reason"] and len(row["reason"]) <= 130 and not JARGON.search(row["reason"].replace(
            "docs/SYNTHETIC.md", "")), (key, row["reason"])
        if row["status"] == "not scored":
            assert row["reason"] != sc.plain_reason({}, "infeasible"), f"{key}: a specific reason"
    own = sc.differences_table(bundled_results, figures, bundled=False)
    assert set(own.loc[own["status"] == "differs", "reason"]) == {sc.OWN_DIFFERS}
    grouped = sc.differences_display(bundled_results, figures=figures)
    assert grouped["n"].sum() == len(table) and len(grouped) < len(table)


def test_the_scorecard_figure_has_one_dot_per_figure_coloured_by_status(bundled_results):
    matplotlib.use("Agg")
    figures = load_paper_figures()
    ax = scorecard_plot.plot_scorecard(bundled_results, figures)
    dots = [line for line in ax.get_lines() if line.get_marker() not in ("None", None, "")]
    assert sum(len(line.get_xdata()) for line in dots) == len(figures)
    counts = summary_counts(scorecard(bundled_results, figures))
    for status in ("matched", "differs"):
        shown = sum(len(line.get_xdata()) for line in dots if line.get_color() == scorecard_plot.STATUS_COLOURS[status])
        assert shown == counts[status], status
    assert ax.get_yscale() == "log" and ax.get_ylim() == scorecard_plot.RATIO_LIMITS
    labels = [t.get_text().split("\n")[0] for t in ax.get_xticklabels()]
    assert labels[:3] == ["Cohort", "Efficacy", "Toxicity"], "grouped by section, in the report's order"
    matplotlib.pyplot.close(ax.figure)


def test_the_headline_table_puts_the_paper_beside_this_run(bundled_results):
    table = headline_table(bundled_results)
    assert len(table) == len(HEADLINES) and list(table.columns) == ["finding", "this run", "paper", "status", "note"]
    os_row = table.set_index("finding").loc["Overall survival at 5 years"]
    assert os_row["paper"] == "74.9% (64.8–85.1)" and os_row["status"] == "matched"
    assert "not scored" in os_row["note"], "the published CI is not scored"
    changed = dict(bundled_results, **{"efficacy.os_5y": 0.5})
    assert headline_table(changed).set_index("finding").loc["Overall survival at 5 years", "status"] == "differs"
    own = headline_table(bundled_results, with_paper=False)
    assert list(own.columns) == ["finding", "this run"]


def test_collapsed_tables_fold_in_html_and_keep_every_row_in_text():
    frame = pd.DataFrame({"v": range(300)})
    shown = sc.Collapsed(frame, "All 300")
    assert shown._repr_html_().startswith('<details class="cartlib-collapsed"><summary>All 300</summary>')
    assert len(repr(shown).splitlines()) == 301
