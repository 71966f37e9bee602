"""Region shares, FaceX region scores (hand-computed), landmark regions on synthetic faces."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generator.analysis.regions import (
    LANDMARK_REGIONS,
    facex_image_scores,
    facex_region_scores,
    landmark_regions,
    region_share_summary,
    region_share_table,
)
from generator.datasets.synthetic import REGIONS, SyntheticParams, generate
from generator.errors import DataError

MASK = np.array([[0, 0, 1, 1],
                 [0, 0, 1, 1],
                 [0, 0, 2, 2],
                 [0, 0, 2, 2]], dtype=np.uint8)
NAMES = ("left", "top_right", "bottom_right")


def _facex_example():
    """Image 0: non-zero mean (4+2+1+3+3+1)/6 = 2.33; above: 4, 3 (top right), 3 (bottom right).
    Image 1: no bottom-right region; non-zero mean (1+1+1+5+2)/5 = 2; above: 5 only.
    Image 2: all-zero CAM (no threshold)."""
    cams = np.zeros((3, 4, 4))
    cams[0] = [[0, 0, 4, 2], [0, 1, 0, 3], [0, 0, 3, 1], [0, 0, 0, 0]]
    cams[1] = [[0, 0, 1, 1], [2, 0, 1, 5], [0, 0, 0, 0], [0, 0, 0, 0]]
    masks = np.stack([MASK, np.where(MASK == 2, 0, MASK), MASK]).astype(np.uint8)
    meta = pd.DataFrame({"image_id": ["i0", "i1", "i2"], "group": ["g", "g", "g"]})
    return cams, masks, meta


def test_facex_scores_match_the_hand_computation():
    cams, masks, meta = _facex_example()
    per_image = facex_image_scores(cams, masks, NAMES, meta).set_index(["image_id", "region"])["score"]
    assert per_image["i0", "top_right"] == pytest.approx(2 / 4)
    assert per_image["i0", "bottom_right"] == pytest.approx(1 / 4)
    assert per_image["i0", "left"] == 0.0
    assert per_image["i1", "top_right"] == pytest.approx(1 / 4) and per_image["i1", "left"] == 0.0
    assert np.isnan(per_image["i1", "bottom_right"])       # region absent
    assert per_image.loc["i2"].isna().all()                  # no non-zero pixel
    groups = facex_region_scores(cams, masks, NAMES, meta, by=["group"]).set_index("region")
    assert list(groups.index) == list(NAMES)
    assert groups.loc["top_right", "score"] == pytest.approx(0.375) and groups.loc["top_right", "n_images"] == 2
    # the absent region is excluded, not averaged in as 0
    assert groups.loc["bottom_right", "score"] == pytest.approx(0.25)
    assert groups.loc["bottom_right", "n_images"] == 1


def test_shares_long_table_sums_to_one_and_keeps_meta():
    rng = np.random.default_rng(0)
    masks = rng.integers(0, 3, (4, 6, 6), dtype=np.uint8)
    maps = rng.normal(size=(4, 6, 6))
    maps[3] = np.nan  # a face that could not be aligned
    meta = pd.DataFrame({"image_id": list("abcd"), "group": ["x", "x", "y", "y"], "model": "m"})
    table = region_share_table(maps, masks, NAMES, meta)
    assert list(table.columns) == ["image_id", "group", "model", "region", "share"]
    assert len(table) == 4 * len(NAMES)
    totals = table.groupby("image_id")["share"].sum(min_count=1)
    np.testing.assert_allclose(totals[["a", "b", "c"]], 1.0, atol=1e-12)
    assert np.isnan(totals["d"])
    expected = np.abs(maps[1])[masks[1] == 2].sum() / np.abs(maps[1]).sum()
    assert table.query("image_id == 'b' and region == 'bottom_right'")["share"].item() == pytest.approx(expected)


def test_share_summary_has_intervals_per_group_and_region():
    rng = np.random.default_rng(1)
    masks = rng.integers(0, 3, (20, 5, 5), dtype=np.uint8)
    meta = pd.DataFrame({"image_id": range(20), "group": ["x"] * 10 + ["y"] * 10})
    table = region_share_table(rng.random((20, 5, 5)), masks, NAMES, meta)
    summary = region_share_summary(table, by=["group"], n_boot=200, seed=0)
    assert list(summary.columns) == ["group", "region", "n", "share", "ci_low", "ci_high"]
    assert len(summary) == 6 and (summary["n"] == 10).all()
    assert ((summary["ci_low"] <= summary["share"]) & (summary["share"] <= summary["ci_high"])).all()
    np.testing.assert_allclose(summary.groupby("group")["share"].sum(), 1.0, atol=1e-12)


def test_synthetic_faces_shares_and_scores():
    faces = generate(SyntheticParams(image_size=48, identities={"eval": 2}, images_per_identity=10), seed=0)
    cams = (faces.masks == REGIONS.index("mouth")).astype(float)  # a CAM that sees only the mouth
    table = region_share_table(cams, faces.masks, REGIONS, faces.table[["image_id", "skin_tone"]])
    assert table.query("region == 'mouth'")["share"].min() == pytest.approx(1.0)
    scores = facex_region_scores(cams, faces.masks, REGIONS, faces.table, by=[]).set_index("region")
    assert scores.loc["mouth", "score"] == 0.0  # every mouth pixel equals the threshold (1), none above
    assert scores.loc["cue", "n_images"] == faces.table["cue"].sum()


def test_landmark_regions_overlap_the_true_parts():
    faces = generate(SyntheticParams(image_size=64, identities={"eval": 2}, images_per_identity=10), seed=2)
    masks = landmark_regions(faces.landmarks, (64, 64))
    assert masks.shape == faces.masks.shape and masks.dtype == np.uint8
    for name, truth, precision in [("eyes", "eyes", 0.7), ("brows", "brows", 0.3), ("nose", "nose", 0.2),
                                   ("mouth", "mouth", 0.25)]:
        placed = masks == LANDMARK_REGIONS.index(name)
        assert (faces.masks[placed] == REGIONS.index(truth)).mean() > precision, name
    face_parts = np.isin(faces.masks, [REGIONS.index(r) for r in ("skin", "hair", "accessories", "eyes",
                                                                  "brows", "nose", "mouth")])
    assert face_parts[masks == LANDMARK_REGIONS.index("cheeks")].mean() > 0.9
    broken = faces.landmarks[:2].copy()
    broken[0, 0] = np.nan
    assert (landmark_regions(broken, (64, 64))[0] == 0).all()


def test_meta_must_match():
    cams, masks, meta = _facex_example()
    with pytest.raises(DataError, match="one row per map"):
        facex_image_scores(cams, masks, NAMES, meta.iloc[:2])
    with pytest.raises(DataError, match="by column"):
        facex_region_scores(cams, masks, NAMES, meta, by=["skin"])
