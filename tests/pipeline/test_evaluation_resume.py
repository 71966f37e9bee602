"""An interrupted evaluation keeps the deletion and insertion curves of the chunks that came back: the next run
sends only the others, and its table is the bytes of an uninterrupted run."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generator.pipeline import evaluation_stage
from generator.pipeline.attribution_stages import MapSet
from generator.pipeline.cache import Cache
from generator.pipeline.evaluation_stage import CURVE_IMAGES, submit_evaluation
from tests.helpers import tiny_faces_and_model


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    config, faces, trained = tiny_faces_and_model(tmp_path_factory.mktemp("evaluation"), "k-eval")
    rows = faces.evaluation[:3 * CURVE_IMAGES + 5]  # four curve chunks
    chosen = pd.DataFrame({"row": rows, "image_id": faces.table["image_id"].to_numpy()[rows]})
    targets = faces.table["label"].to_numpy()[rows].astype(np.int64)
    maps = np.random.default_rng(0).random((len(rows), *faces.images.shape[1:3])).astype(np.float32)
    mapset = MapSet("fair", "captum.saliency", "maps-key", maps, "", "torch", "", {}, 0.0)
    return config, faces, trained, chosen, targets, mapset


def test_an_interrupted_evaluation_sends_only_the_chunks_not_done(setup, tmp_path, monkeypatch):
    config, faces, trained, chosen, targets, mapset = setup
    real, calls = evaluation_stage.curve_scores, []

    def failing(*args):
        if len(calls) == 2:
            raise Interrupted
        calls.append(len(args[2]))
        return real(*args)

    cache = Cache(tmp_path / "cache")
    monkeypatch.setattr(evaluation_stage, "curve_scores", failing)
    with pytest.raises(Interrupted):
        submit_evaluation(cache, config, faces, trained, chosen, targets, mapset, None)()
    kept = sorted(p.name for p in cache.root.glob("evaluation/.*.partial/curves/*.npz"))
    assert kept == ["000000000.npz", f"{CURVE_IMAGES:09d}.npz"]

    resumed = []
    monkeypatch.setattr(evaluation_stage, "curve_scores", lambda *a: resumed.append(len(a[2])) or real(*a))
    table = submit_evaluation(cache, config, faces, trained, chosen, targets, mapset, None)()
    assert resumed == [CURVE_IMAGES, 5]  # the two chunks not done, nothing else
    assert not list(cache.root.glob("evaluation/.*.partial"))  # sealed, its chunk files gone
    fresh = submit_evaluation(Cache(tmp_path / "fresh"), config, faces, trained, chosen, targets, mapset, None)()
    pd.testing.assert_frame_equal(table, fresh, check_exact=True)
    assert table["deletion_auc"].notna().all() and table["max_sensitivity"].notna().sum() == 12
