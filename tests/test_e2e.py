"""One real `cartlib run` on the bundled cohort: every spec key, byte-identical to the in-process
computation (so the same input and parameters always give the same results.json), a complete report."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cartlib.analysis import load
from cartlib.params import defaults
from cartlib.results import dumps
from cartlib.sections import compute_results
from spec_keys import spec_keys


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e") / "report"
    proc = subprocess.run([str(Path(sys.executable).with_name("cartlib")), "run", "--quiet", "--out", str(out)],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


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
