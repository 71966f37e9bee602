"""Keras twin of a trained :class:`SmallCNN`, so Xplique can explain the same network.

:func:`to_keras` rebuilds the torch network layer by layer in Keras 3
(``tf.keras`` of TensorFlow 2.20) with channels-last input and copies the
weights: convolution kernels ``OIHW -> HWIO``, linear weights transposed. The
twin takes the same normalised input as torch, channels last
(:func:`generator.models.nets.normalise`), and returns logits, no softmax.

Every Keras layer is named after its torch module with dots replaced by
underscores (``features.conv4`` -> ``features_conv4``, see
:func:`keras_layer_name`), so a Grad-CAM layer chosen by name maps across
frameworks.

TensorFlow is imported only inside the functions of this module (through
:func:`generator.models.device.import_tensorflow`, which loads Triton first so
that PyTorch training still works afterwards), so importing
:mod:`generator.models` never loads it.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from generator.errors import ModelError
from generator.models.device import import_tensorflow
from generator.models.nets import SmallCNN

if TYPE_CHECKING:  # pragma: no cover - for annotations only
    import keras

__all__ = ["embedder_to_keras", "keras_layer_name", "load_keras", "save_keras", "to_keras"]


def keras_layer_name(torch_name: str) -> str:
    """Return the name of the Keras layer that mirrors the torch module ``torch_name``.

    Parameters
    ----------
    torch_name : str
        Dotted module name as in ``dict(model.named_modules())``, e.g. ``"features.conv4"``.

    Returns
    -------
    str
        The same name with dots replaced by underscores, e.g. ``"features_conv4"``.

    Raises
    ------
    ModelError
        If the name is empty.
    """
    if not isinstance(torch_name, str) or not torch_name:
        raise ModelError(f"a torch layer name must be a non-empty string such as "
                         f"{SmallCNN.cam_layer_name!r}, got {torch_name!r}")
    return torch_name.replace(".", "_")


def to_keras(model: SmallCNN, image_size: int) -> keras.Model:
    """Build the Keras twin of a SmallCNN and copy its weights.

    Parameters
    ----------
    model : SmallCNN
        The torch network (any device, any mode; it is not modified).
    image_size : int
        Height and width of the square input (>= ``SmallCNN.min_input_size``).

    Returns
    -------
    keras.Model
        Functional model mapping normalised ``(N, image_size, image_size, 3)``
        float32 input to logits ``(N, num_classes)``; equal to the torch model in
        eval mode up to float32 rounding (about 1e-6).

    Raises
    ------
    ModelError
        If the model is not a SmallCNN, holds a module the twin cannot mirror,
        or ``image_size`` is too small.
    """
    if not isinstance(model, SmallCNN):
        raise ModelError(f"to_keras converts a SmallCNN only, got {type(model).__name__}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < SmallCNN.min_input_size:
        raise ModelError(f"image_size must be an integer >= {SmallCNN.min_input_size}, got {image_size!r}")
    keras = import_tensorflow().keras  # lazy: TensorFlow is loaded only when a twin is built
    inputs, x = _pooled_features(keras, model, image_size)
    outputs = _keras_layer(keras, "classifier", model.classifier)(x)
    twin = keras.Model(inputs, outputs, name="small_cnn")
    _copy_weights(model, twin)
    return twin


def embedder_to_keras(model: nn.Module, image_size: int, references: np.ndarray) -> keras.Model:
    """The Keras twin of a face embedder followed by its similarity to fixed references.

    ``model`` is a :class:`~generator.models.face_recognition.FaceEmbedder` (SmallCNN's convolution
    blocks, global average pool, ``projection`` and L2 normalisation); the twin maps normalised
    channels-last input to ``normalize(f(x)) @ references.T``, shape ``(N, K)``, the cosine similarity to
    each of the ``K`` unit-length ``references`` (see :mod:`generator.attribution.verification`).
    """
    if not (hasattr(model, "features") and isinstance(getattr(model, "projection", None), nn.Linear)):
        raise ModelError(f"embedder_to_keras converts a FaceEmbedder (features, gap, projection), got "
                         f"{type(model).__name__}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < SmallCNN.min_input_size:
        raise ModelError(f"image_size must be an integer >= {SmallCNN.min_input_size}, got {image_size!r}")
    references = np.asarray(references, dtype=np.float32)
    if references.ndim != 2 or references.shape[1] != model.projection.out_features or not len(references):
        raise ModelError(f"references must be (K, {model.projection.out_features}) embeddings, got shape "
                         f"{references.shape}")
    keras = import_tensorflow().keras
    inputs, x = _pooled_features(keras, model, image_size)
    x = _keras_layer(keras, "projection", model.projection)(x)
    x = keras.layers.UnitNormalization(axis=-1, name="unit")(x)
    similarity = keras.layers.Dense(len(references), use_bias=False, name="similarity")
    outputs = similarity(x)
    twin = keras.Model(inputs, outputs, name="face_similarity")
    _copy_weights(model, twin)
    unit = references / np.linalg.norm(references, axis=1, keepdims=True)
    similarity.set_weights([np.ascontiguousarray(unit.T)])
    return twin


def save_keras(model: keras.Model, path: Path) -> None:
    """Write a Keras model to a ``.keras`` file.

    Parameters
    ----------
    model : keras.Model
        The model, typically from :func:`to_keras`.
    path : Path
        Target file; its suffix must be ``.keras`` and its folder must exist.

    Raises
    ------
    ModelError
        If the suffix is wrong or the folder does not exist.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelError(f"a Keras model file must end in .keras, got {str(path)!r}")
    if not path.parent.is_dir():
        raise ModelError(f"cannot save the Keras model to {str(path)!r}: folder {str(path.parent)!r} does not exist")
    model.save(path)


def load_keras(path: Path) -> keras.Model:
    """Read a Keras model written by :func:`save_keras`.

    Parameters
    ----------
    path : Path
        A ``.keras`` file.

    Returns
    -------
    keras.Model
        The model, ready for inference.

    Raises
    ------
    ModelError
        If the file is missing or cannot be read as a Keras model.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Keras model file {str(path)!r} does not exist")
    keras = import_tensorflow().keras  # lazy: TensorFlow is loaded only when a twin is read
    try:
        return keras.models.load_model(path, compile=False)
    except (ValueError, OSError) as error:
        raise ModelError(f"cannot read Keras model file {str(path)!r}: {error}") from error


def _pooled_features(keras: Any, model: nn.Module, image_size: int) -> tuple[Any, Any]:
    """The Keras input and the globally pooled output of the twin of ``model.features``."""
    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="input")
    x = inputs
    for name, module in model.features.named_children():
        x = _keras_layer(keras, f"features.{name}", module)(x)
    return inputs, keras.layers.GlobalAveragePooling2D(name=keras_layer_name("gap"))(x)


def _keras_layer(keras: Any, torch_name: str, module: nn.Module) -> Any:
    """Return the Keras layer equivalent to one torch module, named after it."""
    name = keras_layer_name(torch_name)
    if isinstance(module, nn.Conv2d):
        _check_conv(torch_name, module)
        return keras.layers.Conv2D(module.out_channels, 3, padding="same", use_bias=module.bias is not None,
                                   name=name)
    if isinstance(module, nn.BatchNorm2d):
        return keras.layers.BatchNormalization(epsilon=module.eps, name=name)
    if isinstance(module, nn.ReLU):
        return keras.layers.ReLU(name=name)
    if isinstance(module, nn.MaxPool2d):
        _check_pool(torch_name, module)
        return keras.layers.MaxPooling2D(pool_size=2, strides=2, padding="valid", name=name)
    if isinstance(module, nn.Linear):
        return keras.layers.Dense(module.out_features, use_bias=module.bias is not None, name=name)
    raise ModelError(f"the Keras twin cannot mirror module {torch_name!r} of type {type(module).__name__}")


def _check_conv(torch_name: str, conv: nn.Conv2d) -> None:
    """Refuse convolutions that Keras ``padding="same"`` would not reproduce exactly."""
    expected = ((3, 3), (1, 1), (1, 1), (1, 1), 1)
    found = (conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups)
    if found != expected or conv.padding_mode != "zeros":
        raise ModelError(f"the Keras twin needs 3x3 stride-1 zero-padding-1 convolutions; "
                         f"{torch_name!r} has kernel/stride/padding/dilation/groups {found}")


def _check_pool(torch_name: str, pool: nn.MaxPool2d) -> None:
    """Refuse max-poolings other than non-overlapping 2x2 with floor rounding."""
    if (pool.kernel_size, pool.stride, pool.padding, pool.dilation, pool.ceil_mode) not in (
            (2, 2, 0, 1, False), (2, None, 0, 1, False)):
        raise ModelError(f"the Keras twin needs MaxPool2d(2) pooling; {torch_name!r} is {pool}")


def _copy_weights(model: SmallCNN, twin: Any) -> None:
    """Copy every torch weight into the Keras layer of the same name (kernels to channels-last)."""
    for torch_name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            twin.get_layer(keras_layer_name(torch_name)).set_weights(_keras_weights(module))
        elif isinstance(module, nn.BatchNorm2d):
            twin.get_layer(keras_layer_name(torch_name)).set_weights(_batchnorm_weights(module))


def _keras_weights(module: nn.Conv2d | nn.Linear) -> list[np.ndarray]:
    """Return ``[kernel, bias]`` of a torch layer in Keras layout: OIHW -> HWIO, (out, in) -> (in, out)."""
    weight = module.weight.detach().cpu().numpy()
    kernel = weight.transpose(2, 3, 1, 0) if weight.ndim == 4 else weight.T
    weights = [np.ascontiguousarray(kernel, dtype=np.float32)]
    if module.bias is not None:
        weights.append(module.bias.detach().cpu().numpy().astype(np.float32))
    return weights


def _batchnorm_weights(module: nn.BatchNorm2d) -> list[np.ndarray]:
    """Return ``[gamma, beta, moving_mean, moving_variance]`` of an eval-mode BatchNorm2d."""
    if not module.affine or not module.track_running_stats:
        raise ModelError("the Keras twin needs BatchNorm2d with affine=True and running statistics")
    parts = (module.weight, module.bias, module.running_mean, module.running_var)
    return [part.detach().cpu().numpy().astype(np.float32) for part in parts]
