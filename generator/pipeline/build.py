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

import yaml

from generator.config import Config, config_hash
from generator.errors import ConfigError, ExportError
from generator.fileio import atomic_write_text
from generator.pipeline.cache import Cache, stable_hash
from generator.pipeline.progress import progress_bar
from generator.pipeline.publish import Publisher
from generator.pipeline.results_analysis import analysis_results
from generator.pipeline.results_attribution import attribution_results
from generator.pipeline.results_bias import bias_results
from generator.pipeline.results_models import (
    SPLIT_ORDER,
    dataset_results,
    model_results,
)
from generator.pipeline.results_replicates import ReplicatePair, replicate_results
from generator.pipeline.stages import (
    dataset_stage,
    keras_twin_stage,
    load_stage,
    predict_stage,
    train_stage,
)
from generator.pipeline.state import Run, training_text
from generator.report import artifacts as art
from generator.report import pages
from generator.report.generic_pages import GENERIC_PAGES
from generator.report.provenance import environment_facts

__all__ = ["BuildResult", "build"]

log = logging.getLogger(__name__)

# The generated pages (relative to the results folder) and their writers, in nav order.
PAGES = {
    "dataset.md": pages.dataset_page,
    "models.md": pages.models_page,
    "bias-classification.md": pages.bias_classification_page,
    "bias-verification.md": pages.bias_verification_page,
    "attribution.md": pages.attribution_page,
    "evaluation.md": pages.evaluation_page,
    "analysis.md": pages.analysis_page,
    "reproducibility.md": pages.reproducibility_page,
}


@dataclass
class BuildResult:
    """What a build produced and how long each part took."""

    results_dir: Path
    deck_html: Path | None
    site_dir: Path | None
    manifest: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


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
    from generator.report.vendor import check_assets

    out = config.output
    docs_dir = _docs_dir(out.mkdocs_config)
    _check_inside(out.results_dir, docs_dir)
    check_assets(out.node_modules)  # the deck and the site need them: say so now, not after the long stages
    cache = Cache(out.cache_dir)
    run = Run(config, cache, Publisher(cache, out.results_dir, background=config.execution.background_figures))
    try:
        return _build(run, docs_dir, site, slides_pdf)
    finally:
        run.close_executor()
        run.publisher.close()


def _build(run: Run, docs_dir: Path, site: bool, slides_pdf: bool | None) -> BuildResult:
    config, cache, out = run.config, run.cache, run.config.output
    timings: dict[str, float] = {}
    for model in config.models:  # model files are checked before any long work starts
        if model.kind != "default":
            load_stage(cache, config, None, model)
    with _timed(timings, "data"):
        run.faces = dataset_stage(run.cache, config)
    with _timed(timings, "models"):
        _models(run)
        fr = config.verification.face_recognition
        if run.faces.synthetic and fr.enabled:
            from generator.pipeline.face_recognition_stage import face_recognition_stage

            run.matchers = face_recognition_stage(cache, config)
    with progress_bar(None, "figures and tables", unit="item") as bar:
        run.publisher.progress = bar.update
        with _timed(timings, "bias"):
            dataset_results(run)
            model_results(run)
            bias_results(run)
        if run.matchers is not None and config.verification.face_recognition.explain.enabled:
            with _timed(timings, "verif-maps"):
                from generator.pipeline.results_verification_maps import verification_map_results
                from generator.pipeline.verification_maps import verification_maps_stage

                run.verification_maps = verification_maps_stage(cache, config, run.matchers)
                verification_map_results(run, run.verification_maps)
        with _timed(timings, "explanations"):
            run.explanations = attribution_results(run)
        with _timed(timings, "analysis"):
            analysis_results(run, run.explanations)
        with _timed(timings, "replicates"):
            run.replicates = replicate_results(run, _pairs(run))
        run.close_executor()  # no later stage sends tasks; the build gets its threads back
    with _timed(timings, "deck"):  # its figures are drawn here, while the site's are still being rendered
        deck_html = _write_deck(run)
    # The figure files still being rendered in the background; the pages and the manifest come after them,
    # so that a build stopped before this point leaves no manifest naming figures that are not in place.
    with _timed(timings, "figures"), progress_bar(run.publisher.pending, "figure files", unit="figure") as bar:
        run.publisher.progress = bar.update
        run.publisher.finish()
    with _timed(timings, "pages"):
        manifest = _write_pages(run)
    if slides_pdf if slides_pdf is not None else config.report.slides_pdf:
        with _timed(timings, "slides-pdf"):
            _export_pdf(run, deck_html)
    site_dir = None
    if site:
        with _timed(timings, "site"):
            site_dir = build_site(config, docs_dir)
    _write_profile(cache, timings, run.parts)
    return BuildResult(out.results_dir, deck_html, site_dir, manifest, timings)


PROFILE = "last-build-profile.json"


def _write_profile(cache: Cache, timings: dict[str, float], parts: dict[str, float] | None = None) -> None:
    """Seconds per part of the build and the cache entries it computed or reused (read by `make bench`).

    Written only by a build that computed something: an unchanged rerun writes no file, and the
    profile stays that of the last build that did work.
    """
    if not cache.computed:
        return
    profile = {"seconds": timings, "explanations": parts or {}, "computed": cache.computed, "reused": cache.reused,
               "cold": not cache.reused.get("attribution") and bool(cache.computed.get("attribution"))}
    cache.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache.root / PROFILE, json.dumps(profile, indent=1) + "\n")  # stages in build order


def _models(run: Run) -> None:
    for model in run.config.models:
        if model.kind == "default":
            trained = train_stage(run.cache, run.config, run.faces, model)
        else:
            trained = load_stage(run.cache, run.config, run.faces, model)
        run.models.append(trained)
        run.predictions[model.name] = predict_stage(run.cache, run.config, run.faces, trained)
        if model.keras_twin:
            run.twins[model.name] = keras_twin_stage(run.cache, run.config, run.faces, trained)
    _draws(run)


def _compared(run: Run) -> tuple[Any, Any] | None:
    """The first built-in models trained on the fair and on the biased split (the pair the replicates repeat)."""
    fair = next((m for m in run.models if m.trained and m.config.train_split == "train_fair"), None)
    biased = next((m for m in run.models if m.trained and m.config.train_split == "train_biased"), None)
    return (fair, biased) if fair and biased else None


def _draws(run: Run) -> None:
    """Train (or load) the further training draws of the fair/biased pair, with predictions and twins."""
    pair = _compared(run)
    if pair is None or not run.faces.synthetic:
        return
    for replicate in range(1, run.config.replicates):
        draw = []
        for main in pair:
            trained = train_stage(run.cache, run.config, run.faces, main.config, replicate)
            run.draw_predictions[trained.name] = predict_stage(run.cache, run.config, run.faces, trained)
            if main.config.keras_twin:
                run.twins[trained.name] = keras_twin_stage(run.cache, run.config, run.faces, trained)
            draw.append(trained)
        run.draws.append(tuple(draw))


def _pairs(run: Run) -> list[ReplicatePair]:
    pair = _compared(run)
    if pair is None or not run.faces.synthetic:
        return []
    draws = [pair, *run.draws]
    return [ReplicatePair(r, fair, biased, {m.name: run.twins.get(m.name, {}).get("path") for m in (fair, biased)})
            for r, (fair, biased) in enumerate(draws)]


# ----------------------------------------------------------------------------- results


# ----------------------------------------------------------------------------- pages and deck


def _facts(run: Run) -> dict[str, Any]:
    """Everything the pages state in words: settings, hashes, timings, environment."""
    faces = run.faces
    return {
        "title": run.config.report.title,
        "site_url": run.config.report.site_url or _mkdocs_site_url(run.config.output.mkdocs_config),
        "seed": run.config.seed,
        "config_hash": config_hash(run.config),
        "config": run.config.model_dump(mode="json"),
        "dataset": {"key": faces.key, "images": int(len(faces.table)), "seconds": faces.seconds,
                    "image_size": int(faces.images.shape[1]),
                    "identities": int(faces.table["identity"].nunique()),
                    "has_identity": faces.has_identity, "source": faces.source, "notes": list(faces.notes),
                    "label_names": list(faces.label_names), "attributes": list(faces.attributes),
                    "skipped": int(len(faces.skipped)),
                    "skipped_reasons": faces.skipped["reason"].str.split(":").str[0].value_counts().to_dict()
                    if len(faces.skipped) else {},
                    "splits": faces.table["split"].value_counts().reindex(SPLIT_ORDER).fillna(0).astype(int).to_dict()},
        "models": [{"name": m.name, "kind": m.config.kind, "split": m.config.train_split if m.trained else "",
                    "shipped": bool(m.check.get("shipped")),
                    "description": m.config.description, "hash": m.content_hash, "seconds": m.seconds,
                    "check": m.check, "final": m.history.iloc[-1].to_dict() if m.history is not None else {},
                    "twin": {k: v for k, v in run.twins.get(m.name, {}).items() if k != "path"}}
                   for m in run.models],
        "matchers": [{"name": m.name, "split": m.train_split, "description": m.description, "shipped": m.shipped,
                      "seconds": m.seconds, "key": m.key, "final": m.history.iloc[-1].to_dict()}
                     for m in (run.matchers.models if run.matchers is not None else ())],
        "training": training_text(run.config),
        "deletion_steps": run.config.attribution.deletion_steps,
        "explanations": _explanation_facts(run),
        "replicates": run.replicates,
        "notes": run.notes,
        "environment": environment_facts(),
    }


def _explanation_facts(run: Run) -> dict[str, Any]:
    from generator.attribution.registry import REGISTRY

    explained = run.explanations
    return {"n_images": int(len(explained.chosen)),
            "methods": [{"name": m, "title": REGISTRY[m].title, "library": REGISTRY[m].library,
                         "family": REGISTRY[m].family, "signed": REGISTRY[m].signed, "paper": REGISTRY[m].paper,
                         "url": REGISTRY[m].url, "formula": REGISTRY[m].formula,
                         "caption": next((explained.maps[(t.name, m)].caption for t in run.models
                                          if explained.maps[(t.name, m)].caption), ""),
                         "skipped": {t.name: explained.maps[(t.name, m)].skipped for t in run.models
                                     if explained.maps[(t.name, m)].skipped}}
                        for m in run.config.attribution.methods]}


def _write_pages(run: Run) -> dict[str, Any]:
    from dataclasses import replace

    from generator import __version__
    from generator.report.markdown import BIBTEX_FILE, TABLES_BIBTEX_FILE
    from generator.report.provenance import release_year

    facts = _facts(run)
    results = run.config.output.results_dir
    # Citations name the build (title, hashes) and link each artifact relative to the site root.
    site_path = results.resolve().relative_to(_docs_dir(run.config.output.mkdocs_config).resolve()).as_posix()
    source = art.BuildSource(facts["title"], facts["config_hash"], facts["dataset"]["key"],
                             "" if site_path == "." else f"{site_path}/", site_url=facts["site_url"] or "",
                             version=__version__, commit=facts["environment"]["git_commit"], year=release_year())
    figures = [replace(f, source=source) for f in run.publisher.figures]
    tables = [replace(t, source=source) for t in run.publisher.tables]
    by_id = {a.id: a for a in [*figures, *tables]}
    writers = PAGES if run.faces.synthetic else {**PAGES, **GENERIC_PAGES}
    for name, writer in writers.items():
        atomic_write_text(results / name, writer(facts, by_id))
    for method in facts["explanations"]["methods"]:
        atomic_write_text(results / "methods" / f"{method['name']}.md", pages.method_page(method, by_id))
    atomic_write_text(results / BIBTEX_FILE, art.bibtex_file(figures))
    atomic_write_text(results / TABLES_BIBTEX_FILE, art.bibtex_file(tables))
    meta = {"title": facts["title"], "config_hash": facts["config_hash"], "seed": facts["seed"],
            "dataset": facts["dataset"]["key"], "models": {m["name"]: m["hash"] for m in facts["models"]},
            "bibtex": BIBTEX_FILE, "tables_bibtex": TABLES_BIBTEX_FILE, "site_url": facts["site_url"],
            "version": __version__}
    manifest = art.manifest(figures, tables, meta)
    atomic_write_text(results / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def _write_deck(run: Run) -> Path:
    from generator.report.deck import write_deck
    from generator.report.slides import deck_slides, generic_deck_slides

    from generator.pipeline.slide_figures import SlideViews

    out = run.config.output
    figures = {f.id: f for f in run.publisher.figures}
    views = SlideViews(run)  # each figure redrawn for the room, written into slides_dir/figures
    if run.faces.synthetic:
        slides = deck_slides(_facts(run), figures, {t.id: t for t in run.publisher.tables}, views)
    else:
        slides = generic_deck_slides(_facts(run), figures, views)
    deck = write_deck(slides, out.slides_dir, title=run.config.report.title,
                      subtitle="Bias assessment and explanations of face classifiers",
                      node_modules=out.node_modules)
    shown = {Path(part.path).name for parts in views.drawn.values() for part in parts}
    for stale in (out.slides_dir / "figures").glob("*.png"):  # a figure of ours that no slide shows any more
        if stale.name.startswith(("slide-", "fig-")) and stale.name not in shown:
            stale.unlink()
    return deck


def _export_pdf(run: Run, deck_html: Path) -> Path:
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
    results = out.results_dir.resolve().relative_to(docs_dir.resolve()).as_posix()
    command = [sys.executable, "-m", "mkdocs", "build", "--strict",
               "-f", str(_site_config(out.mkdocs_config, docs_dir, results).resolve()), "-d", str(site_dir)]
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "GENERATOR_RESULTS_PATH": results})
    if done.returncode != 0:
        raise ExportError(f"mkdocs build --strict failed for {out.mkdocs_config}:\n{_mkdocs_problems(done)}")
    if out.slides_dir.is_dir():
        shutil.copytree(out.slides_dir, site_dir / "slides", dirs_exist_ok=True)
    atomic_write_text(stamp, key)
    return site_dir


# Folders of docs/ that builds write into; a nav entry there whose page no build wrote
# (e.g. the real-model demo before its first run) is left out of the site, not an error.
GENERATED_DIRS = ("results/", "real-faces/")
HOOKS = Path(__file__).resolve().parents[1] / "report" / "site_hooks.py"


def _mkdocs_problems(done: subprocess.CompletedProcess) -> str:
    """The warning and error lines of a failed mkdocs run (all of its output when it printed none)."""
    output = (done.stderr or "") + (done.stdout or "")
    problems = [line for line in output.splitlines() if line.startswith(("WARNING", "ERROR", "Error"))]
    return "\n".join(problems) if problems else output.strip()


def _site_config(mkdocs_config: Path, docs_dir: Path, results: str = "results") -> Path:
    """``mkdocs_config`` itself, or a derived config (``INHERIT``) whose nav skips generated pages not written yet.

    ``results`` is the results folder relative to ``docs/``: when it is not ``results``, the nav's
    ``results/...`` entries and the hand-written pages' links (through :mod:`generator.report.site_hooks`)
    point there instead.
    """
    raw = yaml.load(mkdocs_config.read_text(encoding="utf-8"), Loader=_AnyTagLoader) or {}
    folder = results.strip("/") + "/"
    moved = folder != "results/"

    def keep(entry: Any) -> Any:
        if isinstance(entry, str):
            if moved and entry.startswith("results/"):
                entry = folder + entry[len("results/"):]
            missing = entry.startswith((*GENERATED_DIRS, folder)) and not (docs_dir / entry).is_file()
            return None if missing else entry
        if isinstance(entry, list):
            kept = [k for k in (keep(e) for e in entry) if k is not None]
            return kept or None
        if isinstance(entry, dict):
            kept = {k: v for k, v in ((k, keep(v)) for k, v in entry.items()) if v is not None}
            return kept or None
        return entry

    nav = raw.get("nav")
    filtered = keep(nav) if nav is not None else None
    if filtered == nav and not moved:
        return mkdocs_config
    derived = mkdocs_config.with_name(".mkdocs-build.yml")
    settings: dict[str, Any] = {"nav": filtered} if nav is not None else {}
    if moved:
        settings["hooks"] = [*(raw.get("hooks") or []), str(HOOKS)]
    atomic_write_text(derived, f"INHERIT: {mkdocs_config.name}\n" + yaml.safe_dump(settings, sort_keys=False))
    return derived


def _mkdocs_site_url(mkdocs_config: Path) -> str | None:
    """``site_url`` of the MkDocs config (with a trailing ``/``), or None when it has none."""
    try:
        raw = yaml.load(Path(mkdocs_config).read_text(encoding="utf-8"), Loader=_AnyTagLoader) or {}
    except (OSError, yaml.YAMLError):
        return None
    url = raw.get("site_url") if isinstance(raw, dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    return url if url.endswith("/") else url + "/"


class _AnyTagLoader(yaml.SafeLoader):
    """A safe loader that reads mkdocs' ``!!python/name`` and ``!ENV`` tags as plain values."""


_AnyTagLoader.add_multi_constructor("", lambda loader, suffix, node: None)


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
