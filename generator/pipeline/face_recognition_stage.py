"""The face-recognition models of the verification audit on synthetic data: faces, training, embeddings.

On the synthetic default, the verification audit needs a matcher trained to recognise people
(:mod:`generator.models.face_recognition`). It gets its own draw of the generator, with more
identities than the classifiers' data and the same settings otherwise
(``verification.face_recognition.identities``), and trains two embedders on identity-disjoint splits of it,
like the classifiers: ``fr-balanced`` on ``train_fair`` (balanced skin-tone groups) and
``fr-skewed`` on ``train_biased`` (census-like shares, 2.5 % darkest band). Both are evaluated on
the held-out ``eval`` identities, so the skewed model's extra false matches on an
under-represented group have a known cause. Each result is cached under a key made from its
inputs' keys, its settings and its code; the trained weights of the default config are shipped
(``make weights``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from generator.config import Config
from generator.pipeline.cache import Cache
from generator.pipeline.graph import stage_key
from generator.pipeline.progress import progress_bar
from generator.pipeline.stages import SHIPPED_WEIGHTS, _copy_shipped, _read_meta, _write_meta

__all__ = ["MATCHERS", "Matcher", "Matchers", "face_recognition_stage", "matcher_keys"]

#: The two face-recognition models: name, training split, description.
MATCHERS = (("fr-balanced", "train_fair", "face recognition trained on identities balanced over skin-tone groups"),
            ("fr-skewed", "train_biased", "face recognition trained on identities in census-like skin-tone shares"))


@dataclass(frozen=True)
class Matcher:
    """One trained face-recognition model and its embeddings of the evaluation faces."""

    name: str
    key: str
    train_split: str
    description: str
    path: Path
    history: pd.DataFrame
    embeddings: np.ndarray
    shipped: bool
    seconds: float


@dataclass(frozen=True)
class Matchers:
    """The face-recognition data of a build: the evaluation faces, their table, and the models."""

    faces_key: str
    table: pd.DataFrame
    images: np.ndarray
    models: tuple[Matcher, ...]
    train_counts: pd.DataFrame
    masks: np.ndarray
    landmarks: np.ndarray


def _params(config: Config):
    from generator.datasets.synthetic import SyntheticParams

    fr = config.verification.face_recognition
    return SyntheticParams(**{**config.dataset.synthetic.model_dump(), "identities": dict(fr.identities),
                              "images_per_identity": fr.images_per_identity})


def _faces(cache: Cache, config: Config) -> tuple[str, Path]:
    """The face-recognition draw of the generator (cached); returns its key and cache folder.

    The key names the draw (the models' training keys build on it, so shipped weights stay valid);
    the folder is cached under a key that also names the files it holds (images, table, region masks
    and landmarks).
    """
    from generator.datasets.synthetic import generate

    params = _params(config)
    key = stage_key(cache, "fr-dataset", {"synthetic": params.as_dict(), "seed": config.seed,
                                          "purpose": "face-recognition"})
    entry_key = cache.key("dataset", {"draw": key, "files": ["images", "table", "masks", "landmarks"]})

    def compute(folder: Path) -> None:
        start = time.perf_counter()
        total = sum(params.identities.values()) * params.images_per_identity
        with progress_bar(total, "faces for face recognition") as bar:
            faces = generate(params, config.seed, progress=bar.update)
        np.save(folder / "images.npy", faces.images)
        np.save(folder / "masks.npy", faces.masks)
        np.save(folder / "landmarks.npy", faces.landmarks)
        faces.table.to_csv(folder / "table.csv", index=False)
        _write_meta(folder, seconds=time.perf_counter() - start)

    return key, cache.get_or_compute("dataset", entry_key, compute)


def _embedder_params(config: Config):
    from generator.models.face_recognition import EmbedderParams

    fr = config.verification.face_recognition
    return EmbedderParams(epochs=fr.epochs, batch_size=fr.batch_size, lr=fr.lr, weight_decay=fr.weight_decay,
                          width=fr.width, dim=fr.dim, scale=fr.scale, margin=fr.margin)


def matcher_keys(cache: Cache, config: Config, faces_key: str) -> dict[str, str]:
    """``{model name: training key}`` of the face-recognition models (built from the config alone)."""
    from dataclasses import asdict

    settings = asdict(_embedder_params(config))
    return {name: stage_key(cache, "fr-train", {"train": settings, "split": split, "seed": config.seed},
                            faces=faces_key)
            for name, split, _ in MATCHERS}


def train_matcher_into(folder: Path, config: Config, images: np.ndarray, table: pd.DataFrame, split: str,
                       name: str) -> None:
    """Train one face-recognition model and write ``model.pt``, ``history.csv`` and ``meta.json``."""
    from generator.models.checkpoints import save_state
    from generator.models.face_recognition import train_embedder

    rows = (table["split"] == split).to_numpy()
    params = _embedder_params(config)
    start = time.perf_counter()
    with progress_bar(params.epochs, f"train {name}", unit="epoch") as bar:
        result = train_embedder(images[rows], table["identity"].to_numpy()[rows], params, config.seed,
                                progress=lambda epoch, metrics: bar.update(1))
    content_hash = save_state(result.model, folder / "model.pt")
    result.history.to_csv(folder / "history.csv", index=False)
    _write_meta(folder, seconds=time.perf_counter() - start, content_hash=content_hash)


def load_matcher(path: Path, config: Config):
    """The :class:`~generator.models.face_recognition.FaceEmbedder` saved at ``path`` (eval mode, CPU)."""
    from generator.models.checkpoints import load_into
    from generator.models.face_recognition import FaceEmbedder

    fr = config.verification.face_recognition
    return load_into(FaceEmbedder(width=fr.width, dim=fr.dim), path)


def face_recognition_stage(cache: Cache, config: Config, *, shipped: Path | None = SHIPPED_WEIGHTS) -> Matchers:
    """Draw the faces, train (or load) both face-recognition models and embed the evaluation faces."""
    faces_key, faces_entry = _faces(cache, config)
    table = pd.read_csv(faces_entry / "table.csv", dtype={"image_id": str, "identity": str})
    images = np.load(faces_entry / "images.npy", mmap_mode="r")
    evaluation = (table["split"] == "eval").to_numpy()
    models = []
    for (name, split, description), key in zip(MATCHERS, matcher_keys(cache, config, faces_key).values()):
        def train(folder: Path, split: str = split, name: str = name, key: str = key) -> None:
            if shipped is not None and _copy_shipped(shipped / key, folder):
                return
            train_matcher_into(folder, config, np.asarray(images), table, split, name)

        entry = cache.get_or_compute("fr-train", key, train)
        meta = _read_meta(entry)
        embed_key = stage_key(cache, "fr-embed", {}, matcher=key, faces=faces_key)

        def embed_into(folder: Path, entry: Path = entry) -> None:
            from generator.models.parallel import embed_batches

            # the passes of face_recognition.embed, on every core: the same bits (tested)
            np.save(folder / "embeddings.npy", embed_batches(load_matcher(entry / "model.pt", config),
                                                             np.ascontiguousarray(images[evaluation])))
            _write_meta(folder)

        embedded = cache.get_or_compute("fr-embed", embed_key, embed_into)
        models.append(Matcher(name, key, split, description, entry / "model.pt", pd.read_csv(entry / "history.csv"),
                              np.load(embedded / "embeddings.npy"), bool(meta.get("shipped")), meta["seconds"]))
    train_rows = table[table["split"] != "eval"]
    counts = (train_rows.groupby(["split", "skin_tone"])["identity"].nunique().rename("identities").reset_index())
    return Matchers(faces_key, table[evaluation].reset_index(drop=True), np.ascontiguousarray(images[evaluation]),
                    tuple(models), counts, np.load(faces_entry / "masks.npy", mmap_mode="r")[evaluation],
                    np.load(faces_entry / "landmarks.npy")[evaluation])
