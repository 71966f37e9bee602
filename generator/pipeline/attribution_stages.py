"""Cached stages of the explanation part: the selected images and their maps.

Maps are computed once per model x method x image set and streamed to disk chunk
by chunk (memory stays flat as the number of images grows). An interrupted map set
resumes at the chunk where it stopped: each chunk is reseeded by its explainer, so the
resumed maps are the bytes an uninterrupted run writes. The per-sample
evaluation of a method's maps is a stage of its own, so that changing an
evaluation setting does not recompute the maps.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from generator.config import Config
from generator.fileio import atomic_write_text
from generator.pipeline.cache import Cache
from generator.pipeline.executor import MapFeed
from generator.pipeline.graph import stage_key
from generator.pipeline.stages import Faces, TrainedModel, kept_handle

__all__ = ["MapSet", "attribution_key", "attribution_stage", "select_stage", "shares_key",
           "shares_stage"]

log = logging.getLogger(__name__)



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
    return stage_key(cache, "attribution", {"method": method, "params": params, "framework": framework,
                                            "images": chosen["image_id"].tolist(), "targets": targets.tolist()},
                     model=trained.key, faces=faces.key)


def attribution_stage(cache: Cache, config: Config, faces: Faces, trained: TrainedModel, chosen: pd.DataFrame,
                      targets: np.ndarray, method: str, twin_path: Path | None,
                      progress: Callable[[int], object] | None = None, feed: MapFeed | None = None) -> MapSet:
    """Maps of ``method`` for the chosen images on one model (predicted class as target).

    ``progress(n)`` is called as each chunk of ``n`` images is explained (not when cached), and
    once with the number of images an interrupted earlier run had already explained. With a
    ``feed`` (see :mod:`generator.pipeline.executor`), the maps come from its tasks, computed by
    workers; without one, or when the feed has no task for this map set, they are computed here.
    """
    params = dict(config.attribution.params.get(method, {}))
    framework, skipped = _framework(method, trained, twin_path)
    key = attribution_key(cache, config, faces, trained, chosen, targets, method, twin_path)

    def compute(folder: Path) -> None:
        meta: dict[str, Any] = {"framework": framework, "skipped": skipped, "caption": "", "check": {}}
        if not skipped:
            fed = feed.maps(key, resume_point(folder, len(chosen))) if feed is not None else None
            meta.update(_explain_to_disk(config, trained, framework, twin_path, method, params,
                                         faces.images[chosen["row"].to_numpy()], targets, folder, progress, fed))
        (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))

    entry = cache.get_or_compute("attribution", key, compute, resumable=True)
    meta = json.loads((entry / "meta.json").read_text())
    maps = np.load(entry / "maps.npy", mmap_mode="r") if (entry / "maps.npy").is_file() else None
    return MapSet(trained.name, method, key, maps, meta["caption"], meta["framework"], meta["skipped"],
                  meta["check"], meta.get("seconds", 0.0))


def _explain_to_disk(config: Config, trained: TrainedModel, framework: str, twin_path: Path | None, method: str,
                     params: dict[str, Any], images: np.ndarray, targets: np.ndarray, folder: Path,
                     progress: Callable[[int], object] | None = None,
                     fed: Iterator[np.ndarray] | None = None) -> dict[str, Any]:
    """Run the explainer chunk by chunk (or take the chunks ``fed`` by workers), writing straight into a
    memory-mapped .npy file."""
    from generator.attribution.base import UnsupportedMethod
    from generator.attribution.registry import build_explainer, check_maps

    handle = kept_handle(config, trained, framework, twin_path)
    try:
        explainer = build_explainer(method, handle, params)
    except UnsupportedMethod as reason:
        return {"skipped": str(reason)}
    path, ledger = folder / "maps.npy", folder / RESUME
    done, seconds = _resume_point(path, ledger, images.shape[:3])
    if done:
        log.info("resuming %s at image %d of %d", folder.name, done, len(images))
        if progress is not None:
            progress(done)
    out = np.lib.format.open_memmap(path, mode="r+" if done else "w+", dtype=np.float32, shape=images.shape[:3])
    start = time.perf_counter() - seconds
    remaining = fed if fed is not None else (
        explainer.iter_explain(images[done:], targets[done:]) if done < len(images) else ())
    for chunk in remaining:
        out[done:done + len(chunk)] = chunk
        done += len(chunk)
        out.flush()  # the maps reach the file before the ledger says they are there
        atomic_write_text(ledger, json.dumps({"images": done, "seconds": time.perf_counter() - start}))
        if progress is not None:
            progress(len(chunk))
    if done != len(images):
        raise RuntimeError(f"map set {folder.name}: {done} of {len(images)} images explained")
    check = check_maps(np.asarray(out))
    del out
    ledger.unlink(missing_ok=True)
    return {"caption": explainer.caption_params(), "check": check, "seconds": time.perf_counter() - start}


RESUME = "resume.json"  # in a map set's partial folder: images explained so far and the seconds they took


def resume_point(folder: Path, n_images: int) -> int:
    """The image a map set computing in ``folder`` (its partial folder) continues at."""
    return _resume_point(folder / "maps.npy", folder / RESUME, (n_images,))[0]


def _resume_point(path: Path, ledger: Path, shape: tuple[int, ...]) -> tuple[int, float]:
    """How many images an interrupted run explained (and in how many seconds); 0 to start afresh.

    ``shape`` is that of the maps, or its first dimensions (the number of images).

    Its chunks are whole explainer chunks (the ledger is written after each), so continuing at
    that image gives the same chunks, and the same seeds, as an uninterrupted run.
    """
    try:
        record = json.loads(ledger.read_text())
        done, seconds = int(record["images"]), float(record["seconds"])
        existing = np.load(path, mmap_mode="r")
        fits = existing.shape[:len(shape)] == tuple(shape) and existing.dtype == np.float32 and 0 < done <= shape[0]
        del existing
    except (OSError, ValueError, KeyError, TypeError):
        return 0, 0.0
    return (done, seconds) if fits else (0, 0.0)


# ----------------------------------------------------------------------------- region shares

def shares_key(cache: Cache, config: Config, faces: Faces, trained: TrainedModel, rows: np.ndarray,
               targets: np.ndarray, method: str, twin_path: Path | None) -> str:
    """The cache key of one method's region shares: the model's key, the dataset's key, the images (ids)
    and their targets, the method, its parameters and framework, and the code."""
    params = dict(config.attribution.params.get(method, {}))
    framework, _ = _framework(method, trained, twin_path)
    ids = faces.table["image_id"].to_numpy()[rows].tolist()
    return stage_key(cache, "shares", {"method": method, "params": params, "framework": framework, "images": ids,
                                       "targets": targets.tolist()}, model=trained.key, faces=faces.key)


def shares_stage(cache: Cache, config: Config, faces: Faces, trained: TrainedModel, rows: np.ndarray,
                 targets: np.ndarray, method: str, twin_path: Path | None,
                 feed: MapFeed | None = None) -> pd.DataFrame | None:
    """Region shares of ``method``'s maps on the evaluation images ``rows`` (None when the method cannot run).

    The key (:func:`shares_key`) names every input. With a ``feed``, the maps come from its
    worker tasks (see :mod:`generator.pipeline.executor`).
    """
    params = dict(config.attribution.params.get(method, {}))
    framework, skipped = _framework(method, trained, twin_path)
    if skipped:
        return None
    key = shares_key(cache, config, faces, trained, rows, targets, method, twin_path)

    def compute(folder: Path) -> None:
        from generator.analysis.regions import region_share_table
        from generator.attribution.base import UnsupportedMethod
        from generator.attribution.registry import build_explainer

        start = time.perf_counter()
        try:
            explainer = build_explainer(method, kept_handle(config, trained, framework, twin_path), params)
        except UnsupportedMethod as reason:
            (folder / "meta.json").write_text(json.dumps({"skipped": str(reason)}))
            return
        frames, done = [], 0
        fed = feed.maps(key, 0) if feed is not None else None
        for chunk in fed if fed is not None else explainer.iter_explain(faces.images[rows], targets):
            part = rows[done:done + len(chunk)]
            meta = pd.DataFrame({"image_id": faces.table["image_id"].to_numpy()[part]})
            frames.append(region_share_table(chunk, faces.masks[part], faces.regions, meta))
            done += len(chunk)
        pd.concat(frames, ignore_index=True).to_csv(folder / "shares.csv", index=False)
        (folder / "meta.json").write_text(json.dumps({"skipped": "", "method": method, "model": trained.name,
                                                      "images": len(rows), "seconds": time.perf_counter() - start}))

    entry = cache.get_or_compute("shares", key, compute)
    if not (entry / "shares.csv").is_file():
        return None
    return pd.read_csv(entry / "shares.csv", dtype={"image_id": str})
