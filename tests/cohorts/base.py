"""A small hand-made valid cohort (5 patients) and writers for it, shared by the io,
validate and derive tests. Expected derivations are worked out by hand in test_derive.py.

Tables are lists of rows of text: row 0 is the header (spreadsheet row 1), so the data
row ``i`` of a table is spreadsheet row ``i + 1``.
"""
from __future__ import annotations

import copy
import csv
import re
from pathlib import Path

SUBJ_HEADER = ["USUBJID", "AGE", "SEX", "INDICATION", "GENRISK", "PRIOR_HSCT", "PRIOR_CART",
               "DX_TO_INF_MO", "DOSE", "MRD_PRELD", "MRD_POSTLD", "D28_RESPONSE", "D28_MRD_NEG",
               "LAST_CONTACT_DAY"]

BASE = {
    "subjects": [
        SUBJ_HEADER,
        ["P01", "8", "F", "MRD_PERSISTENT", "HIGH", "N", "N", "14", "1.0", "0.002", "0.0005", "CR", "Y", "1000"],
        ["P02", "12", "M", "MRD_REEMERGENCE", "STANDARD", "N", "N", "20.5", "2", "0.001", "0.001", "CRI", "N", "200"],
        ["P03", "10", "f", "chemo_intolerance", "high", "n", "n", "6", "3", "0.0009", "0", "NR", "Y", "300"],
        ["P04", "15", "M", "MRD_PERSISTENT", "STANDARD", "Y", "Y", "40", "4", "0", "0.0001", "CR", "Y", "90"],
        ["P05", "10.5", "F", "MRD_REEMERGENCE", "STANDARD", "N", "N", "9", "2.5", "0.5", "0.2", "cr", "y", "500"],
    ],
    "events": [
        ["USUBJID", "EVENT", "DAY", "DETAIL"],
        ["P02", "RELAPSE", "150", "CD19NEG"],
        ["P02", "DEATH", "200", "RELAPSE"],
        ["P03", "RELAPSE", "300", "CD19POS"],   # relapse and death on the same day
        ["P03", "DEATH", "300", "RELAPSE"],
        ["P04", "HSCT", "60", "ALLO"],
        ["P04", "DEATH", "90", "NRM"],
        ["P05", "hsct", "100", "allo"],
        ["P05", "RELAPSE", "500", "cd19pos"],   # relapse on the last contact day, alive
    ],
    "adverse_events": [
        ["USUBJID", "TERM", "GRADE", "ONSET_DAY", "DETAIL"],
        ["P01", "CRS", "1", "2", ""],
        ["P01", "CRS", "3", "5", ""],
        ["P02", "ICANS", "1", "6", ""],
        ["P02", "NEUTROPENIA", "4", "3", ""],
        ["P03", "neutropenia", "3", "4", ""],
        ["P04", "CRS", "2", "1", ""],
        ["P04", "INFECTION", "2", "12", "cmv"],
    ],
    "medications": [
        ["USUBJID", "DRUG", "START_DAY"],
        ["P01", "TOCILIZUMAB", "3"],
        ["P01", "tocilizumab", "5"],
        ["P01", "CORTICOSTEROID", "5"],
        ["P04", "Dexamethasone", "2"],
    ],
    "pk": [
        ["USUBJID", "DAY", "CONC"],
        ["P01", "-3", "BLQ"],
        ["P01", "7", "25000"],
        ["P01", "14", "4000.5"],
        ["P02", "7", "BLQ"],        # BLQ-only profile
        ["P02", "14", "blq"],
        ["P03", "10", "0"],
    ],
    "labs": [
        ["USUBJID", "DAY", "TEST", "VALUE"],
        ["P01", "-3", "BCELL_PCT_WBC", "10"],
        ["P01", "0", "BCELL_PCT_WBC", "0.5"],
        ["P01", "7", "BCELL_PCT_WBC", "0.2"],
        ["P01", "7", "BCELL_PCT_LYM", "20"],
        ["P01", "14", "BCELL_PCT_LYM", "1"],
        ["P01", "30", "BCELL_PCT_WBC", "3"],
        ["P01", "30", "BCELL_PCT_LYM", "2"],
        ["P01", "60", "BCELL_PCT_WBC", "5"],
        ["P01", "60", "BCELL_PCT_LYM", "10"],
        ["P01", "-1", "IL6", "900"],
        ["P01", "3", "IL6", "500"],
        ["P01", "5", "IL6", "500"],
        ["P01", "29", "IL6", "1000"],
        ["P01", "7", "ANC", "0.3"],
        ["P02", "10", "BCELL_PCT_LYM", "2"],
        ["P02", "40", "BCELL_PCT_WBC", "0.1"],
        ["P02", "90", "BCELL_PCT_WBC", "1"],
        ["P02", "0", "IL6", "50"],
        ["P02", "28", "IL6", "60"],
        ["P03", "10", "BCELL_PCT_WBC", "5"],
        ["P03", "20", "BCELL_PCT_LYM", "30"],
        ["P04", "2", "IL6", "10"],
        ["P05", "20", "BCELL_PCT_WBC", "0.5"],
        ["P05", "40", "BCELL_PCT_WBC", "4"],
        ["P05", "60", "BCELL_PCT_WBC", "0.5"],
    ],
}


def tables() -> dict[str, list[list[str]]]:
    """A fresh deep copy of the base cohort (tests mutate it)."""
    return copy.deepcopy(BASE)


def col(tabs, table: str, name: str) -> int:
    return tabs[table][0].index(name)


def set_cell(tabs, table: str, row: int, name: str, value: str) -> None:
    """Set the cell at spreadsheet ``row`` (header = 1) of column ``name``."""
    tabs[table][row - 1][col(tabs, table, name)] = value


def add_column(tabs, table: str, name: str, values) -> None:
    tabs[table][0].append(name)
    for r, v in zip(tabs[table][1:], values):
        r.append(v)


def write_csv(folder, tabs) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tabs.items():
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
    return folder


_INT = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?(\d+\.\d*|\.\d+)$")


def write_xlsx(path, tabs, cell=None) -> Path:
    """Write the tables as sheets, numbers as numeric cells (as Excel stores them).
    ``cell(table, row, col_name, value)`` may return a replacement Python value."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in tabs.items():
        ws = wb.create_sheet(name)
        for i, r in enumerate(rows, start=1):
            vals = []
            for h, v in zip(rows[0], r):
                x = int(v) if i > 1 and _INT.match(v) else float(v) if i > 1 and _FLOAT.match(v) else (v or None)
                if cell is not None:
                    x = cell(name, i, h, x)
                vals.append(x)
            ws.append(vals)
    wb.save(path)
    return Path(path)
