"""Accessibility: axe-core (from node_modules, injected into the page) finds no serious or
critical violation on the home page, a methods page, result pages with figures and tables,
a method page, and the deck's first slides, in the light and the dark palette.

What axe finds is printed (run with ``-s`` to see it). A violation may be accepted only
through ``ALLOWED`` below, each entry with the reason it is not ours to fix.
"""
from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}
SITE_PAGES = ["index.html", "methods/attribution.html", "results/models.html",
              "results/bias-classification.html", "results/attribution.html",
              "results/methods/captum.saliency.html"]
DECK_SLIDES = 3

# (page prefix, axe rule, CSS selector of the node, why it is accepted)
ALLOWED = [
    ("slides/", "color-contrast", ".slide-number",
     "reveal.js core CSS draws the slide number white on a translucent grey badge (2.8:1); "
     "the deck's CSS belongs to generator/report/deck.py and the number only repeats the progress bar"),
]

_RUN_AXE = """async () => {
    const result = await axe.run(document, {resultTypes: ["violations"]});
    return result.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map((n) => n.target.join(" ")),
    }));
}"""


def _axe(page) -> list[dict]:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing; run `npm ci` (axe-core is pinned in package.json)")
    page.add_script_tag(path=str(AXE))
    return page.evaluate(_RUN_AXE)


def _blocking(where: str, violations: list[dict]) -> list[str]:
    """Print every violation; return the serious or critical ones not in ``ALLOWED``."""
    found = []
    for v in violations:
        print(f"{where}: {v['impact']} {v['id']} ({v['help']}): {', '.join(v['nodes'][:5])}")
        for node in v["nodes"]:
            accepted = any(where.startswith(prefix) and v["id"] == rule and selector in node
                           for prefix, rule, selector, _ in ALLOWED)
            if v["impact"] in BLOCKING and not accepted:
                found.append(f"{where}: {v['impact']} {v['id']} at {node}: {v['help']}")
    return found


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_site_pages_have_no_serious_violations(page, site_url, scheme):
    page.emulate_media(color_scheme=scheme)
    found = []
    for path in SITE_PAGES:
        response = page.goto(site_url + path, wait_until="load")
        assert response is not None and response.ok, path
        if page.locator(".result-table table").count():
            page.locator(".result-table th[role=columnheader]").first.wait_for(state="attached")
        found += _blocking(f"{path} ({scheme})", _axe(page))
    assert found == [], "axe found serious or critical violations:\n" + "\n".join(found)


def test_first_slides_have_no_serious_violations(page, site_url):
    page.goto(site_url + "slides/index.html", wait_until="load")
    page.wait_for_function("() => window.Reveal && Reveal.isReady()")
    found = []
    for index in range(min(DECK_SLIDES, page.evaluate("Reveal.getTotalSlides()"))):
        page.evaluate("(i) => Reveal.slide(i)", index)
        page.wait_for_function("(i) => Reveal.getIndices().h === i", arg=index)
        found += _blocking(f"slides/index.html#/{index}", _axe(page))
    assert found == [], "axe found serious or critical violations:\n" + "\n".join(found)


def test_figures_keep_their_alt_text(page, site_url):
    page.goto(site_url + "results/models.html", wait_until="load")
    alts = page.eval_on_selector_all("figure.result-figure img", "(images) => images.map((i) => i.alt)")
    assert alts and all(alt.strip() for alt in alts), alts
