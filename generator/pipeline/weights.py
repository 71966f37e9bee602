"""`generator weights`: train the default models of every replicate and ship them in ``data/weights/``.

Also the two face-recognition models of the verification audit (:mod:`generator.pipeline.face_recognition_stage`).

Training is bit-identical on every x86-64 CPU with AVX2 of one vendor (see :mod:`generator.portable`;
an AMD and an Intel CPU train slightly different bytes, cause not found), and it runs on one thread
without oneDNN, about two minutes per model on the default data. Shipping the weights keeps a cold
`make site` within its time budget and gives every machine the same models; the folder names are
the training cache keys, so weights are used only for the exact settings, seed, data and code that
made them (an edit of the training code or the data generator changes the keys, and
``tests/models/test_shipped_weights.py`` then asks for `make weights`). The tutorial's model is
shipped the same way (:func:`train_or_load`, :data:`TUTORIAL`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from generator.config import Config
from generator.pipeline.cache import Cache
from generator.pipeline.stages import SHIPPED_WEIGHTS

__all__ = ["TUTORIAL", "Training", "expected_matcher_weights", "expected_weights", "make_weights", "train_or_load", "training_key",
           "tutorial_inputs"]

LOG = logging.getLogger(__name__)


def expected_weights(config: Config, cache: Cache) -> dict[str, tuple[str, int]]:
    """``{training key: (model name, replicate)}`` of every built-in model of ``config``."""
    from generator.pipeline.stages import dataset_stage, train_key

    faces = dataset_stage(cache, config)
    return {train_key(cache, config, faces, model, r): (model.name, r)
            for model in config.models if model.kind == "default" for r in range(config.replicates)}


def expected_matcher_weights(config: Config, cache: Cache) -> dict[str, tuple[str, str]]:
    """``{training key: (model name, split)}`` of the face-recognition models of ``config`` (none if disabled)."""
    from generator.pipeline.face_recognition_stage import MATCHERS, _faces, matcher_keys

    if config.dataset.kind != "synthetic" or not config.verification.face_recognition.enabled:
        return {}
    faces_key, _ = _faces(cache, config)
    return {key: (name, split) for (name, split, _), key in zip(MATCHERS, matcher_keys(cache, config, faces_key).values())}


def _train_matcher(config: Config, cache_dir: str, key: str, name: str, split: str, target: str) -> str:
    from generator.pipeline.face_recognition_stage import _faces, train_matcher_into

    _, entry = _faces(Cache(Path(cache_dir)), config)
    table = pd.read_csv(entry / "table.csv", dtype={"image_id": str, "identity": str})
    folder = Path(tempfile.mkdtemp(dir=target, prefix=f".{key}.", suffix=".tmp"))
    train_matcher_into(folder, config, np.load(entry / "images.npy"), table, split, name)
    final = Path(target) / key
    if final.exists():
        shutil.rmtree(final)
    folder.chmod(0o755)
    os.replace(folder, final)
    return key


def _train_one(config: Config, cache_dir: str, key: str, name: str, replicate: int, target: str) -> str:
    from generator.pipeline.stages import dataset_stage, train_into

    cache = Cache(Path(cache_dir))
    faces = dataset_stage(cache, config)
    model = next(m for m in config.models if m.name == name)
    folder = Path(tempfile.mkdtemp(dir=target, prefix=f".{key}.", suffix=".tmp"))
    train_into(folder, config, faces, model, replicate, name if replicate == 0 else f"{name}#{replicate}")
    final = Path(target) / key
    if final.exists():
        shutil.rmtree(final)
    folder.chmod(0o755)
    os.replace(folder, final)
    return key


def make_weights(config: Config, target: Path, *, workers: int = 2, force: bool = False) -> list[str]:
    """Train every built-in model of every replicate, and the tutorial's model, into ``target/<key>/``.

    Folders of other keys are removed. Weights already there under their key, with a content hash
    that holds, are kept unless ``force``: a CPU of another vendor would train other bytes (see
    :func:`train_or_load`), so an unchanged model is not re-made. Each training uses one thread,
    so ``workers`` trainings run side by side in processes. Returns the keys trained now.
    """
    target.mkdir(parents=True, exist_ok=True)
    cache = Cache(config.output.cache_dir)
    wanted = expected_weights(config, cache)
    matchers = expected_matcher_weights(config, cache)
    tutorial = tutorial_inputs()
    tutorial_key = training_key(**tutorial)
    for stale in target.iterdir():
        if stale.is_dir() and stale.name not in {*wanted, *matchers, tutorial_key}:
            shutil.rmtree(stale)
    todo = {key: job for key, job in wanted.items() if force or not _whole(target / key)}
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [pool.submit(_train_one, config, str(cache.root), key, name, r, str(target))
                for key, (name, r) in todo.items()]
        jobs += [pool.submit(_train_matcher, config, str(cache.root), key, name, split, str(target))
                 for key, (name, split) in matchers.items() if force or not _whole(target / key)]
        if force or not _whole(target / tutorial_key):
            jobs.append(pool.submit(make_call_weights, tutorial, target))
        return [job.result() for job in jobs]


def _whole(folder: Path) -> bool:
    """Whether ``folder`` holds weights whose content hash matches the recorded one."""
    from generator.models.checkpoints import weights_match
    from generator.pipeline.stages import _read_meta

    if not (folder / "meta.json").is_file() or not (folder / "history.csv").is_file():
        return False
    return weights_match(folder / "model.pt", _read_meta(folder).get("content_hash"))


# --- Weights of a training call (the tutorial's) -------------------------------------------------------------

#: The training the tutorial notebook runs (docs/tutorial.ipynb, sections 1 and 2); `make weights` ships its
#: result so that the notebook shows the same model on every machine. The notebook's test checks that the
#: notebook really loads these weights (a change on either side then asks for `make weights`).
TUTORIAL = {"synthetic": {"image_size": 48, "identities": {"train_biased": 64, "eval": 16}, "images_per_identity": 12},
            "training": {"epochs": 10, "width": 16}, "seed": 0, "split": "train_biased"}


@dataclass(frozen=True)
class Training:
    """What :func:`train_or_load` returns: a trained model, its history, and where it came from.

    Attributes
    ----------
    model : SmallCNN
        The network, in eval mode, on the CPU.
    history : pd.DataFrame
        One row per epoch, as :func:`~generator.models.train.train_model` records it.
    key : str
        Content key of the training inputs (images, labels, settings, seed, training code).
    shipped : bool
        True when the weights were loaded from ``data/weights/<key>/``, False when trained here.
    made_on : str
        CPU (or GPU) of the machine that trained the weights.
    """

    model: Any
    history: pd.DataFrame
    key: str
    shipped: bool
    made_on: str


def training_key(images: np.ndarray, labels: np.ndarray, params: Any, seed: int, *, num_classes: int = 2,
                 eval_images: np.ndarray | None = None, eval_labels: np.ndarray | None = None) -> str:
    """Content key of one :func:`~generator.models.train.train_model` call: every input, and the training code."""
    from dataclasses import asdict

    from generator.pipeline.cache import code_hash
    from generator.pipeline.graph import TRAIN_CODE

    digest = hashlib.sha256()
    for array in (images, labels, eval_images, eval_labels):
        if array is None:
            digest.update(b"none")
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}|{array.shape}|".encode())
        digest.update(array.tobytes())
    settings = {"params": asdict(params), "seed": int(seed), "classes": int(num_classes), "code": code_hash(*TRAIN_CODE)}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return "call-" + digest.hexdigest()[:16]


def train_or_load(images: np.ndarray, labels: np.ndarray, params: Any, seed: int, *, num_classes: int = 2,
                  eval_images: np.ndarray | None = None, eval_labels: np.ndarray | None = None,
                  shipped: Path | None = SHIPPED_WEIGHTS) -> Training:
    """:func:`~generator.models.train.train_model`, or the weights that exact call made, if they are shipped.

    Training is the same bytes on every CPU of one vendor, but an AMD and an Intel CPU train slightly
    different weights from the same inputs (see the Reproducibility page). Where ``shipped`` holds
    weights made from the same images, labels, settings, seed and training code (``make weights``
    writes them for :data:`TUTORIAL`), they are loaded after checking their content hash, so every
    machine uses the same model; otherwise the model is trained here. ``shipped=None`` always trains.
    """
    from generator.models.checkpoints import load_state, state_dict_hash
    from generator.models.nets import SmallCNN
    from generator.models.train import train_model
    from generator.pipeline.stages import _read_meta

    key = training_key(images, labels, params, seed, num_classes=num_classes, eval_images=eval_images,
                       eval_labels=eval_labels)
    folder = None if shipped is None else shipped / key
    if folder is not None and (folder / "meta.json").is_file():
        meta = _read_meta(folder)
        state = load_state(folder / "model.pt")
        if state_dict_hash(state) == meta.get("content_hash"):
            model = SmallCNN(num_classes=num_classes, width=params.width)
            model.load_state_dict(state)
            return Training(model.eval(), pd.read_csv(folder / "history.csv"), key, True, meta.get("made_on", ""))
        LOG.warning("shipped weights %s do not match their recorded hash; training instead", folder)
    result = train_model(images, labels, params, seed, num_classes=num_classes, eval_images=eval_images,
                         eval_labels=eval_labels)
    return Training(result.model, result.history, key, False, _this_machine())


def _this_machine() -> str:
    from generator.models.checkpoints import training_device

    return training_device()


def tutorial_inputs() -> dict[str, Any]:
    """The arguments of the tutorial's training call, made from :data:`TUTORIAL`."""
    from generator.datasets.synthetic import SyntheticParams, generate
    from generator.models.train import TrainParams

    faces = generate(SyntheticParams(**TUTORIAL["synthetic"]), seed=TUTORIAL["seed"])
    split = faces.table["split"].to_numpy()
    labels = faces.table["label"].to_numpy()
    train, evaluation = split == TUTORIAL["split"], split == "eval"
    return {"images": faces.images[train], "labels": labels[train], "params": TrainParams(**TUTORIAL["training"]),
            "seed": TUTORIAL["seed"], "eval_images": faces.images[evaluation], "eval_labels": labels[evaluation]}


def make_call_weights(inputs: dict[str, Any], target: Path) -> str:
    """Train one :func:`train_or_load` call here and write its weights to ``target/<key>/``; return the key."""
    from generator.models.checkpoints import save_state
    from generator.pipeline.stages import _write_meta

    key = training_key(**inputs)
    start = time.perf_counter()
    result = train_or_load(**inputs, shipped=None)
    folder = Path(tempfile.mkdtemp(dir=target, prefix=f".{key}.", suffix=".tmp"))
    content_hash = save_state(result.model, folder / "model.pt")
    result.history.to_csv(folder / "history.csv", index=False)
    _write_meta(folder, seconds=time.perf_counter() - start, content_hash=content_hash, made_on=result.made_on)
    final = target / key
    if final.exists():
        shutil.rmtree(final)
    folder.chmod(0o755)
    os.replace(folder, final)
    return key
