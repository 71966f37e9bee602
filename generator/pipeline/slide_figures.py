"""Deck versions of the crowded site figures: galleries split into four methods by four faces,
and the shortcut test, redrawn at 16:9 with large text (:mod:`generator.figures.slides`).

They are views of published figures, not new results: each slide names the site figure it comes
from in its speaker notes, which is the one to cite. Each file is cached like any stage result
(keyed by the maps, images, predictions and code it is drawn from) and copied into the deck's
``figures/`` folder only when its bytes change, so an unchanged rebuild writes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from generator.pipeline.cache import code_hash
from generator.pipeline.state import Run

__all__ = ["PER_SLIDE", "SlideFigure", "slide_figures"]

PER_SLIDE = 4  # methods and faces per gallery slide
SLIDE_FIGURE_CODE = ("generator.figures", "generator.pipeline.slide_figures")


@dataclass(frozen=True)
class SlideFigure:
    """One deck figure: its file (relative to the deck folder), the site figure it shows, a title suffix."""

    path: str
    source_id: str
    part: str
    alt: str


def slide_figures(run: Run) -> dict[str, list[SlideFigure]]:
    """Site figure id -> the slide figures that replace it in the deck (written into ``slides_dir/figures``)."""
    out: dict[str, list[SlideFigure]] = {}
    if run.explanations is not None:
        out.update(_galleries(run))
        out.update(_shortcut(run))
    return out


def _galleries(run: Run) -> dict[str, list[SlideFigure]]:
    from generator.attribution.registry import REGISTRY
    from generator.figures.attribution import gallery
    from generator.pipeline.attribution_stages import group_by
    from generator.pipeline.results_attribution import _gallery_rows, _invalid, _row_labels

    out_ = run.explanations
    rows = _gallery_rows(run, out_.chosen)
    primary = group_by(run.config, run.faces)[0]
    first = out_.chosen.iloc[rows].drop_duplicates(primary).index.to_numpy()[:PER_SLIDE]
    images = run.faces.images[out_.chosen["row"].to_numpy()[first]]
    groups = [str(out_.chosen.loc[r, primary]) for r in first]
    ids = out_.chosen["image_id"].to_numpy()[first].tolist()
    found: dict[str, list[SlideFigure]] = {}
    for trained in run.models:
        labels = _row_labels(run, trained.name, out_.chosen.loc[first], groups)
        for library in ("captum", "xplique"):
            source = f"fig-gallery-{trained.name}-{library}"
            methods = [m for m in run.config.attribution.methods if m.startswith(library + ".")
                       and out_.maps[(trained.name, m)].maps is not None and not _invalid(out_.maps[(trained.name, m)])]
            chunks = [methods[k:k + PER_SLIDE] for k in range(0, len(methods), PER_SLIDE)]
            for k, chunk in enumerate(chunks):
                maps = {m: np.asarray(out_.maps[(trained.name, m)].maps)[first] for m in chunk}
                name = f"slide-{source[4:]}-{k + 1}"
                prov = {"maps": [out_.maps[(trained.name, m)].key for m in chunk], "images": ids,
                        "predictions": run.predictions[trained.name].key, "labels": labels}
                _write(run, name, prov, lambda maps=maps, chunk=chunk, labels=labels: gallery(
                    images, maps, {m: REGISTRY[m].signed for m in chunk}, labels,
                    titles={m: REGISTRY[m].title for m in chunk}), size=(4.6 + 1.2 * (len(chunk) + 1), 5.0))
                part = f" ({k + 1}/{len(chunks)})" if len(chunks) > 1 else ""
                found.setdefault(source, []).append(SlideFigure(
                    f"figures/{name}.png", source, part,
                    f"{library.capitalize()} maps of model {trained.name}: {', '.join(chunk)}, one face per {primary}."))
    return found


def _shortcut(run: Run) -> dict[str, list[SlideFigure]]:
    from generator.figures.analysis import fair_vs_biased
    from generator.pipeline.build import _compared

    table = next((t for t in run.publisher.tables if t.id == "tab-analysis-fair-vs-biased"), None)
    pair = _compared(run)
    if table is None or pair is None:
        return {}
    fair, biased = (m.name for m in pair)
    name = "slide-analysis-fair-vs-biased"
    _write(run, name, {"table": table.frame.to_csv(index=False), "models": [fair, biased]},
           lambda: fair_vs_biased(table.frame, model_a=fair, model_b=biased))
    return {"fig-analysis-fair-vs-biased": [SlideFigure(f"figures/{name}.png", "fig-analysis-fair-vs-biased", "",
                                                        "Attribution on the corner mark per method, fair vs biased.")]}


def _write(run: Run, name: str, provenance: dict[str, Any], make: Callable[[], Any],
           size: tuple[float, float] = (12.8, 5.0)) -> None:
    from generator.figures.slides import for_slides, slide_png

    cache = run.cache
    key = cache.key("slide-figure", {"name": name, "code": code_hash(*SLIDE_FIGURE_CODE), "prov": provenance})
    entry = cache.get_or_compute("slide-figure", key, lambda folder: (folder / "figure.png").write_bytes(
        slide_png(for_slides(make(), size=size))))
    data = (entry / "figure.png").read_bytes()
    target = Path(run.config.output.slides_dir) / "figures" / f"{name}.png"
    if not target.is_file() or target.read_bytes() != data:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
