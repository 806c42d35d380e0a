"""A spreadsheet template of the cohort contract (``cartlib template --out cohort.xlsx``).

The workbook holds a README sheet and the six contract sheets, each with the contract's header
row, one example patient (P001 of the docs/COHORT.md example), a comment on every header cell
explaining the field, and Excel data validation: a drop-down list on every column with fixed
codes, whole-number checks on integer columns and range checks where the contract has a range.
Codes, kinds and ranges come from :data:`cartlib.validate.SPEC` (never a second copy), so the
template and the loader cannot disagree. A filled-in template loads with
:func:`cartlib.io.load_cohort` as it is: the loader reads the six sheets by name and ignores
the README sheet.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from .atomic import write_file
from .io import EXAMPLE
from .outdir import PathError
from .validate import EVENT_DETAIL, SPEC, TABLES, Col

__all__ = ["write_template", "build_template", "column_codes", "FIELD_MEANING", "EXAMPLE_PATIENT"]

EXAMPLE_PATIENT = "P001"
"""The example patient the template carries (from the docs/COHORT.md example cohort)."""
FIRST_DATA_ROW, LAST_DATA_ROW = 2, 1_048_576
"""Data validation covers every row below the header (Excel's last row is 1,048,576)."""

FIELD_MEANING = {
    ("subjects", "USUBJID"): "patient identifier, kept as written",
    ("subjects", "AGE"): "age at infusion, years",
    ("subjects", "SEX"): "sex",
    ("subjects", "INDICATION"): "why CAR-T was given: MRD re-emergence, persistent MRD, or intolerance of chemotherapy",
    ("subjects", "GENRISK"): "cytogenetic risk: high, or standard (low or intermediate) per NCCN 2024",
    ("subjects", "PRIOR_HSCT"): "allogeneic HSCT before the CAR-T infusion",
    ("subjects", "PRIOR_CART"): "an earlier CD19 CAR-T treatment",
    ("subjects", "DX_TO_INF_MO"): "months from diagnosis to infusion",
    ("subjects", "DOSE"): "CAR-T dose, 10^6 cells/kg",
    ("subjects", "MRD_PRELD"): "bone-marrow MRD as a fraction before lymphodepletion (0 = undetectable)",
    ("subjects", "MRD_POSTLD"): "the same after lymphodepletion",
    ("subjects", "D28_RESPONSE"): "response at day 28: complete remission, CR with incomplete count recovery, no response",
    ("subjects", "D28_MRD_NEG"): "flow-cytometry MRD below 10^-4 at day 28",
    ("subjects", "LAST_CONTACT_DAY"): "the last day the patient was known alive, or the day of death",
    ("events", "EVENT"): "what happened",
    ("events", "DAY"): "study day of the event, at most the patient's LAST_CONTACT_DAY",
    ("events", "DETAIL"): "relapse phenotype, cause of death or kind of transplant",
    ("adverse_events", "TERM"): "the adverse event",
    ("adverse_events", "GRADE"): "ASTCT 2018 consensus grade for CRS and ICANS, CTCAE v5 for the others",
    ("adverse_events", "ONSET_DAY"): "study day of onset",
    ("adverse_events", "DETAIL"): "free detail, stored upper case; for INFECTION the type: BACTERIAL, CMV, EBV or FUNGAL",
    ("medications", "DRUG"): "TOCILIZUMAB, CORTICOSTEROID or another drug name (stored upper case)",
    ("medications", "START_DAY"): "study day of the first administration",
    ("pk", "DAY"): "actual study day of the sample; a sample on day 0 or before is a baseline sample",
    ("pk", "CONC"): "transgene copies per µg genomic DNA, or BLQ (any case) when below the limit of quantification",
    ("labs", "DAY"): "study day",
    ("labs", "TEST"): "B cells as % of white cells, B cells as % of lymphocytes, IL-6 in pg/mL, neutrophils in 10^9/L",
    ("labs", "VALUE"): "the result, in the unit of TEST",
}
"""What each column means (the 'meaning' column of docs/COHORT.md); USUBJID of a long table is
'the patient', which must be in subjects."""

README_LINES = (
    "CAR-T cohort template: one sheet per table of the cohort contract (docs/COHORT.md).",
    "",
    "How to fill it in:",
    "- Keep the sheet names and the header row (row 1) as they are; one row per record below it.",
    f"- Replace the example patient {EXAMPLE_PATIENT} on every sheet by your own patients.",
    "- USUBJID is a pseudonymous study code (e.g. P001), never a name or a record number.",
    "- Times are study days since the CAR-T infusion (day 0), never calendar dates.",
    "- Coded columns offer a drop-down list; codes may be typed in any case.",
    "- Numbers use a point as decimal mark; pk CONC may hold the text BLQ.",
    "- Leave a value blank only where the column is optional (adverse_events DETAIL).",
    "- Hover over a header cell for what the column means and which values it takes.",
    "",
    "Check the filled workbook with:  cartlib validate --data cohort.xlsx",
    "Run the analysis with:          cartlib run --data cohort.xlsx --out report",
    "This README sheet is ignored when the workbook is loaded.",
)


def column_codes(table: str, col: Col) -> tuple[str, ...]:
    """The codes a column's drop-down offers: the contract's codes, or for events DETAIL every
    code some EVENT allows (which one fits depends on EVENT, checked on loading).

    >>> column_codes("events", SPEC["events"][3])
    ('CD19POS', 'CD19NEG', 'RELAPSE', 'NRM', 'ALLO')
    """
    if table == "events" and col.name == "DETAIL":
        return tuple(dict.fromkeys(code for codes in EVENT_DETAIL.values() for code in codes))
    return col.codes


def _comment_text(table: str, col: Col) -> str:
    meaning = FIELD_MEANING.get((table, col.name), "the patient; must be in subjects")
    lines = [f"{col.name}: {meaning}."]
    codes = column_codes(table, col)
    if codes:
        lines.append(f"Codes: {', '.join(codes)} (any case).")
    elif col.kind == "code":
        lines.append("Any code (stored upper case).")
    elif col.kind in ("number", "integer"):
        word = "A whole number" if col.kind == "integer" else "A number"
        rule = col.rule_range()
        lines.append(f"{word}{', ' + rule.removeprefix('must be ') if rule else ''}"
                     f"{''.join(f', or the text {a}' for a in col.also)}.")
    lines.append("Optional." if col.optional else "Required.")
    return "\n".join(lines)


def _validation(table: str, col: Col, letter: str):
    """The data validation of one column, or None when the contract has nothing to check."""
    from openpyxl.worksheet.datavalidation import DataValidation

    codes = column_codes(table, col)
    rule = f"{col.name}: {_comment_text(table, col).split(chr(10), 1)[1].replace(chr(10), ' ')}"
    common = dict(allow_blank=col.optional, showErrorMessage=True, errorTitle=f"{table} {col.name}"[:32],
                  error=rule[:255], promptTitle=col.name[:32], prompt=rule[:255], showInputMessage=True)
    cell = f"{letter}{FIRST_DATA_ROW}"
    if codes:
        return DataValidation(type="list", formula1=f'"{",".join(codes)}"', **common)
    if col.kind not in ("number", "integer") or (col.lo is None and col.hi is None):
        return None
    lo = f"{col.lo:.15g}" if col.lo is not None else None  # plain digits: 1000000000000, not 1e12
    hi = f"{col.hi:.15g}" if col.hi is not None else None
    if col.also or col.lo_open:  # a range with a text alternative or an open bound needs a formula
        tests = [f"ISNUMBER({cell})"]
        tests += [f"{cell}{'>' if col.lo_open else '>='}{lo}"] if lo is not None else []
        tests += [f"{cell}<={hi}"] if hi is not None else []
        formula = f"AND({','.join(tests)})"
        for text in col.also:
            formula = f'OR({formula},UPPER({cell})="{text}")'
        return DataValidation(type="custom", formula1=formula, **common)
    kind = "whole" if col.kind == "integer" else "decimal"
    return DataValidation(type=kind, operator="between", formula1=lo, formula2=hi, **common)


def _example_rows(table: str) -> list[list]:
    """The example patient's rows of one table, numbers as numbers (as a user would type them)."""
    rows = list(csv.reader(io.StringIO(EXAMPLE[table])))
    header, body = [h.upper() for h in rows[0]], rows[1:]
    kinds = {c.name: c.kind for c in SPEC[table]}
    out = []
    for row in body:
        if row[0] != EXAMPLE_PATIENT:
            continue
        cells = []
        for name, text in zip(header, row):
            if kinds.get(name) in ("number", "integer") and text and text.upper() != "BLQ":
                cells.append(int(text) if text.lstrip("-").isdigit() else float(text))
            else:
                cells.append(text or None)
        out.append(dict(zip(header, cells)))
    return [[r.get(c.name) for c in SPEC[table]] for r in out]


def build_template():
    """The template as an openpyxl ``Workbook`` (README first, then the six contract sheets).

    >>> wb = build_template()
    >>> wb.sheetnames
    ['README', 'subjects', 'events', 'adverse_events', 'medications', 'pk', 'labs']
    >>> [c.value for c in wb["pk"][1]], wb["subjects"]["C1"].comment.text.splitlines()[1]
    (['USUBJID', 'DAY', 'CONC'], 'Codes: M, F (any case).')
    """
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    readme = wb.active
    readme.title = "README"
    for line in README_LINES:
        readme.append([line])
    readme["A1"].font = Font(bold=True)
    readme.column_dimensions["A"].width = 100
    for table in TABLES:
        ws = wb.create_sheet(table)
        ws.append([c.name for c in SPEC[table]])
        for row in _example_rows(table):
            ws.append(row)
        ws.freeze_panes = "A2"
        for i, col in enumerate(SPEC[table], start=1):
            letter = get_column_letter(i)
            header = ws[f"{letter}1"]
            header.font = Font(bold=True)
            header.comment = Comment(_comment_text(table, col), "cartlib", width=320, height=140)
            ws.column_dimensions[letter].width = max(12, len(col.name) + 4)
            validation = _validation(table, col, letter)
            if validation is not None:
                validation.add(f"{letter}{FIRST_DATA_ROW}:{letter}{LAST_DATA_ROW}")
                ws.add_data_validation(validation)
    return wb


def write_template(out, overwrite: bool = False) -> Path:
    """Write the template workbook to ``out`` (an ``.xlsx`` path) atomically.

    The workbook is saved to a temporary file beside ``out`` and renamed over it, so ``out``
    is either the previous file or the complete template. Raises ``FileExistsError`` when
    ``out`` exists and ``overwrite`` is false (or is a folder), :class:`~cartlib.outdir.PathError`
    when ``out`` does not end in ``.xlsx`` or its folder does not exist.

    >>> import tempfile, cartlib.io as cio
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = write_template(Path(d) / "cohort.xlsx")
    ...     cio.load_cohort(path).subjects.USUBJID.tolist()
    ['P001']
    """
    out = Path(out)
    if out.suffix.lower() != ".xlsx":
        raise PathError(f"--out {out.name}: the template is an .xlsx workbook; give a file name ending in .xlsx")
    if not out.parent.is_dir():
        raise PathError(f"--out {out}: the folder {out.parent} does not exist")
    if out.is_dir():
        raise FileExistsError(f"{out} is a folder; give the path of an .xlsx file")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    workbook = io.BytesIO()
    build_template().save(workbook)
    write_file(out, workbook.getvalue())
    return out
