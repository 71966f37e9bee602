"""Every input a stage reads is part of its cache key: changing one recomputes what depends on it, and only that.

One audit of a loaded (class-file) PyTorch model on a CSV dataset is built, then rebuilt after each of
five changes: one image's pixels replaced under the same file name, one annotation row changed, the
model file's weights replaced, one method's parameter changed, an evaluation budget set. After each
rebuild the test counts the new cache entries per stage and compares maps and per-sample scores with
the previous build.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import ROOT, copy_site_sources, write_face_csv

from generator.config import parse_config
from generator.pipeline.build import build

pytestmark = pytest.mark.slow

NET = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 6, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))
'''
METHODS = ["captum.saliency", "captum.integrated_gradients"]


def _net(folder: Path, seed: int) -> Path:
    import importlib.util

    spec = importlib.util.spec_from_file_location("stale_net", folder / "net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(seed)
    torch.save(module.Net().eval().state_dict(), folder / "net.pt")
    return folder / "net.pt"


def _config(workdir: Path, ig_steps: int = 8, evaluation_images: int | None = None):
    pre = {"size": 48, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    return parse_config({
        "seed": 2,
        "dataset": {"kind": "csv", "root": str(workdir / "data"), "annotations": str(workdir / "data/labels.csv"),
                    "label": "label", "label_values": ["not smiling", "smiling"], "attributes": ["tone"],
                    "identity_column": "person", "image_size": 48, "max_images": None},
        "models": [{"name": "loaded", "kind": "pytorch", "class_file": str(workdir / "models/net.py"),
                    "class_name": "Net", "path": str(workdir / "models/net.pt"), "preprocessing": pre}],
        "attribution": {"methods": METHODS, "params": {"captum.integrated_gradients": {"steps": ig_steps}},
                        "per_group": 3, "extremes_per_group": 0, "deletion_steps": 4, "sanity_methods": ["captum.saliency"],
                        "sanity_images": 2, "budget": {"evaluation_images": evaluation_images}},
        "report": {"samples_per_group": 1, "slides_pdf": False},
        "output": {"results_dir": str(workdir / "docs/results"), "slides_dir": str(workdir / "slides/build"),
                   "cache_dir": str(workdir / "cache"), "site_dir": str(workdir / "site"),
                   "mkdocs_config": str(workdir / "mkdocs.yml"), "node_modules": str(ROOT / "node_modules")},
    }, source="stale-input test")


def _entries(workdir: Path) -> dict[str, set[str]]:
    cache = workdir / "cache"
    stages = [s for s in cache.iterdir() if s.is_dir()] if cache.is_dir() else []
    return {stage.name: {e.name for e in stage.iterdir() if (e / "done.json").is_file()} for stage in stages}


class _Audit:
    """The workdir and what the last build produced."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.before: dict[str, set[str]] = {}
        self.new: dict[str, int] = {}

    def build(self, **config) -> None:
        self.before = _entries(self.workdir)
        build(_config(self.workdir, **config), site=False, slides_pdf=False)
        after = _entries(self.workdir)
        self.new = {stage: len(keys - self.before.get(stage, set())) for stage, keys in after.items()}

    def maps(self) -> dict[str, dict[str, np.ndarray]]:
        """Maps of the last build, per method and image id (read from the cache entries it used)."""
        chosen = pd.read_csv(self.workdir / "docs/results/tables/tab-attribution-images.csv", dtype={"image_id": str})
        manifest = json.loads((self.workdir / "docs/results/manifest.json").read_text())
        gallery = next(f for f in manifest["figures"] if f["id"] == "fig-gallery-loaded-captum")
        out = {}
        for name, key in gallery["provenance"]["maps"].items():
            maps = np.load(self.workdir / "cache/attribution" / key / "maps.npy")
            out[name.split("/", 1)[1]] = dict(zip(chosen["image_id"], maps))
        return out

    def scores(self) -> pd.DataFrame:
        table = pd.read_csv(self.workdir / "docs/results/tables/tab-evaluation-per-sample.csv", dtype={"image_id": str})
        return table.set_index(["method", "image_id"]).sort_index()


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stale")
    copy_site_sources(workdir)
    write_face_csv(workdir / "data", identities=6, seed=4)
    (workdir / "models").mkdir()
    (workdir / "models/net.py").write_text(NET)
    _net(workdir / "models", seed=0)
    result = _Audit(workdir)
    result.build()
    return result


def test_a_replaced_image_gets_new_maps_and_scores(audit):
    maps, scores = audit.maps(), audit.scores()
    chosen = pd.read_csv(audit.workdir / "docs/results/tables/tab-attribution-images.csv", dtype={"image_id": str})
    table = pd.read_csv(audit.workdir / "data/labels.csv")
    target, path = chosen[["image_id", "path"]].iloc[0]
    donor = next(p for p in table["image"] if p != path)
    (audit.workdir / "data" / path).write_bytes((audit.workdir / "data" / donor).read_bytes())  # same name, new pixels
    audit.build()
    assert audit.new.get("dataset") == 1 and audit.new.get("predict") == 1
    assert audit.new.get("attribution") == len(METHODS) and audit.new.get("evaluation") == len(METHODS)
    new_maps, new_scores = audit.maps(), audit.scores()
    for method in maps:
        assert not np.allclose(new_maps[method][target], maps[method][target]), method
        for image in maps[method]:
            if image != target:  # the other images' maps are the same numbers
                np.testing.assert_allclose(new_maps[method][image], maps[method][image], rtol=1e-5, atol=1e-7)
    changed = (new_scores["deletion_auc"] - scores["deletion_auc"]).abs() > 1e-9
    assert target in set(changed[changed].index.get_level_values("image_id"))


def test_a_changed_annotation_row_reaches_the_tables(audit):
    table = pd.read_csv(audit.workdir / "data/labels.csv")
    table.loc[0, "tone"] = "edited-band"
    table.to_csv(audit.workdir / "data/labels.csv", index=False)
    audit.build()
    assert audit.new.get("dataset") == 1
    by_tone = pd.read_csv(audit.workdir / "docs/results/tables/tab-models-accuracy-by-tone.csv")
    assert "edited-band" in set(by_tone["tone"].astype(str))


def test_a_replaced_model_file_recomputes_its_results_not_the_data(audit):
    maps = audit.maps()
    _net(audit.workdir / "models", seed=1)  # same file name, other weights
    audit.build()
    assert audit.new.get("dataset", 0) == 0
    assert audit.new.get("predict") == 1 and audit.new.get("attribution") == len(METHODS)
    new_maps = audit.maps()
    for method in maps:
        image = next(iter(maps[method]))
        assert not np.allclose(new_maps[method][image], maps[method][image]), method


def test_a_method_parameter_recomputes_that_method_only(audit):
    saliency = audit.maps()["captum.saliency"]
    audit.build(ig_steps=4)
    assert audit.new.get("dataset", 0) == 0 and audit.new.get("predict", 0) == 0
    assert audit.new.get("attribution") == 1 and audit.new.get("evaluation") == 1  # Integrated Gradients only
    for image, values in audit.maps()["captum.saliency"].items():
        np.testing.assert_array_equal(values, saliency[image])
    audit.build(ig_steps=4)  # and a rerun recomputes nothing
    assert sum(audit.new.values()) == 0, audit.new


def test_an_evaluation_budget_keeps_the_maps_and_scores_a_stratified_subsample(audit):
    """``attribution.budget.evaluation_images``: the maps stay (no attribution recomputed); deletion,
    insertion and MuFidelity cover the subsample with the scores those images had before, NaN elsewhere;
    the scores that read the map alone cover every image; the summary's n says how many images each
    score rests on."""
    before = audit.scores()
    audit.build(ig_steps=4, evaluation_images=3)
    assert audit.new.get("attribution", 0) == 0 and audit.new.get("evaluation") == len(METHODS)
    chosen = pd.read_csv(audit.workdir / "docs/results/tables/tab-attribution-images.csv", dtype={"image_id": str})
    subset = chosen[chosen["evaluated"].astype(bool)]
    assert len(subset) == 3 and subset["tone"].nunique() == min(3, chosen["tone"].nunique())  # one per band first
    after = audit.scores()
    inside = after.index.get_level_values("image_id").isin(subset["image_id"])
    for metric in ("deletion_auc", "insertion_auc", "mufidelity"):
        np.testing.assert_allclose(after.loc[inside, metric], before.loc[inside, metric], rtol=1e-5, atol=1e-6)
        assert after.loc[~inside, metric].isna().all(), metric
    pd.testing.assert_series_equal(after["sparseness"], before["sparseness"])
    summary = pd.read_csv(audit.workdir / "docs/results/tables/tab-evaluation-summary.csv").set_index(
        ["method", "metric"])
    for method in METHODS:
        assert summary.loc[(method, "deletion_auc"), "n"] == 3
        assert summary.loc[(method, "sparseness"), "n"] == len(chosen)
