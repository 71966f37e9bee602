"""Figures that show the faces: sample grids by group, region masks, group shares."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from generator.figures.export import new_figure
from generator.ordering import natural_key

__all__ = ["REGION_COLOURS", "group_shares", "mask_examples", "sample_grid"]

# One fixed, distinguishable colour per region (Okabe-Ito plus greys).
REGION_COLOURS = ("#FFFFFF", "#6B4226", "#F0C8A0", "#0072B2", "#000000",
                  "#E69F00", "#D55E00", "#CC79A7", "#009E73", "#56B4E9", "#999999")


def sample_grid(images: np.ndarray, table: pd.DataFrame, *, by: Sequence[str],
                per_group: int, seed: int) -> Figure:
    """A grid with one row per group and ``per_group`` random faces in each row.

    Each face is titled with its task label and whether the shortcut cue is drawn.
    """
    rng = np.random.default_rng(seed)
    groups = sorted(table.groupby(list(by), sort=True).indices.items(),
                    key=lambda item: tuple(natural_key(v) for v in (item[0] if isinstance(item[0], tuple) else (item[0],))))
    fig, axes = new_figure(0.75 * per_group + 1.2, 0.85 * len(groups) + 0.3,
                           nrows=len(groups), ncols=per_group, squeeze=False)
    for row, (key, index) in enumerate(groups):
        chosen = np.sort(rng.choice(index, size=min(per_group, len(index)), replace=False))
        for col in range(per_group):
            ax = axes[row, col]
            ax.set_axis_off()
            if col < len(chosen):
                _face_tile(ax, images[chosen[col]], table.iloc[chosen[col]])
        name = " / ".join(key) if isinstance(key, tuple) else str(key)
        axes[row, 0].text(-0.1, 0.5, name, transform=axes[row, 0].transAxes,
                          ha="right", va="center", fontsize=7)
    return fig


def _face_tile(ax, image: np.ndarray, row: pd.Series) -> None:
    ax.imshow(image, interpolation="nearest")
    cue = ", cue" if bool(row.get("cue", False)) else ""
    ax.set_title(f"{row['label_name']}{cue}", fontsize=6, pad=2)


def mask_examples(images: np.ndarray, masks: np.ndarray, landmarks: np.ndarray,
                  regions: Sequence[str]) -> Figure:
    """Faces (top row) above their region masks with landmarks (bottom row)."""
    n = len(images)
    fig, axes = new_figure(1.3 * n + 1.6, 2.9, nrows=2, ncols=n, squeeze=False)
    cmap = ListedColormap(REGION_COLOURS[: len(regions)])
    for i in range(n):
        axes[0, i].imshow(images[i], interpolation="nearest")
        axes[1, i].imshow(masks[i], cmap=cmap, vmin=-0.5, vmax=len(regions) - 0.5, interpolation="nearest")
        axes[1, i].scatter(landmarks[i, :, 0], landmarks[i, :, 1], s=6, c="#FF00FF", marker="x", linewidths=0.8)
        axes[0, i].set_axis_off()
        axes[1, i].set_axis_off()
    handles = [Patch(facecolor=REGION_COLOURS[k], edgecolor="#444444", label=r) for k, r in enumerate(regions)]
    handles.append(plt_marker_handle())
    fig.legend(handles=handles, loc="outside right center", frameon=False)
    return fig


def plt_marker_handle():
    """Legend entry for the landmark crosses."""
    from matplotlib.lines import Line2D

    return Line2D([], [], color="#FF00FF", marker="x", linestyle="none", label="landmarks")


def group_shares(counts: pd.DataFrame, *, group: str, split_order: Sequence[str]) -> Figure:
    """Share of images per group within each split (stacked horizontal bars).

    ``counts`` has columns ``split``, ``group`` and ``n``.
    """
    pivot = counts.pivot_table(index="split", columns=group, values="n", aggfunc="sum", fill_value=0)
    pivot = pivot.reindex([s for s in split_order if s in pivot.index])
    shares = pivot.div(pivot.sum(axis=1), axis=0)
    fig, ax = new_figure(6.0, 0.45 * len(shares) + 1.0)
    left = np.zeros(len(shares))
    for column in shares.columns:
        ax.barh(shares.index, shares[column], left=left, label=str(column), edgecolor="white", linewidth=0.5)
        left += shares[column].to_numpy()
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of images in the split")
    fig.legend(*ax.get_legend_handles_labels(), title=group, loc="outside right center", frameon=False)
    return fig
