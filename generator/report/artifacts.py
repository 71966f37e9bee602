"""Figures and tables as citable artifacts, the manifest that lists them all, and
their BibTeX entries.

A BibTeX entry depends only on the artifact and on the build it comes from (project
title, configuration and dataset hashes), never on the clock, so two builds of one
configuration cite every figure with the same bytes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pandas as pd

__all__ = ["BuildSource", "FigureArtifact", "TableArtifact", "bibtex_entry", "bibtex_escape",
           "bibtex_file", "bibtex_key", "manifest", "permalink"]


@dataclass(frozen=True)
class BuildSource:
    """The build an artifact comes from, as its citation names it.

    Attributes
    ----------
    publisher
        The project title (``report.title``), the organisation that publishes the figure.
    config_hash, dataset_hash
        Hashes of the configuration and of the dataset the artifact was made from.
    site_path
        The results folder's path in the site, ending in ``/`` (``"results/"``), so that
        a permalink is relative to the site root.
    site_url
        Where the site is published, ending in ``/``; permalinks are then absolute. Empty:
        permalinks stay relative to the site root and the entry says so.
    version, commit, year
        The generator's version, the git commit of the build (``"unknown"`` outside a
        checkout) and the year of that commit, so that a cited figure names the code that
        made it.
    """

    publisher: str
    config_hash: str
    dataset_hash: str
    site_path: str = ""
    site_url: str = ""
    version: str = ""
    commit: str = ""
    year: str = ""


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
    source: BuildSource | None = None


@dataclass(frozen=True)
class TableArtifact:
    """A table shown on a page and downloadable as CSV."""

    id: str
    title: str
    caption: str
    page: str
    csv: str
    frame: pd.DataFrame = field(repr=False, compare=False, hash=False)
    source: BuildSource | None = None


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


# --------------------------------------------------------------------------- BibTeX

# Each special character becomes a LaTeX command whose braces balance, so a field stays
# one brace group for BibTeX (which counts "\{" as a brace) and typesets as the text.
_BIBTEX = str.maketrans({
    "\\": r"\textbackslash{}", "{": r"\textbraceleft{}", "}": r"\textbraceright{}",
    "%": r"\%", "$": r"\$", "&": r"\&", "#": r"\#", "_": r"\_",
    "^": r"\textasciicircum{}", "~": r"\textasciitilde{}", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}", "`": r"\textasciigrave{}",
})
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")
_URL_SAFE = "/#.-_:"


def bibtex_escape(text: object) -> str:
    """Untrusted text as the value of a braced BibTeX field: one line, LaTeX specials escaped.

    ``{x} 5%`` becomes ``\\textbraceleft{}x\\textbraceright{} 5\\%``; no character of the
    result can end the field early, start a comment or leave a brace unbalanced.
    """
    return " ".join(str(text).split()).translate(_BIBTEX)


def bibtex_key(artifact_id: str) -> str:
    """The citation key of an artifact: its id, any character BibTeX refuses in a key as ``-``."""
    return _KEY_UNSAFE.sub("-", artifact_id)


def permalink(artifact: FigureArtifact | TableArtifact) -> str:
    """The artifact's anchor on its page: ``results/models.html#fig-x`` relative to the site root,
    or absolute under the source's ``site_url``.

    Pages are ``.html`` files because the site's ``offline`` plugin turns directory URLs off.
    """
    source = artifact.source
    base = source.site_path if source else ""
    page = re.sub(r"\.md$", ".html", artifact.page)
    relative = quote(f"{base}{page}#{artifact.id}", safe=_URL_SAFE)
    return f"{source.site_url}{relative}" if source and source.site_url else relative


def bibtex_entry(artifact: FigureArtifact | TableArtifact) -> str:
    """A ``@misc`` entry citing one figure or table (see :class:`BuildSource` for its fields)."""
    kind = "Figure" if isinstance(artifact, FigureArtifact) else "Table"
    source = artifact.source
    note = artifact.caption
    fields = {"title": artifact.title}
    if source is not None:
        made = f" Made by the generator version {source.version}, commit {source.commit}." if source.version else ""
        where = "" if source.site_url else " URL relative to the site root (the build had no site_url)."
        note = f"{note} Configuration {source.config_hash}, dataset {source.dataset_hash}.{made}{where}"
        fields["howpublished"] = f"{kind} {artifact.id} of {source.publisher}"
        fields["organization"] = source.publisher
        if source.version:
            fields["version"] = source.version
        if source.year:
            fields["year"] = source.year
    else:
        fields["howpublished"] = f"{kind} {artifact.id}"
    body = {k: bibtex_escape(v) for k, v in {**fields, "note": note}.items()}
    body["url"] = permalink(artifact)
    lines = [f"  {name:<12} = {{{value}}}" for name, value in body.items()]
    return f"@misc{{{bibtex_key(artifact.id)},\n" + ",\n".join(lines) + "\n}\n"


def bibtex_file(artifacts: list[FigureArtifact] | list[TableArtifact]) -> str:
    """Every artifact's :func:`bibtex_entry`, in the given order, separated by blank lines."""
    return "\n".join(bibtex_entry(a) for a in artifacts)
