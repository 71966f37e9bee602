"""Faithfulness of attribution maps: does the model react where the map says it should?

Four scores, each per sample:

* :class:`Deletion` / :func:`deletion_auc` and :class:`Insertion` /
  :func:`insertion_auc` (Petsiuk et al. 2018): the target probability while
  pixels are removed from (inserted into) the image in the map's order.
* :class:`MuFidelity` / :func:`mu_fidelity` (Bhatt et al. 2020): correlation
  between the attribution of random sets of grid cells and the drop in target
  probability when those cells are removed.
* :func:`infidelity` (Yeh et al. 2019), a seeded wrapper of Captum's.

Following Xplique's metrics, the classes are built once on a fixed evaluation
set (images, targets, model) with their budget, and then score many maps;
everything that does not depend on the map (baselines, unperturbed and fully
perturbed predictions, MuFidelity's random subsets and their predictions) is
computed once in the constructor. The functions build and call in one go.

The model is seen only through a ``ProbFn``: float32 NHWC images in
``[0, 255]`` -> class probabilities ``(N, C)``. The caller wraps its model (and
turns autograd off), so these metrics serve PyTorch and TensorFlow alike.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy.ndimage import gaussian_filter

from generator.errors import ConfigError, DataError, ModelError
from generator.evaluation.agreement import row_pearson, row_spearman
from generator.evaluation.complexity import as_maps

if TYPE_CHECKING:
    import torch

__all__ = [
    "BASELINES",
    "Deletion",
    "Insertion",
    "MuFidelity",
    "ProbFn",
    "as_images",
    "as_targets",
    "baseline_images",
    "deletion_auc",
    "infidelity",
    "insertion_auc",
    "mu_fidelity",
    "pixel_ranks",
    "positive_int",
]

#: Float32 NHWC images in [0, 255] -> class probabilities (N, C), without autograd.
ProbFn = Callable[[np.ndarray], np.ndarray]
Baseline = Literal["black", "blur", "mean"]
#: Accepted names of the value a removed pixel takes.
BASELINES: tuple[str, ...] = ("black", "blur", "mean")


# ----------------------------------------------------------------------------
# Shared checks and helpers
# ----------------------------------------------------------------------------

def as_images(images: np.ndarray) -> np.ndarray:
    """Check NHWC RGB images (uint8 or float in [0, 255]) and return them as float32.

    Raises
    ------
    DataError
        If ``images`` is not a non-empty numeric ``(N, H, W, 3)`` array.
    """
    array = np.asarray(images)
    if array.ndim != 4 or array.shape[-1] != 3 or array.shape[0] == 0:
        raise DataError(f"images must have shape (N, H, W, 3) with N >= 1, got {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"images must be numeric (uint8 or float in [0, 255]), got {array.dtype}")
    return array.astype(np.float32, copy=False)


def as_targets(targets: np.ndarray, n: int) -> np.ndarray:
    """Check one non-negative integer class index per image and return them as int64.

    Raises
    ------
    DataError
        If ``targets`` is not ``n`` non-negative integers.
    """
    array = np.asarray(targets)
    if array.shape != (n,) or not np.issubdtype(array.dtype, np.integer) or np.any(array < 0):
        raise DataError(f"targets must be {n} non-negative integer class indices (one per image), "
                        f"got shape {array.shape} and dtype {array.dtype}")
    return array.astype(np.int64)


def _matching_maps(maps: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Check that ``maps`` has shape ``(N, H, W)`` of the images and return it as float64."""
    maps = as_maps(maps)
    if maps.shape != tuple(shape):
        raise DataError(f"maps must have shape {tuple(shape)} (one H x W map per image), "
                        f"got {maps.shape}")
    return maps


def positive_int(name: str, value: object) -> int:
    """Return ``value`` as an int, refusing anything but an integer >= 1 with a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _target_scores(prob_fn: ProbFn, batch: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Call ``prob_fn`` on one batch and pick each image's target probability."""
    probs = np.asarray(prob_fn(batch.astype(np.float32, copy=False)))
    if probs.ndim != 2 or probs.shape[0] != len(batch):
        raise ModelError(f"prob_fn must return probabilities of shape ({len(batch)}, classes), "
                         f"got shape {probs.shape}")
    if targets.max() >= probs.shape[1]:
        raise DataError(f"a target index ({targets.max()}) is not below the number of classes "
                        f"({probs.shape[1]}) returned by prob_fn")
    return probs[np.arange(len(batch)), targets].astype(np.float64)


def _batched_scores(prob_fn: ProbFn, make_batch: Callable[[np.ndarray], np.ndarray],
                    targets: np.ndarray, batch_size: int) -> np.ndarray:
    """Target scores of ``len(targets)`` images built ``batch_size`` at a time by ``make_batch(idx)``."""
    out = np.empty(len(targets), dtype=np.float64)
    for lo in range(0, len(targets), batch_size):
        idx = np.arange(lo, min(lo + batch_size, len(targets)))
        out[idx] = _target_scores(prob_fn, make_batch(idx), targets[idx])
    return out


def baseline_images(images: np.ndarray, baseline: str = "black", *,
                    blur_sigma: float | None = None) -> np.ndarray:
    """Return the image each pixel is replaced by when it is "removed".

    Parameters
    ----------
    images : np.ndarray
        ``(N, H, W, 3)`` images, uint8 or float in ``[0, 255]``.
    baseline : {"black", "blur", "mean"}
        ``"black"``: zeros; ``"blur"``: the image smoothed by a Gaussian of
        standard deviation ``blur_sigma`` pixels over height and width (Petsiuk
        et al. 2018 insert into a blurred image); ``"mean"``: each image's mean
        colour (per channel) everywhere.
    blur_sigma : float, optional
        Standard deviation for ``"blur"``; by default ``5 / 224`` of the longer
        side (RISE's sigma of 5 pixels at 224 px), at least 1 pixel.

    Returns
    -------
    np.ndarray
        float32 ``(N, H, W, 3)``.

    Raises
    ------
    ConfigError
        If ``baseline`` is not one of :data:`BASELINES`.
    """
    images = as_images(images)
    if baseline == "black":
        return np.zeros_like(images)
    if baseline == "mean":
        return np.broadcast_to(images.mean(axis=(1, 2), keepdims=True), images.shape).astype(np.float32)
    if baseline == "blur":
        sigma = blur_sigma if blur_sigma is not None else max(1.0, 5.0 / 224.0 * max(images.shape[1:3]))
        return gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="nearest").astype(np.float32)
    raise ConfigError(f"baseline = {baseline!r} is not accepted: use one of {list(BASELINES)}")


# ----------------------------------------------------------------------------
# Deletion and insertion (Petsiuk et al. 2018)
# ----------------------------------------------------------------------------

def pixel_ranks(maps: np.ndarray) -> np.ndarray:
    """Rank of every pixel by decreasing attribution, ties broken by raster order.

    Parameters
    ----------
    maps : np.ndarray
        ``(N, H, W)`` attribution maps (signed: the most positive pixel is first).

    Returns
    -------
    np.ndarray
        int64 ``(N, H * W)``: 0 for the pixel moved first, ``H * W - 1`` last.
    """
    flat = as_maps(maps).reshape(len(maps), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None, :], axis=1)
    return ranks


class _PixelCurve:
    """Target probability while pixels move one by one, in map order, from ``start`` to ``fill``.

    Subclasses only choose which of the image and the baseline is ``start``.
    """

    def __init__(self, prob_fn: ProbFn, images: np.ndarray, targets: np.ndarray, *,
                 steps: int = 16, baseline: Baseline = "black", batch_size: int = 64,
                 blur_sigma: float | None = None) -> None:
        images = as_images(images)
        self._prob_fn = prob_fn
        self._shape = images.shape[:3]
        self._targets = as_targets(targets, len(images))
        self._batch_size = positive_int("batch_size", batch_size)
        n_pixels = images.shape[1] * images.shape[2]
        self._counts = np.round(np.linspace(0, n_pixels, positive_int("steps", steps) + 1)).astype(int)
        self.fractions = self._counts / n_pixels
        self._start, self._fill = self._endpoints(images, baseline_images(images, baseline,
                                                                          blur_sigma=blur_sigma))
        self._first = self._scores(lambda idx: self._start[idx])
        self._last = self._scores(lambda idx: self._fill[idx])

    def _endpoints(self, images: np.ndarray, baselines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _scores(self, make_batch: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        return _batched_scores(self._prob_fn, make_batch, self._targets, self._batch_size)

    def curves(self, maps: np.ndarray) -> np.ndarray:
        """Target probability after each step, float64 ``(N, steps + 1)``.

        Column ``k`` is the probability once ``fractions[k]`` of the pixels
        (those ranked first by :func:`pixel_ranks`) have moved.
        """
        ranks = pixel_ranks(_matching_maps(maps, self._shape))
        curves = np.where(self._counts[None, :] == 0, self._first[:, None], self._last[:, None])
        inner = np.flatnonzero((self._counts > 0) & (self._counts < ranks.shape[1]))
        if inner.size:
            image_of = np.repeat(np.arange(len(ranks)), inner.size)
            step_of = np.tile(inner, len(ranks))
            curves[image_of, step_of] = _batched_scores(
                self._prob_fn, lambda idx: self._moved(ranks, image_of[idx], step_of[idx]),
                self._targets[image_of], self._batch_size)
        return curves

    def _moved(self, ranks: np.ndarray, rows: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Images ``rows`` after ``steps``: their first ``counts[step]`` pixels taken from ``fill``."""
        moved = ranks[rows] < self._counts[steps][:, None]
        return np.where(moved.reshape(-1, *self._shape[1:], 1), self._fill[rows], self._start[rows])

    def __call__(self, maps: np.ndarray) -> np.ndarray:
        """Area under the curve per sample (trapezoid over the fraction moved), float64 ``(N,)``."""
        return np.trapezoid(self.curves(maps), x=self.fractions, axis=1)


class Deletion(_PixelCurve):
    """Deletion metric of Petsiuk, Das & Saenko 2018, "RISE: Randomized Input Sampling
    for Explanation of Black-box Models" (BMVC).

    Pixels are replaced by the baseline in order of decreasing attribution; the
    score is the area under the target probability over the fraction removed
    (``[0, 1]``, trapezoid rule). Lower = more faithful: the probability falls
    fast when the most important pixels go first.

    Parameters
    ----------
    prob_fn : ProbFn
        Float32 NHWC images in ``[0, 255]`` -> class probabilities ``(N, C)``.
    images : np.ndarray
        ``(N, H, W, 3)`` evaluation images, uint8 or float in ``[0, 255]``.
    targets : np.ndarray
        ``(N,)`` class index whose probability is tracked.
    steps : int
        Number of steps; step ``k`` has ``round(k * H * W / steps)`` pixels moved.
    baseline : {"black", "blur", "mean"}
        Value of removed pixels, see :func:`baseline_images`.
    batch_size : int
        Images per call of ``prob_fn``.
    blur_sigma : float, optional
        Standard deviation of the ``"blur"`` baseline.

    Notes
    -----
    A pixel moves with all three channels. Ties in the map are broken in
    raster order (stable sort), so a constant map deletes top to bottom.
    """

    def _endpoints(self, images: np.ndarray, baselines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return images, baselines


class Insertion(_PixelCurve):
    """Insertion metric of Petsiuk, Das & Saenko 2018 (RISE, BMVC).

    Starts from the baseline image and inserts the original pixels in order of
    decreasing attribution; the score is the area under the target probability
    over the fraction inserted. Higher = more faithful. Parameters as for
    :class:`Deletion`.
    """

    def _endpoints(self, images: np.ndarray, baselines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return baselines, images


def deletion_auc(prob_fn: ProbFn, images: np.ndarray, targets: np.ndarray, maps: np.ndarray, *,
                 steps: int = 16, baseline: Baseline = "black", batch_size: int = 64,
                 return_curves: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Deletion AUC per sample (Petsiuk et al. 2018); lower = more faithful.

    One-shot form of :class:`Deletion` (see there for the parameters).

    Returns
    -------
    np.ndarray or tuple of np.ndarray
        AUC float64 ``(N,)``; with ``return_curves`` also the curves ``(N, steps + 1)``.
    """
    metric = Deletion(prob_fn, images, targets, steps=steps, baseline=baseline, batch_size=batch_size)
    return _auc_and_curves(metric, maps, return_curves)


def insertion_auc(prob_fn: ProbFn, images: np.ndarray, targets: np.ndarray, maps: np.ndarray, *,
                  steps: int = 16, baseline: Baseline = "black", batch_size: int = 64,
                  return_curves: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Insertion AUC per sample (Petsiuk et al. 2018); higher = more faithful.

    One-shot form of :class:`Insertion` (see :class:`Deletion` for the parameters).

    Returns
    -------
    np.ndarray or tuple of np.ndarray
        AUC float64 ``(N,)``; with ``return_curves`` also the curves ``(N, steps + 1)``.
    """
    metric = Insertion(prob_fn, images, targets, steps=steps, baseline=baseline, batch_size=batch_size)
    return _auc_and_curves(metric, maps, return_curves)


def _auc_and_curves(metric: _PixelCurve, maps: np.ndarray,
                    return_curves: bool) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    curves = metric.curves(maps)
    auc = np.trapezoid(curves, x=metric.fractions, axis=1)
    return (auc, curves) if return_curves else auc


# ----------------------------------------------------------------------------
# MuFidelity (Bhatt et al. 2020)
# ----------------------------------------------------------------------------

def _grid_cells(height: int, width: int, grid: int) -> np.ndarray:
    """Cell index (row-major over a ``grid x grid`` partition) of every pixel, int ``(H * W,)``."""
    rows = np.arange(height) * grid // height
    cols = np.arange(width) * grid // width
    return (rows[:, None] * grid + cols[None, :]).ravel()


def _random_subsets(n_samples: int, n_cells: int, size: int, seed: int) -> np.ndarray:
    """``n_samples`` random subsets of exactly ``size`` cells, bool ``(n_samples, n_cells)``."""
    rng = np.random.default_rng(seed)
    keys = rng.random((n_samples, n_cells))
    chosen = np.argsort(keys, axis=1)[:, :size]
    subsets = np.zeros((n_samples, n_cells), dtype=bool)
    np.put_along_axis(subsets, chosen, True, axis=1)
    return subsets


class MuFidelity:
    """Faithfulness correlation of Bhatt, Weller & Moura 2020, "Evaluating and Aggregating
    Feature-based Model Explanations" (IJCAI), definition 3.

    The image is cut into a ``grid x grid`` partition of cells. For
    ``n_samples`` random subsets ``S`` of exactly ``round(subset_percent *
    grid**2)`` cells, the cells of ``S`` are set to the baseline; per sample the
    score is the correlation, over the subsets, between ``sum_{i in S} phi_i``
    and ``f(x)[t] - f(x_S)[t]``. 1 = the map predicts exactly how much each
    removal hurts.

    Parameters
    ----------
    prob_fn : ProbFn
        Float32 NHWC images in ``[0, 255]`` -> class probabilities ``(N, C)``.
    images : np.ndarray
        ``(N, H, W, 3)`` evaluation images, uint8 or float in ``[0, 255]``.
    targets : np.ndarray
        ``(N,)`` class index whose probability is tracked.
    grid : int
        Cells per side (at most ``min(H, W)``).
    subset_percent : float
        Fraction of cells removed in each subset, in ``(0, 1)``.
    n_samples : int
        Number of random subsets (at least 2).
    baseline : {"black", "blur", "mean"}
        Value of removed pixels, see :func:`baseline_images`.
    correlation : {"pearson", "spearman"}
        Pearson as in the paper; Spearman as Xplique's ``MuFidelity``.
    seed : int
        Seed of the subsets; the same subsets serve every image and every map.
    batch_size : int
        Images per call of ``prob_fn``.

    Notes
    -----
    Implemented with NumPy rather than by calling Xplique's ``MuFidelity`` so
    that it (a) returns per-sample values (Xplique returns only the mean),
    (b) runs on any framework through a ``ProbFn`` without importing
    TensorFlow, and (c) draws its subsets from a NumPy seed, identical for
    every map, which makes the comparison of two methods paired. All model
    calls happen in the constructor: scoring a map costs one matrix product.
    Differences from Xplique 2.0.2: subsets have a fixed size (Xplique drops
    each cell with probability ``subset_percent``), correlation defaults to
    Pearson, and a sample whose map or probability drops are constant over
    the subsets gets NaN (Xplique reports 0).
    """

    def __init__(self, prob_fn: ProbFn, images: np.ndarray, targets: np.ndarray, *, grid: int = 8,
                 subset_percent: float = 0.2, n_samples: int = 64, baseline: Baseline = "black",
                 correlation: Literal["pearson", "spearman"] = "pearson", seed: int = 0,
                 batch_size: int = 64) -> None:
        images = as_images(images)
        targets = as_targets(targets, len(images))
        self._check(images, grid, subset_percent, n_samples, correlation)
        self._shape = images.shape[:3]
        self._correlation = correlation
        self._cells = _grid_cells(images.shape[1], images.shape[2], grid)
        size = max(1, round(subset_percent * grid * grid))
        self.subsets = _random_subsets(n_samples, grid * grid, size, seed)
        self.drops = self._drops(prob_fn, images, baseline_images(images, baseline), targets,
                                 positive_int("batch_size", batch_size))

    @staticmethod
    def _check(images: np.ndarray, grid: int, subset_percent: float, n_samples: int,
               correlation: str) -> None:
        if positive_int("grid", grid) > min(images.shape[1:3]):
            raise ConfigError(f"grid = {grid} is not accepted: at most min(H, W) = {min(images.shape[1:3])}")
        if not 0.0 < float(subset_percent) < 1.0:
            raise ConfigError(f"subset_percent = {subset_percent!r} is not accepted: use a value in (0, 1)")
        if positive_int("n_samples", n_samples) < 2:
            raise ConfigError(f"n_samples = {n_samples} is not accepted: a correlation needs at least 2")
        if correlation not in ("pearson", "spearman"):
            raise ConfigError(f"correlation = {correlation!r} is not accepted: use 'pearson' or 'spearman'")

    def _drops(self, prob_fn: ProbFn, images: np.ndarray, baselines: np.ndarray, targets: np.ndarray,
               batch_size: int) -> np.ndarray:
        """``f(x)[t] - f(x_S)[t]`` for every image and subset, float64 ``(N, n_samples)``."""
        base = _batched_scores(prob_fn, lambda idx: images[idx], targets, batch_size)
        n_sub = len(self.subsets)
        image_of, subset_of = np.divmod(np.arange(len(images) * n_sub), n_sub)
        removed = self.subsets[:, self._cells].reshape(n_sub, *images.shape[1:3], 1)

        def make_batch(idx: np.ndarray) -> np.ndarray:
            i = image_of[idx]
            return np.where(removed[subset_of[idx]], baselines[i], images[i])

        perturbed = _batched_scores(prob_fn, make_batch, targets[image_of], batch_size)
        return base[:, None] - perturbed.reshape(len(images), n_sub)

    def __call__(self, maps: np.ndarray) -> np.ndarray:
        """Correlation per sample, float64 ``(N,)`` in ``[-1, 1]``; NaN where undefined (see Notes)."""
        maps = _matching_maps(maps, self._shape).reshape(self._shape[0], -1)
        attributed = maps @ self.subsets[:, self._cells].T.astype(np.float64)
        if self._correlation == "spearman":
            return row_spearman(attributed, self.drops)
        return row_pearson(attributed, self.drops)


def mu_fidelity(prob_fn: ProbFn, images: np.ndarray, targets: np.ndarray, maps: np.ndarray, *,
                grid: int = 8, subset_percent: float = 0.2, n_samples: int = 64,
                baseline: Baseline = "black", correlation: Literal["pearson", "spearman"] = "pearson",
                seed: int = 0, batch_size: int = 64) -> np.ndarray:
    """Faithfulness correlation per sample (Bhatt et al. 2020); higher = more faithful.

    One-shot form of :class:`MuFidelity` (see there for the parameters).

    Returns
    -------
    np.ndarray
        float64 ``(N,)`` in ``[-1, 1]``; NaN where the map's subset sums or the
        probability drops do not vary over the subsets.
    """
    metric = MuFidelity(prob_fn, images, targets, grid=grid, subset_percent=subset_percent,
                        n_samples=n_samples, baseline=baseline, correlation=correlation, seed=seed,
                        batch_size=batch_size)
    return metric(maps)


# ----------------------------------------------------------------------------
# Infidelity (Yeh et al. 2019, through Captum)
# ----------------------------------------------------------------------------

def infidelity(forward_fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
               targets: np.ndarray, maps: np.ndarray, *, noise_std: float = 0.1,
               n_perturb_samples: int = 32, normalize: bool = True, seed: int = 0,
               max_examples_per_batch: int | None = None) -> np.ndarray:
    """Explanation infidelity per sample, Yeh et al. 2019, "On the (In)fidelity and
    Sensitivity of Explanations" (NeurIPS); lower = more faithful.

    ``E_I[(I^T phi - (f(x) - f(x - I)))^2]`` with Gaussian perturbations ``I``,
    computed by :func:`captum.metrics.infidelity`. The perturbation of a pixel
    is shared by its channels, and the pixel map is spread evenly over the
    channels, so ``I^T phi = sum_pixels I_p * map_p``: the exact pixel map of a
    linear model is its weight summed over channels (a *local* attribution,
    e.g. a channel-summed gradient).

    Parameters
    ----------
    forward_fn : callable
        Torch function from model inputs ``(N, C, H, W)`` to scores ``(N, classes)``
        (a model, or a model followed by a softmax); it is called without autograd.
        This takes a torch forward rather than a ``ProbFn`` because Captum needs one.
    inputs : torch.Tensor
        ``(N, C, H, W)`` inputs in the model's own scale (e.g. ``preprocess(images)``).
    targets : np.ndarray
        ``(N,)`` class index per input.
    maps : np.ndarray
        ``(N, H, W)`` attribution maps with respect to ``inputs``' scale.
    noise_std : float
        Standard deviation of the Gaussian perturbation, in the inputs' units.
    n_perturb_samples : int
        Perturbations per input.
    normalize : bool
        Rescale the map by the optimal factor first (Captum's ``normalize``,
        Yeh et al.'s beta), so the score does not depend on the map's scale and
        methods of different units can be compared.
    seed : int
        Seed of the perturbations (a private ``torch.Generator``).
    max_examples_per_batch : int, optional
        Passed to Captum to bound memory.

    Returns
    -------
    np.ndarray
        float64 ``(N,)``, non-negative.

    Notes
    -----
    Global attributions (IG, input x gradient) are best compared with
    ``normalize=True``; Gaussian perturbations probe the local linear behaviour.
    """
    import torch
    from captum.metrics import infidelity as captum_infidelity

    maps = as_maps(maps)
    if inputs.ndim != 4 or tuple(inputs.shape[2:]) != maps.shape[1:] or inputs.shape[0] != len(maps):
        raise DataError(f"maps {maps.shape} must be one (H, W) map per input of shape (N, C, H, W), "
                        f"got inputs of shape {tuple(inputs.shape)}")
    channels = inputs.shape[1]
    attributions = torch.as_tensor(maps / channels, dtype=inputs.dtype, device=inputs.device)
    attributions = attributions.unsqueeze(1).expand_as(inputs).contiguous()
    generator = torch.Generator().manual_seed(int(seed))

    def perturb(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn((batch.shape[0], 1, *batch.shape[2:]), generator=generator, dtype=batch.dtype)
        noise = (noise * noise_std).to(batch.device).expand_as(batch)
        return noise, batch - noise

    target = torch.as_tensor(as_targets(targets, len(maps)))
    with torch.no_grad():
        scores = captum_infidelity(forward_fn, perturb, inputs, attributions, target=target,
                                   n_perturb_samples=positive_int("n_perturb_samples", n_perturb_samples),
                                   max_examples_per_batch=max_examples_per_batch, normalize=normalize)
    # the normalised form is a difference of products, which rounding can push just below 0
    return np.maximum(scores.detach().cpu().numpy().astype(np.float64).reshape(-1), 0.0)
