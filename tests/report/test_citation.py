"""Citable figures: BibTeX entries that are valid, inert when shown, and identical between builds.

No BibTeX parser is installed (neither pybtex nor bibtexparser), so :func:`parse_bibtex`
below is a strict reader of the subset the site writes: ``@misc{key, name = {value}, ...}``
with balanced braces (counted the way BibTeX counts them: ``\\{`` is a brace too), unique
keys and fields, and no LaTeX special character left unescaped in a value.
"""
from __future__ import annotations

import json
import re

import markdown
import pandas as pd
import pytest

from generator.report.artifacts import (
    BuildSource,
    FigureArtifact,
    TableArtifact,
    bibtex_entry,
    bibtex_escape,
    bibtex_file,
    bibtex_key,
    permalink,
)
from generator.report.markdown import BIBTEX_FILE, figure_block, table_block, table_link_block

HOSTILE = "<img src=x onerror=alert(1)> {}\\%$ & # _ ^ ~ ` | ``` @misc{evil, title={x}} \" '"
REQUIRED = {"title", "howpublished", "note", "url"}
_EXTENSIONS = ["tables", "attr_list", "md_in_html", "admonition", "pymdownx.details", "pymdownx.superfences",
               "pymdownx.arithmatex"]
# What a value may contain besides plain text: the escapes bibtex_escape writes.
_ESCAPES = re.compile(r"\\(?:[%$&#_]|text(?:backslash|braceleft|braceright|asciicircum|asciitilde"
                      r"|less|greater|bar|asciigrave)\{\})")
_DECODE = {r"\textbackslash{}": "\\", r"\textbraceleft{}": "{", r"\textbraceright{}": "}",
           r"\textasciicircum{}": "^", r"\textasciitilde{}": "~", r"\textless{}": "<",
           r"\textgreater{}": ">", r"\textbar{}": "|", r"\textasciigrave{}": "`"}


# ----------------------------------------------------------------------------- a strict reader


def parse_bibtex(text: str) -> dict[str, tuple[str, dict[str, str]]]:
    """Entries of ``text`` by key: (entry type, fields). Fails on anything outside the subset."""
    entries: dict[str, tuple[str, dict[str, str]]] = {}
    pos = _skip_space(text, 0)
    while pos < len(text):
        head = re.compile(r"@([a-z]+)\{([^,\s{}]+),").match(text, pos)
        assert head, f"expected '@type{{key,' at offset {pos}: {text[pos:pos + 40]!r}"
        key = head[2]
        assert key not in entries, f"duplicate key {key}"
        fields, pos = _fields(text, head.end())
        entries[key] = (head[1], fields)
        pos = _skip_space(text, pos)
    return entries


def _fields(text: str, pos: int) -> tuple[dict[str, str], int]:
    fields: dict[str, str] = {}
    while True:
        pos = _skip_space(text, pos)
        assert pos < len(text), "unbalanced braces: the file ends inside an entry"
        if text[pos] == "}":
            return fields, pos + 1
        name = re.compile(r"([a-z]+)\s*=\s*\{").match(text, pos)
        assert name, f"expected 'name = {{' at offset {pos}: {text[pos:pos + 40]!r}"
        assert name[1] not in fields, f"field {name[1]} twice"
        value, pos = _braced(text, name.end())
        fields[name[1]] = value
        pos = _skip_space(text, pos)
        assert pos < len(text), "unbalanced braces: the file ends inside an entry"
        if text[pos] == ",":
            pos += 1
        else:
            assert text[pos] == "}", f"expected ',' or '}}' at offset {pos}"


def _braced(text: str, pos: int) -> tuple[str, int]:
    """The value from ``pos`` (just after its opening brace) to the matching closing brace."""
    depth, start = 1, pos
    while depth:
        assert pos < len(text), "unbalanced braces: the file ends inside a value"
        depth += {"{": 1, "}": -1}.get(text[pos], 0)
        pos += 1
    return text[start:pos - 1], pos


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def check_value(value: str) -> None:
    """No LaTeX or BibTeX special character is left unescaped in a (non-url) value."""
    rest = _ESCAPES.sub("", value)
    assert not set(rest) & set("\\{}%$&#_^~<>`|"), f"unescaped special character in {value!r}"
    assert "\n" not in value


def check_entries(text: str) -> dict[str, tuple[str, dict[str, str]]]:
    entries = parse_bibtex(text)
    for key, (kind, fields) in entries.items():
        assert kind == "misc" and re.fullmatch(r"[A-Za-z0-9_.:-]+", key), key
        assert REQUIRED <= fields.keys(), f"{key}: missing {REQUIRED - fields.keys()}"
        for name, value in fields.items():
            if name != "url":
                check_value(value)
        assert re.fullmatch(r"[A-Za-z0-9/._:#%-]+", fields["url"]), fields["url"]
    return entries


def decode(value: str) -> str:
    """Undo bibtex_escape (for the round-trip test)."""
    for command, char in _DECODE.items():
        value = value.replace(command, char)
    return re.sub(r"\\([%$&#_])", r"\1", value)


# ----------------------------------------------------------------------------- unit tests

SOURCE = BuildSource(publisher="Audit " + HOSTILE, config_hash="0123abcd", dataset_hash="4567ef89",
                     site_path="results/")


def _figure(figure_id: str = "fig-a", text: str = HOSTILE, page: str = "models.md") -> FigureArtifact:
    files = {fmt: f"figures/{figure_id}.{fmt}" for fmt in ("png", "svg", "pdf")}
    return FigureArtifact(figure_id, "Title " + text, "Caption " + text, "Alt " + text, page, files, source=SOURCE)


def _table() -> TableArtifact:
    frame = pd.DataFrame({"group": ["a", "b"], "accuracy": [0.5, float("nan")]})
    return TableArtifact("tab-a", "Table " + HOSTILE, "Caption " + HOSTILE, "models.md", "tables/tab-a.csv",
                         frame, source=SOURCE)


def test_the_reader_refuses_what_bibtex_would_misread():
    with pytest.raises(AssertionError, match="unbalanced"):
        parse_bibtex("@misc{k,\n  title = {a \\{ b}\n}\n")  # "\{" is a brace for BibTeX
    with pytest.raises(AssertionError, match="duplicate"):
        parse_bibtex("@misc{k, title = {a}}\n@misc{k, title = {b}}\n")
    with pytest.raises(AssertionError, match="unescaped"):
        check_value("5% of $x$")


@pytest.mark.parametrize("text", [HOSTILE, "plain", "", "100% of {n} users\\cases", "a\n\tb  c", "x}}}{{"])
def test_escape_is_valid_bibtex_and_round_trips(text):
    value = bibtex_escape(text)
    check_value(value)
    assert parse_bibtex(f"@misc{{k, title = {{{value}}}}}")["k"][1]["title"] == value
    assert decode(value) == " ".join(text.split()), "escaping must keep the text"


def test_escape_known_answer():
    assert bibtex_escape("{x} 5% $y") == r"\textbraceleft{}x\textbraceright{} 5\% \$y"


def test_keys_are_safe_and_stable():
    assert bibtex_key("fig-gallery-captum.saliency") == "fig-gallery-captum.saliency"
    assert bibtex_key("fig a,{b}%") == "fig-a--b--"


def test_entry_fields_and_permalink():
    entry = bibtex_entry(_figure(page="methods/captum.saliency.md"))
    (kind, fields), = check_entries(entry).values()
    assert fields["url"] == "results/methods/captum.saliency.html#fig-a"
    assert decode(fields["title"]) == "Title " + " ".join(HOSTILE.split())
    assert decode(fields["organization"]) == "Audit " + " ".join(HOSTILE.split())
    assert "Configuration 0123abcd, dataset 4567ef89." in fields["note"]
    assert not {"year", "month", "date"} & fields.keys(), "no build time: builds must be byte-identical"
    assert entry == bibtex_entry(_figure(page="methods/captum.saliency.md"))


def test_entry_without_a_build_source_still_parses():
    figure = FigureArtifact("fig-b", "T", "C", "A", "p.md", {"png": "f.png"})
    (_, fields), = check_entries(bibtex_entry(figure)).values()
    assert fields["url"] == "p.html#fig-b" and "organization" not in fields


def test_bibtex_file_has_one_entry_per_figure_in_order():
    figures = [_figure(f"fig-{n}") for n in ("c", "a", "b")]
    text = bibtex_file(figures)
    assert list(check_entries(text)) == ["fig-c", "fig-a", "fig-b"]
    assert permalink(figures[0]) == "results/models.html#fig-c"


def _render(text: str) -> str:
    """Markdown to HTML with the extensions of the site's mkdocs.yml that these blocks use."""
    return markdown.markdown(text, extensions=_EXTENSIONS, extension_configs={"pymdownx.arithmatex": {"generic": True}})


def test_figure_block_has_an_inert_cite_box():
    html = _render(figure_block(_figure(), prefix="../"))
    assert '<details class="quote">' in html and "<summary>Cite this figure</summary>" in html
    assert "<img src=x" not in html and "<script" not in html
    code = re.search(r"<details.*?<code>(.*?)</code>", html, re.S)[1]
    assert "@misc" in code and "fig-a" in code and "<" not in re.sub(r"</?span[^>]*>", "", code)
    assert f'href="../{BIBTEX_FILE}"' in html
    assert 'alt="Alt &lt;img' in html, "the figure keeps its (escaped) alt text"


def test_table_blocks_have_a_cite_box():
    for block in (table_block(_table()), table_link_block(_table())):
        html = _render(block)
        assert "<summary>Cite this table</summary>" in html and "@misc" in html
        assert "<img src=x" not in html


# ----------------------------------------------------------------------------- the tiny build


@pytest.mark.slow
def test_figures_bib_lists_every_figure_of_the_build(tiny_build, site_dir):
    results = tiny_build.config.output.results_dir
    manifest = json.loads((results / "manifest.json").read_text())
    assert manifest["meta"]["bibtex"] == BIBTEX_FILE
    text = (results / BIBTEX_FILE).read_text(encoding="utf-8")
    entries = check_entries(text)
    assert list(entries) == [bibtex_key(f["id"]) for f in manifest["figures"]]
    assert (site_dir / "results" / BIBTEX_FILE).read_bytes() == text.encode("utf-8")
    for figure in manifest["figures"]:
        url = entries[bibtex_key(figure["id"])][1]["url"]
        page, anchor = url.split("#")
        html = (site_dir / page).read_text(encoding="utf-8")
        assert f'id="{anchor}"' in html, url
        assert bibtex_key(figure["id"]) in _cited_keys(html), f"{figure['id']}: no cite box on {page}"


@pytest.mark.slow
def test_tables_bib_and_every_entry_names_version_and_year(tiny_build, site_dir):
    from generator import __version__
    from generator.report.markdown import TABLES_BIBTEX_FILE

    results = tiny_build.config.output.results_dir
    manifest = json.loads((results / "manifest.json").read_text())
    assert manifest["meta"]["tables_bibtex"] == TABLES_BIBTEX_FILE
    tables = check_entries((results / TABLES_BIBTEX_FILE).read_text(encoding="utf-8"))
    assert list(tables) == [bibtex_key(t["id"]) for t in manifest["tables"]]
    figures = check_entries((results / BIBTEX_FILE).read_text(encoding="utf-8"))
    for key, (_, fields) in {**figures, **tables}.items():
        assert fields["version"] == __version__, key
        assert re.fullmatch(r"20\d\d", fields["year"]), key
        assert "commit" in fields["note"], key
        assert "relative to the site root" in fields["note"], key  # the tiny build has no site_url
    for table in manifest["tables"]:
        page, anchor = tables[bibtex_key(table["id"])][1]["url"].split("#")
        assert f'id="{anchor}"' in (site_dir / page).read_text(encoding="utf-8"), table["id"]


def test_site_url_makes_every_link_absolute():
    source = BuildSource("Audit", "c0ffee", "d00d", "results/", site_url="https://example.org/audit/",
                         version="9.9", commit="abc", year="2026")
    fig = FigureArtifact("fig-x", "X", "Caption.", "alt", "models.md", {"png": "figures/fig-x.png"}, source=source)
    assert permalink(fig) == "https://example.org/audit/results/models.html#fig-x"
    _, fields = check_entries(bibtex_entry(fig))["fig-x"]
    assert fields["url"] == "https://example.org/audit/results/models.html#fig-x"
    assert fields["year"] == "2026" and fields["version"] == "9.9"
    assert "relative to the site root" not in fields["note"]


def test_site_url_is_checked_and_normalised():
    from generator.config import parse_config
    from generator.errors import ConfigError

    assert parse_config({"report": {"site_url": "https://example.org/a"}}).report.site_url == "https://example.org/a/"
    with pytest.raises(ConfigError, match="report.site_url.*absolute http"):
        parse_config({"report": {"site_url": "example.org/a"}})


def _cited_keys(html: str) -> set[str]:
    """The keys of the BibTeX entries in a page's "Cite this ..." boxes."""
    boxes = re.findall(r'<details class="quote">(.*?)</details>', html, re.S)
    text = re.sub(r"<[^>]+>", "", "".join(boxes))
    return set(re.findall(r"@misc\{([^,]+),", text))
