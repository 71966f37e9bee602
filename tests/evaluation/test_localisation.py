"""Tests of generator.evaluation.localisation on hand-built masks and on synthetic faces."""
from __future__ import annotations

import numpy as np
import pytest

from generator.datasets.synthetic import REGIONS, SyntheticParams, generate
from generator.errors import ConfigError, DataError
from generator.evaluation.localisation import mass_on, pointing_game, region_shares

# 4x4 image: region 0 on the left half, region 1 top-right, region 2 bottom-right
MASK = np.array([[0, 0, 1, 1],
                 [0, 0, 1, 1],
                 [0, 0, 2, 2],
                 [0, 0, 2, 2]], dtype=np.uint8)
NAMES = ("left", "top_right", "bottom_right")


def test_hand_built_shares() -> None:
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0] = 2.0      # left
    maps[0, 1, 3] = -1.0     # top right (negative)
    maps[0, 3, 2] = 1.0      # bottom right
    absolute = region_shares(maps, MASK[None], NAMES)
    assert list(absolute.columns) == ["image", *NAMES]
    np.testing.assert_allclose(absolute.loc[0, list(NAMES)], [0.5, 0.25, 0.25], atol=1e-12)
    positive = region_shares(maps, MASK[None], NAMES, absolute=False)
    np.testing.assert_allclose(positive.loc[0, list(NAMES)], [2 / 3, 0.0, 1 / 3], atol=1e-12)


def test_shares_sum_to_one_and_zero_map_is_nan() -> None:
    rng = np.random.default_rng(0)
    masks = rng.integers(0, len(REGIONS), (5, 12, 12), dtype=np.uint8)
    maps = rng.normal(size=(5, 12, 12))
    maps[3] = 0.0
    shares = region_shares(maps, masks, REGIONS)
    totals = shares[list(REGIONS)].sum(axis=1)
    np.testing.assert_allclose(totals.drop(index=3), 1.0, atol=1e-9)
    assert shares.loc[3, list(REGIONS)].isna().all()
    # independent computation with masks
    for r, name in enumerate(REGIONS):
        expected = np.abs(maps[0])[masks[0] == r].sum() / np.abs(maps[0]).sum()
        assert shares.loc[0, name] == pytest.approx(expected, abs=1e-12)


def test_mass_on_union() -> None:
    maps = np.ones((2, 4, 4))
    maps[1] = 0.0
    scores = mass_on(maps, np.stack([MASK, MASK]), [1, 2])
    assert scores[0] == pytest.approx(0.5, abs=1e-12) and np.isnan(scores[1])


@pytest.mark.parametrize(("peak", "tolerance", "hit"), [
    ((0, 3), 0, 1.0),     # on region 1
    ((0, 1), 0, 0.0),     # next to region 1
    ((0, 1), 1, 1.0),     # 1 px from region 1
    ((2, 0), 2, 0.0),     # nearest region-1 pixel is (1, 2), sqrt(5) = 2.24 px away
    ((2, 0), 2.3, 1.0),
])
def test_pointing_game_known_answers(peak, tolerance, hit) -> None:
    maps = np.zeros((1, 4, 4))
    maps[0][peak] = 1.0
    assert pointing_game(maps, MASK[None], [1], tolerance_px=tolerance)[0] == hit


def test_pointing_game_takes_first_maximum_and_union_of_targets() -> None:
    maps = np.zeros((1, 4, 4))
    maps[0, 3, 0] = maps[0, 3, 3] = 1.0  # tie: (3, 0) comes first in raster order
    assert pointing_game(maps, MASK[None], [2], tolerance_px=0)[0] == 0.0
    assert pointing_game(maps, MASK[None], [0, 2], tolerance_px=0)[0] == 1.0


def test_pointing_game_undefined_cases() -> None:
    maps = np.zeros((2, 4, 4))
    maps[1, 0, 3] = 1.0
    masks = np.stack([MASK, np.zeros_like(MASK)])
    scores = pointing_game(maps, masks, [1])
    assert np.isnan(scores[0])  # constant map
    assert np.isnan(scores[1])  # no target pixel in the image


def test_synthetic_faces_mouth_map() -> None:
    faces = generate(SyntheticParams(image_size=48, identities={"eval": 1}, images_per_identity=10), seed=0)
    mouth = REGIONS.index("mouth")
    maps = (faces.masks == mouth).astype(np.float32)
    np.testing.assert_allclose(mass_on(maps, faces.masks, [mouth]), 1.0, atol=1e-12)
    np.testing.assert_array_equal(pointing_game(maps, faces.masks, [mouth], tolerance_px=0), 1.0)
    shares = region_shares(maps, faces.masks, REGIONS)
    np.testing.assert_allclose(shares["mouth"], 1.0, atol=1e-12)


def test_refuses_bad_masks() -> None:
    maps = np.ones((1, 4, 4))
    with pytest.raises(DataError, match="region names"):
        region_shares(maps, MASK[None] + 5, NAMES)
    with pytest.raises(DataError, match="shape"):
        region_shares(maps, MASK[None, :2], NAMES)
    with pytest.raises(ConfigError, match="region ids"):
        mass_on(maps, MASK[None], [])
