"""TEMPORARY dev stand-ins for the lead's site_dir / deck_dir fixtures (delete at the end)."""
from __future__ import annotations
import sys
from pathlib import Path
import pytest

sys.path.insert(0, "/tmp/fe")
from build_dev import build  # noqa: E402


@pytest.fixture(scope="session")
def _dev_build(tmp_path_factory):
    return build(tmp_path_factory.mktemp("devbuild"))


@pytest.fixture(scope="session")
def site_dir(_dev_build):
    return _dev_build[0]


@pytest.fixture(scope="session")
def deck_dir(_dev_build):
    return _dev_build[1]
