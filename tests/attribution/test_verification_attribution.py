"""Attribution of verification scores: the similarity model, known answers, batch independence, the Keras twin."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from generator.attribution.verification import (ReferenceSimilarity, explain_pairs, keras_similarity_handle,
                                                pair_embeddings)
from generator.errors import DataError
from generator.models.face_recognition import FaceEmbedder
from generator.models.nets import preprocess


class _TopLeftEmbedder(nn.Module):
    """An embedding that reads the top-left 8 x 8 pixels only: every similarity map must be zero elsewhere."""

    dim = 6

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)
            self.linear = nn.Linear(3 * 8 * 8, self.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(torch.tanh(self.linear(x[:, :, :8, :8].flatten(1))), dim=1)


def _faces(n: int, size: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _embedder(seed: int = 0) -> FaceEmbedder:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FaceEmbedder(width=4, dim=8)
        for module in net.modules():  # running statistics other than 0 / 1, so the twin must copy them right
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return net.eval()


def test_outputs_are_the_cosines_to_each_reference():
    embedder = _embedder()
    a, b = _faces(5, 32), _faces(3, 32, seed=1)
    refs = pair_embeddings(embedder, b)
    with torch.no_grad():
        out = ReferenceSimilarity(embedder, refs)(preprocess(a)).numpy()
    expected = pair_embeddings(embedder, a).numpy() @ refs.numpy().T
    assert out.shape == (5, 3)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    with pytest.raises(DataError, match=r"\(K, dim\)"):
        ReferenceSimilarity(embedder, torch.zeros(8))


@pytest.mark.parametrize("method", ["captum.saliency", "captum.integrated_gradients", "captum.occlusion"])
def test_maps_are_zero_outside_the_pixels_the_embedding_reads(method):
    a, b = _faces(3), _faces(3, seed=1)
    params = {"patch_size": 4, "stride": 4} if method == "captum.occlusion" else {}
    maps_a, maps_b = explain_pairs(method, _TopLeftEmbedder(), a, b, params=params)
    outside = np.ones((24, 24), dtype=bool)
    outside[:8, :8] = False
    for maps in (maps_a, maps_b):
        assert maps.shape == (3, 24, 24)
        inside = np.abs(maps[:, ~outside]).max()
        assert inside > 0.0
        # gradients outside are exactly zero; occlusion's are differences of forward passes, equal up to rounding
        assert np.abs(maps[:, outside]).max() <= (1e-5 * inside if method == "captum.occlusion" else 0.0)


def test_integrated_gradients_of_a_pair_sum_to_its_score_minus_the_baseline_score():
    """Completeness, on the similarity: the map of a towards b sums to s(a, b) - s(black, b)."""
    embedder = _TopLeftEmbedder()
    a, b = _faces(4), _faces(4, seed=1)
    maps_a, _ = explain_pairs("captum.integrated_gradients", embedder, a, b, params={"steps": 64})
    refs = pair_embeddings(embedder, b)
    with torch.no_grad():
        score = (embedder(preprocess(a)) * refs).sum(1).numpy()
        black = (embedder(preprocess(np.zeros_like(a))) * refs).sum(1).numpy()
    np.testing.assert_allclose(maps_a.sum(axis=(1, 2)), score - black, atol=2e-3)


def test_a_pairs_map_does_not_depend_on_the_other_pairs_in_its_batch():
    embedder = _embedder()
    a, b = _faces(6, 32), _faces(6, 32, seed=1)
    full_a, full_b = explain_pairs("captum.integrated_gradients", embedder, a, b)
    part_a, part_b = explain_pairs("captum.integrated_gradients", embedder, a[2:4], b[2:4])
    np.testing.assert_allclose(part_a, full_a[2:4], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(part_b, full_b[2:4], rtol=1e-5, atol=1e-7)
    # the two faces of a pair get maps of their own
    assert not np.allclose(full_a, full_b)


def test_pairs_must_come_as_two_stacks_of_one_shape():
    with pytest.raises(DataError, match="two images of each pair"):
        explain_pairs("captum.saliency", _embedder(), _faces(3, 32), _faces(2, 32))


def test_the_keras_twin_gives_the_same_similarities_and_xplique_explains_them():
    from generator.models.device import import_tensorflow

    import_tensorflow()  # Triton before TensorFlow (see generator.models.device), as the build does
    embedder = _embedder(3)
    a, b = _faces(4, 32), _faces(4, 32, seed=2)
    refs = pair_embeddings(embedder, b)
    handle = keras_similarity_handle(embedder, refs, 32)
    keras_out = np.asarray(handle.logits(a))
    np.testing.assert_allclose(keras_out, pair_embeddings(embedder, a).numpy() @ refs.numpy().T, atol=2e-5)
    xq_a, _ = explain_pairs("xplique.saliency", embedder, a, b)
    torch_a, _ = explain_pairs("captum.saliency", embedder, a, b)
    assert xq_a.shape == (4, 32, 32) and np.isfinite(xq_a).all()
    # both libraries differentiate the same function: their absolute gradient maps agree pixel by pixel
    for x, t in zip(xq_a, torch_a):
        assert np.corrcoef(np.abs(x).ravel(), np.abs(t).ravel())[0, 1] > 0.99
