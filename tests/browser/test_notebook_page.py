"""The tutorial notebook's page (mkdocs-jupyter) works offline: every request stays on the
machine, MathJax 2 comes from the site's own copy and typesets every formula, the figures
(inline PNGs) load, and the notebook itself is published next to the page for download.

mkdocs-jupyter's template would load MathJax from cdnjs; ``custom_mathjax_url`` in mkdocs.yml
points it at ``assets/vendor/mathjax`` (copied by generator.report.vendor). The template also
carries a Mermaid loader that imports from cdnjs only when the page has a Mermaid diagram:
the tutorial has none, and the test checks that it stays so.
"""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

PAGE = "tutorial.html"
MATHJAX = "assets/vendor/mathjax/"
MIN_FORMULAS = 20  # the notebook's markdown holds a few dozen $...$ and $$...$$ formulas

_TYPESET = """() => window.MathJax !== undefined && MathJax.Hub !== undefined
    && MathJax.Hub.queue.pending === 0 && !MathJax.Hub.queue.running
    && document.querySelectorAll('.mjx-chtml').length > 0"""
_STATE = """() => ({
    formulas: document.querySelectorAll('.mjx-chtml.MathJax_CHTML').length,
    errors: document.querySelectorAll('.MathJax_Error, .mjx-merror, .mjx-noError').length,
    leftover: Array.from(document.querySelectorAll('.jp-RenderedMarkdown'))
        .map((e) => e.innerText).join('\\n').match(/\\$[^$\\n]+\\$/g),
    mermaid: document.querySelectorAll('.jp-Mermaid').length,
    images: Array.from(document.images).filter((i) => i.closest('.jp-OutputArea'))
        .map((i) => i.complete && i.naturalWidth > 0),
})"""


class _Fetched(HTMLParser):
    """URLs the browser fetches: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "img": "src", "link": "href"}.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value]


@pytest.fixture
def failed_responses(page) -> list[str]:
    """URLs of the page that answered 400 or more, or failed to load (e.g. a missing local file)."""
    failures: list[str] = []
    page.on("response", lambda response: failures.append(f"{response.status} {response.url}")
            if response.status >= 400 else None)
    page.on("requestfailed", lambda request: failures.append(f"{request.failure} {request.url}"))
    return failures


def test_page_fetches_only_local_files(site_dir: Path):
    parser = _Fetched()
    parser.feed((site_dir / PAGE).read_text(encoding="utf-8"))
    remote = [url for url in parser.urls if urlsplit(url).scheme in ("http", "https") or url.startswith("//")]
    assert remote == []
    assert any(url.startswith(MATHJAX + "MathJax.js") for url in parser.urls), "MathJax is not the local copy"
    assert (site_dir / "tutorial.ipynb").is_file(), "include_source should publish the notebook for download"


@pytest.mark.parametrize("opened", ["http", "file"])
def test_math_typesets_offline_from_the_local_mathjax(page, request_recorder, failed_responses, site_dir,
                                                       site_url, opened):
    url = site_url + PAGE if opened == "http" else (site_dir / PAGE).resolve().as_uri()
    page.goto(url, wait_until="load")
    page.wait_for_function(_TYPESET)
    state = page.evaluate(_STATE)
    assert state["formulas"] >= MIN_FORMULAS, state
    assert state["errors"] == 0 and state["leftover"] is None, state
    assert state["mermaid"] == 0, "a Mermaid diagram makes the template import Mermaid from cdnjs"
    assert state["images"] and all(state["images"]), "a figure of the notebook did not load"
    mathjax = [u for u in request_recorder.urls if "/mathjax/" in u]
    assert mathjax and all(re.search(re.escape(MATHJAX), u) for u in mathjax), mathjax
    assert failed_responses == [], "MathJax asked for files the site lacks (extend _MATHJAX_PARTS in vendor.py)"
    request_recorder.assert_local()
