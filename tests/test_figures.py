"""Figure regression: the main figures against stored baseline images, and no overlapping text.

Baselines live in tests/baseline_images/ (PNG at the report's 100 dpi, drawn with matplotlib's
bundled DejaVu Sans). After an intended change of a figure, regenerate them with

    CARTLIB_REGENERATE_BASELINES=1 .venv/bin/pytest -p no:cacheprovider tests/test_figures.py

and look at every changed PNG before committing it (docs/FIGURES.md).
"""
import itertools
import os
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.testing.compare import compare_images  # noqa: E402

from cartlib import plots  # noqa: E402
from cartlib.analysis import DEFAULT_COHORT, analysis_table  # noqa: E402
from cartlib.io import load_cohort  # noqa: E402
from cartlib.params import defaults  # noqa: E402
from cartlib.sections import bca, efficacy, pk, transplant  # noqa: E402
from cartlib.synth import generate_cohort, write_cohort  # noqa: E402

BASELINES = Path(__file__).parent / "baseline_images"
REGENERATE = os.environ.get("CARTLIB_REGENERATE_BASELINES") == "1"
TOLERANCE = 3.0   # RMS difference in 0-255 grey levels: anti-aliasing noise passes, a moved line does not

#: the figures compared with a baseline (the report's main figures)
MAIN = ("efficacy_os_lfs", "bca_loss", "transplant_os_strata", "pk_profiles", "cohort_swimmer", "bca_kinetics")


def draw_all(cohort, table, params) -> dict:
    """The time-axis, scatter, kinetic, grade and forest figures of the notebooks, open (name -> Figure)."""
    figures = {
        "cohort_swimmer": plots.plot_swimmer(table),
        "efficacy_os_lfs": efficacy.plot_os_lfs(table, params),
        "efficacy_cumulative_incidence": efficacy.plot_cumulative_incidence(table),
        "toxicity_il6": plots.plot_il6(cohort.labs, table, uln=params["il6_uln"]),
        "pk_profiles": plots.plot_spaghetti(cohort.pk, table, lloq=params["lloq"]),
        "pk_expansion_persistence": pk.plot_kinetics_correlations(table, params),
        "bca_loss": bca.plot_bca_loss(table, params),
        "bca_kinetics": bca.plot_bca_tlast(table, params),
        "transplant_os_strata": transplant.plot_strata(table, params, "os"),
        "transplant_landmark": transplant.plot_landmark(table, params),
        "toxicity_grades": plots.plot_grade_bars(table),
        "efficacy_lfs_forest": plots.plot_forest(
            efficacy.multivariable(table, "lfs", params["lfs_multivariable"]).summary, labels=efficacy.COVARIATE_LABELS),
    }
    return {name: getattr(f, "figure", f) for name, f in figures.items()}


@pytest.fixture(scope="module")
def params():
    return defaults()


@pytest.fixture(scope="module")
def bundled(params):
    plots.set_style()
    cohort = load_cohort(DEFAULT_COHORT)
    figures = draw_all(cohort, analysis_table(cohort, params), params)
    yield figures
    plt.close("all")


@pytest.fixture(scope="module")
def five_patients(params, tmp_path_factory):
    plots.set_style()
    matplotlib.rcParams["figure.max_open_warning"] = 0   # both cohorts' figures stay open for the module
    folder = tmp_path_factory.mktemp("five")
    write_cohort(generate_cohort(5, seed=3), folder)
    cohort = load_cohort(folder)
    figures = draw_all(cohort, analysis_table(cohort, params), params)
    yield figures
    plt.close("all")


# -- image comparison ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", MAIN)
def test_main_figure_matches_its_baseline(bundled, name, tmp_path):
    actual = tmp_path / f"{name}.png"
    actual.write_bytes(plots.style.png_bytes(bundled[name]))
    expected = BASELINES / f"{name}.png"
    if REGENERATE:
        BASELINES.mkdir(exist_ok=True)
        expected.write_bytes(actual.read_bytes())
    assert expected.exists(), f"no baseline {expected.name}: regenerate (see this module's docstring)"
    diff = compare_images(str(expected), str(actual), tol=TOLERANCE)
    assert diff is None, diff


def test_image_comparison_fails_on_a_changed_figure(bundled, tmp_path):
    """The comparison is not vacuous: moving one curve's colour exceeds the tolerance."""
    fig = bundled["bca_loss"]
    line = next(l for l in fig.axes[0].lines if str(l.get_gid()).startswith("curve:"))
    old, old_width = line.get_color(), line.get_linewidth()
    try:
        line.set_color(plots.OKABE_ITO["vermillion"])
        line.set_linewidth(4)
        actual = tmp_path / "bca_loss.png"
        actual.write_bytes(plots.style.png_bytes(fig))
    finally:
        line.set_color(old)
        line.set_linewidth(old_width)
    assert compare_images(str(BASELINES / "bca_loss.png"), str(actual), tol=TOLERANCE) is not None


# -- no overlapping text ---------------------------------------------------------------------------

def _boxes(texts, renderer):
    out = []
    for t in texts:
        if t.get_visible() and t.get_text().strip():
            box = t.get_window_extent(renderer)
            out.append((t.get_text(), box.expanded(0.98, 0.9)))   # touching is not overlapping
    return out


def _overlaps(boxes):
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes, 2) if ba.overlaps(bb)]


def _axes(fig):
    for ax in fig.axes:
        yield ax
        yield from ax.child_axes


def _drawn_ticklabels(axis, renderer):
    lo, hi = sorted(axis.get_view_interval())
    return [t for t, loc in zip(axis.get_ticklabels(), axis.get_ticklocs()) if lo - 1e-9 <= loc <= hi + 1e-9]


def text_collisions(fig) -> list:
    """Pairs of texts that overlap: tick labels of one axis, or the numbers-at-risk block with
    the x tick labels and axis label above it; and correlation notes that cover a point."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    found = []
    for ax in _axes(fig):
        under = [t for t in ax.texts if str(t.get_gid()).startswith("at risk")]
        xs = _boxes([*_drawn_ticklabels(ax.xaxis, renderer), ax.xaxis.label, *under], renderer)
        found += [(ax.get_title(), pair) for pair in _overlaps(xs)]
        found += [(ax.get_title(), pair) for pair in _overlaps(_boxes(_drawn_ticklabels(ax.yaxis, renderer), renderer))]
        for note in (t for t in ax.texts if t.get_gid() == "corr"):
            box = note.get_window_extent(renderer)
            for coll in (c for c in ax.collections if c.get_gid() == "points"):
                pts = ax.transData.transform(coll.get_offsets())
                inside = [(box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1) for x, y in pts]
                if any(inside):
                    found.append((ax.get_title(), (note.get_text(), "a point")))
    return found


def test_no_text_overlaps_on_the_bundled_cohort(bundled):
    collisions = {name: text_collisions(fig) for name, fig in bundled.items()}
    assert {k: v for k, v in collisions.items() if v} == {}


def test_no_text_overlaps_on_a_five_patient_cohort(five_patients):
    collisions = {name: text_collisions(fig) for name, fig in five_patients.items()}
    assert {k: v for k, v in collisions.items() if v} == {}


def test_the_overlap_check_finds_overlapping_ticks():
    """The check is not vacuous: the old BCA ticks 0/30/60/90 days on a months-long axis collide."""
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_xlim(0, 2000)
    ax.set_xticks([0, 30, 60, 90, 180, 365, 730])
    try:
        assert text_collisions(fig)
    finally:
        plt.close(fig)


def test_groups_have_one_colour_in_every_figure(bundled):
    """HSCT and no HSCT are drawn in their GROUP_COLOURS in the subgroup KMs and the landmark plot."""
    seen = {}
    for name in ("transplant_os_strata", "transplant_landmark"):
        for ax in bundled[name].axes:
            for line in ax.lines:
                gid = str(line.get_gid())
                if gid.startswith("curve:"):
                    group = "no HSCT" if "no HSCT" in gid else "HSCT"
                    seen.setdefault(group, set()).add(line.get_color())
    assert seen == {"HSCT": {plots.GROUP_COLOURS["HSCT"]}, "no HSCT": {plots.GROUP_COLOURS["no HSCT"]}}


def test_month_axes_are_ticked_every_12(bundled):
    for name in ("efficacy_os_lfs", "transplant_os_strata", "efficacy_cumulative_incidence"):
        for ax in bundled[name].axes:
            ticks = np.diff(ax.get_xticks())
            assert len(ticks) and set(ticks) == {12}, (name, ax.get_xticks())


# -- the page of a journal -------------------------------------------------------------------------

def smallest_font_pt(svg: str) -> float | None:
    """The smallest text of a saved SVG, in points: matplotlib writes each text's glyphs as paths
    scaled by ``font size / 100`` (``scale(s -s)``), so the file tells the size it prints at."""
    scales = re.findall(r"scale\(([0-9.]+) -[0-9.]+\)", svg)
    return min((100 * float(s) for s in scales), default=None)


def test_every_figure_of_a_run_fits_a_journal_page_with_legible_text(e2e_run):
    """Every figure of the default run, as saved, is at most a journal's full width (180 mm) and
    usable page height (240 mm), its PNG at 300 dpi, and no text in it is smaller than 6.5 pt."""
    from PIL import Image

    from cartlib.plots.curves import AT_RISK_FONTSIZE
    from cartlib.plots.style import FULL_WIDTH_IN, MAX_HEIGHT_IN, MIN_FONT_PT, PNG_DPI

    pngs = sorted((e2e_run / "figures").glob("*.png"))
    assert len(pngs) >= 20, [p.name for p in pngs]
    sizes, fonts = {}, {}
    for png in pngs:
        with Image.open(png) as image:
            sizes[png.stem] = tuple(round(px / PNG_DPI, 2) for px in image.size)
        fonts[png.stem] = smallest_font_pt(png.with_suffix(".svg").read_text(encoding="utf-8"))
    assert fonts["efficacy_os_lfs"] == pytest.approx(AT_RISK_FONTSIZE), "the SVG reading finds the numbers at risk"
    tolerance = 0.01   # a pixel's rounding
    assert {k: v for k, v in sizes.items() if v[0] > FULL_WIDTH_IN + tolerance or v[1] > MAX_HEIGHT_IN + tolerance} == {}
    assert {k: v for k, v in fonts.items() if v is None or v < MIN_FONT_PT} == {}


# -- export cost and the kinetic-model fits --------------------------------------------------------

def test_publish_lays_out_once_and_draws_each_file_once(monkeypatch, tmp_path):
    """SVG and 300-dpi PNG are one drawing each, the screen PNG is the 300-dpi image shrunk:
    ``savefig(bbox_inches="tight")`` per file drew a figure six times."""
    from PIL import Image

    draws = []
    original = matplotlib.figure.Figure.draw
    monkeypatch.setattr(matplotlib.figure.Figure, "draw", lambda fig, renderer: draws.append(1) or original(fig, renderer))
    fig, ax = plt.subplots(figsize=(4, 3), layout="constrained")
    ax.plot([0, 12, 24], [1.0, 0.8, 0.7])
    ax.set_xlabel("months")
    shown = plots.publish(fig, "demo", "Demo.", "A line.", tmp_path)
    assert len(draws) == 2
    png, screen = Image.open(tmp_path / "demo.png"), Image.open(__import__("io").BytesIO(shown.png))
    assert screen.size == (-(-png.size[0] // 3), -(-png.size[1] // 3))
    assert fig.get_layout_engine() is not None, "the layout engine is switched back on"


def test_forest_layout_settles_in_one_pass():
    """The text columns sit at a fixed distance from the axes, so laying out again moves nothing
    (placed at fractions of the axes width, each pass narrowed the axes until they collapsed)."""
    ax = plots.plot_forest(efficacy_summary(), title="LFS")
    engine = ax.figure.get_layout_engine()
    engine.execute(ax.figure)
    first = ax.get_position().bounds
    engine.execute(ax.figure)
    assert np.allclose(ax.get_position().bounds, first, atol=1e-3)
    assert ax.get_position().width > 0.3
    plt.close(ax.figure)


def efficacy_summary():
    import pandas as pd

    return pd.DataFrame({"hr": [0.965, 0.232, 0.599], "hr_lo": [0.940, 0.064, 0.071], "hr_hi": [0.992, 0.843, 5.068],
                         "p": [0.010, 0.026, 0.638]}, index=["bca_duration_days", "female", "d28_mrd_neg"])


@pytest.fixture(scope="module")
def kinetic_fit():
    from cartlib.pk.model import KineticModelFitter

    return KineticModelFitter().fit(generate_cohort(14, seed=2)["pk"], lloq=100)


def test_representative_patients_run_from_the_best_fit_to_the_worst(kinetic_fit):
    from cartlib.pk.model_plots import fit_quality, representative_patients

    quality = fit_quality(kinetic_fit)
    chosen = representative_patients(kinetic_fit, 5)
    ranked = sorted(quality.index, key=lambda u: (np.isnan(quality[u]), np.nan_to_num(quality[u]), u))
    assert chosen == [ranked[i] for i in (0, 3, 6, 10, 13)], "evenly spaced ranks, first and last included"
    assert representative_patients(kinetic_fit, 50) == ranked


def test_the_fit_grid_is_one_axes_with_each_curve_in_its_panel_and_no_text_overlap(kinetic_fit):
    from cartlib.pk.model import FITTED
    from cartlib.pk.model_plots import CURVE_STATUSES, plot_fit_overview

    assert set(CURVE_STATUSES) == set(FITTED)
    fig = plot_fit_overview(kinetic_fit, k=14)
    try:
        overlay, grid = fig.axes
        curves = [l for l in grid.lines if str(l.get_gid()).startswith("fit:")]
        assert len(curves) == len(kinetic_fit.ids_)
        fig.canvas.draw()
        panels = [c.get_clip_box() for c in curves]
        assert all(grid.bbox.x0 - 1 <= b.x0 and b.x1 <= grid.bbox.x1 + 1 for b in panels)
        assert not [(a, b) for a, b in itertools.combinations(panels, 2) if a.overlaps(b.expanded(0.99, 0.99))]
        texts = _boxes(grid.texts, fig.canvas.get_renderer())
        assert len(texts) > len(curves) and _overlaps(texts) == []
        assert "(not identifiable)" in " ".join(t.get_text() for t in grid.texts)
    finally:
        plt.close(fig)
