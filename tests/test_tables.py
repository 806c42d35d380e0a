"""Formatting helpers and display tables: exact strings for small hand-made inputs.

Expected strings are worked out by hand in the comments (no R needed: counting,
percentages, medians and rounding only).
"""
import math

import numpy as np
import pandas as pd
import pytest

from cartlib.tables import (baseline_table, format_ci, format_median_range, format_p,
                            format_pct, model_table)

NAN = float("nan")


@pytest.mark.parametrize("p, text", [
    (0.0213, "0.021"), (0.032, "0.032"), (0.001, "0.001"), (0.000999, "< 0.001"),
    (0.0, "< 0.001"), (1.0, "1.000"),
    (0.0495, "0.050"),  # a half rounds up (Python's "%.3f" gives 0.049 from the binary value)
    (NAN, "—"), (None, "—"), (pd.NA, "—"), (np.float64("nan"), "—"),
])
def test_format_p(p, text):
    assert format_p(p) == text


def test_format_ci():
    assert format_ci(0.969, 0.944, 0.995) == "0.969 (0.944–0.995)"
    assert format_ci(6.036, 0.868, 42.464) == "6.036 (0.868–42.464)"
    assert format_ci(74.9, 64.8, 85.1, digits=1) == "74.9 (64.8–85.1)"
    assert format_ci(0.5, NAN, 2.0, digits=2) == "0.50 (—–2.00)"
    assert format_ci(NAN, 0.1, 1.0) == "—"
    assert format_ci(2.5, 1.0, math.inf, digits=1) == "2.5 (1.0–inf)"
    assert format_ci(np.float64(0.125), 0.0625, 0.25, digits=2) == "0.13 (0.06–0.25)"  # halves up


@pytest.mark.parametrize("k, n, text", [
    (23, 50, "23 (46.0)"), (7, 50, "7 (14.0)"), (1, 3, "1 (33.3)"), (2, 3, "2 (66.7)"),
    (1, 16, "1 (6.3)"),  # 6.25 exactly: half up, not the "6.2" of Python's formatting
    (50, 50, "50 (100.0)"), (0, 0, "0 (—)"), (np.int64(24), np.int64(50), "24 (48.0)"),
])
def test_format_pct(k, n, text):
    assert format_pct(k, n) == text


def test_format_median_range():
    # the paper's dose: median 3.68, range 0.05-6.33
    assert format_median_range([0.05, 3.68, 6.33]) == "3.68 (0.05–6.33)"
    # even count: median is the mean of the middle two, (2 + 3) / 2
    assert format_median_range([10, 1, 3, 2], digits=1) == "2.5 (1.0–10.0)"
    assert format_median_range(pd.Series([1.5, NAN, 132.0]), digits=1) == "66.8 (1.5–132.0)"
    assert format_median_range(pd.Series([4, None, 8], dtype="Int64"), digits=0) == "6 (4–8)"
    assert format_median_range([]) == "—"
    assert format_median_range([NAN, NAN]) == "—"


def _subjects():
    # Five hand-made patients; MRD values sit on the category boundaries on purpose.
    return pd.DataFrame({
        "AGE": [3.0, 10.0, 10.5, 15.0, 7.0],
        "SEX": ["M", "F", "F", "M", "M"],
        "INDICATION": ["MRD_REEMERGENCE", "MRD_REEMERGENCE", "CHEMO_INTOLERANCE",
                       "MRD_PERSISTENT", "MRD_REEMERGENCE"],
        "GENRISK": ["HIGH", "STANDARD", "STANDARD", "HIGH", "HIGH"],
        "PRIOR_HSCT": ["N", "N", "Y", "N", "N"],
        "PRIOR_CART": ["N", "N", "N", "N", "Y"],
        "DX_TO_INF_MO": [15.8, 1.5, 132.0, 20.0, 10.0],
        "DOSE": [3.68, 0.05, 6.33, 4.0, 2.0],
        "MRD_PRELD": [0.0, 1e-4, 1e-3, 1e-2, 5e-5],
        "MRD_POSTLD": [0.0, 0.0, 9.99e-4, 0.5, NAN],
        "hsct_after": [1, 0, 1, 1, 0],
    }, index=pd.Index([f"P{i}" for i in range(1, 6)], name="USUBJID"))


def test_baseline_table_total_column():
    t = baseline_table(_subjects())
    assert t.columns.tolist() == ["All patients (N = 5)"]
    col = t.iloc[:, 0]
    # ages 3, 7, 10, 10.5, 15 -> median 10.0; AGE <= 10 is "0-10" (3, 10, 7)
    assert col[("Age, years", "median (range)")] == "10.0 (3.0–15.0)"
    assert col[("Age group, n (%)", "0–10 years")] == "3 (60.0)"
    assert col[("Age group, n (%)", ">10 years")] == "2 (40.0)"
    assert col[("Sex, n (%)", "Male")] == "3 (60.0)"
    assert col[("Sex, n (%)", "Female")] == "2 (40.0)"
    assert col[("Indication, n (%)", "MRD re-emergence")] == "3 (60.0)"
    assert col[("Indication, n (%)", "MRD persistent")] == "1 (20.0)"
    assert col[("Indication, n (%)", "Chemotherapy intolerance")] == "1 (20.0)"
    assert col[("Genetic risk, n (%)", "High")] == "3 (60.0)"
    assert col[("Prior HSCT, n (%)", "Yes")] == "1 (20.0)"
    assert col[("Prior CAR-T, n (%)", "No")] == "4 (80.0)"
    # 1.5, 10, 15.8, 20, 132 -> median 15.8
    assert col[("Diagnosis to infusion, months", "median (range)")] == "15.8 (1.5–132.0)"
    # 0.05, 2, 3.68, 4, 6.33 -> median 3.68
    assert col[("CAR-T dose, 10⁶ cells/kg", "median (range)")] == "3.68 (0.05–6.33)"
    # left-closed bins: 0 and 5e-5 -> <1e-4; 1e-4 -> next; 1e-3 -> next; 1e-2 -> top
    pre = "Pre-LD bone-marrow MRD, n (%)"
    assert [col[(pre, lvl)] for lvl in ("<10⁻⁴", "10⁻⁴–<10⁻³", "10⁻³–<10⁻²", "≥10⁻²")] == \
        ["2 (40.0)", "1 (20.0)", "1 (20.0)", "1 (20.0)"]
    assert (pre, "missing") not in t.index
    post = "Post-LD bone-marrow MRD, n (%)"
    # 0, 0 -> <1e-4; 9.99e-4 -> 1e-4..<1e-3; 0.5 -> top; one missing, reported as such
    assert [col[(post, lvl)] for lvl in ("<10⁻⁴", "10⁻⁴–<10⁻³", "10⁻³–<10⁻²", "≥10⁻²", "missing")] \
        == ["2 (40.0)", "1 (20.0)", "0 (0.0)", "1 (20.0)", "1 (20.0)"]
    assert t.index.names == ["Characteristic", ""]


def test_baseline_table_by_group():
    t = baseline_table(_subjects(), by="hsct_after", by_labels={0: "No HSCT", 1: "HSCT"})
    assert t.columns.tolist() == ["No HSCT (N = 2)", "HSCT (N = 3)", "All patients (N = 5)"]
    # HSCT group: P1, P3, P4 -> sex M, F, M; dose 3.68, 6.33, 4.0 -> median 4.00
    assert t.loc[("Sex, n (%)", "Female"), "HSCT (N = 3)"] == "1 (33.3)"
    assert t.loc[("CAR-T dose, 10⁶ cells/kg", "median (range)"), "HSCT (N = 3)"] == \
        "4.00 (3.68–6.33)"
    # the missing post-LD MRD is P5 (no HSCT); the HSCT column shows 0 for that row
    post_missing = ("Post-LD bone-marrow MRD, n (%)", "missing")
    assert t.loc[post_missing].tolist() == ["1 (50.0)", "0 (0.0)", "1 (20.0)"]
    # default header without labels names the column and value
    t2 = baseline_table(_subjects(), by="hsct_after")
    assert t2.columns[0] == "hsct_after = 0 (N = 2)"
    with pytest.raises(ValueError, match="nope"):
        baseline_table(_subjects(), by="nope")
    with pytest.raises(ValueError, match=r"\['DOSE'\]"):
        baseline_table(_subjects().drop(columns="DOSE"))


def test_baseline_table_unexpected_code_kept_as_level():
    d = _subjects()
    d.loc["P5", "GENRISK"] = "UNKNOWN"
    t = baseline_table(d, by="hsct_after")
    assert t.loc[("Genetic risk, n (%)", "UNKNOWN")].tolist() == ["1 (50.0)", "0 (0.0)", "1 (20.0)"]


def _cox_summary():
    return pd.DataFrame({
        "hr": [0.969, 0.235, NAN, 1.5], "hr_lo": [0.944, 0.062, NAN, 0.5],
        "hr_hi": [0.995, 0.884, NAN, 4.5], "p": [0.0213, 0.032, NAN, 0.0004],
        "reason": [None, None, "no events in one group", None],
    }, index=["bca_duration_days", "female", "prior_cart", "icans"])


def test_model_table_strings():
    t = model_table(_cox_summary())
    assert t.columns.tolist() == ["HR (95% CI)", "p"]
    assert t.index.tolist() == ["bca_duration_days", "female", "prior_cart", "icans"]
    assert t["HR (95% CI)"].tolist() == ["0.969 (0.944–0.995)", "0.235 (0.062–0.884)",
                                         "not estimable (no events in one group)",
                                         "1.500 (0.500–4.500)"]
    assert t["p"].tolist() == ["0.021", "0.032", "—", "< 0.001"]


def test_model_table_odds_ratio_labels_and_no_reason_column():
    s = pd.DataFrame({"or": [5.25, NAN], "or_lo": [1.2, NAN], "or_hi": [22.9, NAN],
                      "p": [0.027, NAN]}, index=["il6_elevated", "dose_lt_median"])
    t = model_table(s, estimate="or", labels={"il6_elevated": "IL-6 > ULN"}, digits=2)
    assert t.columns.tolist() == ["OR (95% CI)", "p"]
    assert t.index.tolist() == ["IL-6 > ULN", "dose_lt_median"]
    assert t.iloc[:, 0].tolist() == ["5.25 (1.20–22.90)", "not estimable"]
    t2 = model_table(s, estimate="or", labels=["a", "b"], p=None)
    assert t2.index.tolist() == ["a", "b"] and t2["p"].tolist() == ["—", "—"]
    with pytest.raises(ValueError, match="labels"):
        model_table(s, estimate="or", labels=["only one"])
    with pytest.raises(ValueError, match="hr_lo"):
        model_table(s)


# -- captioned display tables and what the notebooks show ---------------------------------------

def test_captioned_frame_shows_caption_and_footnotes_without_cutting_text():
    from cartlib.tables import captioned

    reason = "complete or quasi-complete separation: fitted probabilities at 0/1, no finite estimate"
    t = captioned(pd.DataFrame({"OR (95% CI)": ["0.261 (0.027–2.525)", f"not estimable ({reason})"]},
                               index=["Female", "No HSCT history"]), "Table 2, model 1. Logistic regression (N = 50).")
    # the cells keep the whole text (exports read them); the display footnotes it
    assert t.loc["No HSCT history", "OR (95% CI)"].endswith(f"({reason})")
    text = repr(t)
    assert text.splitlines()[0] == "Table: Table 2, model 1. Logistic regression (N = 50)."
    assert "not estimable [1]" in text and f"[1] {reason}" in text and "…" not in text and "..." not in text
    page = t._repr_html_()
    assert page.index("Table 2, model 1.") < page.index("<table") and f"[1] {reason}" in page
    assert page == t._repr_html_(), "the same table gives the same HTML"
    assert type(t.loc[["Female"]]) is pd.DataFrame, "slices are plain DataFrames"


def test_selection_sentence_names_labels_not_code_names():
    from cartlib.sections.common import COVARIATE_LABELS
    from cartlib.tables import selection_sentence

    text = selection_sentence(["no_prior_hsct", "neutropenia_g4"], COVARIATE_LABELS, 0.2)
    assert text == ("Covariates with p < 0.2 (entering a multivariable model): No HSCT history, "
                    "Grade 4 neutropenia.")


def _reading_outputs(name):
    """(kind, text) of every output a reader sees in a section notebook, before its key dump."""
    import nbformat

    from cartlib.runner import notebook_dir

    nb = nbformat.read(notebook_dir() / f"{name}.ipynb", as_version=4)
    out = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## Results keys"):
            break
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            out += [(kind, str(data[kind])) for kind in ("text/plain", "text/html", "image/png") if kind in data]
            if "text" in o:
                out.append(("stream", o["text"]))
    return out


@pytest.mark.parametrize("name", ["00_cohort", "01_efficacy", "02_toxicity", "03_pk", "04_bca", "05_transplant"])
def test_section_notebooks_show_labels_captions_and_alt_text(name):
    import re

    from cartlib.sections.common import COVARIATE_LABELS

    outputs = _reading_outputs(name)
    plain = "\n".join(text for kind, text in outputs if kind in ("text/plain", "stream"))
    codes = [c for c in COVARIATE_LABELS if re.search(rf"(?<![\w.]){re.escape(c)}(?![\w])", plain)]
    assert codes == [], f"{name}: code names shown instead of labels"
    assert not re.search(r"\[\s*'|\{'|selected \(p", plain), f"{name}: a printed Python object"
    assert "…" not in plain and "..." not in plain, f"{name}: text cut short"
    assert not any(kind == "image/png" for kind, _ in outputs), "figures are published with alt text, not bare PNGs"
    figures = [text for kind, text in outputs if kind == "text/html" and "<figure" in text]
    assert figures, f"{name}: no figure"
    for fig in figures:
        alt = re.search(r'<img [^>]*alt="([^"]*)"', fig)
        assert alt and len(alt.group(1)) > 40 and "<figcaption" in fig
    shown = [text for kind, text in outputs if kind == "text/plain" and not text.startswith(("Figure:", "'"))]
    assert shown and all(text.startswith("Table: ") for text in shown), f"{name}: a table without caption"
