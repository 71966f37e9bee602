"""High-impact patches (MAI-BIAS FaceX): the square windows where a region draws most attribution.

For every image and face region, the ``patch x patch`` window with the largest
sum of in-region CAM values is found; the windows with the largest sums over
all images (or per group) are kept and cropped for a gallery, so a reader sees
*what* in a region the model looked at (a mark on the cheek, an eye shape).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from generator.errors import ConfigError, DataError
from generator.evaluation.localisation import _as_masks

__all__ = ["PATCH_COLUMNS", "crop_patches", "high_impact_patches"]

#: Columns :func:`high_impact_patches` adds after the meta columns.
PATCH_COLUMNS: tuple[str, ...] = ("image_index", "region", "x0", "y0", "size", "score")


def _window_sums(values: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Sums over every ``size x size`` window at the strided positions: ``(N, ny, nx)``."""
    n, h, w = values.shape
    integral = np.zeros((n, h + 1, w + 1))
    integral[:, 1:, 1:] = values.cumsum(axis=1).cumsum(axis=2)
    ys, xs = np.arange(0, h - size + 1, stride), np.arange(0, w - size + 1, stride)
    y1, x1 = ys + size, xs + size
    return (integral[:, y1][:, :, x1] - integral[:, ys][:, :, x1]
            - integral[:, y1][:, :, xs] + integral[:, ys][:, :, xs])


def _best_windows(cams: np.ndarray, labels: np.ndarray, region: int, size: int,
                  stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per image: best window of ``region`` (score, x0, y0) and whether the region is present."""
    sums = _window_sums(np.where(labels == region, cams, 0.0), size, stride)
    flat = sums.reshape(len(sums), -1)
    best = flat.argmax(axis=1)  # first maximum in raster order
    row, col = np.divmod(best, sums.shape[2])
    present = (labels == region).any(axis=(1, 2))
    return flat[np.arange(len(flat)), best], col * stride, row * stride, present


def _check_patch_args(patch: int, top: int, stride: int | None, shape: tuple[int, int]) -> tuple[int, int]:
    """The window side (``min(patch, H, W)``) and stride after validation."""
    for name, value in (("patch", patch), ("top", top)):
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ConfigError(f"{name} = {value!r} is not accepted: use an integer >= 1")
    size = int(min(patch, *shape))
    step = 1 if stride is None else stride
    if not (isinstance(step, (int, np.integer)) and 1 <= step <= size):
        raise ConfigError(f"stride = {stride!r} is not accepted: use an integer from 1 to the patch side {size}")
    return size, int(step)


def high_impact_patches(cams: np.ndarray, masks: np.ndarray, region_names: Sequence[str], meta: pd.DataFrame, *,
                        patch: int = 16, top: int = 20, by: Sequence[str] | None = None,
                        stride: int | None = None, absolute: bool = False) -> pd.DataFrame:
    """FaceX high-impact patches: per image and region the window with the largest in-region CAM sum.

    The window slides with ``stride`` pixels (default 1: every position, an
    exhaustive search, cheap with an integral image; ``patch // 4`` gives a
    coarser search). Only in-region pixels count towards a window's sum, as
    in FaceX. An image without the region, or whose best window has no
    positive CAM mass, yields no patch.

    Parameters
    ----------
    cams : np.ndarray
        ``(N, H, W)`` CAMs resized to the images (non-negative).
    masks : np.ndarray
        ``(N, H, W)`` integer region ids.
    region_names : sequence of str
        Name of each region id.
    meta : pandas.DataFrame
        One row per image (e.g. ``image_id, group, model``).
    patch : int
        Window side in pixels (FaceX: 16); ``min(patch, H, W)`` for small images.
    top : int
        Patches kept: the ``top`` highest sums overall, or per group of ``by``.
    by : sequence of str, optional
        Meta columns to keep the top patches within.
    stride : int, optional
        Step between window positions (default 1).
    absolute : bool
        Use ``|cam|`` (for signed maps).

    Returns
    -------
    pandas.DataFrame
        Meta columns then ``image_index`` (row in ``cams``), ``region``,
        ``x0``, ``y0`` (top-left corner, pixels), ``size``, ``score`` (the
        window's in-region CAM sum), sorted by descending score (within ``by``).
    """
    array = np.asarray(cams, dtype=np.float64)
    if array.ndim != 3 or not np.all(np.isfinite(array)):
        raise DataError(f"cams must be a finite (N, H, W) array, got shape {array.shape}")
    array = np.abs(array) if absolute else array
    labels = _as_masks(masks, array, len(region_names))
    if len(meta) != len(array) or any(c in meta.columns for c in PATCH_COLUMNS):
        raise DataError(f"meta must have one row per CAM ({len(array)}) and none of the columns {PATCH_COLUMNS}")
    size, step = _check_patch_args(patch, top, stride, array.shape[1:])
    missing = [c for c in (by or ()) if c not in meta.columns]
    if missing:
        raise DataError(f"by column(s) {missing} not in meta; it has {list(meta.columns)}")
    parts = []
    for region, name in enumerate(region_names):
        score, x0, y0, present = _best_windows(array, labels, region, size, step)
        keep = present & (score > 0)
        rows = meta.reset_index(drop=True).loc[keep].copy()
        rows["image_index"], rows["region"], rows["x0"], rows["y0"] = (
            np.flatnonzero(keep), name, x0[keep], y0[keep])
        rows["size"], rows["score"] = size, score[keep]
        parts.append(rows)
    table = pd.concat(parts, ignore_index=True).sort_values(["score", "image_index"], ascending=[False, True],
                                                            kind="stable")
    chosen = table.groupby(list(by), sort=True, dropna=False).head(top) if by else table.head(top)
    return chosen.reset_index(drop=True)


def crop_patches(images: np.ndarray, table: pd.DataFrame) -> list[np.ndarray]:
    """Crop the patches of :func:`high_impact_patches` from the images.

    Parameters
    ----------
    images : np.ndarray
        ``(N, H, W)`` or ``(N, H, W, C)``, row-aligned with the CAMs.
    table : pandas.DataFrame
        With columns ``image_index, x0, y0, size``.

    Returns
    -------
    list of np.ndarray
        One ``(size, size[, C])`` crop per row, in the table's order.
    """
    missing = [c for c in ("image_index", "x0", "y0", "size") if c not in table.columns]
    if missing:
        raise DataError(f"patch table lacks column(s) {missing}; pass the output of high_impact_patches")
    array = np.asarray(images)
    return [array[int(k), int(y):int(y) + int(s), int(x):int(x) + int(s)].copy()
            for k, x, y, s in table[["image_index", "x0", "y0", "size"]].itertuples(index=False)]
