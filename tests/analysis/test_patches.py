"""High-impact patches: known windows, brute-force agreement, per-group top, crops."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generator.analysis.patches import crop_patches, high_impact_patches
from generator.errors import ConfigError, DataError

NAMES = ("right", "left")


def _example():
    """20 x 20: region 1 the left half, with a hot 4 x 4 block at x 3..6, y 5..8; CAM 1 elsewhere."""
    masks = np.zeros((2, 20, 20), dtype=np.uint8)
    masks[:, :, :10] = 1
    cams = np.ones((2, 20, 20))
    cams[0, 5:9, 3:7] = 10.0
    meta = pd.DataFrame({"image_id": ["a", "b"], "group": ["x", "y"]})
    return cams, masks, meta


def test_known_windows():
    cams, masks, meta = _example()
    table = high_impact_patches(cams, masks, NAMES, meta, patch=4, top=10)
    assert list(table.columns) == ["image_id", "group", "image_index", "region", "x0", "y0", "size", "score"]
    first = table.iloc[0]
    assert (first["image_id"], first["region"], first["x0"], first["y0"], first["score"]) == ("a", "left", 3, 5, 160)
    right = table[(table["image_id"] == "a") & (table["region"] == "right")].iloc[0]
    assert (right["x0"], right["y0"], right["score"]) == (10, 0, 16)  # first maximum in raster order
    assert len(table) == 4 and (table["size"] == 4).all()
    assert table["score"].is_monotonic_decreasing
    assert len(high_impact_patches(cams, masks, NAMES, meta, patch=4, top=1)) == 1


def test_matches_brute_force_and_in_region_only():
    rng = np.random.default_rng(0)
    cams = rng.random((3, 12, 12))
    masks = rng.integers(0, 2, (3, 12, 12), dtype=np.uint8)
    table = high_impact_patches(cams, masks, NAMES, pd.DataFrame({"k": range(3)}), patch=5, top=100)
    for row in table.itertuples():
        inside = np.where(masks[row.image_index] == NAMES.index(row.region), cams[row.image_index], 0.0)
        sums = np.array([[inside[y:y + 5, x:x + 5].sum() for x in range(8)] for y in range(8)])
        assert row.score == pytest.approx(sums.max(), abs=1e-9)
        assert sums[row.y0, row.x0] == pytest.approx(sums.max(), abs=1e-9)
    coarse = high_impact_patches(cams, masks, NAMES, pd.DataFrame({"k": range(3)}), patch=5, top=100, stride=2)
    assert (coarse["x0"] % 2 == 0).all() and (coarse["score"] <= table["score"].max() + 1e-12).all()


def test_top_per_group_small_images_and_absent_regions():
    cams, masks, meta = _example()
    masks[1] = 0  # image b has no "left" region
    per_group = high_impact_patches(cams, masks, NAMES, meta, patch=4, top=1, by=["group"])
    assert list(per_group["group"]) == ["x", "y"] and per_group.iloc[1]["region"] == "right"
    small = high_impact_patches(cams[:, :8, :8], masks[:, :8, :8], NAMES, meta, patch=16, top=5)
    assert (small["size"] == 8).all() and (small[["x0", "y0"]] == 0).all().all()


def test_crops_are_the_windows():
    cams, masks, meta = _example()
    images = np.arange(2 * 20 * 20 * 3, dtype=np.uint8).reshape(2, 20, 20, 3)
    table = high_impact_patches(cams, masks, NAMES, meta, patch=4, top=3)
    crops = crop_patches(images, table)
    assert len(crops) == 3 and all(c.shape == (4, 4, 3) for c in crops)
    np.testing.assert_array_equal(crops[0], images[0, 5:9, 3:7])
    with pytest.raises(DataError, match="image_index"):
        crop_patches(images, table.drop(columns="image_index"))


def test_bad_arguments_are_refused():
    cams, masks, meta = _example()
    with pytest.raises(ConfigError, match="stride"):
        high_impact_patches(cams, masks, NAMES, meta, patch=4, stride=5)
    with pytest.raises(ConfigError, match="patch"):
        high_impact_patches(cams, masks, NAMES, meta, patch=0)
