"""What every attribution method shares: its description, its parameters and its chunked call.

An attribution method is one :class:`Explainer` subclass holding a
:class:`MethodSpec` (name, paper, formula, defaults) and implementing
:meth:`Explainer._explain_chunk`. It is built once with its parameters and
budget, then called on many images (the Xplique style); the base class checks
the parameters, cuts the images into chunks of ``params["batch_size"]`` and
returns one float32 map per image, ``(N, H, W)``, at input resolution.

Baselines are named images in uint8 space (``"black"``, ``"mean"``, ``"blur"``)
mapped through the model's own preprocessing, so "black" means the same
picture for every model and framework.
"""
from __future__ import annotations

import difflib
import math
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from scipy import ndimage

from generator.attribution.handles import ModelHandle, check_pixels
from generator.errors import ConfigError, DataError

__all__ = [
    "BASELINES",
    "FORMULAS",
    "PAPERS",
    "Explainer",
    "MethodSpec",
    "UnsupportedMethod",
    "baseline_inputs",
    "closest",
    "grid_segments",
    "reduce_channels",
]

#: Named baselines (reference images) in words, as captions print them.
BASELINES: Mapping[str, str] = MappingProxyType({
    "black": "every pixel 0, before the model's own normalisation",
    "mean": "mid-grey, every pixel 127.5, before the model's own normalisation",
    "blur": "the image blurred by a Gaussian of sigma = side/8",
})

#: Papers the methods come from: key -> (short citation, URL).
PAPERS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "simonyan2014": (("Simonyan, Vedaldi & Zisserman, 2014, Deep Inside Convolutional Networks: Visualising "
                      "Image Classification Models and Saliency Maps"),
                     "https://arxiv.org/abs/1312.6034"),
    "shrikumar2016": (("Shrikumar, Greenside, Shcherbina & Kundaje, 2016, Not Just a Black Box: Learning "
                       "Important Features Through Propagating Activation Differences"),
                      "https://arxiv.org/abs/1605.01713"),
    "sundararajan2017": ("Sundararajan, Taly & Yan, 2017, Axiomatic Attribution for Deep Networks",
                         "https://arxiv.org/abs/1703.01365"),
    "lundberg2017": ("Lundberg & Lee, 2017, A Unified Approach to Interpreting Model Predictions",
                     "https://arxiv.org/abs/1705.07874"),
    "shrikumar2017": (("Shrikumar, Greenside & Kundaje, 2017, Learning Important Features Through Propagating "
                       "Activation Differences"),
                      "https://arxiv.org/abs/1704.02685"),
    "smilkov2017": ("Smilkov, Thorat, Kim, Viegas & Wattenberg, 2017, SmoothGrad: removing noise by adding noise",
                    "https://arxiv.org/abs/1706.03825"),
    "springenberg2015": (("Springenberg, Dosovitskiy, Brox & Riedmiller, 2015, Striving for Simplicity: The All "
                          "Convolutional Net"),
                         "https://arxiv.org/abs/1412.6806"),
    "selvaraju2017": (("Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra, 2017, Grad-CAM: Visual Explanations "
                       "from Deep Networks via Gradient-based Localization"),
                      "https://arxiv.org/abs/1610.02391"),
    "chattopadhay2018": (("Chattopadhay, Sarkar, Howlader & Balasubramanian, 2018, Grad-CAM++: Improved Visual "
                          "Explanations for Deep Convolutional Networks"),
                         "https://arxiv.org/abs/1710.11063"),
    "zeiler2014": ("Zeiler & Fergus, 2014, Visualizing and Understanding Convolutional Networks",
                   "https://arxiv.org/abs/1311.2901"),
    "covert2021": (("Covert, Lundberg & Lee, 2021, Explaining by Removing: A Unified Framework for Model "
                    "Explanation"),
                   "https://arxiv.org/abs/2011.14878"),
    "ribeiro2016": (("Ribeiro, Singh & Guestrin, 2016, \"Why Should I Trust You?\": Explaining the Predictions of "
                     "Any Classifier"),
                    "https://arxiv.org/abs/1602.04938"),
    "adebayo2018": (("Adebayo, Gilmer, Goodfellow & Kim, 2018, Local Explanation Methods for Deep Neural Networks "
                     "Lack Sensitivity to Parameter Values"),
                    "https://arxiv.org/abs/1810.03307"),
    "hooker2019": (("Hooker, Erhan, Kindermans & Kim, 2019, A Benchmark for Interpretability Methods in Deep "
                    "Neural Networks"),
                   "https://arxiv.org/abs/1806.10758"),
    "petsiuk2018": (("Petsiuk, Das & Saenko, 2018, RISE: Randomized Input Sampling for Explanation of Black-box "
                     "Models"),
                    "https://arxiv.org/abs/1806.07421"),
    "fel2021": (("Fel, Cadene, Chalvidal, Cord, Vigouroux & Serre, 2021, Look at the Variance! Efficient Black-box "
                 "Explanations with Sobol-based Sensitivity Analysis"),
                "https://arxiv.org/abs/2111.04138"),
    "novello2022": (("Novello, Fel & Vigouroux, 2022, Making Sense of Dependence: Efficient Black-box Explanations "
                     "Using Dependence Measure"),
                    "https://arxiv.org/abs/2206.06219"),
})

#: LaTeX formulas shared by the Captum and Xplique versions of a method.
FORMULAS: Mapping[str, str] = MappingProxyType({
    "saliency": r"M_{uv} = \max_c \left|\frac{\partial f_t(x)}{\partial x_{cuv}}\right|",
    "input_x_gradient": r"M_{uv} = \sum_c x_{cuv}\,\frac{\partial f_t(x)}{\partial x_{cuv}}",
    "integrated_gradients": (r"\phi_i = (x_i - x'_i)\int_0^1 \frac{\partial f_t(x' + \alpha (x - x'))}"
                             r"{\partial x_i}\,d\alpha"),
    "gradcam": (r"M = \mathrm{up}\Big(\mathrm{ReLU}\big(\sum_k \alpha_k A^k\big)\Big),\quad "
                r"\alpha_k = \frac{1}{Z}\sum_{u,v} \frac{\partial f_t}{\partial A^k_{uv}}"),
    "lime": (r"\phi = \arg\min_{w} \sum_{z} \pi_x(z)\,\big(f_t(h_x(z)) - w_0 - w^\top z\big)^2 + \alpha\|w\|^2,"
             r"\ z \in \{0,1\}^{S}"),
    "kernel_shap": (r"\phi = \arg\min_{w} \sum_{z} \frac{S-1}{\binom{S}{|z|}\,|z|\,(S-|z|)}"
                    r"\big(f_t(h_x(z)) - w_0 - w^\top z\big)^2"),
})

_RULES: Mapping[str, str] = MappingProxyType({
    "gausslegendre": "Gauss-Legendre", "riemann_trapezoid": "Riemann trapezoid",
    "riemann_left": "Riemann left", "riemann_right": "Riemann right", "riemann_middle": "Riemann middle",
})


class UnsupportedMethod(ConfigError):
    """A method cannot explain a model of this framework; the message says why."""


@dataclass(frozen=True)
class MethodSpec:
    """Description of one attribution method, enough to document it and to build it.

    Parameters
    ----------
    name : str
        Registry key, ``"<library>.<method>"``, e.g. ``"captum.integrated_gradients"``.
    library : {"captum", "xplique"}
        Library that computes the maps.
    family : str
        ``"gradient"``, ``"path"``, ``"perturbation"``, ``"cam"``, ``"surrogate"`` or ``"sampling"``.
    title : str
        Human-readable name, e.g. ``"Integrated Gradients"``.
    paper : str
        Short citation: authors, year, title.
    url : str
        Link to the paper.
    formula : str
        LaTeX formula of the attribution for the methods page.
    signed : bool
        Whether maps carry a sign (plot on a diverging scale centred at 0).
    frameworks : frozenset of str
        Handle frameworks the method supports.
    defaults : Mapping
        Every accepted parameter with its default value.
    channel_reduction : str
        How per-channel attributions become one map: ``"sum"``, ``"mean"``, ``"max"``,
        ``"max_abs"`` or ``"none"`` (the library already returns one channel).
    unsupported : Mapping
        Framework -> reason, for frameworks the method cannot explain.
    """

    name: str
    library: Literal["captum", "xplique"]
    family: str
    title: str
    paper: str
    url: str
    formula: str
    signed: bool
    frameworks: frozenset[str]
    defaults: Mapping[str, Any]
    channel_reduction: str
    unsupported: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))
        object.__setattr__(self, "unsupported", MappingProxyType(dict(self.unsupported)))
        object.__setattr__(self, "frameworks", frozenset(self.frameworks))


class Explainer(ABC):
    """An attribution method bound to one model and one set of parameters.

    Parameters
    ----------
    handle : ModelHandle
        The model to explain.
    params : Mapping, optional
        Overrides of ``spec.defaults``; unknown keys and bad values are refused.

    Raises
    ------
    UnsupportedMethod
        If the method cannot explain a model of ``handle.framework``.
    ConfigError
        If a parameter key is unknown or a value is not accepted.

    Notes
    -----
    Subclasses set :attr:`spec`, optionally :attr:`choices` (accepted strings per
    parameter) and :attr:`note` (a fixed fact for the caption), and implement
    :meth:`_explain_chunk`.
    """

    spec: ClassVar[MethodSpec]
    #: Accepted values of string parameters, e.g. ``{"baseline": ("black", "mean")}``.
    choices: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({})
    #: Fixed fact appended to the caption, e.g. "absolute gradient, max over channels".
    note: ClassVar[str] = ""

    def __init__(self, handle: ModelHandle, params: Mapping[str, Any] | None = None) -> None:
        check_framework(self.spec, handle)
        self.handle = handle
        self.params: dict[str, Any] = resolve_params(self.spec, handle, params or {}, self.choices)
        self._classes: int | None = None

    def explain(self, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Return one attribution map per image.

        Parameters
        ----------
        images : np.ndarray
            ``(N, H, W, 3)`` uint8 RGB (float pixels in ``[0, 255]`` are accepted too, e.g.
            perturbed copies for robustness metrics).
        targets : np.ndarray
            ``(N,)`` integer class whose logit is explained, per image.

        Returns
        -------
        np.ndarray
            Float32 maps ``(N, H, W)`` at input resolution, computed in chunks of
            ``params["batch_size"]`` images.

        Raises
        ------
        DataError
            If images or targets are not in the accepted form.
        """
        return np.concatenate(list(self.iter_explain(images, targets)))

    def iter_explain(self, images: np.ndarray, targets: np.ndarray) -> Iterator[np.ndarray]:
        """Yield the maps chunk by chunk (``(n, H, W)`` float32), so callers can stream them.

        Parameters and errors are those of :meth:`explain`.
        """
        targets = check_targets(images, targets)
        if targets.max() >= self._num_classes(images):
            raise DataError(f"targets must be class indices below the model's {self._classes} outputs, "
                            f"got {targets.max()}")
        size = self.params["batch_size"]
        for start in range(0, len(images), size):
            chunk = self._explain_chunk(images[start:start + size], targets[start:start + size])
            yield np.ascontiguousarray(chunk, dtype=np.float32)

    def caption_params(self) -> str:
        """Every parameter in words, e.g. ``"baseline black (...), 32 steps, Gauss-Legendre rule, batch 16"``."""
        words = ", ".join(_phrase(key, value) for key, value in self.params.items())
        return f"{words}; {self.note}" if self.note else words

    def _num_classes(self, images: np.ndarray) -> int:
        """Number of logits of the model, read once from a forward pass on one image."""
        if self._classes is None:
            self._classes = int(self.handle.logits(images[:1]).shape[1])
        return self._classes

    @abstractmethod
    def _explain_chunk(self, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Return maps ``(n, H, W)`` for one chunk of uint8 images and int64 targets."""


def check_framework(spec: MethodSpec, handle: ModelHandle) -> None:
    """Raise :class:`UnsupportedMethod` with the reason if ``spec`` cannot explain ``handle``."""
    if handle.framework not in spec.frameworks:
        reason = spec.unsupported.get(handle.framework, f"it supports {sorted(spec.frameworks)} models only")
        raise UnsupportedMethod(f"{spec.name} cannot explain {handle.framework} model {handle.name!r}: {reason}")


def check_targets(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Validate images and return the targets as an int64 array of one class per image."""
    check_pixels(images)
    array = np.asarray(targets)
    if array.ndim != 1 or len(array) != len(images) or not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"targets must be a 1-D integer array with one class per image ({len(images)}), "
                        f"got shape {array.shape} and dtype {array.dtype}")
    if array.size and array.min() < 0:
        raise DataError(f"targets must be class indices >= 0, got {array.min()}")
    return array.astype(np.int64)


def closest(word: str, names: tuple[str, ...] | list[str], n: int | None = None) -> list[str]:
    """Return ``names`` ordered by similarity to ``word`` (closest first), at most ``n``."""
    ranked = sorted(names, key=lambda name: (-difflib.SequenceMatcher(None, word, name).ratio(), name))
    return ranked if n is None else ranked[:n]


def resolve_params(spec: MethodSpec, handle: ModelHandle, params: Mapping[str, Any],
                   choices: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    """Merge ``params`` into ``spec.defaults`` and check every value; return the full dictionary."""
    unknown = [key for key in params if key not in spec.defaults]
    if unknown:
        raise ConfigError(f"{spec.name} has no parameter {unknown[0]!r}; accepted parameters are "
                          f"{list(spec.defaults)}")
    merged = {**spec.defaults, **params}
    if "layer" in merged and merged["layer"] is None:
        merged["layer"] = handle.cam_layer
    for key, value in merged.items():
        _check_value(spec.name, key, value, choices, handle)
    return merged


def _check_value(method: str, key: str, value: Any, choices: Mapping[str, tuple[str, ...]],
                 handle: ModelHandle) -> None:
    """Refuse one parameter value, naming the method, the key, the value and what is accepted."""
    if key == "layer":
        _check_layer(method, value, handle)
    elif key in choices:
        if value not in choices[key]:
            raise ConfigError(f"{method}: parameter {key!r} = {value!r} is not accepted; "
                              f"choose one of {list(choices[key])}")
    elif key in _CHECKS:
        accept, allowed = _CHECKS[key]
        if not accept(value):
            raise ConfigError(f"{method}: parameter {key!r} = {value!r} is not accepted; expected {allowed}")


def _check_layer(method: str, layer: Any, handle: ModelHandle) -> None:
    """Refuse a layer the model does not have, listing the five closest names."""
    if layer is None:
        raise ConfigError(f"{method}: model {handle.name!r} has no default CAM layer; set parameter 'layer' "
                          f"to one of {list(handle.layer_names)[:5]} ...")
    if layer not in handle.layer_names:
        raise ConfigError(f"{method}: model {handle.name!r} has no layer {layer!r}; closest layer names: "
                          f"{closest(str(layer), handle.layer_names, 5)}")


def _is_int(value: Any, low: int) -> bool:
    """Whether ``value`` is an integer (not a bool) of at least ``low``."""
    try:
        return not isinstance(value, bool) and operator.index(value) >= low
    except TypeError:
        return False


def _is_real(value: Any, low: float, high: float = math.inf, *, open_low: bool = False) -> bool:
    """Whether ``value`` is a finite real number in ``[low, high]`` (``(low, high]`` if ``open_low``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return (value > low if open_low else value >= low) and value <= high


_CHECKS: Mapping[str, tuple[Callable[[Any], bool], str]] = MappingProxyType({
    "batch_size": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "internal_batch_size": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "perturbations_per_eval": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "steps": (lambda v: _is_int(v, 2), "an integer >= 2"),
    "samples": (lambda v: _is_int(v, 1), "an integer >= 1"),
    "patch_size": (lambda v: _is_int(v, 1), "an integer >= 1 (pixels)"),
    "stride": (lambda v: _is_int(v, 1), "an integer >= 1 (pixels)"),
    "grid": (lambda v: _is_int(v, 1), "an integer >= 1 (cells per side)"),
    "grid_size": (lambda v: _is_int(v, 1), "an integer >= 1 (cells per side)"),
    "nb_design": (lambda v: _is_int(v, 2) and (v & (v - 1)) == 0, "a power of two >= 2"),
    "seed": (lambda v: _is_int(v, 0), "an integer >= 0"),
    "noise": (lambda v: _is_real(v, 0.0), "a real number >= 0 (normalised input units)"),
    "alpha": (lambda v: _is_real(v, 0.0), "a real number >= 0"),
    "kernel_width": (lambda v: _is_real(v, 0.0, open_low=True), "a real number > 0"),
    "preservation": (lambda v: _is_real(v, 0.0, 1.0, open_low=True), "a probability in (0, 1]"),
})

_PHRASES: Mapping[str, Callable[[Any], str]] = MappingProxyType({
    "baseline": lambda v: f"baseline {v} ({BASELINES.get(v, v)})",
    "steps": lambda v: f"{v} steps",
    "rule": lambda v: f"{_RULES.get(v, v)} rule",
    "batch_size": lambda v: f"batch {v}",
    "internal_batch_size": lambda v: f"internal batch {v}",
    "perturbations_per_eval": lambda v: f"{v} perturbations per forward pass",
    "samples": lambda v: f"{v} samples",
    "noise": lambda v: f"noise std {v:g} (normalised units)",
    "patch_size": lambda v: f"patch {v}x{v} px",
    "stride": lambda v: f"stride {v} px",
    "layer": lambda v: f"layer {v}",
    "grid": lambda v: f"superpixels on a {v}x{v} grid",
    "grid_size": lambda v: f"masks on a {v}x{v} grid",
    "nb_design": lambda v: f"{v} designs",
    "preservation": lambda v: f"keep probability {v:g}",
    "alpha": lambda v: f"regularisation alpha {v:g}",
    "kernel_width": lambda v: f"kernel width {v:g}",
    "perturbation": lambda v: f"perturbation {v}",
    "seed": lambda v: f"seed {v}",
})


def _phrase(key: str, value: Any) -> str:
    """One parameter in words."""
    phrase = _PHRASES.get(key)
    return phrase(value) if phrase is not None else f"{key.replace('_', ' ')} {value}"


def reduce_channels(attributions: np.ndarray, how: str, *, channel_axis: int = 1) -> np.ndarray:
    """Collapse the channel axis of attributions into one map per image.

    Parameters
    ----------
    attributions : np.ndarray
        ``(N, C, H, W)`` (``channel_axis=1``) or ``(N, H, W, C)`` (``channel_axis=-1``).
    how : str
        ``"sum"``, ``"mean"``, ``"max"``, ``"max_abs"`` (max of absolute values) or
        ``"none"`` (the single channel is taken as is).

    Returns
    -------
    np.ndarray
        Float32 ``(N, H, W)``.

    Raises
    ------
    ConfigError
        If ``how`` is not one of the above.
    """
    if how == "max_abs":
        attributions, how = np.abs(attributions), "max"
    reducers = {"sum": np.sum, "mean": np.mean, "max": np.max}
    if how == "none":
        return np.take(attributions, 0, axis=channel_axis).astype(np.float32, copy=False)
    if how not in reducers:
        raise ConfigError(f"channel reduction {how!r} is not one of {[*reducers, 'max_abs', 'none']}")
    return reducers[how](attributions, axis=channel_axis).astype(np.float32, copy=False)


def grid_segments(height: int, width: int, cells: int) -> np.ndarray:
    """Label each pixel with its cell of a ``cells x cells`` grid (deterministic superpixels).

    Parameters
    ----------
    height, width : int
        Image size in pixels.
    cells : int
        Cells per side (clipped to the image size).

    Returns
    -------
    np.ndarray
        int64 ``(height, width)`` labels ``0 .. rows*cols - 1``, row-major.
    """
    rows = np.arange(height) * min(cells, height) // height
    cols = np.arange(width) * min(cells, width) // width
    return rows[:, None] * min(cells, width) + cols[None, :]


def baseline_inputs(handle: ModelHandle, images: np.ndarray, kind: str) -> Any:
    """Return the baseline of each image in the model's input space.

    Parameters
    ----------
    handle : ModelHandle
        Model whose preprocessing maps uint8 pixels to its input.
    images : np.ndarray
        ``(N, H, W, 3)`` images being explained (uint8, or float in ``[0, 255]``).
    kind : {"black", "mean", "blur"}
        ``black``: every pixel 0; ``mean``: the midpoint of the prepared black and white
        images (pixel 127.5, i.e. 0 with the default normalisation); ``blur``: each image
        blurred by a Gaussian of sigma ``max(H, W) / 8`` (float pixels, not rounded).

    Returns
    -------
    torch.Tensor or np.ndarray
        Prepared baselines, same shape and framework as ``handle.prepare(images)``.

    Raises
    ------
    ConfigError
        If ``kind`` is not a known baseline.
    """
    if kind == "black":
        return handle.prepare(np.zeros_like(images))
    if kind == "mean":
        return (handle.prepare(np.zeros_like(images)) + handle.prepare(np.full_like(images, 255))) / 2
    if kind == "blur":
        sigma = max(images.shape[1:3]) / 8
        return handle.prepare(ndimage.gaussian_filter(images.astype(np.float32), sigma=(0, sigma, sigma, 0),
                                                      mode="nearest"))
    raise ConfigError(f"unknown baseline {kind!r}; choose one of {list(BASELINES)}")


def baseline_pixel(handle: ModelHandle, kind: str) -> np.ndarray:
    """Return the prepared value of a uniform baseline as one value per channel, ``(C,)`` float32.

    Raises
    ------
    ConfigError
        If ``kind`` is not a uniform baseline (``"black"`` or ``"mean"``).
    """
    if kind not in ("black", "mean"):
        raise ConfigError(f"baseline {kind!r} is not one colour; choose 'black' or 'mean'")
    height, width = handle.input_size or (1, 1)  # a handle may refuse other sizes
    inputs = baseline_inputs(handle, np.zeros((1, height, width, 3), dtype=np.uint8), kind)
    if isinstance(inputs, torch.Tensor):
        return inputs.detach().cpu().numpy()[0, :, 0, 0].astype(np.float32)
    return np.asarray(inputs, dtype=np.float32)[0, 0, 0, :]
