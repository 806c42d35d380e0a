"""The shared look of cartlib's figures: one font, one colour per group, axis helpers, export.

Every figure of the suite goes through this module, so a group has the same colour in every
figure (:data:`GROUP_COLOURS`), time axes are ticked alike (:func:`time_ticks`), skewed
quantities sit on log axes labelled with plain numbers (:func:`plain_log_ticks`), and a
figure reaches the reader with a caption and alt text (:func:`publish`) and, when asked, as
SVG and 300-dpi PNG files (:func:`save_figure`).
"""
from __future__ import annotations

import base64
import html
import io
import math
import re
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import seaborn as sns

OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00",
             "purple": "#CC79A7", "grey": "#999999"}

# One colour per group, the same in every figure (Okabe–Ito: distinguishable with the common
# colour-vision deficiencies). A curve of all patients is black.
GROUP_COLOURS = {
    "all": OKABE_ITO["black"],
    "HSCT": OKABE_ITO["vermillion"], "no HSCT": OKABE_ITO["blue"],
    "CD19+": OKABE_ITO["orange"], "CD19−": OKABE_ITO["sky"],
    "responder": OKABE_ITO["green"], "non-responder": OKABE_ITO["grey"],
    "relapse": OKABE_ITO["orange"], "non-relapse mortality": OKABE_ITO["purple"],
    "CRS grade 0–2": OKABE_ITO["blue"], "CRS grade ≥ 3": OKABE_ITO["vermillion"],
}

# matplotlib's bundled font: figures (and the test baselines) look the same on every machine
FONT = "DejaVu Sans"
PNG_DPI = 300      # exported PNG files (journals ask for at least 300 dpi)
SCREEN_DPI = 100   # the PNG embedded in notebooks and the report


def set_style(context: str = "notebook") -> None:
    """Apply the shared look: seaborn "ticks", Okabe–Ito colours, DejaVu Sans, 9-inch figures at 100 dpi.

    >>> with mpl.rc_context():  # rc_context only to leave the caller's style untouched
    ...     set_style()
    ...     mpl.rcParams["figure.figsize"], mpl.rcParams["savefig.dpi"], mpl.rcParams["font.sans-serif"][0]
    ([9.0, 5.0], 100.0, 'DejaVu Sans')
    """
    sns.set_theme(context=context, style="ticks", palette=list(OKABE_ITO.values()))
    mpl.rcParams.update({
        "figure.figsize": (9, 5), "figure.dpi": SCREEN_DPI, "savefig.dpi": SCREEN_DPI,
        "savefig.bbox": "tight", "axes.spines.top": False, "axes.spines.right": False,
        "legend.frameon": False, "font.family": "sans-serif", "font.sans-serif": [FONT],
        "svg.fonttype": "path",     # glyphs as paths: the SVG looks the same without the font
        "svg.hashsalt": "cartlib",  # fixed ids so SVG output is byte-stable across runs
    })


def figure_axes(ax, figsize):
    """``ax`` when given, else the axes of a new constrained-layout figure of ``figsize`` inches."""
    if ax is not None:
        return ax
    return plt.subplots(figsize=figsize, layout="constrained")[1]


def plot_not_estimable(reason: str | None, ax=None, title: str | None = None, figsize=(7, 4.5)):
    """An empty panel saying ``not estimable (reason)`` in the place of a figure; returns the Axes.

    A cohort can lack what a figure needs (no patient in a subgroup, no PK sample, no
    B-cell aplasia); the report then shows why instead of stopping. The text carries the
    gid ``"not estimable"``.

    >>> ax = plot_not_estimable("no patient with B-cell aplasia", title="BCA loss")
    >>> [t.get_text() for t in ax.texts], ax.get_title()
    (['not estimable (no patient with B-cell aplasia)'], 'BCA loss')
    >>> plt.close(ax.figure)
    """
    from ..tables import not_estimable

    ax = figure_axes(ax, figsize)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, not_estimable(reason), transform=ax.transAxes, ha="center", va="center",
            wrap=True, color=OKABE_ITO["grey"], gid="not estimable")
    if title:
        ax.set_title(title)
    return ax


def plain_log_ticks(axis) -> None:
    """Label a log axis with plain numbers (1,000 rather than 1e+03) and no minor labels."""
    # "1,000,000" reads better in a clinical report than "1e+06" or 10^6.
    axis.set_major_locator(mticker.LogLocator(base=10, numticks=12))
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(mticker.NullFormatter())


# Tick steps a reader expects: months by the year (then by 2 or 3 years on long axes, by
# quarter or month on short ones), days by week, month-like 30 days, quarter, half-year, year.
_STEPS = {"months": (1, 3, 6, 12, 24, 36, 60, 120, 240), "days": (7, 14, 30, 60, 90, 180, 365, 730, 1825, 3650, 7300),
          "years": (1, 2, 5, 10, 20)}
_PREFERRED = {"months": 12}


def time_ticks(end: float, unit: str = "months", width_in: float = 6.0, chars: int = 4) -> list[float]:
    """Evenly spaced ticks 0, step, 2·step, ... covering [0, ``end``], with the step chosen from the data.

    Months are ticked every 12 whenever that leaves room for the labels (``chars`` characters,
    e.g. at-risk counts, on an axis ``width_in`` inches wide at 8–10 pt) and gives at least 3
    ticks; otherwise, as for days (7, 14, 30, ..., 365, 730, ... 7300), the densest step that
    gives 3 to 8 ticks with room for the labels.

    >>> time_ticks(100), time_ticks(100, width_in=2.0), time_ticks(10)
    ([0, 12, 24, 36, 48, 60, 72, 84, 96, 108], [0, 36, 72, 108], [0, 3, 6, 9, 12])
    >>> time_ticks(800, "days"), time_ticks(120, "days")
    ([0, 180, 360, 540, 720, 900], [0, 30, 60, 90, 120])
    """
    if unit not in _STEPS:
        raise ValueError(f"unit must be one of {sorted(_STEPS)}, not {unit!r}")
    end = max(float(end), 1e-9)
    # a label of `chars` characters at 8-10 pt takes about 0.075 in a character, plus a 0.2 in gap
    most = max(3, int(width_in / (0.075 * max(chars, 2) + 0.2)))

    def count(step):
        return math.ceil(end / step - 1e-9) + 1

    steps = _STEPS[unit]
    # nothing fits: a very short axis takes the smallest step, a very long one the largest
    fitting = [s for s in steps if 3 <= count(s) <= most] or [steps[0] if count(steps[0]) < 3 else steps[-1]]
    preferred = _PREFERRED.get(unit)
    # the preferred step whenever it fits; else the densest step with at most 8 ticks
    step = preferred if preferred in fitting else next((s for s in fitting if count(s) <= 8), fitting[-1])
    return [step * k for k in range(max(count(step), 2))]   # at least an axis from 0 to one step


# --- output: caption, alt text, files ---------------------------------------------------------

def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise ValueError(f"figure name {name!r} has no letter or digit")
    return slug


def save_figure(fig, figures_dir: str | Path | None, name: str) -> list[Path]:
    """Save ``fig`` as ``NAME.svg`` and ``NAME.png`` (300 dpi) into ``figures_dir``; returns the paths.

    ``figures_dir`` empty or None saves nothing (a notebook run by hand). ``name`` gives a
    stable file name (lower case, ``_`` for anything but letters and digits), so a figure
    keeps its file name from run to run. Each file is written to a temporary name and renamed
    into place.

    >>> import tempfile
    >>> fig, ax = plt.subplots()
    >>> with tempfile.TemporaryDirectory() as d:
    ...     [p.name for p in save_figure(fig, d, "OS and LFS")]
    ['os_and_lfs.svg', 'os_and_lfs.png']
    >>> save_figure(fig, "", "os"), plt.close(fig)
    ([], None)
    """
    from ..atomic import write_file

    if fig is None or not figures_dir:
        return []
    fig = getattr(fig, "figure", fig)   # an Axes or a Figure
    folder, stem, paths = Path(figures_dir), _slug(name), []
    for fmt, dpi in (("svg", None), ("png", PNG_DPI)):
        buffer = io.BytesIO()
        # no date, software version or random ids in the files: the same figure gives the same bytes
        with mpl.rc_context({"svg.hashsalt": "cartlib", "svg.fonttype": "path"}):
            fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight",
                        metadata={"Date": None} if fmt == "svg" else {"Software": None})
        path = folder / f"{stem}.{fmt}"
        write_file(path, buffer.getvalue())
        paths.append(path)
    return paths


class CaptionedFigure:
    """A rendered figure with its caption and alt text, as notebooks and the report show it.

    Displayed in a notebook it is one HTML ``<figure>``: the PNG (embedded) with ``alt`` text,
    then the caption under it; its plain-text form is the caption alone, so nbval and text
    exports stay readable. ``png`` holds the screen-resolution PNG bytes, ``files`` the
    exported paths.
    """

    def __init__(self, name: str, png: bytes, caption: str, alt: str, files=()):
        self.name, self.png, self.caption, self.alt, self.files = name, png, caption, alt, list(files)

    def _repr_mimebundle_(self, include=None, exclude=None):
        data = base64.b64encode(self.png).decode("ascii")
        markup = (f'<figure class="cartlib-figure" id="figure-{_slug(self.name)}" style="margin:0 0 1.5em 0">'
                  f'<img src="data:image/png;base64,{data}" alt="{html.escape(self.alt, quote=True)}" '
                  f'style="max-width:100%">'
                  f'<figcaption style="font-size:0.92em;max-width:60em">{html.escape(self.caption)}</figcaption>'
                  "</figure>")
        return {"text/html": markup, "text/plain": f"Figure: {self.caption}"}

    def __repr__(self) -> str:
        return f"Figure: {self.caption}"


def publish(fig, name: str, caption: str, alt: str, figures_dir: str | Path | None = "") -> CaptionedFigure:
    """Save ``fig`` (see :func:`save_figure`), render it for the page, close it, and return it
    captioned: the way every figure of the notebooks reaches the reader.

    ``caption`` says what the figure shows, for how many patients and by which method;
    ``alt`` describes the picture for a reader who cannot see it (what is on each axis and
    what the curves or points show). The figure is closed, so Jupyter does not show it twice.

    >>> fig, ax = plt.subplots()
    >>> shown = publish(fig, "demo", "Demo (n = 0).", "An empty panel.")
    >>> shown.png[:4], 'alt="An empty panel."' in shown._repr_mimebundle_()["text/html"]
    (b'\\x89PNG', True)
    """
    fig = getattr(fig, "figure", fig)
    if not alt.strip():
        raise ValueError(f"figure {name!r}: alt text is empty")
    files = save_figure(fig, figures_dir, name)
    png = png_bytes(fig)
    plt.close(fig)
    return CaptionedFigure(name, png, caption, alt, files)


def png_bytes(fig, dpi: int = SCREEN_DPI) -> bytes:
    """``fig`` (a Figure or Axes) as PNG bytes, cropped to its contents, without a software stamp."""
    buffer = io.BytesIO()
    getattr(fig, "figure", fig).savefig(buffer, format="png", dpi=dpi, bbox_inches="tight",
                                        metadata={"Software": None})
    return buffer.getvalue()
