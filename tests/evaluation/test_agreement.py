"""Tests of generator.evaluation.agreement: agreement of maps and the completeness gap."""
from __future__ import annotations

import numpy as np
import pytest

from generator.errors import ConfigError, DataError
from generator.evaluation.agreement import AGREEMENT_COLUMNS, completeness_gap, map_agreement

METRICS = ["spearman", "pearson", "cosine", "topk_intersection"]


def _maps(n: int = 3, size: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, size, size))


def test_identical_maps_agree_fully() -> None:
    maps = _maps()
    table = map_agreement(maps, maps.copy())
    assert list(table.columns) == list(AGREEMENT_COLUMNS)
    np.testing.assert_allclose(table[METRICS], 1.0, atol=1e-12)
    np.testing.assert_array_equal(table["image"], [0, 1, 2])


def test_negated_maps() -> None:
    maps = _maps()
    signed = map_agreement(maps, -maps, absolute=False)
    np.testing.assert_allclose(signed[["spearman", "pearson", "cosine"]], -1.0, atol=1e-12)
    np.testing.assert_array_equal(signed["topk_intersection"], 0.0)
    np.testing.assert_allclose(map_agreement(maps, -maps)[METRICS], 1.0, atol=1e-12)


def test_topk_hand_example() -> None:
    # 10 pixels, top 20 % = 2 pixels: a's top {0, 1}, b's top {1, 5}: intersection 1 / 2
    a = np.array([[[9, 8, 1, 1, 1, 1, 1, 1, 1, 1]]], dtype=float)
    b = np.array([[[1, 9, 1, 1, 1, 8, 1, 1, 1, 1]]], dtype=float)
    assert map_agreement(a, b, top_fraction=0.2).loc[0, "topk_intersection"] == 0.5


def test_constant_map_has_undefined_correlation() -> None:
    table = map_agreement(np.ones((1, 4, 4)), _maps(1, 4))
    assert np.isnan(table.loc[0, "spearman"]) and np.isnan(table.loc[0, "pearson"])
    assert np.isfinite(table.loc[0, "cosine"])


def test_completeness_gap_of_exact_linear_attribution_is_zero() -> None:
    rng = np.random.default_rng(0)
    w, x, bias = rng.normal(size=(4, 12)), rng.normal(size=(4, 12)), 0.7
    f_x, f_base = (w * x).sum(axis=1) + bias, np.full(4, bias)
    attr_sums = (w * x).sum(axis=1)  # IG of a linear model from a zero baseline = w * x
    np.testing.assert_allclose(completeness_gap(attr_sums, f_x, f_base), 0.0, atol=1e-12)
    relative = completeness_gap(attr_sums + 0.1 * (f_x - f_base), f_x, f_base, relative=True)
    np.testing.assert_allclose(relative, 0.1 * np.sign(f_x - f_base), atol=1e-12)
    assert np.isnan(completeness_gap(np.array([1.0]), np.array([2.0]), np.array([2.0]), relative=True)[0])
    # a ratio to a near-zero output difference is left out, the absolute gap is kept
    sums, f_x, f_0 = np.array([0.05, 1.1]), np.array([1.0004, 2.0]), np.array([1.0, 1.0])
    np.testing.assert_allclose(completeness_gap(sums, f_x, f_0, relative=True, min_difference=0.1),
                               [np.nan, 0.1], atol=1e-12)
    np.testing.assert_allclose(completeness_gap(sums, f_x, f_0), [0.0496, 0.1], atol=1e-12)


def test_refuses_bad_input() -> None:
    with pytest.raises(DataError, match="same shape"):
        map_agreement(_maps(), _maps(2))
    with pytest.raises(ConfigError, match="top_fraction"):
        map_agreement(_maps(), _maps(), top_fraction=0.0)
    with pytest.raises(DataError, match="1-D"):
        completeness_gap(np.zeros(3), np.zeros(2), np.zeros(3))


def test_completeness_table_of_exact_attributions_of_a_linear_model_has_no_gap():
    """f(x) = sum of the pixels for class 1 (0 for class 0); with a black baseline the attributions x * 1 are exact:
    the gap is zero, the output difference the pixel sum; a map with one unit too much has gap 1."""
    from generator.evaluation.agreement import completeness_table

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 4, 4, 3)).astype(np.float64)
    images[4] = 0.0  # an image equal to its baseline: no output difference, so no relative gap

    def logits(batch):
        total = np.asarray(batch, np.float64).reshape(len(batch), -1).sum(axis=1)
        return np.stack([np.zeros_like(total), total], axis=1)

    maps = images.sum(axis=3)
    maps[1, 0, 0] += 1.0
    table = completeness_table(logits, images, np.zeros_like(images), np.ones(5, np.int64), maps, min_difference=0.1)
    np.testing.assert_allclose(table["output_difference"], images.reshape(5, -1).sum(axis=1))
    np.testing.assert_allclose(table["gap"], [0.0, 1.0, 0.0, 0.0, 0.0], atol=1e-9)
    assert table["relative_gap"].iloc[:4].notna().all() and np.isnan(table["relative_gap"].iloc[4])
