"""The stage cache: reuse, atomicity, damage detection."""
from __future__ import annotations

import json

import pytest

from generator.fileio import atomic_write_text
from generator.pipeline.cache import Cache, stable_hash


def test_key_depends_on_params_and_inputs(tmp_path):
    cache = Cache(tmp_path)
    base = cache.key("s", {"a": 1, "b": [1, 2]}, ("in1",))
    assert base == cache.key("s", {"b": [1, 2], "a": 1}, ("in1",)), "key must not depend on dict order"
    assert base != cache.key("s", {"a": 2, "b": [1, 2]}, ("in1",))
    assert base != cache.key("s", {"a": 1, "b": [1, 2]}, ("in2",))
    assert base != cache.key("t", {"a": 1, "b": [1, 2]}, ("in1",))
    assert stable_hash({"x": 1}) == stable_hash({"x": 1})


def test_computes_once_then_reuses(tmp_path):
    cache, calls = Cache(tmp_path), []

    def compute(folder):
        calls.append(folder)
        (folder / "out.txt").write_text("hello")

    first = cache.get_or_compute("s", "k", compute)
    second = cache.get_or_compute("s", "k", compute)
    assert first == second and len(calls) == 1
    assert (first / "out.txt").read_text() == "hello"
    assert json.loads((first / "done.json").read_text())["files"].keys() == {"out.txt"}


def test_interrupted_compute_leaves_no_entry_and_resumes(tmp_path):
    cache = Cache(tmp_path)

    def crash(folder):
        (folder / "half.txt").write_text("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.get_or_compute("s", "k", crash)
    assert not cache.path("s", "k").exists()
    assert not list((tmp_path / "s").glob(".k.*")), "temporary folder must be cleaned up"
    entry = cache.get_or_compute("s", "k", lambda f: (f / "half.txt").write_text("complete"))
    assert (entry / "half.txt").read_text() == "complete"


@pytest.mark.parametrize("damage", ["truncate", "change", "delete", "no-done"])
def test_damaged_entry_is_recomputed(tmp_path, damage):
    cache, calls = Cache(tmp_path), []

    def compute(folder):
        calls.append(1)
        (folder / "data.bin").write_bytes(b"0123456789")

    entry = cache.get_or_compute("s", "k", compute)
    target = entry / "data.bin"
    if damage == "truncate":
        target.write_bytes(b"01234")
    elif damage == "change":
        target.write_bytes(b"0123456780")
    elif damage == "delete":
        target.unlink()
    else:
        (entry / "done.json").unlink()
    assert not cache.is_valid("s", "k")
    entry = cache.get_or_compute("s", "k", compute)
    assert len(calls) == 2 and (entry / "data.bin").read_bytes() == b"0123456789"


def test_atomic_write_skips_identical_content(tmp_path):
    path = tmp_path / "sub" / "page.md"
    assert atomic_write_text(path, "a") is True
    mtime = path.stat().st_mtime_ns
    assert atomic_write_text(path, "a") is False
    assert path.stat().st_mtime_ns == mtime
    assert atomic_write_text(path, "b") is True and path.read_text() == "b"
    assert [p.name for p in path.parent.iterdir()] == ["page.md"], "no temporary files left behind"


def test_code_hash_follows_source(tmp_path, monkeypatch):
    from generator.pipeline.cache import code_hash

    package = tmp_path / "pkg_for_hash"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = code_hash("pkg_for_hash")
    code_hash.cache_clear()
    (package / "a.py").write_text("X = 2\n")
    assert code_hash("pkg_for_hash") != first, "editing a module must change the hash of its package"
    with pytest.raises(ValueError, match="no source"):
        code_hash("pkg_for_hash.missing")
    code_hash.cache_clear()
