"""Reading what the runner needs from a notebook file: its code cells, the names its parameters
cell declares, the imports that open its set-up cell.

The file is read as the plain JSON of the notebook format (version 4): nbformat's reader also
checks the whole file against the format's schema, about a tenth of a second per notebook,
which ``cartlib run`` would spend in its main process, three times per notebook, before the
first kernel starts (papermill checks each notebook anyway when it executes it).
"""
from __future__ import annotations

import ast
import json
import os

__all__ = ["code_cells", "count_code_cells", "leading_imports", "parameter_names"]


def code_cells(path: str | os.PathLike) -> list[tuple[str, list[str]]]:
    """The code cells of the notebook at ``path``, as (source, tags), in order (read as JSON).

    >>> import nbformat, tempfile
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A"), nbformat.v4.new_code_cell("x = 1")])
    >>> with tempfile.NamedTemporaryFile("w", suffix=".ipynb", delete=False) as fh:
    ...     nbformat.write(nb, fh)
    >>> code_cells(fh.name)
    [('x = 1', [])]
    """
    with open(path, encoding="utf-8") as fh:
        cells = json.load(fh).get("cells", [])
    out = []
    for cell in cells:
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            out.append(("".join(source) if isinstance(source, list) else source,
                        list(cell.get("metadata", {}).get("tags", []))))
    return out


def parameter_names(path: str | os.PathLike) -> set[str] | None:
    """Names assigned in the notebook's cell tagged ``parameters`` (empty when it has none); None
    when that cell is not plain Python (e.g. IPython magics), for papermill to read instead.

    >>> import nbformat, tempfile
    >>> cell = nbformat.v4.new_code_cell("data = None  # folder\\nlloq: float = 100.0", metadata={"tags": ["parameters"]})
    >>> with tempfile.NamedTemporaryFile("w", suffix=".ipynb", delete=False) as fh:
    ...     nbformat.write(nbformat.v4.new_notebook(cells=[cell]), fh)
    >>> sorted(parameter_names(fh.name))
    ['data', 'lloq']
    """
    for source, tags in code_cells(path):
        if "parameters" in tags:
            try:
                statements = ast.parse(source).body
            except SyntaxError:
                return None
            targets = [t for s in statements if isinstance(s, (ast.Assign, ast.AnnAssign))
                       for t in (s.targets if isinstance(s, ast.Assign) else [s.target])]
            return {t.id for t in targets if isinstance(t, ast.Name)}
    return set()


def leading_imports(path: str | os.PathLike) -> str:
    """The import statements that open the notebook's first code cell after its parameters (the
    cell that sets a notebook up), as code; "" when there are none or the cell is not plain Python.

    >>> import nbformat, tempfile
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import json\\nfrom os import path\\nx = 1")])
    >>> with tempfile.NamedTemporaryFile("w", suffix=".ipynb", delete=False) as fh:
    ...     nbformat.write(nb, fh)
    >>> leading_imports(fh.name)
    'import json\\nfrom os import path'
    """
    cells = [source for source, tags in code_cells(path) if "parameters" not in tags]
    if not cells:
        return ""
    try:
        statements = ast.parse(cells[0]).body
    except SyntaxError:  # IPython magics: leave the cell to the kernel
        return ""
    imports = []
    for statement in statements:
        if not isinstance(statement, (ast.Import, ast.ImportFrom)):
            break
        imports.append(ast.unparse(statement))
    return "\n".join(imports)


def count_code_cells(path: str | os.PathLike) -> int:
    """How many code cells the notebook at ``path`` has."""
    return len(code_cells(path))
