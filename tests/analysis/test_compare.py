"""Fair vs biased comparison: a planted shift is detected, an absent one is not."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generator.analysis.compare import compare_models_on_region
from generator.analysis.regions import region_share_table
from generator.datasets.synthetic import REGIONS, SyntheticParams, generate
from generator.errors import DataError

N = 40


def _shares(shift: dict[str, float], seed: int = 0) -> pd.DataFrame:
    """Long shares table: 2 models x methods x N images, regions cue / face (summing to 1)."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(["dark", "light"], N // 2)
    base = rng.uniform(0.0, 0.1, N)
    parts = []
    for method, delta in shift.items():
        for model, cue in (("fair", base + rng.normal(0, 0.01, N)),
                           ("biased", base + delta + rng.normal(0, 0.01, N))):
            cue = np.clip(cue, 0.0, 1.0)
            for region, share in (("cue", cue), ("face", 1.0 - cue)):
                parts.append(pd.DataFrame({"image_id": [f"i{k}" for k in range(N)], "skin_tone": groups,
                                           "model": model, "method": method, "region": region,
                                           "share": share}))
    return pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=seed)  # order must not matter


def test_planted_shift_detected_and_absent_one_not():
    table = compare_models_on_region(_shares({"ig": 0.2, "saliency": 0.0}), region="cue", model_a="fair",
                                     model_b="biased", n_permutations=2000,
                                     method_labels={"ig": "Integrated Gradients (Captum)"},
                                     region_label="corner mark")
    assert list(table.columns) == ["method", "region", "n", "share_a", "share_b", "difference", "ci_low",
                                   "ci_high", "p_value", "p_holm", "detected", "sentence"]
    rows = table.set_index("method")
    assert rows.loc["ig", "detected"] and not rows.loc["saliency", "detected"]
    assert rows.loc["ig", "difference"] == pytest.approx(0.2, abs=0.01)
    assert rows.loc["ig", "ci_low"] < 0.2 < rows.loc["ig", "ci_high"] and rows.loc["ig", "n"] == N
    assert rows.loc["ig", "p_value"] == pytest.approx(1 / 2001)
    assert (rows["p_holm"] >= rows["p_value"]).all() and rows.loc["ig", "p_holm"] == pytest.approx(2 / 2001)
    sentence = rows.loc["ig", "sentence"]
    assert sentence.startswith("Integrated Gradients (Captum): the biased model puts ")
    assert "on the corner mark against" in sentence and "Holm-corrected" in sentence
    assert "does not detect" in rows.loc["saliency", "sentence"]


def test_groups_overall_and_region_union():
    table = compare_models_on_region(_shares({"ig": 0.2}), region=["cue", "face"], model_a="fair",
                                     model_b="biased", by=["skin_tone"], n_permutations=200)
    assert list(table["skin_tone"]) == ["all", "dark", "light"]
    assert list(table["n"]) == [N, N // 2, N // 2]
    np.testing.assert_allclose(table[["share_a", "share_b"]], 1.0, atol=1e-12)  # cue + face = everything
    assert not table["detected"].any() and table.loc[1, "sentence"].startswith("ig, dark: does not detect")


def test_pairs_only_images_explained_under_both_models():
    shares = _shares({"ig": 0.2})
    shares = shares[~((shares["model"] == "fair") & shares["image_id"].isin(["i0", "i1", "i2"]))]
    table = compare_models_on_region(shares, region="cue", model_a="fair", model_b="biased", n_permutations=200)
    assert table.loc[0, "n"] == N - 3
    with pytest.raises(DataError, match="model 'unfair'"):
        compare_models_on_region(shares, region="cue", model_a="unfair", model_b="biased")
    with pytest.raises(DataError, match="region"):
        compare_models_on_region(shares, region="hat", model_a="fair", model_b="biased")


def test_on_synthetic_faces_through_region_shares():
    """Maps that look at the mouth; the biased model's IG also at the cue square, where present."""
    faces = generate(SyntheticParams(image_size=48, identities={"eval": 3}, images_per_identity=10), seed=1)
    rng = np.random.default_rng(0)
    mouth = (faces.masks == REGIONS.index("mouth")).astype(float)
    cue = (faces.masks == REGIONS.index("cue")).astype(float)
    tables = []
    for model, method, extra in (("fair", "ig", 0.0), ("biased", "ig", 0.4), ("fair", "sal", 0.0),
                                 ("biased", "sal", 0.0)):
        maps = mouth + extra * cue + rng.uniform(0, 0.05, mouth.shape)
        meta = faces.table[["image_id"]].assign(model=model, method=method)
        tables.append(region_share_table(maps, faces.masks, REGIONS, meta))
    table = compare_models_on_region(pd.concat(tables), region="cue", model_a="fair", model_b="biased",
                                     n_permutations=1000).set_index("method")
    assert table.loc["ig", "detected"] and not table.loc["sal", "detected"]
