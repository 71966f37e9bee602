"""Deck versions of the site's figures, drawn for the room (:mod:`generator.figures.slides`).

Every figure a slide shows is redrawn at the slide's figure area (16:9) with its smallest text
at :data:`~generator.figures.slides.MIN_FONT_PT`: most from the site figure's own ``make``
(:attr:`Publisher.makers <generator.pipeline.publish.Publisher.makers>`), the crowded ones
from their data with fewer panels (galleries split into four methods by four faces, the
shortcut test at 16:9). Each version records what was drawn (smallest text in pixels, texts
that overlap), which the deck carries to the browser test.

They are views of published figures, not new results: each slide names the site figure it comes
from in its speaker notes, which is the one to cite. Each file is cached like any stage result
(keyed by the site figure's key, or the maps, images and predictions it is drawn from, and the
code) and copied into the deck's ``figures/`` folder only when its bytes change, so an unchanged
rebuild writes nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from generator.pipeline.graph import stage_key
from generator.pipeline.state import Run

__all__ = ["PER_SLIDE", "SlideFigure", "SlideViews"]

PER_SLIDE = 4  # methods and faces per gallery slide


@dataclass(frozen=True)
class SlideFigure:
    """One deck figure: its file (relative to the deck folder), the site figure it shows, a title suffix,
    its alt text, and what was measured on it (smallest text in pixels at its natural size, overlapping texts)."""

    path: str
    source_id: str
    part: str
    alt: str
    min_text_px: float = 0.0
    overlaps: tuple[tuple[str, str], ...] = ()
    methods: tuple[str, ...] = ()  # the attribution methods a gallery part shows


class SlideViews:
    """Site figure id -> the slide figures that show it in the deck, drawn on first request.

    ``views[figure_id]`` is a list: one figure for most, several for a gallery split over slides.
    Files are written into ``slides_dir/figures``.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self._special: dict[str, list[SlideFigure]] | None = None
        self._done: dict[str, list[SlideFigure]] = {}

    def __getitem__(self, figure_id: str) -> list[SlideFigure]:
        if self._special is None:
            self._special = {}
            if self.run.explanations is not None:
                self._special.update(_galleries(self.run))
                self._special.update(_shortcut(self.run))
        if figure_id not in self._done:
            self._done[figure_id] = self._special.get(figure_id) or [_redrawn(self.run, figure_id)]
        return self._done[figure_id]

    @property
    def drawn(self) -> dict[str, list[SlideFigure]]:
        """The views handed out so far: the figures the deck shows."""
        return dict(self._done)


def _redrawn(run: Run, figure_id: str) -> SlideFigure:
    """The site figure drawn again by its own ``make``, resized to the slide and its text scaled."""
    key, make = run.publisher.makers[figure_id]
    artifact = next(f for f in run.publisher.figures if f.id == figure_id)
    name = f"slide-{figure_id[4:] if figure_id.startswith('fig-') else figure_id}"
    check = _write(run, name, {"figure": key}, make)
    return SlideFigure(f"figures/{name}.png", figure_id, "", artifact.alt, *check)


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
                check = _write(run, name, prov, lambda maps=maps, chunk=chunk, labels=labels: gallery(
                    images, maps, {m: REGISTRY[m].signed for m in chunk}, labels,
                    titles={m: REGISTRY[m].title for m in chunk}, title_rotation=0),
                    size=(4.4 + 1.15 * (len(chunk) + 1), 4.8))
                part = f" ({k + 1}/{len(chunks)})" if len(chunks) > 1 else ""
                found.setdefault(source, []).append(SlideFigure(
                    f"figures/{name}.png", source, part,
                    f"{library.capitalize()} maps of model {trained.name}: {', '.join(chunk)}, one face per {primary}.",
                    *check, methods=tuple(chunk)))
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
    check = _write(run, name, {"table": table.frame.to_csv(index=False), "models": [fair, biased]},
                   lambda: fair_vs_biased(table.frame, model_a=fair, model_b=biased))
    return {"fig-analysis-fair-vs-biased": [SlideFigure(f"figures/{name}.png", "fig-analysis-fair-vs-biased", "",
                                                        "Attribution on the corner mark per method, fair vs biased.",
                                                        *check)]}


def _write(run: Run, name: str, provenance: dict[str, Any], make: Callable[[], Any],
           size: tuple[float, float] | None = None) -> tuple[float, tuple[tuple[str, str], ...]]:
    """Draw (unless cached) and copy one slide figure; return its smallest text (px) and overlapping texts."""
    from generator.figures.slides import SLIDE_SIZE_IN, check_slide_figure, for_slides, slide_png

    def compute(folder: Path) -> None:
        fig = for_slides(make(), size=size or SLIDE_SIZE_IN)
        check = check_slide_figure(fig)
        (folder / "figure.png").write_bytes(slide_png(fig))
        (folder / "check.json").write_text(json.dumps({"min_text_px": check.min_text_px,
                                                       "overlaps": [list(p) for p in check.overlaps]}))

    cache = run.cache
    key = stage_key(cache, "slide-figure", {"name": name, "prov": provenance})
    entry = cache.get_or_compute("slide-figure", key, compute)
    measured = json.loads((entry / "check.json").read_text())
    data = (entry / "figure.png").read_bytes()
    target = Path(run.config.output.slides_dir) / "figures" / f"{name}.png"
    if not target.is_file() or target.read_bytes() != data:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return measured["min_text_px"], tuple(tuple(p) for p in measured["overlaps"])
