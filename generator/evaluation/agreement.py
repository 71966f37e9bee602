"""Agreement between two sets of maps, and the completeness gap of path attributions."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from generator.errors import ConfigError, DataError
from generator.evaluation.complexity import as_maps

__all__ = ["AGREEMENT_COLUMNS", "completeness_gap", "completeness_table", "map_agreement", "row_pearson",
           "row_spearman"]

AGREEMENT_COLUMNS: tuple[str, ...] = ("image", "spearman", "pearson", "cosine", "topk_intersection")


def row_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b``.

    Parameters
    ----------
    a, b : np.ndarray
        float arrays of the same shape ``(N, P)``.

    Returns
    -------
    np.ndarray
        float64 ``(N,)``; NaN where a row is constant (the correlation is undefined).
    """
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return _cosine_rows(a, b)


def row_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation (Pearson of average ranks) per row; NaN for a constant row."""
    return row_pearson(rankdata(a, axis=1), rankdata(b, axis=1))


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity per row; NaN where a row is all zero."""
    norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, (a * b).sum(axis=1) / np.where(norm > 0, norm, 1.0), np.nan)


def _top_sets(values: np.ndarray, k: int) -> np.ndarray:
    """Boolean ``(N, P)`` marking each row's ``k`` largest values (ties: raster order)."""
    top = np.argsort(-values, axis=1, kind="stable")[:, :k]
    chosen = np.zeros(values.shape, dtype=bool)
    np.put_along_axis(chosen, top, True, axis=1)
    return chosen


def map_agreement(maps_a: np.ndarray, maps_b: np.ndarray, *, absolute: bool = True,
                  top_fraction: float = 0.1) -> pd.DataFrame:
    """Per-sample agreement of two explanations of the same images.

    Rank correlation is the similarity used by Adebayo et al. 2018, "Sanity
    Checks for Saliency Maps" (NeurIPS); the top-k intersection is the feature
    agreement of Krishna et al. 2022, "The Disagreement Problem in Explainable
    Machine Learning" (TMLR).

    Parameters
    ----------
    maps_a, maps_b : np.ndarray
        Attribution maps ``(N, H, W)`` of the same images.
    absolute : bool
        Compare ``|maps|`` (importance regardless of sign, the default) or the
        signed maps (then a negated map has correlation -1).
    top_fraction : float
        Share of pixels, in ``(0, 1]``, forming each map's top set
        (``k = max(1, round(top_fraction * H * W))``).

    Returns
    -------
    pandas.DataFrame
        One row per image, columns ``image, spearman, pearson, cosine,
        topk_intersection``; the last is ``|top_k(a) & top_k(b)| / k`` in
        ``[0, 1]`` (top by value after the ``absolute`` choice, ties in raster
        order). Correlations are NaN for a constant map, cosine for an all-zero map.

    Raises
    ------
    DataError
        If the maps are not two ``(N, H, W)`` arrays of the same shape.
    ConfigError
        If ``top_fraction`` is not in ``(0, 1]``.
    """
    a, b = as_maps(maps_a, name="maps_a"), as_maps(maps_b, name="maps_b")
    if a.shape != b.shape:
        raise DataError(f"maps_a {a.shape} and maps_b {b.shape} must have the same shape")
    if not 0.0 < float(top_fraction) <= 1.0:
        raise ConfigError(f"top_fraction = {top_fraction!r} is not accepted: use a value in (0, 1]")
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    if absolute:
        a, b = np.abs(a), np.abs(b)
    k = max(1, round(top_fraction * a.shape[1]))
    shared = (_top_sets(a, k) & _top_sets(b, k)).sum(axis=1) / k
    return pd.DataFrame({"image": np.arange(len(a)), "spearman": row_spearman(a, b),
                         "pearson": row_pearson(a, b), "cosine": _cosine_rows(a, b),
                         "topk_intersection": shared}, columns=list(AGREEMENT_COLUMNS))


def completeness_gap(attr_sums: np.ndarray, f_x: np.ndarray, f_baseline: np.ndarray, *,
                     relative: bool = False, min_difference: float = 0.0) -> np.ndarray:
    """Completeness gap ``sum(attr) - (f(x) - f(baseline))`` per sample.

    Integrated Gradients satisfies completeness (Sundararajan, Taly & Yan 2017,
    "Axiomatic Attribution for Deep Networks", ICML): the attributions add up
    to the output difference, so the gap measures the integration error of an
    IG implementation (steps, rule) or how far another method is from it.

    Parameters
    ----------
    attr_sums : np.ndarray
        ``(N,)`` sum of each sample's attributions over all pixels and channels.
    f_x, f_baseline : np.ndarray
        ``(N,)`` explained output (same scale as the attributions: logit or
        probability) at the input and at the baseline.
    relative : bool
        Divide by ``|f(x) - f(baseline)|``.
    min_difference : float
        With ``relative``, NaN where ``|f(x) - f(baseline)|`` is below this: a ratio to a
        near-zero output difference (0.0004 logit, say) is meaningless however small the gap.

    Returns
    -------
    np.ndarray
        float64 ``(N,)``; with ``relative``, NaN where ``f(x) == f(baseline)`` or the
        difference is below ``min_difference``.

    Raises
    ------
    DataError
        If the three arrays are not 1-D of the same length.
    """
    sums, fx, fb = (np.asarray(v, dtype=np.float64) for v in (attr_sums, f_x, f_baseline))
    if sums.ndim != 1 or sums.shape != fx.shape or sums.shape != fb.shape:
        raise DataError(f"attr_sums, f_x and f_baseline must be 1-D of one length, "
                        f"got shapes {sums.shape}, {fx.shape}, {fb.shape}")
    gap = sums - (fx - fb)
    if not relative:
        return gap
    scale = np.abs(fx - fb)
    kept = (scale > 0) & (scale >= min_difference)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(kept, gap / np.where(kept, scale, 1.0), np.nan)


def completeness_table(logits, images: np.ndarray, baseline: np.ndarray, targets: np.ndarray, maps: np.ndarray, *,
                       min_difference: float = 0.0) -> pd.DataFrame:
    """Per image: the sum of its attributions, the explained output's difference between the image and the
    baseline, and the :func:`completeness_gap` between the two (absolute, and relative where the difference
    is at least ``min_difference``).

    ``logits(images)`` returns the model's outputs ``(N, classes)`` (a model handle's ``logits``);
    ``baseline`` holds the baseline image of every image (the shape of ``images``); ``maps`` the
    attributions ``(N, H, W)`` of class ``targets``.
    """
    pick = np.arange(len(images))
    f_x = np.asarray(logits(images))[pick, targets]
    f_0 = np.asarray(logits(baseline))[pick, targets]
    sums = np.asarray(maps, dtype=np.float64).sum(axis=(1, 2))
    return pd.DataFrame({"attribution_sum": sums, "output_difference": f_x - f_0,
                         "gap": completeness_gap(sums, f_x, f_0),
                         "relative_gap": completeness_gap(sums, f_x, f_0, relative=True,
                                                          min_difference=min_difference)})
