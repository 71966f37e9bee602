"""Tests of generator.attribution.captum_methods: known answers on a linear model, properties on SmallCNN.

The linear model f_k(x) = sum_{c,h,w} W[k, c, h, w] x[c, h, w] (x the normalised NCHW input) has
gradient W[k] everywhere, so saliency, input x gradient, Integrated Gradients, DeepLIFT, occlusion,
ablation and Kernel SHAP all have closed forms. Tolerances: 1e-5 relative (float32 sums of a few
thousand terms) unless stated.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from generator.attribution import build_explainer, torch_handle
from generator.attribution.base import baseline_inputs
from generator.attribution.handles import ModelHandle, exact_float32
from generator.models.nets import SmallCNN, preprocess

SIZE = 16
RTOL = 1e-5


class LinearNCHW(nn.Module):
    """f_k(x) = <W_k, x>: logits linear in the normalised input."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nchw,kchw->nk", x, self.weight)


@pytest.fixture(scope="module")
def linear() -> tuple[ModelHandle, np.ndarray]:
    weight = torch.from_numpy(np.random.default_rng(1).normal(size=(2, 3, SIZE, SIZE)).astype(np.float32))
    return torch_handle("linear", LinearNCHW(weight)), weight.numpy()


@pytest.fixture(scope="module")
def cnn() -> ModelHandle:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torch_handle("cnn", SmallCNN(width=4))


def _images(n: int, size: int = SIZE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


TARGETS = np.array([0, 1, 1, 0])


def _x(images: np.ndarray) -> np.ndarray:
    return preprocess(images).numpy()


def _close(actual: np.ndarray, expected: np.ndarray, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * np.abs(expected).max())


def test_saliency_is_abs_weight_max_over_channels(linear) -> None:
    handle, weight = linear
    maps = build_explainer("captum.saliency", handle).explain(_images(4), TARGETS)
    _close(maps, np.abs(weight[TARGETS]).max(axis=1))


def test_input_x_gradient_is_input_times_weight_summed(linear) -> None:
    handle, weight = linear
    images = _images(4)
    maps = build_explainer("captum.input_x_gradient", handle).explain(images, TARGETS)
    _close(maps, (_x(images) * weight[TARGETS]).sum(axis=1))


@pytest.mark.parametrize("rule", ["gausslegendre", "riemann_trapezoid"])
@pytest.mark.parametrize("baseline", ["black", "mean", "blur"])
def test_integrated_gradients_linear_known_answer(linear, rule: str, baseline: str) -> None:
    handle, weight = linear
    images = _images(4)
    explainer = build_explainer("captum.integrated_gradients", handle, {"rule": rule, "baseline": baseline,
                                                                         "steps": 8})
    maps = explainer.explain(images, TARGETS)
    # Captum's trapezoid weights are 1/n (halved at both ends), summing to (n-1)/n rather than 1:
    # its Riemann trapezoid IG is short of completeness by exactly 1/n on a linear model.
    factor = 1.0 if rule == "gausslegendre" else 7 / 8
    reference = baseline_inputs(handle, images, baseline).cpu().numpy()
    expected = ((_x(images) - reference) * weight[TARGETS]).sum(axis=1)
    _close(maps, factor * expected)
    logits, base_logits = handle.logits(images), np.einsum("nchw,kchw->nk", reference, weight)
    rows = np.arange(4)
    _close(maps.sum(axis=(1, 2)), factor * (logits[rows, TARGETS] - base_logits[rows, TARGETS]))


def test_black_and_mean_baselines_in_input_space(linear) -> None:
    handle, _ = linear
    images = _images(1)
    assert np.all(baseline_inputs(handle, images, "black").cpu().numpy() == -1.0)
    assert np.all(baseline_inputs(handle, images, "mean").cpu().numpy() == 0.0)


def test_deeplift_linear_equals_input_minus_baseline_times_weight(linear) -> None:
    handle, weight = linear
    images = _images(4)
    maps = build_explainer("captum.deeplift", handle).explain(images, TARGETS)
    _close(maps, ((_x(images) + 1.0) * weight[TARGETS]).sum(axis=1))


def _cell_sums(values: np.ndarray, cell: int) -> np.ndarray:
    """Sum of (N, H, W) values over each cell x cell block, broadcast back to the pixels of the block."""
    n, h, w = values.shape
    blocks = values.reshape(n, h // cell, cell, w // cell, cell).sum(axis=(2, 4))
    return np.repeat(np.repeat(blocks, cell, axis=1), cell, axis=2)


def test_occlusion_linear_non_overlapping_patches(linear) -> None:
    handle, weight = linear
    images = _images(4)
    maps = build_explainer("captum.occlusion", handle, {"patch_size": 4, "stride": 4}).explain(images, TARGETS)
    _close(maps, _cell_sums(((_x(images) + 1.0) * weight[TARGETS]).sum(axis=1), 4))


@pytest.mark.parametrize("name", ["captum.feature_ablation", "captum.kernel_shap"])
def test_ablation_and_kernel_shap_linear_on_grid(linear, name: str) -> None:
    handle, weight = linear
    images = _images(4)
    maps = build_explainer(name, handle, {"grid": 4}).explain(images, TARGETS)
    # a linear model is additive over the 16 cells: every Shapley value is the cell's contribution
    _close(maps, _cell_sums(((_x(images) + 1.0) * weight[TARGETS]).sum(axis=1), SIZE // 4), rtol=1e-4)


def test_integrated_gradients_completeness_on_cnn(cnn) -> None:
    images = _images(4, 32)
    rows = np.arange(4)
    delta = cnn.logits(images)[rows, TARGETS] - cnn.logits(np.zeros_like(images))[rows, TARGETS]

    def gap(steps: int) -> float:
        maps = build_explainer("captum.integrated_gradients", cnn, {"steps": steps}).explain(images, TARGETS)
        return float(np.abs(maps.sum(axis=(1, 2)) - delta).max() / np.abs(delta).max())

    coarse, fine = gap(8), gap(128)
    # ReLU and max-pool kinks limit the accuracy of quadrature: measured 6e-2 (16 steps), 8e-3 (128 steps)
    assert fine < 0.03
    assert fine < coarse / 2


@pytest.mark.parametrize("name, params", [
    ("captum.saliency", {}), ("captum.integrated_gradients", {"steps": 8}), ("captum.deeplift", {}),
    ("captum.occlusion", {"patch_size": 8, "stride": 8}), ("captum.gradcam", {}), ("captum.guided_gradcam", {}),
    ("captum.lime", {"samples": 20, "grid": 4}), ("captum.guided_backprop", {}),
])
def test_batched_equals_unbatched(cnn, name: str, params: dict) -> None:
    images, targets = _images(5, 32), np.array([0, 1, 1, 0, 1])
    one = build_explainer(name, cnn, {**params, "batch_size": 1}).explain(images, targets)
    many = build_explainer(name, cnn, {**params, "batch_size": 4}).explain(images, targets)
    assert one.shape == (5, 32, 32) and one.dtype == np.float32
    _close(many, one, rtol=1e-5)


def test_gradcam_matches_hand_computation(cnn) -> None:
    images = _images(4, 32)
    maps = build_explainer("captum.gradcam", cnn).explain(images, TARGETS)
    assert maps.shape == (4, 32, 32) and maps.min() >= 0.0 and maps.max() > 0.0
    activations = {}
    layer = dict(cnn.model.named_modules())["features.conv4"]
    hook = layer.register_forward_hook(lambda module, inputs, output: activations.update(a=output))
    try:
        with exact_float32():  # as the explainer (no TF32 on a GPU)
            logits = cnn.model(cnn.prepare(images).requires_grad_())  # the handle froze the weights
    finally:
        hook.remove()
    with exact_float32():
        grads = torch.autograd.grad(logits[np.arange(4), TARGETS].sum(), activations["a"])[0]
    cam = F.relu((grads.mean(dim=(2, 3), keepdim=True) * activations["a"]).sum(dim=1, keepdim=True))
    expected = F.interpolate(cam, size=(32, 32), mode="bilinear", align_corners=False)[:, 0].detach().cpu().numpy()
    _close(maps, expected)


def test_gradcam_on_another_layer(cnn) -> None:
    maps = build_explainer("captum.gradcam", cnn, {"layer": "features.conv2"}).explain(_images(2, 32), TARGETS[:2])
    assert maps.shape == (2, 32, 32) and maps.min() >= 0.0


@pytest.mark.parametrize("name, params", [
    ("captum.smoothgrad", {"samples": 4}), ("captum.gradient_shap", {"samples": 4}),
    ("captum.lime", {"samples": 20, "grid": 4}), ("captum.kernel_shap", {"samples": 20, "grid": 4}),
])
def test_stochastic_methods_are_seeded(cnn, name: str, params: dict) -> None:
    images = _images(2, 32)
    before, numpy_before = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    first = build_explainer(name, cnn, {**params, "seed": 7}).explain(images, TARGETS[:2])
    second = build_explainer(name, cnn, {**params, "seed": 7}).explain(images, TARGETS[:2])
    other = build_explainer(name, cnn, {**params, "seed": 8}).explain(images, TARGETS[:2])
    assert torch.equal(before, torch.random.get_rng_state())  # the caller's generators are untouched
    np.testing.assert_array_equal(numpy_before, np.random.get_state()[1])
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_unsigned_methods_are_non_negative(cnn) -> None:
    images = _images(2, 32)
    for name in ("captum.saliency", "captum.smoothgrad", "captum.gradcam"):
        assert build_explainer(name, cnn, {}).explain(images, TARGETS[:2]).min() >= 0.0


def test_iter_explain_streams_chunks(cnn) -> None:
    chunks = list(build_explainer("captum.saliency", cnn, {"batch_size": 2}).iter_explain(_images(5, 32),
                                                                                         np.zeros(5, int)))
    assert [len(chunk) for chunk in chunks] == [2, 2, 1]


def test_bad_targets_are_refused(cnn) -> None:
    from generator.errors import DataError

    explainer = build_explainer("captum.saliency", cnn)
    with pytest.raises(DataError, match="targets"):
        explainer.explain(_images(2, 32), np.array([0.0, 1.0]))
    with pytest.raises(DataError, match="targets"):
        explainer.explain(_images(2, 32), np.array([0]))
    with pytest.raises(DataError, match="2 outputs"):
        explainer.explain(_images(2, 32), np.array([0, 2]))


def test_float_pixels_give_the_maps_of_the_same_uint8_pixels(cnn) -> None:
    from generator.errors import DataError

    images = _images(2, 32)
    explainer = build_explainer("captum.integrated_gradients", cnn, {"steps": 4, "baseline": "blur"})
    np.testing.assert_array_equal(explainer.explain(images.astype(np.float32), TARGETS[:2]),
                                  explainer.explain(images, TARGETS[:2]))
    with pytest.raises(DataError, match=r"\[0, 255\]"):
        explainer.explain(images.astype(np.float32) * 2, TARGETS[:2])


def test_deeplift_runs_on_a_resnet_that_calls_one_relu_twice() -> None:
    """torchvision's ResNet blocks call their one ReLU twice, which Captum's DeepLIFT refuses ("a Module
    ReLU(inplace=True) ... used more than once"); each call gets its own copy, the same function."""
    import torchvision
    from captum.attr import DeepLift

    from generator.attribution.base import baseline_inputs
    from generator.attribution.captum_methods import one_module_per_call

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=2).eval()
    split = one_module_per_call(model)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), split(x))
    assert sum(1 for _ in split.modules()) == sum(1 for _ in model.modules()) + 8  # one more ReLU per block
    assert model.relu.inplace  # the model itself is left as it was
    handle = torch_handle("resnet", model, cam_layer="layer4")
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    targets = np.array([0, 1, 0])
    with pytest.raises(RuntimeError, match="used more than once"):  # what users met before
        DeepLift(model).attribute(handle.prepare(images), baselines=baseline_inputs(handle, images, "black"),
                                  target=torch.as_tensor(targets))
    maps = build_explainer("captum.deeplift", handle, {"baseline": "black"}).explain(images, targets)
    expected = DeepLift(split).attribute(handle.prepare(images), baselines=baseline_inputs(handle, images, "black"),
                                         target=torch.as_tensor(targets)).sum(dim=1).detach().numpy()
    assert np.isfinite(maps).all() and np.abs(maps).sum() > 0
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-7)
