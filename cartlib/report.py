"""One self-contained HTML page from the executed notebooks (nbconvert does the rendering).

The page opens with the run's parameters and the data fingerprint, then a table of
contents, then every section's narrative, tables and figures (PNG, embedded). Code cells
are hidden unless ``with_code``. Scripts that nbconvert's template would load from the
web (MathJax, require.js) are removed: the report must open offline and nothing in it
uses them.
"""
from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import nbformat

_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)
_MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)


def _title(nb) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, re.M)
            if m:
                return m.group(1).strip()
    return "Untitled section"


def _header_html(manifest: dict[str, Any], toc: list[tuple[str, str]]) -> str:
    params = manifest.get("parameters", {})
    rows = "".join(
        f"<tr><td><code>{html.escape(k)}</code></td><td><code>{html.escape(str(v))}</code></td></tr>"
        for k, v in params.items()
    )
    items = "".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for a, t in toc)
    return (
        "<h1>CAR-T outcome study report</h1>"
        f"<p><b>Data:</b> {html.escape(str(manifest.get('data', '')))}<br>"
        f"<b>Data fingerprint (SHA-256):</b> <code>{html.escape(str(manifest.get('data_fingerprint', '')))}</code><br>"
        f"<b>cartlib:</b> {html.escape(str(manifest.get('cartlib', '')))}</p>"
        f"<details><summary><b>Parameters of this run</b></summary><table>{rows}</table></details>"
        f"<h2>Contents</h2><ul>{items}</ul>"
    )


def combine_notebooks(paths: list[Path], manifest: dict[str, Any]):
    """One notebook: a header cell (parameters, fingerprint, contents) and every section in order."""
    notebooks = [nbformat.read(p, as_version=4) for p in paths]
    toc = [(f"section-{p.stem}", _title(nb)) for p, nb in zip(paths, notebooks)]
    combined = nbformat.v4.new_notebook()
    combined.metadata = notebooks[0].metadata if notebooks else {}
    combined.cells.append(nbformat.v4.new_markdown_cell(_header_html(manifest, toc)))
    for (anchor, _), nb in zip(toc, notebooks):
        combined.cells.append(nbformat.v4.new_markdown_cell(f'<a id="{anchor}"></a>'))
        for cell in nb.cells:
            tags = set(cell.get("metadata", {}).get("tags", []))
            if {"parameters", "injected-parameters"} & tags:
                continue  # shown once, in the header
            combined.cells.append(cell)
    return combined


def build_report(notebook_folder: Path, target: Path, manifest: dict[str, Any], with_code: bool = False) -> Path:
    """Render the executed notebooks of ``notebook_folder`` into the single page ``target``."""
    from nbconvert import HTMLExporter

    paths = sorted(Path(notebook_folder).glob("*.ipynb"))
    combined = combine_notebooks(paths, manifest)
    exporter = HTMLExporter(template_name="lab", exclude_input=not with_code,
                            exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(combined, resources={"metadata": {"name": "CAR-T outcome study report"}})
    body = _MATHJAX_CONFIG.sub("", body)
    body = _REMOTE_SCRIPT.sub("", body)
    Path(target).write_text(body, encoding="utf-8")
    return Path(target)
