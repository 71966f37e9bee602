"""The compute stages of a build, each cached by the hash of its inputs and parameters.

Each function takes the cache, its parameters and the results of earlier stages,
and returns a small result object that carries the cache key, so that later stages
can name their inputs. Framework code (torch, TensorFlow) is imported inside the
stages that need it, so a fully cached rerun never imports TensorFlow.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from generator.config import Config, ModelConfig
from generator.pipeline.cache import Cache, code_hash
from generator.pipeline.progress import progress_bar

__all__ = ["Faces", "Predictions", "TrainedModel", "dataset_stage", "keras_twin_stage",
           "predict_stage", "train_stage"]

# Each stage's key includes the hash of the code that computes it (see code_hash).
DATASET_CODE = ("generator.datasets.synthetic",)
TRAIN_CODE = ("generator.models.nets", "generator.models.train")
KERAS_CODE = ("generator.models.nets", "generator.models.keras_twin")
PREDICT_CODE = ("generator.models.nets", "generator.models.train")


@dataclass(frozen=True)
class Faces:
    """The dataset: images, masks, landmarks and the table of attributes."""

    key: str
    images: np.ndarray
    masks: np.ndarray
    landmarks: np.ndarray
    table: pd.DataFrame
    seconds: float


@dataclass(frozen=True)
class TrainedModel:
    """A trained default model with its history and content hash."""

    name: str
    key: str
    path: Path
    content_hash: str
    history: pd.DataFrame
    seconds: float
    config: ModelConfig


@dataclass(frozen=True)
class Predictions:
    """One model's predictions on the evaluation split."""

    model: str
    key: str
    table: pd.DataFrame
    embeddings: np.ndarray


def dataset_stage(cache: Cache, config: Config) -> Faces:
    """Generate (or load) the synthetic faces."""
    from generator.datasets.synthetic import SyntheticParams, generate

    params = SyntheticParams(**config.dataset.synthetic.model_dump())
    key = cache.key("dataset", {"synthetic": params.as_dict(), "seed": config.seed, "code": code_hash(*DATASET_CODE)})

    def compute(folder: Path) -> None:
        total = sum(params.identities.values()) * params.images_per_identity
        start = time.perf_counter()
        with progress_bar(total, "faces") as bar:
            faces = generate(params, config.seed, progress=bar.update)
        np.save(folder / "images.npy", faces.images)
        np.save(folder / "masks.npy", faces.masks)
        np.save(folder / "landmarks.npy", faces.landmarks)
        faces.table.to_csv(folder / "table.csv", index=False)
        _write_meta(folder, seconds=time.perf_counter() - start)

    entry = cache.get_or_compute("dataset", key, compute)
    table = pd.read_csv(entry / "table.csv", dtype={"image_id": str, "identity": str})
    return Faces(key, np.load(entry / "images.npy"), np.load(entry / "masks.npy"),
                 np.load(entry / "landmarks.npy"), table, _read_meta(entry)["seconds"])


def train_stage(cache: Cache, config: Config, faces: Faces, model: ModelConfig) -> TrainedModel:
    """Train one default model on its split (or load it)."""
    # The key is built from the config alone, so a cached run never imports torch.
    settings = config.training.model_dump()
    key = cache.key("train", {"train": settings, "split": model.train_split,
                              "seed": config.seed, "code": code_hash(*TRAIN_CODE)}, (faces.key,))

    def compute(folder: Path) -> None:
        import torch

        from generator.models.train import TrainParams, train_model

        params = TrainParams(**settings)

        train = faces.table["split"].to_numpy() == model.train_split
        evaluation = faces.table["split"].to_numpy() == "eval"
        start = time.perf_counter()
        with progress_bar(params.epochs, f"train {model.name}", unit="epoch") as bar:
            result = train_model(
                faces.images[train], faces.table["label"].to_numpy()[train], params, config.seed,
                eval_images=faces.images[evaluation], eval_labels=faces.table["label"].to_numpy()[evaluation],
                progress=lambda epoch, metrics: bar.update(1),
            )
        torch.save(result.model.state_dict(), folder / "model.pt")
        result.history.to_csv(folder / "history.csv", index=False)
        _write_meta(folder, seconds=time.perf_counter() - start,
                    content_hash=state_dict_hash(result.model.state_dict()))

    entry = cache.get_or_compute("train", key, compute)
    meta = _read_meta(entry)
    return TrainedModel(model.name, key, entry / "model.pt", meta["content_hash"],
                        pd.read_csv(entry / "history.csv"), meta["seconds"], model)


def load_trained(trained: TrainedModel, config: Config) -> Any:
    """The torch module of a trained default model, in eval mode."""
    import torch

    from generator.models.nets import SmallCNN

    net = SmallCNN(num_classes=2, width=config.training.width)
    net.load_state_dict(torch.load(trained.path, map_location="cpu", weights_only=True))
    return net.eval()


def keras_twin_stage(cache: Cache, config: Config, faces: Faces, trained: TrainedModel) -> dict[str, Any]:
    """Convert a trained model to Keras and record how closely the two agree."""
    key = cache.key("keras", {"code": code_hash(*KERAS_CODE), "size": config.dataset.synthetic.image_size}, (trained.key,))

    def compute(folder: Path) -> None:
        from generator.models.keras_twin import save_keras, to_keras
        from generator.models.nets import preprocess
        from generator.models.train import predict

        net = load_trained(trained, config)
        twin = to_keras(net, config.dataset.synthetic.image_size)
        save_keras(twin, folder / "model.keras")
        probe = faces.images[faces.table["split"].to_numpy() == "eval"][:64]
        torch_logits, _ = predict(net, probe)
        keras_logits = np.asarray(twin(preprocess(probe).permute(0, 2, 3, 1).numpy(), training=False))
        diff = float(np.max(np.abs(torch_logits - keras_logits)))
        _write_meta(folder, max_abs_logit_diff=diff, probe_images=int(len(probe)))

    entry = cache.get_or_compute("keras", key, compute)
    return {"path": entry / "model.keras", **_read_meta(entry)}


def predict_stage(cache: Cache, config: Config, faces: Faces, trained: TrainedModel) -> Predictions:
    """Logits, predicted labels and embeddings of one model on the evaluation split."""
    key = cache.key("predict", {"code": code_hash(*PREDICT_CODE)}, (faces.key, trained.key))

    def compute(folder: Path) -> None:
        from generator.models.train import predict

        evaluation = faces.table["split"].to_numpy() == "eval"
        logits, embeddings = predict(load_trained(trained, config), faces.images[evaluation])
        table = faces.table.loc[evaluation, ["image_id"]].reset_index(drop=True)
        for k in range(logits.shape[1]):
            table[f"logit_{k}"] = logits[:, k]
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        table["prob_1"] = (shifted / shifted.sum(axis=1, keepdims=True))[:, 1]
        table["pred"] = logits.argmax(axis=1)
        table.to_csv(folder / "predictions.csv", index=False)
        np.save(folder / "embeddings.npy", embeddings)

    entry = cache.get_or_compute("predict", key, compute)
    table = pd.read_csv(entry / "predictions.csv", dtype={"image_id": str})
    return Predictions(trained.name, key, table, np.load(entry / "embeddings.npy"))


def state_dict_hash(state: dict[str, Any]) -> str:
    """SHA-256 over a state_dict's names, dtypes, shapes and values (file-format independent)."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}|{array.dtype}|{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def _write_meta(folder: Path, **meta: Any) -> None:
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))


def _read_meta(entry: Path) -> dict[str, Any]:
    return json.loads((entry / "meta.json").read_text())
