"""The shared look of cartlib's figures: one font, one colour per group, axis helpers, export.

Every figure of the suite goes through this module, so a group has the same colour in every
figure (:data:`GROUP_COLOURS`), time axes are ticked alike (:func:`time_ticks`), skewed
quantities sit on log axes labelled with plain numbers (:func:`plain_log_ticks`), and a
figure reaches the reader with a caption and alt text (:func:`publish`) and, when asked, as
SVG and 300-dpi PNG files (:func:`save_figure`).
"""
from __future__ import annotations

import base64
import contextlib
import html
import io
import math
import re
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
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

# Every figure is drawn at the size it is printed: a journal's full page width (180 mm, e.g.
# Frontiers) and at most a page's usable height (240 mm), text no smaller than MIN_FONT_PT there.
FULL_WIDTH_IN = 7.1
MAX_HEIGHT_IN = 9.4
MIN_FONT_PT = 6.5
FIGURE_WIDTH_IN = 7.0   # a figure's width: with the crop's padding its file stays within FULL_WIDTH_IN
CROP_PAD_IN = 0.04      # white margin kept around the contents by the tight crop
# The one place for the base font sizes (pt), chosen for figures printed at FULL_WIDTH_IN:
# labels 8 pt, ticks and legends 7.5 pt, and "small" (0.833 × 8 = 6.7 pt) the smallest text.
FONT_SIZES = {"font.size": 8.0, "axes.labelsize": 8.0, "axes.titlesize": 8.5, "figure.titlesize": 9.0,
              "figure.labelsize": 8.0, "xtick.labelsize": 7.5, "ytick.labelsize": 7.5,
              "legend.fontsize": 7.5, "legend.title_fontsize": 7.5}


def set_style(context: str = "paper") -> None:
    """Apply the shared look: seaborn "ticks", Okabe–Ito colours, DejaVu Sans, figures of a journal's
    full width (:data:`FIGURE_WIDTH_IN`) at 100 dpi, text sized for that width (:data:`FONT_SIZES`).

    ``context`` (seaborn's) scales lines and markers ("paper": thin enough for a figure printed
    7 inches wide); the font sizes are always :data:`FONT_SIZES`.

    >>> with mpl.rc_context():  # rc_context only to leave the caller's style untouched
    ...     set_style()
    ...     mpl.rcParams["figure.figsize"], mpl.rcParams["font.size"], mpl.rcParams["font.sans-serif"][0]
    ([7.0, 4.2], 8.0, 'DejaVu Sans')
    """
    sns.set_theme(context=context, style="ticks", palette=list(OKABE_ITO.values()))
    mpl.rcParams.update(FONT_SIZES)
    mpl.rcParams.update({
        "figure.figsize": (FIGURE_WIDTH_IN, 4.2), "figure.dpi": SCREEN_DPI, "savefig.dpi": SCREEN_DPI,
        "savefig.pad_inches": CROP_PAD_IN, "savefig.bbox": "tight", "axes.spines.top": False, "axes.spines.right": False,
        "legend.frameon": False, "font.family": "sans-serif", "font.sans-serif": [FONT],
        "svg.fonttype": "path",     # glyphs as paths: the SVG looks the same without the font
        "svg.hashsalt": "cartlib",  # fixed ids so SVG output is byte-stable across runs
    })


def figure_axes(ax, figsize):
    """``ax`` when given, else the axes of a new constrained-layout figure of ``figsize`` inches."""
    if ax is not None:
        return ax
    return plt.subplots(figsize=figsize, layout="constrained")[1]


def plot_not_estimable(reason: str | None, ax=None, title: str | None = None, figsize=(FIGURE_WIDTH_IN, 4.2)):
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


def plain_log_ticks(axis, numticks: int = 12) -> None:
    """Label a log axis with plain numbers (1,000 rather than 1e+03) and no minor labels, at
    most ``numticks`` of them (every second or third decade on a long range)."""
    # "1,000,000" reads better in a clinical report than "1e+06" or 10^6.
    axis.set_major_locator(mticker.LogLocator(base=10, numticks=numticks))
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
    e.g. at-risk counts, on an axis ``width_in`` inches wide at 7–8 pt) and gives at least 3
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
    # a label of `chars` characters at 7-8 pt (FONT_SIZES) takes about 0.06 in a character, plus a 0.12 in gap
    most = max(3, int(width_in / (0.06 * max(chars, 2) + 0.12)))

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


@contextlib.contextmanager
def _laid_out(fig, dpi: float, tight: bool = True):
    """Lay ``fig`` out once (text measured at ``dpi``) and yield its tight bounding box (inches,
    padded; the whole figure when not ``tight``) for every export.

    ``savefig(bbox_inches="tight")`` draws a figure twice per file (once to find the box, once
    to render) and runs the layout engine each time; a figure exported as SVG, 300-dpi PNG and
    screen PNG would be laid out three times and drawn six. Here the layout engine runs once and
    is switched off while the files are written (each is then drawn once, inside the same box),
    and switched back on afterwards.
    """
    engine, screen_dpi = fig.get_layout_engine(), fig.dpi
    fig.dpi = dpi
    try:
        if engine is not None:
            engine.execute(fig)
        placed = _fix_best_legends(fig)
        box = fig.get_tightbbox().padded(mpl.rcParams["savefig.pad_inches"]) if tight else fig.bbox_inches
    finally:
        fig.dpi = screen_dpi
    with mpl.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)   # None (not "none"): savefig then skips its own layout draw
    try:
        yield box
    finally:
        for legend, loc in placed:
            legend.set_loc(loc)
        if engine is not None:
            fig.set_layout_engine(engine)


def _fix_best_legends(fig) -> list:
    """Pin every ``loc="best"`` legend of ``fig`` where "best" puts it now; returns (legend, loc)
    pairs to undo it.

    matplotlib searches for the best place afresh each time the legend is measured or drawn
    (it tests the legend's box against every line and point of the axes): a figure of survival
    curves with four panels spent a third of its export time there. Pinned once after the
    layout, every file shows the legend in the same place, found once.
    """
    placed = []
    renderer = fig.canvas.get_renderer()
    for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
        if legend is None or legend._loc not in (0, "best"):
            continue
        anchor = legend.get_bbox_to_anchor()
        corner = legend.get_window_extent(renderer)
        placed.append((legend, "best"))
        legend.set_loc(((corner.x0 - anchor.x0) / anchor.width, (corner.y0 - anchor.y0) / anchor.height))
    return placed


def _svg(fig, box) -> bytes:
    buffer = io.BytesIO()
    # no date, software version or random ids in the file: the same figure gives the same bytes
    with mpl.rc_context({"svg.hashsalt": "cartlib", "svg.fonttype": "path"}):
        fig.savefig(buffer, format="svg", bbox_inches=box, metadata={"Date": None})
    return buffer.getvalue()


def _raster(fig, box, dpi: float):
    """``fig`` drawn once at ``dpi`` inside ``box``, as a PIL image (RGB when fully opaque)."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="rgba", dpi=dpi, bbox_inches=box)
    raw = buffer.getvalue()
    # the canvas is the box at dpi, truncated to whole pixels after floating-point arithmetic
    # that may land just below or above an integer: the size whose pixels fill the buffer
    sizes = {(w, h) for w in _whole(box.width * dpi) for h in _whole(box.height * dpi) if 4 * w * h == len(raw)}
    size = sizes.pop() if len(sizes) == 1 else None
    if size is None:   # no single size fits: let PNG carry the size
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches=box)
        with Image.open(buffer) as png:
            image = png.convert("RGBA")
        raw, size = image.tobytes(), image.size
    image = Image.frombuffer("RGBA", size, raw, "raw", "RGBA", 0, 1)
    # a figure on an opaque background loses nothing without the alpha channel, and its PNG
    # is a quarter smaller and quicker to compress
    opaque = np.frombuffer(raw, np.uint8)[3::4].min(initial=255) == 255
    return image.convert("RGB") if opaque else image


def _whole(x: float) -> set[int]:
    return {math.floor(x), math.ceil(x), round(x)}


def _png(image, dpi: float, compress_level: int = 6) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="png", dpi=(dpi, dpi), compress_level=compress_level)   # no software stamp, no date
    return buffer.getvalue()


def render(fig, svg: bool = True, png_dpi: int | None = PNG_DPI, screen: bool = True,
           tight: bool = True) -> dict[str, bytes]:
    """``fig`` (a Figure or Axes) cropped to its contents as ``"svg"``, ``"png"`` (``png_dpi``) and
    ``"screen"`` (PNG at :data:`SCREEN_DPI`) bytes, laid out once for all of them.

    When the 300-dpi PNG is made, the screen PNG is that image shrunk three times, not a third
    drawing of the figure. ``tight=False`` keeps the whole figure instead of cropping it: for a
    figure laid out by hand to fill its area (small multiples), which then is not measured
    artist by artist.

    >>> fig, ax = plt.subplots(figsize=(2, 1.5))
    >>> out = render(fig)
    >>> sorted(out), out["svg"][:5], out["png"][:4], out["screen"][:4]
    (['png', 'screen', 'svg'], b'<?xml', b'\\x89PNG', b'\\x89PNG')
    >>> plt.close(fig)
    """
    fig = getattr(fig, "figure", fig)
    out, image = {}, None
    with _laid_out(fig, png_dpi or SCREEN_DPI, tight) as box:
        if svg:
            out["svg"] = _svg(fig, box)
        if png_dpi:
            image = _raster(fig, box, png_dpi)
            # zlib's fastest level: the 300-dpi file is about a third larger and written in
            # two thirds of the time (compressing it costs as much as drawing a simple figure)
            out["png"] = _png(image, png_dpi, compress_level=1)
        if screen:
            factor = (png_dpi or 0) / SCREEN_DPI
            small = (image.reduce(int(factor)) if image is not None and factor >= 2 and factor == int(factor)
                     else _raster(fig, box, SCREEN_DPI))
            out["screen"] = _png(small, SCREEN_DPI)
    return out


def _write(figures_dir, name: str, files: dict[str, bytes]) -> list[Path]:
    from ..atomic import write_file

    folder, stem, paths = Path(figures_dir), _slug(name), []
    for fmt in ("svg", "png"):
        path = folder / f"{stem}.{fmt}"
        write_file(path, files[fmt])
        paths.append(path)
    return paths


def save_figure(fig, figures_dir: str | Path | None, name: str, tight: bool = True) -> list[Path]:
    """Save ``fig`` as ``NAME.svg`` and ``NAME.png`` (300 dpi) into ``figures_dir``; returns the paths.

    ``figures_dir`` empty or None saves nothing (a notebook run by hand). ``name`` gives a
    stable file name (lower case, ``_`` for anything but letters and digits), so a figure
    keeps its file name from run to run. Each file is written to a temporary name and renamed
    into place. ``tight``: as for :func:`render`.

    >>> import tempfile
    >>> fig, ax = plt.subplots()
    >>> with tempfile.TemporaryDirectory() as d:
    ...     [p.name for p in save_figure(fig, d, "OS and LFS")]
    ['os_and_lfs.svg', 'os_and_lfs.png']
    >>> save_figure(fig, "", "os"), plt.close(fig)
    ([], None)
    """
    if fig is None or not figures_dir:
        return []
    _slug(name)   # a bad name fails before anything is drawn
    return _write(figures_dir, name, render(fig, screen=False, tight=tight))


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


def publish(fig, name: str, caption: str, alt: str, figures_dir: str | Path | None = "",
            tight: bool = True) -> CaptionedFigure:
    """Save ``fig`` (see :func:`save_figure`), render it for the page, close it, and return it
    captioned: the way every figure of the notebooks reaches the reader.

    ``caption`` says what the figure shows, for how many patients and by which method;
    ``alt`` describes the picture for a reader who cannot see it (what is on each axis and
    what the curves or points show). The figure is closed, so Jupyter does not show it twice.
    The figure is laid out once for the files and the page (:func:`render`; ``tight`` as there).

    >>> fig, ax = plt.subplots()
    >>> shown = publish(fig, "demo", "Demo (n = 0).", "An empty panel.")
    >>> shown.png[:4], 'alt="An empty panel."' in shown._repr_mimebundle_()["text/html"]
    (b'\\x89PNG', True)
    """
    fig = getattr(fig, "figure", fig)
    if not alt.strip():
        raise ValueError(f"figure {name!r}: alt text is empty")
    if figures_dir:
        rendered = render(fig, tight=tight)
        files = _write(figures_dir, name, rendered)
    else:
        rendered, files = render(fig, svg=False, png_dpi=None, tight=tight), []
    plt.close(fig)
    return CaptionedFigure(name, rendered["screen"], caption, alt, files)


def png_bytes(fig, dpi: int = SCREEN_DPI) -> bytes:
    """``fig`` (a Figure or Axes) as PNG bytes, cropped to its contents, without a software stamp."""
    buffer = io.BytesIO()
    getattr(fig, "figure", fig).savefig(buffer, format="png", dpi=dpi, bbox_inches="tight",
                                        metadata={"Software": None})
    return buffer.getvalue()
