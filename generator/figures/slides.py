"""Figures redrawn for the lecture room: 16:9 panels, text no smaller than a stated size.

The site's figures are made for reading up close (a gallery of 8 faces x 11 methods, method
names at 7 pt). A slide is read from the back row at 1280 x 720, so the deck gets its own
versions of the crowded figures: fewer panels per slide (a gallery split into four methods by
four faces) and every text scaled so that the smallest is :data:`MIN_FONT_PT` at
:data:`SLIDE_DPI`, i.e. at least :data:`MIN_FONT_PX` pixels where the slide shows the figure at
its natural size (1280 x 500 px, the figure area of a 1280 x 720 slide).
"""
from __future__ import annotations

import io

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.text import Text

from generator.figures.export import STYLE

__all__ = ["MIN_FONT_PT", "MIN_FONT_PX", "SLIDE_DPI", "SLIDE_SIZE_IN", "for_slides", "slide_png", "smallest_font_pt"]

SLIDE_SIZE_IN = (12.8, 5.0)
SLIDE_DPI = 100
MIN_FONT_PT = 11.0
MIN_FONT_PX = MIN_FONT_PT * SLIDE_DPI / 72.0  # about 15 px


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
    fig.draw_without_rendering()
    return min(t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip())


def slide_png(fig: Figure) -> bytes:
    """The figure as a PNG at :data:`SLIDE_DPI`, without time stamps (same bytes on every run)."""
    buffer = io.BytesIO()
    with plt.rc_context(STYLE):
        fig.savefig(buffer, format="png", dpi=SLIDE_DPI, metadata={"Software": "generator"})
    return buffer.getvalue()
