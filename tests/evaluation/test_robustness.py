"""Tests of generator.evaluation.robustness: max-sensitivity on explainers with known behaviour."""
from __future__ import annotations

import numpy as np
import pytest

from generator.errors import ConfigError, DataError
from generator.evaluation.robustness import max_sensitivity


def _images(n: int = 4, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


TARGETS = np.zeros(4, dtype=np.int64)


def test_constant_explainer_has_zero_sensitivity() -> None:
    scores = max_sensitivity(lambda x, t: np.ones(x.shape[:3]), _images(), TARGETS)
    np.testing.assert_array_equal(scores, np.zeros(4))


def test_gradient_of_linear_model_has_zero_sensitivity() -> None:
    weights = np.random.default_rng(1).normal(size=(16, 16, 3))

    def gradient(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        # d/dx sum(w * x), summed over channels: the same for every input
        return np.broadcast_to(weights.sum(axis=-1), x.shape[:3]).copy()

    np.testing.assert_array_equal(max_sensitivity(gradient, _images(), TARGETS), np.zeros(4))


def test_noisy_explainer_is_sensitive() -> None:
    def noisy(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        # a different noise for every input: seeded by the input's bytes
        seed = int(np.abs(x).sum() * 1000) % (2**32)
        return np.random.default_rng(seed).normal(size=x.shape[:3])

    scores = max_sensitivity(noisy, _images(), TARGETS)
    assert np.all(scores > 0.5)


def test_input_explainer_respects_the_noise_bound() -> None:
    """phi(x) = mean over channels of x changes by at most the radius per pixel (L-inf norm)."""
    images = _images()
    radius = 5.0
    scores = max_sensitivity(lambda x, t: x.mean(axis=-1), images, TARGETS, radius=radius, norm="inf",
                             n_samples=4)
    bound = radius / images.mean(axis=-1).max(axis=(1, 2))
    assert np.all(scores > 0) and np.all(scores <= bound + 1e-6)


def test_seeded_and_zero_map_is_undefined() -> None:
    def explain(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        return x[..., 0] - 128.0

    first = max_sensitivity(explain, _images(), TARGETS, seed=3)
    np.testing.assert_array_equal(first, max_sensitivity(explain, _images(), TARGETS, seed=3))
    zero = max_sensitivity(lambda x, t: np.zeros(x.shape[:3]), _images(), TARGETS)
    assert np.all(np.isnan(zero))


def test_refuses_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="norm"):
        max_sensitivity(lambda x, t: x[..., 0], _images(), TARGETS, norm="l1")
    with pytest.raises(DataError, match="explain_fn must return"):
        max_sensitivity(lambda x, t: x[:, :4, :4, 0], _images(), TARGETS)
    with pytest.raises(ConfigError, match="n_samples"):
        max_sensitivity(lambda x, t: x[..., 0], _images(), TARGETS, n_samples=0)
