"""``python -m generator check``: everything a build will need, checked in seconds, before any long work.

The configuration is validated first (keys and values); then the dataset's table is read and
its label, attributes and label values are checked against the data, and a few listed images
are decoded; each model file is loaded, its CAM layer resolved and one batch run, and its
number of outputs compared with the label's classes; the browser libraries and the output
folders are checked. The first problem raises the same error a build would raise minutes
later, naming the file, key or value. Last, the explanations stage's duration is estimated on
this machine: every model (an untrained network of the same shape for a built-in model) is
timed on a few images, and the maps and metrics of every method and the sanity check counted in
those units, as the build's own plan does.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from generator.config import Config

__all__ = ["check"]

SAMPLE_IMAGES = 3
CALIBRATION_IMAGES = 8  # the decoded images repeated to the batch the build's plan calibrates on


def check(config: Config) -> list[str]:
    """Run every check; return one line per thing checked (the first failure raises)."""
    from generator.report.vendor import check_assets

    lines = [f"configuration: valid ({len(config.models)} model(s), {len(config.attribution.methods)} method(s))"]
    labels, group_sizes, images = _dataset(config, lines)
    handles = {}
    for model in config.models:
        line, handles[model.name] = _model(config, model, labels)
        lines.append(line)
    lines.append(f"browser libraries: {check_assets(config.output.node_modules)} files found in "
                 f"{config.output.node_modules}")
    lines.append(_outputs(config))
    lines.append(_estimate(config, group_sizes, images, handles))
    return lines


def _estimate(config: Config, group_sizes: list[int], images: np.ndarray, handles: dict[str, Any]) -> str:
    """The explanations stage's duration on this machine, calibrated now on each model (an upper bound)."""
    from generator.pipeline.plan import _duration

    n, evaluated, seconds = estimate(config, group_sizes, images, handles)
    settings = config.attribution
    metrics = "" if evaluated == n else f", the metrics on {evaluated} of them (attribution.budget)"
    return (f"estimate: maps of at most {n} images x {len(settings.methods)} method(s) x {len(handles)} model(s)"
            f"{metrics}, and the sanity check: about {_duration(seconds)} on this machine, calibrated now on each "
            "model; training, the statistics and the figures come on top, and the build prints its own estimate "
            "before the maps")


def estimate(config: Config, group_sizes: list[int], images: np.ndarray, handles: dict[str, Any]
             ) -> tuple[int, int, float]:
    """``(images explained at most, images with metrics, seconds)`` of the explanations stage on this machine.

    The seconds cover the maps, their metrics and the sanity check (as the build's plan does).
    """
    from generator.pipeline.evaluation_stage import SENSITIVITY_IMAGES
    from generator.pipeline.plan import SHARED_PASSES, calibrate, map_set_seconds, sanity_seconds

    settings = config.attribution
    n = sum(min(size, settings.per_group + 3 * settings.extremes_per_group) for size in group_sizes)
    budget = settings.budget.evaluation_images
    evaluated = n if budget is None else min(n, budget)
    share = min(SENSITIVITY_IMAGES, evaluated) / max(evaluated, 1)
    seconds, size = 0.0, int(images.shape[1])
    sanity = [m for m in settings.sanity_methods if m.startswith("captum.")]
    batch = images[np.arange(CALIBRATION_IMAGES) % len(images)]  # as many images as the build's calibration
    for handle in handles.values():
        forward, gradient = calibrate(handle, batch, np.zeros(len(batch), dtype=np.int64))
        seconds += evaluated * SHARED_PASSES * forward + sum(
            map_set_seconds(method, dict(settings.params.get(method, {})), size, images=n,
                            evaluated=evaluated, steps=settings.deletion_steps, sensitivity_share=share,
                            forward=forward, gradient=gradient) for method in settings.methods)
        if sanity and handle.framework == "torch":  # the sanity check runs on the first torch model
            from generator.evaluation.sanity import parameterised_layers

            seconds += sanity_seconds(len(parameterised_layers(handle.model)), sanity, dict(settings.params), size,
                                      images=min(settings.sanity_images, n), forward=forward, gradient=gradient)
            sanity = []
    return n, evaluated, seconds


def _dataset(config: Config, lines: list[str]) -> tuple[tuple[str, ...] | None, list[int], np.ndarray]:
    """Check the dataset; return its label names, the sizes of its evaluation groups and a few images."""
    settings = config.dataset
    if settings.kind == "synthetic":
        from generator.datasets.synthetic import AGE_GROUPS, LABEL_NAMES, SKIN_TONES

        lines.append("dataset: synthetic (generated, nothing to read)")
        synthetic = settings.synthetic
        groups = len(SKIN_TONES) * len(AGE_GROUPS)
        total = synthetic.identities.get("eval", 0) * synthetic.images_per_identity
        size = synthetic.image_size
        images = np.random.default_rng(0).integers(0, 256, (SAMPLE_IMAGES, size, size, 3), dtype=np.uint8)
        return tuple(LABEL_NAMES), [total // groups] * groups, images
    if settings.kind == "sample_faces":
        from generator.datasets.sample_faces import sample_faces

        images, table = sample_faces(settings.image_size)
        lines.append(f"dataset: sample_faces ({len(images)} photographs shipped by installed packages)")
        by = list(config.attribution.group_by or ("source",))
        return None, table.groupby(by).size().tolist(), images[:SAMPLE_IMAGES]
    from generator.datasets.images import read_images
    from generator.datasets.load import load_table
    from generator.errors import DataError

    faces = load_table(settings, seed=config.seed, trains_models=config.trains_models)
    sample = faces.table["path"].head(SAMPLE_IMAGES).tolist()
    images, skipped, kept = read_images(faces.root, sample, settings.image_size, crop=settings.crop)
    if len(kept) == 0:
        raise DataError(f"dataset.root '{settings.root}': none of the first {len(sample)} listed images could be "
                        f"read; reasons: {skipped['reason'].tolist()}")
    lines.append(f"dataset: {len(faces.table)} images listed ({len(faces.skipped)} rows left out), label classes "
                 f"{list(faces.label_names)}, attributes {list(faces.attributes)}; {len(kept)} of the first "
                 f"{len(sample)} images decoded")
    if settings.landmarks == "dlib":
        from generator.datasets.landmarks import DETECTOR, detect_landmarks

        _, report = detect_landmarks(images)
        lines.append(f"landmarks ({DETECTOR}): a face found on {int((report['reason'] == '').sum())} of the "
                     f"{len(report)} decoded images (images without one are left out of the region analyses)")
    table = faces.table
    if "split" in table and (table["split"] == "eval").any():
        table = table[table["split"] == "eval"]
    by = [c for c in (config.attribution.group_by or faces.attributes) if c in table.columns]
    sizes = table.groupby(by).size().tolist() if by else [len(table)]
    return (tuple(faces.label_names) if faces.label_names else None), sizes, images


def _model(config: Config, model, labels: tuple[str, ...] | None) -> tuple[str, Any]:
    """One line on the model, and a handle to time it with (an untrained network for a built-in model)."""
    if model.kind == "default":
        from generator.attribution.handles import torch_handle
        from generator.models.nets import SmallCNN

        net = SmallCNN(num_classes=len(labels or (0, 1)), width=config.training.width).eval()
        return (f"model '{model.name}': built-in, trained on split '{model.train_split}'",
                torch_handle(model.name, net, cam_layer=SmallCNN.cam_layer_name, channels_last=True))
    from generator.models.adapters import check_model
    from generator.pipeline.stages import _load_file_model

    loaded = _load_file_model(model)  # runs a probe batch and resolves cam_layer
    if labels:
        check_model(loaded, labels)
    return (f"model '{model.name}': {loaded.description}; {loaded.num_classes} outputs ({loaded.outputs}), "
            f"CAM layer {loaded.cam_layer}"), loaded.handle()


def _outputs(config: Config) -> str:
    from generator.errors import ConfigError
    from generator.pipeline.build import _check_inside, _docs_dir

    out = config.output
    docs = _docs_dir(out.mkdocs_config)
    _check_inside(out.results_dir, docs)
    for folder in (out.results_dir, out.slides_dir, out.cache_dir):
        existing = next((p for p in (Path(folder), *Path(folder).resolve().parents) if p.exists()), None)
        if existing is None or not existing.is_dir() or not _writable(existing):
            raise ConfigError(f"output folder '{folder}' cannot be created or written (nearest existing: {existing})")
    return f"outputs: results in {out.results_dir} (inside {docs}), deck in {out.slides_dir}, cache in {out.cache_dir}"


def _writable(folder: Path) -> bool:
    import os

    return os.access(folder, os.W_OK | os.X_OK)
