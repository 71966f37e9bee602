"""Tests of generator.evaluation.faithfulness on models whose answers are known by hand."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from generator.errors import ConfigError, DataError, ModelError
from generator.evaluation.faithfulness import (
    Deletion,
    Insertion,
    MuFidelity,
    baseline_images,
    deletion_auc,
    infidelity,
    insertion_auc,
    mu_fidelity,
    pixel_ranks,
)


def _two_class(score: np.ndarray) -> np.ndarray:
    """Probabilities ``[1 - p, p]`` from a score ``p`` in [0, 1]."""
    return np.stack([1.0 - score, score], axis=1)


def _red_weights_prob_fn(weights: np.ndarray):
    """p(class 1) = sum_pixels w * red / 255 for a 2x2 image (weights sum to 1)."""
    def prob_fn(x: np.ndarray) -> np.ndarray:
        return _two_class((x[..., 0] / 255.0 * weights).sum(axis=(1, 2)))
    return prob_fn


def _region_prob_fn(region: np.ndarray):
    """p(class 1) = mean brightness of ``region`` / 255."""
    def prob_fn(x: np.ndarray) -> np.ndarray:
        return _two_class(x[:, region].mean(axis=(1, 2)) / 255.0)
    return prob_fn


def _region_setup(n: int = 4, size: int = 16):
    """Dark noisy images with a bright 4x4 region (so every baseline darkens the region)."""
    rng = np.random.default_rng(0)
    region = np.zeros((size, size), dtype=bool)
    region[5:9, 6:10] = True
    images = rng.integers(0, 64, (n, size, size, 3), dtype=np.uint8)
    images[:, region] = rng.integers(192, 256, (n, int(region.sum()), 3), dtype=np.uint8)
    return images, region, np.ones(n, dtype=np.int64)


# ----------------------------------------------------------------------------
# Deletion / insertion
# ----------------------------------------------------------------------------

HAND_WEIGHTS = np.array([[0.4, 0.3], [0.2, 0.1]])
HAND_IMAGE = np.zeros((1, 2, 2, 3), dtype=np.uint8)
HAND_IMAGE[..., 0] = 255


@pytest.mark.parametrize(("map_values", "deletion", "insertion"), [
    # order 0,1,2,3: curves [1, .6, .3, .1, 0] and [0, .4, .7, .9, 1]
    ([[4.0, 3.0], [2.0, 1.0]], 0.375, 0.625),
    # ties broken in raster order: 2, 3, then 0, 1: curve [1, .8, .7, .3, 0]
    ([[0.0, 0.0], [1.0, 1.0]], 0.575, 0.425),
])
def test_hand_computed_auc(map_values, deletion, insertion) -> None:
    prob_fn, maps = _red_weights_prob_fn(HAND_WEIGHTS), np.array([map_values])
    targets = np.array([1])
    assert deletion_auc(prob_fn, HAND_IMAGE, targets, maps, steps=4)[0] == pytest.approx(deletion, abs=1e-12)
    assert insertion_auc(prob_fn, HAND_IMAGE, targets, maps, steps=4)[0] == pytest.approx(insertion,
                                                                                          abs=1e-12)


def test_hand_computed_curves() -> None:
    auc, curves = deletion_auc(_red_weights_prob_fn(HAND_WEIGHTS), HAND_IMAGE, np.array([1]),
                               np.array([[[4.0, 3.0], [2.0, 1.0]]]), steps=4, return_curves=True)
    np.testing.assert_allclose(curves, [[1.0, 0.6, 0.3, 0.1, 0.0]], atol=1e-12)
    assert curves.shape == (1, 5) and auc.shape == (1,)


def test_more_steps_than_pixels() -> None:
    # 4 pixels, 8 steps: counts round(k / 2) = 0, 0, 1, 2, 2, 2, 3, 4, 4 (half to even); repeated
    # fractions add zero-width segments, so the AUC is the 4-step one
    auc, curves = deletion_auc(_red_weights_prob_fn(HAND_WEIGHTS), HAND_IMAGE, np.array([1]),
                               np.array([[[4.0, 3.0], [2.0, 1.0]]]), steps=8, return_curves=True)
    np.testing.assert_allclose(curves, [[1.0, 1.0, 0.6, 0.3, 0.3, 0.3, 0.1, 0.0, 0.0]], atol=1e-12)
    assert auc[0] == pytest.approx(0.375, abs=1e-12)


def test_region_map_beats_random_and_inverted() -> None:
    images, region, targets = _region_setup()
    prob_fn = _region_prob_fn(region)
    good = np.broadcast_to(region.astype(np.float32), images.shape[:3])
    inverted = 1.0 - good
    random = np.random.default_rng(1).random(images.shape[:3]).astype(np.float32)
    for baseline in ("black", "mean", "blur"):
        scores = {name: (deletion_auc(prob_fn, images, targets, m, baseline=baseline),
                         insertion_auc(prob_fn, images, targets, m, baseline=baseline))
                  for name, m in (("good", good), ("random", random), ("inverted", inverted))}
        assert np.all(scores["good"][0] < scores["random"][0]), baseline
        assert np.all(scores["good"][0] < scores["inverted"][0]), baseline
        assert np.all(scores["good"][1] > scores["random"][1]), baseline
        assert np.all(scores["good"][1] > scores["inverted"][1]), baseline


def test_black_deletion_of_region_drops_to_zero_after_region_fraction() -> None:
    images, region, targets = _region_setup()
    maps = np.broadcast_to(region.astype(np.float32), images.shape[:3])
    metric = Deletion(_region_prob_fn(region), images, targets, steps=16)
    curves = metric.curves(maps)
    # the region is 16 of 256 pixels = step 1 of 16
    np.testing.assert_allclose(curves[:, 1:], 0.0, atol=1e-12)
    np.testing.assert_allclose(curves[:, 0], images[:, region].mean(axis=(1, 2)) / 255.0, rtol=1e-6)


def test_class_scores_many_maps_like_the_function_and_batches_do_not_matter() -> None:
    images, region, targets = _region_setup()
    prob_fn = _region_prob_fn(region)
    metric = Insertion(prob_fn, images, targets, steps=8, batch_size=3)
    for seed in (2, 3):
        maps = np.random.default_rng(seed).normal(size=images.shape[:3])
        expected = insertion_auc(prob_fn, images, targets, maps, steps=8, batch_size=64)
        np.testing.assert_allclose(metric(maps), expected, rtol=1e-12)


def test_pixel_ranks_are_stable_for_ties() -> None:
    ranks = pixel_ranks(np.array([[[1.0, 2.0], [2.0, 1.0]]]))
    np.testing.assert_array_equal(ranks, [[2, 0, 1, 3]])


def test_baselines() -> None:
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    assert not baseline_images(images, "black").any()
    mean = baseline_images(images, "mean")
    np.testing.assert_allclose(mean[:, 3, 5], images.mean(axis=(1, 2)), rtol=1e-5)
    blur = baseline_images(images, "blur")
    assert blur.shape == images.shape and blur.std() < images.std()
    with pytest.raises(ConfigError, match="baseline"):
        baseline_images(images, "grey")


def test_refuses_bad_input() -> None:
    images, region, targets = _region_setup()
    prob_fn = _region_prob_fn(region)
    with pytest.raises(DataError, match="maps must have shape"):
        deletion_auc(prob_fn, images, targets, np.zeros((4, 8, 8)))
    with pytest.raises(DataError, match="finite"):
        deletion_auc(prob_fn, images, targets, np.full(images.shape[:3], np.nan))
    with pytest.raises(DataError, match="targets"):
        deletion_auc(prob_fn, images, targets[:2], np.zeros(images.shape[:3]))
    with pytest.raises(DataError, match="number of classes"):
        deletion_auc(prob_fn, images, targets + 5, np.zeros(images.shape[:3]))
    with pytest.raises(ModelError, match="prob_fn"):
        deletion_auc(lambda x: np.zeros(len(x)), images, targets, np.zeros(images.shape[:3]))
    with pytest.raises(ConfigError, match="steps"):
        deletion_auc(prob_fn, images, targets, np.zeros(images.shape[:3]), steps=0)


# ----------------------------------------------------------------------------
# MuFidelity
# ----------------------------------------------------------------------------

def _linear_setup(n: int = 6, size: int = 16, seed: int = 0):
    """A linear score f(x) = sum(w * x) and its exact pixel attribution sum_c(w * x)."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(size, size, 3))
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)

    def prob_fn(x: np.ndarray) -> np.ndarray:
        score = (x * weights).sum(axis=(1, 2, 3))
        return np.stack([score, -score], axis=1)

    exact = (images * weights).sum(axis=-1)
    return prob_fn, images, np.zeros(n, dtype=np.int64), exact, weights


def test_mu_fidelity_exact_linear_attribution_is_one() -> None:
    prob_fn, images, targets, exact, _ = _linear_setup()
    for correlation in ("pearson", "spearman"):
        scores = mu_fidelity(prob_fn, images, targets, exact, grid=4, n_samples=48, correlation=correlation)
        assert scores.shape == (6,)
        assert np.all(scores > 0.99), correlation


def test_mu_fidelity_random_maps_are_near_zero() -> None:
    prob_fn, images, targets, _, _ = _linear_setup()
    metric = MuFidelity(prob_fn, images, targets, grid=4, n_samples=64, seed=1)
    random = np.random.default_rng(5).normal(size=images.shape[:3])
    assert abs(np.mean(metric(random))) < 0.3
    # the metric is built once; scoring is deterministic
    np.testing.assert_array_equal(metric(random), metric(random))


def test_mu_fidelity_constant_map_is_undefined() -> None:
    prob_fn, images, targets, _, _ = _linear_setup(n=2)
    # grid cells of equal size and a constant map: every subset gets the same attribution
    assert np.all(np.isnan(mu_fidelity(prob_fn, images, targets, np.ones(images.shape[:3]), grid=4)))


def test_mu_fidelity_refuses_bad_settings() -> None:
    prob_fn, images, targets, exact, _ = _linear_setup(n=2)
    with pytest.raises(ConfigError, match="grid"):
        mu_fidelity(prob_fn, images, targets, exact, grid=32)
    with pytest.raises(ConfigError, match="subset_percent"):
        mu_fidelity(prob_fn, images, targets, exact, subset_percent=1.5)
    with pytest.raises(ConfigError, match="correlation"):
        mu_fidelity(prob_fn, images, targets, exact, correlation="kendall")


def test_mu_fidelity_agrees_with_xplique() -> None:
    """Xplique's MuFidelity (Spearman, random subsets of its own) on a Keras twin of the linear model.

    Subsets differ, so only the means are compared: 1 for the exact map (tolerance 0.01), and
    within 0.15 for a noisy map.
    """
    pytest.importorskip("xplique")
    from generator.models.device import import_tensorflow

    tf = import_tensorflow()
    from xplique.metrics import MuFidelity as XpliqueMuFidelity

    prob_fn, images, targets, exact, weights = _linear_setup(n=8, size=16)
    tf.random.set_seed(0)
    keras = tf.keras
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(1, use_bias=False)])
    model.layers[-1].set_weights([weights.reshape(-1, 1).astype(np.float32)])
    inputs = images.astype(np.float32)
    noisy = exact + np.random.default_rng(3).normal(scale=exact.std(), size=exact.shape)
    theirs = XpliqueMuFidelity(model, inputs, np.ones((8, 1), np.float32), grid_size=4, nb_samples=64,
                               subset_percent=0.2, baseline_mode=0.0, batch_size=64)
    ours = MuFidelity(prob_fn, images, targets, grid=4, n_samples=64, correlation="spearman")
    assert theirs.evaluate(exact.astype(np.float32)) > 0.99 and np.mean(ours(exact)) > 0.99
    assert abs(theirs.evaluate(noisy.astype(np.float32)) - np.mean(ours(noisy))) < 0.15


# ----------------------------------------------------------------------------
# Infidelity (Captum)
# ----------------------------------------------------------------------------

def _torch_linear(size: int = 8):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, 2)).eval()
        inputs = torch.randn(4, 3, size, size)
    targets = np.array([0, 1, 1, 0])
    weight = model[1].weight.detach().numpy().reshape(2, 3, size, size)
    exact = weight[targets].sum(axis=1)
    return model, inputs, targets, exact


@pytest.mark.parametrize("normalize", [True, False])
def test_infidelity_of_exact_linear_attribution_is_zero(normalize: bool) -> None:
    model, inputs, targets, exact = _torch_linear()
    exact_score = infidelity(model, inputs, targets, exact, normalize=normalize, n_perturb_samples=16)
    wrong = np.random.default_rng(0).normal(size=exact.shape) * np.abs(exact).mean()
    wrong_score = infidelity(model, inputs, targets, wrong, normalize=normalize, n_perturb_samples=16)
    assert exact_score.shape == (4,)
    assert np.all(exact_score < 1e-8)
    assert np.all(wrong_score > 1e-4)


def test_infidelity_is_seeded() -> None:
    model, inputs, targets, exact = _torch_linear()
    wrong = exact[::-1].copy()
    first = infidelity(model, inputs, targets, wrong, seed=3)
    np.testing.assert_array_equal(first, infidelity(model, inputs, targets, wrong, seed=3))
    assert not np.array_equal(first, infidelity(model, inputs, targets, wrong, seed=4))


def test_infidelity_refuses_mismatched_maps() -> None:
    model, inputs, targets, exact = _torch_linear()
    with pytest.raises(DataError, match="one \\(H, W\\) map per input"):
        infidelity(model, inputs, targets, exact[:, :4])
