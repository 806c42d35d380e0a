"""One self-contained HTML page from the executed notebooks (nbconvert does the rendering).

The page opens with the run's parameters and the data fingerprint, then a table of
contents, then every section's narrative, tables and figures (PNG, embedded). Code cells
are hidden unless ``with_code``. A notebook that failed is replaced by a page naming the
notebook, the cell and the error.

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

import html
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


def header_html(manifest: dict[str, Any], toc: list[tuple[str, str]]) -> str:
    """The page's opening: data, fingerprint, version, the parameters and the contents.

    >>> "&lt;b&gt;" in header_html({"data": "<b>", "parameters": {}}, [])
    True
    """
    params = manifest.get("parameters", {})
    rows = "".join(f"<tr><td><code>{_text(k)}</code></td><td><code>{_text(v)}</code></td></tr>"
                   for k, v in params.items())
    items = "".join(f'<li><a href="#{_text(a)}">{_text(t)}</a></li>' for a, t in toc)
    failed = manifest.get("failures") or []
    status = (f"<p><b>Incomplete run:</b> {len(failed)} notebook{'s' if len(failed) != 1 else ''} failed; "
              "their sections show the error.</p>" if failed else "")
    return (
        "<h1>CAR-T outcome study report</h1>"
        f"<p><b>Data:</b> {_text(manifest.get('data', ''))}<br>"
        f"<b>Data fingerprint (SHA-256):</b> <code>{_text(manifest.get('data_fingerprint', ''))}</code><br>"
        f"<b>cartlib:</b> {_text(manifest.get('cartlib', ''))}</p>{status}"
        f"<details><summary><b>Parameters of this run</b></summary><table>{rows}</table></details>"
        f"<h2>Contents</h2><ul>{items}</ul>"
    )


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
                      names: Sequence[str] | None = None):
    """One notebook: a header cell (parameters, fingerprint, contents) and every section in
    order, with a failure page in place of each notebook named in ``failures``.

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
    combined.cells.append(html_cell(header_html(manifest, toc)))
    for (anchor, title), name in zip(toc, order):
        combined.cells.append(html_cell(f'<a id="{_text(anchor)}"></a>'))
        if name in failed:
            combined.cells.append(html_cell(failure_html(title, failed[name])))
            continue
        for cell in notebooks[name].cells:
            tags = set(cell.get("metadata", {}).get("tags", []))
            if {"parameters", "injected-parameters"} & tags:
                continue  # shown once, in the header
            combined.cells.append(cell)
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


def build_report(notebook_folder: Path, target: Path, manifest: dict[str, Any], with_code: bool = False,
                 failures: Sequence[dict[str, Any]] = (), notebooks: Sequence[str] | None = None) -> Path:
    """Render the executed notebooks of ``notebook_folder`` into the single page ``target``.

    ``failures`` (dicts with ``notebook``, ``cell``, ``execution_count``, ``error``,
    ``traceback``) are shown in place of their notebooks; ``notebooks`` gives the sections'
    order (default: the files' names, sorted).
    """
    from nbconvert import HTMLExporter

    paths = sorted(Path(notebook_folder).glob("*.ipynb"))
    combined = combine_notebooks(paths, manifest, failures, notebooks)
    exporter = HTMLExporter(template_name="lab", exclude_input=not with_code,
                            exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(combined, resources={"metadata": {"name": "CAR-T outcome study report"}})
    Path(target).write_text(make_self_contained(body), encoding="utf-8")
    return Path(target)
