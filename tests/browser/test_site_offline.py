"""The built MkDocs site works without a network: every request stays on 127.0.0.1,
figures load, search finds pages, and KaTeX typesets the math."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

pytestmark = pytest.mark.browser

_WORD = re.compile(r"[a-z]{7,}")


def _results_pages(site_dir: Path) -> list[str]:
    """Site-relative paths of the generated result pages (directory URLs or not)."""
    pages = sorted(p.relative_to(site_dir).as_posix() for p in (site_dir / "results").rglob("*.html"))
    if not pages:
        pytest.fail(f"no result pages under {site_dir / 'results'}; site_dir must be a built site")
    return pages


def _page_with_math(site_dir: Path) -> str:
    for html in sorted(site_dir.rglob("*.html")):
        if html.parent.name != "slides" and 'class="arithmatex"' in html.read_text(encoding="utf-8"):
            return html.relative_to(site_dir).as_posix()
    pytest.fail("no page of the site contains math (class arithmatex); the site must show formulas")


def _word_on_one_page(site_dir: Path) -> tuple[str, str]:
    """A word of a result page's text found on no other page, and that page's location."""
    docs = json.loads((site_dir / "search" / "search_index.json").read_text(encoding="utf-8"))["docs"]
    words_by_page: dict[str, set[str]] = defaultdict(set)
    for doc in docs:
        text = re.sub(r"<[^>]+>", " ", f"{doc['title']} {doc['text']}").lower()
        words_by_page[doc["location"].split("#")[0]].update(_WORD.findall(text))
    for location in sorted(words_by_page):
        if not location.startswith("results/"):
            continue
        others = set().union(*(w for loc, w in words_by_page.items() if loc != location))
        unique = sorted(words_by_page[location] - others)
        if unique:
            return unique[0], location
    pytest.fail("no result page has a word that appears on no other page; cannot test search")


def test_home_and_results_pages_load_nothing_from_the_network(page, request_recorder, site_dir, site_url):
    for path in ["index.html", *_results_pages(site_dir)]:
        response = page.goto(site_url + path, wait_until="networkidle")
        assert response is not None and response.ok, path
    assert any(url.startswith(site_url) for url in request_recorder.urls)
    request_recorder.assert_local()


def test_every_image_on_the_results_pages_loads(page, site_dir, site_url):
    for path in _results_pages(site_dir):
        page.goto(site_url + path, wait_until="load")
        broken = page.evaluate(
            """async () => {
                const images = Array.from(document.images);
                images.forEach((img) => { img.loading = "eager"; });
                await Promise.all(images.map((img) => img.decode().catch(() => null)));
                return images.filter((img) => !(img.complete && img.naturalWidth > 0))
                             .map((img) => img.getAttribute("src"));
            }"""
        )
        assert broken == [], f"{path}: images that did not load: {broken}"


def test_search_finds_the_only_page_with_a_word(page, site_dir, site_url):
    word, location = _word_on_one_page(site_dir)
    page.goto(site_url + "index.html", wait_until="load")
    result = _search(page, word, location)
    assert location in result.get_attribute("href")


def test_math_is_typeset_by_katex(page, site_dir, site_url):
    page.goto(site_url + _page_with_math(site_dir), wait_until="load")
    page.locator(".arithmatex .katex").first.wait_for(state="attached")
    assert page.locator(".arithmatex .katex-error").count() == 0


def test_search_works_from_file_url_with_the_local_worker_shim(page, request_recorder, site_dir):
    """Opened from disk, Material runs its search worker through the iframe-worker shim."""
    word, location = _word_on_one_page(site_dir)
    page.goto((site_dir / "index.html").resolve().as_uri(), wait_until="load")
    assert page.evaluate("typeof window.IFrameWorker") == "function"
    _search(page, word, location)
    request_recorder.assert_local()


def _search(page, word: str, location: str, *, attempts: int = 15):
    """Type ``word`` into Material's search box; return the result link to ``location``.

    Material reacts to key events (not to ``fill``), and a query typed before its
    search worker has loaded the index shows nothing, so the query is re-sent
    with a key press until the result appears (at most ``attempts`` x 2 s).
    """
    search = page.locator("input[data-md-component=search-query]")
    search.click()
    search.press_sequentially(word, delay=20)
    result = page.locator(f"a.md-search-result__link[href*='{location}']").first
    for _ in range(attempts):
        try:
            result.wait_for(state="attached", timeout=2_000)
            return result
        except PlaywrightTimeoutError:
            search.press("Space")
            search.press("Backspace")
    pytest.fail(f"searching the site for {word!r} never listed {location}")
