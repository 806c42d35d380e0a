"""One real `cartlib run` on the bundled cohort: every spec key, byte-identical to the in-process
computation (so the same input and parameters always give the same results.json), a complete report.

The cohort is a copy of the bundled one in a folder whose name is hostile (blank lines, a Markdown
javascript: link and a remote image), and the run starts from another folder than the repository:
the report must show the name as text, load nothing and run nothing (the run: tests/e2e_run.py)."""
import json
import os
import re

import pytest

from cartlib.analysis import load
from cartlib.params import defaults
from cartlib.results import dumps
from cartlib.sections import compute_results
from spec_keys import spec_keys
from test_report import assert_self_contained


@pytest.fixture(scope="module")
def run_dir(e2e_run):
    return e2e_run  # one run per session, shared with the browser and Word checks


def test_results_json_is_the_deterministic_computation(run_dir):
    text = (run_dir / "results.json").read_text(encoding="utf-8")
    assert text == dumps(compute_results(load(defaults()), defaults()))
    results = json.loads(text)
    assert [k for k in spec_keys() if k not in results] == []


def test_report_is_one_self_contained_page_with_every_section(run_dir):
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    for title in ("1. The cohort", "2. Efficacy", "3. Toxicity", "4. Cellular kinetics", "5. B-cell aplasia",
                  "6. Transplant after CAR-T", "7. Scorecard"):
        assert title in html, title
    assert html.count("data:image/png;base64") >= 12, "figures are embedded as PNG"
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="https?://', html), "nothing loaded from the web"
    assert "NBVAL_CHECK_OUTPUT" not in html, "no code cells without --with-code"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["data_fingerprint"] in html
    assert set(manifest["timings_s"]) == {p.stem for p in (run_dir / "notebooks").glob("*.ipynb")}


def test_the_report_shows_the_hostile_folder_name_as_text_and_is_self_contained(run_dir):
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert_self_contained(html.replace("http://127.0.0.1:9/x.png", ""))
    assert "[click](javascript:alert(1))" in html, "the name is shown as it is, as text"
    assert not re.search(r"<a[^>]*>click</a>", html) and not re.search(r"<img[^>]*127\.0\.0\.1", html)


def test_the_report_folder_has_the_users_usual_permissions(run_dir):
    umask = os.umask(0)
    os.umask(umask)
    assert run_dir.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (run_dir / "notebooks").stat().st_mode & 0o777 == 0o777 & ~umask
    assert not [p.name for p in run_dir.parent.iterdir() if p.name.startswith(".")], "no temporary folder or lock"
