"""Pick the compute device for PyTorch and TensorFlow.

The GPU is used when the framework sees one, the CPU otherwise. TensorFlow is
imported only inside :func:`tf_device_name`, so importing this module costs
nothing on the PyTorch side.
"""
from __future__ import annotations

import torch

__all__ = ["torch_device", "tf_device_name"]


def torch_device() -> torch.device:
    """Return the device PyTorch computations should run on.

    Returns
    -------
    torch.device
        ``cuda`` when a CUDA GPU is available, ``cpu`` otherwise.
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def tf_device_name() -> str:
    """Return the TensorFlow device string computations should run on.

    Returns
    -------
    str
        ``"/GPU:0"`` when TensorFlow sees a GPU, ``"/CPU:0"`` otherwise.
    """
    import tensorflow as tf  # lazy: keep TensorFlow out of PyTorch-only runs

    return "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"
