"""The report as a reader sees it: report.html of the bundled run opened in headless Chromium.

It must load without a JavaScript error or a refused fetch, every image must be an embedded
picture that decodes, the headline table must come before the first section, and printed (A4,
the appendix folded as it is on screen) it must stay under 30 pages. Skipped, with the reason,
only where Chromium is not installed (``.ci/run`` installs it from the distribution's packages).
"""
import base64
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
MAX_PRINTED_PAGES = 30
# what Chromium logs for a script error, a fetch the page's policy refused, or a file it could not load
BROWSER_PROBLEM = re.compile(r"CONSOLE.*(Uncaught|Refused to|Failed to load|ERR_)", re.I)


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium on ``page`` with a fresh profile, logging the console to stderr."""
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                           *args, page.resolve().as_uri()], capture_output=True, text=True, timeout=180)


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src") or "")


def image_problems(dom: str) -> list[str]:
    """Every ``<img>`` that is not an embedded picture Pillow can decode."""
    from PIL import Image

    parser = _Images()
    parser.feed(dom)
    problems = []
    for k, src in enumerate(parser.sources):
        match = re.match(r"data:image/(png|jpeg|gif|svg\+xml);base64,(.*)$", src, re.S)
        if not match:
            problems.append(f"image {k}: not embedded ({src[:40]!r})")
            continue
        try:
            data = base64.b64decode(match.group(2), validate=True)
            if match.group(1) != "svg+xml":
                with Image.open(io.BytesIO(data)) as img:
                    img.verify()
        except Exception as exc:  # any decoding failure is a missing picture for the reader
            problems.append(f"image {k}: does not decode ({type(exc).__name__})")
    return problems


def browser_problems(page: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM Chromium builds from ``page`` and the problems a reader would meet."""
    proc = chromium(page, profile, "--dump-dom")
    problems = [line.strip()[:200] for line in proc.stderr.splitlines() if BROWSER_PROBLEM.search(line)]
    return proc.stdout, problems + image_problems(proc.stdout)


def printed_pages(page: Path, profile: Path, pdf: Path) -> int:
    """How many pages Chromium prints ``page`` on (counted from the PDF's page objects)."""
    chromium(page, profile, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf.read_bytes()))


def test_the_check_catches_a_script_error_and_broken_images(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><p>x</p><script>throw new Error("boom")</script>'
                   '<img src="data:image/png;base64,AAAA"><img src="missing.png"></body></html>')
    _, problems = browser_problems(bad, tmp_path / "profile")
    assert any("Uncaught" in p and "boom" in p for p in problems), problems
    assert any("does not decode" in p for p in problems) and any("not embedded" in p for p in problems), problems


def test_the_report_opens_cleanly_with_every_image(e2e_run, tmp_path):
    dom, problems = browser_problems(e2e_run / "report.html", tmp_path / "profile")
    assert problems == []
    assert dom.count("<img") >= 12, "the figures are there"
    first_section = dom.index('id="section-00_cohort"')
    assert dom.index("Headline findings") < first_section, "the headline table opens the page"
    assert dom.index("Contents") < first_section


def test_the_printed_report_is_short(e2e_run, tmp_path):
    pages = printed_pages(e2e_run / "report.html", tmp_path / "profile", tmp_path / "report.pdf")
    assert 1 < pages < MAX_PRINTED_PAGES, f"{pages} printed pages"
