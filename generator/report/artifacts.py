"""Figures and tables as citable artifacts, and the manifest that lists them all."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["FigureArtifact", "TableArtifact", "manifest"]


@dataclass(frozen=True)
class FigureArtifact:
    """A figure written as PNG, SVG and PDF.

    Attributes
    ----------
    id
        Stable identifier (``fig-...``): the file stem, the page anchor and the
        key in the manifest. It does not change between runs.
    title, caption, alt
        Short title; caption stating data, model, method and parameters; alt text.
    page
        The result page (relative to the results folder) that shows the figure.
    files
        Format to path relative to the results folder.
    provenance
        Parameters and hashes the figure was made from.
    """

    id: str
    title: str
    caption: str
    alt: str
    page: str
    files: dict[str, str]
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TableArtifact:
    """A table shown on a page and downloadable as CSV."""

    id: str
    title: str
    caption: str
    page: str
    csv: str
    frame: pd.DataFrame = field(repr=False, compare=False, hash=False)


def manifest(figures: list[FigureArtifact], tables: list[TableArtifact],
             meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able manifest of every figure and table of a build."""
    return {
        "meta": meta,
        "figures": [
            {"id": f.id, "title": f.title, "caption": f.caption, "alt": f.alt, "page": f.page,
             "files": f.files, "provenance": f.provenance}
            for f in figures
        ],
        "tables": [
            {"id": t.id, "title": t.title, "caption": t.caption, "page": t.page,
             "files": {"csv": t.csv}, "columns": [str(c) for c in t.frame.columns],
             "rows": int(len(t.frame))}
            for t in tables
        ],
    }
