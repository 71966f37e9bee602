"""Analysis figures: render to PNG, one colour scale across panels, colour maps as documented."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from generator.analysis.compare import compare_models_on_region
from generator.analysis.patches import crop_patches, high_impact_patches
from generator.analysis.regions import facex_region_scores
from generator.figures import analysis
from generator.figures.export import figure_bytes

GROUPS = ["MST 1-3", "MST 8-10"]


def _render(fig: Figure) -> None:
    files = figure_bytes(fig, figure_id="test", title="t", caption="c", provenance={})
    assert files["png"].startswith(b"\x89PNG")


def _map_images(fig: Figure) -> list:
    return [image for ax in fig.axes for image in ax.get_images() if image.get_gid() == analysis.GID]


def _limits(fig: Figure) -> set[tuple[float, float]]:
    return {(image.norm.vmin, image.norm.vmax) for image in _map_images(fig)}


@pytest.fixture(scope="module")
def maps():
    rng = np.random.default_rng(0)
    return {row: {g: rng.random((12, 12)) * scale for g, scale in zip(GROUPS, (1.0, 3.0))}
            for row in ("saliency", "ig")}


def test_group_mean_grid_shares_one_scale(maps):
    n = {row: {g: 10 for g in GROUPS} for row in maps}
    fig = analysis.group_mean_grid(maps, row_label="method", background=np.full((12, 12, 3), 128), n=n)
    images = _map_images(fig)
    assert len(images) == 4 and len(_limits(fig)) == 1
    vmax = max(m.max() for row in maps.values() for m in row.values())
    (low, high), = _limits(fig)
    assert low == 0.0 and high == pytest.approx(vmax)
    assert images[0].get_cmap().name.startswith("magma")
    assert "MST 8-10 (n = 10)" in [ax.get_title() for ax in fig.axes]
    _render(fig)
    signed = analysis.group_mean_grid({k: {g: m - 1.0 for g, m in v.items()} for k, v in maps.items()},
                                      row_label="method", signed=True, vmax=2.5)
    assert _limits(signed) == {(-2.5, 2.5)}
    assert _map_images(signed)[0].get_cmap().name.startswith("RdBu_r")


def test_group_mean_grid_keeps_the_label_of_a_row_whose_first_group_is_empty(maps):
    """A row without a mean for some group (no false match in that band, say) keeps its label and the column
    order asked for; the empty panel says why it is empty."""
    partial = {"saliency": {GROUPS[1]: maps["saliency"][GROUPS[1]]}, "ig": maps["ig"]}
    fig = analysis.group_mean_grid(partial, row_label="outcome", groups=list(GROUPS), empty_label="no pairs")
    assert len(_map_images(fig)) == 3
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]
    assert labels[:2] == ["saliency", "ig"]  # then the colour bar's
    titles = [ax.get_title() for ax in fig.axes[:2]]
    assert titles == list(GROUPS)
    assert "no pairs" in [t.get_text() for ax in fig.axes for t in ax.texts]
    _render(fig)


def test_difference_maps_symmetric_scale_and_contours():
    rng = np.random.default_rng(1)
    diffs = {"a - b": rng.normal(size=(10, 10)), "c - b": 3 * rng.normal(size=(10, 10))}
    significant = {"a - b": np.zeros((10, 10), bool), "c - b": np.abs(diffs["c - b"]) > 4}
    fig = analysis.difference_maps(diffs, significant)
    (low, high), = _limits(fig)
    assert low == -high == pytest.approx(-max(np.abs(d).max() for d in diffs.values()))
    assert len(fig.axes[1].collections) >= 1 and len(fig.axes[0].collections) == 0
    _render(fig)


def test_region_share_bars_with_intervals():
    summary = pd.DataFrame({"group": np.repeat(GROUPS, 3), "region": ["eyes", "mouth", "cue"] * 2,
                            "n": 10, "share": [0.2, 0.5, 0.3, 0.1, 0.3, 0.6],
                            "ci_low": [0.1, 0.4, 0.2, 0.05, 0.2, 0.5], "ci_high": [0.3, 0.6, 0.4, 0.2, 0.4, 0.7]})
    fig = analysis.region_share_bars(summary, by="group", region_order=["mouth", "eyes", "cue"])
    bars = fig.axes[0].patches
    assert len(bars) == 6 and bars[0].get_height() == pytest.approx(0.5)  # first group, first region (mouth)
    _render(fig)


def test_face_prototype_one_shared_scale_and_missing_regions_grey():
    template = np.zeros((12, 12), dtype=np.uint8)
    template[3:9, 3:9] = 1
    template[4:6, 4:8] = 2
    cams = np.random.default_rng(2).random((4, 12, 12))
    masks = np.repeat(template[None], 4, axis=0)
    masks[2:, 4:6, 4:8] = 1  # region 2 absent in the second group
    meta = pd.DataFrame({"group": np.repeat(GROUPS, 2)})
    scores = facex_region_scores(cams, masks, ("background", "skin", "eyes"), meta, by=["group"])
    fig = analysis.face_prototype(scores, template_mask=template, region_names=("background", "skin", "eyes"),
                                  groups=GROUPS, vmax=0.8)
    assert _limits(fig) == {(0.0, 0.8)}
    second = _map_images(fig)[1].get_array()
    assert np.ma.getmaskarray(second)[4, 4] and np.ma.getmaskarray(second)[0, 0]  # absent region, background
    assert _map_images(fig)[0].get_cmap().name.startswith("viridis")
    _render(fig)


def test_patch_gallery_and_fair_vs_biased():
    cams = np.random.default_rng(3).random((3, 20, 20))
    masks = np.zeros((3, 20, 20), dtype=np.uint8)
    masks[:, 10:] = 1
    table = high_impact_patches(cams, masks, ("top", "bottom"), pd.DataFrame({"image_id": list("abc")}),
                                patch=6, top=5)
    images = np.random.default_rng(4).integers(0, 255, (3, 20, 20, 3), dtype=np.uint8)
    fig = analysis.patch_gallery(crop_patches(images, table), table, ncols=3)
    assert sum(len(ax.get_images()) for ax in fig.axes) == 5
    _render(fig)
    rng = np.random.default_rng(5)
    rows = [pd.DataFrame({"image_id": range(30), "model": model, "method": method, "region": "cue",
                          "share": rng.uniform(0, 0.1, 30) + shift})
            for method, shifts in (("ig", (0.0, 0.3)), ("saliency", (0.0, 0.0))) for model, shift in
            zip(("fair", "biased"), shifts)]
    comparison = compare_models_on_region(pd.concat(rows), region="cue", model_a="fair", model_b="biased",
                                          n_permutations=200)
    fig = analysis.fair_vs_biased(comparison)
    assert len(fig.axes) == 2 and "*" in [t.get_text() for t in fig.axes[1].texts]
    _render(fig)
