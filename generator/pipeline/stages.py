"""The compute stages of a build, each cached by the hash of its inputs and parameters.

Each function takes the cache, its parameters and the results of earlier stages,
and returns a small result object that carries the cache key, so that later stages
can name their inputs. Framework code (torch, TensorFlow) is imported inside the
stages that need it, so a fully cached rerun never imports TensorFlow.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from generator.config import Config, ModelConfig
from generator.errors import DataError
from generator.fileio import atomic_save_npz
from generator.pipeline.cache import Cache
from generator.pipeline.graph import stage_key
from generator.pipeline.progress import progress_bar

__all__ = ["Faces", "Predictions", "TrainedModel", "dataset_stage", "handle_for", "keras_twin_stage", "kept_handle",
           "load_stage", "predict_stage", "train_stage"]

# Each stage's key is derived from its declaration in generator.pipeline.graph (inputs, code).
#: Weights of the default models made by `make weights` and shipped with the project, one folder per
#: training key (see :func:`train_stage`): a cold build of the default config loads them instead of
#: training, and every machine uses the same models (training repeats them bit for bit on CPUs of the vendor
#: that made them, not across Intel and AMD: see generator.pipeline.weights).
SHIPPED_WEIGHTS = Path(__file__).resolve().parents[2] / "data" / "weights"


SKIPPED_COLUMNS = ["source", "reason"]
LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Faces:
    """The dataset: images, the table of attributes and, for the synthetic faces, masks and landmarks.

    ``table`` has one row per usable image: ``image_id``, ``identity``, ``split``,
    ``label`` (class index; -1 when unlabelled), ``label_name`` and one column per
    protected attribute (``attributes``); the synthetic set adds ``cue`` and more.
    ``skipped`` lists images and rows that were left out, with the reason.
    """

    key: str
    images: np.ndarray
    masks: np.ndarray | None
    landmarks: np.ndarray | None
    table: pd.DataFrame
    seconds: float
    kind: str = "synthetic"
    attributes: tuple[str, ...] = ("skin_tone", "age_group")
    label_names: tuple[str, ...] = ("not smiling", "smiling")
    skipped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SKIPPED_COLUMNS))
    notes: tuple[str, ...] = ()
    source: str = "synthetic faces drawn at run time"
    has_identity: bool = True
    #: Names of the ids in ``masks`` (None: the synthetic faces' exact regions).
    region_names: tuple[str, ...] | None = None
    #: Photographs: per image ``faces_found``, ``score`` and ``reason`` of the landmark detector.
    landmark_report: pd.DataFrame | None = None
    landmarks_key: str = ""

    @property
    def regions(self) -> tuple[str, ...]:
        """The region names that ``masks`` indexes."""
        if self.region_names is not None:
            return self.region_names
        from generator.datasets.synthetic import REGIONS

        return tuple(REGIONS)

    @property
    def located(self) -> np.ndarray:
        """Per image: whether its regions are known (always on the synthetic faces; photographs: face detected)."""
        if self.masks is None:
            return np.zeros(len(self.table), dtype=bool)
        if self.landmarks is None or self.synthetic:
            return np.ones(len(self.table), dtype=bool)
        return np.isfinite(self.landmarks[:, :3]).all(axis=(1, 2))

    @property
    def labelled(self) -> bool:
        """Whether the images carry a task label (the sample faces do not)."""
        return len(self.label_names) >= 2

    @property
    def synthetic(self) -> bool:
        """Whether these are the embedded synthetic faces (with masks, landmarks and a planted cue)."""
        return self.kind == "synthetic"

    @property
    def evaluation(self) -> np.ndarray:
        """Row indices of the evaluation split."""
        return np.flatnonzero(self.table["split"].to_numpy() == "eval")


@dataclass(frozen=True)
class TrainedModel:
    """A model of the audit: trained here (``kind`` default) or loaded from a file, with its content hash."""

    name: str
    key: str
    path: Path
    content_hash: str
    history: pd.DataFrame | None
    seconds: float
    config: ModelConfig
    framework: str = "torch"
    check: dict[str, Any] = field(default_factory=dict)

    @property
    def trained(self) -> bool:
        """Whether the model was trained by this build (the built-in CNN)."""
        return self.config.kind == "default"


@dataclass(frozen=True)
class Predictions:
    """One model's predictions on the evaluation split (embeddings only for the built-in CNN)."""

    model: str
    key: str
    table: pd.DataFrame
    embeddings: np.ndarray | None


def dataset_stage(cache: Cache, config: Config) -> Faces:
    """Generate the synthetic faces, or read the user's dataset, or the sample faces (or load from cache).

    Photographs then get landmarks and face regions (:func:`landmarks_stage`) unless
    ``dataset.landmarks`` is ``none``.
    """
    if config.dataset.kind == "synthetic":
        return _synthetic_stage(cache, config)
    faces = _sample_faces_stage(cache, config) if config.dataset.kind == "sample_faces" else _files_stage(cache, config)
    return faces if config.dataset.landmarks == "none" else landmarks_stage(cache, faces)



def landmarks_stage(cache: Cache, faces: Faces) -> Faces:
    """Detect five landmarks on every photograph and place the face regions from them (or load from cache)."""
    from generator.datasets.landmarks import DETECTOR, detect_landmarks, predictor_path

    model = hashlib.sha256(predictor_path().read_bytes()).hexdigest()[:16]
    key = stage_key(cache, "landmarks", {"detector": DETECTOR, "model": model}, faces=faces.key)

    def compute(folder: Path) -> None:
        from generator.analysis.regions import landmark_regions

        start = time.perf_counter()
        with progress_bar(len(faces.images), "landmarks") as bar:
            landmarks, report = detect_landmarks(faces.images, progress=bar.update)
        np.save(folder / "landmarks.npy", landmarks)
        np.save(folder / "masks.npy", landmark_regions(landmarks, faces.images.shape[1:3]))
        report.assign(image_id=faces.table["image_id"].to_numpy()).to_csv(folder / "report.csv", index=False)
        _write_meta(folder, seconds=time.perf_counter() - start)

    entry = cache.get_or_compute("landmarks", key, compute)
    from generator.analysis.regions import LANDMARK_REGIONS

    report = pd.read_csv(entry / "report.csv", dtype={"image_id": str}, keep_default_na=False)
    missed = report[report["reason"] != ""]
    notes = faces.notes
    if len(missed):
        notes = (*notes, f"{len(missed)} of {len(report)} images: no face found by the landmark detector ({DETECTOR}); "
                         "they are explained and scored, but left out of alignment and of the face-region analyses")
    return replace(faces, landmarks=np.load(entry / "landmarks.npy"), masks=np.load(entry / "masks.npy"),
                   region_names=LANDMARK_REGIONS, landmark_report=report, landmarks_key=key, notes=notes)


def _synthetic_stage(cache: Cache, config: Config) -> Faces:
    from generator.datasets.synthetic import LABEL_NAMES, SyntheticParams, generate

    params = SyntheticParams(**config.dataset.synthetic.model_dump())
    key = stage_key(cache, "dataset", {"synthetic": params.as_dict(), "seed": config.seed})

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
                 np.load(entry / "landmarks.npy"), table, _read_meta(entry)["seconds"], label_names=LABEL_NAMES)


def _sample_faces_stage(cache: Cache, config: Config) -> Faces:
    from generator.datasets.sample_faces import sample_faces

    size = config.dataset.image_size
    key = stage_key(cache, "dataset-sample-faces", {"kind": "sample_faces", "size": size})

    def compute(folder: Path) -> None:
        start = time.perf_counter()
        images, table = sample_faces(size)
        np.save(folder / "images.npy", images)
        table.assign(split="eval", label=-1, label_name="").to_csv(folder / "table.csv", index=False)
        _write_meta(folder, seconds=time.perf_counter() - start)

    entry = cache.get_or_compute("dataset", key, compute)
    table = pd.read_csv(entry / "table.csv", dtype={"image_id": str, "identity": str}, keep_default_na=False)
    return Faces(key, np.load(entry / "images.npy"), None, None, table, _read_meta(entry)["seconds"],
                 kind="sample_faces", attributes=("source",), label_names=(), has_identity=False,
                 source="face photographs shipped with scikit-image and matplotlib (no labels)")


def _files_stage(cache: Cache, config: Config) -> Faces:
    """A user's dataset: the table is read first, then only the selected images (cached by their content)."""
    from generator.datasets.load import content_digest, load_table

    settings = config.dataset
    faces = load_table(settings, seed=config.seed, trains_models=config.trains_models)
    digest = content_digest(faces.root, faces.table["path"])
    described = settings.model_dump(mode="json", exclude={"synthetic", "root", "annotations", "identity_file",
                                                                 "landmarks"})
    key = stage_key(cache, "dataset-files", {"settings": described, "table": _frame_digest(faces.table),
                                             "images": digest, "seed": config.seed})

    def compute(folder: Path) -> None:
        from generator.datasets.images import read_images

        start = time.perf_counter()
        with progress_bar(len(faces.table), "images") as bar:
            images, skipped, kept = read_images(faces.root, faces.table["path"].tolist(), settings.image_size,
                                                crop=settings.crop, progress=bar.update)
        table = faces.table.loc[kept].reset_index(drop=True)
        if table.empty:
            raise DataError(f"dataset.root '{settings.root}': none of the {len(faces.table)} listed images could be "
                            f"read; first reasons: {skipped['reason'].head(3).tolist()}")
        np.save(folder / "images.npy", images)
        table.to_csv(folder / "table.csv", index=False)
        listed = pd.concat([faces.skipped[SKIPPED_COLUMNS].assign(stage="table"),
                            skipped.rename(columns={"path": "source"})[SKIPPED_COLUMNS].assign(stage="image")],
                           ignore_index=True)
        listed.to_csv(folder / "skipped.csv", index=False)
        _write_meta(folder, seconds=time.perf_counter() - start, listed=int(len(faces.table)),
                    notes=list(skipped.attrs["notes"]))  # the conversions: grayscale, 16-bit, cropped, ...

    entry = cache.get_or_compute("dataset", key, compute)
    text = {c: str for c in ("image_id", "identity", "path", *faces.attributes)}
    table = pd.read_csv(entry / "table.csv", dtype=text, keep_default_na=False)
    skipped = pd.read_csv(entry / "skipped.csv", dtype=str, keep_default_na=False)
    meta = _read_meta(entry)
    return Faces(key, np.load(entry / "images.npy"), None, None, table, meta["seconds"],
                 kind=settings.kind, attributes=tuple(faces.attributes), label_names=tuple(faces.label_names),
                 skipped=skipped, notes=(*getattr(faces, "notes", ()), *meta.get("notes", ())),
                 source=faces.source, has_identity=faces.has_identity)


def _frame_digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()[:16]


def train_key(cache: Cache, config: Config, faces: Faces, model: ModelConfig, replicate: int = 0) -> str:
    """The cache key of one training run: settings, split, training seed, code and the dataset's key."""
    # The key is built from the config alone, so a cached run never imports torch.
    return stage_key(cache, "train", {"train": config.training.model_dump(), "split": model.train_split,
                                      "seed": config.seed + replicate}, faces=faces.key)


def train_stage(cache: Cache, config: Config, faces: Faces, model: ModelConfig, replicate: int = 0, *,
                shipped: Path | None = SHIPPED_WEIGHTS) -> TrainedModel:
    """Train one default model on its split with training seed ``config.seed + replicate`` (or load it).

    When ``shipped`` holds weights for the same key (``make weights`` writes them for the
    default config), they are copied instead of training, after checking their content hash.
    """
    key = train_key(cache, config, faces, model, replicate)
    name = model.name if replicate == 0 else f"{model.name}#{replicate}"

    def compute(folder: Path) -> None:
        if shipped is not None and _copy_shipped(shipped / key, folder):
            return
        train_into(folder, config, faces, model, replicate, name)

    entry = cache.get_or_compute("train", key, compute)
    meta = _read_meta(entry)
    return TrainedModel(name, key, entry / "model.pt", meta["content_hash"],
                        pd.read_csv(entry / "history.csv"), meta["seconds"], model,
                        check={"classes": len(faces.label_names), "replicate": replicate,
                               "seed": config.seed + replicate, "shipped": bool(meta.get("shipped"))})


def train_into(folder: Path, config: Config, faces: Faces, model: ModelConfig, replicate: int, name: str) -> None:
    """Train one default model and write ``model.pt``, ``history.csv`` and ``meta.json`` into ``folder``."""
    from generator.models.checkpoints import save_state
    from generator.models.train import TrainParams, train_model

    params = TrainParams(**config.training.model_dump())
    train = faces.table["split"].to_numpy() == model.train_split
    evaluation = faces.table["split"].to_numpy() == "eval"
    start = time.perf_counter()
    with progress_bar(params.epochs, f"train {name}", unit="epoch") as bar:
        result = train_model(
            faces.images[train], faces.table["label"].to_numpy()[train], params, config.seed + replicate,
            num_classes=len(faces.label_names),
            eval_images=faces.images[evaluation], eval_labels=faces.table["label"].to_numpy()[evaluation],
            progress=lambda epoch, metrics: bar.update(1),
        )
    content_hash = save_state(result.model, folder / "model.pt")
    result.history.to_csv(folder / "history.csv", index=False)
    _write_meta(folder, seconds=time.perf_counter() - start, content_hash=content_hash)


def _copy_shipped(source: Path, folder: Path) -> bool:
    """Copy shipped weights into ``folder`` if they exist and their content hash holds; say why not otherwise."""
    from generator.models.checkpoints import weights_match

    if not (source / "meta.json").is_file():
        return False
    meta = _read_meta(source)
    if not weights_match(source / "model.pt", meta.get("content_hash")):
        LOG.warning("shipped weights %s do not match their recorded hash; training instead", source)
        return False
    for name in ("model.pt", "history.csv"):
        shutil.copyfile(source / name, folder / name)
    _write_meta(folder, **{**meta, "shipped": True})
    LOG.info("train: using the shipped weights %s (made by `make weights`)", source.name)
    return True


def model_spec(model: ModelConfig) -> Any:
    """The adapter's view of a model entry of the config (preprocessing as the adapter's type)."""
    from types import SimpleNamespace

    from generator.models.adapters import Preprocessing

    pre = model.preprocessing
    return SimpleNamespace(**{**model.model_dump(), "preprocessing": Preprocessing(
        size=pre.shape, mean=tuple(pre.mean), std=tuple(pre.std), channel_order=pre.channel_order)})


_LOADED: dict[str, Any] = {}


def _load_file_model(model: ModelConfig) -> Any:
    """Load a model file once per process (ONNX conversion and class files are not free).

    The memo's key holds the files' size and modification time besides the settings, so a
    model file or class file replaced under the same name (in a notebook, or between two
    builds of one process) is loaded again rather than served from memory.
    """
    from generator.models.adapters import load_model

    files = [Path(p) for p in (model.path, model.class_file) if p is not None]
    stamps = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) if f.exists() else (str(f), None) for f in files]
    key = model.model_dump_json() + json.dumps(stamps)
    if key not in _LOADED:
        _LOADED[key] = load_model(model_spec(model))
    return _LOADED[key]


def load_stage(cache: Cache, config: Config, faces: Faces | None, model: ModelConfig) -> TrainedModel:
    """Load a model file, check it against the declared input and the dataset's classes (before any long work)."""
    from generator.models.adapters import check_model

    loaded = _load_file_model(model)  # loading runs a probe batch at the declared input size
    if faces is not None and faces.labelled:
        check_model(loaded, faces.label_names)
    key = stage_key(cache, "model", {"hash": loaded.content_hash, "settings": model.model_dump(mode="json", exclude={
        "path", "class_file", "description"})})
    return TrainedModel(model.name, key, Path(model.path), loaded.content_hash, None, 0.0, model,
                        framework=loaded.framework, check={"outputs": loaded.outputs, "classes": loaded.num_classes,
                                                           "cam_layer": loaded.cam_layer,
                                                           "description": loaded.description, **loaded.check})


def load_trained(trained: TrainedModel, config: Config) -> Any:
    """The torch module of a trained default model, in eval mode."""
    from generator.models.checkpoints import load_into
    from generator.models.nets import SmallCNN

    return load_into(SmallCNN(num_classes=trained.check.get("classes", 2), width=config.training.width), trained.path)


def handle_for(config: Config, trained: TrainedModel, framework: str | None = None,
               twin_path: Path | None = None) -> Any:
    """A ModelHandle of any model of the audit: its native framework, or the Keras twin of a default model."""
    from generator.attribution.handles import keras_handle, torch_handle

    if not trained.trained:
        return _load_file_model(trained.config).handle()
    from generator.models.nets import SmallCNN

    if framework in (None, "torch"):
        return torch_handle(trained.name, load_trained(trained, config), cam_layer=SmallCNN.cam_layer_name,
                            channels_last=True)
    from generator.models.keras_twin import keras_layer_name, load_keras

    return keras_handle(trained.name, load_keras(twin_path), cam_layer=keras_layer_name(SmallCNN.cam_layer_name))


#: Model handles a process keeps for its next map sets, metrics and checks (the least recently used is dropped).
KEPT_HANDLES = 4
_HANDLES: OrderedDict[str, Any] = OrderedDict()


def kept_handle(config: Config, trained: TrainedModel, framework: str | None = None,
                twin_path: Path | None = None) -> Any:
    """:func:`handle_for`, loaded once per process and kept for the next users (the :data:`KEPT_HANDLES` most
    recent). Every stage of one model shares it: the map sets of each method, the evaluation metrics,
    the plan's timing and the completeness check read the same handle instead of loading the model
    file again (explainers and metrics do not change the model; the sanity checks randomise a copy)."""
    from generator.pipeline.executor import kept

    native = None if not trained.trained else framework or "torch"
    memo = json.dumps([trained.key, trained.content_hash, native, str(twin_path) if native == "keras" else None])
    return kept(_HANDLES, memo, lambda: handle_for(config, trained, framework, twin_path), KEPT_HANDLES)


def keras_twin_stage(cache: Cache, config: Config, faces: Faces, trained: TrainedModel) -> dict[str, Any]:
    """Convert a trained model to Keras and record how closely the two agree."""
    key = stage_key(cache, "keras", {"size": image_size(config)}, model=trained.key, faces=faces.key)

    def compute(folder: Path) -> None:
        from generator.models.keras_twin import save_keras, to_keras
        from generator.models.nets import preprocess
        from generator.models.train import predict

        net = load_trained(trained, config)
        twin = to_keras(net, image_size(config))
        save_keras(twin, folder / "model.keras")
        probe = faces.images[faces.table["split"].to_numpy() == "eval"][:64]
        torch_logits, _ = predict(net, probe)
        keras_logits = np.asarray(twin(preprocess(probe).permute(0, 2, 3, 1).numpy(), training=False))
        diff = float(np.max(np.abs(torch_logits - keras_logits)))
        _write_meta(folder, max_abs_logit_diff=diff, probe_images=int(len(probe)))

    entry = cache.get_or_compute("keras", key, compute)
    return {"path": entry / "model.keras", **_read_meta(entry)}


#: Images per resumable chunk of predictions: a multiple of every forward pass size (the built-in CNN's 256,
#: a handle's 32 on a CPU and 256 on a GPU), so the chunks give the bits of one call over all images.
PREDICT_CHUNK = 2048


def predict_stage(cache: Cache, config: Config, faces: Faces, trained: TrainedModel) -> Predictions:
    """Logits, class probabilities, predicted labels (and, for the built-in CNN, embeddings) on the evaluation split.

    Computed in chunks of :data:`PREDICT_CHUNK` images, each written to the entry's partial folder as it
    is done: an interrupted run (thousands of 224-px faces through a ResNet) continues at the first chunk
    not done, and the progress bar shows the remaining time.
    """
    key = stage_key(cache, "predict", {}, faces=faces.key, model=trained.key)

    def compute(folder: Path) -> None:
        images = faces.images[faces.evaluation]
        parts = folder / "chunks"
        parts.mkdir(exist_ok=True)
        model: list[Any] = []  # loaded on the first chunk that is not done

        def chunk(start: int) -> dict[str, np.ndarray]:
            done = parts / f"{start:09d}.npz"
            if done.is_file():
                with np.load(done) as found:
                    return dict(found)
            batch = images[start:start + PREDICT_CHUNK]
            if trained.trained:
                from generator.models.train import predict

                if not model:
                    model.append(load_trained(trained, config))
                logits, embeddings = predict(model[0], batch)
                out = {"logits": logits, "embeddings": embeddings}
            else:
                if not model:
                    model.append(kept_handle(config, trained))  # the later stages of this model reuse it
                out = {"logits": model[0].logits(batch)}
            atomic_save_npz(done, **out)
            return out

        results = []
        with progress_bar(len(images), f"predict {trained.name}", unit="image") as bar:
            for start in range(0, len(images), PREDICT_CHUNK):
                results.append(chunk(start))
                bar.update(len(results[-1]["logits"]))
        logits = np.concatenate([r["logits"] for r in results]) if results else np.zeros((0, 0), np.float32)
        if trained.trained:
            np.save(folder / "embeddings.npy", np.concatenate([r["embeddings"] for r in results]))
        table = faces.table.loc[faces.evaluation, ["image_id"]].reset_index(drop=True)
        for k in range(logits.shape[1]):
            table[f"logit_{k}"] = logits[:, k]
        from generator.numerics import softmax

        probs = softmax(logits)  # in float64: the same digits on every CPU
        for k in range(logits.shape[1]):
            table[f"prob_{k}"] = probs[:, k]
        table["pred"] = logits.argmax(axis=1)
        table["confidence"] = probs.max(axis=1)
        table.to_csv(folder / "predictions.csv", index=False)
        shutil.rmtree(parts)  # the entry keeps the assembled files only

    entry = cache.get_or_compute("predict", key, compute, resumable=True)
    table = pd.read_csv(entry / "predictions.csv", dtype={"image_id": str})
    embeddings = np.load(entry / "embeddings.npy") if (entry / "embeddings.npy").is_file() else None
    return Predictions(trained.name, key, table, embeddings)


def image_size(config: Config) -> int:
    """Side of the dataset's square images in pixels."""
    return config.dataset.synthetic.image_size if config.dataset.kind == "synthetic" else config.dataset.image_size


def _write_meta(folder: Path, **meta: Any) -> None:
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))


def _read_meta(entry: Path) -> dict[str, Any]:
    return json.loads((entry / "meta.json").read_text())
