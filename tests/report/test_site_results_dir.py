"""The site with results in another folder than docs/results, and a short error when mkdocs fails.

The project's own mkdocs.yml and hand-written pages are copied into a temporary folder, with
stand-in result pages (one line each) in the configured results folder; ``build_site`` then runs
the real ``mkdocs build --strict``.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from generator.config import parse_config
from generator.errors import ExportError
from generator.pipeline.build import PAGES, build_site
from helpers import ROOT, outputs_under

HAND_WRITTEN = ("index.md", "datasets.md", "tutorial.ipynb", "methods", "stylesheets", "javascripts")


def _site(tmp_path: Path, results: str):
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in HAND_WRITTEN:
        (shutil.copytree if (ROOT / "docs" / name).is_dir() else shutil.copy)(ROOT / "docs" / name, docs / name)
    folder = docs / results
    folder.mkdir(parents=True)
    for page in PAGES:
        (folder / page).write_text(f"# {page}\n\nStand-in page of this build.\n")
    (folder / "manifest.json").write_text("{}\n")
    output = {**outputs_under(tmp_path), "results_dir": str(folder)}
    return parse_config({"output": output}, source="test"), docs


def test_results_in_another_folder_get_the_nav_and_the_home_page_links(tmp_path):
    config, docs = _site(tmp_path, "audits/2026")
    site = build_site(config, docs)
    home = (site / "index.html").read_text()
    # the home page's links to results/... point at this build's folder
    assert 'href="audits/2026/reproducibility.html"' in home
    assert 'href="audits/2026/dataset.html"' in home
    assert "results/reproducibility" not in home
    # the nav lists this build's pages (every page the build writes), not the default folder's
    nav = set(re.findall(r'href="(?:\./)?(audits/2026/[a-z-]+\.html)"', home))
    assert nav == {f"audits/2026/{Path(p).stem}.html" for p in PAGES}
    methods = (site / "methods" / "index.html").read_text()
    assert 'href="../audits/2026/dataset.html"' in methods
    assert not (site / "results").exists()


def test_a_failing_mkdocs_build_reports_its_warnings_only(tmp_path):
    config, docs = _site(tmp_path, "results")
    (docs / "datasets.md").write_text("# Own data\n\nSee [a missing page](nowhere.md).\n")
    with pytest.raises(ExportError) as failure:
        build_site(config, docs)
    message = str(failure.value)
    assert "mkdocs build --strict failed" in message
    assert "nowhere.md" in message
    lines = message.splitlines()[1:]
    assert lines and all(line.startswith(("WARNING", "ERROR", "Error")) for line in lines), lines
    assert len(lines) <= 5
