"""Kinetic figures of large cohorts draw a deterministic sample of lines, say so, and stay fast;
the median is still of every patient."""
import time

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cartlib import plots  # noqa: E402
from cartlib.plots.kinetics import MAX_LINES, sample_patients  # noqa: E402

N = 20_000


def _pk(n):
    rng = np.random.default_rng(7)
    ids = np.repeat([f"S{i:05d}" for i in range(n)], 8)
    return pd.DataFrame({"USUBJID": ids, "DAY": np.tile([0, 4, 7, 14, 28, 60, 182, 378], n).astype(float),
                         "CONC": rng.lognormal(7, 2, 8 * n)})


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_spaghetti_of_20000_patients_is_fast_draws_a_sample_and_says_so():
    pk = _pk(N)
    start = time.perf_counter()
    ax = plots.plot_spaghetti(pk, lloq=100)
    elapsed = time.perf_counter() - start
    profiles = [line for line in ax.lines if str(line.get_gid()).startswith("profile:")]
    assert len(profiles) == MAX_LINES
    assert f"lines of {MAX_LINES} of {N:,} patients (deterministic sample); median of all {N:,}" in _legend(ax)
    median = [line for line in ax.lines if line.get_gid() == "median"][0]
    expected = plots.median_pk_profile(pk, 100)
    assert np.allclose(median.get_ydata(), expected["median"], equal_nan=True)
    assert elapsed < 5, f"{elapsed:.1f} s"
    plt.close(ax.figure)


def test_il6_of_20000_patients_is_fast_draws_a_sample_and_says_so():
    rng = np.random.default_rng(3)
    ids = np.repeat([f"S{i:05d}" for i in range(N)], 6)
    labs = pd.DataFrame({"USUBJID": ids, "DAY": np.tile([0, 1, 3, 7, 14, 28], N), "TEST": "IL6",
                         "VALUE": rng.lognormal(2, 1, 6 * N)})
    start = time.perf_counter()
    ax = plots.plot_il6(labs)
    elapsed = time.perf_counter() - start
    assert len([line for line in ax.lines if str(line.get_gid()).startswith("il6:")]) == MAX_LINES
    assert f"lines of {MAX_LINES} of {N:,} patients (deterministic sample)" in _legend(ax)
    assert elapsed < 5, f"{elapsed:.1f} s"
    plt.close(ax.figure)


def test_small_cohorts_draw_every_line_without_a_note():
    ax = plots.plot_spaghetti(_pk(MAX_LINES), lloq=100)
    assert len([line for line in ax.lines if str(line.get_gid()).startswith("profile:")]) == MAX_LINES
    assert not any("sample" in text for text in _legend(ax))
    plt.close(ax.figure)


def test_the_sample_is_deterministic_and_keeps_highlighted_patients():
    ids = [f"S{i:05d}" for i in range(5000)]
    first = sample_patients(ids, 50, keep=["S04999"])
    assert first == sample_patients(list(reversed(ids)) + ids[:10], 50, keep=["S04999"])
    assert "S04999" in first and len(first) in (50, 51)
    ax = plots.plot_spaghetti(_pk(1000), lloq=100, highlight=["S00999"], max_patients=20)
    assert "profile:S00999" in {line.get_gid() for line in ax.lines}
    plt.close(ax.figure)
