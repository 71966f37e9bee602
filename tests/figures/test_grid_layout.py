"""The gallery's layout engine: equal square panels, every text inside the figure, nothing overlapping."""
from __future__ import annotations

import numpy as np
import pytest

TITLES = {"a": "Saliency", "b": "Input x Gradient", "c": "Integrated Gradients", "d": "Guided Backpropagation",
          "e": "Guided Grad-CAM"}
LABEL = "MST 8-10 / young\ntrue: not smiling\npred: not smiling (0.96)"


def _gallery(rows: int, methods: list[str], rotation: float = 30):
    from generator.figures.attribution import gallery

    rng = np.random.default_rng(0)
    maps = {m: rng.normal(size=(rows, 16, 16)) for m in methods}
    maps[methods[0]][0] = 0.0  # an "all zero" panel
    signed = {m: k % 2 == 0 for k, m in enumerate(methods)}
    return gallery(rng.integers(0, 255, (rows, 16, 16, 3), dtype=np.uint8), maps, signed, [LABEL] * rows,
                   titles=TITLES, title_rotation=rotation)


def _check(fig) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    engine = fig.get_layout_engine()
    panels = [ax.get_window_extent(renderer) for ax in engine.panels.ravel()]
    sides = {round(b.width, 3) for b in panels} | {round(b.height, 3) for b in panels}
    assert len(sides) == 1, f"panels are not equal squares: {sides}"
    for k, a in enumerate(panels):
        assert all(not a.overlaps(b) for b in panels[k + 1:])
    bars = [ax.get_tightbbox(renderer) for ax in engine.colorbars]
    right = max(b.x1 for b in panels)
    assert all(bar.x0 > right for bar in bars), "a colour bar overlaps the panels"
    assert all(not a.overlaps(b) for k, a in enumerate(bars) for b in bars[k + 1:])
    figure = fig.bbox
    hidden = {id(t) for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) if not axis.get_visible()
              for t in (*axis.get_ticklabels(which="both"), axis.label)}  # not drawn
    texts = [t for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible() and id(t) not in hidden]
    assert len(texts) >= len(engine.row_labels) + len(engine.column_titles)
    for text in texts:
        box = text.get_window_extent(renderer)
        if box.width == 0:
            continue
        assert box.x0 >= figure.x0 - 1 and box.x1 <= figure.x1 + 1 and box.y0 >= figure.y0 - 1 \
            and box.y1 <= figure.y1 + 1, f"{text.get_text()!r} runs out of the figure: {box} vs {figure}"
    labels = [t.get_window_extent(renderer) for t in engine.row_labels]
    assert all(label.x1 <= min(b.x0 for b in panels) for label in labels), "a row label runs into a panel"


@pytest.mark.parametrize("rows, n_methods", [(12, 5), (8, 2), (1, 1)])
def test_site_galleries_are_laid_out_within_the_figure(rows, n_methods):
    _check(_gallery(rows, list(TITLES)[:n_methods]))


def test_a_gallery_resized_for_a_slide_is_laid_out_again():
    from generator.figures.slides import check_slide_figure, for_slides

    fig = for_slides(_gallery(4, list(TITLES)[:4], rotation=0), size=(4.4 + 1.15 * 5, 4.8))  # the deck's size for four methods
    _check(fig)
    assert len(fig.get_layout_engine().column_titles) == 4
    assert check_slide_figure(fig).overlaps == ()  # level titles included (the deck's test of every slide figure)
