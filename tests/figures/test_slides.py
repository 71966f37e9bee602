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


def test_overlapping_texts_are_found_and_rotated_neighbours_are_not():
    """Texts drawn over each other are reported; texts turned 45 degrees side by side (as tick labels are)
    are not, although their axis-aligned boxes overlap: the check uses the rotated boxes."""
    from matplotlib.figure import Figure

    from generator.figures.slides import text_overlaps

    fig = Figure(figsize=(6, 3), dpi=100)
    fig.text(0.2, 0.5, "first label", fontsize=14)
    fig.text(0.22, 0.5, "second label", fontsize=14)
    assert text_overlaps(fig) == [("first label", "second label")]

    fig = Figure(figsize=(6, 3), dpi=100)
    renderer_boxes = []
    for k in range(4):
        renderer_boxes.append(fig.text(0.2 + 0.06 * k, 0.5, f"features.conv{k}", fontsize=14, rotation=45))
    fig.draw_without_rendering()
    a, b = (t.get_window_extent() for t in renderer_boxes[:2])
    assert a.overlaps(b)  # the axis-aligned boxes overlap ...
    assert text_overlaps(fig) == []  # ... the texts do not


def test_texts_of_a_hidden_axis_do_not_count():
    from generator.figures.export import new_figure
    from generator.figures.slides import check_slide_figure

    fig, axes = new_figure(4, 2, ncols=2)
    for ax in axes:
        ax.imshow(np.zeros((8, 8)))
        ax.set_axis_off()  # its tick labels exist as texts, but are not drawn
    axes[0].set_title("shown", fontsize=12)
    check = check_slide_figure(fig)
    assert check.overlaps == ()
    assert check.min_text_px == round(12 * 100 / 72, 2)


def test_a_slide_gallery_has_level_titles_and_no_overlapping_text():
    from generator.figures.attribution import gallery
    from generator.figures.slides import MIN_FONT_PX, check_slide_figure, for_slides

    rng = np.random.default_rng(1)
    titles = {"a": "Input x Gradient", "b": "Integrated Gradients", "c": "SmoothGrad", "d": "Guided Backpropagation"}
    fig = gallery(rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8),
                  {m: rng.normal(size=(4, 32, 32)) for m in titles}, dict.fromkeys(titles, True),
                  ["MST 8-10\ntrue: smiling\npred: not smiling (0.83)"] * 4, titles=titles, title_rotation=0)
    check = check_slide_figure(for_slides(fig, size=(10.2, 4.8)))
    assert check.overlaps == ()
    assert check.min_text_px >= MIN_FONT_PX - 0.01
