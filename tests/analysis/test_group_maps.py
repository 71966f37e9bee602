"""Per-image normalisation and group means: known answers, NaN handling."""
from __future__ import annotations

import numpy as np
import pytest

from generator.analysis.group_maps import (
    difference_map,
    group_means,
    normalise_maps,
    valid_images,
)
from generator.errors import ConfigError, DataError


def _maps() -> np.ndarray:
    maps = np.zeros((4, 2, 2))
    maps[0] = [[1.0, -1.0], [2.0, 0.0]]
    maps[1] = [[0.0, 0.0], [0.0, 4.0]]
    maps[2] = 0.0                      # no attribution at all
    maps[3] = np.nan                   # not aligned
    return maps


def test_sum_normalisation_gives_mass_one_and_nan_for_empty_maps():
    out = normalise_maps(_maps())
    np.testing.assert_allclose(out[0], [[0.25, 0.25], [0.5, 0.0]], atol=1e-12)
    np.testing.assert_allclose(out[1], [[0.0, 0.0], [0.0, 1.0]], atol=1e-12)
    assert np.isnan(out[2]).all() and np.isnan(out[3]).all()
    signed = normalise_maps(_maps(), absolute=False)
    np.testing.assert_allclose(signed[0], [[0.25, -0.25], [0.5, 0.0]], atol=1e-12)
    assert list(valid_images(out)) == [True, True, False, False]


def test_max_and_percentile_normalisation():
    out = normalise_maps(_maps(), method="max")
    np.testing.assert_allclose(out[0], [[0.5, 0.5], [1.0, 0.0]], atol=1e-12)
    ramp = np.arange(101, dtype=float).reshape(1, 1, 101)
    clipped = normalise_maps(ramp, method="percentile", percentile=50.0)
    np.testing.assert_allclose(clipped[0, 0, :51], np.arange(51) / 50.0, atol=1e-12)
    assert (clipped[0, 0, 50:] == 1.0).all()


def test_partial_nan_pixels_are_ignored():
    maps = np.ones((1, 2, 2))
    maps[0, 0, 0] = np.nan
    out = normalise_maps(maps)
    assert np.isnan(out[0, 0, 0]) and np.nansum(out) == pytest.approx(1.0)


def test_group_means_ignore_nan_images_and_count_them_out():
    maps = normalise_maps(_maps())
    means = group_means(maps, ["a", "a", "b", "b"])
    mean_a, n_a = means["a"]
    np.testing.assert_allclose(mean_a, [[0.125, 0.125], [0.25, 0.5]], atol=1e-12)
    assert n_a == 2 and means["b"][1] == 0 and np.isnan(means["b"][0]).all()
    with pytest.raises(DataError, match="'b' has no valid map"):
        difference_map(maps, ["a", "a", "b", "b"], "a", "b")


def test_difference_map_known_answer():
    maps = np.stack([np.full((3, 3), v) for v in (1.0, 3.0, 10.0, 20.0)])
    diff = difference_map(maps, np.array(["x", "x", "y", "y"]), "y", "x")
    np.testing.assert_allclose(diff, 13.0)


def test_bad_arguments_are_refused():
    with pytest.raises(ConfigError, match="method"):
        normalise_maps(_maps(), method="l2")
    with pytest.raises(DataError, match="one label per map"):
        group_means(_maps(), ["a"])
