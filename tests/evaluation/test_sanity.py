"""Tests of generator.evaluation.sanity: cascading randomisation on a real SmallCNN."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from generator.errors import ConfigError
from generator.evaluation.sanity import (
    SANITY_COLUMNS,
    cascading_randomisation,
    parameterised_layers,
    randomise_layer,
    sanity_summary,
)
from generator.models.nets import SmallCNN

SIZE = 32
SMALLCNN_ORDER = ["classifier", "features.bn4", "features.conv4", "features.bn3", "features.conv3",
                  "features.bn2", "features.conv2", "features.bn1", "features.conv1"]


def _model(seed: int = 0) -> SmallCNN:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SmallCNN(width=4).eval()


def _images(n: int = 4) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def saliency_factory(model: torch.nn.Module):
    """Plain gradient saliency (Simonyan et al. 2014): |d logit_t / d x|, max over channels."""
    def explain(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        x = (torch.as_tensor(images, dtype=torch.float32).permute(0, 3, 1, 2) / 127.5 - 1.0).requires_grad_()
        logits = model(x)
        logits[torch.arange(len(x)), torch.as_tensor(targets)].sum().backward()
        return x.grad.abs().amax(dim=1).numpy()
    return explain


def edge_factory(model: torch.nn.Module):
    """An 'explanation' that ignores the model: the gradient magnitude of the grey image."""
    def explain(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        dy, dx = np.gradient(images.mean(axis=-1), axis=(1, 2))
        return np.hypot(dx, dy)
    return explain


def test_default_layer_order_of_smallcnn() -> None:
    assert list(reversed(parameterised_layers(_model()))) == SMALLCNN_ORDER


def test_model_independent_explainer_fails() -> None:
    targets = np.zeros(4, dtype=np.int64)
    df = cascading_randomisation(_model(), edge_factory, _images(), targets)
    assert list(df.columns) == list(SANITY_COLUMNS)
    assert len(df) == 4 * (len(SMALLCNN_ORDER) + 1)
    np.testing.assert_allclose(df["spearman"], 1.0, atol=1e-12)
    np.testing.assert_allclose(df["ssim"], 1.0, atol=1e-9)
    summary = sanity_summary(df, n_boot=200)
    assert not summary["passes"].any()


def test_gradient_on_random_smallcnn_passes() -> None:
    targets = np.array([0, 1, 0, 1])
    df = cascading_randomisation(_model(), saliency_factory, _images(), targets, seed=1)
    assert df.loc[df["step"] == 0, "layer"].eq("none").all()
    np.testing.assert_allclose(df.loc[df["step"] == 0, ["spearman", "ssim"]], 1.0, atol=1e-9)
    assert df.loc[df["step"] == 1, "layer"].eq("classifier").all()
    final = df[df["step"] == df["step"].max()]
    assert final["layer"].eq("features.conv1").all() and final["spearman"].mean() < 0.5
    summary = sanity_summary(df, n_boot=200)
    assert summary["passes"].all()
    assert set(summary["metric"]) == {"spearman", "ssim"}
    assert summary.groupby("metric").size().eq(len(SMALLCNN_ORDER) + 1).all()


def test_given_model_and_rng_are_untouched() -> None:
    model = _model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_state = torch.get_rng_state()
    cascading_randomisation(model, saliency_factory, _images(2), np.zeros(2, dtype=np.int64))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training
    assert torch.equal(rng_state, torch.get_rng_state())


def test_results_are_seeded() -> None:
    targets = np.zeros(2, dtype=np.int64)

    def run(seed: int) -> pd.DataFrame:
        return cascading_randomisation(_model(), saliency_factory, _images(2), targets,
                                       layer_order=["classifier", "features.conv4"], seed=seed)

    pd.testing.assert_frame_equal(run(0), run(0))
    assert not run(0)["spearman"].equals(run(5)["spearman"])


def test_randomise_batchnorm_keeps_running_statistics() -> None:
    bn = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.fill_(2.0)
        bn.bias.fill_(0.5)
        bn.running_mean.fill_(0.3)
        bn.running_var.fill_(4.0)
    randomise_layer(bn, seed=0)
    assert torch.equal(bn.weight, torch.ones(3)) and torch.equal(bn.bias, torch.zeros(3))
    assert torch.equal(bn.running_mean, torch.full((3,), 0.3))
    assert torch.equal(bn.running_var, torch.full((3,), 4.0))


def test_randomise_conv_is_seeded() -> None:
    first, second = torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(3, 4, 3)
    randomise_layer(first, seed=7)
    randomise_layer(second, seed=7)
    assert torch.equal(first.weight, second.weight)


def test_refuses_unknown_layer() -> None:
    with pytest.raises(ConfigError, match="features.relu1"):
        cascading_randomisation(_model(), saliency_factory, _images(2), np.zeros(2, dtype=np.int64),
                                layer_order=["features.relu1"])


def test_summary_by_method() -> None:
    targets = np.zeros(4, dtype=np.int64)
    frames = [cascading_randomisation(_model(), factory, _images(), targets).assign(method=name)
              for name, factory in (("edge", edge_factory), ("gradient", saliency_factory))]
    summary = sanity_summary(pd.concat(frames), by=["method"], n_boot=100)
    verdict = summary.groupby("method")["passes"].agg(["min", "max"])
    assert verdict.loc["edge"].tolist() == [False, False]
    assert verdict.loc["gradient"].tolist() == [True, True]
    step0 = summary[(summary["step"] == 0) & (summary["metric"] == "spearman")]
    np.testing.assert_allclose(step0[["mean", "ci_low", "ci_high"]], 1.0, atol=1e-12)
    with pytest.raises(ConfigError, match="metric"):
        sanity_summary(frames[0], metric="pearson")
