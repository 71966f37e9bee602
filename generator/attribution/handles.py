"""One object per audited model: the network, its framework, its layers and its input scaling.

A :class:`ModelHandle` is what every explainer receives. It hides the two
frameworks behind two calls: :meth:`ModelHandle.prepare` turns uint8 NHWC
images into the framework's input (a normalised NCHW tensor on the compute
device for PyTorch, a normalised NHWC float32 array for Keras) and
:meth:`ModelHandle.logits` runs the model without autograd.

TensorFlow is never imported here: a Keras handle only calls methods of the
Keras model it was given.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from generator.errors import ConfigError, ModelError
from generator.models.device import torch_device
from generator.models.nets import check_images, normalise, preprocess

__all__ = ["ModelHandle", "keras_handle", "torch_handle"]


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
        ``uint8 NHWC -> model input`` on the CPU (:func:`generator.models.nets.preprocess`
        for torch, :func:`generator.models.nets.normalise` for Keras).
    """

    name: str
    framework: Literal["torch", "keras"]
    model: Any
    layer_names: tuple[str, ...]
    cam_layer: str | None
    preprocessing: Callable[[np.ndarray], Any] = field(repr=False, compare=False)

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
            ``(N, H, W, 3)`` uint8 RGB.

        Returns
        -------
        torch.Tensor or np.ndarray
            Normalised float32 NCHW tensor on :attr:`device` (torch), or normalised
            float32 NHWC array (Keras).

        Raises
        ------
        DataError
            If the images are not ``(N, H, W, 3)`` uint8.
        """
        check_images(images)
        inputs = self.preprocessing(images)
        return inputs.to(self.device) if self.framework == "torch" else inputs

    def logits(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Return the model's logits for uint8 images, without autograd.

        Parameters
        ----------
        images : np.ndarray
            ``(N, H, W, 3)`` uint8 RGB.
        batch_size : int
            Images per forward pass (>= 1).

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
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        check_images(images)
        chunks = [self._forward(images[start:start + batch_size]) for start in range(0, len(images), batch_size)]
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def _forward(self, images: np.ndarray) -> np.ndarray:
        """Logits of one chunk as a NumPy array."""
        if self.framework == "torch":
            with torch.inference_mode():
                return self.model(self.prepare(images)).float().cpu().numpy()
        return np.asarray(self.model(self.prepare(images), training=False))


def torch_handle(name: str, model: nn.Module, *, cam_layer: str | None = None) -> ModelHandle:
    """Wrap a PyTorch classifier; it is put in eval mode and moved to the compute device.

    Parameters
    ----------
    name : str
        Model name used in captions.
    model : nn.Module
        Network taking :func:`generator.models.nets.preprocess` output and returning logits.
        Modified in place: ``model.eval().to(torch_device())``.
    cam_layer : str, optional
        Default CAM layer; defaults to ``model.cam_layer_name`` when the model has one
        (``"features.conv4"`` for :class:`~generator.models.nets.SmallCNN`).

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
    return ModelHandle(name, "torch", model.eval().to(torch_device()), layers, cam_layer, preprocess)


def keras_handle(name: str, model: Any, *, cam_layer: str | None = None) -> ModelHandle:
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
    return ModelHandle(name, "keras", model, layers, cam_layer, normalise)


def _check_layer(model_name: str, layer: str | None, layers: tuple[str, ...]) -> None:
    """Refuse a CAM layer the model does not have."""
    if layer is not None and layer not in layers:
        raise ConfigError(f"model {model_name!r} has no layer {layer!r}; its layers are {list(layers)}")
