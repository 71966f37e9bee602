"""How concentrated an attribution map is: sparseness (Gini) and complexity (entropy).

Both scores look only at the map, never at the model, so they can be computed
for any method of any framework. They also hold the map checks shared by the
other evaluation modules (:func:`as_maps`).
"""
from __future__ import annotations

import numpy as np

from generator.errors import DataError

__all__ = ["as_maps", "complexity", "sparseness"]


def as_maps(maps: np.ndarray, *, name: str = "maps") -> np.ndarray:
    """Check a batch of attribution maps and return it as float64.

    Parameters
    ----------
    maps : np.ndarray
        Attribution maps of shape ``(N, H, W)``, finite real values.
    name : str
        Argument name used in the error message.

    Returns
    -------
    np.ndarray
        The maps as a float64 array of the same shape (a copy only if needed).

    Raises
    ------
    DataError
        If ``maps`` is not a non-empty ``(N, H, W)`` array of finite numbers.
    """
    array = np.asarray(maps)
    if array.ndim != 3 or array.shape[0] == 0 or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{name} must be a numeric array of shape (N, H, W) with N >= 1, "
                        f"got shape {array.shape} and dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise DataError(f"{name} holds NaN or infinite values; attribution maps must be finite")
    return array


def _mass(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``|maps|`` flattened per sample ``(N, P)`` and its total per sample ``(N,)``."""
    flat = np.abs(as_maps(maps)).reshape(len(maps), -1)
    return flat, flat.sum(axis=1)


def sparseness(maps: np.ndarray) -> np.ndarray:
    """Gini index of ``|map|`` per sample: 1 = all mass on one pixel, 0 = uniform.

    With the ``n`` absolute values sorted ascending, ``a_(1) <= ... <= a_(n)``,
    ``G = sum_k (2k - n - 1) a_(k) / (n sum_k a_(k))`` (Hurley & Rickard 2009),
    the sparseness measure proposed for attributions by Chalasani et al. 2020,
    "Concise Explanations of Neural Networks using Adversarial Training" (ICML).
    A one-hot map scores ``(n - 1) / n``.

    Parameters
    ----------
    maps : np.ndarray
        Attribution maps ``(N, H, W)``; the sign is ignored.

    Returns
    -------
    np.ndarray
        float64 ``(N,)``; NaN for an all-zero map, whose mass has no distribution.
    """
    flat, total = _mass(maps)
    n = flat.shape[1]
    weights = 2.0 * np.arange(1, n + 1) - n - 1.0
    numerator = np.sort(flat, axis=1) @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, numerator / (n * total), np.nan)


def complexity(maps: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of ``|map|`` normalised to a distribution over pixels.

    Bhatt, Weller & Moura 2020, "Evaluating and Aggregating Feature-based Model
    Explanations" (IJCAI), definition of complexity: ``-sum_i p_i log p_i`` with
    ``p_i = |a_i| / sum_j |a_j|`` and ``0 log 0 = 0``. A uniform map over ``n``
    pixels scores ``log(n)``, a one-hot map 0; lower is simpler.

    Parameters
    ----------
    maps : np.ndarray
        Attribution maps ``(N, H, W)``; the sign is ignored.

    Returns
    -------
    np.ndarray
        float64 ``(N,)``; NaN for an all-zero map, whose mass has no distribution.
    """
    flat, total = _mass(maps)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = flat / total[:, None]
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.where(total > 0, terms.sum(axis=1), np.nan)
