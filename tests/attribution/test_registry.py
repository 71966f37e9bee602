"""Tests of generator.attribution.registry: names, parameters, refusals, captions, map checks."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from generator.attribution import (
    REGISTRY,
    UnsupportedMethod,
    available,
    build_explainer,
    check_maps,
)
from generator.attribution.base import closest, grid_segments
from generator.attribution.handles import ModelHandle, torch_handle
from generator.errors import ConfigError, DataError
from generator.models.nets import SmallCNN, normalise


@pytest.fixture(scope="module")
def handle() -> ModelHandle:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torch_handle("tiny", SmallCNN(width=2))


def _keras_like(handle: ModelHandle) -> ModelHandle:
    """A handle that claims to be Keras (only framework checks run, no TensorFlow needed)."""
    names = tuple(name.replace(".", "_") for name in handle.layer_names)
    return ModelHandle("twin", "keras", object(), names, "features_conv4", normalise)


def _normalised(text: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def test_at_least_eight_methods_per_library() -> None:
    libraries = [spec.library for spec in REGISTRY.values()]
    assert libraries.count("captum") >= 8 and libraries.count("xplique") >= 8
    assert all(name == f"{spec.library}.{name.split('.', 1)[1]}" for name, spec in REGISTRY.items())


def test_available_filters_by_framework() -> None:
    torch_names, keras_names = available("torch"), available("keras")
    assert "captum.saliency" in torch_names and "captum.saliency" not in keras_names
    assert "xplique.gradcam" in keras_names and "xplique.gradcam" not in torch_names
    assert "xplique.integrated_gradients" in torch_names and "xplique.integrated_gradients" in keras_names
    assert available() == sorted(REGISTRY)


def test_every_spec_is_documented() -> None:
    for name, spec in REGISTRY.items():
        assert spec.paper and re.search(r"\b(19|20)\d\d\b", spec.paper), name
        assert spec.url.startswith("https://arxiv.org/abs/"), name
        assert spec.formula and spec.title, name
        assert spec.defaults and "batch_size" in spec.defaults, name
        assert spec.family in {"gradient", "path", "perturbation", "cam", "surrogate", "sampling"}, name
        assert spec.channel_reduction in {"sum", "mean", "max", "max_abs", "none"}, name
        assert set(spec.frameworks) | set(spec.unsupported) == {"torch", "keras"}, name


def test_specs_are_read_only() -> None:
    spec = REGISTRY["captum.integrated_gradients"]
    with pytest.raises(TypeError):
        spec.defaults["steps"] = 3  # type: ignore[index]
    with pytest.raises(TypeError):
        REGISTRY["x"] = spec  # type: ignore[index]


def test_unknown_name_lists_available_closest_first(handle: ModelHandle) -> None:
    with pytest.raises(ConfigError) as error:
        build_explainer("captum.integrated_gradient", handle)
    message = str(error.value)
    assert "'captum.integrated_gradient'" in message
    listed = re.findall(r"'([a-z_]+\.[a-z_]+)'", message.split("closest first")[1])
    assert listed[0] == "captum.integrated_gradients"
    assert set(listed) == set(REGISTRY)


def test_unknown_parameter_lists_accepted_keys(handle: ModelHandle) -> None:
    with pytest.raises(ConfigError) as error:
        build_explainer("captum.integrated_gradients", handle, {"n_steps": 10})
    message = str(error.value)
    assert "'n_steps'" in message
    for key in REGISTRY["captum.integrated_gradients"].defaults:
        assert f"'{key}'" in message


@pytest.mark.parametrize("params, word", [({"steps": 1}, "steps"), ({"baseline": "white"}, "baseline"),
                                          ({"rule": "simpson"}, "rule"), ({"batch_size": 0}, "batch_size"),
                                          ({"batch_size": True}, "batch_size")])
def test_bad_values_name_key_value_and_allowed(handle: ModelHandle, params: dict, word: str) -> None:
    with pytest.raises(ConfigError) as error:
        build_explainer("captum.integrated_gradients", handle, params)
    assert f"'{word}'" in str(error.value) and repr(next(iter(params.values()))) in str(error.value)


def test_layer_typo_lists_five_closest_names(handle: ModelHandle) -> None:
    with pytest.raises(ConfigError) as error:
        build_explainer("captum.gradcam", handle, {"layer": "features.conv5"})
    message = str(error.value)
    listed = re.findall(r"'([a-z0-9_.]+)'", message.split("closest layer names")[1])
    assert len(listed) == 5 and listed[0].startswith("features.conv")
    assert set(listed) <= set(handle.layer_names)


def test_default_layer_is_the_cam_layer(handle: ModelHandle) -> None:
    assert build_explainer("captum.gradcam", handle).params["layer"] == "features.conv4"


def test_unsupported_pairs_raise_with_reason(handle: ModelHandle) -> None:
    with pytest.raises(UnsupportedMethod, match="TorchWrapper does not support Grad-CAM"):
        build_explainer("xplique.gradcam", handle)
    with pytest.raises(UnsupportedMethod, match="PyTorch models only"):
        build_explainer("captum.saliency", _keras_like(handle))
    assert issubclass(UnsupportedMethod, ConfigError)


def test_caption_mentions_every_parameter_value(handle: ModelHandle) -> None:
    for name in available("torch"):
        explainer = build_explainer(name, handle)
        caption = _normalised(explainer.caption_params())
        for key, value in explainer.params.items():
            shown = f"{value:g}" if isinstance(value, float) else value
            assert _normalised(shown) in caption, (name, key, value, explainer.caption_params())


def test_caption_of_integrated_gradients_reads_well(handle: ModelHandle) -> None:
    params = {"steps": 16, "rule": "riemann_trapezoid", "batch_size": 4}
    caption = build_explainer("captum.integrated_gradients", handle, params).caption_params()
    # the baseline in pixels, true whatever the model's normalisation (was "-1 after normalisation")
    assert caption.startswith("baseline black (every pixel 0, before the model's own normalisation)")
    assert "16 steps" in caption and "Riemann trapezoid rule" in caption and "batch 4" in caption


def test_check_maps_counts_bad_maps() -> None:
    maps = np.ones((4, 3, 3), dtype=np.float32)
    maps[1] = 0.0
    maps[2, 0, 0] = np.nan
    maps[3, 1, 1] = np.inf
    maps[3, 2, 2] = -np.inf
    assert check_maps(maps) == {"finite": False, "n_nan": 1, "n_inf": 2, "all_zero": 1}
    assert check_maps(np.ones((2, 3, 3))) == {"finite": True, "n_nan": 0, "n_inf": 0, "all_zero": 0}
    with pytest.raises(DataError):
        check_maps(np.ones((3, 3)))


def test_closest_and_grid_helpers() -> None:
    assert closest("salency", ["occlusion", "saliency", "smoothgrad"], 1) == ["saliency"]
    assert sorted(closest("x", ["b", "a"])) == ["a", "b"]
    grid = grid_segments(5, 4, 2)
    assert grid.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
