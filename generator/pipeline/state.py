"""The state one build carries from stage to stage."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from generator.config import Config
from generator.pipeline.cache import Cache
from generator.pipeline.publish import Publisher
from generator.pipeline.stages import Faces, Predictions, TrainedModel

if TYPE_CHECKING:  # the results of later stages (their modules import this one)
    from generator.pipeline.face_recognition_stage import Matchers
    from generator.pipeline.results_attribution import Explanations
    from generator.pipeline.verification_maps import PairMaps

__all__ = ["Run", "Vocabulary", "evaluation_table", "training_text", "vocabulary"]


@dataclass
class Run:
    """The pieces of one build that every results section reads."""

    config: Config
    cache: Cache
    publisher: Publisher
    faces: Faces | None = None
    models: list[TrainedModel] = field(default_factory=list)
    predictions: dict[str, Predictions] = field(default_factory=dict)
    twins: dict[str, dict[str, Any]] = field(default_factory=dict)
    explanations: Explanations | None = None
    #: The face-recognition models of the verification audit on synthetic data.
    matchers: Matchers | None = None
    #: Per face-recognition model, the similarity maps of its sampled pairs.
    verification_maps: dict[str, PairMaps] = field(default_factory=dict)
    #: Further training draws of the fair/biased pair (replicates 1, 2, ...), see results_replicates.
    draws: list[tuple[TrainedModel, TrainedModel]] = field(default_factory=list)
    draw_predictions: dict[str, Predictions] = field(default_factory=dict)
    replicates: dict[str, Any] = field(default_factory=dict)
    #: Analyses that stepped aside, with the reason, per page (shown there instead of a traceback).
    notes: dict[str, list[str]] = field(default_factory=dict)
    #: The worker processes (or Ray connection) of the build, started by the first stage that sends tasks
    #: and kept for the next ones (each worker process imports the frameworks once), stopped by the build.
    workers: Any = field(default=None, repr=False)
    #: The build process's intra-op threads before the workers started (0: not changed).
    _threads: int = field(default=0, repr=False)
    #: Seconds spent in the parts of the explanations stage (maps, evaluation metrics, sanity checks, ...),
    #: for the build's profile; see :meth:`timed`.
    parts: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, part: str) -> Iterator[None]:
        """Add the block's wall time to ``parts[part]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.parts[part] = self.parts.get(part, 0.0) + time.perf_counter() - start

    def executor(self) -> Any:
        """The build's :class:`~generator.pipeline.executor.Executor`, started on first use.

        While workers run on this machine's cores, the build process computes with one intra-op
        thread: with more, its threads and the workers' contend for the same cores, and each of its
        parallel regions waits for a thread that is not running (measured on two cores: the
        explanations stage 19 % faster so). Results do not change (they do not depend on the
        thread count, see :mod:`generator.pipeline.executor`).
        """
        if self.workers is None:
            from generator.models.checkpoints import cpu_threads
            from generator.pipeline.executor import make_executor

            self.workers = make_executor(self.config.execution)
            if self.workers.shares_cores:
                self._threads = cpu_threads(1)
        return self.workers

    def close_executor(self) -> None:
        """Stop the build's worker processes, if any were started, and give the build its threads back."""
        if self.workers is not None:
            from generator.models.checkpoints import cpu_threads

            workers, self.workers = self.workers, None
            workers.close()
            if self._threads:
                cpu_threads(self._threads)
                self._threads = 0

    def predictions_of(self, name: str) -> Predictions:
        """Predictions of a model of the audit or of a further training draw (``fair#1``, ...)."""
        return self.predictions[name] if name in self.predictions else self.draw_predictions[name]

    @property
    def vocabulary(self) -> "Vocabulary":
        """How the dataset's label and groups are named in captions."""
        return vocabulary(self.faces)

    @property
    def provenance(self) -> dict[str, Any]:
        """Keys of the data and models every result depends on, plus the seed.

        A model's cache key covers its file or training run and its settings (preprocessing,
        layers), its content hash the weights themselves: both, so that a figure or table is
        recomputed when either changes.
        """
        found = {"dataset": self.faces.key,
                 "models": {m.name: {"key": m.key, "weights": m.content_hash} for m in self.models},
                 "seed": self.config.seed}
        if self.faces.landmarks_key:  # photographs: the detected landmarks and the regions placed from them
            found["landmarks"] = self.faces.landmarks_key
        return found


# Display names of the attributes the loaders produce (others are shown as their column name).
ATTRIBUTE_NAMES = {"skin_tone": "skin-tone band", "age_group": "age group", "race": "race", "age": "age bin",
                   "gender": "gender", "ethnicity": "ethnicity", "source": "image source"}


@dataclass(frozen=True)
class Vocabulary:
    """The words captions use for a dataset's task and groups."""

    attributes: tuple[str, ...]
    label_names: tuple[str, ...]

    def name(self, attribute: str) -> str:
        """The display name of an attribute column (e.g. ``skin_tone`` -> "skin-tone band")."""
        return ATTRIBUTE_NAMES.get(attribute, attribute.replace("_", " "))

    @property
    def primary(self) -> str:
        """The first protected attribute: figures by group use it."""
        return self.attributes[0]

    @property
    def pair(self) -> tuple[str, ...]:
        """The first two attributes, for intersections (one when there is one)."""
        return self.attributes[:2]

    @property
    def positive(self) -> str:
        """The class treated as positive in rates (the last class of a binary task)."""
        return self.label_names[-1] if self.label_names else ""


def vocabulary(faces: Faces) -> Vocabulary:
    """The :class:`Vocabulary` of a dataset."""
    return Vocabulary(tuple(faces.attributes), tuple(faces.label_names))


def evaluation_table(run: Run) -> dict[str, pd.DataFrame]:
    """Per model: evaluation images with label, prediction, probability, groups and shortcut agreement."""
    import numpy as np

    table = run.faces.table[run.faces.table["split"] == "eval"].reset_index(drop=True)
    if "cue" in table:
        agrees = table["cue"].astype(bool) == table["label"].astype(bool)
        table = table.assign(shortcut=np.where(agrees, "cue agrees with label", "cue contradicts label"))
    return {name: table.merge(p.table[["image_id", "pred", "confidence",
                                       *[c for c in p.table.columns if c.startswith("prob_")]]],
                              on="image_id", validate="one_to_one")
            for name, p in run.predictions.items()}


def training_text(config: Config) -> str:
    """The training settings in words, for captions."""
    t = config.training
    return (f"Training: SmallCNN width {t.width}, {t.epochs} epochs, batch {t.batch_size}, AdamW lr {t.lr} "
            f"(cosine decay), weight decay {t.weight_decay}, horizontal flips {'on' if t.augment_flip else 'off'}, "
            f"seed {config.seed}.")
