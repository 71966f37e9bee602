"""Pick the compute device for PyTorch and TensorFlow, and import TensorFlow safely.

The GPU is used when the framework sees one, the CPU otherwise. TensorFlow is
imported only inside functions (through :func:`import_tensorflow`), so
importing this module costs nothing on the PyTorch side.
"""
from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import torch

__all__ = ["import_tensorflow", "tf_device_name", "torch_device"]


def torch_device() -> torch.device:
    """Return the device PyTorch computations should run on.

    Returns
    -------
    torch.device
        ``cuda`` when a CUDA GPU is available, ``cpu`` otherwise.
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def import_tensorflow() -> ModuleType:
    """Import and return TensorFlow, loading Triton first when it is installed.

    With torch 2.14 (CUDA build, which ships Triton) and TensorFlow 2.20 in one
    process, importing Triton *after* TensorFlow crashes the interpreter with a
    segmentation fault. PyTorch imports Triton lazily from many places (building
    any ``torch.optim`` optimiser, ``torch.use_deterministic_algorithms``,
    ``torch.compile``), so a process that imports TensorFlow first and trains a
    torch model afterwards dies. Importing Triton before TensorFlow avoids it.
    Every module of the generator that needs TensorFlow should import it here.

    Returns
    -------
    ModuleType
        The ``tensorflow`` module.
    """
    if "tensorflow" not in sys.modules and importlib.util.find_spec("triton") is not None:
        import triton  # noqa: F401  (load order only; see the docstring)
    import tensorflow as tf

    return tf


def tf_device_name() -> str:
    """Return the TensorFlow device string computations should run on.

    Returns
    -------
    str
        ``"/GPU:0"`` when TensorFlow sees a GPU, ``"/CPU:0"`` otherwise.
    """
    tf = import_tensorflow()
    return "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"
