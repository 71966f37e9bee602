"""The layers of a loaded model, with their output shapes: where a Grad-CAM layer can be chosen.

:func:`list_layers` runs one probe image of the model's input size through a
PyTorch model with forward hooks (so the shapes are those of a real forward
pass, in ``(channels, height, width)`` order) or reads the symbolic output
shapes of a Keras model's layers (``(height, width, channels)``, as Keras
reports them). A layer whose output is 4-D with the batch axis is a Grad-CAM
candidate. :func:`format_layers` prints the table for a command line.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from generator.attribution.handles import Preprocessing, prepare_input
from generator.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover - for annotations only
    from generator.models.adapters import LoadedModel

__all__ = ["COLUMNS", "format_layers", "layer_shapes", "list_layers"]

#: Columns of :func:`list_layers`.
COLUMNS: tuple[str, ...] = ("name", "type", "output_shape", "parameters", "cam_candidate")

#: Output shape of a layer without the batch axis (``None`` for an unknown size).
Shape = tuple[int | None, ...]


def list_layers(loaded: LoadedModel) -> pd.DataFrame:
    """Return one row per layer of a loaded model.

    Parameters
    ----------
    loaded : LoadedModel
        A model from :func:`generator.models.adapters.load_model`.

    Returns
    -------
    pd.DataFrame
        Columns ``name`` (the name ``cam_layer`` takes), ``type`` (class name),
        ``output_shape`` (e.g. ``"16x32x32"``, without the batch axis; ``""`` for a
        torch module that did not run), ``parameters`` (weights held by the layer and
        its sub-layers) and ``cam_candidate`` (the output is a 4-D feature map).
        Torch modules are in ``named_modules`` order, Keras layers in ``model.layers`` order.

    Raises
    ------
    ModelError
        If the framework is neither ``"torch"`` nor ``"keras"``.
    """
    shapes = layer_shapes(loaded.framework, loaded.model, loaded.preprocessing)
    rows = [_row(name, layer, shapes.get(name)) for name, layer in _named_layers(loaded.framework, loaded.model)]
    return pd.DataFrame(rows, columns=list(COLUMNS))


def layer_shapes(framework: Literal["torch", "keras"], model: Any,
                 preprocessing: Preprocessing) -> dict[str, Shape | None]:
    """Return each layer's output shape without the batch axis (``None``: not one tensor).

    Parameters
    ----------
    framework : {"torch", "keras"}
        Which library runs the model.
    model : nn.Module or keras.Model
        The network (not modified: the torch hooks are removed afterwards).
    preprocessing : Preprocessing
        Gives the probe's input size and scaling.

    Returns
    -------
    dict
        Layer name -> shape. Torch: the modules that ran, in the order they first
        returned (children before their container); Keras: every layer but the input.

    Raises
    ------
    ModelError
        If the framework is neither ``"torch"`` nor ``"keras"``.
    """
    if framework == "torch":
        return _torch_shapes(model, preprocessing)
    if framework == "keras":
        return {name: _keras_shape(layer) for name, layer in _named_layers(framework, model)}
    raise ModelError(f"framework must be 'torch' or 'keras', got {framework!r}")


def format_layers(frame: pd.DataFrame) -> str:
    """Render :func:`list_layers` as a plain-text table (Grad-CAM candidates marked ``yes``).

    Parameters
    ----------
    frame : pd.DataFrame
        Output of :func:`list_layers`.

    Returns
    -------
    str
        Aligned columns, one line per layer, and a last line with the candidate count.

    Raises
    ------
    ModelError
        If a column of :data:`COLUMNS` is missing.
    """
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise ModelError(f"format_layers needs the columns {list(COLUMNS)}; missing {missing}")
    shown = frame.loc[:, list(COLUMNS)].assign(cam_candidate=frame["cam_candidate"].map({True: "yes", False: ""}))
    table = shown.to_string(index=False) if len(shown) else "(no layers)"
    return f"{table}\n{int(frame['cam_candidate'].sum())} of {len(frame)} layers can be a cam_layer (4-D output)"


def _named_layers(framework: str, model: Any) -> list[tuple[str, Any]]:
    """``(name, layer)`` pairs: dotted torch submodules (not the root), or Keras layers but the input."""
    if framework == "torch":
        return [(name, module) for name, module in model.named_modules() if name]
    return [(layer.name, layer) for layer in model.layers if type(layer).__name__ != "InputLayer"]


def _row(name: str, layer: Any, shape: Shape | None) -> dict[str, Any]:
    """One table row."""
    return {"name": name, "type": type(layer).__name__, "output_shape": _shape_text(shape),
            "parameters": _parameters(layer), "cam_candidate": shape is not None and len(shape) == 3}


def _shape_text(shape: Shape | None) -> str:
    """``(16, 32, 32) -> "16x32x32"``; unknown sizes as ``?``."""
    return "" if shape is None else "x".join("?" if size is None else str(size) for size in shape)


def _parameters(layer: Any) -> int:
    """Number of weights of a torch module or Keras layer, sub-layers included."""
    if isinstance(layer, nn.Module):
        return int(sum(parameter.numel() for parameter in layer.parameters()))
    try:
        return int(layer.count_params())
    except ValueError:  # a Keras layer that was never built holds no weights yet
        return 0


def _torch_shapes(model: nn.Module, preprocessing: Preprocessing) -> dict[str, Shape | None]:
    """Run one zero image through the model with a forward hook on every submodule."""
    shapes: dict[str, Shape | None] = {}

    def recorder(name: str):
        def record(_module: nn.Module, _inputs: Any, output: Any) -> None:
            shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else None
            shapes.setdefault(name, shape)
        return record

    hooks = [module.register_forward_hook(recorder(name)) for name, module in model.named_modules() if name]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    probe = np.zeros((1, *preprocessing.size, 3), np.uint8)
    try:
        with torch.no_grad():
            model(prepare_input(probe, preprocessing, "torch", device))
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


def _keras_shape(layer: Any) -> Shape | None:
    """A Keras layer's symbolic output shape without the batch axis (``None`` if it has several)."""
    try:
        output = layer.output
    except (AttributeError, ValueError):  # a layer never called, or called more than once
        return None
    return tuple(output.shape[1:]) if hasattr(output, "shape") else None
