"""Deterministic training and batched prediction for :class:`SmallCNN`.

Training is an AdamW loop (cosine learning-rate decay) over shuffled mini-batches with optional seeded
horizontal flips. Every random step draws from generators seeded by the one
``seed`` argument: the initial weights from a forked copy of the CPU RNG (the
caller's global RNG state is left as it was), the shuffling and the flips from
a local ``torch.Generator``. On the CPU, the same inputs and seed give
bit-identical weights and history on every x86-64 machine with AVX2, whatever
its instruction set and core count: the kernels are pinned when
:mod:`generator` is imported (:mod:`generator.portable`) and training and
prediction run in :func:`~generator.models.device.portable_cpu` (one thread, no
oneDNN). On a GPU, two runs give bit-identical weights too, with cuDNN pinned
to deterministic kernels and TF32 off, but not the CPU's weights. These PyTorch switches are global, so they
are set only for the duration of a call and restored afterwards (do not train
in two threads at once).

Building a torch optimiser imports Triton, which crashes a process that has
already imported TensorFlow: import TensorFlow only through
:func:`generator.models.device.import_tensorflow`.
"""
from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from generator.errors import ConfigError, DataError, ModelError
from generator.models.device import portable_cpu, torch_device
from generator.models.nets import SmallCNN, check_images, scale_batch, uint8_tensor

__all__ = ["HISTORY_COLUMNS", "TrainParams", "TrainResult", "predict", "train_model"]

LOGGER = logging.getLogger(__name__)

#: Columns of :attr:`TrainResult.history`, one row per epoch.
HISTORY_COLUMNS: tuple[str, ...] = ("epoch", "train_loss", "train_accuracy", "eval_loss", "eval_accuracy")

_EVAL_BATCH_SIZE = 256


@dataclass(frozen=True)
class TrainParams:
    """Hyper-parameters of one training run.

    Parameters
    ----------
    epochs : int
        Passes over the training set (>= 1).
    batch_size : int
        Images per optimisation step (>= 1).
    lr : float
        AdamW learning rate (> 0).
    weight_decay : float
        AdamW decoupled weight decay (>= 0).
    width : int
        Channels of the first convolution of :class:`SmallCNN` (>= 1).
    augment_flip : bool
        Flip each training image horizontally with probability 1/2 (seeded).

    Raises
    ------
    ConfigError
        If a value is out of range; the message names the field.
    """

    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    width: int = 16
    augment_flip: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"training parameter {name} must be an integer >= 1, got {value!r}")
        if not _is_number(self.lr) or not self.lr > 0:
            raise ConfigError(f"training parameter lr must be a number > 0, got {self.lr!r}")
        if not _is_number(self.weight_decay) or not self.weight_decay >= 0:
            raise ConfigError(f"training parameter weight_decay must be a number >= 0, got {self.weight_decay!r}")
        if not isinstance(self.augment_flip, bool):
            raise ConfigError(f"training parameter augment_flip must be true or false, got {self.augment_flip!r}")

    def as_dict(self) -> dict:
        """Return the parameters as a plain ``{name: value}`` dictionary."""
        return asdict(self)


@dataclass
class TrainResult:
    """What :func:`train_model` returns.

    Attributes
    ----------
    model : SmallCNN
        The trained network, in eval mode, on the CPU.
    history : pd.DataFrame
        One row per epoch with the columns :data:`HISTORY_COLUMNS`; the eval
        columns are NaN when no evaluation set was given.
    """

    model: SmallCNN
    history: pd.DataFrame


def train_model(
    images: np.ndarray,
    labels: np.ndarray,
    params: TrainParams,
    seed: int,
    *,
    num_classes: int = 2,
    eval_images: np.ndarray | None = None,
    eval_labels: np.ndarray | None = None,
    progress: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train a :class:`SmallCNN` from scratch, deterministically for a given seed.

    Parameters
    ----------
    images : np.ndarray
        Training images ``(N, H, W, 3)`` uint8 RGB, ``H, W >= 16``.
    labels : np.ndarray
        Integer class labels ``(N,)`` in ``[0, num_classes)``, at least two classes present.
    params : TrainParams
        Hyper-parameters.
    seed : int
        Seed of the initial weights, the shuffling and the flips (>= 0).
    num_classes : int
        Number of classes of the network.
    eval_images, eval_labels : np.ndarray, optional
        Held-out set scored after every epoch; give both or neither.
    progress : callable, optional
        Called after every epoch as ``progress(epoch, metrics)`` with the
        history row (without ``epoch``) as a dictionary.

    Returns
    -------
    TrainResult
        The model (eval mode, CPU) and the per-epoch history.

    Raises
    ------
    DataError
        If the images or labels are not in an accepted form.
    ConfigError
        If ``params`` is not a TrainParams, or ``seed`` or ``num_classes`` is out of range.
    """
    if not isinstance(params, TrainParams):
        raise ConfigError(f"params must be a TrainParams, got {type(params).__name__}")
    seed = _check_seed(seed)
    _check_training_data(images, labels, num_classes, eval_images, eval_labels)
    device = torch_device()
    with _deterministic_kernels():
        model = _init_model(num_classes, params.width, seed).to(device)
        history = _fit(model, images, labels, params, seed, (eval_images, eval_labels), progress)
    return TrainResult(model=model.cpu().eval(), history=history)


def predict(model: nn.Module, images: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Return the logits and embeddings of a network for uint8 images, without autograd.

    The model runs on :func:`torch_device` in eval mode, in full float32 (no
    TF32 on a GPU, so results match the CPU's to about 1e-5); its device and
    train/eval mode are restored afterwards.

    Parameters
    ----------
    model : nn.Module
        A network taking normalised ``(N, 3, H, W)`` input and having an
        ``embed(x)`` method, such as :class:`SmallCNN`.
    images : np.ndarray
        Images ``(N, H, W, 3)`` uint8 RGB.
    batch_size : int
        Images per forward pass (>= 1).

    Returns
    -------
    logits : np.ndarray
        Float32 array ``(N, num_classes)``.
    embeddings : np.ndarray
        Float32 array ``(N, D)`` from ``model.embed``.

    Raises
    ------
    ModelError
        If the model has no ``embed`` method.
    DataError
        If the images are not ``(N, H, W, 3)`` uint8.
    ConfigError
        If ``batch_size`` is not a positive integer.
    """
    if not callable(getattr(model, "embed", None)):
        raise ModelError(f"predict needs a model with an embed(x) method, such as SmallCNN; "
                         f"got {type(model).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    check_images(images, name="images")
    with _on_device_for_inference(model) as device:
        outputs = [_logits_and_embeddings(model, x) for x in _batches(uint8_tensor(images), batch_size, device)]
    logits, embeddings = zip(*outputs)
    return _to_numpy(logits), _to_numpy(embeddings)


def _is_number(value: object) -> bool:
    """Return whether ``value`` is a finite real number (bools excluded)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_seed(seed: int) -> int:
    """Return ``seed`` as a Python int, refusing anything but a non-negative integer."""
    try:
        value = operator.index(seed)
    except TypeError:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}") from None
    if value < 0 or isinstance(seed, bool):
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return value


def _check_labels(labels: np.ndarray, n_images: int, num_classes: int, name: str) -> None:
    """Refuse labels that are not ``n_images`` integers in ``[0, num_classes)``."""
    array = np.asarray(labels)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise DataError(f"{name} must be a 1-D array of integer class indices, "
                        f"got shape {array.shape} and dtype {array.dtype}")
    if len(array) != n_images:
        raise DataError(f"{name} must have one label per image: got {len(array)} labels for {n_images} images")
    outside = array[(array < 0) | (array >= num_classes)]
    if outside.size:
        raise DataError(f"{name} must lie in [0, {num_classes}) for num_classes={num_classes}, "
                        f"got value {outside[0]}")


def _check_training_data(images: np.ndarray, labels: np.ndarray, num_classes: int,
                         eval_images: np.ndarray | None, eval_labels: np.ndarray | None) -> None:
    """Validate the training and (optional) evaluation arrays; raise DataError naming the argument."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    check_images(images, name="images", min_size=SmallCNN.min_input_size)
    _check_labels(labels, len(images), num_classes, "labels")
    present = np.unique(np.asarray(labels))
    if len(present) < 2:
        raise DataError(f"labels must contain at least 2 distinct classes to train a classifier, "
                        f"got only {present.tolist()}")
    if (eval_images is None) != (eval_labels is None):
        raise DataError("eval_images and eval_labels must be given together or both left out, "
                        f"got eval_images={'None' if eval_images is None else 'an array'} and "
                        f"eval_labels={'None' if eval_labels is None else 'an array'}")
    if eval_images is not None:
        check_images(eval_images, name="eval_images", min_size=SmallCNN.min_input_size)
        _check_labels(eval_labels, len(eval_images), num_classes, "eval_labels")


@contextmanager
def _deterministic_kernels() -> Iterator[None]:
    """Pin cuDNN to deterministic full-float32 kernels for the block, then restore the caller's settings.

    ``torch.use_deterministic_algorithms`` is deliberately not called: it imports
    ``torch._inductor`` and thus Triton, which crashes (segmentation fault) a
    process that has already imported TensorFlow. It is not needed here: every
    operation of SmallCNN training is deterministic on the CPU, and on CUDA once
    cuDNN is deterministic (checked: ``warn_only`` mode flags none of them, and
    two GPU runs give bit-identical weights).
    """
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        with _exact_float32(), portable_cpu():
            yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


@contextmanager
def _exact_float32() -> Iterator[None]:
    """Turn off TF32 in cuDNN convolutions and cuBLAS matmuls for the block, so GPU results match the CPU's."""
    previous = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = previous


def _init_model(num_classes: int, width: int, seed: int) -> SmallCNN:
    """Build a SmallCNN whose initial weights depend on ``seed`` only; the global RNG is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return SmallCNN(num_classes=num_classes, width=width)


def _fit(model: SmallCNN, images: np.ndarray, labels: np.ndarray, params: TrainParams, seed: int,
         eval_set: tuple[np.ndarray | None, np.ndarray | None],
         progress: Callable[[int, dict], None] | None) -> pd.DataFrame:
    """Run the epochs and return the history table."""
    device = next(model.parameters()).device
    x = uint8_tensor(images).to(device)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    steps = params.epochs * -(-len(x) // params.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)  # smooth end, stable last epoch
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for epoch in range(1, params.epochs + 1):
        metrics = _train_epoch(model, optimiser, schedule, x, y, params, generator)
        metrics.update(_evaluate(model, *eval_set))
        rows.append({"epoch": epoch, **metrics})
        LOGGER.debug("epoch %d: %s", epoch, metrics)
        if progress is not None:
            progress(epoch, dict(metrics))
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def _train_epoch(model: SmallCNN, optimiser: torch.optim.Optimizer, schedule: Any, x: torch.Tensor,
                 y: torch.Tensor, params: TrainParams, generator: torch.Generator) -> dict:
    """One pass over shuffled mini-batches; return the mean training loss and accuracy."""
    model.train()
    order = torch.randperm(len(x), generator=generator).to(x.device)
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for index in order.split(params.batch_size):
        batch = scale_batch(x[index])
        if params.augment_flip:
            batch = _random_flip(batch, generator)
        logits = model(batch)
        loss = F.cross_entropy(logits, y[index])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        loss_sum += loss.detach() * len(index)
        correct += (logits.detach().argmax(dim=1) == y[index]).sum()
    return {"train_loss": loss_sum.item() / len(x), "train_accuracy": correct.item() / len(x)}


def _random_flip(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each NCHW image left-right with probability 1/2, drawn from ``generator``."""
    flip = (torch.rand(len(batch), generator=generator) < 0.5).to(batch.device)
    return torch.where(flip.view(-1, 1, 1, 1), batch.flip(3), batch)


def _evaluate(model: SmallCNN, images: np.ndarray | None, labels: np.ndarray | None) -> dict:
    """Return the mean loss and accuracy on a held-out set (NaN when there is none)."""
    if images is None:
        return {"eval_loss": float("nan"), "eval_accuracy": float("nan")}
    logits, _ = predict(model, images, batch_size=_EVAL_BATCH_SIZE)
    target = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    loss = F.cross_entropy(torch.from_numpy(logits), target).item()
    return {"eval_loss": loss, "eval_accuracy": float((logits.argmax(axis=1) == target.numpy()).mean())}


@contextmanager
def _on_device_for_inference(model: nn.Module) -> Iterator[torch.device]:
    """Put ``model`` on the compute device in eval mode, without autograd or TF32; restore it afterwards."""
    device = torch_device()
    original = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.to(device).eval()
    try:
        with torch.inference_mode(), _exact_float32(), portable_cpu():
            yield device
    finally:
        model.to(original).train(was_training)


def _batches(images: torch.Tensor, batch_size: int, device: torch.device) -> Iterator[torch.Tensor]:
    """Yield normalised NCHW float32 batches of a uint8 NHWC tensor on ``device``."""
    for start in range(0, len(images), batch_size):
        yield scale_batch(images[start:start + batch_size].to(device))


def _logits_and_embeddings(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(model(x), model.embed(x))``, sharing the feature pass for a SmallCNN."""
    if isinstance(model, SmallCNN):
        embeddings = model.embed(x)
        return model.classifier(embeddings), embeddings
    return model(x), model.embed(x)


def _to_numpy(chunks: tuple[torch.Tensor, ...]) -> np.ndarray:
    """Concatenate per-batch outputs into one float32 NumPy array on the CPU."""
    return torch.cat(chunks).to(device="cpu", dtype=torch.float32).numpy()
