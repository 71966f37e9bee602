"""One object per audited model: the network, its framework, its layers and its input scaling.

A :class:`ModelHandle` is what every explainer receives. It hides the two
frameworks behind two calls: :meth:`ModelHandle.prepare` turns uint8 NHWC
images into the framework's input (a normalised NCHW tensor on the compute
device for PyTorch, a normalised NHWC float32 array for Keras) and
:meth:`ModelHandle.logits` runs the model without autograd.

The input scaling is the project's own (:data:`generator.models.nets.MEAN` and
``STD``, 0.5 each) unless a :class:`Preprocessing` says otherwise: a user's model
brings its input size, channel means and deviations and channel order
(:mod:`generator.models.adapters` reads them from the configuration).

TensorFlow is never imported here: a Keras handle only calls methods of the
Keras model it was given.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from numbers import Real
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from generator.errors import ConfigError, DataError, ModelError
from generator.models.device import torch_device
from generator.models.nets import MEAN, STD, check_images, scale_batch, uint8_tensor

__all__ = ["CPU_PASS", "ChunkedForward", "ModelHandle", "Preprocessing", "RememberedForward", "check_pixels",
           "exact_float32", "keras_handle", "pass_size", "prepare_input", "torch_handle"]

#: Inputs per forward pass of a PyTorch model on the CPU when the caller does not say. One core runs the
#: default SmallCNN at 64 px 1.8 times faster in passes of 16 to 32 images than of 64 or more (their
#: activations no longer fit the caches: measured 1.1 against 2.0 ms an image, forward only, one thread;
#: two threads: 0.73 against 0.72 at 64 and 1.36 at 256). The pass size is fixed, not chosen by the machine,
#: because it can change the last bits of a logit (measured on the SmallCNN: bit-identical for passes of 7
#: to 100 images, 2e-8 apart for single images). A GPU takes 256 at once.
CPU_PASS = 32
GPU_PASS = 256


def pass_size(device: torch.device | None) -> int:
    """Inputs per forward pass on ``device`` (``None``: a Keras model, whose passes are TensorFlow's)."""
    return CPU_PASS if device is not None and device.type == "cpu" else GPU_PASS


class ChunkedForward(nn.Module):
    """``model`` called on at most ``size`` inputs at a time, the outputs concatenated.

    What a library that sends large batches (Xplique's ``TorchWrapper``, Captum's infidelity) runs
    instead of the model on a CPU: the same logits and gradients (bit for bit on the SmallCNN for
    passes of 7 images or more, see :data:`CPU_PASS`), in passes that fit the caches.
    """

    def __init__(self, model: nn.Module, size: int) -> None:
        super().__init__()
        self.model = model
        self.size = size

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) <= self.size:
            return self.model(inputs)
        return torch.cat([self.model(inputs[start:start + self.size]) for start in range(0, len(inputs), self.size)])


class RememberedForward:
    """``model``'s outputs without gradients, computed once per distinct input batch (keyed by its bytes and shape).

    For metrics that ask the same forward passes again for every method's maps (Captum's infidelity
    with seeded perturbations): the second method's passes are answered from memory, with the same
    bytes. The memory grows with the distinct batches; make one per model and image set.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._outputs: dict[bytes, torch.Tensor] = {}

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        import hashlib

        data = batch.detach().cpu().contiguous().numpy()
        key = hashlib.sha1(data.tobytes()).digest() + str(data.shape).encode()
        if key not in self._outputs:
            with torch.no_grad():
                self._outputs[key] = self.model(batch)
        return self._outputs[key]


@dataclass(frozen=True)
class Preprocessing:
    """How uint8 RGB pixels become a model's input.

    The input is ``x = (pixel / 255 - mean) / std`` per channel (``mean`` and ``std``
    in ``[0, 1]`` pixel units, given in RGB order), then the channels are reversed for a
    ``"BGR"`` model; NCHW for PyTorch, NHWC for Keras. A model trained on
    ``(pixel - m) / s`` in byte units takes ``mean = m / 255`` and ``std = s / 255``.

    Parameters
    ----------
    size : tuple of int
        ``(height, width)`` of the model's input, both >= 1.
    mean : tuple of float
        Per-channel (R, G, B) mean subtracted after scaling to ``[0, 1]``.
    std : tuple of float
        Per-channel (R, G, B) standard deviation, all > 0.
    channel_order : {"RGB", "BGR"}
        Channel order the model expects.

    Raises
    ------
    ConfigError
        If a value is out of range; the message names the ``preprocessing`` key.
    """

    size: tuple[int, int]
    mean: tuple[float, float, float] = MEAN
    std: tuple[float, float, float] = STD
    channel_order: Literal["RGB", "BGR"] = "RGB"

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", _size(self.size))
        object.__setattr__(self, "mean", _triple("mean", self.mean, positive=False))
        object.__setattr__(self, "std", _triple("std", self.std, positive=True))
        if self.channel_order not in ("RGB", "BGR"):
            raise ConfigError(f"preprocessing.channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")

    @classmethod
    def coerce(cls, value: Any) -> Preprocessing:
        """Return ``value`` as a :class:`Preprocessing` (any object with its four attributes, or a dict).

        Parameters
        ----------
        value : Preprocessing, dict or object
            ``size`` is required; ``mean``, ``std`` and ``channel_order`` default as in the class.

        Returns
        -------
        Preprocessing
            The validated settings.

        Raises
        ------
        ConfigError
            If ``size`` is missing or a value is out of range.
        """
        if isinstance(value, cls):
            return value
        read = value.get if isinstance(value, dict) else partial(getattr, value)
        if read("size", None) is None:
            raise ConfigError("preprocessing.size is required: the (height, width) of the model's input")
        fields = {key: read(key, None) for key in ("size", "mean", "std", "channel_order")}
        return cls(**{key: item for key, item in fields.items() if item is not None})


def _size(value: Any) -> tuple[int, int]:
    """Validate ``preprocessing.size``: two integers >= 1."""
    items = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(items) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in items):
        raise ConfigError(f"preprocessing.size must be [height, width], two integers >= 1, got {value!r}")
    return items


def _triple(key: str, value: Any, *, positive: bool) -> tuple[float, float, float]:
    """Validate ``preprocessing.mean`` / ``std``: three finite numbers (positive for std)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else ()
    ok = len(items) == 3 and all(isinstance(v, Real) and not isinstance(v, bool) and np.isfinite(v) for v in items)
    if not ok or (positive and min(items) <= 0):
        kind = "positive numbers" if positive else "finite numbers"
        raise ConfigError(f"preprocessing.{key} must be three {kind} (R, G, B) in [0, 1] pixel units, got {value!r}")
    return tuple(float(v) for v in items)


def prepare_input(images: np.ndarray, preprocessing: Preprocessing, framework: Literal["torch", "keras"],
                  device: torch.device | None = None) -> torch.Tensor | np.ndarray:
    """Turn pixels into a model's input with explicit :class:`Preprocessing` (no size check).

    Parameters
    ----------
    images : np.ndarray
        ``(N, H, W, 3)`` RGB, uint8 or float in ``[0, 255]``.
    preprocessing : Preprocessing
        Means, deviations and channel order.
    framework : {"torch", "keras"}
        ``"torch"``: float32 NCHW tensor on ``device`` (CPU by default); ``"keras"``: float32 NHWC array.
    device : torch.device, optional
        Where the torch tensor is computed.

    Returns
    -------
    torch.Tensor or np.ndarray
        The model input.

    Raises
    ------
    DataError
        If the images are not ``(N, H, W, 3)`` uint8 or float in ``[0, 255]``.
    """
    check_pixels(images)
    x = _scale_with(preprocessing, device or torch.device("cpu"), images)
    return x if framework == "torch" else np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())


def check_pixels(images: np.ndarray) -> None:
    """Refuse anything but RGB images in NHWC layout, uint8 or floating point in ``[0, 255]``.

    Float images let metrics explain slightly perturbed copies (e.g. max-sensitivity)
    without rounding them back to integers.

    Raises
    ------
    DataError
        If the array is not ``(N, H, W, 3)`` uint8, or float with values outside ``[0, 255]``.
    """
    if not isinstance(images, np.ndarray) or not np.issubdtype(images.dtype, np.floating):
        check_images(images)
        return
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] == 0:
        raise DataError(f"images must have shape (N, H, W, 3), got {images.shape}")
    if not np.isfinite(images).all() or images.min() < 0 or images.max() > 255:
        raise DataError("float images must hold finite pixel values in [0, 255] (uint8 scale)")


@contextmanager
def exact_float32() -> Iterator[None]:
    """Turn off TF32 in cuDNN convolutions and cuBLAS matmuls for the block (GPU maps then match the CPU's).

    The two PyTorch switches are global: they are restored on exit (do not explain in two threads at once).
    """
    previous = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = previous


@dataclass(frozen=True)
class ModelHandle:
    """A classifier that outputs logits, with what explainers need to know about it.

    Parameters
    ----------
    name : str
        Model name used in captions and reports (e.g. ``"fair"``).
    framework : {"torch", "keras"}
        Which library runs the model.
    model : Any
        A ``torch.nn.Module`` in eval mode on its compute device, or a ``keras.Model``;
        either maps the prepared input to logits ``(N, classes)``.
    layer_names : tuple of str
        Layers an explainer may target: dotted torch module names or Keras layer names.
    cam_layer : str or None
        Default layer of CAM methods (Grad-CAM), one of ``layer_names``.
    preprocessing : callable
        ``NHWC pixels -> model input``: for torch handles the normalisation of
        :func:`generator.models.nets.preprocess` done on the model's device (the uint8
        images travel, not float32), for Keras that of :func:`generator.models.nets.normalise`;
        both also accept float pixels in ``[0, 255]``. A :class:`Preprocessing` given to
        :func:`torch_handle` / :func:`keras_handle` replaces that scaling.
    input_size : tuple of int or None
        ``(height, width)`` the model takes when a :class:`Preprocessing` declared it;
        :meth:`prepare` then refuses images of another size. ``None``: any size.
    """

    name: str
    framework: Literal["torch", "keras"]
    model: Any
    layer_names: tuple[str, ...]
    cam_layer: str | None
    preprocessing: Callable[[np.ndarray], Any] = field(repr=False, compare=False)
    input_size: tuple[int, int] | None = None

    @property
    def device(self) -> torch.device | None:
        """The torch device holding the model's parameters (``None`` for Keras)."""
        if self.framework != "torch":
            return None
        return next((p.device for p in self.model.parameters()), torch.device("cpu"))

    def prepare(self, images: np.ndarray) -> Any:
        """Turn uint8 images into the model's input.

        Parameters
        ----------
        images : np.ndarray
            ``(N, H, W, 3)`` RGB, uint8 (or float in ``[0, 255]``).

        Returns
        -------
        torch.Tensor or np.ndarray
            Normalised float32 NCHW tensor on :attr:`device` (torch), or normalised
            float32 NHWC array (Keras).

        Raises
        ------
        DataError
            If the images are not ``(N, H, W, 3)`` uint8 or float in ``[0, 255]``, or not of
            :attr:`input_size`.
        """
        check_pixels(images)
        if self.input_size is not None and tuple(images.shape[1:3]) != self.input_size:
            height, width = self.input_size
            raise DataError(f"model {self.name!r} takes {height}x{width} images (its preprocessing.size), "
                            f"got {images.shape[1]}x{images.shape[2]}; resize the images or fix preprocessing.size")
        inputs = self.preprocessing(images)
        return inputs.to(self.device) if self.framework == "torch" else inputs

    def logits(self, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Return the model's logits for uint8 images, without autograd.

        Parameters
        ----------
        images : np.ndarray
            ``(N, H, W, 3)`` RGB, uint8 (or float in ``[0, 255]``).
        batch_size : int, optional
            Images per forward pass (>= 1); default :func:`pass_size` of the model's device.

        Returns
        -------
        np.ndarray
            Float32 logits ``(N, classes)``.

        Raises
        ------
        ConfigError
            If ``batch_size`` is not a positive integer.
        DataError
            If the images are not ``(N, H, W, 3)`` uint8.
        """
        if batch_size is None:
            batch_size = pass_size(self.device)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        check_pixels(images)
        chunks = [self._forward(images[start:start + batch_size]) for start in range(0, len(images), batch_size)]
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def _forward(self, images: np.ndarray) -> np.ndarray:
        """Logits of one chunk as a NumPy array."""
        if self.framework == "torch":
            with torch.inference_mode(), exact_float32():
                return self.model(self.prepare(images)).float().cpu().numpy()
        return np.asarray(self.model(self.prepare(images), training=False))


def torch_handle(name: str, model: nn.Module, *, cam_layer: str | None = None,
                 preprocessing: Preprocessing | None = None, channels_last: bool = False) -> ModelHandle:
    """Wrap a PyTorch classifier; it is put in eval mode and moved to the compute device.

    Parameters
    ----------
    name : str
        Model name used in captions.
    model : nn.Module
        Network taking :func:`generator.models.nets.preprocess` output and returning logits.
        Modified in place: ``model.eval().requires_grad_(False).to(torch_device())``. The parameters are
        frozen because attribution needs gradients with respect to inputs and layers only: autograd then
        skips every weight gradient (measured on the default SmallCNN at 64 px: Captum's GradientSHAP 23 %,
        saliency 21 % and Integrated Gradients 10 % faster), and the maps are bit-identical.
    cam_layer : str, optional
        Default CAM layer; defaults to ``model.cam_layer_name`` when the model has one
        (``"features.conv4"`` for :class:`~generator.models.nets.SmallCNN`).
    preprocessing : Preprocessing, optional
        The model's input scaling and size; ``None``: :func:`generator.models.nets.preprocess`, any size.
    channels_last : bool
        Keep the network's weights and its prepared inputs in channels-last memory (NHWC strides;
        the tensors are still indexed NCHW). Convolutions then run 1.2 to 1.5 times faster on a CPU
        with oneDNN (measured on 2 cores, forward and backward: the SmallCNN at 64 px 1.4 and 1.5,
        a ResNet-18 at 224 px 1.36 and 1.19). Only the order of sums changes: on a shipped default
        model and 16 evaluation faces, logits differ by 1e-6, saliency, Grad-CAM and DeepLIFT maps
        by under 1e-6 of their largest value, Integrated Gradients maps by up to 5e-4 of it (most
        likely a ReLU input near zero that changes sign at one of the path points), their per-image
        sums by 1e-5. Only for networks that do not ``view()`` a feature map (the built-in SmallCNN,
        torchvision models); a user's class may.

    Returns
    -------
    ModelHandle
        Handle with ``framework="torch"`` and every named submodule as a layer.

    Raises
    ------
    ModelError
        If ``model`` is not a ``torch.nn.Module``.
    ConfigError
        If ``cam_layer`` is not a module of the model.
    """
    if not isinstance(model, nn.Module):
        raise ModelError(f"torch_handle needs a torch.nn.Module, got {type(model).__name__}")
    layers = tuple(layer for layer, _ in model.named_modules() if layer)
    cam_layer = cam_layer if cam_layer is not None else getattr(model, "cam_layer_name", None)
    _check_layer(name, cam_layer, layers)
    device = torch_device()
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = model.eval().requires_grad_(False).to(device, memory_format=memory)
    size = None
    if preprocessing is None:
        scale = partial(_scale_on, device)
    else:
        preprocessing = Preprocessing.coerce(preprocessing)
        scale, size = partial(_scale_with, preprocessing, device), preprocessing.size
    return ModelHandle(name, "torch", model, layers, cam_layer, partial(_laid_out, memory, scale), size)


def keras_handle(name: str, model: Any, *, cam_layer: str | None = None,
                 preprocessing: Preprocessing | None = None) -> ModelHandle:
    """Wrap a Keras classifier such as the twin from :func:`generator.models.keras_twin.to_keras`.

    Parameters
    ----------
    name : str
        Model name used in captions.
    model : keras.Model
        Network taking :func:`generator.models.nets.normalise` output (NHWC) and returning logits.
    cam_layer : str, optional
        Default CAM layer; defaults to the last layer with convolution filters
        (``"features_conv4"`` for the SmallCNN twin), as Xplique's Grad-CAM does.
    preprocessing : Preprocessing, optional
        The model's input scaling and size; ``None``: :func:`generator.models.nets.normalise`, any size.

    Returns
    -------
    ModelHandle
        Handle with ``framework="keras"`` and every layer but the input as a layer.

    Raises
    ------
    ModelError
        If ``model`` has no Keras ``layers``.
    ConfigError
        If ``cam_layer`` is not a layer of the model.
    """
    if not hasattr(model, "layers") or not callable(model):
        raise ModelError(f"keras_handle needs a keras.Model, got {type(model).__name__}")
    layers = tuple(layer.name for layer in model.layers if type(layer).__name__ != "InputLayer")
    if cam_layer is None:
        cam_layer = next((layer.name for layer in reversed(model.layers) if hasattr(layer, "filters")), None)
    _check_layer(name, cam_layer, layers)
    if preprocessing is None:
        return ModelHandle(name, "keras", model, layers, cam_layer, _normalise)
    preprocessing = Preprocessing.coerce(preprocessing)
    scale = partial(prepare_input, preprocessing=preprocessing, framework="keras")
    return ModelHandle(name, "keras", model, layers, cam_layer, scale, preprocessing.size)


def _scale_on(device: torch.device, images: np.ndarray) -> torch.Tensor:
    """:func:`generator.models.nets.preprocess` computed on ``device`` (uint8 moved, then scaled), floats too."""
    pixels = uint8_tensor(images) if images.dtype == np.uint8 else torch.from_numpy(np.array(images, np.float32))
    return scale_batch(pixels.to(device))


def _scale_with(preprocessing: Preprocessing, device: torch.device, images: np.ndarray) -> torch.Tensor:
    """``(pixel / 255 - mean) / std`` on ``device`` as float32 NCHW, channels reversed for BGR models."""
    pixels = uint8_tensor(images) if images.dtype == np.uint8 else torch.from_numpy(np.array(images, np.float32))
    x = pixels.to(device).permute(0, 3, 1, 2).to(torch.float32) / 255.0
    mean = torch.tensor(preprocessing.mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std = torch.tensor(preprocessing.std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    x = (x - mean) / std
    return (x.flip(1) if preprocessing.channel_order == "BGR" else x).contiguous()


def _laid_out(memory: torch.memory_format, scale: Callable[[np.ndarray], torch.Tensor],
              images: np.ndarray) -> torch.Tensor:
    """The scaled input in the handle's memory layout (a no-op copy-free call when it already is)."""
    return scale(images).contiguous(memory_format=memory)


def _normalise(images: np.ndarray) -> np.ndarray:
    """:func:`generator.models.nets.normalise` (channels-last network input), for float pixels too."""
    return np.ascontiguousarray(_scale_on(torch.device("cpu"), images).permute(0, 2, 3, 1).numpy())


def _check_layer(model_name: str, layer: str | None, layers: tuple[str, ...]) -> None:
    """Refuse a CAM layer the model does not have."""
    if layer is not None and layer not in layers:
        raise ConfigError(f"model {model_name!r} has no layer {layer!r}; its layers are {list(layers)}")
