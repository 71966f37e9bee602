"""Render the audit's lecture deck as a reveal.js 6 presentation that works offline.

``render_deck`` turns slides into HTML (pure); ``write_deck`` writes that HTML and
copies reveal.js and KaTeX from ``node_modules`` next to it, so the deck opens
from ``file://`` or any static server without a network. Math written as
``\\( .. \\)`` or ``\\[ .. \\]`` is typeset by KaTeX through the reveal.js math plugin.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import jinja2
from markupsafe import Markup

from generator.fileio import atomic_write_text
from generator.report.vendor import DECK_LIB_DIR, copy_deck_vendor

__all__ = ["Slide", "TEMPLATE_DIR", "render_deck", "write_deck"]

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "slides" / "templates"
"""Folder holding ``deck.html.j2`` (the repository's ``slides/templates``)."""

_TEMPLATE_NAME = "deck.html.j2"

_MATH_DELIMITERS = (
    {"left": "\\(", "right": "\\)", "display": False},
    {"left": "\\[", "right": "\\]", "display": True},
)


@dataclass(frozen=True)
class Slide:
    """One slide of the deck.

    Attributes
    ----------
    title : str
        Plain text; escaped by the template.
    body_html : str
        Trusted HTML made by the project's page writers (user strings already
        escaped). Math as ``\\( .. \\)`` and ``\\[ .. \\]``; figure paths relative
        to the deck folder (``figures/...``).
    notes : str
        Plain-text speaker notes; each non-empty line becomes a paragraph.
    section : str
        Section name; a slide whose section differs from the previous slide's
        is preceded by a section title slide.
    """

    title: str
    body_html: str
    notes: str = ""
    section: str = ""


def render_deck(slides: Sequence[Slide], *, title: str, subtitle: str = "") -> str:
    """Return the HTML of a reveal.js deck: a title slide, then ``slides``.

    Parameters
    ----------
    slides : sequence of Slide
        The slides in order.
    title, subtitle : str
        Plain text for the title slide and the page title.

    Returns
    -------
    str
        A complete HTML document that loads its libraries from ``lib/``.
    """
    template = _environment().get_template(_TEMPLATE_NAME)
    return template.render(
        title=title,
        subtitle=subtitle,
        slides=_slide_views(slides),
        reveal_config=_reveal_config(),
    )


def write_deck(
    slides: Sequence[Slide],
    deck_dir: Path,
    *,
    title: str,
    subtitle: str = "",
    node_modules: Path,
) -> Path:
    """Write ``<deck_dir>/index.html`` and copy the libraries into ``<deck_dir>/lib``.

    The HTML is written atomically (temporary file, then ``os.replace``). Figure
    files referenced by the slides must be copied into ``deck_dir`` by the caller.

    Parameters
    ----------
    slides : sequence of Slide
        The slides in order.
    deck_dir : Path
        Output folder; created if missing.
    title, subtitle : str
        Plain text for the title slide.
    node_modules : Path
        The project's ``node_modules`` (``npm ci``).

    Returns
    -------
    Path
        The written ``index.html``.

    Raises
    ------
    ExportError
        If ``node_modules`` lacks a library the deck needs.
    """
    html = render_deck(slides, title=title, subtitle=subtitle)
    deck_dir = Path(deck_dir)
    deck_dir.mkdir(parents=True, exist_ok=True)
    copy_deck_vendor(node_modules, deck_dir)
    atomic_write_text(deck_dir / "index.html", html)
    return deck_dir / "index.html"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _slide_views(slides: Sequence[Slide]) -> list[dict[str, Any]]:
    views, previous = [], ""
    for slide in slides:
        starts = slide.section if slide.section and slide.section != previous else ""
        previous = slide.section
        views.append({
            "title": slide.title,
            "body": Markup(slide.body_html),  # trusted: made by the project's writers
            "notes": _paragraphs(slide.notes) + _figure_ids(slide.body_html),
            "section": slide.section,
            "section_start": starts,
        })
    return views


def _figure_ids(body_html: str) -> list[str]:
    """A notes line naming the figures of a slide (their ids stay off the slide, for the lecturer to cite)."""
    ids = re.findall(r'data-figure-id="([^"]+)"', body_html)
    return [f"Figure: {html.unescape(i)} (PNG, SVG and PDF on the site, BibTeX in figures.bib)." for i in ids]


def _paragraphs(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _reveal_config() -> dict[str, Any]:
    return {
        "hash": True,
        "width": 1280,
        "height": 720,
        "margin": 0.04,
        "center": False,
        "slideNumber": "c/t",
        "transition": "none",
        "pdfMaxPagesPerSlide": 1,
        "pdfSeparateFragments": False,
        "katex": {
            "local": f"{DECK_LIB_DIR.as_posix()}/katex",
            "delimiters": list(_MATH_DELIMITERS),
            "ignoredTags": ["script", "noscript", "style", "textarea", "pre", "code"],
            "throwOnError": False,
        },
    }
