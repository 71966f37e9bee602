"""The face-recognition network of the verification audit: shapes, settings, determinism, known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from generator.errors import ConfigError, DataError
from generator.models.face_recognition import (EmbedderParams, FaceEmbedder, PairSimilarity, embed,
                                               train_embedder)


def test_embeddings_are_unit_vectors_of_the_asked_length():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = FaceEmbedder(width=4, dim=8).eval()
    out = embed(net, np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8))
    assert out.shape == (5, 8) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize(("field", "value"), [("epochs", 0), ("width", 1.5), ("dim", 1), ("lr", 0),
                                              ("scale", -1.0), ("margin", 1.0), ("weight_decay", float("nan"))])
def test_bad_settings_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        EmbedderParams(**{field: value})


def _identities(n_ids: int = 6, per_id: int = 6, size: int = 24, seed: int = 0):
    """Faces of ``n_ids`` 'identities': each a fixed random colour pattern, seen with noise and a shift."""
    rng = np.random.default_rng(seed)
    patterns = rng.integers(30, 226, (n_ids, size // 4, size // 4, 3))
    images, ids = [], []
    for k, pattern in enumerate(patterns):
        big = np.kron(pattern, np.ones((4, 4, 1)))
        for _ in range(per_id):
            shifted = np.roll(big, rng.integers(-1, 2, 2), axis=(0, 1))
            images.append(np.clip(shifted + rng.normal(0, 12, shifted.shape), 0, 255).astype(np.uint8))
            ids.append(f"id-{k}")
    return np.stack(images), np.array(ids)


def test_training_is_deterministic_and_separates_identities():
    images, ids = _identities()
    params = EmbedderParams(epochs=8, batch_size=12, width=4, dim=8, lr=0.01)
    first = train_embedder(images, ids, params, seed=1)
    second = train_embedder(images, ids, params, seed=1)
    for (name, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert first.history["train_loss"].iloc[-1] < first.history["train_loss"].iloc[0]
    e = embed(first.model, images)
    similarity = e @ e.T
    same = ids[:, None] == ids[None, :]
    off_diagonal = ~np.eye(len(ids), dtype=bool)
    genuine, imposter = similarity[same & off_diagonal], similarity[~same]
    # trained on these identities: every identity's images are closer to each other than to the others
    assert genuine.mean() > imposter.mean() + 0.3, (genuine.mean(), imposter.mean())
    other = train_embedder(images, ids, params, seed=2)
    assert not torch.equal(other.model.projection.weight, first.model.projection.weight)


def test_bad_training_data_is_refused_with_the_reason():
    images, ids = _identities(n_ids=2, per_id=3)
    with pytest.raises(DataError, match="at least 2 identities"):
        train_embedder(images, np.array(["a"] * len(images)), EmbedderParams(epochs=1, width=2), 0)
    with pytest.raises(DataError, match="one identity per image"):
        train_embedder(images, ids[:-1], EmbedderParams(epochs=1, width=2), 0)
    with pytest.raises(ConfigError, match="EmbedderParams"):
        train_embedder(images, ids, {"epochs": 1}, 0)


class _TopLeftEmbedder(nn.Module):
    """An embedding of the top-left 8 x 8 pixels only: a pair's similarity cannot depend on any other pixel."""

    dim = 6

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.linear = nn.Linear(3 * 8 * 8, self.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.linear(x[:, :, :8, :8].flatten(1)), dim=1)


@pytest.mark.parametrize("method", ["captum.saliency", "captum.integrated_gradients", "captum.occlusion"])
def test_similarity_maps_are_zero_outside_the_region_the_embedding_reads(method):
    from generator.attribution.handles import torch_handle
    from generator.attribution.registry import build_explainer

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 24, 24, 3), dtype=np.uint8)
    embedder = _TopLeftEmbedder()
    from generator.models.nets import preprocess

    with torch.no_grad():
        reference = embedder(preprocess(images[:1]))[0]
    model = PairSimilarity(embedder, reference)
    params = {"patch_size": 4, "stride": 4} if method == "captum.occlusion" else {}
    maps = build_explainer(method, torch_handle("pair", model), params).explain(images, np.zeros(3, dtype=int))
    assert maps.shape == (3, 24, 24)
    outside = np.ones((24, 24), dtype=bool)
    outside[:8, :8] = False
    inside = np.abs(maps[:, ~outside]).max()
    assert inside > 0.0
    # gradients outside the region are exactly zero; occlusion's are differences of two forward passes made in
    # batches of other sizes, equal up to float32 rounding
    assert np.abs(maps[:, outside]).max() <= (1e-5 * inside if method == "captum.occlusion" else 0.0)
    # the pair (reference image, itself) has similarity 1: a maximum, where the gradient vanishes along
    # the embedding; the other two pairs score below 1
    with torch.no_grad():
        scores = model(preprocess(images))[:, 0].numpy()
    assert scores[0] == pytest.approx(1.0, abs=1e-6) and (scores[1:] < 1.0).all()


def test_pair_similarity_checks_the_reference_and_gives_one_score_per_input():
    embedder = _TopLeftEmbedder()
    with pytest.raises(DataError, match="reference must be one embedding"):
        PairSimilarity(embedder, torch.zeros(5))
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        e = embedder(x)
        per_input = PairSimilarity(embedder, e.flip(0))(x)
    assert per_input.shape == (4, 1)
    np.testing.assert_allclose(per_input[:, 0].numpy(), (e * e.flip(0)).sum(1).numpy(), atol=1e-6)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_embedding_on_several_threads_gives_the_serial_bits_and_keeps_the_thread_setting(threads):
    from generator.models.parallel import embed_batches

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        net = FaceEmbedder(width=4, dim=8).eval()
    images = np.random.default_rng(1).integers(0, 256, (45, 32, 32, 3), dtype=np.uint8)
    before = torch.get_num_threads()
    serial = embed(net, images, batch_size=8)
    parallel = embed_batches(net, images, batch_size=8, threads=threads)
    assert parallel.dtype == np.float32 and parallel.shape == (45, 8)
    assert np.array_equal(parallel, serial)
    assert torch.get_num_threads() == before
