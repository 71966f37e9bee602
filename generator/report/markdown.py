"""Markdown building blocks for the result pages: escaped text, tables, figures.

Every string that can come from a dataset or a config (labels, group names, file
names, titles) goes through :func:`escape` before it reaches a page, so that a
label such as ``<img src=x onerror=alert(1)>`` is shown as text.
"""
from __future__ import annotations

import math
import textwrap
from numbers import Number

import pandas as pd

from generator.report.artifacts import FigureArtifact, TableArtifact, bibtex_entry

__all__ = ["BIBTEX_FILE", "TABLES_BIBTEX_FILE", "cite_block", "escape", "figure_block", "format_value", "table_block",
           "table_link_block", "table_markdown"]

BIBTEX_FILE = "figures.bib"
"""The BibTeX file of every figure, in the results folder (written by the pipeline)."""
TABLES_BIBTEX_FILE = "tables.bib"
"""The BibTeX file of every table, next to :data:`BIBTEX_FILE`."""

# One pass, character by character: HTML-special characters become named entities,
# Markdown-special ones numeric entities. (A backslash escape is not used: before
# "(" or "[" it would start inline or display math for arithmatex.)
_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
                           **{c: f"&#{ord(c)};" for c in "\\`*_{}[]#+!|~$"}})


def escape(text: object) -> str:
    """Escape an untrusted value so it shows as plain text in Markdown and HTML."""
    return str(text).translate(_ENTITIES)


def format_value(value: object, digits: int = 3) -> str:
    """A table cell: floats rounded, NaN shown as "n/a", everything else escaped.

    A non-zero float too small for ``digits`` decimals keeps its significant digits
    (a FAR of 1e-4 prints as ``0.0001``, not as ``0.000``, which would read as zero).
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Number) and not isinstance(value, int):
        value = float(value)
        if math.isnan(value):
            return "n/a"
        if value != 0 and abs(value) < 0.5 * 10.0 ** -digits:
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}"
    return escape(value)


def table_markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table of ``frame`` (headers and cells escaped)."""
    head = "| " + " | ".join(escape(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(format_value(v, digits) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    table = "\n".join([head, rule, *rows])
    return f'<div class="result-table" markdown="block">\n\n{table}\n\n</div>'


def figure_block(fig: FigureArtifact, prefix: str = "") -> str:
    """A figure with its permalink anchor, caption, PNG/SVG/PDF download links and citation."""
    links = " · ".join(f"[{fmt.upper()}]({prefix}{path})" for fmt, path in fig.files.items())
    return (
        f'<figure class="result-figure" id="{fig.id}" markdown="span">\n'
        f"  ![{escape(fig.alt)}]({prefix}{fig.files['png']})\n"
        f"  <figcaption markdown=\"span\">[**{fig.id}**](#{fig.id}) {escape(fig.title)}. "
        f"{escape(fig.caption)} Download: {links}</figcaption>\n"
        f"</figure>\n\n{cite_block(fig, prefix)}"
    )


def table_block(table: TableArtifact, prefix: str = "", digits: int = 3) -> str:
    """A table with its anchor, caption, CSV download link and citation."""
    return (
        f'<div class="result-table" id="{table.id}" markdown="block">\n\n'
        f"{_table_caption(table, prefix)}\n\n"
        f"{table_markdown(table.frame, digits)}\n\n{cite_block(table, prefix)}</div>\n"
    )


def table_link_block(table: TableArtifact, prefix: str = "") -> str:
    """A table too long to show: its anchor, caption, CSV link and citation only."""
    return (f'<div class="result-table" id="{table.id}" markdown="block">\n\n{_table_caption(table, prefix)}\n\n'
            f"{cite_block(table, prefix)}</div>\n")


def cite_block(artifact: FigureArtifact | TableArtifact, prefix: str = "") -> str:
    """A collapsed "Cite this figure" (or table) box holding the artifact's BibTeX entry.

    The entry is shown as a code block, which Markdown escapes, and :func:`bibtex_entry`
    turns every backtick and tilde into a LaTeX command, so no caption can close the fence.
    The box also links the site-wide BibTeX file of its kind (:data:`BIBTEX_FILE`, :data:`TABLES_BIBTEX_FILE`).
    """
    kind = "figure" if isinstance(artifact, FigureArtifact) else "table"
    entry = textwrap.indent(bibtex_entry(artifact), "    ")
    file = BIBTEX_FILE if kind == "figure" else TABLES_BIBTEX_FILE
    every = f"    Every {kind} of this site in one file: [{file}]({prefix}{file})\n\n"
    return f'??? quote "Cite this {kind}"\n\n    ```bibtex\n{entry}    ```\n\n{every}'


def _table_caption(table: TableArtifact, prefix: str) -> str:
    return (f"[**{table.id}**](#{table.id}) {escape(table.title)}. {escape(table.caption)} "
            f"Download: [CSV]({prefix}{table.csv}) ({len(table.frame)} rows)")
