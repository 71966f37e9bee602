"""Helpers shared by several test files (importable: tests/ is on the pytest pythonpath)."""
from __future__ import annotations

import shutil
from pathlib import Path

from generator.config import Config, parse_config

ROOT = Path(__file__).resolve().parents[1]
# A config string that would run script if a page or slide inserted it as HTML.
HOSTILE = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>"


def tiny_config(workdir: Path, **overrides) -> Config:
    """A small, fast configuration whose outputs all live under ``workdir``."""
    raw = {
        "seed": 3,
        "dataset": {"synthetic": {"image_size": 48, "images_per_identity": 10,
                                  "identities": {"train_fair": 16, "train_biased": 16, "eval": 16}}},
        "models": [{"name": "fair", "train_split": "train_fair", "keras_twin": True},
                   {"name": "biased", "train_split": "train_biased", "description": HOSTILE}],
        "training": {"epochs": 2, "width": 8, "batch_size": 32},
        "attribution": {"methods": ["captum.saliency", "captum.integrated_gradients", "captum.guided_backprop",
                                    "captum.gradcam", "xplique.saliency", "xplique.gradcam"],
                        "params": {"captum.integrated_gradients": {"steps": 8}},
                        "per_group": 1, "extremes_per_group": 0, "deletion_steps": 4,
                        "sanity_methods": ["captum.saliency", "captum.guided_backprop"], "sanity_images": 3},
        "report": {"samples_per_group": 2, "title": "Tiny <b>audit</b> " + HOSTILE},
        "output": {"results_dir": str(workdir / "docs/results"), "slides_dir": str(workdir / "slides/build"),
                   "cache_dir": str(workdir / "cache"), "site_dir": str(workdir / "site"),
                   "mkdocs_config": str(workdir / "mkdocs.yml"), "node_modules": str(ROOT / "node_modules")},
    }
    for key, value in overrides.items():
        raw[key] = value
    return parse_config(raw, source="tiny")


def copy_site_sources(workdir: Path) -> None:
    """Copy mkdocs.yml and the hand-written docs (not generated results) into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / "mkdocs.yml", workdir / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", workdir / "docs", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("results", "vendor"))
