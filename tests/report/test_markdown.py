"""Page building blocks escape untrusted strings and format values honestly."""
from __future__ import annotations

import math

import pandas as pd

from generator.report.artifacts import FigureArtifact, TableArtifact
from generator.report.markdown import (
    escape,
    figure_block,
    format_value,
    table_block,
    table_markdown,
)

EVIL = "<img src=x onerror=alert(1)>"


def test_escape_neutralises_html_and_markdown():
    out = escape(EVIL + " | *bold* [link](http://x)")
    assert "<" not in out and ">" not in out
    assert "&lt;img" in out
    assert "|" not in out and "*" not in out and "[" not in out
    assert "\\" not in escape("a (b) [c]"), "no backslash: it would start arithmatex math"
    assert escape("it's & <ok>") == "it&#39;s &amp; &lt;ok&gt;"


def test_format_value():
    assert format_value(0.123456) == "0.123"
    assert format_value(float("nan")) == "n/a"
    assert format_value(math.inf) == "inf"
    assert format_value(3) == "3"
    assert format_value(True) == "yes"


def test_table_markdown_escapes_cells_and_headers():
    frame = pd.DataFrame({EVIL: [EVIL, "ok"], "x": [0.5, float("nan")]})
    text = table_markdown(frame)
    lines = text.splitlines()
    lines = [line for line in lines if line.startswith("|")]
    assert len(lines) == 4 and lines[1] == "|---|---|"
    assert EVIL not in text
    assert "n/a" in lines[3]


def test_blocks_have_anchor_caption_and_downloads():
    fig = FigureArtifact("fig-a", EVIL, "cap", "alt", "p.md",
                         {"png": "figures/fig-a.png", "svg": "figures/fig-a.svg", "pdf": "figures/fig-a.pdf"})
    block = figure_block(fig)
    assert 'id="fig-a"' in block and "(#fig-a)" in block
    assert "[PNG](figures/fig-a.png)" in block and "[PDF](figures/fig-a.pdf)" in block
    assert EVIL not in block
    table = TableArtifact("tab-a", "T", "C", "p.md", "tables/tab-a.csv", pd.DataFrame({"a": [1]}))
    assert "[CSV](tables/tab-a.csv)" in table_block(table) and 'id="tab-a"' in table_block(table)
