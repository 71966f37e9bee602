"""Tests of generator.evaluation.complexity: Gini sparseness and entropy on known maps."""
from __future__ import annotations

import numpy as np
import pytest

from generator.errors import DataError
from generator.evaluation.complexity import complexity, sparseness


def _one_hot(size: int = 8, at: tuple[int, int] = (3, 5), value: float = -2.5) -> np.ndarray:
    maps = np.zeros((1, size, size))
    maps[0, at[0], at[1]] = value
    return maps


def test_one_hot_and_uniform() -> None:
    n = 64
    assert sparseness(_one_hot())[0] == pytest.approx((n - 1) / n, abs=1e-12)
    assert sparseness(np.full((1, 8, 8), 3.0))[0] == pytest.approx(0.0, abs=1e-12)
    assert complexity(_one_hot())[0] == pytest.approx(0.0, abs=1e-12)
    assert complexity(np.full((1, 8, 8), -3.0))[0] == pytest.approx(np.log(n), abs=1e-12)


def test_hand_example() -> None:
    # |a| sorted = 0, 1, 1, 2 (sum 4, n 4): Gini = (-3*0 - 1*1 + 1*1 + 3*2) / (4 * 4) = 6 / 16
    maps = np.array([[[1.0, -2.0], [0.0, 1.0]]])
    assert sparseness(maps)[0] == pytest.approx(6 / 16, abs=1e-12)
    p = np.array([0.25, 0.5, 0.25])
    assert complexity(maps)[0] == pytest.approx(-(p * np.log(p)).sum(), abs=1e-12)


def test_per_sample_order_scale_and_zero_map() -> None:
    maps = np.stack([_one_hot()[0], np.full((8, 8), 1.0), np.zeros((8, 8))])
    gini, entropy = sparseness(maps), complexity(maps)
    assert gini.shape == entropy.shape == (3,)
    assert gini[0] > gini[1] and entropy[0] < entropy[1]
    assert np.isnan(gini[2]) and np.isnan(entropy[2])
    np.testing.assert_allclose(sparseness(7.0 * maps[:2]), gini[:2], rtol=1e-12)


def test_refuses_wrong_shape() -> None:
    with pytest.raises(DataError, match="shape"):
        sparseness(np.zeros((8, 8)))
