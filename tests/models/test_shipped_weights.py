"""The weights shipped in data/weights/ are the default config's models, made by the current code.

A cold `make site` loads them instead of training (training is reproducible but takes about two
minutes a model on one thread). Their folder names are training cache keys, which hash the
training settings, the seed, the dataset's key and the code of the generator and the trainer: if
any of those changed, the keys no longer match and `make weights` must be run.
"""
from __future__ import annotations

import shutil

import pytest

from generator.config import load_config
from generator.pipeline.cache import Cache
from generator.pipeline.stages import SHIPPED_WEIGHTS, _read_meta, state_dict_hash, train_into
from generator.pipeline.weights import expected_weights

REPO = SHIPPED_WEIGHTS.parents[1]


@pytest.fixture(scope="module")
def default_config():
    return load_config(REPO / "data" / "configs" / "default.yaml")


@pytest.fixture(scope="module")
def wanted(default_config, tmp_path_factory) -> dict[str, tuple[str, int]]:
    return expected_weights(default_config, Cache(tmp_path_factory.mktemp("cache")))


def test_shipped_weights_match_the_default_config_and_code(wanted):
    shipped = sorted(p.name for p in SHIPPED_WEIGHTS.iterdir() if p.is_dir())
    assert shipped == sorted(wanted), ("data/weights/ does not hold the default models of the current code and "
                                       "config: run `make weights` and commit data/weights/")
    assert len(wanted) == 2 * 3  # fair and biased, three training draws


def test_shipped_files_are_whole(wanted):
    import torch

    for key in wanted:
        meta = _read_meta(SHIPPED_WEIGHTS / key)
        state = torch.load(SHIPPED_WEIGHTS / key / "model.pt", map_location="cpu", weights_only=True)
        assert state_dict_hash(state) == meta["content_hash"], key
        assert (SHIPPED_WEIGHTS / key / "history.csv").stat().st_size > 100


@pytest.mark.slow
def test_training_here_gives_the_shipped_bytes(default_config, wanted, tmp_path):
    """Retrain the first shipped model here: the same weights (takes about two minutes)."""
    from generator.pipeline.stages import dataset_stage

    key, (name, replicate) = next(iter(wanted.items()))
    faces = dataset_stage(Cache(tmp_path / "cache"), default_config)
    model = next(m for m in default_config.models if m.name == name)
    folder = tmp_path / "trained"
    folder.mkdir()
    train_into(folder, default_config, faces, model, replicate, name)
    assert _read_meta(folder)["content_hash"] == _read_meta(SHIPPED_WEIGHTS / key)["content_hash"]
    shutil.rmtree(folder)
