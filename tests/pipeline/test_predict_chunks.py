"""Predictions are computed in chunks that an interrupted run keeps: the next run continues at the first chunk not done,
and the result is the bytes of an uninterrupted run (and of one pass over all images)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generator.models import train as train_module
from generator.pipeline import stages
from generator.pipeline.cache import Cache
from generator.pipeline.stages import predict_stage
from tests.helpers import tiny_faces_and_model


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return tiny_faces_and_model(tmp_path_factory.mktemp("predict"), "k-predict")


def test_an_interrupted_prediction_continues_at_its_chunk(setup, tmp_path, monkeypatch):
    config, faces, trained = setup
    n = len(faces.evaluation)
    monkeypatch.setattr(stages, "PREDICT_CHUNK", 16)
    chunks = -(-n // 16)
    assert chunks >= 4, n
    real, calls = train_module.predict, []

    def failing(model, images, *args, **kwargs):
        if len(calls) == 2:
            raise Interrupted
        calls.append(len(images))
        return real(model, images, *args, **kwargs)

    cache = Cache(tmp_path / "cache")
    monkeypatch.setattr(train_module, "predict", failing)
    with pytest.raises(Interrupted):
        predict_stage(cache, config, faces, trained)
    assert calls == [16, 16]
    kept = sorted(p.name for p in cache.root.glob("predict/.*.partial/chunks/*.npz"))
    assert kept == ["000000000.npz", "000000016.npz"]

    resumed = []
    monkeypatch.setattr(train_module, "predict", lambda model, images, *a, **k: resumed.append(len(images)) or
                        real(model, images, *a, **k))
    again = predict_stage(cache, config, faces, trained)
    assert len(resumed) == chunks - 2 and sum(resumed) == n - 32  # only the chunks not done
    assert not list(cache.root.glob("predict/.*.partial"))  # sealed: the chunk files are gone
    assert sorted(p.name for p in (cache.root / "predict" / again.key).iterdir()) == [
        "done.json", "embeddings.npy", "predictions.csv"]

    fresh = predict_stage(Cache(tmp_path / "fresh"), config, faces, trained)
    pd.testing.assert_frame_equal(again.table, fresh.table, check_exact=True)
    np.testing.assert_array_equal(again.embeddings, fresh.embeddings)
    # and the chunks give the bits of one pass over every evaluation image
    logits, embeddings = real(stages.load_trained(trained, config), faces.images[faces.evaluation])
    np.testing.assert_array_equal(again.table[["logit_0", "logit_1"]].to_numpy(np.float32), logits)
    np.testing.assert_array_equal(again.embeddings, embeddings)
