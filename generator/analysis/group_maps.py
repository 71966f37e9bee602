"""Per-group mean attribution maps on aligned faces, and their differences.

Raw attribution maps differ in scale from image to image (a confident
prediction has larger gradients), so a group mean of raw maps is dominated by
a few images. Each map is first normalised on its own (Ancona et al. 2018,
"Towards better understanding of gradient-based attribution methods", ICLR,
compare maps after such a normalisation), then averaged per group.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np

from generator.errors import ConfigError, DataError

__all__ = ["difference_map", "group_means", "normalise_maps", "valid_images"]

_METHODS: tuple[str, ...] = ("sum", "max", "percentile")


def _as_stack(maps: np.ndarray) -> np.ndarray:
    array = np.asarray(maps)
    if array.ndim != 3 or array.shape[0] == 0 or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"maps must be a numeric (N, H, W) array with N >= 1, got shape {array.shape}")
    return array.astype(np.float64)


def valid_images(maps: np.ndarray) -> np.ndarray:
    """Boolean ``(N,)``: images with at least one finite pixel (not a NaN placeholder)."""
    return np.isfinite(_as_stack(maps)).any(axis=(1, 2))


def _scale(mass: np.ndarray, method: str, percentile: float) -> np.ndarray:
    """Per-image divisor ``(N, 1, 1)`` of ``mass = |map|``, NaN pixels ignored."""
    flat = mass.reshape(len(mass), -1)
    valid = np.isfinite(flat).any(axis=1)
    safe = np.where(valid[:, None], flat, 0.0)
    if method == "sum":
        scale = np.nansum(safe, axis=1)
    elif method == "max":
        scale = np.nanmax(safe, axis=1)
    else:
        scale = np.nanpercentile(safe, percentile, axis=1)
    return np.where(valid, scale, np.nan)[:, None, None]


def normalise_maps(maps: np.ndarray, *, absolute: bool = True,
                   method: Literal["sum", "max", "percentile"] = "sum", percentile: float = 99.0) -> np.ndarray:
    """Normalise each map on its own so that maps of different images are comparable.

    Parameters
    ----------
    maps : np.ndarray
        ``(N, H, W)``; NaN pixels (outside an aligned frame) and all-NaN
        images (not aligned) are allowed and stay NaN.
    absolute : bool
        Normalise ``|map|`` (default); otherwise keep the sign and divide by
        the same scale computed on ``|map|``.
    method : {"sum", "max", "percentile"}
        ``"sum"``: divide by the total ``|map|`` mass, so each map has mass 1
        and a pixel's value is its share of the attribution; ``"max"``: divide
        by the largest ``|map|``; ``"percentile"``: divide by the
        ``percentile``-th percentile of ``|map|`` and clip to ``[-1, 1]``
        (the visualisation rule of Smilkov et al. 2017, "SmoothGrad").
    percentile : float
        In ``(0, 100]``, for ``method="percentile"``.

    Returns
    -------
    np.ndarray
        float64 ``(N, H, W)``. A map with zero scale (all zero) becomes all
        NaN: it carries no attribution to compare; callers report it (see
        :func:`valid_images`).
    """
    if method not in _METHODS:
        raise ConfigError(f"method = {method!r} is not accepted: use one of {list(_METHODS)}")
    if not 0.0 < float(percentile) <= 100.0:
        raise ConfigError(f"percentile = {percentile!r} is not accepted: use a number in (0, 100]")
    array = _as_stack(maps)
    mass = np.abs(array)
    scale = _scale(mass, method, percentile)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(scale > 0, (mass if absolute else array) / np.where(scale > 0, scale, 1.0), np.nan)
    return np.clip(out, -1.0, 1.0) if method == "percentile" else out


def _labels(groups: Sequence[str] | np.ndarray, n: int) -> np.ndarray:
    labels = np.asarray(groups).astype(str)
    if labels.shape != (n,):
        raise DataError(f"groups must give one label per map ({n}), got shape {labels.shape}")
    return labels


def group_means(maps: np.ndarray, groups: Sequence[str] | np.ndarray) -> dict[str, tuple[np.ndarray, int]]:
    """Mean map per group, ignoring images that are all NaN.

    Parameters
    ----------
    maps : np.ndarray
        ``(N, H, W)``, typically aligned and normalised.
    groups : sequence of str
        Group label of each map.

    Returns
    -------
    dict
        Group label (sorted) -> ``(mean map (H, W), n)`` where ``n`` counts
        the images the mean rests on. A pixel that is NaN in some images is
        averaged over the others; in all of them it stays NaN. A group with
        no valid image gets an all-NaN map and ``n = 0``.
    """
    array = _as_stack(maps)
    labels = _labels(groups, len(array))
    valid = valid_images(array)
    out: dict[str, tuple[np.ndarray, int]] = {}
    for group in sorted(set(labels)):
        chosen = array[(labels == group) & valid]
        if len(chosen) == 0:
            out[group] = (np.full(array.shape[1:], np.nan), 0)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: NaN is the answer
            out[group] = (np.nanmean(chosen, axis=0), len(chosen))
    return out


def difference_map(maps: np.ndarray, groups: Sequence[str] | np.ndarray, a: str, b: str) -> np.ndarray:
    """Mean map of group ``a`` minus mean map of group ``b``.

    Raises
    ------
    DataError
        If ``a`` or ``b`` has no valid image; the message lists the groups present.
    """
    means = group_means(maps, groups)
    for name in (a, b):
        if name not in means or means[name][1] == 0:
            raise DataError(f"group {name!r} has no valid map; groups with maps: "
                            f"{[g for g, (_, n) in means.items() if n]}")
    return means[a][0] - means[b][0]
