"""Attribution per face region: shares of mass, FaceX region scores, landmark regions.

Two readings of a map by region:

* the **share** of an image's attribution mass on each region
  (:func:`generator.evaluation.localisation.region_shares`), summarised per
  group with bootstrap intervals;
* the **FaceX region score** of MAI-BIAS "Facial Explanations" (FaceX): per
  image the threshold is the mean of the non-zero CAM pixels, a region's
  score is the fraction of its pixels above that threshold, averaged over the
  images that contain the region.

Unlike FaceX, every group of a categorical attribute (not only a binary one)
is scored, the number of images behind each score is reported, and figures
draw all groups on one colour scale (:mod:`generator.figures.analysis`).

Regions come from exact masks on the synthetic faces; for real photographs
:func:`landmark_regions` places approximate regions from five landmarks.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from generator.errors import DataError
from generator.evaluation.localisation import _as_masks, region_shares
from generator.evaluation.summary import summarise

__all__ = ["LANDMARK_REGIONS", "facex_image_scores", "facex_region_scores", "landmark_regions",
           "region_share_summary", "region_share_table"]

#: Region names of :func:`landmark_regions`, in mask-id order.
LANDMARK_REGIONS: tuple[str, ...] = ("background", "forehead", "cheeks", "nose", "mouth", "brows", "eyes", "chin")

#: Where the mouth is placed when its corners are not located (dlib's 5-point model):
#: its centre this many interocular distances below the nose point, its half width.
MOUTH_BELOW_NOSE, MOUTH_HALF_WIDTH = 0.4, 0.4


def _check_meta(meta: pd.DataFrame, n: int, reserved: Sequence[str]) -> pd.DataFrame:
    if not isinstance(meta, pd.DataFrame) or len(meta) != n:
        raise DataError(f"meta must be a DataFrame with one row per map ({n}), got "
                        f"{len(meta) if isinstance(meta, pd.DataFrame) else type(meta).__name__} rows")
    clash = [c for c in reserved if c in meta.columns]
    if clash:
        raise DataError(f"meta must not have the column(s) {clash}: they are added by the analysis")
    return meta.reset_index(drop=True)


def _long(meta: pd.DataFrame, wide: np.ndarray, names: Sequence[str], value: str) -> pd.DataFrame:
    """Image x region long table: meta repeated per region, then ``region`` and ``value``."""
    n, r = wide.shape
    out = meta.loc[np.repeat(np.arange(n), r)].reset_index(drop=True)
    out["region"] = np.tile(np.asarray(list(names), dtype=object), n)
    out[value] = wide.reshape(-1)
    return out


def region_share_table(maps: np.ndarray, masks: np.ndarray, region_names: Sequence[str], meta: pd.DataFrame, *,
                       absolute: bool = True) -> pd.DataFrame:
    """Share of each image's attribution on each region, in long format.

    Parameters
    ----------
    maps : np.ndarray
        ``(N, H, W)`` attribution maps; an image with a non-finite pixel (e.g.
        a NaN placeholder for a face that could not be aligned) gets NaN shares.
    masks : np.ndarray
        ``(N, H, W)`` integer region ids indexing ``region_names``.
    region_names : sequence of str
        Name of each region id.
    meta : pandas.DataFrame
        One row per image (e.g. ``image_id, group, model, method``).
    absolute : bool
        Mass is ``|map|`` (default) or the positive part.

    Returns
    -------
    pandas.DataFrame
        One row per image x region: the meta columns, ``region``, ``share``.
        Shares of an image sum to 1 (NaN for a map without mass).
    """
    maps = np.asarray(maps, dtype=np.float64)
    meta = _check_meta(meta, len(maps), ("region", "share"))
    finite = np.isfinite(maps).all(axis=(1, 2)) if maps.ndim == 3 else np.zeros(0, bool)
    shares = np.full((len(maps), len(region_names)), np.nan)
    if finite.any():
        table = region_shares(maps[finite], np.asarray(masks)[finite], region_names, absolute=absolute)
        shares[finite] = table[list(region_names)].to_numpy()
    return _long(meta, shares, region_names, "share")


def region_share_summary(table: pd.DataFrame, *, by: Sequence[str], n_boot: int = 1000,
                         seed: int = 0) -> pd.DataFrame:
    """Mean share per group and region with a percentile-bootstrap 95 % interval.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`region_share_table`.
    by : sequence of str
        Grouping columns (e.g. ``["model", "method", "skin_tone"]``).
    n_boot, seed
        Bootstrap resamples and their seed (:func:`generator.evaluation.summary.summarise`).

    Returns
    -------
    pandas.DataFrame
        Columns ``*by, region, n, share, ci_low, ci_high``; ``n`` counts
        images with a defined share.
    """
    summary = summarise(table, by=[*by, "region"], value_cols=["share"], n_boot=n_boot, seed=seed)
    return summary.drop(columns="metric").rename(columns={"mean": "share"})


def _image_scores(cams: np.ndarray, labels: np.ndarray, n_regions: int) -> np.ndarray:
    """``(N, R)`` FaceX scores: fraction of each region's pixels above the image's threshold."""
    flat = cams.reshape(len(cams), -1)
    nonzero = flat != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        threshold = np.where(nonzero, flat, 0.0).sum(axis=1) / nonzero.sum(axis=1)
    above = flat > threshold[:, None]
    offsets = labels.reshape(len(cams), -1) + n_regions * np.arange(len(cams))[:, None]
    size = n_regions * len(cams)
    pixels = np.bincount(offsets.ravel(), minlength=size).reshape(len(cams), n_regions)
    hits = np.bincount(offsets.ravel(), weights=above.ravel(), minlength=size).reshape(len(cams), n_regions)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = hits / pixels
    return np.where((pixels > 0) & np.isfinite(threshold)[:, None], scores, np.nan)


def facex_image_scores(cams: np.ndarray, masks: np.ndarray, region_names: Sequence[str], meta: pd.DataFrame, *,
                       absolute: bool = False) -> pd.DataFrame:
    """FaceX region score of every image and region (the per-sample values).

    Parameters
    ----------
    cams : np.ndarray
        ``(N, H, W)`` class activation maps resized to the image (non-negative,
        as Grad-CAM after its ReLU).
    masks : np.ndarray
        ``(N, H, W)`` integer region ids.
    region_names : sequence of str
        Name of each region id.
    meta : pandas.DataFrame
        One row per image.
    absolute : bool
        Score ``|cam|`` instead (for signed attribution maps).

    Returns
    -------
    pandas.DataFrame
        Meta columns, ``region``, ``score``: the fraction of the region's
        pixels whose CAM value is strictly above the mean of the image's
        non-zero CAM pixels. NaN where the region is absent from the image
        (excluded from averages, not counted as 0) and for an all-zero CAM
        (no threshold).
    """
    array = np.asarray(cams, dtype=np.float64)
    if array.ndim != 3 or not np.all(np.isfinite(array)):
        raise DataError(f"cams must be a finite (N, H, W) array, got shape {array.shape}")
    array = np.abs(array) if absolute else array
    labels = _as_masks(masks, array, len(region_names))
    meta = _check_meta(meta, len(array), ("region", "score"))
    return _long(meta, _image_scores(array, labels, len(region_names)), region_names, "score")


def facex_region_scores(cams: np.ndarray, masks: np.ndarray, region_names: Sequence[str], meta: pd.DataFrame, *,
                        by: Sequence[str], absolute: bool = False) -> pd.DataFrame:
    """FaceX (MAI-BIAS) region scores per group: mean over the images containing the region.

    Parameters
    ----------
    cams, masks, region_names, meta, absolute
        As in :func:`facex_image_scores`.
    by : sequence of str
        Meta columns to group by (any number of groups per attribute); empty
        for one overall score per region.

    Returns
    -------
    pandas.DataFrame
        Columns ``*by, region, score, n_images``; ``n_images`` counts the
        images that contain the region (and have a non-zero CAM); ``score``
        is NaN where it is 0.
    """
    per_image = facex_image_scores(cams, masks, region_names, meta, absolute=absolute)
    missing = [c for c in by if c not in per_image.columns]
    if missing:
        raise DataError(f"by column(s) {missing} not in meta; it has {list(meta.columns)}")
    grouped = per_image.groupby([*by, "region"], sort=False, dropna=False)["score"]
    out = grouped.agg(score="mean", n_images="count").reset_index()
    order = {name: k for k, name in enumerate(region_names)}
    out["_order"] = out["region"].map(order)
    return out.sort_values([*by, "_order"]).drop(columns="_order").reset_index(drop=True)


# --------------------------------------------------------------------------- landmark regions

def _axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Face frame of one image: origin (eye midpoint), unit ``u`` and ``v`` axes, interocular distance.

    ``u`` runs along the eye line (left eye to right eye), ``v`` perpendicular
    to it, towards the mouth.
    """
    origin = (points[0] + points[1]) / 2
    distance = float(np.hypot(*(points[1] - points[0])))
    axis_u = (points[1] - points[0]) / distance
    axis_v = np.array([-axis_u[1], axis_u[0]])
    below = points[3:].mean(axis=0) if np.all(np.isfinite(points[3:])) else points[2]
    if np.dot(below - origin, axis_v) < 0:
        axis_v = -axis_v
    return origin, axis_u, axis_v, distance


def _to_face(xy: np.ndarray, frame: tuple) -> tuple[np.ndarray, np.ndarray]:
    """``(..., 2)`` pixel ``(x, y)`` -> face ``(u, v)`` in interocular units."""
    origin, axis_u, axis_v, distance = frame
    d = xy - origin
    return d @ axis_u / distance, d @ axis_v / distance


def _in_ellipse(u, v, cu: float, cv: float, ru: float, rv: float) -> np.ndarray:
    return ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 <= 1.0


def _region_shapes(points: np.ndarray, shape: tuple[int, int]) -> list[tuple[str, np.ndarray]]:
    """Boolean shape of every landmark region of one image, in painter's order."""
    frame = _axes(points)
    ys, xs = np.mgrid[:shape[0], :shape[1]].astype(np.float64)
    u, v = _to_face(np.stack([xs, ys], axis=-1), frame)
    nu, nv = (float(c) for c in _to_face(points[2], frame))
    if np.all(np.isfinite(points[3:])):
        mu, mv = (float(c) for c in _to_face(points[3:].mean(axis=0), frame))
        half_mouth = float(np.hypot(*(points[4] - points[3]))) / frame[3] / 2
    else:  # the mouth is not located: placed below the nose by average proportions
        mu, mv, half_mouth = nu, nv + MOUTH_BELOW_NOSE, MOUTH_HALF_WIDTH
    cheek_rv = 0.35 * max(nv, 0.3) + 0.1
    return [
        ("forehead", _in_ellipse(u, v, 0.0, -0.75, 0.85, 0.35)),
        ("chin", _in_ellipse(u, v, mu, mv + 0.25, 0.75, 0.32) & (v > mv)),
        ("cheeks", _in_ellipse(u, v, -0.55, 0.6 * nv, 0.3, cheek_rv) | _in_ellipse(u, v, 0.55, 0.6 * nv, 0.3, cheek_rv)),
        ("nose", _in_ellipse(u, v, nu / 2, 0.55 * nv, 0.2, 0.6 * nv + 0.05)),
        ("mouth", _in_ellipse(u, v, mu, mv, 1.2 * half_mouth + 0.05, 0.18)),
        ("brows", _in_ellipse(u, v, -0.5, -0.33, 0.3, 0.1) | _in_ellipse(u, v, 0.5, -0.33, 0.3, 0.1)),
        ("eyes", _in_ellipse(u, v, -0.5, 0.0, 0.25, 0.13) | _in_ellipse(u, v, 0.5, 0.0, 0.25, 0.13)),
    ]


def landmark_regions(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Approximate face-region masks placed from five landmarks (for real photographs).

    Geometry, in a face frame with origin at the eye midpoint, ``u`` along the
    eye line and ``v`` towards the mouth, both in units of the interocular
    distance ``D`` (eye centre to eye centre); ellipses are given as centre
    and semi-axes ``(u, v)``, drawn in this order (a later one wins):

    * forehead: centre ``(0, -0.75)``, semi-axes ``(0.85, 0.35)``;
    * chin and jaw: the part below the mouth line of the ellipse with centre
      ``0.25`` below the mouth centre, semi-axes ``(0.75, 0.32)``;
    * cheeks: centres ``(+-0.55, 0.6 n)`` where ``n`` is the nose tip's
      ``v``, semi-axes ``(0.3, 0.35 max(n, 0.3) + 0.1)``;
    * nose: centre halfway from the eye midpoint to the nose tip (``v`` at
      ``0.55 n``), semi-axes ``(0.2, 0.6 n + 0.05)``, so from the nasal bridge
      to just below the tip;
    * mouth: centre at the mouth corners' midpoint, semi-axes ``(1.2 w +
      0.05, 0.18)`` with ``w`` half the corner distance; when the corners are
      NaN (not located), centre :data:`MOUTH_BELOW_NOSE` below the nose point and
      ``w =`` :data:`MOUTH_HALF_WIDTH`;
    * brows: centres ``(+-0.5, -0.33)``, semi-axes ``(0.3, 0.1)``;
    * eyes: centres ``(+-0.5, 0)`` (the eye landmarks), semi-axes ``(0.25, 0.13)``.

    The proportions follow average adult faces (brows about a third of ``D`` above
    the eyes, forehead about one ``D`` high) and fit the synthetic faces.
    Everything else is "background": hair, ears, neck, accessories and the
    scene behind the face cannot be told apart from five landmarks (a face parser such as BiSeNet on
    CelebAMask-HQ would be needed), and the regions do not follow a face's
    outline, so read scores on them as approximate.

    Parameters
    ----------
    landmarks : np.ndarray
        ``(N, 5, 2)`` ``(x, y)``: left eye, right eye, nose tip, mouth left,
        mouth right (image left/right).
    shape : tuple of int
        ``(H, W)`` of the images.

    Returns
    -------
    np.ndarray
        uint8 ``(N, H, W)`` ids indexing :data:`LANDMARK_REGIONS`; an image
        with missing (NaN) eyes or nose, or coincident eyes, is all background
        (the alignment report names it).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (5, 2):
        raise DataError(f"landmarks must have shape (N, 5, 2), got {points.shape}")
    masks = np.zeros((len(points), int(shape[0]), int(shape[1])), dtype=np.uint8)
    for k, image_points in enumerate(points):
        if not np.all(np.isfinite(image_points[:3])) or np.hypot(*(image_points[1] - image_points[0])) < 1e-6:
            continue
        for name, inside in _region_shapes(image_points, masks.shape[1:]):
            masks[k][inside] = LANDMARK_REGIONS.index(name)
    return masks
