"""Forward passes in cache-sized pieces: the same numbers as one large pass.

On a CPU the generator runs a PyTorch model on at most ``CPU_PASS`` inputs at a time
(``ModelHandle.logits``, Xplique's ``TorchWrapper``, Captum's infidelity through
``ChunkedForward``), and the Captum defaults send 16 to 32 inputs a pass, because one core runs
the default network faster so. Those choices are only allowed where they leave the numbers alone:
logits and the maps of the gradient methods must be bit-identical to one large pass (measured on
this random SmallCNN for passes of 7 or more images; single images can differ in the last bit,
which is why the pass size is a fixed constant and not picked by the machine).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from generator.attribution import build_explainer, torch_handle
from generator.attribution.handles import CPU_PASS, GPU_PASS, ChunkedForward, pass_size
from generator.models.nets import SmallCNN


@pytest.fixture(scope="module")
def handle():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SmallCNN(width=8)
    return torch_handle("cnn", model, channels_last=True)


def _data(n: int = 70):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 2, n)


def test_the_pass_size_is_fixed_per_device_kind():
    assert pass_size(torch.device("cpu")) == CPU_PASS == 32
    assert pass_size(torch.device("cuda")) == GPU_PASS == pass_size(None)


def test_logits_do_not_depend_on_the_pass_size(handle):
    images, _ = _data()
    whole = handle.logits(images, batch_size=len(images))
    assert np.array_equal(handle.logits(images), whole)  # default: CPU_PASS on this CPU
    for size in (7, 16, 33):
        assert np.array_equal(handle.logits(images, batch_size=size), whole), size


def test_chunked_forward_gives_the_same_logits_and_input_gradients(handle):
    images, targets = _data()
    inputs = handle.prepare(images)
    chunked = ChunkedForward(handle.model, 16).eval()

    def gradient(model):
        x = inputs.clone().requires_grad_(True)
        model(x)[torch.arange(len(x)), torch.as_tensor(targets)].sum().backward()
        return model(x).detach(), x.grad

    (logits, grad), (logits_c, grad_c) = gradient(handle.model), gradient(chunked)
    assert torch.equal(logits, logits_c)
    assert torch.equal(grad, grad_c)


@pytest.mark.parametrize("method, key, sizes", [
    ("captum.saliency", "batch_size", (64, 16, 9)),
    ("captum.input_x_gradient", "batch_size", (64, 16, 9)),
    ("captum.guided_backprop", "batch_size", (64, 16, 9)),
    ("captum.gradcam", "batch_size", (64, 16, 9)),
    ("captum.occlusion", "perturbations_per_eval", (4, 2, 1)),
    ("captum.feature_ablation", "perturbations_per_eval", (4, 2, 1)),
])
def test_maps_that_do_not_depend_on_the_pass_size(handle, method, key, sizes):
    images, targets = _data(24)
    params = {"patch_size": 8, "stride": 8} if method == "captum.occlusion" else {}
    maps = [build_explainer(method, handle, {**params, key: size}).explain(images, targets) for size in sizes]
    for other, size in zip(maps[1:], sizes[1:]):
        assert np.array_equal(maps[0], other), (method, key, size)
