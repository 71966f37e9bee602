"""Tests of generator.models.keras_twin: the Keras copy computes what the torch net computes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from generator.errors import ModelError
from generator.models.device import import_tensorflow, tf_device_name
from generator.models.keras_twin import (
    keras_layer_name,
    load_keras,
    save_keras,
    to_keras,
)
from generator.models.nets import SmallCNN, normalise, preprocess
from generator.models.train import TrainParams, train_model

tf = import_tensorflow()  # Triton before TensorFlow, so torch training in this process still works

ATOL = RTOL = 1e-4  # float32 kernels of two libraries; measured differences are about 1e-8


def _model(seed: int = 0, **kwargs: int) -> SmallCNN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SmallCNN(**kwargs).eval()


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _torch_outputs(model: SmallCNN, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits and the NHWC output of the Grad-CAM layer, read with a forward hook."""
    captured = {}
    layer = dict(model.named_modules())[SmallCNN.cam_layer_name]
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.update(cam=out))
    with torch.no_grad():
        logits = model(preprocess(images)).numpy()
    handle.remove()
    return logits, captured["cam"].permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("size, width, num_classes", [(48, 16, 2), (64, 16, 2), (50, 8, 3)])
def test_keras_logits_and_cam_layer_match_torch(size: int, width: int, num_classes: int) -> None:
    model = _model(seed=size, width=width, num_classes=num_classes)
    images = _images(5, size, seed=1)
    logits, cam = _torch_outputs(model, images)
    twin = to_keras(model, size)
    cam_layer = twin.get_layer(keras_layer_name(SmallCNN.cam_layer_name))
    probe = tf.keras.Model(twin.input, [twin.output, cam_layer.output])
    keras_logits, keras_cam = (t.numpy() for t in probe(normalise(images)))
    np.testing.assert_allclose(keras_logits, logits, atol=ATOL, rtol=RTOL)
    # the intermediate activations are O(1), a much stronger check than the small random-init logits
    np.testing.assert_allclose(keras_cam, cam, atol=ATOL, rtol=RTOL)
    assert keras_logits.shape == (5, num_classes)


def test_trained_like_weights_large_logits_match() -> None:
    """Weights scaled up so that logits are O(10): a layout error could not hide in tiny numbers."""
    model = _model(seed=4)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)
    images = _images(4, 64, seed=2)
    logits, _ = _torch_outputs(model, images)
    assert np.abs(logits).max() > 1.0
    keras_logits = to_keras(model, 64)(normalise(images)).numpy()
    np.testing.assert_allclose(keras_logits, logits, atol=ATOL, rtol=RTOL)


def test_save_load_round_trip(tmp_path: Path) -> None:
    twin = to_keras(_model(seed=5), 48)
    images = normalise(_images(3, 48))
    path = tmp_path / "twin.keras"
    save_keras(twin, path)
    loaded = load_keras(path)
    np.testing.assert_array_equal(loaded(images).numpy(), twin(images).numpy())  # same weights, exact
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in twin.layers]


def test_every_torch_layer_has_a_keras_namesake() -> None:
    model = _model()
    names = {layer.name for layer in to_keras(model, 48).layers}
    torch_names = [n for n, m in model.named_modules() if n and not isinstance(m, torch.nn.Sequential)]
    assert {keras_layer_name(n) for n in torch_names} <= names
    assert keras_layer_name("features.conv4") == "features_conv4"
    assert keras_layer_name("classifier") == "classifier"


def test_errors() -> None:
    with pytest.raises(ModelError, match="SmallCNN"):
        to_keras(torch.nn.Linear(2, 2), 48)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="image_size"):
        to_keras(_model(), 8)
    with pytest.raises(ModelError, match="layer name"):
        keras_layer_name("")
    with pytest.raises(ModelError, match=r"\.keras"):
        save_keras(to_keras(_model(), 16), Path("model.h5"))
    with pytest.raises(ModelError, match="does not exist"):
        load_keras(Path("no/such/model.keras"))


def test_tf_device_name_matches_visible_devices() -> None:
    expected = "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"
    assert tf_device_name() == expected


def test_importing_models_does_not_import_tensorflow() -> None:
    code = ("import sys, generator.models.nets, generator.models.train, generator.models.keras_twin, "
            "generator.models.device; sys.exit('tensorflow' in sys.modules)")
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, timeout=120).returncode == 0


def test_torch_training_still_works_after_tensorflow_was_imported() -> None:
    """Regression: importing Triton after TensorFlow segfaults; building an optimiser imports Triton."""
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    history = train_model(images, np.array([0, 1] * 4), TrainParams(epochs=1), seed=0).history
    assert len(history) == 1


def test_import_tensorflow_loads_triton_first() -> None:
    """In a fresh process TensorFlow, then a torch optimiser: exits 0 only if the import order is safe."""
    code = ("from generator.models.device import import_tensorflow; import_tensorflow(); import torch; "
            "torch.optim.AdamW(torch.nn.Linear(2, 2).parameters()); print('ok')")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, timeout=300, capture_output=True, text=True)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]
