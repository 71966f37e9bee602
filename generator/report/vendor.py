"""Copy the browser libraries that the site and the deck load into their output folders.

Every script, style sheet and font the site or the deck needs is served from the
project's own files: nothing is fetched from a CDN when a page is viewed. The
libraries come from npm (``package.json`` / ``package-lock.json``, installed with
``npm ci``); this module copies the few files each output needs out of
``node_modules``.

A file is copied only when the target is missing or differs, so a rerun that
finds everything in place writes nothing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from generator.errors import ExportError
from generator.fileio import atomic_write_bytes

__all__ = ["SITE_VENDOR_DIR", "DECK_LIB_DIR", "copy_site_vendor", "copy_deck_vendor"]

SITE_VENDOR_DIR = Path("assets") / "vendor"
"""Where the site's vendored files go, relative to the MkDocs ``docs_dir``."""

DECK_LIB_DIR = Path("lib")
"""Where the deck's vendored files go, relative to the deck folder."""

_KATEX_FILES = ("katex.min.css", "katex.min.js", "contrib/auto-render.min.js")

# MathJax 2 for the tutorial notebook's page (mkdocs-jupyter's template configures MathJax 2;
# mkdocs.yml points its ``custom_mathjax_url`` here): the loader, the one combined configuration
# the page asks for, and what that configuration loads at run time (Safe mode, TeX extensions
# that macros pull in, operator tables, CommonHTML font data, web fonts), in the package layout.
_MATHJAX_PARTS = (
    "MathJax.js", "LICENSE", "config/TeX-AMS_CHTML-full.js", "config/Safe.js", "extensions/Safe.js",
    "extensions/TeX", "jax/element/mml/optable", "jax/output/CommonHTML/autoload",
    "jax/output/CommonHTML/fonts/TeX", "fonts/HTML-CSS/TeX/woff",
)

# (npm package, file inside the package, target relative to the vendor root);
# a source that is a folder is copied file by file, without subfolders.
_SITE_ASSETS: tuple[tuple[str, str, str], ...] = (
    *(("katex", f"dist/{name}", f"katex/{name}") for name in _KATEX_FILES),
    ("katex", "dist/fonts", "katex/fonts"),
    ("katex", "LICENSE", "katex/LICENSE"),
    ("iframe-worker", "shim/index.js", "iframe-worker/shim.js"),
    ("iframe-worker", "LICENSE", "iframe-worker/LICENSE"),
    ("tablesort", "dist/tablesort.min.js", "tablesort/tablesort.min.js"),
    ("tablesort", "LICENCE", "tablesort/LICENCE"),
    *(("mathjax", part, f"mathjax/{part}") for part in _MATHJAX_PARTS),
)

# The reveal.js math plugin loads KaTeX from ``<local>/dist/...``, so the deck
# keeps KaTeX's ``dist`` folder layout under ``lib/katex``.
_DECK_ASSETS: tuple[tuple[str, str, str], ...] = (
    *(("reveal.js", f"dist/{name}", f"reveal.js/{name}") for name in (
        "reset.css", "reveal.css", "reveal.js", "theme/white-contrast.css",
        "plugin/notes.js", "plugin/math.js",
    )),
    ("reveal.js", "LICENSE", "reveal.js/LICENSE"),
    *(("katex", f"dist/{name}", f"katex/dist/{name}") for name in _KATEX_FILES),
    ("katex", "dist/fonts", "katex/dist/fonts"),
    ("katex", "LICENSE", "katex/LICENSE"),
)


def copy_site_vendor(node_modules: Path, docs_dir: Path) -> list[Path]:
    """Copy KaTeX, the iframe-worker shim, tablesort and MathJax 2 into ``<docs_dir>/assets/vendor``.

    Parameters
    ----------
    node_modules : Path
        The project's ``node_modules`` folder, filled by ``npm ci``.
    docs_dir : Path
        The MkDocs ``docs_dir``; ``mkdocs.yml`` refers to the copied files.

    Returns
    -------
    list of Path
        Every vendored file of the site (copied now or already up to date).

    Raises
    ------
    ExportError
        If ``node_modules`` or a file the site needs is missing.
    """
    return _copy_assets(_SITE_ASSETS, Path(node_modules), Path(docs_dir) / SITE_VENDOR_DIR)


def copy_deck_vendor(node_modules: Path, deck_dir: Path) -> list[Path]:
    """Copy reveal.js (theme, notes and math plugins) and KaTeX into ``<deck_dir>/lib``.

    Parameters
    ----------
    node_modules : Path
        The project's ``node_modules`` folder, filled by ``npm ci``.
    deck_dir : Path
        The folder that holds the deck's ``index.html``.

    Returns
    -------
    list of Path
        Every vendored file of the deck (copied now or already up to date).

    Raises
    ------
    ExportError
        If ``node_modules`` or a file the deck needs is missing.
    """
    return _copy_assets(_DECK_ASSETS, Path(node_modules), Path(deck_dir) / DECK_LIB_DIR)


def check_assets(node_modules: Path) -> int:
    """Count the browser library files the site and the deck need, raising ExportError on the first missing one."""
    node_modules = Path(node_modules)
    if not node_modules.is_dir():
        raise ExportError(f"node_modules folder not found at {node_modules}; "
                          "run `npm ci` in the project root to install the browser libraries")
    return sum(len(_expand(node_modules / package / source, Path(target)))
               for package, source, target in (*_SITE_ASSETS, *_DECK_ASSETS))


def _copy_assets(
    assets: Iterable[tuple[str, str, str]], node_modules: Path, target_root: Path
) -> list[Path]:
    if not node_modules.is_dir():
        raise ExportError(
            f"node_modules folder not found at {node_modules}; "
            "run `npm ci` in the project root to install the browser libraries"
        )
    copied: list[Path] = []
    for package, source, target in assets:
        for src, dst in _expand(node_modules / package / source, target_root / target):
            _copy_if_changed(src, dst)
            copied.append(dst)
    return copied


def _expand(src: Path, dst: Path) -> list[tuple[Path, Path]]:
    if src.is_dir():
        return [(f, dst / f.name) for f in sorted(src.iterdir()) if f.is_file()]
    if src.is_file():
        return [(src, dst)]
    raise ExportError(
        f"browser library file {src} is missing; run `npm ci` in the project root "
        "(package-lock.json pins the versions the site and deck need)"
    )


def _copy_if_changed(src: Path, dst: Path) -> None:
    atomic_write_bytes(dst, src.read_bytes())
