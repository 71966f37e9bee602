"""Model-randomisation sanity check of Adebayo et al. 2018.

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim 2018, "Sanity Checks for
Saliency Maps" (NeurIPS): an explanation that stays the same when the model's
weights are replaced by random ones cannot be explaining the model. The
cascading test randomises the layers one after another from the output back
to the input, recomputes the maps after each step and measures how similar
they stay to the maps of the trained model.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from skimage.metrics import structural_similarity
from torch import nn

from generator.errors import ConfigError, DataError, ModelError
from generator.evaluation.agreement import row_spearman
from generator.evaluation.complexity import as_maps
from generator.evaluation.faithfulness import as_images, as_targets
from generator.evaluation.robustness import ExplainFn
from generator.evaluation.summary import summarise

__all__ = [
    "SANITY_COLUMNS",
    "cascading_randomisation",
    "parameterised_layers",
    "randomise_layer",
    "sanity_summary",
]

SANITY_COLUMNS: tuple[str, ...] = ("step", "layer", "image", "spearman", "ssim")


def parameterised_layers(model: nn.Module) -> list[str]:
    """Dotted names of the modules that own parameters, in registration order.

    For :class:`generator.models.nets.SmallCNN`: ``features.conv1``,
    ``features.bn1``, ..., ``features.conv4``, ``features.bn4``, ``classifier``.
    Registration order is taken as input-to-output order, which holds for
    sequential networks; pass ``layer_order`` explicitly otherwise.
    """
    return [name for name, module in model.named_modules()
            if name and any(True for _ in module.parameters(recurse=False))]


def randomise_layer(module: nn.Module, *, seed: int) -> None:
    """Re-initialise one module's own parameters in place, keeping its buffers.

    Calls the module's ``reset_parameters`` (PyTorch's default initialisation:
    Kaiming-uniform for convolutions and linear layers) with the global torch
    RNG seeded from ``seed`` inside :func:`torch.random.fork_rng`, so the
    caller's random state is untouched. Buffers are restored afterwards: for
    BatchNorm this means weight 1 and bias 0 (its default) while the running
    mean and variance learned in training are kept, so activations stay
    normalised as the downstream layers expect and only the learned
    scale and shift are destroyed.

    Parameters
    ----------
    module : nn.Module
        The layer to randomise (changed in place).
    seed : int
        Seed of the new weights.

    Raises
    ------
    ModelError
        If the module has no ``reset_parameters`` method.
    """
    if not hasattr(module, "reset_parameters"):
        raise ModelError(f"cannot randomise a {type(module).__name__} layer: it has no reset_parameters()")
    buffers = {name: buf.detach().clone() for name, buf in module.named_buffers(recurse=False)}
    cuda = sorted({p.device.index or 0 for p in module.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=cuda), torch.no_grad():
        torch.manual_seed(seed)
        module.reset_parameters()
        for name, value in buffers.items():
            getattr(module, name).copy_(value)


def _normalised(maps: np.ndarray) -> np.ndarray:
    """Min-max normalise each map to ``[0, 1]`` (a constant map becomes zeros)."""
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    return np.where(span > 0, (maps - low) / np.where(span > 0, span, 1.0), 0.0)


def _ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM per pair of ``[0, 1]`` maps; the window shrinks to the map (odd, >= 3), else NaN."""
    side = min(a.shape[1:])
    win = min(7, side if side % 2 else side - 1)
    if win < 3:
        return np.full(len(a), np.nan)
    return np.array([structural_similarity(x, y, data_range=1.0, win_size=win)
                     for x, y in zip(a, b, strict=True)])


def _similarity(step: int, layer: str, original: np.ndarray, maps: np.ndarray) -> pd.DataFrame:
    """Rows of :data:`SANITY_COLUMNS` comparing ``|maps|`` with the original ``|maps|``."""
    a, b = np.abs(original), np.abs(maps)
    return pd.DataFrame({"step": step, "layer": layer, "image": np.arange(len(a)),
                         "spearman": row_spearman(a.reshape(len(a), -1), b.reshape(len(b), -1)),
                         "ssim": _ssim(_normalised(a), _normalised(b))}, columns=list(SANITY_COLUMNS))


def _explain(factory: Callable[[nn.Module], ExplainFn], model: nn.Module, images: np.ndarray,
             targets: np.ndarray) -> np.ndarray:
    maps = as_maps(factory(model)(images, targets), name="explain_fn output")
    if maps.shape != images.shape[:3]:
        raise DataError(f"explain_fn must return maps of shape {images.shape[:3]}, got {maps.shape}")
    return maps


def _layer_order(model: nn.Module, layer_order: Sequence[str] | None) -> list[str]:
    """The layers to randomise, output first; refuse names without parameters."""
    available = parameterised_layers(model)
    order = list(reversed(available)) if layer_order is None else list(layer_order)
    unknown = [name for name in order if name not in available]
    if unknown or not order:
        raise ConfigError(f"layer_order {order!r} is not accepted: name layers with parameters "
                          f"among {available}")
    return order


def cascading_randomisation(model: nn.Module, explain_fn_factory: Callable[[nn.Module], ExplainFn],
                            images: np.ndarray, targets: np.ndarray, *,
                            layer_order: Sequence[str] | None = None, seed: int = 0) -> pd.DataFrame:
    """Cascading model-parameter randomisation test (Adebayo et al. 2018).

    A deep copy of ``model`` (in eval mode) is explained; then its layers are
    randomised cumulatively, one per step (see :func:`randomise_layer`; step
    ``k`` uses seed ``seed + k``), and the explanation is recomputed with a
    fresh ``explain_fn_factory(copy)`` after every step. ``model`` itself is
    never changed.

    Parameters
    ----------
    model : nn.Module
        The trained model (left untouched).
    explain_fn_factory : callable
        Model -> ``ExplainFn`` (float32 NHWC images in ``[0, 255]``, targets)
        -> maps ``(N, H, W)``.
    images : np.ndarray
        ``(N, H, W, 3)`` images, uint8 or float in ``[0, 255]``.
    targets : np.ndarray
        ``(N,)`` class explained, fixed across steps (as in the paper).
    layer_order : sequence of str, optional
        Dotted module names in the order they are randomised; by default every
        module with parameters, from the output back to the input
        (``classifier, features.bn4, features.conv4, ..., features.conv1``).
    seed : int
        Base seed of the random weights.

    Returns
    -------
    pandas.DataFrame
        Columns ``step`` (0 = original model), ``layer`` (randomised at this
        step, ``"none"`` at step 0), ``image`` (index), ``spearman`` (rank
        correlation of ``|map|`` with the original ``|map|``; NaN if either is
        constant) and ``ssim`` (structural similarity, skimage, of the ``|map|``
        min-max normalised to ``[0, 1]``, ``data_range=1``, 7-px window or the
        largest odd window that fits). Step 0 compares the original with itself.
    """
    images = as_images(images)
    targets = as_targets(targets, len(images))
    work = copy.deepcopy(model).eval()
    order = _layer_order(work, layer_order)
    modules = dict(work.named_modules())
    original = _explain(explain_fn_factory, work, images, targets)
    frames = [_similarity(0, "none", original, original)]
    for step, name in enumerate(order, start=1):
        randomise_layer(modules[name], seed=seed + step)
        frames.append(_similarity(step, name, original, _explain(explain_fn_factory, work, images, targets)))
    return pd.concat(frames, ignore_index=True)


def sanity_summary(df: pd.DataFrame, *, metric: str = "spearman", threshold: float = 0.5,
                   by: Sequence[str] = (), n_boot: int = 1000, seed: int = 0,
                   level: float = 0.95) -> pd.DataFrame:
    """Mean similarity per randomisation step with bootstrap intervals, and a verdict.

    Parameters
    ----------
    df : pandas.DataFrame
        Output of :func:`cascading_randomisation`, possibly several stacked
        with extra columns named in ``by`` (e.g. ``method``, ``model``).
    metric : str
        Similarity column the verdict rests on.
    threshold : float
        The explanation passes when the mean ``metric`` over images after the
        last step (full randomisation) is below this. The default 0.5 on the
        Spearman correlation of ``|maps|`` is this project's choice: halfway
        between no rank agreement and the near-1 similarity that the paper
        reports for model-insensitive maps (Guided Backprop). NaN (undefined
        similarity) does not pass.
    by : sequence of str
        Extra grouping columns; the verdict is given per group.
    n_boot, seed, level
        Bootstrap over images, as in :func:`generator.evaluation.summary.summarise`.

    Returns
    -------
    pandas.DataFrame
        Long format: ``*by, step, layer, metric, n, mean, ci_low, ci_high,
        passes``, one row per step and similarity column; ``passes`` is the
        group's verdict, repeated on each of its rows.
    """
    value_cols = [c for c in ("spearman", "ssim", "pearson_hog") if c in df.columns]
    if metric not in value_cols:
        raise ConfigError(f"metric = {metric!r} is not accepted: use one of {value_cols}")
    table = summarise(df, by=[*by, "step", "layer"], value_cols=value_cols, n_boot=n_boot, seed=seed,
                      level=level)
    rows = table[table["metric"] == metric]
    last = rows.loc[rows.groupby(list(by))["step"].idxmax()] if by else rows.loc[[rows["step"].idxmax()]]
    verdict = last.assign(passes=last["mean"] < threshold)
    if not by:
        return table.assign(passes=bool(verdict["passes"].iloc[0]))
    return table.merge(verdict[[*by, "passes"]], on=list(by), how="left")
