"""One export function for every figure: PNG + SVG + PDF, byte-reproducible.

Matplotlib writes a creation date into PDF and SVG files and random ids into SVG;
both are fixed here so that two builds from the same inputs give byte-identical
files. Provenance (figure id, caption, parameters) is embedded in each file's
metadata, so a figure found on its own still says where it came from.
"""
from __future__ import annotations

import functools
import io
import json
import pickle
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["FORMATS", "STYLE", "figure_bytes", "new_figure", "render_pickled", "styled"]

FORMATS = ("png", "svg", "pdf")

STYLE: dict[str, Any] = {
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "path",
    "svg.hashsalt": "face-xai-audit",
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "image.cmap": "viridis",
    "axes.prop_cycle": matplotlib.cycler(
        # Okabe-Ito, safe for the common forms of colour blindness.
        color=["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
    ),
}


def styled(function: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw inside the project style, so texts added after ``new_figure`` get its sizes too."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Figure:
        with plt.rc_context(STYLE):
            return function(*args, **kwargs)
    return wrapper


def new_figure(width_in: float = 6.5, height_in: float = 3.0, **subplot_kw: Any) -> tuple[Figure, Any]:
    """A figure in the project style (never the implicit pyplot state)."""
    with plt.rc_context(STYLE):
        fig = Figure(figsize=(width_in, height_in), layout="constrained")
        axes = fig.subplots(**subplot_kw)
    return fig, axes


def figure_bytes(fig: Figure, *, figure_id: str, title: str, caption: str,
                 provenance: dict[str, Any]) -> dict[str, bytes]:
    """Render ``fig`` to PNG, SVG and PDF bytes with fixed, embedded metadata.

    Parameters
    ----------
    fig
        The figure to render.
    figure_id, title, caption
        Stable id and texts; stored in each file's metadata.
    provenance
        JSON-able parameters (data hash, model hash, method, seed...).

    Returns
    -------
    dict
        Format name to file content.
    """
    keywords = json.dumps({"id": figure_id, **provenance}, sort_keys=True, default=str)
    metadata = {
        "png": {"Title": title, "Description": caption, "Software": "generator", "Comment": keywords},
        "svg": {"Title": title, "Description": f"{caption}\n{keywords}", "Date": None, "Creator": "generator"},
        "pdf": {"Title": title, "Subject": caption, "Keywords": keywords, "Creator": "generator",
                "Producer": "matplotlib", "CreationDate": None, "ModDate": None},
    }
    out: dict[str, bytes] = {}
    engine = fig.get_layout_engine()
    try:
        with plt.rc_context(STYLE):
            for fmt in FORMATS:
                buffer = io.BytesIO()
                fig.savefig(buffer, format=fmt, metadata=metadata[fmt])
                out[fmt] = buffer.getvalue()
                # The layout of the first format (PNG) is kept for the others: constrained layout measures
                # every text of every axes, most of the export's time for a gallery of a hundred panels.
                fig.set_layout_engine("none")
    finally:
        fig.set_layout_engine(engine)
    return out


def render_pickled(blob: bytes, *, figure_id: str, title: str, caption: str,
                   provenance: dict[str, Any]) -> dict[str, bytes]:
    """:func:`figure_bytes` of a pickled figure: what a background export process runs.

    A figure survives pickling whole (artists, data, layout engine), and the files it renders
    are the bytes that the process which drew it would have rendered (checked by the tests).
    """
    return figure_bytes(pickle.loads(blob), figure_id=figure_id, title=title, caption=caption,
                        provenance=provenance)
