"""Channels-last handles (the built-in network's and torchvision models'): the same maps, faster.

:func:`generator.attribution.handles.torch_handle` with ``channels_last=True`` keeps the weights
and the prepared inputs in NHWC memory. Only the kernels change, so every method's maps must
equal those of the default layout up to the order of float32 sums. Tolerance: the largest
difference at most 1e-4 of the map's largest magnitude (on this small random network; on the
trained default model Integrated Gradients reaches 5e-4, most likely where a ReLU input near
zero changes sign at a path point; see torch_handle's docstring).
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torchvision

from generator.attribution import available, build_explainer, torch_handle
from generator.models.nets import SmallCNN

SIZE = 32
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def pair():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SmallCNN(width=4)
    return torch_handle("cnn", copy.deepcopy(model)), torch_handle("cnn", copy.deepcopy(model), channels_last=True)


def _images(n: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def test_the_handle_lays_out_weights_and_inputs_channels_last(pair):
    default, fast = pair
    assert fast.model.features.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    assert not default.model.features.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    x = fast.prepare(_images())
    assert x.shape == (3, 3, SIZE, SIZE) and x.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(x.numpy(), default.prepare(_images()).numpy())  # same values, other strides
    np.testing.assert_allclose(fast.logits(_images()), default.logits(_images()), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", available("torch"))
def test_every_torch_method_gives_the_same_maps(pair, method):
    default, fast = pair
    images, targets = _images(), np.array([0, 1, 1])
    expected = build_explainer(method, default).explain(images, targets)
    actual = build_explainer(method, fast).explain(images, targets)
    scale = max(float(np.abs(expected).max()), 1e-12)
    assert float(np.abs(actual - expected).max()) <= TOLERANCE * scale, method


def test_torchvision_models_are_loaded_channels_last(tmp_path):
    from types import SimpleNamespace

    from generator.models.adapters import load_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torchvision.models.resnet18(num_classes=2)
    torch.save(net.state_dict(), tmp_path / "resnet.pt")
    spec = SimpleNamespace(name="r18", kind="torchvision", path=tmp_path / "resnet.pt", architecture="resnet18",
                           num_classes=2, preprocessing={"size": [SIZE, SIZE], "mean": [0.5] * 3, "std": [0.5] * 3})
    loaded = load_model(spec)
    handle = loaded.handle()
    assert loaded.channels_last and handle.model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    reference = torch_handle("r18", copy.deepcopy(loaded.model), preprocessing=loaded.preprocessing)
    np.testing.assert_allclose(handle.logits(_images()), reference.logits(_images()), rtol=1e-4, atol=1e-5)
    maps = build_explainer("captum.integrated_gradients", handle).explain(_images(), np.array([0, 1, 0]))
    expected = build_explainer("captum.integrated_gradients", reference).explain(_images(), np.array([0, 1, 0]))
    assert float(np.abs(maps - expected).max()) <= TOLERANCE * float(np.abs(expected).max())
