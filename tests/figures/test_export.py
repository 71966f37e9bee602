"""Figure export: three formats, byte-identical across renders, provenance embedded."""
from __future__ import annotations

import numpy as np

from generator.figures.export import FORMATS, figure_bytes, new_figure


def _figure():
    fig, ax = new_figure(3, 2)
    ax.imshow(np.arange(64, dtype=float).reshape(8, 8))
    ax.plot([0, 7], [0, 7], label="line")
    ax.set_title("A title")
    ax.legend()
    return fig


def test_two_renders_are_byte_identical():
    kwargs = dict(figure_id="fig-x", title="T", caption="C", provenance={"seed": 3})
    first = figure_bytes(_figure(), **kwargs)
    second = figure_bytes(_figure(), **kwargs)
    assert set(first) == set(FORMATS)
    for fmt in FORMATS:
        assert first[fmt] == second[fmt], f"{fmt} differs between two renders"


def test_file_signatures_and_metadata():
    files = figure_bytes(_figure(), figure_id="fig-x", title="My title", caption="My caption",
                         provenance={"model": "abc123"})
    assert files["png"].startswith(b"\x89PNG")
    assert files["pdf"].startswith(b"%PDF")
    assert b"<svg" in files["svg"][:2000]
    assert b"abc123" in files["png"] and b"abc123" in files["svg"] and b"abc123" in files["pdf"]
    assert b"CreationDate" not in files["pdf"]
    assert b"/FontFile2" in files["pdf"], "fonts must be embedded as TrueType (fonttype 42)"
