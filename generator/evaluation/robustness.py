"""Robustness of explanations: how much a map changes when the input barely changes."""
from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from generator.errors import ConfigError, DataError
from generator.evaluation.complexity import as_maps
from generator.evaluation.faithfulness import as_images, as_targets, positive_int

__all__ = ["ExplainFn", "max_sensitivity"]

#: (images float32 NHWC in [0, 255], targets (N,)) -> attribution maps (N, H, W).
ExplainFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
_NORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "fro": lambda d: np.sqrt((d * d).sum(axis=(1, 2))),
    "inf": lambda d: np.abs(d).max(axis=(1, 2)),
}


def _explain(explain_fn: ExplainFn, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Call ``explain_fn`` and check it returns one ``(H, W)`` map per image."""
    maps = as_maps(explain_fn(images, targets), name="explain_fn output")
    if maps.shape != images.shape[:3]:
        raise DataError(f"explain_fn must return maps of shape {images.shape[:3]}, got {maps.shape}")
    return maps


def max_sensitivity(explain_fn: ExplainFn, images: np.ndarray, targets: np.ndarray, *,
                    radius: float = 0.02 * 255, n_samples: int = 8, seed: int = 0,
                    norm: Literal["fro", "inf"] = "fro") -> np.ndarray:
    """Relative max-sensitivity per sample, Yeh et al. 2019, "On the (In)fidelity and
    Sensitivity of Explanations" (NeurIPS); lower = more robust.

    ``max_{x' in B(x, r)} ||phi(x') - phi(x)|| / ||phi(x)||``, the maximum taken
    over ``n_samples`` draws of uniform noise in the L-infinity ball of radius
    ``r`` (in pixel units, 0..255); perturbed images are clipped to
    ``[0, 255]`` so they stay valid images.

    Parameters
    ----------
    explain_fn : ExplainFn
        (float32 NHWC images in ``[0, 255]``, targets) -> maps ``(N, H, W)``.
    images : np.ndarray
        ``(N, H, W, 3)`` images, uint8 or float in ``[0, 255]``.
    targets : np.ndarray
        ``(N,)`` class explained for each image (kept fixed under perturbation).
    radius : float
        Half-width of the uniform noise per channel value (default 2 % of 255).
    n_samples : int
        Perturbations per image; ``explain_fn`` is called ``n_samples + 1`` times
        on the whole batch.
    seed : int
        Seed of the noise.
    norm : {"fro", "inf"}
        Norm of the map difference: Frobenius (Captum's default) or max-abs.

    Returns
    -------
    np.ndarray
        float64 ``(N,)``, non-negative; NaN where ``phi(x)`` is all zero (the
        relative change is undefined).

    Notes
    -----
    Implemented with NumPy around an ``ExplainFn`` rather than with
    :func:`captum.metrics.sensitivity_max`, which needs a Captum explanation
    function on torch tensors; this form serves Xplique explainers as well.
    The noise, unlike Captum's default, is drawn per channel value and the
    result is divided by ``||phi(x)||`` (relative sensitivity), so that
    methods with maps of different scales can be compared.
    """
    images = as_images(images)
    targets = as_targets(targets, len(images))
    if norm not in _NORMS:
        raise ConfigError(f"norm = {norm!r} is not accepted: use one of {sorted(_NORMS)}")
    if not float(radius) >= 0.0:
        raise ConfigError(f"radius = {radius!r} is not accepted: use a non-negative number")
    original = _explain(explain_fn, images, targets)
    rng = np.random.default_rng(seed)
    worst = np.zeros(len(images))
    for _ in range(positive_int("n_samples", n_samples)):
        noise = rng.uniform(-radius, radius, size=images.shape).astype(np.float32)
        perturbed = np.clip(images + noise, 0.0, 255.0)
        worst = np.maximum(worst, _NORMS[norm](_explain(explain_fn, perturbed, targets) - original))
    scale = _NORMS[norm](original)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, worst / np.where(scale > 0, scale, 1.0), np.nan)
