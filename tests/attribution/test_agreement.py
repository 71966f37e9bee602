"""Captum and Xplique compute the same quantities up to known, exact conventions.

Integrated Gradients: Xplique integrates with the trapezoid rule on ``linspace(0, 1, n)`` (weights
1/(n-1), halved at the ends); Captum's ``riemann_trapezoid`` uses the same points with weights 1/n
(halved at the ends). Hence Xplique IG = Captum IG x n/(n-1), exactly in exact arithmetic.
Occlusion: Xplique sums the logit drops of the windows covering a pixel, Captum averages them,
hence Xplique = Captum x (number of windows covering the pixel).
The measured float32 gaps are printed with ``pytest -s`` and bounded below.
"""
from __future__ import annotations


import numpy as np
import pytest
import torch

from generator.attribution import build_explainer, keras_handle, torch_handle
from generator.models.device import import_tensorflow
from generator.models.keras_twin import to_keras
from generator.models.nets import SmallCNN

import_tensorflow()  # Triton before TensorFlow (see generator.models.device)

SIZE = 32
TARGETS = np.array([0, 1, 1, 0])


@pytest.fixture(scope="module")
def model() -> SmallCNN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return SmallCNN(width=4).eval()


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)


def _relative_gap(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


@pytest.mark.parametrize("steps", [8, 32])
@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("baseline", ["black", "mean"])
def test_xplique_ig_is_captum_trapezoid_times_n_over_n_minus_1(model, images, steps: int, framework: str,
                                                                baseline: str) -> None:
    torch_side = torch_handle("cnn", model)
    xplique_side = torch_side if framework == "torch" else keras_handle("twin", to_keras(model, SIZE))
    params = {"steps": steps, "baseline": baseline}
    captum = build_explainer("captum.integrated_gradients", torch_side,
                             {**params, "rule": "riemann_trapezoid"}).explain(images, TARGETS)
    xplique = build_explainer("xplique.integrated_gradients", xplique_side, params).explain(images, TARGETS)
    gap = _relative_gap(xplique, captum * steps / (steps - 1))
    print(f"IG {framework} {baseline} steps={steps}: max |xplique - captum*n/(n-1)| / max|.| = {gap:.2e}")
    # float32: measured 1.5e-7 to 1.8e-7 on both sides (TorchWrapper and the Keras twin give bit-identical
    # gradients on the CPU, both through oneDNN); REFERENCE.md reports about 1e-10 in float64
    assert gap < 1e-6
    # and the factor matters: without it the maps differ by 1/(n-1)
    assert _relative_gap(xplique, captum) > 0.5 / (steps - 1)


@pytest.mark.parametrize("patch, stride", [(8, 8), (8, 4)])
def test_xplique_occlusion_sums_what_captum_averages(model, images, patch: int, stride: int) -> None:
    handle = torch_handle("cnn", model)
    params = {"patch_size": patch, "stride": stride}
    captum = build_explainer("captum.occlusion", handle, params).explain(images, TARGETS)
    xplique = build_explainer("xplique.occlusion", handle, params).explain(images, TARGETS)
    starts = np.arange(0, SIZE - patch + 1, stride)
    cover = np.zeros(SIZE)
    for start in starts:
        cover[start:start + patch] += 1
    gap = _relative_gap(xplique, captum * np.outer(cover, cover))
    print(f"occlusion patch={patch} stride={stride}: relative gap {gap:.2e}")
    assert gap < 1e-5


def test_xplique_saliency_equals_captum_saliency_on_twin(model, images) -> None:
    captum = build_explainer("captum.saliency", torch_handle("cnn", model)).explain(images, TARGETS)
    xplique = build_explainer("xplique.saliency", keras_handle("twin", to_keras(model, SIZE))).explain(images,
                                                                                                    TARGETS)
    gap = _relative_gap(xplique, captum)
    print(f"saliency Keras twin vs torch: relative gap {gap:.2e}")
    assert gap < 1e-4  # two float32 implementations of the same network
