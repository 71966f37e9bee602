"""A build on a user's own data and models: a CSV dataset with bad rows, a PyTorch class-file model,
an ONNX model and a default model trained on the data; and the real-model demo config."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import ROOT
from PIL import Image

from generator.config import load_config, parse_config
from generator.datasets.synthetic import SyntheticParams, generate
from generator.pipeline.build import build

pytestmark = pytest.mark.slow

CLASS_FILE = '''
import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes=2, width=6):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.features(x)), 1))
'''


def _outputs(workdir: Path) -> dict:
    return {"results_dir": str(workdir / "docs/results"), "slides_dir": str(workdir / "slides/build"),
            "cache_dir": str(workdir / "cache"), "site_dir": str(workdir / "site"),
            "mkdocs_config": str(workdir / "mkdocs.yml"), "node_modules": str(ROOT / "node_modules")}


def _write_dataset(root: Path) -> Path:
    """48 px synthetic faces saved as PNG files, listed in a CSV with two bad rows' images."""
    faces = generate(SyntheticParams(image_size=48, images_per_identity=10,
                                     identities={"train_fair": 0, "train_biased": 0, "eval": 16}), seed=5)
    table = faces.table[faces.table["split"] == "eval"]
    rows = []
    for k, (index, row) in enumerate(table.iterrows()):
        relative = f"faces dir/{row['identity']}/img {k:03d}.png"  # spaces in paths on purpose
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(faces.images[index]).save(root / relative)
        rows.append({"image": relative, "label": row["label_name"], "tone": row["skin_tone"],
                     "age": row["age_group"], "person": row["identity"]})
    (root / rows[0]["image"]).write_bytes(b"")                     # a zero-byte image
    (root / rows[1]["image"]).write_bytes(b"not an image at all")  # a corrupt one
    (root / rows[2]["image"]).unlink()                             # a missing one
    Image.fromarray(faces.images[table.index[3]]).convert("L").save(root / rows[3]["image"])  # grayscale
    Image.fromarray(np.pad(faces.images[table.index[4]], ((6, 6), (0, 0), (0, 0)))).save(root / rows[4]["image"])
    csv = root / "labels.csv"
    pd.DataFrame(rows).to_csv(csv, index=False, encoding="utf-8-sig")  # with a byte-order mark
    return csv


def _write_models(folder: Path) -> tuple[Path, Path, Path]:
    import importlib.util

    folder.mkdir(parents=True, exist_ok=True)
    class_file = folder / "tiny_net.py"
    class_file.write_text(CLASS_FILE)
    spec = importlib.util.spec_from_file_location("tiny_net_for_test", class_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    net = module.TinyNet().eval()
    weights = folder / "tiny.pt"
    torch.save(net.state_dict(), weights)
    onnx_file = folder / "tiny.onnx"
    torch.onnx.export(net, torch.zeros(1, 3, 48, 48), onnx_file, input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "n"}, "logits": {0: "n"}}, dynamo=False)
    return class_file, weights, onnx_file


@pytest.fixture(scope="module")
def own_build(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("own")
    from helpers import copy_site_sources

    copy_site_sources(workdir)
    csv = _write_dataset(workdir / "data")
    class_file, weights, onnx_file = _write_models(workdir / "models")
    pre = {"size": 48, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
    config = parse_config({
        "seed": 1,
        "dataset": {"kind": "csv", "root": str(workdir / "data"), "annotations": str(csv), "label": "label",
                    "label_values": ["not smiling", "smiling"], "attributes": ["tone", "age"],
                    "identity_column": "person", "image_size": 48, "max_images": None, "eval_fraction": 0.5},
        "models": [{"name": "classfile", "kind": "pytorch", "class_file": str(class_file), "class_name": "TinyNet",
                    "path": str(weights), "preprocessing": pre},
                   {"name": "onnx", "kind": "onnx", "path": str(onnx_file), "preprocessing": pre},
                   {"name": "trained", "train_split": "train"}],
        "training": {"epochs": 2, "width": 8},
        "attribution": {"methods": ["captum.saliency", "captum.gradcam", "xplique.saliency"], "per_group": 2,
                        "extremes_per_group": 0, "deletion_steps": 4, "sanity_methods": ["captum.saliency"],
                        "sanity_images": 2},
        "report": {"samples_per_group": 1},
        "output": _outputs(workdir),
    }, source="own-data test")
    result = build(config, site=False)
    return config, result, csv


def test_skipped_images_are_listed_and_counts_add_up(own_build):
    config, result, csv = own_build
    listed = len(pd.read_csv(csv))
    skipped = pd.read_csv(result.results_dir / "tables/tab-dataset-skipped.csv")
    assert len(skipped) == 3
    assert set(skipped["stage"]) == {"image"}
    reasons = " ".join(skipped["reason"]).lower()
    assert "0 bytes" in reasons or "empty" in reasons
    assert "not found" in reasons or "missing" in reasons or "does not exist" in reasons
    page = (result.results_dir / "dataset.md").read_text()
    used = listed - 3
    assert f"listed\n  {listed} = used {used} + left out 3" in page or f"{listed} = used {used} + left out 3" in page
    # the conversions of usable images are counted on the page, and the crop is stated in the samples' caption
    assert "1 image: grayscale converted to RGB" in page
    assert "1 image: another aspect ratio than the output's, centre-cropped to it" in page
    manifest = json.loads((result.results_dir / "manifest.json").read_text())
    samples = next(f for f in manifest["figures"] if f["id"] == "fig-dataset-samples")
    assert "1 image: another aspect ratio" in samples["caption"]
    # the group-difference maps name the groups compared: "each other tone minus 'MST ...'" (or 'b' minus 'a')
    titles = [f["title"] for f in manifest["figures"] if f["id"].startswith("fig-analysis-groups-")]
    assert titles
    for title in titles:
        match = re.search(r"(each other tone|'[^']+') minus '([^']+)'", title)
        assert match and match.group(1) != f"'{match.group(2)}'", title


def test_every_model_kind_is_audited(own_build):
    config, result, _ = own_build
    accuracy = pd.read_csv(result.results_dir / "tables/tab-models-accuracy-by-tone.csv")
    assert set(accuracy["model"]) == {"classfile", "onnx", "trained"}
    # The ONNX file is the same network as the class file: same predictions, same accuracy.
    overall = accuracy[accuracy["tone"] == "all"].set_index("model")["accuracy"]
    assert overall["onnx"] == pytest.approx(overall["classfile"], abs=1e-9)
    manifest = json.loads((result.results_dir / "manifest.json").read_text())
    ids = {f["id"] for f in manifest["figures"]}
    assert {"fig-gallery-classfile-captum", "fig-gallery-onnx-captum", "fig-gallery-trained-xplique"} <= ids
    for figure in manifest["figures"]:  # every figure is shown on its page
        assert f'id="{figure["id"]}"' in (result.results_dir / figure["page"]).read_text(), figure["id"]
    models = (result.results_dir / "models.md").read_text()
    assert "largest difference from onnxruntime" in models


def test_splits_are_identity_disjoint(own_build):
    config, result, _ = own_build
    from generator.pipeline.cache import Cache
    from generator.pipeline.stages import dataset_stage

    faces = dataset_stage(Cache(config.output.cache_dir), config)
    train = set(faces.table.loc[faces.table["split"] == "train", "identity"])
    evaluation = set(faces.table.loc[faces.table["split"] == "eval", "identity"])
    assert train and evaluation and not train & evaluation
    assert faces.attributes == ("tone", "age")
    # landmarks detected on the images (dlib): regions placed from them, the images without a face listed
    from generator.analysis.regions import LANDMARK_REGIONS

    assert faces.regions == LANDMARK_REGIONS and faces.masks.shape[:1] == faces.landmarks.shape[:1] == (len(faces.table),)
    assert len(faces.landmark_report) == len(faces.table) and 0.5 < faces.located.mean() < 1.0
    assert any("no face found by the landmark detector" in note for note in faces.notes)


def test_the_region_analyses_run_on_detected_landmarks(own_build):
    from generator.analysis.regions import LANDMARK_REGIONS

    _, result, _ = own_build
    tables = result.results_dir / "tables"
    landmarks = pd.read_csv(tables / "tab-dataset-landmarks.csv", keep_default_na=False)
    assert set(landmarks["reason"]) == {"", "no face found by the detector"}
    alignment = pd.read_csv(tables / "tab-analysis-alignment.csv", keep_default_na=False)
    assert alignment["aligned"].any() and (alignment.loc[~alignment["aligned"], "reason"] != "").all()
    shares = pd.read_csv(tables / "tab-analysis-region-shares.csv")
    assert set(shares["region"]) == set(LANDMARK_REGIONS) and {"tone", "model", "method"} <= set(shares.columns)
    facex = pd.read_csv(tables / "tab-analysis-facex.csv")
    assert set(facex["model"]) == {"classfile", "onnx", "trained"} and "tone" in facex.columns
    manifest = json.loads((result.results_dir / "manifest.json").read_text())
    ids = {f["id"] for f in manifest["figures"]}
    assert {"fig-dataset-masks", "fig-analysis-facex-trained", "fig-analysis-patches-onnx"} <= ids
    caption = next(f["caption"] for f in manifest["figures"] if f["id"] == "fig-dataset-masks")
    assert "placed from the detected landmarks" in caption


def test_real_model_demo(tmp_path):
    """The real-faces example on fewer methods: the CC0 ONNX gender model on public-domain faces."""
    import re

    import yaml
    from helpers import copy_site_sources

    copy_site_sources(tmp_path)
    raw = yaml.safe_load((ROOT / "data/configs/real-faces.yaml").read_text())
    raw["attribution"].update(methods=["captum.saliency", "captum.gradcam", "xplique.saliency"],
                              per_group=2, extremes_per_group=0, sanity_methods=["captum.saliency"], sanity_images=2,
                              params={})
    raw["output"] = _outputs(tmp_path)
    (tmp_path / "demo.yaml").write_text(yaml.safe_dump(raw))
    result = build(load_config(tmp_path / "demo.yaml"), site=False)
    dataset = (result.results_dir / "dataset.md").read_text()
    assert "not a bias audit" in dataset and "no demographic labels" in dataset
    predictions = pd.read_csv(result.results_dir / "tables/tab-models-predictions.csv")
    overall = predictions[predictions["source"] == "all"].iloc[0]
    assert overall["n"] == 102  # 2 portraits + 100 LFW crops
    assert overall["share predicted 0"] + overall["share predicted 1"] == pytest.approx(1.0)
    assert 0.5 <= overall["mean confidence"] <= 1.0
    models = (result.results_dir / "models.md").read_text()
    diff = float(re.search(r"probe batch (\d\.\de[-+]\d+)", models).group(1))
    assert diff < 1e-4  # onnx2torch's conversion against onnxruntime
    assert not (result.results_dir / "tables/tab-models-accuracy-by-source.csv").exists()  # no labels, no accuracy
    assert np.isfinite(pd.read_csv(result.results_dir / "tables/tab-evaluation-per-sample.csv")["deletion_auc"]).all()


def test_one_image_per_identity_leaves_verification_out_with_a_note(tmp_path):
    """Without two images of one person there is no genuine pair: verification steps aside, the audit runs."""
    from helpers import copy_site_sources, write_face_csv

    copy_site_sources(tmp_path)
    write_face_csv(tmp_path / "data", identities=8, seed=3, folder="img", person=lambda k, row: f"p{k}")
    config = parse_config({
        "seed": 1,
        "dataset": {"kind": "csv", "root": str(tmp_path / "data"), "annotations": str(tmp_path / "data/labels.csv"),
                    "label": "label", "label_values": ["not smiling", "smiling"], "attributes": ["tone"],
                    "identity_column": "person", "image_size": 48, "max_images": None, "eval_fraction": 0.5},
        "models": [{"name": "trained", "train_split": "train"}],
        "training": {"epochs": 1, "width": 8},
        "replicates": 1,
        "attribution": {"methods": ["captum.saliency"], "per_group": 1, "extremes_per_group": 0, "deletion_steps": 4,
                        "sanity_methods": ["captum.saliency"], "sanity_images": 2},
        "report": {"samples_per_group": 1},
        "output": _outputs(tmp_path),
    }, source="one-image-per-identity test")
    result = build(config, site=False)
    page = (result.results_dir / "bias-verification.md").read_text()
    assert "Verification of model &#39;trained&#39; left out" in page or "Verification of model 'trained' left out" in page
    assert "single image" in page and "no genuine pair" in page
    assert (result.results_dir / "tables/tab-bias-rates-trained.csv").is_file()  # the classification audit ran
