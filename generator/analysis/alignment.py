"""Align faces (and their maps and masks) to one canonical landmark template.

Attribution maps of different faces can only be averaged pixel by pixel once
the faces are in register. Each image's five landmarks (left eye, right eye,
nose tip, mouth left, mouth right; ``(x, y)`` pixel centres, as in
:data:`generator.datasets.synthetic.LANDMARK_NAMES`) are mapped onto a fixed
template by the least-squares similarity transform of Umeyama 1991,
"Least-squares estimation of transformation parameters between two point
patterns" (IEEE TPAMI) - the alignment step of ArcFace-style face pipelines
(Deng et al. 2019). Images whose landmarks are missing, degenerate or fit the
template badly are reported in a table, never silently dropped.

Coordinates follow scikit-image and the synthetic faces: pixel ``(row y,
column x)`` has its centre at ``(x, y)``; the unit square ``[0, 1]^2`` of the
template spans the whole output image, so ``t`` maps to ``t * size - 0.5``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from skimage.transform import SimilarityTransform, warp

from generator.errors import ConfigError, DataError

__all__ = ["ARCFACE_LANDMARKS", "CANONICAL_LANDMARKS", "PHOTO_LANDMARKS", "alignment_transforms", "majority_mask",
           "template_pixels", "unwarp", "warp_to_template"]

#: Template ``(x, y)`` in the unit square: the mean landmark layout of the
#: synthetic faces (eyes level at 0.48, nose tip 0.585, mouth corners 0.66).
#: It frames the whole head with hair and background, as the input images do.
CANONICAL_LANDMARKS: np.ndarray = np.array(
    [[0.40, 0.48], [0.60, 0.48], [0.50, 0.585], [0.43, 0.66], [0.57, 0.66]], dtype=np.float64)
CANONICAL_LANDMARKS.setflags(write=False)

#: The tighter ArcFace template (112 x 112 px, Deng et al. 2019) in the unit
#: square, for real face crops framed like InsightFace's.
ARCFACE_LANDMARKS: np.ndarray = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64) / 112.0
ARCFACE_LANDMARKS.setflags(write=False)

#: The template for landmarks detected on photographs (:mod:`generator.datasets.landmarks`):
#: the eyes of :data:`CANONICAL_LANDMARKS`, the nose point at the base of the nose,
#: 0.75 interocular distances below the eye line (the median over the 102
#: demo photographs), and the mouth corners 1.15 distances below it (the ArcFace
#: template's proportion; unused when the mouth is not located).
PHOTO_LANDMARKS: np.ndarray = np.array(
    [[0.40, 0.48], [0.60, 0.48], [0.50, 0.63], [0.42, 0.71], [0.58, 0.71]], dtype=np.float64)
PHOTO_LANDMARKS.setflags(write=False)

REPORT_COLUMNS: tuple[str, ...] = ("image", "residual_px", "aligned", "reason")


def template_pixels(size: int, *, template: np.ndarray | None = None) -> np.ndarray:
    """The template's landmarks as ``(x, y)`` pixel centres of a ``size x size`` image.

    Parameters
    ----------
    size : int
        Side of the aligned images, at least 8.
    template : np.ndarray, optional
        ``(5, 2)`` points in the unit square; default :data:`CANONICAL_LANDMARKS`.

    Returns
    -------
    np.ndarray
        float64 ``(5, 2)``.
    """
    if not (isinstance(size, (int, np.integer)) and size >= 8):
        raise ConfigError(f"size = {size!r} is not accepted: use an integer >= 8 (pixels)")
    points = CANONICAL_LANDMARKS if template is None else np.asarray(template, dtype=np.float64)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise ConfigError(f"template must be a finite (5, 2) array of (x, y) in [0, 1], got shape {points.shape}")
    return points * size - 0.5


def _fit(source: np.ndarray, target: np.ndarray) -> tuple[SimilarityTransform | None, float, str]:
    """Fit one image's landmarks: ``(transform or None, RMS residual, reason)``.

    Both eyes and the nose are needed; missing (NaN) mouth corners are left out
    of the fit (dlib's 5-point model does not locate the mouth).
    """
    found = np.all(np.isfinite(source), axis=1)
    if not found[:3].all():
        return None, float("nan"), "missing landmarks (NaN)"
    source, target = source[found], target[found]
    if np.ptp(source, axis=0).max() < 1e-6:
        return None, float("nan"), "degenerate landmarks"
    transform = SimilarityTransform()
    if not transform.estimate(source, target) or not np.all(np.isfinite(transform.params)) \
            or transform.scale < 1e-6:
        return None, float("nan"), "degenerate landmarks"
    residual = float(np.sqrt(np.mean(np.sum((transform(source) - target) ** 2, axis=1))))
    return transform, residual, ""


def alignment_transforms(landmarks: np.ndarray, size: int, *, template: np.ndarray | None = None,
                         max_residual_px: float = 4.0) -> tuple[list[SimilarityTransform | None], pd.DataFrame]:
    """Similarity transforms (rotation, uniform scale, translation) onto the template.

    Parameters
    ----------
    landmarks : np.ndarray
        ``(N, 5, 2)`` landmark ``(x, y)`` pixel coordinates per image; NaN marks
        a missing landmark.
    size : int
        Side of the aligned images in pixels.
    template : np.ndarray, optional
        ``(5, 2)`` template in the unit square; default :data:`CANONICAL_LANDMARKS`.
    max_residual_px : float
        Largest accepted RMS distance, in aligned pixels, between the mapped
        landmarks and the template; a worse fit means the landmarks are
        implausible (a profile view, a wrong detection).

    Returns
    -------
    transforms : list
        Per image the transform mapping image ``(x, y)`` to aligned ``(x, y)``,
        or ``None`` where the image cannot be aligned.
    report : pandas.DataFrame
        One row per image: ``image`` (position), ``residual_px`` (RMS, NaN when
        no fit), ``aligned`` (bool), ``reason`` ("" when aligned, else e.g.
        ``"missing landmarks (NaN)"``, ``"degenerate landmarks"``,
        ``"residual 6.2 px > 4.0 px"``).

    Raises
    ------
    DataError
        If ``landmarks`` is not ``(N, 5, 2)``.
    ConfigError
        If ``size``, ``template`` or ``max_residual_px`` is not accepted.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (5, 2):
        raise DataError(f"landmarks must have shape (N, 5, 2) (x, y per landmark), got {points.shape}")
    if not float(max_residual_px) > 0:
        raise ConfigError(f"max_residual_px = {max_residual_px!r} is not accepted: use a positive number")
    target = template_pixels(size, template=template)
    transforms: list[SimilarityTransform | None] = []
    rows = []
    for k, source in enumerate(points):
        transform, residual, reason = _fit(source, target)
        if transform is not None and residual > max_residual_px:
            transform, reason = None, f"residual {residual:.1f} px > {max_residual_px:.1f} px"
        transforms.append(transform)
        rows.append((k, residual, transform is not None, reason))
    return transforms, pd.DataFrame(rows, columns=list(REPORT_COLUMNS))


def _check_stack(arrays: np.ndarray, transforms: Sequence, name: str) -> np.ndarray:
    array = np.asarray(arrays)
    if array.ndim not in (3, 4) or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{name} must be numeric (N, H, W) or (N, H, W, C), got shape {array.shape}")
    if len(transforms) != len(array):
        raise DataError(f"{len(transforms)} transforms for {len(array)} {name}: pass one (or None) per image")
    return array


def _warp_all(array: np.ndarray, maps: list, shape: tuple[int, int], order: int, cval: float) -> np.ndarray:
    """Warp each image with its inverse map (output -> input coordinates); NaN where None."""
    out = np.full((len(array), *shape, *array.shape[3:]), np.nan, dtype=np.float32)
    for k, inverse in enumerate(maps):
        if inverse is not None and not np.isnan(array[k]).all():  # an all-NaN input stays NaN
            out[k] = warp(array[k].astype(np.float64), inverse, output_shape=shape, order=order,
                          mode="constant", cval=cval, preserve_range=True)
    return out


def warp_to_template(arrays: np.ndarray, transforms: Sequence[SimilarityTransform | None], size: int, *,
                     order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Resample images, maps or masks into the template frame.

    Parameters
    ----------
    arrays : np.ndarray
        ``(N, H, W)`` or ``(N, H, W, C)``.
    transforms : sequence
        From :func:`alignment_transforms`, one per image (``None``: not aligned).
    size : int
        Side of the aligned output.
    order : int
        Spline order: 1 (bilinear) for images and maps, 0 (nearest) for region
        masks, so no region id is invented between two regions.
    cval : float
        Value outside the source image (0: background region for masks, no
        attribution for maps).

    Returns
    -------
    np.ndarray
        float32 ``(N, size, size[, C])``; an image without a transform is all NaN.
    """
    array = _check_stack(arrays, transforms, "arrays")
    inverses = [None if t is None else t.inverse for t in transforms]
    return _warp_all(array, inverses, (int(size), int(size)), order, cval)


def unwarp(aligned: np.ndarray, transforms: Sequence[SimilarityTransform | None], shape: tuple[int, int], *,
           order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Map aligned arrays back to each image's own frame (inverse of :func:`warp_to_template`).

    Parameters
    ----------
    aligned : np.ndarray
        ``(N, size, size[, C])`` in the template frame.
    transforms : sequence
        The transforms used to align, one per image (``None`` gives NaN).
    shape : tuple of int
        ``(H, W)`` of the original images.
    order, cval
        As in :func:`warp_to_template`.

    Returns
    -------
    np.ndarray
        float32 ``(N, H, W[, C])``. Pixels that left the template frame when
        aligned come back as ``cval``: a round trip is exact only inside it.
    """
    array = _check_stack(aligned, transforms, "aligned arrays")
    return _warp_all(array, list(transforms), (int(shape[0]), int(shape[1])), order, cval)


def majority_mask(aligned_masks: np.ndarray, n_regions: int) -> np.ndarray:
    """Per-pixel majority region over aligned masks: a face prototype for figures.

    Parameters
    ----------
    aligned_masks : np.ndarray
        ``(N, size, size)`` masks warped with ``order=0``; all-NaN images
        (not aligned) are ignored.
    n_regions : int
        Number of region ids.

    Returns
    -------
    np.ndarray
        uint8 ``(size, size)``; ties go to the lower region id, pixels no image
        covers to region 0.
    """
    masks = np.asarray(aligned_masks, dtype=np.float64)
    if masks.ndim != 3:
        raise DataError(f"aligned_masks must be (N, H, W), got shape {masks.shape}")
    votes = np.stack([(masks == k).sum(axis=0) for k in range(int(n_regions))])
    return votes.argmax(axis=0).astype(np.uint8)
