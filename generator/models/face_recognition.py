"""A small face-recognition network, so that the verification audit has a real matcher to audit.

BFW (Robinson et al. 2020) audits face *verification*: two face images, one similarity score, one
threshold for "same person". The pooled features of a smile classifier do not separate identities
(TAR at a FAR of 1 % near chance), so this module trains a network for that purpose: the synthetic
faces keep each identity's geometry, colours, hair style and glasses across its images, and a
network that learns to tell the training identities apart gives embeddings in which identities it
has never seen can be verified.

:class:`FaceEmbedder` is :class:`~generator.models.nets.SmallCNN`'s four convolution blocks and
global average pool, followed by a linear projection to ``dim`` features and L2 normalisation;
the similarity of two faces is the cosine of their embeddings (a dot product of unit vectors).
:func:`train_embedder` fits it with the large-margin cosine loss of CosFace (Wang et al. 2018):
over the training identities, with unit class vectors ``w_j``, the logits are
``s * (cos(f(x), w_j) - m [j = y])``, so an image's embedding must be closer to its own identity's
vector than to any other by the margin ``m``. Training is deterministic for a seed, with the
switches of :func:`~generator.models.train.train_model` (one CPU thread, no oneDNN; cuDNN
deterministic on a GPU), so the weights are reproducible on one machine and shipped with the
project for the default config (see :mod:`generator.pipeline.weights`).

:class:`PairSimilarity` makes the similarity to a fixed reference embedding a one-output model,
which any attribution method explains like a class logit (see :mod:`generator.attribution`).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from generator.errors import ConfigError, DataError
from generator.models.device import torch_device
from generator.models.nets import SmallCNN, _conv_block, check_images, scale_batch, uint8_tensor
from generator.models.train import _check_seed, _deterministic_kernels, _on_device_for_inference, _random_flip

__all__ = ["EmbedderParams", "EmbedderResult", "FaceEmbedder", "PairSimilarity", "embed", "train_embedder"]


class FaceEmbedder(nn.Module):
    """Four convolution blocks, a global average pool and a linear projection to unit-length embeddings.

    Parameters
    ----------
    width : int
        Channels of the first convolution (the blocks have ``width, 2w, 4w, 4w``), at least 1.
    dim : int
        Length of the embedding, at least 2.

    Notes
    -----
    Input: float32 ``(N, 3, H, W)`` normalised like :class:`SmallCNN`'s
    (:func:`~generator.models.nets.preprocess`), ``H, W >= 16``; output: ``(N, dim)`` unit vectors.
    The layer names are :class:`SmallCNN`'s (``features.conv1`` ... ``features.conv4``, ``gap``),
    so the same CAM layer applies.
    """

    cam_layer_name: ClassVar[str] = SmallCNN.cam_layer_name
    min_input_size: ClassVar[int] = SmallCNN.min_input_size

    def __init__(self, *, width: int = 16, dim: int = 64) -> None:
        super().__init__()
        for name, value, low in (("width", width, 1), ("dim", dim, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        self.width, self.dim = width, dim
        channels = (width, 2 * width, 4 * width, 4 * width)
        layers: list[tuple[str, nn.Module]] = []
        for index, (c_in, c_out) in enumerate(zip((3, *channels[:-1]), channels), start=1):
            layers += _conv_block(index, c_in, c_out)
        self.features = nn.Sequential(OrderedDict(layers))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.projection = nn.Linear(channels[-1], dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-length embeddings ``(N, dim)`` of normalised input ``x``."""
        pooled = torch.flatten(self.gap(self.features(x)), start_dim=1)
        return F.normalize(self.projection(pooled), dim=1)


class PairSimilarity(nn.Module):
    """``cos(f(x), e)`` for a fixed reference embedding ``e``: one output per input, shape ``(N, 1)``.

    Explaining output 0 of this model with respect to ``x`` explains the verification score of the
    pair (``x``, reference image). ``reference`` is one unit vector ``(dim,)`` shared by all inputs, or
    one per input ``(N, dim)`` (then the batch must keep that order and size).
    """

    def __init__(self, embedder: nn.Module, reference: torch.Tensor) -> None:
        super().__init__()
        self.embedder = embedder
        if hasattr(embedder, "cam_layer_name"):  # the embedder's last convolution, for CAM methods
            self.cam_layer_name = f"embedder.{embedder.cam_layer_name}"
        if reference.ndim not in (1, 2) or reference.shape[-1] != embedder.dim:
            raise DataError(f"reference must be one embedding ({embedder.dim},) or one per input (N, "
                            f"{embedder.dim}), got shape {tuple(reference.shape)}")
        self.register_buffer("reference", F.normalize(reference.detach().float(), dim=-1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embeddings = self.embedder(x)
        reference = self.reference if self.reference.ndim == 1 else self.reference[: len(x)]
        return (embeddings * reference).sum(dim=1, keepdim=True)


@dataclass(frozen=True)
class EmbedderParams:
    """Settings of :func:`train_embedder`, validated on construction.

    Parameters
    ----------
    epochs, batch_size : int
        Passes over the training images and images per step (>= 1).
    lr, weight_decay : float
        AdamW learning rate (> 0) and decoupled weight decay (>= 0), cosine-decayed to 0.
    width, dim : int
        Of :class:`FaceEmbedder`.
    scale, margin : float
        CosFace's ``s`` (> 0) and ``m`` (in [0, 1)).
    augment_flip : bool
        Mirror each training image with probability 1/2 (seeded).
    """

    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.003
    weight_decay: float = 0.0005
    width: int = 16
    dim: int = 64
    scale: float = 16.0
    margin: float = 0.2
    augment_flip: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"face recognition {name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.dim, int) or isinstance(self.dim, bool) or self.dim < 2:
            raise ConfigError(f"face recognition dim must be an integer >= 2, got {self.dim!r}")
        checks = (("lr", self.lr > 0 if _real(self.lr) else False, "> 0"),
                  ("weight_decay", self.weight_decay >= 0 if _real(self.weight_decay) else False, ">= 0"),
                  ("scale", self.scale > 0 if _real(self.scale) else False, "> 0"),
                  ("margin", 0 <= self.margin < 1 if _real(self.margin) else False, "in [0, 1)"))
        for name, ok, accepted in checks:
            if not ok:
                raise ConfigError(f"face recognition {name} must be a number {accepted}, got {getattr(self, name)!r}")


def _real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


@dataclass
class EmbedderResult:
    """What :func:`train_embedder` returns: the network (eval mode, CPU), the CosFace class vectors, the history."""

    model: FaceEmbedder
    class_vectors: torch.Tensor
    history: pd.DataFrame


def train_embedder(images: np.ndarray, identities: np.ndarray, params: EmbedderParams, seed: int, *,
                   progress: Callable[[int, dict], None] | None = None) -> EmbedderResult:
    """Train a :class:`FaceEmbedder` with the CosFace loss to tell ``identities`` apart, deterministically.

    Parameters
    ----------
    images : np.ndarray
        ``(N, H, W, 3)`` uint8 training faces, ``H, W >= 16``.
    identities : np.ndarray
        ``(N,)`` identity of each image (any hashable labels); at least 2 identities, each with
        at least 2 images.
    params : EmbedderParams
        Settings.
    seed : int
        Seed of the initial weights, the class vectors, the shuffling and the flips (>= 0).
    progress : callable, optional
        Called after every epoch as ``progress(epoch, metrics)``.

    Returns
    -------
    EmbedderResult

    Raises
    ------
    DataError
        If the images or identities are not in an accepted form.
    ConfigError
        If ``params`` or ``seed`` is not accepted.
    """
    if not isinstance(params, EmbedderParams):
        raise ConfigError(f"params must be an EmbedderParams, got {type(params).__name__}")
    seed = _check_seed(seed)
    check_images(images, name="images", min_size=FaceEmbedder.min_input_size)
    names, labels = np.unique(np.asarray(identities), return_inverse=True)
    if len(labels) != len(images):
        raise DataError(f"identities must give one identity per image: {len(labels)} for {len(images)} images")
    counts = np.bincount(labels)
    if len(names) < 2 or counts.min() < 2:
        raise DataError(f"training a face embedder needs at least 2 identities with at least 2 images each; got "
                        f"{len(names)} identities, the smallest with {counts.min()} image(s)")
    device = torch_device()
    with _deterministic_kernels():
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            model = FaceEmbedder(width=params.width, dim=params.dim)
            vectors = torch.randn(len(names), params.dim) * 0.01
        model.to(device)
        class_vectors = nn.Parameter(vectors.to(device))
        history = _fit(model, class_vectors, uint8_tensor(images).to(device),
                       torch.as_tensor(labels, dtype=torch.long, device=device), params, seed, progress)
    return EmbedderResult(model.cpu().eval(), class_vectors.detach().cpu(), history)


def _fit(model: FaceEmbedder, class_vectors: nn.Parameter, x: torch.Tensor, y: torch.Tensor,
         params: EmbedderParams, seed: int, progress: Callable[[int, dict], None] | None) -> pd.DataFrame:
    """The epochs of :func:`train_embedder`; returns one history row per epoch."""
    optimiser = torch.optim.AdamW([*model.parameters(), class_vectors], lr=params.lr,
                                  weight_decay=params.weight_decay)
    steps = params.epochs * -(-len(x) // params.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for epoch in range(1, params.epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=generator).to(x.device)
        loss_sum, correct = 0.0, 0
        for index in order.split(params.batch_size):
            batch = scale_batch(x[index])
            if params.augment_flip:
                batch = _random_flip(batch, generator)
            cosines = model(batch) @ F.normalize(class_vectors, dim=1).T
            margin = F.one_hot(y[index], len(class_vectors)).to(cosines.dtype) * params.margin
            loss = F.cross_entropy(params.scale * (cosines - margin), y[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            loss_sum += float(loss.detach()) * len(index)
            correct += int((cosines.detach().argmax(dim=1) == y[index]).sum())
        row = {"epoch": epoch, "train_loss": loss_sum / len(x), "train_accuracy": correct / len(x)}
        rows.append(row)
        if progress is not None:
            progress(epoch, {k: v for k, v in row.items() if k != "epoch"})
    return pd.DataFrame(rows)


def embed(model: FaceEmbedder, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Unit-length float32 embeddings ``(N, dim)`` of uint8 images, without autograd (same kernels as prediction)."""
    check_images(images, name="images", min_size=FaceEmbedder.min_input_size)
    tensor = uint8_tensor(images)
    with _on_device_for_inference(model) as device:
        chunks = [model(scale_batch(tensor[start:start + batch_size].to(device)))
                  for start in range(0, len(tensor), batch_size)]
    return torch.cat(chunks).to(device="cpu", dtype=torch.float32).numpy()


def params_dict(params: EmbedderParams) -> dict:
    """The settings as a plain dictionary (for cache keys and captions)."""
    return asdict(params)
