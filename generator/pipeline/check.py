"""``python -m generator check``: everything a build will need, checked in seconds, before any long work.

The configuration is validated first (keys and values); then the dataset's table is read and
its label, attributes and label values are checked against the data, and a few listed images
are decoded; each model file is loaded, its CAM layer resolved and one batch run, and its
number of outputs compared with the label's classes; the browser libraries and the output
folders are checked. The first problem raises the same error a build would raise minutes
later, naming the file, key or value.
"""
from __future__ import annotations

from pathlib import Path

from generator.config import Config

__all__ = ["check"]

SAMPLE_IMAGES = 3


def check(config: Config) -> list[str]:
    """Run every check; return one line per thing checked (the first failure raises)."""
    from generator.report.vendor import check_assets

    lines = [f"configuration: valid ({len(config.models)} model(s), {len(config.attribution.methods)} method(s))"]
    labels = _dataset(config, lines)
    for model in config.models:
        lines.append(_model(config, model, labels))
    lines.append(f"browser libraries: {check_assets(config.output.node_modules)} files found in "
                 f"{config.output.node_modules}")
    lines.append(_outputs(config))
    lines.append("the build prints its plan and a calibrated estimate of its duration before the explanations stage")
    return lines


def _dataset(config: Config, lines: list[str]) -> tuple[str, ...] | None:
    settings = config.dataset
    if settings.kind in ("synthetic", "sample_faces"):
        lines.append(f"dataset: {settings.kind} (generated or shipped, nothing to read)")
        return ("not smiling", "smiling") if settings.kind == "synthetic" else None
    from generator.datasets.images import read_images
    from generator.datasets.load import load_table
    from generator.errors import DataError

    faces = load_table(settings, seed=config.seed, trains_models=config.trains_models)
    sample = faces.table["path"].head(SAMPLE_IMAGES).tolist()
    _, skipped, kept = read_images(faces.root, sample, settings.image_size, crop=settings.crop)
    if len(kept) == 0:
        raise DataError(f"dataset.root '{settings.root}': none of the first {len(sample)} listed images could be "
                        f"read; reasons: {skipped['reason'].tolist()}")
    lines.append(f"dataset: {len(faces.table)} images listed ({len(faces.skipped)} rows left out), label classes "
                 f"{list(faces.label_names)}, attributes {list(faces.attributes)}; {len(kept)} of the first "
                 f"{len(sample)} images decoded")
    return tuple(faces.label_names) if faces.label_names else None


def _model(config: Config, model, labels: tuple[str, ...] | None) -> str:
    if model.kind == "default":
        return f"model '{model.name}': built-in, trained on split '{model.train_split}'"
    from generator.models.adapters import check_model
    from generator.pipeline.stages import _load_file_model

    loaded = _load_file_model(model)  # runs a probe batch and resolves cam_layer
    if labels:
        check_model(loaded, labels)
    return (f"model '{model.name}': {loaded.description}; {loaded.num_classes} outputs ({loaded.outputs}), "
            f"CAM layer {loaded.cam_layer}")


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
