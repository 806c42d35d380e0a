"""The documents in docs/ against the code, and the repository standing alone.

- every relative link of every Markdown file resolves to a file (and heading) of the repository;
- no file points outside the repository (a sibling folder, an issue tracker, a team);
- every Markdown file name a file mentions exists in the repository;
- docs/COHORT.md's column tables, codes, privacy vocabularies, size limits and rule examples
  are what ``cartlib.validate``, ``cartlib.privacy`` and ``cartlib.io`` check (its example cohort is checked in test_io.py);
- docs/NCA.md's parameters, columns and worked example are what ``cartlib.pk.nca`` computes.

docs/RESULTS.md is checked against the code in test_sections.py.
"""
from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from cartlib import io as cohort_io
from cartlib import privacy, validate
from cartlib.errors import MESSAGE_VALUE_CHARS, CohortError
from cartlib.params import defaults
from cartlib.pk.nca import AUC_METHODS, NCA_COLUMNS, NCARules, nca, partial_aucs
from cartlib.pk.terminal import LAMBDA_Z_COLUMNS, lambda_z
from spec_keys import markdown_tables

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
_CODE = re.compile(r"`([^`]*)`")
# Folders that are never part of the project's own text (environments, outputs, caches).
_NOT_SOURCE = {".git", ".venv", "venv", "reports", "build", "dist", "node_modules", "__pycache__",
               ".pytest_cache", ".ipynb_checkpoints", ".bench"}


def repository_files() -> list[Path]:
    """Files git tracks or would track (untracked but not ignored); a walk when git is absent."""
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        out = subprocess.run([git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True).stdout.decode("utf-8")
        return sorted({ROOT / p for p in out.split("\0") if p and (ROOT / p).is_file()})
    return sorted(p for p in ROOT.rglob("*") if p.is_file()
                  and not any(part in _NOT_SOURCE or part.endswith(".egg-info")
                              for part in p.relative_to(ROOT).parts))


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None   # binary (images, workbooks)


FILES = repository_files()
MARKDOWN = [p for p in FILES if p.suffix == ".md"]


# --- links ---------------------------------------------------------------------------------

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def heading_anchors(text: str) -> set[str]:
    """GitHub's anchors of a Markdown text's headings (lower case, punctuation dropped, spaces -> -)."""
    anchors = set()
    for line in _FENCE.sub("", text).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def relative_links(text: str) -> list[str]:
    body = _FENCE.sub("", text)
    links = _LINK.findall(body) + _REFERENCE.findall(body)
    return [t for t in links if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.IGNORECASE)]


def test_heading_anchors_follow_github():
    text = "# A title\n## `pk.csv`: CAR-T in blood\n```\n# not a heading\n```\n### What the analysis derives\n"
    assert heading_anchors(text) == {"a-title", "pkcsv-car-t-in-blood", "what-the-analysis-derives"}
    assert relative_links("[a](docs/NCA.md#y) [b](https://x.org) ![c](img.png)") == ["docs/NCA.md#y", "img.png"]


def test_the_documents_are_there():
    names = {p.relative_to(ROOT).as_posix() for p in MARKDOWN}
    assert {"README.md", "docs/COHORT.md", "docs/NCA.md", "docs/RESULTS.md", "docs/ARCHITECTURE.md"} <= names
    assert "docs/RESULTS_EXTRA" + ".md" not in names   # merged into docs/RESULTS.md


@pytest.mark.parametrize("page", MARKDOWN, ids=[p.relative_to(ROOT).as_posix() for p in MARKDOWN])
def test_every_relative_link_resolves(page):
    text = page.read_text(encoding="utf-8")
    broken = []
    for link in relative_links(text):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.is_relative_to(ROOT) or not target.exists():
            broken.append(f"{link}: no such file in the repository")
        elif anchor and target.suffix == ".md" and anchor not in heading_anchors(target.read_text(encoding="utf-8")):
            broken.append(f"{link}: no heading with anchor #{anchor} in {target.name}")
    assert not broken, broken


# --- standing alone ------------------------------------------------------------------------

# Built from pieces so that this file does not match its own patterns.
_SIBLING = "sha" + "red"
OUTSIDE_REFERENCES = {
    "a folder beside the repository": re.compile(r"\.\./" + _SIBLING + r"\b"),
    "the contracts folder outside the repository": re.compile(_SIBLING + r"/(spec|seed)\b"),
    "an issue-tracker reference": re.compile(r"\b" + "iss" + r"ues?\s*#?\d+", re.IGNORECASE),
    "a team member": re.compile(r"\bthe " + "le" + r"ad\b|\b" + "le" + r"ad's\b", re.IGNORECASE),
}


def test_outside_reference_patterns_catch_what_they_should():
    caught = {name: bool(p.search(s)) for (name, p), s in zip(OUTSIDE_REFERENCES.items(), (
        "see ../" + _SIBLING + "/spec/NCA.md", _SIBLING + "/seed/paper.txt", "(Iss" + "ue 5 open)",
        "the le" + "ad's CLI"))}
    assert all(caught.values()), caught
    assert not any(p.search("leading issues of the dataset; mislead") for p in OUTSIDE_REFERENCES.values())


def test_no_file_refers_to_anything_outside_the_repository():
    found = []
    for path in FILES:
        text = text_of(path)
        if text is None:
            continue
        for n, line in enumerate(text.splitlines(), start=1):
            found += [f"{path.relative_to(ROOT)}:{n}: {name}: {line.strip()[:100]}"
                      for name, pattern in OUTSIDE_REFERENCES.items() if pattern.search(line)]
    assert not found, "\n".join(found)


# Markdown files of other projects that a file names on purpose (with the project named beside it).
EXTERNAL_MARKDOWN = {"validation.md"}   # asancpt/NonCompart-tests, source of the WinNonlin values


def test_every_markdown_file_named_exists():
    present = {p.name for p in MARKDOWN}
    missing = []
    for path in FILES:
        text = text_of(path)
        if text is None:
            continue
        for name in set(re.findall(r"\b([A-Za-z0-9_-]+\.md)\b", text)):
            if name not in present and name not in EXTERNAL_MARKDOWN:
                missing.append(f"{path.relative_to(ROOT)} names {name}")
    assert not missing, missing


# --- docs/COHORT.md against cartlib.validate -------------------------------------------------

COHORT = (DOCS / "COHORT.md").read_text(encoding="utf-8")


_NUM = r"(-?[\d,]+(?:\.\d+)?(?:e-?\d+)?)"


def _number(text: str) -> float:
    """A number as the document writes it: ``36,525``, ``1e12``, ``-365``."""
    return float(text.replace(",", ""))


def _documented_column(cells: list[str]) -> tuple:
    """(name, kind, codes, lo, hi, lo_open, optional, also) of one column-table row."""
    name, kind, allowed, required = _CODE.findall(cells[0])[0], cells[1], cells[2], cells[3]
    codes, also, lo, hi, lo_open = (), (), None, None, False
    if kind == "code":
        codes = tuple(_CODE.findall(allowed))
    elif kind in ("number", "integer"):
        also = tuple(_CODE.findall(allowed))
        bounds = _CODE.sub("", allowed)
        if m := re.search(_NUM + " to " + _NUM, bounds):
            lo, hi = _number(m.group(1)), _number(m.group(2))
        else:
            if m := re.search("([≥>]) " + _NUM, bounds):
                lo, lo_open = _number(m.group(2)), m.group(1) == ">"
            if m := re.search("≤ " + _NUM, bounds):
                hi = _number(m.group(1))
    assert required in ("yes", "no"), cells
    return name, kind, codes, lo, hi, lo_open, required == "no", also


def test_the_tables_are_those_of_the_loader():
    documented = re.findall(r"^### `(\w+)\.csv`", COHORT, re.MULTILINE)
    assert tuple(documented) == validate.TABLES == cohort_io.TABLES


def test_every_column_rule_is_the_validators():
    tables = markdown_tables(COHORT, "column")
    assert len(tables) == len(validate.TABLES)
    for table, rows in zip(validate.TABLES, tables):
        documented = [_documented_column(cells) for cells in rows]
        in_code = [(c.name, c.kind, c.codes, c.lo, c.hi, c.lo_open, c.optional, c.also)
                   for c in validate.SPEC[table]]
        assert documented == in_code, table


def test_event_details_are_the_validators():
    (events,) = markdown_tables(COHORT, "EVENT")
    assert {_CODE.findall(c[0])[0]: tuple(_CODE.findall(c[1])) for c in events} == validate.EVENT_DETAIL


def test_privacy_rules_are_the_loaders():
    (concepts,) = markdown_tables(COHORT, "identifier concept")
    documented = {c[0]: {"words": tuple(_CODE.findall(c[1])),
                         "phrases": tuple(tuple(p.split()) for p in _CODE.findall(c[2]))} for c in concepts}
    assert documented == {k: {"words": v["words"], "phrases": tuple(v.get("phrases", ()))}
                          for k, v in privacy.IDENTIFIER_CONCEPTS.items()}
    (qualifiers,) = markdown_tables(COHORT, "words that make NAME the name of a thing")
    assert set(_CODE.findall(qualifiers[0][0])) == set(privacy.NON_PERSON_QUALIFIERS)
    (formats,) = markdown_tables(COHORT, "date format")
    assert {c[0]: (c[1], c[2]) for c in formats} == {k: (v[0], v[2]) for k, v in privacy.DATE_FORMATS.items()}
    assert f"at most {privacy.USUBJID_MAX_LENGTH} characters" in COHORT


def test_size_limits_are_the_loaders():
    (limits,) = markdown_tables(COHORT, "limit")
    documented = {c[0]: int(c[1].split()[0].replace(",", "")) for c in limits}
    assert documented == {"file": cohort_io.MAX_FILE_BYTES, "cell": validate.MAX_CELL_CHARS,
                          "value shown in a message": MESSAGE_VALUE_CHARS}


def _example_tables() -> dict[str, list[list[str]]]:
    return {t: [row for row in csv.reader(io.StringIO(text))] for t, text in cohort_io.EXAMPLE.items()}


def _write(tables: dict[str, list[list[str]]], folder: Path) -> Path:
    folder.mkdir()
    for table, rows in tables.items():
        with open(folder / f"{table}.csv", "w", encoding="utf-8", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
    return folder


RULE_EXAMPLES = markdown_tables(COHORT, "table")


def test_the_rule_examples_were_read():
    (rows,) = RULE_EXAMPLES
    assert len(rows) >= 20
    assert {r[0] for r in rows} == set(validate.TABLES)


def _rule_id(cells: list[str]) -> str:
    return "-".join(c.strip("`") for c in cells[:4])


@pytest.mark.parametrize("cells", RULE_EXAMPLES[0], ids=_rule_id)
def test_each_documented_rule_is_enforced_with_its_message(cells, tmp_path):
    table, row, column, written, message = cells
    column = _CODE.findall(column)[0]
    value = "" if written == "(blank)" else _CODE.findall(written)[0]
    tables = _example_tables()
    rows = tables[table]
    if column not in rows[0]:
        rows[0].append(column)
        for r in rows[1:]:
            r.append("")
    j = rows[0].index(column)
    if row == "—":
        for r in rows[1:]:
            r[j] = value
        where = None
    else:
        where = int(row)
        if where - 1 == len(rows):
            rows.append(list(rows[-1]))
        rows[where - 1][j] = value
    with pytest.raises(CohortError) as err:
        cohort_io.load_cohort(_write(tables, tmp_path / "cohort"))
    hits = [v for v in err.value.violations
            if (v.table, v.row, v.column) == (table, where, column) and message in v.rule]
    assert hits, f"expected '{message}' at {table}, row {where}, column {column}; got:\n{err.value}"


# --- docs/NCA.md against cartlib.pk.nca ---------------------------------------------------

NCA_DOC = (DOCS / "NCA.md").read_text(encoding="utf-8")


def test_nca_parameters_are_the_codes():
    (rows,) = markdown_tables(NCA_DOC, "parameter")
    documented = {_CODE.findall(c[0])[0]: _CODE.findall(c[1])[0] for c in rows}
    rules = NCARules()
    assert set(documented) == {"lloq", "auc_method", "auc_end_day", "auc_intervals", "expansion_min"}
    assert NCARules.from_params(defaults()) == rules
    for name, default in documented.items():
        assert str(defaults()[name]) == default, name
    auc_row = next(c for c in rows if "auc_method" in c[0])
    assert tuple(_CODE.findall(auc_row[2])) == AUC_METHODS


def test_nca_output_columns_are_the_codes():
    (rows,) = markdown_tables(NCA_DOC, "column")
    assert tuple(_CODE.findall(c[0])[0] for c in rows) == NCA_COLUMNS
    (rows,) = markdown_tables(NCA_DOC, "terminal column")
    assert tuple(_CODE.findall(c[0])[0] for c in rows) == LAMBDA_Z_COLUMNS
    (rows,) = markdown_tables(NCA_DOC, "partial AUC column")
    assert [_CODE.findall(c[0])[0] for c in rows] == ["auclast", "auc_START_END"]


def _doc_value(text: str) -> float:
    return float("nan") if text == "—" else float(text)


def test_the_worked_example_gives_the_documented_numbers():
    block = re.search(r"```\n(USUBJID,DAY,CONC\n.*?)```", NCA_DOC, re.DOTALL).group(1)
    raw = pd.read_csv(io.StringIO(block), dtype=str)
    pk = validate.type_table("pk", raw)
    log_down, linear = nca(pk), nca(pk, auc_method="linear")
    (rows,) = markdown_tables(NCA_DOC, "USUBJID")
    assert [r[0] for r in rows] == list(log_down.index)
    for uid, cmax, tmax, tlast, clast, auc_log, auc_lin, expansion in rows:
        expected = {"cmax": cmax, "tmax": tmax, "tlast": tlast, "clast": clast, "expansion": expansion}
        for column, text in expected.items():
            assert log_down.at[uid, column] == pytest.approx(_doc_value(text), nan_ok=True), (uid, column)
        assert log_down.at[uid, "auc28"] == pytest.approx(_doc_value(auc_log), abs=0.005, nan_ok=True), uid
        assert linear.at[uid, "auc28"] == pytest.approx(_doc_value(auc_lin), abs=0.005, nan_ok=True), uid


def test_the_worked_example_gives_the_documented_auclast_partial_aucs_and_half_life():
    block = re.search(r"```\n(USUBJID,DAY,CONC\n.*?)```", NCA_DOC, re.DOTALL).group(1)
    pk = validate.type_table("pk", pd.read_csv(io.StringIO(block), dtype=str))
    log_down, linear, terminal = partial_aucs(pk), partial_aucs(pk, auc_method="linear"), lambda_z(pk)
    (rows,) = markdown_tables(NCA_DOC, "patient")
    assert [r[0] for r in rows] == list(log_down.index)
    for uid, auclast, auclast_lin, auc_0_28, auc_0_90, half_life, n_points in rows:
        for frame, column, text in ((log_down, "auclast", auclast), (linear, "auclast", auclast_lin),
                                    (log_down, "auc_0_28", auc_0_28), (log_down, "auc_0_90", auc_0_90)):
            assert frame.at[uid, column] == pytest.approx(_doc_value(text), abs=0.005, nan_ok=True), (uid, column)
        assert terminal.at[uid, "half_life"] == pytest.approx(_doc_value(half_life), abs=5e-5, nan_ok=True), uid
        assert terminal.at[uid, "lambda_z_n_points"] == pytest.approx(_doc_value(n_points), nan_ok=True), uid
