"""One self-contained HTML page from the executed notebooks (nbconvert does the rendering).

The page opens with what a reader asks first: the cohort in one line and the headline
findings of the paper (this run's value beside the paper's, with a status mark; the paper
only beside the bundled cohort), then the contents, the data fingerprint and the parameters.
Then every section's narrative, tables and figures (PNG, embedded); each section's
"Results keys" block leaves the reading path for a folded appendix of every results key
with a label. Code cells are hidden unless ``with_code``. A notebook that failed is replaced
by a page naming the notebook, the cell and the error.

The page is safe to open whatever the input was called:

* every string that comes from the user (folder and file names, parameter values, error
  messages) is HTML-escaped and placed in cells whose HTML nbconvert copies as it is, so
  nothing of it is ever read as Markdown (where ``[x](javascript:…)`` would become a live
  link);
* it loads nothing: scripts are removed (nothing in the report needs one), as are CSS
  comments (which cite web addresses), and a Content-Security-Policy forbids scripts,
  ``javascript:`` links and any fetch except ``data:`` images.
"""
from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat

CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
                           "base-uri 'none'; form-action 'none'")
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.I | re.S)
_STYLE = re.compile(r"(<style\b[^>]*>)(.*?)(</style\s*>)", re.I | re.S)
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
# an attribute that would fetch or run something: a remote or protocol-relative URL, or javascript:
_UNSAFE_ATTRIBUTE = re.compile(r"""\s(?:src|href|action|formaction|srcset)\s*=\s*(["'])\s*(?:https?:|//|javascript:)"""
                               r""".*?\1""", re.I | re.S)
_HEAD = re.compile(r"<head\b[^>]*>", re.I)


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if m:
                return m.group(1).strip()
    return "Untitled section"


def html_cell(markup: str):
    """A cell whose only content is the HTML ``markup``, copied into the page as it is (never
    read as Markdown): a code cell without source and with one ``text/html`` output."""
    output = nbformat.v4.new_output("display_data", data={"text/html": markup})
    return nbformat.v4.new_code_cell("", outputs=[output], metadata={"transient": {"remove_source": True}})


def _text(value: Any) -> str:
    """``value`` as HTML text: escaped, with undecodable characters shown as escapes."""
    return html.escape(str(value).encode("utf-8", "backslashreplace").decode("utf-8"), quote=True)


REPORT_CSS = """
.cartlib-headline table { border-collapse: collapse; margin: 0.5em 0 0.3em 0; }
.cartlib-headline th, .cartlib-headline td { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: left;
  vertical-align: top; }
.cartlib-headline td.num { white-space: nowrap; }
.cartlib-status-matched { color: #00754f; font-weight: bold; white-space: nowrap; }
.cartlib-status-differs { color: #b34700; font-weight: bold; white-space: nowrap; }
.cartlib-status-infeasible, .cartlib-status-missing { color: #666; white-space: nowrap; }
.cartlib-note { color: #555; font-size: 0.9em; }
details.cartlib-collapsed > summary, .cartlib-appendix summary { cursor: pointer; font-weight: bold; }
.cartlib-headline th, .cartlib-headline td { text-align: left !important; }
/* printed: A4, narrow margins, smaller type and figures, so the reading path fits in few pages */
@page { size: A4; margin: 12mm; }
@media print {
  :root { --jp-content-font-size1: 9.5pt; --jp-content-font-size2: 11pt; --jp-content-font-size3: 13pt;
          --jp-content-font-size4: 15pt; --jp-content-font-size5: 17pt; --jp-ui-font-size0: 8pt;
          --jp-ui-font-size1: 8.5pt; --jp-code-font-size: 8pt; }
  body { font-size: 9.5pt; zoom: 0.88; }  /* the whole page a little smaller on paper */
  .jp-RenderedImage img, figure.cartlib-figure img { max-width: 64% !important; }
  .jp-RenderedHTMLCommon p, .jp-RenderedHTMLCommon ul { margin-top: 0.25em; margin-bottom: 0.35em; }
  .jp-Cell, .jp-OutputArea-output, .jp-RenderedHTMLCommon { margin-top: 0 !important; margin-bottom: 0 !important; }
  figure.cartlib-figure { margin-bottom: 0.6em !important; }
  .jp-RenderedHTMLCommon table { font-size: 8pt; }
  .jp-Cell { padding: 0 !important; }
  .jp-RenderedHTMLCommon h1, .jp-RenderedHTMLCommon h2, .jp-RenderedHTMLCommon h3 { break-after: avoid; }
  figure.cartlib-figure, .jp-RenderedImage { break-inside: avoid; }
}
"""


def headline_html(results: dict[str, Any], with_paper: bool) -> str:
    """The cohort in one line and the table of headline findings (this run; the paper and the
    status when ``with_paper``), as HTML with every value escaped.

    >>> page = headline_html({"cohort.n": 50, "efficacy.cr_rate": 0.98}, with_paper=True)
    >>> "50 patients" in page and "98.0%" in page and "✓ matched" in page
    True
    """
    from .headline import STATUS_MARKS, cohort_line, headline_table

    table = headline_table(results, with_paper=with_paper)
    head = "<th>Finding</th><th>This run (95% CI)</th>" + ("<th>Paper</th><th>Status</th>" if with_paper else "")
    rows = []
    for _, row in table.iterrows():
        cells = f"<td>{_text(row['finding'])}</td><td class=\"num\">{_text(row['this run'])}</td>"
        if with_paper:
            note = f"<br><span class=\"cartlib-note\">{_text(row['note'])}</span>" if row["note"] else ""
            cells += (f"<td class=\"num\">{_text(row['paper'])}</td>"
                      f"<td><span class=\"cartlib-status-{_text(row['status'])}\">{_text(STATUS_MARKS[row['status']])}"
                      f"</span>{note}</td>")
        rows.append(f"<tr>{cells}</tr>")
    legend = ("<p class=\"cartlib-note\">Status: ✓ matched = within the tolerance stated for the paper's figure; "
              "✗ differs = outside it; ○ not scored = the published figure cannot hold together with the paper's "
              "own counts (section 7 says why). Intervals are 95% confidence intervals; ranges are "
              "minimum–maximum.</p>"
              if with_paper else
              "<p class=\"cartlib-note\">Intervals are 95% confidence intervals; ranges are minimum–maximum. "
              "Section 7 compares every published figure with this cohort.</p>")
    return (f"<p><b>Cohort:</b> {_text(cohort_line(results))}</p>"
            f"<h2 id=\"headline\">Headline findings</h2><div class=\"cartlib-headline\"><table><thead><tr>{head}</tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table></div>{legend}")


def header_html(manifest: dict[str, Any], toc: list[tuple[str, str]], results: dict[str, Any] | None = None) -> str:
    """The page's opening: the cohort in one line and the headline findings (when ``results``
    are given; the paper's values only beside the bundled cohort), the contents, then the
    data, fingerprint, version and parameters of the run.

    >>> "&lt;b&gt;" in header_html({"data": "<b>", "parameters": {}}, [])
    True
    """
    from .headline import is_bundled_cohort

    params = manifest.get("parameters", {})
    rows = "".join(f"<tr><td><code>{_text(k)}</code></td><td><code>{_text(v)}</code></td></tr>"
                   for k, v in params.items())
    items = "".join(f'<li><a href="#{_text(a)}">{_text(t)}</a></li>' for a, t in toc)
    failed = manifest.get("failures") or []
    status = (f"<p><b>Incomplete run:</b> {len(failed)} notebook{'s' if len(failed) != 1 else ''} failed; "
              "their sections show the error.</p>" if failed else "")
    headline = (headline_html(results, with_paper=is_bundled_cohort(manifest.get("data_fingerprint")))
                if results else "")
    return (
        f"<style>{REPORT_CSS}</style>"
        f"<h1>CAR-T outcome study report</h1>{status}{headline}"
        f"<h2>Contents</h2><ul>{items}</ul>"
        f"<p class=\"cartlib-note\"><b>Data:</b> {_text(manifest.get('data', ''))}<br>"
        f"<b>Data fingerprint (SHA-256):</b> <code>{_text(manifest.get('data_fingerprint', ''))}</code><br>"
        f"<b>cartlib:</b> {_text(manifest.get('cartlib', ''))}</p>"
        f"<details><summary><b>Parameters of this run</b></summary><table>{rows}</table></details>"
    )


APPENDIX_ANCHOR = "appendix-keys"
APPENDIX_TITLE = "Appendix: every results key"


def appendix_html(results: dict[str, Any]) -> str:
    """Every results.json key by section, folded: the key, its label, this run's value and the
    paper's where it has one (results.json stays the machine interface).

    >>> page = appendix_html({"cohort.n": 50, "bca.n": 48})
    >>> page.count("<details") == 2 and "patients, n" in page
    True
    """
    from .scorecard import key_table

    blocks = []
    for section in dict.fromkeys(k.split(".")[0] for k in results):
        values = {k: v for k, v in results.items() if k.split(".")[0] == section}
        table = key_table(values, labels=True).to_html(escape=True, border=0)
        blocks.append(f"<details><summary>{_text(section)} ({len(values)} keys)</summary>{table}</details>")
    return (f'<div class="cartlib-appendix"><h1 id="{APPENDIX_ANCHOR}">{_text(APPENDIX_TITLE)}</h1>'
            "<p>The numbers of <code>results.json</code>, rounded to four significant digits (the file keeps ten), "
            "with the paper's value where it reports one. Each key is described in the documentation of the results "
            "(<code>docs/RESULTS.md</code>).</p>" + "".join(blocks) + "</div>")


_KEYS_HEADING = re.compile(r"^\s*##\s+Results keys", re.I)
_MAJOR_HEADING = re.compile(r"^\s*#{1,2}\s", re.M)


def reading_cells(cells):
    """The cells of a section without its "Results keys" block (a markdown heading ``## Results
    keys…`` and every cell up to the next heading of level 1 or 2): the report shows those keys,
    labelled, in its appendix."""
    out, skipping = [], False
    for cell in cells:
        if cell.cell_type == "markdown":
            if _KEYS_HEADING.match(cell.source):
                skipping = True
                continue
            if skipping and _MAJOR_HEADING.match(cell.source):
                skipping = False
        if not skipping:
            out.append(cell)
    return out


def failure_html(title: str, failure: dict[str, Any]) -> str:
    """The page standing in for a notebook that failed: notebook, cell, error and traceback.

    >>> page = failure_html("4. PK", {"notebook": "03_pk", "cell": 3, "execution_count": 2,
    ...                               "error": "ValueError: <x>", "traceback": ""})
    >>> "cell 3" in page and "&lt;x&gt;" in page
    True
    """
    cell = failure.get("cell")
    where = (f"cell {_text(cell)} (execution count [{_text(failure.get('execution_count'))}])" if cell is not None
             else "before its first cell")
    trace = failure.get("traceback") or ""
    return (
        f"<h1>{_text(title)}: not completed</h1>"
        f"<p>The notebook <code>{_text(failure.get('notebook', ''))}.ipynb</code> failed in {where}, so this "
        "section has no results. The other sections are complete. The executed notebook, up to the "
        "failing cell, is in the report folder's <code>notebooks/</code>.</p>"
        f"<pre>{_text(failure.get('error', ''))}</pre>"
        + (f"<details><summary>Traceback</summary><pre>{_text(trace)}</pre></details>" if trace else "")
    )


def combine_notebooks(paths: list[Path], manifest: dict[str, Any], failures: Sequence[dict[str, Any]] = (),
                      names: Sequence[str] | None = None, results: dict[str, Any] | None = None):
    """One notebook: a header cell (headline findings, contents, parameters, fingerprint) and
    every section in order, with a failure page in place of each notebook named in
    ``failures``, then (with ``results``) the appendix of every results key.

    ``names`` fixes the sections and their order (default: the stems of ``paths``); a name
    without a file appears only if it failed.
    """
    by_name = {p.stem: p for p in paths}
    failed = {f["notebook"]: f for f in failures}
    order = [n for n in (names or sorted(by_name)) if n in by_name or n in failed]
    order += sorted(set(failed) - set(order))
    notebooks = {n: nbformat.read(by_name[n], as_version=4) for n in order if n in by_name}
    toc = [(f"section-{n}", _title(notebooks[n]) if n in notebooks else n) for n in order]
    combined = nbformat.v4.new_notebook()
    first = next(iter(notebooks.values()), None)
    combined.metadata = first.metadata if first is not None else {}
    contents = toc + ([(APPENDIX_ANCHOR, APPENDIX_TITLE)] if results else [])
    combined.cells.append(html_cell(header_html(manifest, contents, results)))
    for (anchor, title), name in zip(toc, order):
        combined.cells.append(html_cell(f'<a id="{_text(anchor)}"></a>'))
        if name in failed:
            combined.cells.append(html_cell(failure_html(title, failed[name])))
            continue
        for cell in reading_cells(notebooks[name].cells):
            tags = set(cell.get("metadata", {}).get("tags", []))
            if {"parameters", "injected-parameters"} & tags:
                continue  # shown once, in the header
            combined.cells.append(cell)
    if results:
        combined.cells.append(html_cell(appendix_html(results)))
    for number, cell in enumerate(combined.cells):  # new cells get random ids: the same page, the same bytes
        cell["id"] = f"cartlib-{number}"
    return combined


def make_self_contained(page: str) -> str:
    """Remove scripts, CSS comments and any attribute that fetches or runs something, and add
    the Content-Security-Policy as the first thing in ``<head>``.

    >>> out = make_self_contained('<html><head></head><body><script>x()</script>'
    ...                           '<a href="javascript:alert(1)">a</a><img src="http://h/t.png"></body></html>')
    >>> "script>" in out, "javascript:" in out, "http:" in out, "Content-Security-Policy" in out
    (False, False, False, True)
    """
    page = _MATHJAX_CONFIG.sub("", page)
    page = _SCRIPT.sub("", page)
    page = _STYLE.sub(lambda m: m.group(1) + _CSS_COMMENT.sub("", m.group(2)) + m.group(3), page)
    page = _UNSAFE_ATTRIBUTE.sub("", page)
    meta = f'<meta http-equiv="Content-Security-Policy" content="{html.escape(CONTENT_SECURITY_POLICY)}">'
    page, n = _HEAD.subn(lambda m: m.group(0) + meta, page, count=1)
    return page if n else meta + page


PAGE_NAME = "CAR-T outcome study report"


@functools.lru_cache(maxsize=2)
def html_exporter(with_code: bool = False):
    """The nbconvert exporter of the page (the JupyterLab look; code cells only ``with_code``),
    made once per process: it compiles its templates on first use and keeps them."""
    from nbconvert import HTMLExporter

    # optimistic_validation: the page's notebook is checked against the format once, after all of
    # nbconvert's preprocessors, not after each of the twelve (a quarter of the page's time)
    return HTMLExporter(template_name="lab", exclude_input=not with_code, optimistic_validation=True,
                        exclude_input_prompt=True, exclude_output_prompt=True)


class _PageAsRendered:
    """Stands in for BeautifulSoup inside nbconvert's HTMLExporter (see :func:`render_page`): the
    page as the templates rendered it, with nothing for the exporter's selectors to change."""

    def __init__(self, markup: str, features: str | None = None):
        self.markup = markup

    def select(self, selector: str) -> list:
        return []

    def __str__(self) -> str:
        return self.markup


_NEEDS_FOCUS = re.compile(r'(<div class="[^"]*\bjp-(?:Cell-inputWrapper|OutputArea-output)\b[^"]*")(?![^>]*\btabindex=)')
_IMG_WITHOUT_ALT = re.compile(r"<img\b(?![^>]*\balt=)", re.I)


def accessible(page: str) -> str:
    """Every cell's input and output focusable from the keyboard (``tabindex="0"``, so a wide table
    scrolls without a mouse) and every image with alt text, as nbconvert's HTMLExporter makes them.

    >>> accessible('<div class="jp-OutputArea-output x"><img src="data:,">')
    '<div class="jp-OutputArea-output x" tabindex="0"><img alt="No description has been provided for this image" src="data:,">'
    """
    page = _NEEDS_FOCUS.sub(r'\1 tabindex="0"', page)
    return _IMG_WITHOUT_ALT.sub('<img alt="No description has been provided for this image"', page)


def render_page(notebook, with_code: bool = False) -> str:
    """``notebook`` as one HTML page by nbconvert's HTMLExporter, without the exporter's closing pass.

    That pass parses the whole rendered page with BeautifulSoup's pure-Python parser and writes it
    out again, only to add the two accessibility attributes of :func:`accessible`: 0.9 s of a
    1.3 s report, on the run's critical path (the report is built after the last notebook). The
    exporter is handed the page as rendered instead, and :func:`accessible` adds the attributes.
    Not thread-safe: it swaps a name of nbconvert's module while it renders.
    """
    from nbconvert.exporters import html as exporter_module

    original = getattr(exporter_module, "BeautifulSoup", None)
    if original is not None:  # (a later nbconvert without the pass is used as it is)
        exporter_module.BeautifulSoup = _PageAsRendered
    try:
        body, _ = html_exporter(with_code).from_notebook_node(notebook, resources={"metadata": {"name": PAGE_NAME}})
    finally:
        if original is not None:
            exporter_module.BeautifulSoup = original
    return accessible(body)


def prepare_report(with_code: bool = False) -> None:
    """Import nbconvert and compile the page's templates now, so that :func:`build_report` later
    only renders (``cartlib run`` calls this while its last notebook runs)."""
    html_exporter(with_code).from_notebook_node(nbformat.v4.new_notebook(),
                                                resources={"metadata": {"name": PAGE_NAME}})


def build_report(notebook_folder: Path, target: Path, manifest: dict[str, Any], with_code: bool = False,
                 failures: Sequence[dict[str, Any]] = (), notebooks: Sequence[str] | None = None,
                 results: dict[str, Any] | None = None) -> Path:
    """Render the executed notebooks of ``notebook_folder`` into the single page ``target``.

    ``failures`` (dicts with ``notebook``, ``cell``, ``execution_count``, ``error``,
    ``traceback``) are shown in place of their notebooks; ``notebooks`` gives the sections'
    order (default: the files' names, sorted). ``results`` (default: the ``results.json``
    beside ``target``, if there is one) gives the headline findings and the appendix.
    """
    if results is None and Path(target).with_name("results.json").is_file():
        results = json.loads(Path(target).with_name("results.json").read_text(encoding="utf-8"))
    paths = sorted(Path(notebook_folder).glob("*.ipynb"))
    combined = combine_notebooks(paths, manifest, failures, notebooks, results)
    Path(target).write_text(make_self_contained(render_page(combined, with_code)), encoding="utf-8")
    return Path(target)
