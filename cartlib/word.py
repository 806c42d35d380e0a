"""The paper's tables as one Word document (``cartlib run --docx`` writes ``report.docx``).

Clinical authors write papers in Word, so the tables a paper prints — Table S1 (baseline),
Table 1A/1B (multivariable Cox models of LFS and OS), Table 2 (severe CRS: the univariable
screen and the two multivariable models), Table 3 (kinetics by characteristic) and the
transplant table — go into one ``.docx`` with the captions and footnotes the report shows:
the tables come from the same display functions the notebooks call, so the two never differ.

The file is the same bytes for the same input (no creation date, fixed times inside the ZIP
container) and is written atomically (:func:`cartlib.atomic.write_file`).
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

TITLE = "CAR-T outcome study: the paper's tables"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)   # the earliest time a ZIP entry can carry: no real date in the file


def paper_tables(table: pd.DataFrame, params: dict[str, Any]) -> list[pd.DataFrame]:
    """Table S1, 1A, 1B, 2 (screen, model 1, model 2), 3 and the transplant table, each a
    display frame with a ``caption`` (and ``notes``), exactly as the notebooks show them.

    >>> from cartlib.analysis import analysis_table, load
    >>> from cartlib.params import defaults
    >>> tables = paper_tables(analysis_table(load(defaults()), defaults()), defaults())
    >>> [t.caption.split(".")[0] for t in tables][:3]
    ['Table S1', 'Table 1A', 'Table 1B']
    """
    from .sections import cohort, efficacy, pk, toxicity, transplant

    out = [cohort.baseline_display(table)]
    for endpoint, label, covariates in (("lfs", "Table 1A", "lfs_multivariable"),
                                        ("os", "Table 1B", "os_multivariable")):
        model = efficacy.multivariable(table, endpoint, params[covariates])
        out.append(efficacy.multivariable_display(table, endpoint, model, label))
    out.append(toxicity.screen_display(table, toxicity.severe_crs_screen(table, params), params))
    for name in ("scrs_model1", "scrs_model2"):
        out.append(toxicity.model_display_scrs(table, name, toxicity.severe_crs_model(table, params[name])))
    out.append(pk.table3_display(table))
    out.append(transplant.strata_table(table, params))
    return out


def _cells(frame: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and body rows of ``frame`` as text, the index levels as the first columns."""
    flat = pd.DataFrame(frame).reset_index()
    header = ["" if str(c).startswith("level_") or str(c) == "index" else str(c) for c in flat.columns]
    body = [["" if pd.isna(v) else str(v) for v in row] for row in flat.itertuples(index=False)]
    return header, body


def document(frames: list[pd.DataFrame], heading: str = TITLE, lines: tuple[str, ...] = ()):
    """A python-docx ``Document``: a heading, ``lines`` of text, then each frame as its caption
    (Word's Caption style, above the table, as journals print it), a table with a bold header
    row, and its notes."""
    from docx import Document
    from docx.shared import Pt

    doc = Document()
    doc.add_heading(heading, level=1)
    for line in lines:
        doc.add_paragraph(line)
    for frame in frames:
        doc.add_paragraph(str(getattr(frame, "caption", "") or ""), style="Caption")
        header, body = _cells(frame)
        grid = doc.add_table(rows=1 + len(body), cols=len(header))
        grid.style = "Table Grid"
        for r, values in enumerate([header, *body]):
            for c, value in enumerate(values):
                cell = grid.cell(r, c)
                cell.text = value
                for run in cell.paragraphs[0].runs:
                    run.font.size = Pt(8)
                    run.bold = r == 0
        for note in getattr(frame, "notes", None) or []:
            doc.add_paragraph(str(note)).runs[0].font.size = Pt(8)
        doc.add_paragraph("")
    return doc


def docx_bytes(doc) -> bytes:
    """The bytes of ``doc`` without any date: the creation and change dates are removed from
    its properties and every ZIP entry gets the same fixed time, so equal documents give
    equal bytes.

    >>> from docx import Document
    >>> docx_bytes(Document()) == docx_bytes(Document())
    True
    """
    props = doc.core_properties._element   # python-docx has no public way to drop a property
    for child in list(props):
        if child.tag.rsplit("}", 1)[-1] in ("created", "modified", "lastPrinted"):
            props.remove(child)
    raw = io.BytesIO()
    doc.save(raw)
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=ZIP_TIME), src.read(info.filename),
                         compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


def write_docx(target: str | Path, params: dict[str, Any], snapshot: str | Path | None = None) -> Path:
    """Write the paper's tables for the cohort of ``params`` (read from the run's validated
    ``snapshot`` when given) into the Word file ``target``; returns its path.

    >>> import tempfile
    >>> from cartlib.params import defaults
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_docx(Path(d) / "tables.docx", defaults()).stat().st_size > 10_000
    True
    """
    from .analysis import analysis_table, load
    from .atomic import write_file

    cohort = load(params, snapshot=snapshot)
    table = analysis_table(cohort, params)
    lines = (f"{len(table)} patients; data fingerprint (SHA-256) {cohort.fingerprint}.",
             "Estimates with 95% confidence intervals; p-values two-sided, three decimals.")
    target = Path(target)
    write_file(target, docx_bytes(document(paper_tables(table, params), lines=lines)))
    return target
