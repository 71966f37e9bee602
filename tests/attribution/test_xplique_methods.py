"""Tests of generator.attribution.xplique_methods on the Keras twin and on PyTorch through TorchWrapper.

One tiny SmallCNN (width 4, 32 px, random weights) and its Keras twin (same weights, equal to
about 1e-6) are explained by every Xplique method with a small budget. Cross-library checks use
the same torch weights on both sides.
"""
from __future__ import annotations


import numpy as np
import pytest
import torch
from captum.attr import LayerGradCam

from generator.attribution import (
    UnsupportedMethod,
    available,
    build_explainer,
    keras_handle,
    torch_handle,
)
from generator.attribution.handles import ModelHandle
from generator.models.device import import_tensorflow
from generator.models.keras_twin import to_keras
from generator.models.nets import SmallCNN, preprocess

tf = import_tensorflow()  # Triton before TensorFlow (see generator.models.device)

SIZE = 32
TARGETS = np.array([0, 1, 1])
FAST = {  # small budgets so the whole file runs in seconds
    "xplique.integrated_gradients": {"steps": 8},
    "xplique.smoothgrad": {"samples": 4}, "xplique.vargrad": {"samples": 4}, "xplique.squaregrad": {"samples": 4},
    "xplique.occlusion": {"patch_size": 8, "stride": 8}, "xplique.rise": {"samples": 64},
    "xplique.lime": {"samples": 30, "grid": 4}, "xplique.kernel_shap": {"samples": 30, "grid": 4},
    "xplique.sobol": {"grid_size": 4, "nb_design": 8}, "xplique.hsic": {"grid_size": 4, "nb_design": 32},
}


@pytest.fixture(scope="module")
def torch_model() -> SmallCNN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return SmallCNN(width=4).eval()


@pytest.fixture(scope="module")
def handles(torch_model: SmallCNN) -> dict[str, ModelHandle]:
    return {"keras": keras_handle("twin", to_keras(torch_model, SIZE)), "torch": torch_handle("cnn", torch_model)}


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)


def _close(actual: np.ndarray, expected: np.ndarray, rtol: float) -> None:
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * np.abs(expected).max())


PAIRS = [(name, framework) for framework in ("keras", "torch") for name in available(framework)
         if name.startswith("xplique.")]


@pytest.mark.parametrize("name, framework", PAIRS)
def test_maps_have_input_shape_and_are_finite(handles, images, name: str, framework: str) -> None:
    maps = build_explainer(name, handles[framework], FAST.get(name, {})).explain(images, TARGETS)
    assert maps.shape == (3, SIZE, SIZE) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and np.abs(maps).max() > 0


@pytest.mark.parametrize("name", ["xplique.saliency", "xplique.integrated_gradients", "xplique.occlusion",
                                  "xplique.rise", "xplique.lime", "xplique.sobol"])
def test_keras_twin_and_torch_wrapper_agree(handles, images, name: str) -> None:
    on_keras = build_explainer(name, handles["keras"], FAST.get(name, {})).explain(images, TARGETS)
    on_torch = build_explainer(name, handles["torch"], FAST.get(name, {})).explain(images, TARGETS)
    _close(on_keras, on_torch, 1e-3)  # same weights, two float32 kernels (logits differ by about 1e-6)


def test_xplique_saliency_equals_captum_saliency(handles, images) -> None:
    captum = build_explainer("captum.saliency", handles["torch"]).explain(images, TARGETS)
    xplique = build_explainer("xplique.saliency", handles["torch"]).explain(images, TARGETS)
    # the same torch network; TorchWrapper back-propagates a one-hot vector, Captum the selected logit:
    # measured 3e-7 relative (float32 rounding)
    _close(xplique, captum, 1e-5)


def test_xplique_gradcam_on_twin_matches_captum_gradcam(handles, images, torch_model) -> None:
    xplique = build_explainer("xplique.gradcam", handles["keras"]).explain(images, TARGETS)
    layer = dict(torch_model.named_modules())["features.conv4"]
    raw = LayerGradCam(torch_model, layer).attribute(preprocess(images), target=torch.as_tensor(TARGETS),
                                                     relu_attributions=True)
    # the same upsampling as Xplique (TensorFlow bicubic), then the same clipping at 0
    upsampled = tf.image.resize(raw.detach().permute(0, 2, 3, 1).numpy(), (SIZE, SIZE), method="bicubic")
    _close(xplique, np.maximum(upsampled.numpy()[..., 0], 0.0), 1e-4)
    # with each library's own upsampling (Captum bilinear, Xplique bicubic) the maps still agree closely
    captum = build_explainer("captum.gradcam", handles["torch"]).explain(images, TARGETS)
    for ours, theirs in zip(xplique, captum):
        assert np.corrcoef(ours.ravel(), theirs.ravel())[0, 1] > 0.95


def test_cam_maps_are_non_negative(handles, images) -> None:
    for name in ("xplique.gradcam", "xplique.gradcampp"):
        assert build_explainer(name, handles["keras"]).explain(images, TARGETS).min() >= 0.0


@pytest.mark.parametrize("name", ["xplique.gradcam", "xplique.gradcampp"])
def test_cams_are_unsupported_through_torch_wrapper(handles, name: str) -> None:
    with pytest.raises(UnsupportedMethod, match="TorchWrapper"):
        build_explainer(name, handles["torch"])


def test_keras_layer_typo_lists_keras_names(handles) -> None:
    from generator.errors import ConfigError

    with pytest.raises(ConfigError, match="features_conv"):
        build_explainer("xplique.gradcam", handles["keras"], {"layer": "features.conv4"})


@pytest.mark.parametrize("name", ["xplique.smoothgrad", "xplique.rise", "xplique.lime", "xplique.kernel_shap"])
def test_stochastic_methods_are_seeded(handles, images, name: str) -> None:
    handle = handles["keras"]
    first = build_explainer(name, handle, {**FAST[name], "seed": 3}).explain(images, TARGETS)
    second = build_explainer(name, handle, {**FAST[name], "seed": 3}).explain(images, TARGETS)
    other = build_explainer(name, handle, {**FAST[name], "seed": 4}).explain(images, TARGETS)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("name", ["xplique.rise", "xplique.lime"])
def test_reseeded_methods_do_not_depend_on_batch_size(handles, images, name: str) -> None:
    one = build_explainer(name, handles["keras"], {**FAST[name], "batch_size": 1}).explain(images, TARGETS)
    three = build_explainer(name, handles["keras"], {**FAST[name], "batch_size": 3}).explain(images, TARGETS)
    _close(one, three, 1e-5)


def test_tensorflow_and_numpy_state_restored(handles, images) -> None:
    from tensorflow.python.eager import context

    eager, seed, numpy_state = tf.config.functions_run_eagerly(), context.global_seed(), np.random.get_state()[1]
    build_explainer("xplique.rise", handles["torch"], FAST["xplique.rise"]).explain(images, TARGETS)
    assert tf.config.functions_run_eagerly() == eager  # TorchWrapper's switch to eager mode is undone
    assert context.global_seed() == seed
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)
