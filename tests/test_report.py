"""The report page is safe whatever the input is called: user strings escaped and never read as
Markdown, nothing loaded from elsewhere, no script, a Content-Security-Policy."""
import re
from html.parser import HTMLParser

import nbformat
import pytest

from cartlib.report import CONTENT_SECURITY_POLICY, build_report

HOSTILE = "site\n\n[click](javascript:alert(1))\n\n![t](http://127.0.0.1:9/x.png)\n\n<script>alert(2)</script>"
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


class _Links(HTMLParser):
    """Every URL-bearing attribute, every tag name, and the CSP meta of a page."""

    def __init__(self):
        super().__init__()
        self.urls, self.tags, self.csp = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in {"src", "href", "action", "formaction", "srcset", "poster", "data"}:
                self.urls.append((tag, name, value or ""))
        attrs = dict(attrs)
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "content-security-policy":
            self.csp.append(attrs.get("content"))


def assert_self_contained(page: str) -> None:
    """No URL but in-page anchors and data: images; no script; the CSP; nothing remote in CSS."""
    links = _Links()
    links.feed(page)
    unsafe = [(tag, name, value[:60]) for tag, name, value in links.urls
              if not (name == "href" and value.startswith("#")) and not (name == "src" and value.startswith("data:image/"))]
    assert unsafe == [], "allow-list: in-page anchors and data: images only"
    assert "script" not in links.tags
    assert links.csp == [CONTENT_SECURITY_POLICY]
    assert page.index("Content-Security-Policy") < page.index("<style"), "the policy comes before any content"
    assert not re.search(r"url\(\s*['\"]?\s*(https?:|//)", page, re.I)
    assert not re.search(r"https?://", page.replace("http://127.0.0.1:9/x.png", "")), "no remote address at all"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nbs")
    nb = nbformat.v4.new_notebook()
    figure = nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})
    table = nbformat.v4.new_output("execute_result", data={"text/html": "<table><tr><td>1</td></tr></table>"},
                                   execution_count=1)
    nb.cells = [nbformat.v4.new_markdown_cell("# 1. A section\n\nSee [the paper](https://doi.org/10.3389/x) "
                                              "and ![logo](//cdn.example/logo.png)."),
                nbformat.v4.new_code_cell("plot()", outputs=[figure, table], execution_count=1)]
    nbformat.write(nb, folder / "00_cohort.ipynb")
    manifest = {"data": f"/data/{HOSTILE}", "data_fingerprint": "ab" * 32, "cartlib": "0.1.0",
                "parameters": {"data": f"/data/{HOSTILE}", "km_ci": "<b>log</b>"},
                "failures": [{"notebook": "03_pk"}]}
    failure = {"notebook": "03_pk", "cell": 3, "execution_count": 2,
               "error": f"ValueError: no such folder {HOSTILE}", "traceback": "Traceback <img src=x onerror=alert(3)>"}
    target = build_report(folder, folder / "report.html", manifest, failures=[failure],
                          notebooks=["00_cohort", "03_pk"])
    return target.read_text(encoding="utf-8")


def test_the_report_loads_nothing_and_runs_nothing(page):
    assert_self_contained(page)
    assert "data:image/png;base64," + PNG[:20] in page, "the figure is still there"


def test_user_strings_are_text_never_markup(page):
    assert "javascript:alert(1)" in page and 'href="javascript' not in page.lower()
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page and "<script>alert(2)" not in page
    assert "&lt;b&gt;log&lt;/b&gt;" in page
    assert "&lt;img src=x onerror=alert(3)&gt;" in page
    assert not re.search(r"<img[^>]*127\.0\.0\.1", page) and not re.search(r"<a[^>]*>click</a>", page)


def test_a_failed_notebook_has_a_page_naming_cell_and_error(page):
    assert "03_pk: not completed</h1>" in page
    assert "failed in cell 3 (execution count [2])" in page
    assert "ValueError: no such folder site" in page
    assert page.index("1. A section") < page.index("03_pk: not completed"), "sections keep their order"
    assert "<b>Incomplete run:</b> 1 notebook failed" in page
