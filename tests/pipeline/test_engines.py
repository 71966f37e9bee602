"""The same build in the build process and on a local Ray cluster of two CPUs (local worker processes:
test_executor.py), and with its figure files rendered in the build process instead of the
background process.

Tables (CSV) and figures (PNG, SVG, PDF) must be the same bytes: the engines only move where
the maps are computed (the map sets of the explanation section and the shortcut test over
training draws), and a figure pickled to the background process renders as it would where it
was drawn. The build is helpers.write_small_config's.
"""
from __future__ import annotations

import pytest
import yaml
from helpers import result_files, run_build, write_small_config

pytestmark = pytest.mark.slow


def _with(config, execution: dict) -> None:
    raw = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**raw, "execution": execution}, sort_keys=False))


def test_ray_and_figures_in_the_build_process_give_the_files_of_the_default_build(tmp_path):
    serial = write_small_config(tmp_path / "serial")
    run_build(serial, tmp_path / "serial.log")
    expected = result_files(tmp_path / "serial" / "docs/results")
    assert len(expected) >= 100 and any("replicates" in name for name in expected)
    for name, execution in (("ray", {"engine": "ray", "workers": 2}), ("inline", {"background_figures": False})):
        config = write_small_config(tmp_path / name)
        _with(config, execution)
        run_build(config, tmp_path / f"{name}.log")
        log = (tmp_path / f"{name}.log").read_text()
        if name == "ray":
            assert "tasks on" in log, log[-2000:]  # the plan says where the maps ran
        got = result_files(tmp_path / name / "docs/results")
        assert sorted(got) == sorted(expected), name
        differing = sorted(f for f in expected if expected[f] != got[f])
        assert not differing, f"{name}: differ from the serial build: {differing[:10]}"
