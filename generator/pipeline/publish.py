"""Turn figures and tables into cached, citable files under the results folder.

A figure is rendered only when its cache entry (keyed by its id, its provenance
and the figure code version) is missing; its PNG, SVG and PDF are then copied to
``<results>/figures/<id>.<ext>``. A table is computed only when its entry is
missing and is written to ``<results>/tables/<id>.csv``. Unchanged files are not
rewritten, so an unchanged rerun touches nothing.

With ``background=True`` the files of a figure are rendered in a separate process (one for
the build) while the build goes on: drawing a figure is quick, writing its PNG, SVG and PDF is
most of its cost (text layout, image resampling, PDF font subsetting), and it is work in one
Python thread that would otherwise leave a second core idle. The figure travels pickled; the
files are the same bytes either way. They are in place once :meth:`Publisher.finish` returns.
"""
from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from generator.figures.export import FORMATS, figure_bytes, render_pickled
from generator.fileio import atomic_write_bytes
from generator.pipeline.cache import Cache
from generator.pipeline.graph import stage_key
from generator.report.artifacts import FigureArtifact, TableArtifact

__all__ = ["Publisher"]

# A figure or table is recomputed when any code that can change it changes: the plotting
# code, the metric and analysis code, and the pipeline modules whose functions build it.
#: Pickled figures held for the background process at most (bytes): beyond, the build waits for it. The
#: default build's figures are far below it, so they are all handed over while the next sections compute.
MAX_PENDING_BYTES = 512 * 2**20

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    """A figure whose files the background process is rendering."""

    key: str
    figure_id: str
    blob: bytes
    texts: dict[str, Any]
    future: Future


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
                 progress: Callable[[int], object] | None = None, *, background: bool = False) -> None:
        self.cache = cache
        self.results_dir = Path(results_dir)
        self.progress = progress or (lambda n: None)
        self.figures: list[FigureArtifact] = []
        self.tables: list[TableArtifact] = []
        #: figure id -> (cache key, ``make``): the deck redraws a figure for slides from the same code
        #: and data (:mod:`generator.pipeline.slide_figures`), only when that version is not cached.
        self.makers: dict[str, tuple[str, Callable[[], Figure]]] = {}
        self.background = background
        self._pool: ProcessPoolExecutor | None = None
        self._pending: list[_Pending] = []

    def figure(self, figure_id: str, *, title: str, caption: str, alt: str, page: str,
               make: Callable[[], Figure], provenance: dict[str, Any],
               slide: Callable[[], Figure] | None = None) -> FigureArtifact:
        """Register a figure; render it with ``make()`` unless it is cached.

        ``slide`` draws the deck's version when it must show less than the site's (fewer panels);
        without it the deck redraws ``make()`` at the slide's size.
        """
        self._check_new_id(figure_id)
        texts = {"title": title, "caption": caption}
        key = stage_key(self.cache, "figure", {"id": figure_id, **texts, "prov": provenance})

        def compute(folder: Path, drawn: Figure | None = None) -> None:
            self._write(folder, figure_bytes(make() if drawn is None else drawn, figure_id=figure_id, title=title,
                                             caption=caption, provenance=provenance))

        if self.background and not self.cache.is_valid("figure", key):
            drawn = make()
            if not self._submit(key, figure_id, drawn, texts | {"provenance": provenance}):
                self._place(figure_id, self.cache.get_or_compute("figure", key, lambda folder: compute(folder, drawn)))
        else:
            self._place(figure_id, self.cache.get_or_compute("figure", key, compute))
        files = {fmt: f"figures/{figure_id}.{fmt}" for fmt in FORMATS}
        artifact = FigureArtifact(figure_id, title, caption, alt, page, files, provenance)
        self.figures.append(artifact)
        self.makers[figure_id] = (key, slide or make)
        return artifact

    @property
    def pending(self) -> int:
        """Figures handed to the background process whose files are not written yet."""
        return len(self._pending)

    def flush(self) -> None:
        """Wait for the figures being rendered in the background and write their files (the process stays)."""
        self._collect(len(self._pending))

    def finish(self) -> None:
        """Wait for the figures still being rendered in the background, write their files, stop the process."""
        try:
            self.flush()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the background process without writing what it has not delivered (a build that failed)."""
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _submit(self, key: str, figure_id: str, figure: Figure, texts: dict[str, Any]) -> bool:
        """Hand a figure to the background process; False (render it here) if it cannot be pickled."""
        try:
            blob = pickle.dumps(figure, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as reason:  # e.g. a formatter holding a lambda: rendered in this process
            log.debug("figure %s is rendered in the build process: %s", figure_id, reason)
            return False
        if self._pool is None:
            import multiprocessing

            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            future = self._pool.submit(render_pickled, blob, figure_id=figure_id, **texts)
        except BrokenProcessPool as reason:  # the process died earlier: the rest is rendered here
            log.warning("the figure process stopped (%s); the remaining figures are rendered in the build process",
                        reason)
            self.background = False
            return False
        self._pending.append(_Pending(key, figure_id, blob, texts, future))
        while sum(len(p.blob) for p in self._pending) > MAX_PENDING_BYTES:
            self._collect(1)
        return True

    def _collect(self, count: int) -> None:
        """Write the files of the ``count`` oldest background figures into the cache and the results folder."""
        for _ in range(count):
            item = self._pending.pop(0)
            try:
                files = item.future.result()
            except BrokenProcessPool as reason:  # the process died (memory, a signal): render this one here
                log.warning("the figure process stopped (%s); rendering %s in the build process", reason,
                            item.figure_id)
                files = render_pickled(item.blob, figure_id=item.figure_id, **item.texts)
            self._place(item.figure_id, self.cache.get_or_compute(
                "figure", item.key, lambda folder, files=files: self._write(folder, files)))

    def _write(self, folder: Path, files: dict[str, bytes]) -> None:
        self.progress(1)
        for fmt, data in files.items():
            (folder / f"figure.{fmt}").write_bytes(data)

    def _place(self, figure_id: str, entry: Path) -> None:
        """Copy a figure's cached files to ``<results>/figures/`` (unchanged files are not rewritten)."""
        for fmt in FORMATS:
            atomic_write_bytes(self.results_dir / f"figures/{figure_id}.{fmt}", (entry / f"figure.{fmt}").read_bytes())

    def table(self, table_id: str, *, title: str, caption: str, page: str,
              make: Callable[[], pd.DataFrame], provenance: dict[str, Any]) -> TableArtifact:
        """Register a table; compute it with ``make()`` unless it is cached."""
        self._check_new_id(table_id)
        key = stage_key(self.cache, "table", {"id": table_id, "prov": provenance})

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
