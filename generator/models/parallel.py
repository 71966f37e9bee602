"""Inference with the portable CPU kernels on every core, bit-identical to the serial run.

The portable kernels (:func:`generator.models.device.portable_cpu`) run each operation on one
thread, so that results do not depend on the machine's core count; on a 2-core machine that leaves
half of it idle while the face-recognition models embed thousands of faces. :func:`embed_batches`
keeps exactly the batches of :func:`generator.models.face_recognition.embed` (the same images in
the same passes, so every number is the one the serial run gives) and hands whole batches to a
few Python threads: each operation still runs on one thread, and PyTorch releases the interpreter
lock inside it, so the threads run on different cores. The portable settings are entered once,
in the calling thread, for all of them (they are process-wide); a GPU gets the serial loop.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn

from generator.models.nets import check_images, scale_batch, uint8_tensor
from generator.models.train import _on_device_for_inference

__all__ = ["embed_batches", "inference_threads"]


def inference_threads() -> int:
    """Threads for :func:`embed_batches`: the cores this process may use, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def embed_batches(model: nn.Module, images: np.ndarray, batch_size: int = 256, threads: int | None = None,
                  min_input_size: int = 16) -> np.ndarray:
    """``model``'s float32 outputs for uint8 ``images``, in passes of ``batch_size``, on ``threads`` threads.

    Equal bit for bit to running the passes one after the other (tested), whatever ``threads``.
    """
    check_images(images, name="images", min_size=min_input_size)
    tensor = uint8_tensor(images)
    starts = list(range(0, len(tensor), batch_size))
    threads = inference_threads() if threads is None else max(1, int(threads))
    with _on_device_for_inference(model) as device:
        def run(start: int) -> torch.Tensor:
            with torch.inference_mode():  # thread-local: each worker thread enters it itself
                return model(scale_batch(tensor[start:start + batch_size].to(device))).to(
                    device="cpu", dtype=torch.float32)

        if device.type != "cpu" or threads == 1 or len(starts) == 1:
            chunks = [run(start) for start in starts]
        else:
            with ThreadPoolExecutor(threads) as pool:
                chunks = list(pool.map(run, starts))
    return torch.cat(chunks).numpy()
