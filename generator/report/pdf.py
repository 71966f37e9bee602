"""Print the reveal.js deck to PDF with Debian's chromium driven by Playwright.

reveal.js lays a deck out for printing when opened with ``?print-pdf``; chromium's
own ``--print-to-pdf`` prints before that layout exists (a blank page), so the deck
is opened in a Playwright page, awaited until reveal.js, KaTeX and the fonts are
done, and printed with ``page.pdf``. Every request that would leave the machine is
blocked and fails the export: the PDF shows exactly what the offline deck shows.

Chromium stamps the PDF with the time of printing (``/CreationDate``, ``/ModDate``);
:func:`normalise_pdf` rewrites those stamps (and a document ``/ID``, if any) to fixed
values of the same length, so that two exports of one deck are byte-identical and the
cross-reference offsets stay valid.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from generator.errors import ExportError

__all__ = ["CHROMIUM_ARGS", "PDF_DATE", "find_chromium", "export_pdf", "count_pdf_pages", "normalise_pdf"]

log = logging.getLogger(__name__)

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
)
"""Flags for Debian's chromium in containers and CI, without background traffic."""

_LOCAL_SCHEMES = frozenset({"file", "data", "blob", "about"})

PDF_DATE = "19700101000000"
"""The date (``YYYYMMDDHHmmSS``, UTC) that :func:`normalise_pdf` writes into a PDF."""

# "/CreationDate (D:20260102030405+01'00')": the name, the digits, the time zone.
_PDF_DATE_FIELD = re.compile(rb"(/(?:CreationDate|ModDate)\s*\(D:)(\d{1,14})([^)]{0,16}\))")
_PDF_ID = re.compile(rb"(/ID\s*\[\s*<)([0-9A-Fa-f]+)(>\s*<)([0-9A-Fa-f]+)(>\s*\])")

# reveal.js adds data-pdf-ready (see deck.html.j2) after the print layout; the
# math plugin renders on the "ready" event (class "ready") once KaTeX's
# auto-render has loaded (renderMathInElement defined).
_READY_JS = """() =>
    document.documentElement.getAttribute("data-pdf-ready") === "true"
    && document.querySelector(".reveal.ready") !== null
    && typeof window.renderMathInElement === "function"
"""

_SETTLE_JS = """async () => {
    await new Promise(requestAnimationFrame);
    await new Promise(requestAnimationFrame);
    await document.fonts.ready;
    const images = Array.from(document.images);
    await Promise.all(images.map((img) => img.decode().catch(() => null)));
    // Every image must be loaded and lie inside its printed page: reveal.js clips what overflows.
    const misplaced = Array.from(document.querySelectorAll(".pdf-page")).flatMap((page, i) =>
        Array.from(page.querySelectorAll("img")).filter((img) => {
            const p = page.getBoundingClientRect(), b = img.getBoundingClientRect();
            return !img.complete || img.naturalWidth === 0 || b.height < 1 || b.top < p.top - 1
                || b.bottom > p.bottom + 1 || b.left < p.left - 1 || b.right > p.right + 1;
        }).map((img) => `page ${i + 1}: ${img.getAttribute("src")}`));
    return {
        misplaced,
        failedFonts: Array.from(document.fonts)
            .filter((font) => font.status === "error").map((font) => font.family),
        mathErrors: document.querySelectorAll(".katex-error").length,
        slides: Reveal.getSlides().length,
        slidesWithNotes: Reveal.getSlides().filter((s) => Reveal.getSlideNotes(s)).length,
    };
}"""


def find_chromium() -> str:
    """Return the path of Debian's ``chromium``.

    Raises
    ------
    ExportError
        If no ``chromium`` is on the PATH.
    """
    path = shutil.which("chromium")
    if path is None:
        raise ExportError(
            "chromium not found on PATH; install Debian's package with "
            "`apt-get install chromium` (Playwright drives it; no browser download is needed)"
        )
    return path


def export_pdf(
    deck_html: Path, pdf_path: Path, *, notes: bool = False, timeout_s: float = 120
) -> Path:
    """Print a reveal.js deck to PDF, one page per slide.

    Parameters
    ----------
    deck_html : Path
        The deck's ``index.html`` (written by ``generator.report.deck.write_deck``).
    pdf_path : Path
        Output file; written atomically.
    notes : bool
        If true, each slide with speaker notes is followed by a page of notes
        (reveal.js ``showNotes=separate-page``).
    timeout_s : float
        Limit for starting chromium, loading the deck and each wait.

    Returns
    -------
    Path
        ``pdf_path``.

    Raises
    ------
    ExportError
        If chromium or Playwright is missing, the deck does not load, it asks for
        anything outside the machine, a font fails, or the page count is wrong.
    """
    deck_html = Path(deck_html).resolve()
    if not deck_html.is_file():
        raise ExportError(f"deck not found: {deck_html}; write it with write_deck first")
    query = "?print-pdf&showNotes=separate-page" if notes else "?print-pdf"
    pdf_path = Path(pdf_path)
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=pdf_path.parent, prefix=f".{pdf_path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        report = _outside_event_loop(
            _print_to, tmp, deck_html.as_uri() + query, find_chromium(), timeout_s * 1000
        )
        _check_pages(count_pdf_pages(tmp), report, notes=notes)
        tmp.write_bytes(normalise_pdf(tmp.read_bytes()))
        os.chmod(tmp, 0o644)
        os.replace(tmp, pdf_path)
    finally:
        tmp.unlink(missing_ok=True)
    return pdf_path


def count_pdf_pages(pdf: Path) -> int:
    """Number of pages of a PDF (pypdf if installed, else a scan for page objects)."""
    try:
        from pypdf import PdfReader
    except ImportError:
        return len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", Path(pdf).read_bytes()))
    return len(PdfReader(pdf).pages)


def normalise_pdf(data: bytes, *, date: str = PDF_DATE) -> bytes:
    """The PDF ``data`` with its time stamps and document ID made independent of the run.

    Every ``/CreationDate`` and ``/ModDate`` gets the digits of ``date`` and a zero UTC
    offset; a trailer ``/ID`` gets a hash of the rest of the file. Each value keeps its
    length, so the byte offsets in the cross-reference table stay valid.

    Parameters
    ----------
    data : bytes
        A PDF as chromium writes it (uncompressed document information dictionary).
    date : str
        ``YYYYMMDDHHmmSS``; a stamp with fewer digits gets the leading ones.

    Returns
    -------
    bytes
        The normalised PDF, of the same length as ``data``.
    """
    if not re.fullmatch(r"\d{14}", date):
        raise ValueError(f"date must be 14 digits YYYYMMDDHHmmSS, got {date!r}")

    def fixed_date(match: re.Match) -> bytes:
        zone = re.sub(rb"\d", b"0", match[3]).replace(b"-", b"+")
        return match[1] + date.encode()[: len(match[2])] + zone

    data = _PDF_DATE_FIELD.sub(fixed_date, data)
    zeroed = _PDF_ID.sub(lambda m: m[1] + b"0" * len(m[2]) + m[3] + b"0" * len(m[4]) + m[5], data)
    digest = hashlib.sha256(zeroed).hexdigest().encode() * 4

    def content_id(match: re.Match) -> bytes:
        return match[1] + digest[: len(match[2])] + match[3] + digest[: len(match[4])] + match[5]

    return _PDF_ID.sub(content_id, data)


def _outside_event_loop(function, *args):
    """Call ``function`` here, or in a worker thread when an asyncio loop runs here
    (Jupyter, or another Playwright session), since Playwright's sync API refuses it."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args).result()


def _print_to(target: Path, url: str, chromium: str, timeout_ms: float) -> dict:
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise ExportError("Playwright for Python is missing; `pip install playwright`") from exc
    watch = _PageWatch()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium, args=list(CHROMIUM_ARGS), timeout=timeout_ms
            )
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 720})
                page.set_default_timeout(timeout_ms)
                watch.attach(page)
                page.goto(url, wait_until="load")
                page.wait_for_function(_READY_JS)
                report = page.evaluate(_SETTLE_JS)
                watch.check(report)
                page.pdf(path=str(target), prefer_css_page_size=True, print_background=True)
            finally:
                browser.close()
    except PlaywrightError as exc:
        raise ExportError(f"printing {url} with {chromium} failed: {exc}{watch.summary()}") from exc
    watch.check(report)
    return report


@dataclass
class _PageWatch:
    """What a page did wrong: requests off the machine, script errors, failed loads."""

    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        page.on("request", lambda request: self._note_outside(request.url))
        page.on("requestfailed", lambda request: self.failed.append(request.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.route("**/*", self._local_only)

    def summary(self) -> str:
        lines = [("requests off the machine (blocked)", self.outside),
                 ("JavaScript errors", self.errors), ("files that failed to load", self.failed)]
        return "".join(f"\n{title}: {', '.join(items)}" for title, items in lines if items)

    def check(self, report: dict) -> None:
        if self.outside:
            raise ExportError(
                "the deck asked for files outside this machine (blocked): " + ", ".join(self.outside)
                + "; every library must load from the deck's lib/ folder"
            )
        if self.errors:
            raise ExportError("the deck raised JavaScript errors: " + "; ".join(self.errors))
        if report["failedFonts"]:
            raise ExportError("fonts failed to load: " + ", ".join(sorted(set(report["failedFonts"]))))
        if report["misplaced"]:
            raise ExportError("images not loaded or not inside their printed page (they would be missing from "
                              "the PDF): " + "; ".join(report["misplaced"]))
        if report["mathErrors"]:
            log.warning("%d formulas in the deck could not be typeset by KaTeX", report["mathErrors"])

    def _note_outside(self, url: str) -> None:
        if not _is_local(url) and url not in self.outside:
            self.outside.append(url)

    def _local_only(self, route) -> None:
        if _is_local(route.request.url):
            route.continue_()
        else:
            self._note_outside(route.request.url)
            route.abort("blockedbyclient")


def _is_local(url: str) -> bool:
    return urlsplit(url).scheme in _LOCAL_SCHEMES


def _check_pages(pages: int, report: dict, *, notes: bool) -> None:
    expected = report["slides"] + (report["slidesWithNotes"] if notes else 0)
    if pages == expected:
        return
    if notes and pages > expected:
        log.warning(
            "the PDF has %d pages for %d slides and %d notes pages: some notes span two pages",
            pages, report["slides"], report["slidesWithNotes"],
        )
        return
    raise ExportError(
        f"the PDF has {pages} pages but the deck has {expected} "
        f"({report['slides']} slides{', plus notes pages' if notes else ''}); "
        "reveal.js should print exactly one page per slide"
    )
