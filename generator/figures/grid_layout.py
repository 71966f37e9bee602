"""A layout engine for grids of square image panels (the attribution galleries).

Matplotlib's constrained layout measures the decorations of every axes, several times per
draw: for a gallery of a hundred panels that is most of the time its export takes (about
12 s of 19 s for 12 rows x 11 columns). A gallery's panels are all alike, so this engine
measures only what sets the margins (the row labels of the first column, the column titles of
the first row, the colour bars) once per draw and places every panel from those numbers.
Like constrained layout it runs at draw time, so a gallery resized for a slide, with its text
scaled (:func:`generator.figures.slides.for_slides`), is laid out again for its new size.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.layout_engine import LayoutEngine
from matplotlib.text import Text

__all__ = ["GridLayout"]

PAD_IN = 0.04  # between the figure's edge and what it holds
GAP_FRACTION = 0.08  # between neighbouring panels, as a share of a panel's side
MIN_GAP_IN = 0.04
COLORBAR_WIDTH_IN = 0.09
COLORBAR_HEIGHT = 0.22  # share of the panel block's height
COLORBAR_GAP_IN = 0.12  # between the panels and the first colour bar, and between colour bars
TITLE_PAD_PT = 6.0  # Matplotlib's default axes.titlepad, which the project style keeps


class GridLayout(LayoutEngine):
    """Place ``panels`` (rows x columns of axes) as a centred block of equal square cells.

    The left margin holds the widest of ``row_labels`` (texts ``label_pad_pt`` left of the
    first column's panels), the top margin the tallest of ``column_titles`` (the titles of the
    first row's panels), the right margin the ``colorbars`` (their axes, side by side at
    mid-height) or a rotated last title that runs past the block. When the column titles are
    level, columns are spaced so that the widest title fits above its panel.
    """

    _adjust_compatible = False
    _colorbar_gridspec = False

    def __init__(self, panels: np.ndarray, colorbars: Sequence[Axes] = (), row_labels: Sequence[Text] = (),
                 column_titles: Sequence[Text] = (), label_pad_pt: float = 4.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.panels = np.asarray(panels, dtype=object)
        self.colorbars = list(colorbars)
        self.row_labels = list(row_labels)
        self.column_titles = list(column_titles)
        self.label_pad_pt = label_pad_pt

    def execute(self, fig: Figure) -> None:
        renderer = fig._get_renderer()
        dpi = fig.dpi
        width, height = fig.get_size_inches()
        rows, cols = self.panels.shape

        def inches(box) -> tuple[float, float]:
            return box.width / dpi, box.height / dpi

        labels = [inches(text.get_window_extent(renderer)) for text in self.row_labels if text.get_text()]
        titles = [(inches(text.get_window_extent(renderer)), text.get_rotation())
                  for text in self.column_titles if text.get_text()]
        label_w = max((w for w, _ in labels), default=0.0) + self.label_pad_pt / 72
        title_h = max((h for (_, h), _ in titles), default=0.0) + TITLE_PAD_PT / 72
        title_w = max((w for (w, _), _ in titles), default=0.0)
        level = all(rotation % 180 == 0 for _, rotation in titles)
        decorations = [self._decoration(ax, renderer, dpi) for ax in self.colorbars]
        bars_w = sum(COLORBAR_GAP_IN + COLORBAR_WIDTH_IN + d for d in decorations)

        left, top = PAD_IN + label_w, PAD_IN + title_h
        right, bottom = PAD_IN + bars_w, PAD_IN
        side = pitch_x = 0.0
        for _ in range(2):  # the second pass makes room for a rotated last title that runs past its panel
            avail_w, avail_h = max(width - left - right, 0.1), max(height - top - bottom, 0.1)
            side = min(avail_w / cols, avail_h / rows) / (1 + GAP_FRACTION)
            pitch_x = side * (1 + GAP_FRACTION)
            if level and title_w + MIN_GAP_IN > pitch_x:  # level titles: a column is at least a title wide
                pitch_x = min(title_w + MIN_GAP_IN, avail_w / cols)
                side = min(side, pitch_x - MIN_GAP_IN, avail_h / rows / (1 + GAP_FRACTION))
            overflow = 0.0 if level else max(0.0, title_w - side)
            right = PAD_IN + max(bars_w, overflow)
        pitch_y = side + max(MIN_GAP_IN, GAP_FRACTION * side)
        block_w, block_h = pitch_x * (cols - 1) + side, pitch_y * (rows - 1) + side
        x0 = left + (width - left - right - block_w) / 2
        y_top = height - top - (height - top - bottom - block_h) / 2
        for r in range(rows):
            for c in range(cols):
                x, y = x0 + c * pitch_x, y_top - r * pitch_y - side
                self.panels[r, c].set_position((x / width, y / height, side / width, side / height))
        bar_h = max(COLORBAR_HEIGHT * block_h, min(1.0, block_h))
        x = x0 + block_w
        for ax, decoration in zip(self.colorbars, decorations):
            x += COLORBAR_GAP_IN
            ax.set_position((x / width, (y_top - block_h / 2 - bar_h / 2) / height,
                             COLORBAR_WIDTH_IN / width, bar_h / height))
            x += COLORBAR_WIDTH_IN + decoration

    @staticmethod
    def _decoration(ax: Axes, renderer, dpi: float) -> float:
        """Width (inches) of a colour bar's tick labels and label, right of its axes."""
        tight = ax.get_tightbbox(renderer)
        box = ax.get_window_extent(renderer)
        return max(0.0, (tight.x1 - box.x1) / dpi) if tight is not None else 0.0
