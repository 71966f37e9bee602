"""`generator build`: config -> data -> models -> results -> pages, deck and site."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from generator.config import Config, config_hash
from generator.errors import ConfigError, ExportError
from generator.fileio import atomic_write_text
from generator.pipeline.cache import Cache, stable_hash
from generator.pipeline.progress import progress_bar
from generator.pipeline.publish import Publisher
from generator.pipeline.stages import (
    Faces,
    Predictions,
    TrainedModel,
    dataset_stage,
    keras_twin_stage,
    predict_stage,
    train_stage,
)
from generator.report import artifacts as art
from generator.report import pages
from generator.report.provenance import environment_facts

__all__ = ["BuildResult", "build"]

log = logging.getLogger(__name__)
SPLIT_ORDER = ("train_fair", "train_biased", "eval")


@dataclass
class BuildResult:
    """What a build produced and how long each part took."""

    results_dir: Path
    deck_html: Path | None
    site_dir: Path | None
    manifest: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Run:
    """The pieces of one build that every step reads."""

    config: Config
    cache: Cache
    publisher: Publisher
    faces: Faces | None = None
    models: list[TrainedModel] = field(default_factory=list)
    predictions: dict[str, Predictions] = field(default_factory=dict)
    twins: dict[str, dict[str, Any]] = field(default_factory=dict)


def build(config: Config, *, site: bool = True, slides_pdf: bool | None = None) -> BuildResult:
    """Run every stage for ``config`` and write pages, deck and (optionally) the site.

    Parameters
    ----------
    config
        A validated configuration.
    site
        Also run ``mkdocs build --strict`` and copy the deck into the site.
    slides_pdf
        Export the deck to PDF (default: ``config.report.slides_pdf``).
    """
    out = config.output
    docs_dir = _docs_dir(out.mkdocs_config)
    _check_inside(out.results_dir, docs_dir)
    timings: dict[str, float] = {}
    run = _Run(config, Cache(out.cache_dir), Publisher(Cache(out.cache_dir), out.results_dir))
    with _timed(timings, "data"):
        run.faces = dataset_stage(run.cache, config)
    with _timed(timings, "models"):
        _models(run)
    with _timed(timings, "results"), progress_bar(None, "figures and tables", unit="item") as bar:
        run.publisher.progress = bar.update
        _dataset_results(run)
        _model_results(run)
    with _timed(timings, "pages"):
        manifest = _write_pages(run)
    with _timed(timings, "deck"):
        deck_html = _write_deck(run)
    if slides_pdf if slides_pdf is not None else config.report.slides_pdf:
        with _timed(timings, "slides-pdf"):
            _export_pdf(run, deck_html)
    site_dir = None
    if site:
        with _timed(timings, "site"):
            site_dir = build_site(config, docs_dir)
    return BuildResult(out.results_dir, deck_html, site_dir, manifest, timings)


def _models(run: _Run) -> None:
    for model in run.config.models:
        trained = train_stage(run.cache, run.config, run.faces, model)
        run.models.append(trained)
        run.predictions[model.name] = predict_stage(run.cache, run.config, run.faces, trained)
        if model.keras_twin:
            run.twins[model.name] = keras_twin_stage(run.cache, run.config, run.faces, trained)


# ----------------------------------------------------------------------------- results


def _dataset_results(run: _Run) -> None:
    from generator.datasets.synthetic import REGIONS
    from generator.figures import dataset as figs

    faces, pub, seed = run.faces, run.publisher, run.config.seed
    prov = {"dataset": faces.key, "seed": seed}
    evaluation = np.flatnonzero(faces.table["split"].to_numpy() == "eval")
    per = run.config.report.samples_per_group
    pub.figure("fig-dataset-samples", title="Evaluation faces by skin-tone band and age group",
               caption=f"{per} faces drawn at random (seed {seed}) from each skin-tone band x age group of the "
                       "evaluation split; titles give the task label and whether the shortcut cue is drawn.",
               alt="Grid of synthetic faces, one row per skin-tone band and age group.", page="dataset.md",
               make=lambda: figs.sample_grid(faces.images[evaluation], faces.table.iloc[evaluation],
                                             by=("skin_tone", "age_group"), per_group=per, seed=seed),
               provenance={**prov, "per_group": per})
    shown = evaluation[:: max(1, len(evaluation) // 5)][:5]
    pub.figure("fig-dataset-masks", title="Region masks and landmarks",
               caption="Five evaluation faces (top) and the region each pixel belongs to (bottom), with the five "
                       "landmarks (eye centres, nose tip, mouth corners) as crosses.",
               alt="Faces above their colour-coded region masks.", page="dataset.md",
               make=lambda: figs.mask_examples(faces.images[shown], faces.masks[shown], faces.landmarks[shown],
                                               REGIONS),
               provenance={**prov, "images": [int(i) for i in shown]})
    counts = _group_counts(faces.table)
    pub.table("tab-dataset-counts", title="Images per split and group",
              caption="Number of images, identities and smiling share per split, skin-tone band and age group.",
              page="dataset.md", make=lambda: counts, provenance=prov)
    pub.figure("fig-dataset-group-shares", title="Skin-tone shares per split",
               caption="Share of each skin-tone band among the images of each split. The biased training split "
                       "follows census-like shares; the fair training split and the evaluation split are balanced.",
               alt="Stacked bars of skin-tone shares for each split.", page="dataset.md",
               make=lambda: figs.group_shares(counts.rename(columns={"images": "n"}), group="skin_tone",
                                              split_order=SPLIT_ORDER),
               provenance=prov)


def _group_counts(table: pd.DataFrame) -> pd.DataFrame:
    grouped = table.groupby(["split", "skin_tone", "age_group"], sort=False)
    counts = grouped.agg(images=("image_id", "size"), identities=("identity", "nunique"),
                         smiling_share=("label", "mean"), cue_share=("cue", "mean")).reset_index()
    order = {s: i for i, s in enumerate(SPLIT_ORDER)}
    return counts.sort_values(["split", "skin_tone", "age_group"], key=lambda c: c.map(order) if c.name == "split" else c,
                              ignore_index=True)


def _model_results(run: _Run) -> None:
    from generator.figures import models as figs

    pub, seed = run.publisher, run.config.seed
    prov = {"dataset": run.faces.key, "models": {m.name: m.content_hash for m in run.models}, "seed": seed}
    histories = {m.name: m.history for m in run.models}
    pub.figure("fig-models-training-curves", title="Training curves",
               caption=f"Cross-entropy loss and accuracy per epoch of {_model_list(run)}; solid lines on the "
                       "model's training split, dashed on the evaluation split (not used for model selection). "
                       f"{_training_text(run.config)}",
               alt="Loss and accuracy curves per epoch for each model.", page="models.md",
               make=lambda: figs.training_curves(histories), provenance=prov)
    evaluation = _evaluation_table(run)
    for by, slug, what in ((("skin_tone",), "skin-tone", "skin-tone band"),
                           (("skin_tone", "age_group"), "intersection", "skin-tone band x age group"),
                           (("shortcut",), "shortcut", "agreement of the shortcut cue with the label")):
        table = pub.table(
            f"tab-models-accuracy-by-{slug}", title=f"Accuracy by {what}",
            caption=f"Accuracy of each model on the evaluation split by {what}, with 95% percentile-bootstrap "
                    f"intervals (200 resamples of the evaluation images, seed {seed}); 'all' is the whole split.",
            page="models.md", provenance={**prov, "by": list(by), "n_boot": 200},
            make=lambda by=by: _accuracy_table(evaluation, by, seed),
        )
        if len(by) == 1:
            frame = table.frame[table.frame[by[0]] != "all"].rename(columns={by[0]: "group"})
            pub.figure(f"fig-models-accuracy-by-{slug}", title=f"Accuracy by {what}",
                       caption=f"{table.caption} Error bars: the 95% interval. Dotted line: chance (0.5).",
                       alt=f"Bar chart of accuracy by {what} for each model.", page="models.md",
                       make=lambda frame=frame: figs.accuracy_by_group(frame, group="group"),
                       provenance={**prov, "table": table.id})


def _accuracy_table(evaluation: dict[str, pd.DataFrame], by: tuple[str, ...], seed: int) -> pd.DataFrame:
    """Accuracy by group for every model, one block of rows per model (fairlearn imported lazily)."""
    from generator.bias.accuracy import accuracy_by_group

    frames = [accuracy_by_group(frame, by=by, n_boot=200, seed=seed).assign(model=name)
              for name, frame in evaluation.items()]
    return pd.concat(frames, ignore_index=True)[["model", *by, "n", "accuracy", "ci_low", "ci_high"]]


def _evaluation_table(run: _Run) -> dict[str, pd.DataFrame]:
    """Per model: evaluation images with label, prediction, groups and shortcut agreement."""
    table = run.faces.table[run.faces.table["split"] == "eval"].reset_index(drop=True)
    agrees = table["cue"].astype(bool) == table["label"].astype(bool)
    table = table.assign(shortcut=np.where(agrees, "cue agrees with label", "cue contradicts label"))
    return {name: table.merge(p.table[["image_id", "pred", "prob_1"]], on="image_id", validate="one_to_one")
            for name, p in run.predictions.items()}


def _model_list(run: _Run) -> str:
    return ", ".join(f"'{m.name}' (trained on {m.config.train_split})" for m in run.models)


def _training_text(config: Config) -> str:
    t = config.training
    return (f"Training: SmallCNN width {t.width}, {t.epochs} epochs, batch {t.batch_size}, AdamW lr {t.lr}, "
            f"weight decay {t.weight_decay}, horizontal flips {'on' if t.augment_flip else 'off'}, seed {config.seed}.")


# ----------------------------------------------------------------------------- pages and deck


def _facts(run: _Run) -> dict[str, Any]:
    """Everything the pages state in words: settings, hashes, timings, environment."""
    faces = run.faces
    return {
        "title": run.config.report.title,
        "seed": run.config.seed,
        "config_hash": config_hash(run.config),
        "config": run.config.model_dump(mode="json"),
        "dataset": {"key": faces.key, "images": int(len(faces.table)), "seconds": faces.seconds,
                    "image_size": int(faces.images.shape[1]),
                    "identities": int(faces.table["identity"].nunique()),
                    "splits": faces.table["split"].value_counts().reindex(SPLIT_ORDER).fillna(0).astype(int).to_dict()},
        "models": [{"name": m.name, "split": m.config.train_split, "description": m.config.description,
                    "hash": m.content_hash, "seconds": m.seconds,
                    "final": m.history.iloc[-1].to_dict(),
                    "twin": {k: v for k, v in run.twins.get(m.name, {}).items() if k != "path"}}
                   for m in run.models],
        "training": _training_text(run.config),
        "environment": environment_facts(),
    }


def _write_pages(run: _Run) -> dict[str, Any]:
    facts = _facts(run)
    by_id = {a.id: a for a in [*run.publisher.figures, *run.publisher.tables]}
    results = run.config.output.results_dir
    atomic_write_text(results / "dataset.md", pages.dataset_page(facts, by_id))
    atomic_write_text(results / "models.md", pages.models_page(facts, by_id))
    atomic_write_text(results / "reproducibility.md", pages.reproducibility_page(facts, by_id))
    meta = {"title": facts["title"], "config_hash": facts["config_hash"], "seed": facts["seed"],
            "dataset": facts["dataset"]["key"], "models": {m["name"]: m["hash"] for m in facts["models"]}}
    manifest = art.manifest(run.publisher.figures, run.publisher.tables, meta)
    atomic_write_text(results / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def _write_deck(run: _Run) -> Path:
    from generator.report.deck import write_deck
    from generator.report.slides import deck_slides

    out = run.config.output
    figures = {f.id: f for f in run.publisher.figures}
    for figure in figures.values():
        target = out.slides_dir / "figures" / f"{figure.id}.png"
        data = (out.results_dir / figure.files["png"]).read_bytes()
        if not target.is_file() or target.read_bytes() != data:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    slides = deck_slides(_facts(run), figures, {t.id: t for t in run.publisher.tables})
    return write_deck(slides, out.slides_dir, title=run.config.report.title,
                      subtitle="Bias assessment and explanations of face classifiers",
                      node_modules=out.node_modules)


def _export_pdf(run: _Run, deck_html: Path) -> Path:
    from generator.report.pdf import export_pdf

    pdf = run.config.output.slides_dir / "slides.pdf"
    stamp = pdf.with_suffix(".pdf.key")
    key = stable_hash([deck_html.read_text(), sorted(p.name for p in (deck_html.parent / "figures").glob("*"))])
    if pdf.is_file() and stamp.is_file() and stamp.read_text() == key:
        return pdf
    export_pdf(deck_html, pdf)
    atomic_write_text(stamp, key)
    return pdf


# ----------------------------------------------------------------------------- site


def build_site(config: Config, docs_dir: Path) -> Path:
    """Copy vendor assets, run ``mkdocs build --strict`` and copy the deck into the site.

    Skipped when neither the docs folder, the mkdocs config nor the deck changed
    since the last build of the same site folder.
    """
    from generator.report.vendor import copy_site_vendor

    out = config.output
    copy_site_vendor(out.node_modules, docs_dir)
    site_dir = out.site_dir.resolve()
    key = stable_hash([_tree_digest(docs_dir), _tree_digest(out.slides_dir), out.mkdocs_config.read_text()])
    stamp = site_dir / ".build-key"
    if stamp.is_file() and stamp.read_text() == key:
        return site_dir
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
               "-f", str(out.mkdocs_config.resolve()), "-d", str(site_dir)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    if done.returncode != 0:
        raise ExportError(f"mkdocs build failed for {out.mkdocs_config}:\n{done.stderr.strip() or done.stdout.strip()}")
    if out.slides_dir.is_dir():
        shutil.copytree(out.slides_dir, site_dir / "slides", dirs_exist_ok=True)
    atomic_write_text(stamp, key)
    return site_dir


def _tree_digest(folder: Path) -> list[tuple[str, int, int]]:
    """Names, sizes and modification times of every file under ``folder`` (cheap change check)."""
    if not folder.is_dir():
        return []
    return sorted((p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
                  for p in folder.rglob("*") if p.is_file())


def _docs_dir(mkdocs_config: Path) -> Path:
    if not mkdocs_config.is_file():
        raise ConfigError(f"output.mkdocs_config: file not found: '{mkdocs_config}' (the site's mkdocs.yml)")
    return mkdocs_config.parent / "docs"


def _check_inside(results_dir: Path, docs_dir: Path) -> None:
    if not results_dir.resolve().is_relative_to(docs_dir.resolve()):
        raise ConfigError(f"output.results_dir: '{results_dir}' must lie inside the site's docs folder "
                          f"'{docs_dir}' so that mkdocs publishes it")


class _timed:
    """Context manager that adds the elapsed seconds of a block to ``timings[name]``."""

    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = round(time.perf_counter() - self.start, 3)
        log.info("%s: %.1f s", self.name, self.timings[self.name])
