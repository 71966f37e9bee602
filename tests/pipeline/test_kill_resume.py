"""A build killed with SIGKILL (no cleanup runs) resumes: finished work is kept, results are identical.

Folder A gets one uninterrupted build. Folder B gets the same build, killed at growing
points (after a "train" entry is finished, after an "attribution" entry, after several
"figure" entries), then run to completion. Every cache entry finished before a kill must be
reused untouched (same files, same mtimes), no temporary folder may survive, every entry must
pass its checksum, and the CSV tables and PNG/SVG/PDF figures must equal A's byte for byte.

Figures embed provenance (id, data/model hashes, method, seed: see
generator/figures/export.py) but no absolute path, so they are compared whole; only the
Markdown pages (reproducibility.md) name the output folders, and those are not compared.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import ROOT, command, result_files, run_build, write_small_config

from generator.pipeline.cache import DONE, Cache

pytestmark = pytest.mark.slow


def finished(cache: Path, stage: str | None = None) -> list[Path]:
    """Finished entries (a done.json is present: written last, before the rename into place)."""
    pattern = f"{stage or '*'}/*/{DONE}"
    return [p.parent for p in cache.glob(pattern) if not p.parent.name.startswith(".")]


def temporaries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.glob("*/.*") if p.name.endswith(".tmp"))


def snapshot(cache: Path) -> dict[str, int]:
    """relative file path -> mtime in ns, for every file of every finished entry."""
    return {p.relative_to(cache).as_posix(): p.stat().st_mtime_ns
            for entry in finished(cache) for p in entry.rglob("*") if p.is_file()}


def start_and_kill(config: Path, cache: Path, ready, log: Path, what: str, deadline: float = 240) -> dict[str, int]:
    """Start the build, SIGKILL its process group once ``ready(cache)``; return the finished entries then."""
    with open(log, "w") as out:
        proc = subprocess.Popen(command(config), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        stop = time.monotonic() + deadline
        while not ready(cache):
            if proc.poll() is not None:
                pytest.fail(f"build ended (rc {proc.returncode}) before the kill point '{what}':\n"
                            + log.read_text()[-3000:])
            if time.monotonic() > stop:
                pytest.fail(f"kill point '{what}' not reached in {deadline} s")
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    return snapshot(cache)  # taken after the process is dead: exactly what the kill left behind


def test_sigkilled_build_resumes_without_losing_work(tmp_path):
    ref_config = write_small_config(tmp_path / "A")
    run_build(ref_config, tmp_path / "A.log")

    config = write_small_config(tmp_path / "B")
    cache = tmp_path / "B" / "cache"
    kill_points = [
        ("a train entry", lambda c: len(finished(c, "train")) >= 1),
        ("an attribution entry", lambda c: len(finished(c, "attribution")) >= 1),
        ("five figure entries", lambda c: len(finished(c, "figure")) >= 5),
    ]
    kept: dict[str, int] = {}
    left_over_temporaries = 0
    for number, (what, ready) in enumerate(kill_points):
        before = start_and_kill(config, cache, ready, tmp_path / f"B-kill{number}.log", what)
        # Entries finished by an earlier run were reused by this one, not rewritten.
        assert {k: before.get(k) for k in kept} == kept, f"finished entries rewritten before kill {number}"
        kept.update(before)
        left_over_temporaries += len(temporaries(cache))
    assert finished(cache, "train") and finished(cache, "attribution") and len(finished(cache, "figure")) >= 5
    assert not (tmp_path / "B" / "docs/results/manifest.json").exists()  # killed before the end, not after

    run_build(config, tmp_path / "B-resume.log")

    # No finished work lost: every file of every entry finished before a kill is still there, untouched.
    after = snapshot(cache)
    changed = sorted(k for k, mtime in kept.items() if after.get(k) != mtime)
    assert not changed, f"{len(changed)} files of finished entries were rewritten or removed: {changed[:5]}"
    # Nothing partial survives that a later run could mistake for a result: no temporary folders, and
    # every entry folder is a sealed one whose files match their checksums.
    assert temporaries(cache) == [], f"temporary folders left: {temporaries(cache)} " \
                                     f"(kills left {left_over_temporaries})"
    store = Cache(cache)
    entries = [e for e in cache.glob("*/*") if e.is_dir()]
    assert entries and all(store.is_valid(e.parent.name, e.name) for e in entries)
    # A's cache holds the same entries as B's: the kills changed no key.
    reference_cache = tmp_path / "A" / "cache"
    assert sorted(e.relative_to(cache).as_posix() for e in entries) == sorted(
        e.relative_to(reference_cache).as_posix() for e in reference_cache.glob("*/*") if e.is_dir())

    # Same tables and figures, byte for byte.
    expected = result_files(tmp_path / "A" / "docs/results")
    got = result_files(tmp_path / "B" / "docs/results")
    assert sorted(got) == sorted(expected)
    assert len(expected) >= 100, len(expected)
    differing = sorted(name for name in expected if expected[name] != got[name])
    assert not differing, f"differ from the uninterrupted run: {differing}"
