"""An interrupted map set resumes at the chunk where it stopped, with the maps of an uninterrupted run.

SmoothGrad is used because it is random: it is reseeded at every chunk of ``batch_size`` (4)
images, so continuing at a chunk boundary must give the same bytes; a run that restarted its
random stream mid-way would not.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from generator.attribution import torch_handle
from generator.models.nets import SmallCNN
from generator.pipeline import attribution_stages
from generator.pipeline.attribution_stages import RESUME, _explain_to_disk
from generator.pipeline.cache import Cache

METHOD, PARAMS = "captum.smoothgrad", {"samples": 4, "batch_size": 4}
N = 10  # chunks of 4, 4 and 2 images


class Interrupted(Exception):
    pass


@pytest.fixture
def explain(monkeypatch):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SmallCNN(width=4)
    monkeypatch.setattr(attribution_stages, "kept_handle", lambda *args: torch_handle("cnn", model))
    images = np.random.default_rng(0).integers(0, 256, (N, 32, 32, 3), dtype=np.uint8)
    targets = np.arange(N) % 2

    def run(folder, progress=None):
        return _explain_to_disk(None, None, "torch", None, METHOD, PARAMS, images, targets, folder, progress)
    return run


def _stop_after(chunks: int, seen: list[int]):
    def progress(n: int) -> None:
        seen.append(n)
        if len(seen) == chunks:
            raise Interrupted
    return progress


def test_an_interrupted_map_set_continues_at_its_chunk(tmp_path, explain):
    (tmp_path / "A").mkdir()
    explain(tmp_path / "A")
    expected = np.load(tmp_path / "A" / "maps.npy")

    cache = Cache(tmp_path / "cache")
    calls: list[int] = []
    with pytest.raises(Interrupted):
        cache.get_or_compute("attribution", "k", lambda folder: explain(folder, _stop_after(2, calls)),
                             resumable=True)
    partial = cache.partial("attribution", "k")
    assert json.loads((partial / RESUME).read_text())["images"] == 8  # two chunks of 4 were written
    assert not cache.is_done("attribution", "k")

    resumed: list[int] = []
    entry = cache.get_or_compute("attribution", "k", lambda folder: explain(folder, resumed.append), resumable=True)
    assert resumed == [8, 2]  # the 8 images already there are reported once, then only the last chunk runs
    np.testing.assert_array_equal(np.load(entry / "maps.npy"), expected)
    assert not partial.exists() and not (entry / RESUME).exists() and cache.is_valid("attribution", "k")


def test_a_ledger_that_does_not_fit_the_maps_starts_afresh(tmp_path, explain):
    (tmp_path / "A").mkdir()
    explain(tmp_path / "A")
    expected = np.load(tmp_path / "A" / "maps.npy")
    folder = tmp_path / "B"
    folder.mkdir()
    np.save(folder / "maps.npy", np.zeros((N + 1, 32, 32), np.float32))  # another image set's maps
    (folder / RESUME).write_text(json.dumps({"images": 4, "seconds": 1.0}))
    seen: list[int] = []
    explain(folder, seen.append)
    assert seen == [4, 4, 2]
    np.testing.assert_array_equal(np.load(folder / "maps.npy"), expected)
    (folder / RESUME).write_text("{not json")
    seen.clear()
    explain(folder, seen.append)
    assert seen == [4, 4, 2]
