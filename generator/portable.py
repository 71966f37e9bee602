"""Kernel choices that make CPU results the same bytes on every x86-64 machine with AVX2.

PyTorch's CPU results depend on the machine in three ways: ATen's vectorised kernels are
chosen by the instruction set (AVX2 or AVX-512 lanes sum in different orders), MKL picks its
matrix-multiply code by processor, and oneDNN picks convolution kernels by instruction set,
cache sizes and thread count. :func:`pin_kernels` (run when :mod:`generator` is imported,
before torch computes anything) fixes the first two for the whole process:

* ``ATEN_CPU_CAPABILITY=avx2``: ATen's AVX2 kernels, also on AVX-512 machines;
* ``MKL_CBWR=COMPATIBLE``: MKL's conditional numerical reproducibility, the branch that gives
  the same results on every x86-64 processor (Intel or AMD) for a given thread count;
* ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN's kernels capped at AVX2 (this narrows, but does not
  remove, oneDNN's dependence on the machine).

Training and the prediction of the built-in network additionally run with one intra-op thread
and without oneDNN (:func:`generator.models.device.portable_cpu`), so the trained weights and
the predictions are the same bytes whatever the CPU and its core count. A variable the user
has set is left as it is (that is how the tests simulate another CPU). The attribution maps
and their evaluation keep the fast default kernels: they agree across machines to about 1e-6
(relative), not bit for bit; the reproducibility page says so.

Both variables are read by torch lazily, on first use, so setting them after ``import torch``
works as long as no tensor operation ran before :mod:`generator` was imported;
:func:`kernel_state` reports what is really in force.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["PINNED", "TRAINING_THREADS", "cpu_facts", "kernel_state", "pin_kernels"]

PINNED: dict[str, str] = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "AVX2"}
#: Intra-op threads of training and of the built-in network's predictions (see the module docstring).
TRAINING_THREADS = 1


def cpu_flags() -> set[str]:
    """The instruction-set flags of the first CPU in ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def pin_kernels() -> dict[str, str]:
    """Set :data:`PINNED` in the environment where the user has not set them; return what was set.

    Nothing is set on a CPU without AVX2 and FMA (ATen would fall back to its default kernels
    there, and results are then not comparable with AVX2 machines anyway).
    """
    flags = cpu_flags()
    if platform.machine().lower() not in ("x86_64", "amd64") or not {"avx2", "fma"} <= flags:
        return {}
    done = {}
    for name, value in PINNED.items():
        if name not in os.environ:
            os.environ[name] = done[name] = value
    return done


def cpu_facts() -> dict[str, str]:
    """CPU model, vector extensions and core count, for the reproducibility page."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    flags = cpu_flags()
    vector = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return {"cpu": model or platform.processor() or platform.machine(), "vector_extensions": " ".join(vector),
            "cores": str(os.cpu_count() or 1)}


def kernel_state() -> dict[str, str]:
    """What torch really uses now: ATen's capability, MKL's reproducibility branch, the pinned variables."""
    import ctypes

    import torch

    state = {name: os.environ.get(name, "(unset)") for name in PINNED}
    state["aten_capability"] = torch.backends.cpu.get_cpu_capability()
    state["mkl_cbwr_branch"] = "unknown"
    library = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:  # MKL is linked into libtorch_cpu; its service call reports the branch in force (1 = AUTO)
        get = ctypes.CDLL(str(library)).mkl_serv_cbwr_get
    except (OSError, AttributeError):
        return state
    get.argtypes, get.restype = [ctypes.c_int], ctypes.c_int
    branch = get(1)
    state["mkl_cbwr_branch"] = {1: "AUTO (machine-dependent)"}.get(branch, f"{branch} (fixed)")
    return state
