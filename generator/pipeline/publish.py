"""Turn figures and tables into cached, citable files under the results folder.

A figure is rendered only when its cache entry (keyed by its id, its provenance
and the figure code version) is missing; its PNG, SVG and PDF are then copied to
``<results>/figures/<id>.<ext>``. A table is computed only when its entry is
missing and is written to ``<results>/tables/<id>.csv``. Unchanged files are not
rewritten, so an unchanged rerun touches nothing.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from generator.figures.export import FORMATS, figure_bytes
from generator.fileio import atomic_write_bytes
from generator.pipeline.cache import Cache, code_hash
from generator.report.artifacts import FigureArtifact, TableArtifact

__all__ = ["Publisher"]

# A figure or table is recomputed when any code that can change it changes: the plotting
# code, the metric and analysis code, and the pipeline modules whose functions build it.
COMPUTE_CODE = ("generator.bias", "generator.evaluation", "generator.analysis", "generator.pipeline")
FIGURE_CODE = ("generator.figures", *COMPUTE_CODE)
TABLE_CODE = COMPUTE_CODE


class Publisher:
    """Collects the figures and tables of one build and writes their files.

    Parameters
    ----------
    cache
        The build's cache.
    results_dir
        Folder of the generated pages (``docs/results`` by default).
    """

    def __init__(self, cache: Cache, results_dir: Path,
                 progress: Callable[[int], object] | None = None) -> None:
        self.cache = cache
        self.results_dir = Path(results_dir)
        self.progress = progress or (lambda n: None)
        self.figures: list[FigureArtifact] = []
        self.tables: list[TableArtifact] = []
        #: figure id -> (cache key, ``make``): the deck redraws a figure for slides from the same code
        #: and data (:mod:`generator.pipeline.slide_figures`), only when that version is not cached.
        self.makers: dict[str, tuple[str, Callable[[], Figure]]] = {}

    def figure(self, figure_id: str, *, title: str, caption: str, alt: str, page: str,
               make: Callable[[], Figure], provenance: dict[str, Any],
               slide: Callable[[], Figure] | None = None) -> FigureArtifact:
        """Register a figure; render it with ``make()`` unless it is cached.

        ``slide`` draws the deck's version when it must show less than the site's (fewer panels);
        without it the deck redraws ``make()`` at the slide's size.
        """
        self._check_new_id(figure_id)
        texts = {"title": title, "caption": caption}
        key = self.cache.key("figure", {"id": figure_id, "code": code_hash(*FIGURE_CODE), **texts, "prov": provenance})

        def compute(folder: Path) -> None:
            files = figure_bytes(make(), figure_id=figure_id, title=title, caption=caption, provenance=provenance)
            self.progress(1)
            for fmt, data in files.items():
                (folder / f"figure.{fmt}").write_bytes(data)

        entry = self.cache.get_or_compute("figure", key, compute)
        files = {}
        for fmt in FORMATS:
            relative = f"figures/{figure_id}.{fmt}"
            atomic_write_bytes(self.results_dir / relative, (entry / f"figure.{fmt}").read_bytes())
            files[fmt] = relative
        artifact = FigureArtifact(figure_id, title, caption, alt, page, files, provenance)
        self.figures.append(artifact)
        self.makers[figure_id] = (key, slide or make)
        return artifact

    def table(self, table_id: str, *, title: str, caption: str, page: str,
              make: Callable[[], pd.DataFrame], provenance: dict[str, Any]) -> TableArtifact:
        """Register a table; compute it with ``make()`` unless it is cached."""
        self._check_new_id(table_id)
        key = self.cache.key("table", {"id": table_id, "code": code_hash(*TABLE_CODE), "prov": provenance})

        def compute(folder: Path) -> None:
            make().to_csv(folder / "table.csv", index=False)
            self.progress(1)

        entry = self.cache.get_or_compute("table", key, compute)
        relative = f"tables/{table_id}.csv"
        atomic_write_bytes(self.results_dir / relative, (entry / "table.csv").read_bytes())
        frame = pd.read_csv(entry / "table.csv", keep_default_na=False, na_values=[""])
        artifact = TableArtifact(table_id, title, caption, page, relative, frame)
        self.tables.append(artifact)
        return artifact

    def _check_new_id(self, artifact_id: str) -> None:
        known = {a.id for a in self.figures} | {t.id for t in self.tables}
        if artifact_id in known:
            raise ValueError(f"artifact id {artifact_id!r} registered twice")
