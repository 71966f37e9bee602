"""Pick the compute device for PyTorch and TensorFlow, and import TensorFlow safely.

The GPU is used when the framework sees one, the CPU otherwise. TensorFlow is
imported only inside functions (through :func:`import_tensorflow`), so
importing this module costs nothing on the PyTorch side.
"""
from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import torch

from generator.portable import TRAINING_THREADS

__all__ = ["import_tensorflow", "portable_cpu", "tf_device_name", "torch_device"]


def torch_device() -> torch.device:
    """Return the device PyTorch computations should run on.

    Returns
    -------
    torch.device
        ``cuda`` when a CUDA GPU is available, ``cpu`` otherwise.
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def portable_cpu() -> Iterator[None]:
    """Run the block with one intra-op thread and without oneDNN, then restore the caller's settings.

    With the kernels pinned by :mod:`generator.portable`, what remains machine-dependent on the
    CPU is the thread count (it changes how MKL and ATen split sums) and oneDNN (it picks
    convolution kernels by instruction set and cache sizes). Without oneDNN, and with NNPACK
    switched off too (it sizes its convolution blocks by the CPU it finds; with it, an Intel Xeon
    with AVX-512 trained other weights than the AMD EPYC whose hashes
    ``tests/models/test_cross_cpu.py`` had recorded), convolutions run through ATen's own im2col and
    MKL in its reproducible mode, forward and backward, whose results then depend only on the code
    (tested by simulating other CPUs on one). A GPU is not affected.
    """
    threads, onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(TRAINING_THREADS)
    torch.backends.mkldnn.enabled = False
    try:
        with torch.backends.nnpack.flags(enabled=False):
            yield
    finally:
        torch.backends.mkldnn.enabled = onednn
        torch.set_num_threads(threads)


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
