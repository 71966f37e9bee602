"""Where attribution falls: shares of mass per face region, pointing game.

Masks are ``(N, H, W)`` integer region-index maps whose values index a tuple
of region names (for the synthetic faces, :data:`generator.datasets.synthetic.REGIONS`).
Maps and masks must have the same height and width; resize maps first.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.ndimage import distance_transform_edt

from generator.errors import ConfigError, DataError
from generator.evaluation.complexity import as_maps

__all__ = ["mass_on", "pointing_game", "region_shares"]


def _as_masks(masks: np.ndarray, maps: np.ndarray, n_regions: int | None = None) -> np.ndarray:
    """Check integer region masks that match ``maps`` and return them as int64."""
    array = np.asarray(masks)
    if array.shape != maps.shape or not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"masks must be integer region indices of the maps' shape {maps.shape}, "
                        f"got shape {array.shape} and dtype {array.dtype}")
    if array.min() < 0 or (n_regions is not None and array.max() >= n_regions):
        raise DataError(f"mask values must index the {n_regions} region names, found values "
                        f"{array.min()}..{array.max()}")
    return array.astype(np.int64)


def _mass(maps: np.ndarray, absolute: bool) -> np.ndarray:
    """Attribution mass per pixel: ``|map|``, or the positive part of the map."""
    maps = as_maps(maps)
    return np.abs(maps) if absolute else np.clip(maps, 0.0, None)


def region_shares(maps: np.ndarray, masks: np.ndarray, region_names: Sequence[str], *,
                  absolute: bool = True) -> pd.DataFrame:
    """Share of each image's attribution mass that falls on each region.

    The region-level reading of a map used by FaceX (MAI-BIAS) and by the
    "energy-based pointing game" of Wang et al. 2020, "Score-CAM" (CVPR
    workshops), here for every region rather than one box.

    Parameters
    ----------
    maps : np.ndarray
        Attribution maps ``(N, H, W)``.
    masks : np.ndarray
        Integer region indices ``(N, H, W)``, values in ``range(len(region_names))``.
    region_names : sequence of str
        Name of each region index (e.g. ``REGIONS``).
    absolute : bool
        Mass is ``|map|`` (default); otherwise the positive part of the map
        (evidence for the target only).

    Returns
    -------
    pandas.DataFrame
        One row per image: column ``image`` then one column per region name
        with its share in ``[0, 1]``; each row sums to 1. A region absent from
        an image has share 0. An image whose map has no mass (all zero, or no
        positive value with ``absolute=False``) gets a row of NaN: the shares
        are undefined.

    Raises
    ------
    DataError
        If the masks do not match the maps or index beyond ``region_names``.
    """
    mass = _mass(maps, absolute)
    names = list(region_names)
    labels = _as_masks(masks, mass, len(names)).reshape(len(mass), -1)
    offsets = labels + len(names) * np.arange(len(mass))[:, None]
    per_region = np.bincount(offsets.ravel(), weights=mass.reshape(-1),
                             minlength=len(names) * len(mass)).reshape(len(mass), len(names))
    total = per_region.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(total > 0, per_region / np.where(total > 0, total, 1.0), np.nan)
    table = pd.DataFrame(shares, columns=names)
    table.insert(0, "image", np.arange(len(mass)))
    return table


def _target_mask(masks: np.ndarray, region_ids: Sequence[int]) -> np.ndarray:
    """Boolean ``(N, H, W)``: pixels whose region is one of ``region_ids``."""
    ids = np.asarray(list(region_ids))
    if ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise ConfigError(f"region ids must be a non-empty sequence of integers, got {list(region_ids)!r}")
    return np.isin(masks, ids)


def mass_on(maps: np.ndarray, masks: np.ndarray, region_ids: Sequence[int], *,
            absolute: bool = True) -> np.ndarray:
    """Share of each image's attribution mass on the union of ``region_ids``.

    Parameters
    ----------
    maps : np.ndarray
        Attribution maps ``(N, H, W)``.
    masks : np.ndarray
        Integer region indices ``(N, H, W)``.
    region_ids : sequence of int
        Region indices whose union is scored (e.g. ``[REGIONS.index("mouth")]``).
    absolute : bool
        Mass is ``|map|`` (default) or the positive part of the map.

    Returns
    -------
    np.ndarray
        float64 ``(N,)`` in ``[0, 1]``; NaN for a map without mass.
    """
    mass = _mass(maps, absolute)
    inside = _target_mask(_as_masks(masks, mass), region_ids)
    total = mass.sum(axis=(1, 2))
    on = np.where(inside, mass, 0.0).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, on / np.where(total > 0, total, 1.0), np.nan)


def pointing_game(maps: np.ndarray, masks: np.ndarray, target_regions: Sequence[int], *,
                  tolerance_px: float = 1) -> np.ndarray:
    """Pointing game of Zhang et al. 2018, "Top-down Neural Attention by Excitation
    Backprop" (IJCV): does the map's maximum fall on the target?

    A hit when the pixel of maximal (signed) attribution lies within
    ``tolerance_px`` (Euclidean distance between pixel centres) of a pixel of
    one of ``target_regions``. Of several maximal pixels the first in raster
    order counts.

    Parameters
    ----------
    maps : np.ndarray
        Attribution maps ``(N, H, W)``.
    masks : np.ndarray
        Integer region indices ``(N, H, W)``.
    target_regions : sequence of int
        Region indices that count as the target (their union), for every image.
    tolerance_px : float
        Allowed distance in pixels (Zhang et al. use 15 px at 224 px); 0 demands
        the maximum on the region itself.

    Returns
    -------
    np.ndarray
        float64 ``(N,)``: 1.0 hit, 0.0 miss, so its mean is the hit rate; NaN
        where the game is undefined: a constant map (no maximum) or an image
        without any target-region pixel.
    """
    maps = as_maps(maps)
    inside = _target_mask(_as_masks(masks, maps), target_regions)
    if not float(tolerance_px) >= 0.0:
        raise ConfigError(f"tolerance_px = {tolerance_px!r} is not accepted: use a non-negative number")
    flat = maps.reshape(len(maps), -1)
    peak = np.argmax(flat, axis=1)
    rows, cols = np.divmod(peak, maps.shape[2])
    hits = np.array([region.any() and distance_transform_edt(~region)[r, c] <= tolerance_px
                     for region, r, c in zip(inside, rows, cols, strict=True)], dtype=np.float64)
    defined = inside.any(axis=(1, 2)) & (flat.max(axis=1) > flat.min(axis=1))
    return np.where(defined, hits, np.nan)
