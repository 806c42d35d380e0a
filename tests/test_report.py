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


# --- the first page, the reading path and the appendix ---------------------------------------

def _section_with_key_dump(folder):
    nb = nbformat.v4.new_notebook()
    dump = nbformat.v4.new_output("execute_result", data={"text/html": "<table><tr><td>KEYDUMP</td></tr></table>"},
                                  execution_count=2)
    nb.cells = [nbformat.v4.new_markdown_cell("# 1. The cohort\n\nNarrative."),
                nbformat.v4.new_markdown_cell("## Results keys of this section\n\nThe keys."),
                nbformat.v4.new_code_cell("key_table(values)", outputs=[dump], execution_count=2),
                nbformat.v4.new_markdown_cell("## After the keys\n\nMore narrative.")]
    nbformat.write(nb, folder / "00_cohort.ipynb")


RESULTS = {"cohort.n": 50, "cohort.female_n": 23, "efficacy.cr_rate": 0.98, "efficacy.cr_rate_lo": 0.894,
           "efficacy.cr_rate_hi": 0.999, "efficacy.os_5y": 0.5, "bca.n": 48}


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    from cartlib.analysis import DEFAULT_COHORT
    from cartlib.io import cohort_fingerprint

    folder = tmp_path_factory.mktemp("keys")
    _section_with_key_dump(folder)
    out = {}
    for name, fingerprint in (("bundled", cohort_fingerprint(DEFAULT_COHORT)), ("own", "cd" * 32)):
        manifest = {"data": name, "data_fingerprint": fingerprint, "cartlib": "0.1.0", "parameters": {}}
        out[name] = build_report(folder, folder / f"{name}.html", manifest, notebooks=["00_cohort"],
                                 results=RESULTS).read_text(encoding="utf-8")
    return out


def test_the_first_page_leads_with_the_cohort_and_the_headline_findings(pages):
    page = pages["bundled"]
    order = [page.index(s) for s in ("Cohort:</b> 50 patients (23 female)", "Headline findings", ">Contents<",
                                     "1. The cohort")]
    assert order == sorted(order)
    assert "<th>Paper</th><th>Status</th>" in page
    assert "98.0% (89.4–99.9)" in page and "✓ matched" in page
    assert "✗ differs" in page, "the 5-year OS of 50 % is not the paper's 74.9 %"
    assert_self_contained(page)


def test_on_a_users_cohort_the_headline_has_no_paper_column(pages):
    page = pages["own"]
    assert "Headline findings" in page and "98.0% (89.4–99.9)" in page
    assert "<th>Paper</th>" not in page and "✓ matched" not in page


def test_key_dumps_leave_the_reading_path_for_a_folded_labelled_appendix(pages):
    page = pages["bundled"]
    assert "KEYDUMP" not in page and "Results keys of this section" not in page
    assert "More narrative." in page, "the section goes on after the key block"
    appendix = page[page.index('id="appendix-keys"'):]
    assert page.index("More narrative.") < page.index('id="appendix-keys"')
    assert appendix.count("<details>") == 3, "one folded table per section"
    assert "patients, n" in appendix and "efficacy.cr_rate" in appendix
    assert '<a href="#appendix-keys">' in page, "the contents lead to it"


def test_a_run_saves_every_figure_as_svg_and_300_dpi_png(e2e_run):
    from PIL import Image

    from cartlib.runner import NOTEBOOKS, notebook_dir, notebook_parameters

    declaring = [n for n in NOTEBOOKS if "figures_dir" in notebook_parameters(notebook_dir() / f"{n}.ipynb")]
    if not declaring:
        pytest.skip("no notebook declares the parameter figures_dir")
    files = sorted((e2e_run / "figures").iterdir())
    svg, png = ({p.stem for p in files if p.suffix == s} for s in (".svg", ".png"))
    assert svg == png and len(svg) >= len(declaring), sorted(p.name for p in files)
    assert "scorecard" in svg
    with Image.open(e2e_run / "figures" / "scorecard.png") as img:
        assert [round(d) for d in img.info["dpi"]] == [300, 300]
    assert (e2e_run / "figures" / "scorecard.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")


def test_the_page_has_what_nbconvert_adds_for_accessibility_without_its_html_parser(tmp_path):
    """render_page skips HTMLExporter's closing BeautifulSoup pass and adds the same attributes
    itself: every tag and attribute equals the exporter's own page, and the exporter is left as
    it was."""
    from bs4 import BeautifulSoup
    from nbconvert.exporters import html as exporter_module

    from cartlib.report import PAGE_NAME, html_exporter, render_page

    nb = nbformat.v4.new_notebook()
    bare_image = nbformat.v4.new_output("display_data", data={"image/png": PNG})
    described = nbformat.v4.new_output("display_data", data={"text/html": f'<img src="data:image/png;base64,{PNG}" '
                                                                          'alt="a dot">'})
    text = nbformat.v4.new_output("stream", name="stdout", text="42\n")
    nb.cells = [nbformat.v4.new_markdown_cell("# Title\n\nSome *text*."),
                nbformat.v4.new_code_cell("x", outputs=[bare_image, described, text], execution_count=1)]
    original = exporter_module.BeautifulSoup
    ours = render_page(nb, with_code=True)
    assert exporter_module.BeautifulSoup is original
    theirs, _ = html_exporter(True).from_notebook_node(nb, resources={"metadata": {"name": PAGE_NAME}})

    def tags(page):
        return [(t.name, sorted((k, " ".join(v) if isinstance(v, list) else v) for k, v in t.attrs.items()))
                for t in BeautifulSoup(page, "html.parser").find_all(True)]

    assert tags(ours) == tags(theirs)
    assert ours.count('tabindex="0"') == theirs.count('tabindex="0"') >= 4
    assert re.findall(r"<img\b[^>]*>", ours) and all("alt=" in tag for tag in re.findall(r"<img\b[^>]*>", ours))


def test_every_image_of_a_run_has_its_own_alt_text(e2e_run):
    """nbconvert gives an image without one a stock sentence; every figure of the suite is
    published with a description of its own."""
    page = (e2e_run / "report.html").read_text(encoding="utf-8")
    images = re.findall(r"<img\b[^>]*>", page)
    assert len(images) >= 20
    assert [i[:80] for i in images if "No description has been provided" in i or "alt=" not in i] == []


def test_the_same_notebooks_give_the_same_page_byte_for_byte(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 1. A section"), nbformat.v4.new_code_cell("x", execution_count=1)]
    nbformat.write(nb, tmp_path / "00_cohort.ipynb")
    manifest = {"data": "bundled default cohort", "data_fingerprint": "ab" * 32, "cartlib": "0.1.0",
                "parameters": {"km_ci": "plain"}, "failures": []}
    pages = [build_report(tmp_path, tmp_path / f"report{i}.html", manifest, results={"cohort.n": 50}).read_bytes()
             for i in range(2)]
    assert pages[0] == pages[1]
