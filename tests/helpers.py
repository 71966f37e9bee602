"""Helpers shared by several test files (importable: tests/ is on the pytest pythonpath)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from generator.config import Config, parse_config

ROOT = Path(__file__).resolve().parents[1]
# A config string that would run script if a page or slide inserted it as HTML.
HOSTILE = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>"


# The synthetic data and training of the small test builds.
SMALL_DATASET = {"synthetic": {"image_size": 48, "images_per_identity": 10,
                               "identities": {"train_fair": 16, "train_biased": 16, "eval": 16}}}
SMALL_TRAINING = {"epochs": 2, "width": 8, "batch_size": 32}
# Face-recognition models of a test build: a few identities per skin-tone band, two epochs.
SMALL_FACE_RECOGNITION = {"identities": {"train_fair": 16, "train_biased": 16, "eval": 20}, "images_per_identity": 10,
                          "epochs": 2, "width": 4, "dim": 8, "batch_size": 32, "imposters_per_genuine": 5,
                          "explain": {"pairs": 3, "other_pairs": 2, "far": 0.05,
                                      "gallery_methods": ["captum.saliency", "captum.integrated_gradients"]}}


def outputs_under(workdir: Path) -> dict[str, str]:
    """The ``output`` section of a test build whose files all live under ``workdir``."""
    return {"results_dir": str(workdir / "docs/results"), "slides_dir": str(workdir / "slides/build"),
            "cache_dir": str(workdir / "cache"), "site_dir": str(workdir / "site"),
            "mkdocs_config": str(workdir / "mkdocs.yml"), "node_modules": str(ROOT / "node_modules")}


def tiny_config(workdir: Path, **overrides) -> Config:
    """A small, fast configuration whose outputs all live under ``workdir``."""
    raw = {
        "seed": 3,
        "dataset": SMALL_DATASET,
        "models": [{"name": "fair", "train_split": "train_fair", "keras_twin": True},
                   {"name": "biased", "train_split": "train_biased", "description": HOSTILE}],
        "training": SMALL_TRAINING,
        "replicates": 2,
        "attribution": {"methods": ["captum.saliency", "captum.integrated_gradients", "captum.guided_backprop",
                                    "captum.gradcam", "xplique.saliency", "xplique.gradcam"],
                        "params": {"captum.integrated_gradients": {"steps": 8}},
                        "per_group": 1, "extremes_per_group": 0, "deletion_steps": 4,
                        "sanity_methods": ["captum.saliency", "captum.guided_backprop"], "sanity_images": 3},
        "verification": {"pairs_table": str(write_bfw_table(workdir / "bfw-datatable.csv")),
                         "face_recognition": SMALL_FACE_RECOGNITION},
        "report": {"samples_per_group": 2, "title": "Tiny <b>audit</b> " + HOSTILE},
        "output": outputs_under(workdir),
    }
    for key, value in overrides.items():
        raw[key] = value
    return parse_config(raw, source="tiny")


BFW_GROUPS = {"AF": ("asian_females", "F", "A"), "AM": ("asian_males", "M", "A"),
              "BF": ("black_females", "F", "B"), "BM": ("black_males", "M", "B"),
              "IF": ("indian_females", "F", "I"), "IM": ("indian_males", "M", "I"),
              "WF": ("white_females", "F", "W"), "WM": ("white_males", "M", "W")}


def write_bfw_table(path: Path, *, identities: int = 10, images: int = 4, seed: int = 0) -> Path:
    """A small pairs table in the BFW datatable format (made-up scores; genuine pairs score higher)."""
    import itertools

    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for code, (folder, gender, ethnicity) in BFW_GROUPS.items():
        people = [f"{folder}/n{code}{k:02d}" for k in range(identities)]
        for k, person in enumerate(people):
            fold = k % 5 + 1
            for a, b in itertools.combinations(range(images), 2):
                rows.append((fold, f"{person}/{a}.jpg", f"{person}/{b}.jpg", 1, k, k, rng.normal(0.6, 0.1)))
            for j in range(k + 5, identities, 5):  # imposters: same subgroup, same fold
                for a in range(images):
                    rows.append((fold, f"{person}/{a}.jpg", f"{people[j]}/{a}.jpg", 0, k, j, rng.normal(0.2, 0.1)))
        rows = [(*r[:7], folder, code, gender, ethnicity) if len(r) == 7 else r for r in rows]
    table = pd.DataFrame(rows, columns=["fold", "p1", "p2", "label", "id1", "id2", "score", "att", "a", "g", "e"])
    out = table[["fold", "p1", "p2", "label", "id1", "id2"]].assign(
        att1=table["att"], att2=table["att"], vgg16=table["score"], resnet50=table["score"],
        senet50=table["score"], a1=table["a"], a2=table["a"], g1=table["g"], g2=table["g"], e1=table["e"],
        e2=table["e"])
    out.to_csv(path, index=False)
    return path


def write_face_csv(root: Path, *, identities: int, seed: int, folder: str = "faces", person=None) -> Path:
    """Evaluation faces of the synthetic generator (48 px, 10 per identity) as PNG files under
    ``root/folder`` and a CSV ``root/labels.csv`` (image, label, tone, person), as a user brings a
    dataset; ``person(k, row)`` names the identity of image ``k`` (default: the generator's)."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    from generator.datasets.synthetic import SyntheticParams, generate

    faces = generate(SyntheticParams(image_size=48, images_per_identity=10,
                                     identities={"train_fair": 0, "train_biased": 0, "eval": identities}), seed=seed)
    (root / folder).mkdir(parents=True, exist_ok=True)
    rows = []
    for k, index in enumerate(np.flatnonzero(faces.table["split"] == "eval")):
        row = faces.table.loc[index]
        relative = f"{folder}/{k:03d}.png"
        Image.fromarray(faces.images[index]).save(root / relative)
        rows.append({"image": relative, "label": row["label_name"], "tone": row["skin_tone"],
                     "person": person(k, row) if person else row["identity"]})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root / "labels.csv"


def copy_site_sources(workdir: Path) -> None:
    """Copy mkdocs.yml and the hand-written docs (not generated results) into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "mkdocs.yml", workdir / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", workdir / "docs", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("results", "real-faces", "vendor"))


# A small whole build run as a user runs it (a subprocess), and the result files it writes.
COMPARED = (".csv", ".png", ".svg", ".pdf")


def write_small_config(workdir: Path) -> Path:
    """A config file for a small whole build (tiny_config, smaller): three methods, no Keras twins, no pairs table."""
    copy_site_sources(workdir)
    raw = {
        "seed": 3,
        "dataset": SMALL_DATASET,
        "models": [{"name": "fair", "train_split": "train_fair", "keras_twin": False},
                   {"name": "biased", "train_split": "train_biased", "keras_twin": False}],
        "training": SMALL_TRAINING,
        "attribution": {"methods": ["captum.saliency", "captum.gradcam", "xplique.saliency"],
                        "per_group": 1, "extremes_per_group": 0, "deletion_steps": 4,
                        "sanity_methods": ["captum.saliency"], "sanity_images": 3},
        "verification": {"face_recognition": SMALL_FACE_RECOGNITION},
        "report": {"samples_per_group": 2, "title": "Kill and resume"},
        "output": outputs_under(workdir),
    }
    config = workdir / "cfg.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config


def command(config: Path) -> list[str]:
    return [sys.executable, "-m", "generator", "build", "--config", str(config), "--no-site"]


def run_build(config: Path, log: Path) -> None:
    with open(log, "w") as out:
        done = subprocess.run(command(config), check=False, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=900)
    assert done.returncode == 0, log.read_text()[-3000:]


def result_files(results: Path) -> dict[str, bytes]:
    return {p.relative_to(results).as_posix(): p.read_bytes()
            for p in sorted(results.rglob("*")) if p.is_file() and p.suffix in COMPARED}




def tiny_faces_and_model(folder: Path, key: str):
    """The tiny config's faces and an untrained built-in CNN (seeded) saved under ``folder``: for stage tests
    that need a model but not a trained one. Returns ``(config, faces, trained)``."""
    import torch

    from generator.models.nets import SmallCNN
    from generator.pipeline.cache import Cache
    from generator.pipeline.stages import TrainedModel, dataset_stage

    config = tiny_config(folder)
    faces = dataset_stage(Cache(folder / "faces-cache"), config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        torch.save(SmallCNN(width=config.training.width).state_dict(), folder / "model.pt")
    trained = TrainedModel("fair", key, folder / "model.pt", "h0", None, 0.0, config.models[0], check={"classes": 2})
    return config, faces, trained
