"""Shared fixtures: one tiny end-to-end build, reused by the e2e and browser tests.

The tiny build copies the hand-written site sources (mkdocs.yml, docs/ without generated
results) into a temporary folder and runs the whole pipeline there on a small config:
few 48-px faces, a narrow model trained for two epochs. It takes well under a minute.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import copy_site_sources, tiny_config

from generator.config import Config


@dataclass(frozen=True)
class TinyBuild:
    workdir: Path
    config: Config
    result: object


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory) -> TinyBuild:
    from generator.pipeline.build import build

    workdir = tmp_path_factory.mktemp("tiny")
    copy_site_sources(workdir)
    config = tiny_config(workdir)
    return TinyBuild(workdir, config, build(config, site=True))


@pytest.fixture(scope="session")
def site_dir(tiny_build) -> Path:
    """The built mkdocs site of the tiny build (deck copied to <site>/slides/)."""
    return tiny_build.result.site_dir


@pytest.fixture(scope="session")
def deck_dir(tiny_build) -> Path:
    """The tiny build's deck folder: index.html, lib/, figures/."""
    return tiny_build.result.deck_html.parent
