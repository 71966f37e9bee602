"""The reveal.js deck runs offline: it loads only local files, navigates, keeps its
speaker notes, typesets math with KaTeX, and prints one PDF page per slide."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generator.errors import ExportError
from generator.report.pdf import count_pdf_pages, export_pdf

pytestmark = pytest.mark.browser


@pytest.fixture
def deck_page(page, site_url):
    """The deck copied into the site (``slides/index.html``), opened over http and ready."""
    response = page.goto(site_url + "slides/index.html", wait_until="load")
    assert response is not None and response.ok
    page.wait_for_function("() => window.Reveal && Reveal.isReady()")
    return page


def test_deck_loads_only_local_files(deck_page, request_recorder, site_url):
    deck_page.wait_for_load_state("networkidle")
    assert any(url.endswith("lib/reveal.js/reveal.js") for url in request_recorder.urls)
    request_recorder.assert_local()


def test_right_arrow_advances_the_slide(deck_page):
    assert deck_page.evaluate("Reveal.getTotalSlides()") >= 2
    assert deck_page.evaluate("Reveal.getIndices().h") == 0
    deck_page.keyboard.press("ArrowRight")
    deck_page.wait_for_function("() => Reveal.getIndices().h === 1")


def test_speaker_notes_are_in_the_deck(deck_page):
    assert deck_page.locator(".reveal .slides section aside.notes").count() > 0
    assert deck_page.evaluate("Reveal.getSlides().some((s) => Reveal.getSlideNotes(s))")


def test_math_is_typeset_by_katex(deck_page):
    deck_page.locator(".reveal .slides .katex").first.wait_for(state="attached")
    assert deck_page.locator(".reveal .slides .katex-error").count() == 0


def test_pdf_has_one_page_per_slide(chromium_browser, deck_dir, tmp_path):
    # chromium_browser: fails early with a clear message when chromium is missing.
    pdf = export_pdf(Path(deck_dir) / "index.html", tmp_path / "deck.pdf")
    assert count_pdf_pages(pdf) == _leaf_slides(deck_dir)


_OVERFLOW_JS = """async () => {
    const out = [];
    for (const [i, slide] of Reveal.getSlides().entries()) {
        Reveal.slide(...Object.values(Reveal.getIndices(slide)));
        Reveal.layout();
        await document.fonts.ready;  // a shown slide may start loading fonts (KaTeX's), which widen its text
        await new Promise(requestAnimationFrame);
        const box = document.querySelector(".reveal .slides").getBoundingClientRect();
        for (const el of slide.querySelectorAll("*")) {
            // every box counts, the glyphs of a formula too (a display formula's block is as wide as the
            // slide whatever its content); empty boxes (KaTeX's struts) do not
            if (el.closest("aside.notes") || el.closest(".katex-mathml")) continue;
            const r = el.getBoundingClientRect();
            if (r.width < 1 || r.height < 1) continue;
            if (r.left < box.left - 2 || r.right > box.right + 2 || r.top < box.top - 2 || r.bottom > box.bottom + 2) {
                out.push(`slide ${i + 1} (${(slide.querySelector("h1,h2") || {}).textContent}): <${el.tagName.toLowerCase()}> `
                         + `${Math.round(r.left - box.left)},${Math.round(r.top - box.top)} `
                         + `${Math.round(r.width)}x${Math.round(r.height)} in ${Math.round(box.width)}x${Math.round(box.height)}`);
                break;
            }
        }
    }
    return out;
}"""


@pytest.mark.parametrize("viewport", [(1280, 720), (1920, 1080)])
def test_nothing_leaves_a_slide(deck_page, viewport):
    deck_page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    deck_page.wait_for_function("() => Array.from(document.images).every((img) => img.complete)")
    deck_page.locator(".reveal .slides .katex").first.wait_for(state="attached")  # formulas typeset (they are wide)
    assert deck_page.evaluate(_OVERFLOW_JS) == []


_TEXT_SIZE_JS = """async (minimum) => {
    const out = [];
    for (const [i, slide] of Reveal.getSlides().entries()) {
        Reveal.slide(...Object.values(Reveal.getIndices(slide)));
        Reveal.layout();
        await new Promise(requestAnimationFrame);
        const scale = Reveal.getScale();  // screen pixels per pixel of the 1280 x 720 slide
        const where = `slide ${i + 1} (${(slide.querySelector("h1,h2") || {}).textContent})`;
        for (const img of slide.querySelectorAll("img")) {
            // figure text: measured when the figure was drawn (pixels at the file's natural size),
            // then scaled as the browser shows the image
            const measured = parseFloat(img.dataset.minTextPx);
            if (!(measured > 0)) { out.push(`${where}: ${img.getAttribute("src")} has no measured text size`); continue; }
            const shown = measured * img.getBoundingClientRect().width / img.naturalWidth / scale;
            if (shown < minimum) out.push(`${where}: figure text ${shown.toFixed(1)} px < ${minimum} px`);
            if (img.dataset.textOverlaps) out.push(`${where}: figure texts overlap: ${img.dataset.textOverlaps}`);
        }
        for (const el of slide.querySelectorAll("*")) {
            if (el.closest("aside.notes") || el.closest(".katex-mathml")) continue;
            // text of its own, zero-width spaces (KaTeX's struts) left out
            const own = Array.from(el.childNodes).some(
                (n) => n.nodeType === Node.TEXT_NODE && n.textContent.replace(/[\\s\\u200b]/g, ""));
            if (!own || el.getBoundingClientRect().width < 1) continue;
            const size = el.getBoundingClientRect().height ? parseFloat(getComputedStyle(el).fontSize) : 0;
            // KaTeX sets its own sizes relative to the text around it; a sub- or superscript is 70 %
            const floor = el.closest(".katex") ? 0.7 * minimum : minimum;
            if (size < floor) out.push(`${where}: <${el.tagName.toLowerCase()}> "${el.textContent.trim().slice(0, 30)}" ${size} px`);
        }
    }
    return out;
}"""


@pytest.mark.parametrize("viewport", [(1280, 720), (1920, 1080)])
def test_text_on_every_slide_is_legible(deck_page, viewport):
    """No text on a slide below MIN_SLIDE_TEXT_PX pixels of the 1280 x 720 slide, figure text included
    (each deck figure carries its smallest text as drawn), and no figure whose texts overlap."""
    from generator.figures.slides import MIN_SLIDE_TEXT_PX

    deck_page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    deck_page.wait_for_function("() => Array.from(document.images).every((img) => img.complete)")
    assert deck_page.locator(".reveal .slides img").count() > 0
    assert deck_page.evaluate(_TEXT_SIZE_JS, MIN_SLIDE_TEXT_PX) == []


def test_every_pdf_page_with_a_figure_shows_it(chromium_browser, deck_dir, tmp_path):
    """Rasterise the PDF (poppler's pdftoppm) and look for the figure's ink on every page that has one.

    A figure counts as shown when, below the title band, at least 1.5 % of the page is not white
    and the inked rows span at least a fifth of the page height: a title and a one-line caption
    alone (what an overflowing figure left behind) reach neither.
    """
    import re
    import subprocess

    import numpy as np
    from PIL import Image

    if shutil.which("pdftoppm") is None:
        pytest.fail("pdftoppm (Debian's poppler-utils) is needed to rasterise the PDF; .ci/run installs it")
    pdf = export_pdf(Path(deck_dir) / "index.html", tmp_path / "deck.pdf")
    html = (Path(deck_dir) / "index.html").read_text(encoding="utf-8")
    sections = re.findall(r"<section\b.*?</section>", html, re.S)
    subprocess.run(["pdftoppm", "-r", "24", "-gray", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == len(sections)
    with_figure = [i for i, section in enumerate(sections) if "<img" in section]
    assert with_figure, "the deck has no figure slide"
    for i in with_figure:
        pixels = np.asarray(Image.open(pages[i]).convert("L"), dtype=np.uint8)
        body = pixels[int(0.15 * len(pixels)):] < 200  # below the title band
        rows = np.flatnonzero(body.mean(axis=1) > 0.02)
        span = (rows[-1] - rows[0] + 1) / len(pixels) if rows.size else 0.0
        title = re.search(r"<h2>(.*?)</h2>", sections[i])
        assert body.mean() > 0.015 and span > 0.2, (f"page {i + 1} ({title[1] if title else '?'}): figure missing "
                                                   f"(ink {body.mean():.3f}, rows span {span:.2f})")


def test_pdf_with_notes_adds_a_page_per_slide_with_notes(chromium_browser, deck_dir, tmp_path):
    pdf = export_pdf(Path(deck_dir) / "index.html", tmp_path / "notes.pdf", notes=True)
    html = (Path(deck_dir) / "index.html").read_text(encoding="utf-8")
    assert count_pdf_pages(pdf) >= _leaf_slides(deck_dir) + html.count('<aside class="notes">')


def _leaf_slides(deck_dir: Path) -> int:
    """Slides that print as pages: every <section> except vertical stacks (none here)."""
    html = (Path(deck_dir) / "index.html").read_text(encoding="utf-8")
    return html.count("<section")


def test_pdf_export_refuses_a_deck_that_reaches_the_network(chromium_browser, deck_dir, tmp_path):
    deck = tmp_path / "deck"
    shutil.copytree(deck_dir, deck)
    html = deck / "index.html"
    html.write_text(html.read_text(encoding="utf-8").replace(
        "</head>", '<script src="https://cdn.example.org/x.js"></script></head>'), encoding="utf-8")
    with pytest.raises(ExportError, match="cdn.example.org"):
        export_pdf(html, tmp_path / "deck.pdf", timeout_s=30)
    assert not (tmp_path / "deck.pdf").exists()
