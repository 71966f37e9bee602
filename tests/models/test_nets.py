"""Tests of generator.models.nets: shapes, batching, layer names and input scaling."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from generator.errors import ConfigError, DataError
from generator.models.device import torch_device
from generator.models.nets import (
    MEAN,
    STD,
    SmallCNN,
    check_images,
    normalise,
    preprocess,
    scale_batch,
)


def _model(seed: int = 0, **kwargs: int) -> SmallCNN:
    """A seeded SmallCNN in eval mode, built without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SmallCNN(**kwargs).eval()


def _images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [48, 64, 96])
@pytest.mark.parametrize("num_classes", [2, 3])
def test_output_shape(size: int, num_classes: int) -> None:
    model = _model(num_classes=num_classes)
    with torch.no_grad():
        logits = model(preprocess(_images(3, size)))
    assert logits.shape == (3, num_classes)
    assert logits.dtype == torch.float32


@pytest.mark.parametrize("width", [8, 16])
def test_embed_shape_and_classifier_input(width: int) -> None:
    model = _model(width=width)
    x = preprocess(_images(4, 64))
    with torch.no_grad():
        embedding = model.embed(x)
        logits = model(x)
    assert embedding.shape == (4, 4 * width) == (4, model.embedding_dim)
    # forward is the classifier applied to the embedding: same operations, so exact.
    assert torch.equal(model.classifier(embedding), logits)


def test_batched_output_equals_per_sample_output() -> None:
    model = _model(seed=3)
    x = preprocess(_images(6, 48, seed=1))
    with torch.no_grad():
        batched = model(x)
        single = torch.cat([model(x[i:i + 1]) for i in range(len(x))])
    # tolerance: float32 kernels may sum in a different order per batch size.
    assert torch.allclose(batched, single, atol=1e-5, rtol=0), (batched - single).abs().max()


def test_cam_layer_is_the_last_convolution() -> None:
    modules = dict(_model().named_modules())
    assert SmallCNN.cam_layer_name in modules
    convs = [name for name, module in modules.items() if isinstance(module, nn.Conv2d)]
    assert convs == ["features.conv1", "features.conv2", "features.conv3", "features.conv4"]
    assert convs[-1] == SmallCNN.cam_layer_name
    assert {"gap", "classifier", "features.relu4", "features.pool4"} <= set(modules)


def test_known_answer_brightness_probe() -> None:
    """Hand-set weights make logit 1 equal the normalised grey level of a uniform image."""
    model = _model()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.zero_()
                module.bias.zero_()
            elif isinstance(module, nn.BatchNorm2d):  # exact identity in eval mode
                module.weight.fill_(1.0)
                module.bias.zero_()
                module.running_mean.zero_()
                module.running_var.fill_(1.0 - module.eps)
        model.features.conv1.weight[0, :, 1, 1] = 1.0 / 3.0  # channel 0 = mean of R, G, B
        for conv in (model.features.conv2, model.features.conv3, model.features.conv4):
            conv.weight[0, 0, 1, 1] = 1.0  # pass channel 0 through (centre tap, padding unused)
        model.classifier.weight[1, 0] = 1.0
        model.classifier.bias[0] = -0.25
        grey = np.full((2, 48, 48, 3), 255, dtype=np.uint8)
        grey[1] = 191  # (191/255 - 0.5)/0.5 = 0.49803...
        logits = model(preprocess(grey)).numpy()
    expected = np.array([[-0.25, 1.0], [-0.25, (191 / 255 - 0.5) / 0.5]], dtype=np.float32)
    np.testing.assert_allclose(logits, expected, atol=1e-6)  # float32 rounding only


def test_preprocess_known_values_and_layout() -> None:
    image = np.zeros((1, 16, 16, 3), dtype=np.uint8)
    image[0, 2, 5] = (255, 0, 128)  # R, G, B of one pixel
    x = preprocess(image)
    assert x.shape == (1, 3, 16, 16) and x.dtype == torch.float32 and x.is_contiguous()
    assert MEAN == STD == (0.5, 0.5, 0.5)
    assert x[0, :, 2, 5].tolist() == pytest.approx([1.0, -1.0, (128 / 255 - 0.5) / 0.5], abs=1e-7)
    assert x[0, :, 0, 0].tolist() == [-1.0, -1.0, -1.0]


def test_normalise_is_preprocess_channels_last() -> None:
    images = _images(2, 20)
    nhwc = normalise(images)
    assert nhwc.dtype == np.float32 and nhwc.shape == (2, 20, 20, 3)
    np.testing.assert_array_equal(nhwc, preprocess(images).permute(0, 2, 3, 1).numpy())  # exact


def test_preprocess_accepts_read_only_and_strided_arrays() -> None:
    images = _images(2, 16)
    mirrored = images[:, :, ::-1]
    mirrored.flags.writeable = False
    expected = scale_batch(torch.from_numpy(images.copy())).flip(3)
    assert torch.equal(preprocess(mirrored), expected)


@pytest.mark.parametrize("bad, fragment", [
    (np.zeros((2, 3, 16, 16), dtype=np.uint8), "shape"),
    (np.zeros((2, 16, 16, 3), dtype=np.float32), "uint8"),
    (np.zeros((16, 16, 3), dtype=np.uint8), "(N, H, W, 3)"),
    (np.zeros((0, 16, 16, 3), dtype=np.uint8), "at least one image"),
    ([[0]], "numpy array"),
])
def test_bad_images_are_refused(bad: object, fragment: str) -> None:
    with pytest.raises(DataError, match="images") as info:
        preprocess(bad)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_check_images_names_argument_and_min_size() -> None:
    with pytest.raises(DataError, match="eval_images.*16x16"):
        check_images(np.zeros((1, 8, 8, 3), dtype=np.uint8), name="eval_images", min_size=16)


@pytest.mark.parametrize("kwargs", [{"num_classes": 1}, {"width": 0}, {"num_classes": 2.0}])
def test_bad_constructor_arguments(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        SmallCNN(**kwargs)


def test_torch_device_matches_availability() -> None:
    assert torch_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
