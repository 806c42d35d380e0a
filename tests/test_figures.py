"""Figure regression: the main figures against stored baseline images, and no overlapping text.

Baselines live in tests/baseline_images/ (PNG at the report's 100 dpi, drawn with matplotlib's
bundled DejaVu Sans). After an intended change of a figure, regenerate them with

    CARTLIB_REGENERATE_BASELINES=1 .venv/bin/pytest -p no:cacheprovider tests/test_figures.py

and look at every changed PNG before committing it (docs/FIGURES.md).
"""
import itertools
import os
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
    old = line.get_color()
    try:
        line.set_color(plots.OKABE_ITO["vermillion"])
        line.set_linewidth(4)
        actual = tmp_path / "bca_loss.png"
        actual.write_bytes(plots.style.png_bytes(fig))
    finally:
        line.set_color(old)
        line.set_linewidth(1.8)
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
