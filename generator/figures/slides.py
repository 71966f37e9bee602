"""Figures redrawn for the lecture room: 16:9 panels, text no smaller than a stated size.

The site's figures are made for reading up close (a gallery of 8 faces x 11 methods, method
names at 7 pt). A slide is read from the back row at 1280 x 720, so the deck gets its own
versions of the crowded figures: fewer panels per slide (a gallery split into four methods by
four faces) and every text scaled so that the smallest is :data:`MIN_FONT_PT` at
:data:`SLIDE_DPI`, i.e. at least :data:`MIN_FONT_PX` pixels where the slide shows the figure at
its natural size (1280 x 480 px, the figure area of a 1280 x 720 slide below its title and
above a two-line takeaway). :func:`check_slide_figure` measures what was drawn: the smallest
text in pixels and any texts that overlap, which the deck's browser test then checks on the
rendered slide.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.text import Text

from generator.figures.export import STYLE

__all__ = ["MIN_FONT_PT", "MIN_FONT_PX", "MIN_SLIDE_TEXT_PX", "OVERLAP_TOLERANCE_PX", "SLIDE_DPI", "SLIDE_SIZE_IN",
           "SlideCheck", "check_slide_figure", "for_slides", "slide_png", "smallest_font_pt", "text_overlaps"]

SLIDE_SIZE_IN = (12.8, 4.8)
SLIDE_DPI = 100
MIN_FONT_PT = 11.0
MIN_FONT_PX = MIN_FONT_PT * SLIDE_DPI / 72.0  # about 15 px
MIN_SLIDE_TEXT_PX = 14.0
"""The smallest text a slide may show, figure text included, in pixels of a 1280 x 720 slide (reveal.js
scales the whole slide to the screen; its margin and a figure shrunk to fit take the 15 px down a little)."""
OVERLAP_TOLERANCE_PX = 2.0
"""Text boxes include the line's ascent and descent: boxes that touch by this much leave the glyphs apart."""


def for_slides(fig: Figure, *, size: tuple[float, float] = SLIDE_SIZE_IN, min_pt: float = MIN_FONT_PT) -> Figure:
    """Resize ``fig`` to a slide's figure area and scale every text so the smallest is ``min_pt``.

    All texts grow by the same factor, so titles stay larger than tick labels; the figure's
    constrained layout makes room for them when it is drawn.
    """
    fig.draw_without_rendering()  # creates the tick labels (of colour bars too), which are texts as well
    texts = [t for t in fig.findobj(Text) if t.get_text().strip()]
    if texts:
        factor = max(1.0, min_pt / min(t.get_fontsize() for t in texts))
        ticks: set[int] = set()
        for ax in fig.axes:  # tick labels are re-created at each draw from the axis' own size
            for axis in (ax.xaxis, ax.yaxis):
                labels = [t for t in axis.get_ticklabels() if t.get_text().strip()]
                ticks.update(id(t) for t in axis.get_ticklabels())
                if labels:
                    axis.set_tick_params(labelsize=labels[0].get_fontsize() * factor)
        for text in texts:
            if id(text) not in ticks:
                text.set_fontsize(text.get_fontsize() * factor)
    fig.set_size_inches(*size)
    return fig


def smallest_font_pt(fig: Figure) -> float:
    """The size of the smallest non-empty text of ``fig`` (points), tick labels included, as drawn."""
    return _smallest(_drawn_texts(fig)[0])


def slide_png(fig: Figure) -> bytes:
    """The figure as a PNG at :data:`SLIDE_DPI`, without time stamps (same bytes on every run)."""
    buffer = io.BytesIO()
    with plt.rc_context(STYLE):
        fig.savefig(buffer, format="png", dpi=SLIDE_DPI, metadata={"Software": "generator"})
    return buffer.getvalue()


def text_overlaps(fig: Figure, *, tolerance_px: float = OVERLAP_TOLERANCE_PX) -> list[tuple[str, str]]:
    """Pairs of visible texts of ``fig`` whose boxes overlap by more than ``tolerance_px`` in both
    directions, as drawn (a label run into its neighbour is unreadable whatever its size)."""
    return _overlapping(*_drawn_texts(fig), tolerance_px)


@dataclass(frozen=True)
class SlideCheck:
    """What :func:`check_slide_figure` measured on a drawn slide figure."""

    min_text_px: float
    overlaps: tuple[tuple[str, str], ...]


def check_slide_figure(fig: Figure) -> SlideCheck:
    """The smallest text of ``fig`` in pixels at :data:`SLIDE_DPI` and its overlapping texts (one draw).

    The layout of that draw is kept (the figure's layout engine is switched off), so that
    :func:`slide_png` renders exactly what was measured, without laying the figure out again.
    """
    fig.set_dpi(SLIDE_DPI)
    drawn, renderer = _drawn_texts(fig)
    fig.set_layout_engine("none")
    return SlideCheck(round(_smallest(drawn) * SLIDE_DPI / 72.0, 2),
                      tuple(_overlapping(drawn, renderer, OVERLAP_TOLERANCE_PX)))


def _drawn_texts(fig: Figure) -> tuple[list[Text], Any]:
    """Draw ``fig`` once on a raster canvas; the non-empty texts it really drew, and the renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    drawn: list[Text] = []
    draw = Text.draw

    def recording(self: Text, renderer: Any) -> None:  # only the texts the figure really draws
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)
        draw(self, renderer)

    canvas = FigureCanvasAgg(fig)
    Text.draw = recording  # type: ignore[method-assign]
    try:
        canvas.draw()
    finally:
        Text.draw = draw  # type: ignore[method-assign]
    return drawn, canvas.get_renderer()


def _smallest(texts: list[Text]) -> float:
    return min((t.get_fontsize() for t in texts), default=float("inf"))


def _overlapping(texts: list[Text], renderer: Any, tolerance_px: float) -> list[tuple[str, str]]:
    """Pairs of ``texts`` whose (rotated) boxes overlap by more than ``tolerance_px``."""
    boxes = [(t.get_text(), _corners(t, renderer)) for t in texts]
    return [(text_a, text_b) for i, (text_a, a) in enumerate(boxes) for text_b, b in boxes[i + 1:]
            if _overlap(a, b) > tolerance_px]


def _corners(text: Text, renderer: Any) -> np.ndarray:
    """The four corners (display pixels) of ``text``'s box, rotated as drawn.

    The box of a rotated text is centred where its axis-aligned extent is centred; its sides are
    the unrotated text's width and height.
    """
    extent = text.get_window_extent(renderer)
    angle = text.get_rotation()
    if angle % 180 == 0:
        return np.array([[extent.x0, extent.y0], [extent.x1, extent.y0], [extent.x1, extent.y1], [extent.x0, extent.y1]])
    text.set_rotation(0)
    flat = text.get_window_extent(renderer)
    text.set_rotation(angle)
    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [flat.width / 2, flat.height / 2]
    turn = np.deg2rad(angle)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return half @ rotation.T + [(extent.x0 + extent.x1) / 2, (extent.y0 + extent.y1) / 2]


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """How deep two convex boxes overlap (pixels): the smallest overlap of their projections on the
    boxes' edge normals, 0 when an axis separates them (separating axis theorem)."""
    depth = float("inf")
    for box in (a, b):
        for k in range(len(box)):
            edge = box[(k + 1) % len(box)] - box[k]
            normal = np.array([-edge[1], edge[0]]) / (np.hypot(*edge) or 1.0)
            pa, pb = a @ normal, b @ normal
            depth = min(depth, min(pa.max(), pb.max()) - max(pa.min(), pb.min()))
            if depth <= 0:
                return 0.0
    return depth
