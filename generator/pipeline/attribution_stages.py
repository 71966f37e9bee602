"""Cached stages of the explanation part: the selected images and their maps.

Maps are computed once per model x method x image set and streamed to disk chunk
by chunk (memory stays flat as the number of images grows). The per-sample
evaluation of a method's maps is a stage of its own, so that changing an
evaluation setting does not recompute the maps.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from generator.config import Config
from generator.pipeline.cache import Cache, code_hash
from generator.pipeline.stages import Faces, TrainedModel, handle_for

__all__ = ["MapSet", "attribution_key", "attribution_stage", "select_stage"]

ATTRIBUTION_CODE = ("generator.attribution", "generator.models.nets", "generator.models.adapters",
                    "generator.pipeline.attribution_stages")


@dataclass(frozen=True)
class MapSet:
    """The maps of one method on one model, or the reason they were skipped."""

    model: str
    method: str
    key: str
    maps: np.ndarray | None
    caption: str
    framework: str
    skipped: str
    check: dict[str, Any]
    seconds: float


def group_by(config: Config, faces: Faces) -> tuple[str, ...]:
    """The attributes images are stratified by: ``attribution.group_by``, else the dataset's protected attributes."""
    from generator.errors import ConfigError

    chosen = config.attribution.group_by or faces.attributes
    unknown = [g for g in chosen if g not in faces.table.columns]
    if unknown:
        raise ConfigError(f"attribution.group_by: unknown attribute(s) {unknown}; this dataset has "
                          f"{list(faces.attributes)}")
    return tuple(chosen)


def select_stage(config: Config, faces: Faces, predictions: pd.DataFrame) -> pd.DataFrame:
    """The evaluation images to explain: a stratified sample per group plus extreme cases.

    ``predictions`` are one model's (the first's) predictions, used to find
    misclassified and least/most confident images; the same images are explained
    for every model so that models can be compared image by image.
    """
    from generator.attribution.selection import select_images

    settings = config.attribution
    table = faces.table[faces.table["split"] == "eval"].merge(
        predictions[["image_id", "pred", "confidence"]], on="image_id", validate="one_to_one")
    table.index = faces.evaluation
    groups = list(group_by(config, faces))
    chosen = select_images(table, group_cols=groups, per_group=settings.per_group,
                           seed=config.seed, extremes_per_group=settings.extremes_per_group,
                           pred="pred" if faces.labelled else None, confidence="confidence")
    chosen = chosen.assign(row=chosen.index.to_numpy()).reset_index(drop=True)
    return chosen.assign(evaluated=stratified_subsample(chosen, groups, settings.budget.evaluation_images,
                                                        seed=config.seed))


def stratified_subsample(table: pd.DataFrame, groups: list[str], size: int | None, *, seed: int) -> np.ndarray:
    """Which rows of ``table`` (a boolean mask) form a stratified subsample of ``size`` rows.

    Each group gets its share of ``size`` (largest remainder), at least one row while ``size``
    allows, drawn at random (``seed``) within the group; ``size`` unset or not smaller than the
    table: every row. The expensive per-sample metrics run on this subsample
    (``attribution.budget.evaluation_images``).
    """
    keep = np.ones(len(table), dtype=bool)
    if size is None or size >= len(table):
        return keep
    codes = table.groupby(groups, sort=True).ngroup().to_numpy() if groups else np.zeros(len(table), dtype=int)
    members = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]
    counts = np.array([len(m) for m in members], dtype=float)
    quota = size * counts / counts.sum()
    share = np.floor(quota).astype(int)
    if size >= len(members):
        share = np.maximum(share, 1)
    order = np.argsort(-(quota - np.floor(quota)), kind="stable")  # largest remainders first
    k = 0
    while share.sum() < size:
        g = order[k % len(order)]
        if share[g] < counts[g]:
            share[g] += 1
        k += 1
    while share.sum() > size:  # the minimum of one per group overshot: take from the largest shares
        share[np.argmax(share)] -= 1
    rng = np.random.default_rng(seed)
    keep[:] = False
    for rows, n in zip(members, share):
        keep[np.sort(rng.choice(rows, size=min(int(n), len(rows)), replace=False))] = True
    return keep


def _framework(method: str, trained: TrainedModel, twin_path: Path | None) -> tuple[str, str]:
    """The framework a method runs on for this model, or a reason to skip it."""
    from generator.attribution.registry import REGISTRY

    spec = REGISTRY[method]
    native = trained.framework
    if native in spec.frameworks:
        return native, ""
    if native == "torch" and twin_path is not None and "keras" in spec.frameworks:
        return "keras", ""
    reason = spec.unsupported.get(native, f"{spec.title} does not run on {native} models")
    if trained.trained and native == "torch":
        return "", f"{reason}; this model has no Keras twin (set keras_twin: true for it)"
    return "", reason


def attribution_key(cache: Cache, config: Config, faces: Faces, trained: TrainedModel, chosen: pd.DataFrame,
                    targets: np.ndarray, method: str, twin_path: Path | None) -> str:
    """The cache key of one map set: method, parameters, framework, images, targets, code, model and data."""
    params = dict(config.attribution.params.get(method, {}))
    framework, _ = _framework(method, trained, twin_path)
    return cache.key("attribution", {"method": method, "params": params, "framework": framework,
                                     "images": chosen["image_id"].tolist(), "targets": targets.tolist(),
                                     "code": code_hash(*ATTRIBUTION_CODE)}, (trained.key, faces.key))


def attribution_stage(cache: Cache, config: Config, faces: Faces, trained: TrainedModel, chosen: pd.DataFrame,
                      targets: np.ndarray, method: str, twin_path: Path | None,
                      progress: Callable[[int], object] | None = None) -> MapSet:
    """Maps of ``method`` for the chosen images on one model (predicted class as target).

    ``progress(n)`` is called as each chunk of ``n`` images is explained (not when cached).
    """
    params = dict(config.attribution.params.get(method, {}))
    framework, skipped = _framework(method, trained, twin_path)
    key = attribution_key(cache, config, faces, trained, chosen, targets, method, twin_path)

    def compute(folder: Path) -> None:
        meta: dict[str, Any] = {"framework": framework, "skipped": skipped, "caption": "", "check": {}}
        if not skipped:
            meta.update(_explain_to_disk(config, trained, framework, twin_path, method, params,
                                         faces.images[chosen["row"].to_numpy()], targets, folder, progress))
        (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))

    entry = cache.get_or_compute("attribution", key, compute)
    meta = json.loads((entry / "meta.json").read_text())
    maps = np.load(entry / "maps.npy", mmap_mode="r") if (entry / "maps.npy").is_file() else None
    return MapSet(trained.name, method, key, maps, meta["caption"], meta["framework"], meta["skipped"],
                  meta["check"], meta.get("seconds", 0.0))


def _explain_to_disk(config: Config, trained: TrainedModel, framework: str, twin_path: Path | None, method: str,
                     params: dict[str, Any], images: np.ndarray, targets: np.ndarray, folder: Path,
                     progress: Callable[[int], object] | None = None) -> dict[str, Any]:
    """Run the explainer chunk by chunk, writing straight into a memory-mapped .npy file."""
    from generator.attribution.base import UnsupportedMethod
    from generator.attribution.registry import build_explainer, check_maps

    handle = handle_for(config, trained, framework, twin_path)
    try:
        explainer = build_explainer(method, handle, params)
    except UnsupportedMethod as reason:
        return {"skipped": str(reason)}
    start = time.perf_counter()
    out = np.lib.format.open_memmap(folder / "maps.npy", mode="w+", dtype=np.float32, shape=images.shape[:3])
    done = 0
    for chunk in explainer.iter_explain(images, targets):
        out[done:done + len(chunk)] = chunk
        done += len(chunk)
        if progress is not None:
            progress(len(chunk))
    out.flush()
    check = check_maps(np.asarray(out))
    del out
    return {"caption": explainer.caption_params(), "check": check, "seconds": time.perf_counter() - start}
