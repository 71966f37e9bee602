"""Cached stage: per-sample evaluation of one method's maps on one model.

Its own stage (and module, whose source is part of the cache key), so that changing
an evaluation setting recomputes the scores but not the maps.
"""
from __future__ import annotations

import shutil
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from generator.config import Config
from generator.fileio import atomic_save_npz
from generator.numerics import to_uint8
from generator.pipeline.attribution_stages import MapSet
from generator.pipeline.cache import Cache
from generator.pipeline.executor import kept
from generator.pipeline.graph import stage_key
from generator.pipeline.stages import Faces, TrainedModel, kept_handle

if TYPE_CHECKING:
    from generator.pipeline.executor import Executor

__all__ = ["EXPENSIVE_METRICS", "curve_scores", "evaluated", "evaluation_key", "evaluation_stage", "prob_fn",
           "sensitivity_scores", "submit_evaluation"]

FACE_REGIONS = ("skin", "eyes", "brows", "nose", "mouth")
REGION_SCORES = ("share_face", "share_background", "share_cue", "pointing_mouth")


def prob_fn(handle) -> Any:
    """Class probabilities for float NHWC images in [0, 255] (the evaluation metrics perturb images).

    Uses the handle's own preprocessing, so it holds for any model of the audit; a model
    that outputs probabilities is wrapped by its adapter to return log-probabilities,
    whose softmax gives the probabilities back.
    """

    def probabilities(images: np.ndarray) -> np.ndarray:
        from generator.numerics import softmax

        return softmax(handle.logits(np.asarray(images, dtype=np.float32))).astype(np.float32)

    return probabilities


EXPENSIVE_METRICS = ("deletion_auc", "insertion_auc", "mufidelity", "infidelity", "max_sensitivity")
"""The metrics that re-run the model per image (many times): on ``attribution.budget.evaluation_images``
images only. Sparseness, complexity and the region scores read the map alone and cover every image."""


def evaluated(chosen: pd.DataFrame) -> np.ndarray:
    """The rows of ``chosen`` the expensive metrics cover (its ``evaluated`` column; all without one)."""
    return chosen["evaluated"].to_numpy(bool) if "evaluated" in chosen else np.ones(len(chosen), dtype=bool)


def evaluation_key(cache: Cache, config: Config, maps_key: str, chosen: pd.DataFrame) -> str:
    """The cache key of one map set's evaluation: its maps' key, the metric settings, the images the
    expensive metrics cover and the code."""
    subset = None if evaluated(chosen).all() else chosen["image_id"][evaluated(chosen)].tolist()
    return stage_key(cache, "evaluation", {"steps": config.attribution.deletion_steps, "seed": config.seed,
                                           "subset": subset}, maps=maps_key)


def evaluation_stage(cache: Cache, config: Config, faces: Faces, trained: TrainedModel, chosen: pd.DataFrame,
                     targets: np.ndarray, maps: MapSet, twin_path: Path | None) -> pd.DataFrame:
    """Per-sample quality scores of one method's maps (see :func:`submit_evaluation`), computed here."""
    return submit_evaluation(cache, config, faces, trained, chosen, targets, maps, twin_path)()


def submit_evaluation(cache: Cache, config: Config, faces: Faces, trained: TrainedModel, chosen: pd.DataFrame,
                      targets: np.ndarray, maps: MapSet, twin_path: Path | None,
                      executor: Executor | None = None) -> Callable[[], pd.DataFrame]:
    """Start the per-sample quality scores of one method's maps: faithfulness, complexity, localisation.

    The work that re-runs the model per map (deletion and insertion curves, in tasks of
    :data:`CURVE_IMAGES` images, and max-sensitivity's re-explanations) is sent to ``executor``,
    whose workers compute it beside the next map sets (without one it is computed here, in
    the same chunks: the same numbers). The returned function waits for those tasks, adds the
    scores shared by every method of the model (MuFidelity, infidelity) and the ones read off the
    map alone, caches the table and returns it.

    The :data:`EXPENSIVE_METRICS` are computed on the ``evaluated`` rows of ``chosen`` only (NaN on the
    others). An image's scores do not depend on which other images are evaluated (MuFidelity draws the
    same pixel subsets for every image), except infidelity's: its seeded perturbations are drawn per
    chunk of :data:`INFIDELITY_CHUNK` images.
    """
    from generator.attribution.registry import REGISTRY
    from generator.pipeline.executor import Executor, absolute_model

    steps = config.attribution.deletion_steps
    key = evaluation_key(cache, config, maps.key, chosen)
    if cache.is_done("evaluation", key):
        return lambda: _read(cache.get_or_compute("evaluation", key, _never))
    executor = executor or Executor()
    subset, every = evaluated(chosen), np.asarray(maps.maps)
    images, scored, mapped = faces.images[chosen["row"].to_numpy()[subset]], targets[subset], every[subset]
    model = absolute_model(trained)
    # Each chunk's curves are kept in the entry's partial folder as they come back, so an interrupted
    # evaluation (thousands of images) sends only the chunks not done when it runs again.
    parts = cache.partial("evaluation", key) / "curves"
    curves = {k: None if (parts / f"{k:09d}.npz").is_file() else
              executor.submit(curve_scores, config, model, images[k:k + CURVE_IMAGES], scored[k:k + CURVE_IMAGES],
                              mapped[k:k + CURVE_IMAGES], steps) for k in range(0, len(images), CURVE_IMAGES)}
    sensitivity = None
    if REGISTRY[maps.method].family in SENSITIVITY_FAMILIES:
        twin = Path(twin_path).resolve() if twin_path is not None else None
        sensitivity = executor.submit(sensitivity_scores, config, model, maps.framework, twin, maps.method,
                                      dict(config.attribution.params.get(maps.method, {})),
                                      images[:SENSITIVITY_IMAGES], scored[:SENSITIVITY_IMAGES])

    def compute(folder: Path) -> None:
        metrics = _metrics(config, trained, faces, chosen[subset], scored, steps)
        done = [_curve_chunk(folder / "curves" / f"{k:09d}.npz", job) for k, job in curves.items()]
        deletion = np.concatenate([d for d, _ in done]) if done else np.empty(0)
        insertion = np.concatenate([i for _, i in done]) if done else np.empty(0)
        table = _evaluate(metrics, faces, chosen, every, subset, deletion, insertion)
        table["infidelity"] = _spread(_infidelity(metrics, trained, scored, mapped, config.seed), subset)
        robust = np.full(len(images), np.nan)
        if sensitivity is not None:
            robust[:SENSITIVITY_IMAGES] = sensitivity.result()
        table["max_sensitivity"] = _spread(robust, subset)
        table.to_csv(folder / "per_sample.csv", index=False)
        shutil.rmtree(folder / "curves", ignore_errors=True)  # the entry keeps the table only

    return lambda: _read(cache.get_or_compute("evaluation", key, compute, resumable=True))


def _curve_chunk(path: Path, job: Any) -> tuple[np.ndarray, np.ndarray]:
    """One chunk's deletion and insertion AUCs: read from ``path`` when an earlier run kept them, else the task's
    result, kept there at once."""
    if job is None:
        with np.load(path) as found:
            return found["deletion"], found["insertion"]
    deletion, insertion = job.result()
    atomic_save_npz(path, deletion=deletion, insertion=insertion)
    return deletion, insertion


def _read(entry: Path) -> pd.DataFrame:
    return pd.read_csv(entry / "per_sample.csv", dtype={"image_id": str})


def _never(folder: Path) -> None:
    raise RuntimeError(f"evaluation {folder.name}: found done, then missing from the cache")


#: Evaluated images per task of deletion and insertion curves (about 30 forward passes an image): small enough
#: to spread a map set of the default (46 images) over the workers, large enough that a task outweighs sending it.
CURVE_IMAGES = 16
#: Deletion and insertion metrics a process keeps (model and images), for the next methods' maps of those images.
KEPT_CURVES = 4
_CURVES: OrderedDict[str, Any] = OrderedDict()


def curve_scores(config: Config, trained: TrainedModel, images: np.ndarray, targets: np.ndarray, maps: np.ndarray,
                 steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion AUC of ``maps`` (a task: run by a worker, or here without workers).

    The metrics of a model and image chunk (their endpoint predictions) are built once per process
    and kept for the other methods' maps of the same images.
    """
    import hashlib

    from generator.evaluation.faithfulness import Deletion, Insertion

    memo = hashlib.sha1(np.ascontiguousarray(images).tobytes() + np.asarray(targets, np.int64).tobytes()).hexdigest()
    memo += f"{trained.key}/{trained.framework}/{steps}"

    def make() -> tuple[Deletion, Insertion]:
        probs = prob_fn(kept_handle(config, trained, trained.framework))
        return Deletion(probs, images, targets, steps=steps), Insertion(probs, images, targets, steps=steps)

    deletion, insertion = kept(_CURVES, memo, make, KEPT_CURVES)
    return deletion(maps), insertion(maps)


def sensitivity_scores(config: Config, trained: TrainedModel, framework: str, twin_path: Path | None, method: str,
                       params: dict[str, Any], images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Max-sensitivity (Yeh et al., 2019) of ``method`` on ``images`` (a task, like :func:`curve_scores`)."""
    from generator.evaluation.robustness import max_sensitivity
    from generator.pipeline.executor import kept_explainer

    explainer = kept_explainer(config, trained, framework, twin_path, method, params)

    def explain(batch: np.ndarray, classes: np.ndarray) -> np.ndarray:
        return explainer.explain(to_uint8(batch), classes)

    return max_sensitivity(explain, images, targets, n_samples=4, seed=config.seed)


class _Metrics:
    """The metrics of one model on one set of images, built once and shared by every method's maps.

    Every model call that does not depend on the map is made once here instead of once per
    method: the endpoints of the deletion and insertion curves, MuFidelity's perturbed
    predictions, and infidelity's perturbed forward passes (its perturbations are seeded, so
    each method sees the same ones and Captum asks for the same inputs again; they are
    answered from a memo, keyed by the bytes of the batch). The scores are the numbers the
    metrics compute one method at a time, bit for bit.
    """

    def __init__(self, config: Config, trained: TrainedModel, images: np.ndarray, targets: np.ndarray,
                 steps: int) -> None:
        from generator.evaluation.faithfulness import MuFidelity

        handle = kept_handle(config, trained, trained.framework)
        self.mufidelity = MuFidelity(prob_fn(handle), images, targets, seed=config.seed)
        self.handle = handle
        self.inputs = handle.prepare(images) if trained.framework == "torch" else None
        #: The model's logits for a torch batch, computed once per distinct batch (infidelity's passes).
        self.forward = None
        if trained.framework == "torch":  # Captum's infidelity sends 8 x 32 perturbed copies: run them in passes
            from generator.attribution.handles import ChunkedForward, RememberedForward, pass_size

            self.forward = RememberedForward(ChunkedForward(handle.model, pass_size(handle.device)))


_METRICS: dict[str, _Metrics] = {}


def _metrics(config: Config, trained: TrainedModel, faces: Faces, chosen: pd.DataFrame, targets: np.ndarray,
             steps: int) -> _Metrics:
    """The shared metrics of this model and image set (one set is kept: the build goes model by model)."""
    from generator.pipeline.cache import stable_hash

    key = stable_hash({"model": trained.key, "faces": faces.key, "images": chosen["image_id"].tolist(),
                       "targets": np.asarray(targets).tolist(), "steps": steps, "seed": config.seed})
    if key not in _METRICS:
        _METRICS.clear()
        _METRICS[key] = _Metrics(config, trained, faces.images[chosen["row"].to_numpy()], targets, steps)
    return _METRICS[key]


def _spread(values: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """Scores of the ``subset`` rows placed in a column for every row, NaN elsewhere."""
    out = np.full(len(subset), np.nan)
    out[subset] = values
    return out


def _evaluate(metrics: _Metrics, faces: Faces, chosen: pd.DataFrame, maps: np.ndarray, subset: np.ndarray,
              deletion: np.ndarray, insertion: np.ndarray) -> pd.DataFrame:
    from generator.datasets.synthetic import REGIONS
    from generator.evaluation.complexity import complexity, sparseness
    from generator.evaluation.localisation import mass_on, pointing_game

    rows = chosen["row"].to_numpy()
    scores = {
        "image_id": chosen["image_id"].to_numpy(),
        "deletion_auc": _spread(deletion, subset),
        "insertion_auc": _spread(insertion, subset),
        "mufidelity": _spread(metrics.mufidelity(maps[subset]), subset),
        "sparseness": sparseness(maps),
        "complexity": complexity(maps),
    }
    if faces.masks is None or not faces.synthetic:  # exact masks and the cue: synthetic faces only
        return pd.DataFrame(scores).assign(**{c: np.nan for c in REGION_SCORES})
    masks = faces.masks[rows]
    ids = {name: REGIONS.index(name) for name in REGIONS}
    return pd.DataFrame({
        **scores,
        "share_face": mass_on(maps, masks, [ids[r] for r in FACE_REGIONS]),
        "share_background": mass_on(maps, masks, [ids["background"]]),
        "share_cue": mass_on(maps, masks, [ids["cue"]]),
        "pointing_mouth": pointing_game(maps, masks, [ids["mouth"]]),
    })


def _infidelity(metrics: _Metrics, trained: TrainedModel, targets: np.ndarray, maps: np.ndarray,
                seed: int) -> np.ndarray:
    """Captum's infidelity (Yeh et al., 2019) of the maps, with seeded Gaussian perturbations."""
    from generator.evaluation.faithfulness import infidelity

    if trained.framework != "torch":  # Captum's infidelity needs a PyTorch model
        return np.full(len(maps), np.nan)
    # Captum perturbs a whole input batch at once (32 copies of each image): chunks of images bound the memory,
    # each with its own seed, the same for every method so that their scores are paired.
    out = [infidelity(metrics.forward, metrics.inputs[k:k + INFIDELITY_CHUNK], targets[k:k + INFIDELITY_CHUNK],
                      maps[k:k + INFIDELITY_CHUNK], seed=seed + k) for k in range(0, len(maps), INFIDELITY_CHUNK)]
    return np.concatenate(out)


INFIDELITY_CHUNK = 8  # images per call of Captum's infidelity (8 x 32 perturbed copies per forward pass)
SENSITIVITY_FAMILIES = ("gradient", "path", "cam")
SENSITIVITY_IMAGES = 12  # it re-runs the explainer 4 times per image: measured on the first 12 images only
