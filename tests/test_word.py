"""Word export: the paper's tables in one .docx, with the report's captions, the same bytes every time."""
import html
import zipfile

import docx
import pytest

from cartlib.analysis import analysis_table, load
from cartlib.params import defaults
from cartlib.word import ZIP_TIME, paper_tables, write_docx

PAPER_TABLES = ["Table S1", "Table 1A", "Table 1B", "logistic regression of grade ≥ 3 CRS",
                "model 1", "model 2", "Table 3", "HSCT"]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("word")
    params = defaults()
    frames = paper_tables(analysis_table(load(params), params), params)
    first = write_docx(folder / "a.docx", params).read_bytes()
    second = write_docx(folder / "b.docx", params)
    return frames, first, second


def test_every_paper_table_is_there_with_its_caption(written):
    frames, _, path = written
    document = docx.Document(str(path))
    captions = [p.text for p in document.paragraphs if p.style.name == "Caption"]
    assert captions == [f.caption for f in frames]
    for expected, caption in zip(PAPER_TABLES, captions):
        assert expected in caption, (expected, caption)
    assert len(document.tables) == len(frames)
    for frame, table in zip(frames, document.tables):
        assert len(table.rows) == len(frame) + 1, frame.caption
        body = [cell.text for cell in table.rows[1].cells]
        assert [str(v) for v in frame.iloc[0]] == body[-frame.shape[1]:], "cells as the report shows them"


def test_the_file_is_the_same_bytes_and_carries_no_date(written):
    _, first, second = written
    assert first == second.read_bytes()
    with zipfile.ZipFile(second) as z:
        assert {i.date_time for i in z.infolist()} == {ZIP_TIME}
        core = z.read("docProps/core.xml").decode()
    assert "created" not in core and "modified" not in core


def test_cartlib_run_docx_writes_the_tables_beside_the_report(e2e_run):
    document = docx.Document(str(e2e_run / "report.docx"))
    captions = [p.text for p in document.paragraphs if p.style.name == "Caption"]
    text = html.unescape((e2e_run / "report.html").read_text(encoding="utf-8"))
    assert len(captions) == len(PAPER_TABLES)
    assert [c for c in captions if c not in text] == [], "the report shows the same captions"
