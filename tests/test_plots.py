"""Figures: each returns an Axes whose artists match a small synthetic input built here.

Artists are found by the ``gid`` the plotting functions give them; the expected counts
and positions are worked out by hand from the inputs below.
"""
import matplotlib
import matplotlib.colors

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from cartlib import plots  # noqa: E402

NAN = float("nan")
MONTH = 30.4375


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def lines(ax, prefix):
    return [l for l in ax.lines if str(l.get_gid()).startswith(prefix)]


def points(ax, gid):
    """Offsets of the scatter collection(s) tagged ``gid`` (empty when none)."""
    found = [c.get_offsets() for c in ax.collections if c.get_gid() == gid]
    return np.concatenate(found) if found else np.empty((0, 2))


def assert_points(found, expected):
    np.testing.assert_allclose(found, np.array(expected, float), rtol=1e-12)


def test_set_style_gives_journal_width_figures():
    with matplotlib.rc_context():  # leave the session's style as it was
        plots.set_style()
        w = matplotlib.rcParams["figure.figsize"][0] * matplotlib.rcParams["savefig.dpi"]
        assert w == 700   # a journal's full page width, 7 in, at 100 dpi
        assert matplotlib.rcParams["svg.hashsalt"] == "cartlib"
        colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        assert matplotlib.colors.to_hex(colours[1]).upper() == "#E69F00"  # Okabe–Ito orange


# --- forest ---------------------------------------------------------------------------

def _summary():
    return pd.DataFrame({
        "hr": [0.969, 0.235, NAN, 6.036], "hr_lo": [0.944, 0.062, NAN, 0.868],
        "hr_hi": [0.995, 0.884, NAN, np.inf], "p": [0.021, 0.032, NAN, 0.071],
        "reason": [None, None, "no events in one group", None],
    }, index=["bca", "female", "prior_cart", "icans"])


def test_forest_log_axis_ci_lines_and_text():
    ax = plots.plot_forest(_summary(), title="LFS")
    assert ax.get_xscale() == "log"
    ci = lines(ax, "ci:")
    assert [l.get_gid() for l in ci] == ["ci:bca", "ci:female", "ci:icans"]  # not prior_cart
    # rows top to bottom: bca at y=3, female 2, prior_cart 1, icans 0
    assert list(ci[0].get_xdata()) == [0.944, 0.995] and list(ci[0].get_ydata()) == [3, 3]
    assert list(ci[1].get_xdata()) == [0.062, 0.884]
    # the infinite upper bound is clipped to the axis and marked with an arrowhead
    assert ci[2].get_xdata()[1] == pytest.approx(ax.get_xlim()[1])
    assert [l.get_marker() for l in lines(ax, "clipped:icans")] == [">"]
    assert points(ax, "estimates")[:, 0].tolist() == [0.969, 0.235, 6.036]
    ref = lines(ax, "reference")
    assert len(ref) == 1 and list(ref[0].get_xdata()) == [1.0, 1.0]
    texts = [t.get_text() for t in ax.texts]
    assert "not estimable (no events in one group)" in texts
    assert "0.969 (0.944–0.995)" in texts and "0.021" in texts and "HR (95% CI)" in texts
    assert [t.get_text() for t in ax.get_yticklabels()] == ["bca", "female", "prior_cart", "icans"]
    assert ax.get_title(loc="left") == "LFS"


def test_forest_odds_ratio_with_labels_on_given_axes():
    s = pd.DataFrame({"or": [5.25, 0.4], "or_lo": [1.5, 0.1], "or_hi": [18.0, 1.6],
                      "p": [0.0004, 0.2]}, index=["il6", "dose"])
    fig, ax = plt.subplots()
    out = plots.plot_forest(s, ax=ax, estimate="or", lower="or_lo", upper="or_hi",
                            labels={"il6": "IL-6 > ULN"}, xlabel="Odds ratio (95% CI)")
    assert out is ax
    assert len(lines(ax, "ci:")) == 2 and not lines(ax, "clipped:")
    assert ax.get_xlabel() == "Odds ratio (95% CI)"
    texts = [t.get_text() for t in ax.texts]
    assert "OR (95% CI)" in texts and "5.250 (1.500–18.000)" in texts and "< 0.001" in texts
    lo, hi = ax.get_xlim()
    assert lo < 0.1 and hi > 18.0  # every interval and the reference line are in view


# --- spaghetti ------------------------------------------------------------------------

def _pk():
    # A: quantifiable at 7 and 14, BLQ text at 28; B: 80 (< LLOQ) at 14; C: sample at 200.
    # Pre-infusion rows (DAY <= 0) must not be drawn.
    return pd.DataFrame({
        "USUBJID": ["A", "A", "A", "A", "B", "B", "B", "C", "C", "C"],
        "DAY": [-3, 7, 14, 28, 0, 8, 14, 6, 13, 200],
        "CONC": [NAN, 5e4, 2e3, "BLQ", NAN, 9e3, 80, 1e3, 500, NAN],
    })


def test_spaghetti_profiles_blq_and_lloq():
    ax = plots.plot_spaghetti(_pk(), lloq=100, median=False, inset=False)
    assert ax.get_yscale() == "log"
    assert sorted(l.get_gid() for l in lines(ax, "profile:")) == \
        ["profile:A", "profile:B", "profile:C"]
    a = lines(ax, "profile:A")[0]
    assert list(a.get_xdata()) == [7, 14, 28]  # day -3 left out
    blq = points(ax, "blq")
    # A day 28 (text), B day 14 (80 < 100), C day 200 (NaN): all drawn at 50
    assert sorted(blq[:, 0].tolist()) == [14, 28, 200] and set(blq[:, 1]) == {50}
    assert len(points(ax, "quantifiable")) == 5
    lloq = lines(ax, "lloq")
    assert len(lloq) == 1 and list(lloq[0].get_ydata()) == [100, 100]
    assert ax.get_xlim() == (0, 120)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "BLQ (drawn at LLOQ/2 = 50)" in legend and "LLOQ (100 copies/µg)" in legend


def test_spaghetti_lloq_parameter_median_nca_highlight_and_inset():
    nca = pd.DataFrame({"tmax": [7.0, 8.0, NAN], "cmax": [5e4, 9e3, NAN]},
                       index=pd.Index(["A", "B", "C"], name="USUBJID"))
    ax = plots.plot_spaghetti(_pk(), nca=nca, lloq=1000, highlight=["B"])
    assert list(lines(ax, "lloq")[0].get_ydata()) == [1000, 1000]
    # with LLOQ 1000: A 5e4, 2e3 quantifiable; B 9e3; C 1e3 (= LLOQ, quantifiable)
    assert len(points(ax, "quantifiable")) == 4 and set(points(ax, "blq")[:, 1]) == {500}
    assert points(ax, "cmax").tolist() == [[7.0, 5e4], [8.0, 9e3]]
    assert lines(ax, "profile:B")[0].get_label() == "B"
    med = lines(ax, "median")[0]
    # visit 7: A 5e4, B 9e3, C 1e3 -> 9e3; visit 14: A 2e3, B 500 (BLQ), C 500 (BLQ) -> BLQ: the
    # line breaks there (NaN) and an open marker at LLOQ/2 stands for the BLQ median
    assert list(med.get_xdata()[:2]) == [7, 14] and med.get_ydata()[0] == 9e3 and np.isnan(med.get_ydata()[1])
    blq_median = lines(ax, "median blq")[0]
    assert list(blq_median.get_xdata()) == [14] and list(blq_median.get_ydata()) == [500]
    # C's day-200 sample lies beyond 120 days: a panel with log time shows it, beside the data (x0 > 1)
    assert len(ax.child_axes) == 1 and ax.child_axes[0].get_xscale() == "log"
    assert ax.child_axes[0].get_position().x0 > ax.get_position().x1
    assert plots.plot_spaghetti(_pk(), xmax=None).child_axes == []
    ax = plots.plot_spaghetti(_pk(), xmax=None, xscale="log")
    assert ax.get_xscale() == "log" and ax.get_xlim()[1] == pytest.approx(200 * 1.05)


def test_median_pk_profile_binning_blq_rule_and_min_n():
    pk = pd.DataFrame({
        "USUBJID": ["A", "A", "B", "C", "D", "A", "B", "A", "B", "C", "D"],
        "DAY": [11, 10, 10, 9, 12, 28, 29, 84, 84, 84, 84],
        "CONC": [400.0, 200.0, 1000.0, 5000.0, NAN, 300.0, 700.0, 150.0, 90.0, 300.0, "BLQ"],
    })
    m = plots.median_pk_profile(pk, lloq=100).set_index("nominal_day")
    # days 9-12 -> visit 10 (nearest in PK_SCHEDULE); A's day-10 sample (200) is nearer than
    # its day-11 one; values 50 (D BLQ), 200, 1000, 5000 -> median (200 + 1000) / 2 = 600
    assert m.loc[10.0, ["n", "n_blq", "median"]].tolist() == [4, 1, 600]
    # visit 28 has only 2 patients (< min_n = 3): no median
    assert np.isnan(m.loc[28.0, "median"])
    # visit 84: 2 of 4 BLQ (90 < LLOQ and the text) -> the median is BLQ, drawn at 50,
    # not the 100 that averaging 50 and 150 would make up
    assert m.loc[84.0, ["n", "n_blq", "median"]].tolist() == [4, 2, 50]
    m2 = plots.median_pk_profile(pk, min_n=2).set_index("nominal_day")
    assert m2.loc[28.0, "median"] == 500


# --- swimmer --------------------------------------------------------------------------

def _analysis():
    # P1 alive 900 d, MRD-neg CR, HSCT 60; P2 relapse CD19- 100, death (relapse) 300;
    # P3 CR MRD+, relapse CD19+ 200, alive 1200; P4 NR, death NRM 50; P5 alive 500, HSCT 90.
    return pd.DataFrame({
        "os_days": [900.0, 300.0, 1200.0, 50.0, 500.0], "os_event": [0, 1, 0, 1, 0],
        "hsct_day": [60.0, NAN, NAN, NAN, 90.0],
        "relapse_day": [NAN, 100.0, 200.0, NAN, NAN],
        "relapse_cd19": [None, "CD19NEG", "CD19POS", None, None],
        "death_day": [NAN, 300.0, NAN, 50.0, NAN],
        "death_cause": [None, "RELAPSE", None, "NRM", None],
        "cr": [1, 1, 1, 0, 1], "d28_mrd_neg": [1, 1, 0, 0, 1],
        "crs_grade": [0, 1, 3, 4, 2], "icans_grade": [0, 0, 1, 3, 0],
        "neutropenia_grade": [4, 4, 3, 0, 2], "infection_grade": [0, 0, 0, 2, 0],
        "bca": [1, 1, 0, 1, 1], "bca_duration_days": [120.0, 30.0, 0.0, 45.0, 60.0],
        "bca_ongoing": [1, 0, 0, 0, 0], "female": [1, 0, 0, 1, 0],
    }, index=pd.Index([f"P{i}" for i in range(1, 6)], name="USUBJID"))


def test_swimmer_bars_sorted_and_markers():
    ax = plots.plot_swimmer(_analysis())
    assert len(ax.patches) == 5
    # sorted by follow-up, shortest at the bottom: P4 50, P2 300, P5 500, P1 900, P3 1200
    assert [t.get_text() for t in ax.get_yticklabels()] == ["P4", "P2", "P5", "P1", "P3"]
    widths = [p.get_width() for p in sorted(ax.patches, key=lambda p: p.get_y())]
    assert widths == pytest.approx([50 / MONTH, 300 / MONTH, 500 / MONTH, 900 / MONTH, 1200 / MONTH])
    assert_points(points(ax, "death (relapse)"), [[300 / MONTH, 1]])
    assert_points(points(ax, "death (NRM)"), [[50 / MONTH, 0]])
    assert_points(points(ax, "relapse CD19−"), [[100 / MONTH, 1]])
    assert_points(points(ax, "relapse CD19+"), [[200 / MONTH, 4]])
    assert sorted(points(ax, "HSCT")[:, 1]) == [2, 3]
    assert len(points(ax, "alive at last contact")) == 3  # P1, P3, P5
    assert len(points(ax, "MRD-negative CR (day 28)")) == 3  # P1, P2, P5
    assert_points(points(ax, "CR/CRi, MRD-positive (day 28)"), [[28 / MONTH, 4]])
    # no patient has an unknown relapse antigen or death cause: those markers are absent
    assert len(points(ax, "death (cause unknown)")) == 0
    assert len(points(ax, "relapse (CD19 unknown)")) == 0
    assert ax.get_xlabel() == "Time since infusion (months)"


def test_swimmer_days_minimal_columns_and_bad_unit():
    a = _analysis()[["os_days", "os_event"]]
    ax = plots.plot_swimmer(a, time_unit="days")
    assert sorted(p.get_width() for p in ax.patches) == [50, 300, 500, 900, 1200]
    assert len(ax.collections) == 1  # only the "alive" arrows
    with pytest.raises(ValueError, match="time_unit"):
        plots.plot_swimmer(a, time_unit="weeks")
    # CR markers need the MRD status too (else "MRD-positive" would be a guess)
    # ... while "no CR/CRi" needs only cr (the non-responder has its own legend symbol)
    ax = plots.plot_swimmer(_analysis()[["os_days", "os_event", "cr"]], time_unit="years")
    assert sorted(c.get_gid() for c in ax.collections) == ["alive at last contact", "no CR/CRi (day 28)"]
    assert "no CR/CRi (day 28)" in [t.get_text() for t in ax.get_legend().get_texts()]
    ax = plots.plot_swimmer(_analysis()[["os_days", "os_event", "cr", "d28_mrd_neg"]],
                            time_unit="years")
    # sorted: P4 (no CR) y0, P2 y1, P5 y2, P1 y3, P3 (CR, MRD+) y4
    assert_points(points(ax, "MRD-negative CR (day 28)"), [[28 / 365.25, y] for y in (1, 2, 3)])


# --- scatter, IL-6, grades, BCA -------------------------------------------------------

def test_scatter_corr_annotation_given_and_computed():
    ax = plots.plot_scatter_corr([1, 2, 3, 4], [4, 3, 2, 1], r=0.57, p=0.0004,
                                 xlabel="Tlast (days)", ylabel="BCA (days)")
    assert [t.get_text() for t in ax.texts] == ["Spearman r = 0.570, p < 0.001"]
    assert ax.get_xlabel() == "Tlast (days)"
    # computed: a strictly decreasing relation has Spearman r = -1 (p = 0 -> "< 0.001")
    x = pd.Series([1.0, 2, 3, 4, 5, NAN], name="cmax")
    ax = plots.plot_scatter_corr(x, [50, 40, 30, 20, 10, 0], logx=True)
    assert ax.texts[0].get_text() == "Spearman r = -1.000, p < 0.001"
    assert len(points(ax, "points")) == 5 and ax.get_xscale() == "log"
    assert ax.get_xlabel() == "cmax"
    ax = plots.plot_scatter_corr([1, 2], [3, 4], method="pearson")
    assert "not computable" in ax.texts[0].get_text()
    ax = plots.plot_scatter_corr([1, 2, 3], [1, 2, 3], r=0.349, p=0.016, method="pearson")
    assert ax.texts[0].get_text() == "Pearson r = 0.349, p = 0.016"
    with pytest.raises(ValueError):
        plots.plot_scatter_corr([1, 2, 3], [1, 2, 3], method="kendall")
    ax = plots.plot_scatter_corr([1, 1, 1, 1], [1, 2, 3, 4])
    assert ax.texts[0].get_text() == "Spearman r not computable (a variable is constant)"


def test_scatter_corr_pairs_series_by_index():
    # y is listed in reverse order; paired by USUBJID the relation is increasing (r = 1),
    # paired by position it would be decreasing. "D" has no x and is left out.
    x = pd.Series([1.0, 2.0, 3.0], index=["A", "B", "C"])
    y = pd.Series([99.0, 30.0, 20.0, 10.0], index=["D", "C", "B", "A"])
    ax = plots.plot_scatter_corr(x, y)
    assert ax.texts[0].get_text().startswith("Spearman r = 1.000")
    assert sorted(points(ax, "points").tolist()) == [[1, 10], [2, 20], [3, 30]]


def test_il6_lines_groups_and_uln():
    labs = pd.DataFrame({
        "USUBJID": ["P1", "P1", "P1", "P3", "P3", "P4", "P9", "P2"],
        "DAY": [-2, 3, 40, 1, 7, 5, 2, 4],
        "TEST": ["IL6", "IL6", "IL6", "IL6", "IL6", "IL6", "IL6", "ANC"],
        "VALUE": [5.0, 20.0, 9.0, 50.0, 900.0, 3000.0, 12.0, 0.5],
    })
    ax = plots.plot_il6(labs, _analysis(), uln=7)
    il6 = {l.get_gid(): l for l in lines(ax, "il6:")}
    assert sorted(il6) == ["il6:P1", "il6:P3", "il6:P4", "il6:P9"]  # P2 has only ANC
    assert list(il6["il6:P1"].get_xdata()) == [3]  # days -2 and 40 are outside 0-28
    # crs_grade: P1 0, P3 3, P4 4 -> blue, vermillion, vermillion; P9 not in the table -> grey
    assert il6["il6:P1"].get_color() == plots.OKABE_ITO["blue"]
    assert il6["il6:P3"].get_color() == il6["il6:P4"].get_color() == plots.OKABE_ITO["vermillion"]
    assert il6["il6:P9"].get_color() == plots.OKABE_ITO["grey"]
    assert list(lines(ax, "uln")[0].get_ydata()) == [7, 7] and ax.get_yscale() == "log"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["CRS grade 0–2", "CRS grade ≥ 3", "CRS grade unknown", "ULN (7 pg/mL)"]


def test_grade_bars_counts():
    ax = plots.plot_grade_bars(_analysis())
    heights = {g: [p.get_height() for p in ax.patches if p.get_gid() == f"grade {g}"]
               for g in range(1, 5)}
    # crs 0,1,3,4,2; icans 0,0,1,3,0; neutropenia 4,4,3,0,2; infection 0,0,0,2,0
    assert heights == {1: [1, 1, 0, 0], 2: [1, 0, 1, 1], 3: [1, 1, 1, 0], 4: [1, 0, 2, 0]}
    assert [t.get_text() for t in ax.texts] == ["4/5", "2/5", "4/5", "1/5"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CRS", "ICANS", "Neutropenia", "Infection"]
    a = _analysis().assign(crs_grade=[5, 0, 0, 0, 0])
    ax = plots.plot_grade_bars(a, terms=("crs",))
    assert len(ax.patches) == 5  # grades 1-5 once a grade 5 occurs


def test_bca_duration_points_per_group():
    ax = plots.plot_bca_duration(_analysis(), by="female", labels={0: "male", 1: "female"})
    # bca == 1: P1 (female, 120, ongoing), P2 (male, 30), P4 (female, 45), P5 (male, 60)
    assert sorted(np.concatenate([c.get_offsets()[:, 1] for c in ax.collections])) == [30, 45, 60, 120]
    # groups in the order of the values (0, 1), not of the labels
    assert [t.get_text() for t in ax.get_xticklabels()] == ["male", "female"]
    assert len(plots.plot_bca_duration(_analysis()).get_xticklabels()) == 1
    ax = plots.plot_bca_duration(_analysis().assign(bca=0))
    assert [t.get_text() for t in ax.texts] == ["no patient with B-cell aplasia"]
    assert len(ax.collections) == 0


def test_figures_are_deterministic():
    def render(fn):
        ax = fn()
        ax.figure.canvas.draw()
        return np.asarray(ax.figure.canvas.buffer_rgba()).copy()

    # the swarm layout is the one place where a plotting library might jitter at random
    for fn in (lambda: plots.plot_bca_duration(_analysis(), by="female"),
               lambda: plots.plot_swimmer(_analysis())):
        assert np.array_equal(render(fn), render(fn))


def test_swimmer_shows_an_even_sample_of_a_large_cohort():
    n = 500
    a = pd.DataFrame({"os_days": np.arange(1.0, n + 1), "os_event": 0},
                     index=pd.Index([f"P{i:03d}" for i in range(n)], name="USUBJID"))
    ax = plots.plot_swimmer(a, max_patients=50)
    bars = [p for p in ax.patches if p.get_gid() == "follow-up"] or ax.patches
    assert len(bars) == 50 and "50 of 500" in ax.get_title()
    widths = sorted(b.get_width() for b in bars)
    assert widths[0] * 30.4375 == pytest.approx(1.0) and widths[-1] * 30.4375 == pytest.approx(n)  # both ends kept
    plt.close(ax.figure)


def test_save_figure_writes_svg_and_300_dpi_png_with_stable_names_and_bytes(tmp_path):
    from PIL import Image

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 12, 24], [1.0, 0.8, 0.7], label="OS")
    first = plots.save_figure(fig, tmp_path / "figures", "Efficacy OS/LFS")
    assert [p.name for p in first] == ["efficacy_os_lfs.svg", "efficacy_os_lfs.png"]
    png = Image.open(first[1])
    assert png.info.get("dpi", (0, 0))[0] == pytest.approx(300, abs=1)
    assert png.size[0] > 3.0 * 300   # a 4-inch figure, tightly cropped, at 300 dpi
    svg, png_bytes = first[0].read_bytes(), first[1].read_bytes()
    plots.save_figure(fig, tmp_path / "figures", "Efficacy OS/LFS")
    assert first[0].read_bytes() == svg and first[1].read_bytes() == png_bytes, "same figure, same bytes"
    assert b"<text" not in svg and b"Date" not in svg, "glyphs as paths, no date"
    assert plots.save_figure(fig, "", "x") == [] and sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "efficacy_os_lfs.png", "efficacy_os_lfs.svg"]
    plt.close(fig)


def test_publish_gives_a_captioned_figure_with_alt_text_and_closes_it():
    fig, ax = plt.subplots()
    shown = plots.publish(fig, "demo", "Demo <caption> (n = 3).", 'Alt with "quotes".')
    bundle = shown._repr_mimebundle_()
    assert bundle["text/plain"] == "Figure: Demo <caption> (n = 3)."
    assert 'alt="Alt with &quot;quotes&quot;."' in bundle["text/html"]
    assert "<figcaption" in bundle["text/html"] and "Demo &lt;caption&gt;" in bundle["text/html"]
    assert not plt.fignum_exists(fig.number), "closed, so Jupyter does not show it twice"
    with pytest.raises(ValueError, match="alt text"):
        plots.publish(plt.subplots()[0], "demo", "caption", "  ")
    plt.close("all")


def test_time_ticks_follow_the_data_and_the_axis_width():
    assert plots.time_ticks(97.5) == list(range(0, 109, 12))
    assert plots.time_ticks(97.5, width_in=2.5)[1] > 12, "a narrow axis gets a larger step"
    assert plots.time_ticks(2000, "days") == [0, 365, 730, 1095, 1460, 1825, 2190]
    assert plots.time_ticks(8) == [0, 3, 6, 9]
    with pytest.raises(ValueError, match="unit"):
        plots.time_ticks(10, "weeks")


def test_a_best_legend_is_exported_where_matplotlib_puts_it_and_left_best():
    from cartlib.plots import style

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(range(10), label="rising")
    ax.plot(range(10)[::-1], label="falling")
    ax.plot([0, 9], [9, 9], label="top")
    legend = ax.legend(loc="best")
    fig.canvas.draw()
    where = legend.get_window_extent().bounds
    pinned = style._fix_best_legends(fig)
    assert [leg for leg, _ in pinned] == [legend]
    assert np.allclose(legend.get_window_extent().bounds, where), "pinned where 'best' put it"
    for leg, loc in pinned:
        leg.set_loc(loc)
    style.render(fig)
    assert legend._loc == 0, "render leaves the legend at 'best'"
    plt.close(fig)
