"""MkDocs hook for a build whose results live in another folder than ``docs/results``.

The hand-written pages (the home page, the Methods section) link to the default results folder,
``results/...``. When a config writes its results elsewhere (``output.results_dir``), the build
runs mkdocs with this hook and ``GENERATOR_RESULTS_PATH`` set to that folder relative to
``docs/``; the links then point at the pages this build wrote, and ``--strict`` stays meaningful.
"""
from __future__ import annotations

import os
import re

_LINK = re.compile(r"\]\(((?:\.\./)*)results/")


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (mkdocs' hook signature)
    """Links into ``results/`` of a page outside the results folder, pointed at the configured folder."""
    target = os.environ.get("GENERATOR_RESULTS_PATH", "results").strip("/")
    if target == "results" or page.file.src_uri.startswith(target + "/"):
        return markdown
    return _LINK.sub(lambda m: f"]({m.group(1)}{target}/", markdown)
