"""Attribution of a verification score: which pixels of a face make it similar to another face.

A face-verification decision compares ``s(a, b) = cos(f(a), f(b))`` with a threshold, where ``f`` is
an embedding network with unit-length outputs. To explain it with a method made for classifiers,
this module turns the embedder into a model with one output per *reference* embedding,

``g(x)_k = f(x) . e_k``  with  ``e_k = f(b_k)`` fixed,

so that output ``k`` of ``g`` at ``x = a_k`` is the score of pair ``k``, and every attribution
method explains it as it explains a class logit (target ``k``). Each image of a pair is explained
with the other image as reference; the two maps say which pixels of ``a`` raise its similarity to
``b``, and which of ``b`` raise its similarity to ``a``. Targets are indices, so the explanation of
one pair never depends on which other pairs share its batch.

:func:`similarity_handle` builds that model for PyTorch (Captum), :func:`keras_similarity_handle`
for Keras (Xplique), from the same weights; :func:`explain_pairs` runs a registered method on both
images of every pair.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from generator.attribution.handles import ModelHandle, keras_handle, torch_handle
from generator.attribution.registry import REGISTRY, build_explainer
from generator.errors import DataError
from generator.models.nets import check_images, preprocess

__all__ = ["ReferenceSimilarity", "explain_pairs", "keras_similarity_handle", "pair_embeddings",
           "similarity_handle"]


class ReferenceSimilarity(nn.Module):
    """``x -> f(x) @ E.T``: the cosine similarity of ``x``'s embedding to each of ``K`` fixed references.

    ``embedder`` returns unit-length embeddings ``(N, dim)``; ``references`` is ``(K, dim)`` (each row is
    normalised here). The output ``(N, K)`` plays the part of a classifier's logits: target ``k``
    explains the similarity to reference ``k``.
    """

    def __init__(self, embedder: nn.Module, references: torch.Tensor) -> None:
        super().__init__()
        self.embedder = embedder
        if hasattr(embedder, "cam_layer_name"):  # the embedder's last convolution, for CAM methods
            self.cam_layer_name = f"embedder.{embedder.cam_layer_name}"
        if references.ndim != 2 or len(references) == 0:
            raise DataError(f"references must be a (K, dim) array of embeddings with K >= 1, got shape "
                            f"{tuple(references.shape)}")
        self.register_buffer("references", F.normalize(references.detach().float(), dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedder(x) @ self.references.T


def pair_embeddings(embedder: nn.Module, images: np.ndarray) -> torch.Tensor:
    """Unit-length embeddings ``(N, dim)`` of uint8 faces (CPU, no autograd)."""
    check_images(images, name="images")
    with torch.inference_mode():
        embedder = embedder.cpu().eval()
        return torch.cat([embedder(preprocess(images[start:start + 64])) for start in range(0, len(images), 64)])


def similarity_handle(embedder: nn.Module, references: torch.Tensor, name: str = "similarity") -> ModelHandle:
    """A PyTorch :class:`ModelHandle` of :class:`ReferenceSimilarity` (for Captum methods)."""
    model = ReferenceSimilarity(embedder.eval(), references).eval()
    return torch_handle(name, model, cam_layer=getattr(model, "cam_layer_name", None))


def keras_similarity_handle(embedder: nn.Module, references: torch.Tensor, image_size: int,
                            name: str = "similarity") -> ModelHandle:
    """A Keras :class:`ModelHandle` of the same similarity model (the embedder's Keras twin, for Xplique)."""
    from generator.models.keras_twin import embedder_to_keras, keras_layer_name

    twin = embedder_to_keras(embedder, image_size, references.detach().cpu().numpy())
    return keras_handle(name, twin, cam_layer=keras_layer_name(embedder.cam_layer_name))


def explain_pairs(method: str, embedder: nn.Module, images_a: np.ndarray, images_b: np.ndarray, *,
                  params: Mapping[str, Any] | None = None, image_size: int | None = None) -> tuple[np.ndarray,
                                                                                                    np.ndarray]:
    """Maps of the similarity of each pair ``(a_k, b_k)``: of ``a_k`` towards ``b_k`` and of ``b_k`` towards ``a_k``.

    Parameters
    ----------
    method : str
        A registered method (``captum.*`` or ``xplique.*``).
    embedder : nn.Module
        Unit-length embedding network (e.g. :class:`~generator.models.face_recognition.FaceEmbedder`).
    images_a, images_b : np.ndarray
        ``(K, H, W, 3)`` uint8 faces, pair ``k`` = ``(images_a[k], images_b[k])``.
    params : mapping, optional
        The method's parameters.
    image_size : int, optional
        For Xplique methods: the side of the square input (default: the images').

    Returns
    -------
    (np.ndarray, np.ndarray)
        float32 ``(K, H, W)`` maps of the ``a`` images and of the ``b`` images.
    """
    images_a, images_b = np.asarray(images_a), np.asarray(images_b)
    if images_a.shape != images_b.shape or images_a.ndim != 4 or not len(images_a):
        raise DataError(f"the two images of each pair must come as two (K, H, W, 3) arrays of one shape with K >= 1, "
                        f"got {images_a.shape} and {images_b.shape}")
    spec = REGISTRY.get(method)
    emb_a, emb_b = pair_embeddings(embedder, images_a), pair_embeddings(embedder, images_b)
    targets = np.arange(len(images_a))
    out = []
    for images, references in ((images_a, emb_b), (images_b, emb_a)):
        if spec is not None and spec.library == "xplique" and "keras" in spec.frameworks:
            handle = keras_similarity_handle(embedder, references, image_size or images.shape[1])
        else:
            handle = similarity_handle(embedder, references)
        out.append(build_explainer(method, handle, params).explain(images, targets).astype(np.float32))
    return out[0], out[1]
