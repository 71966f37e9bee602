"""Figures redrawn for the deck: the slide's figure area, and text no smaller than the stated size."""
from __future__ import annotations

import numpy as np


def test_slide_figures_are_legible():
    """Deck figures are drawn at the slide's figure area with text of at least MIN_FONT_PX pixels."""
    from generator.figures.attribution import gallery
    from generator.figures.slides import MIN_FONT_PX, SLIDE_DPI, SLIDE_SIZE_IN, for_slides, smallest_font_pt

    rng = np.random.default_rng(0)
    fig = gallery(rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8),
                  {m: rng.normal(size=(4, 32, 32)) for m in ("a", "b", "c", "d")}, dict.fromkeys("abcd", True),
                  ["MST 1-3\ntrue: smiling\npred: smiling (0.91)"] * 4)
    assert smallest_font_pt(fig) * SLIDE_DPI / 72 < MIN_FONT_PX  # the site's gallery is too small for a room
    fig = for_slides(fig)
    assert tuple(fig.get_size_inches()) == SLIDE_SIZE_IN
    assert smallest_font_pt(fig) * SLIDE_DPI / 72 >= MIN_FONT_PX - 1e-9
