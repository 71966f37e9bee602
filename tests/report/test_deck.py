"""render_deck escapes plain text and keeps every slide; write_deck and the vendor
copies leave a deck whose every referenced file exists locally."""
from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from generator.errors import ExportError
from generator.report.deck import Slide, render_deck, write_deck
from generator.report.vendor import copy_deck_vendor, copy_site_vendor

REPO = Path(__file__).resolve().parents[2]
XSS = "<img src=x onerror=alert(1)>"


class _UrlCollector(HTMLParser):
    """The src and href attributes of every tag (escaped text is not a tag)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def _urls(html: str) -> list[str]:
    collector = _UrlCollector()
    collector.feed(html)
    return collector.urls


@pytest.fixture(scope="module")
def node_modules() -> Path:
    path = REPO / "node_modules"
    if not (path / "reveal.js").is_dir():
        pytest.fail(f"{path} lacks reveal.js; run `npm ci` in {REPO}")
    return path


def _slides() -> list[Slide]:
    return [
        Slide(f"Why {XSS}", "<p>Accuracy by <em>group</em>.</p>", notes=f"first line\n\n{XSS}\nthird", section="Intro"),
        Slide("Parity", r"<p>\(\Delta = |p_a - p_b|\)</p>", notes="explain", section="Bias"),
        Slide("Figure", '<img src="figures/a.png" alt="a">', section="Bias"),
    ]


def test_titles_notes_and_subtitle_are_escaped():
    html = render_deck(_slides(), title=f"T {XSS}", subtitle=XSS)
    assert XSS not in html
    assert html.count("&lt;img src=x onerror=alert(1)&gt;") == 5  # <title>, h1, subtitle, h2, notes


def test_trusted_body_html_is_kept():
    html = render_deck(_slides(), title="Deck")
    assert "<p>Accuracy by <em>group</em>.</p>" in html
    assert r"\(\Delta = |p_a - p_b|\)" in html


def test_every_slide_and_one_title_slide_per_section_are_present():
    html = render_deck(_slides(), title="Deck")
    assert all(f"<h2>{title}</h2>" in html for title in ("Parity", "Figure", "Intro", "Bias"))
    assert html.count("<section") == 1 + 2 + 3  # title slide, two section slides, three slides


def test_notes_become_paragraphs_in_aside_notes():
    html = render_deck(_slides(), title="Deck")
    assert html.count('<aside class="notes">') == 2
    notes = re.search(r'<aside class="notes">(.*?)</aside>', html, re.DOTALL).group(1)
    assert re.findall(r"<p>(.*?)</p>", notes) == ["first line", "&lt;img src=x onerror=alert(1)&gt;", "third"]


def test_no_slides_gives_a_title_only_deck():
    html = render_deck([], title="Empty")
    assert html.count("<section") == 1


def test_rendered_deck_loads_nothing_from_the_network():
    html = render_deck(_slides(), title="Deck")
    urls = _urls(html)
    assert "lib/reveal.js/reveal.js" in urls
    remote = [url for url in urls if re.match(r"\s*(https?:)?//", url, re.IGNORECASE)]
    assert remote == []
    assert "cdn" not in html.lower()
    assert '"local": "lib/katex"' in html  # reveal.js math plugin loads KaTeX from lib/


def test_write_deck_writes_html_whose_local_references_exist(tmp_path, node_modules):
    (tmp_path / "deck" / "figures").mkdir(parents=True)
    (tmp_path / "deck" / "figures" / "a.png").write_bytes(b"png")
    html_path = write_deck(_slides(), tmp_path / "deck", title="Deck", node_modules=node_modules)
    assert html_path == tmp_path / "deck" / "index.html"
    missing = [url for url in _urls(html_path.read_text(encoding="utf-8"))
               if not (html_path.parent / url).is_file()]
    assert missing == []
    assert not list(html_path.parent.glob(".*.tmp"))


def test_deck_katex_files_sit_where_the_math_plugin_looks(tmp_path, node_modules):
    copy_deck_vendor(node_modules, tmp_path)
    katex = tmp_path / "lib" / "katex" / "dist"
    for name in ("katex.min.css", "katex.min.js", "contrib/auto-render.min.js"):
        assert (katex / name).is_file(), name
    _assert_css_urls_exist(katex / "katex.min.css")


def test_site_vendor_has_katex_with_fonts_and_the_worker_shim(tmp_path, node_modules):
    files = copy_site_vendor(node_modules, tmp_path)
    vendor = tmp_path / "assets" / "vendor"
    assert vendor / "iframe-worker" / "shim.js" in files
    assert vendor / "katex" / "contrib" / "auto-render.min.js" in files
    assert all(path.is_file() for path in files)
    _assert_css_urls_exist(vendor / "katex" / "katex.min.css")


def test_vendor_copy_skips_files_that_are_already_up_to_date(tmp_path, node_modules):
    first = copy_site_vendor(node_modules, tmp_path)
    os.utime(first[0], ns=(0, 0))
    copy_site_vendor(node_modules, tmp_path)
    assert first[0].stat().st_mtime_ns == 0  # unchanged content: not rewritten
    first[0].write_text("stale")
    copy_site_vendor(node_modules, tmp_path)
    assert first[0].read_bytes() != b"stale"


def test_missing_node_modules_asks_for_npm_ci(tmp_path):
    with pytest.raises(ExportError, match="npm ci"):
        copy_site_vendor(tmp_path / "node_modules", tmp_path / "docs")
    with pytest.raises(ExportError, match="npm ci"):
        write_deck(_slides(), tmp_path / "deck", title="Deck", node_modules=tmp_path / "node_modules")


def test_missing_package_file_names_it_and_asks_for_npm_ci(tmp_path):
    (tmp_path / "node_modules" / "katex").mkdir(parents=True)
    with pytest.raises(ExportError, match=r"katex.*npm ci"):
        copy_site_vendor(tmp_path / "node_modules", tmp_path / "docs")


def _assert_css_urls_exist(css: Path) -> None:
    urls = set(re.findall(r"url\(([^)]+)\)", css.read_text(encoding="utf-8")))
    assert urls, css
    missing = [u for u in urls if not (css.parent / u.strip("'\"")).is_file()]
    assert missing == []
