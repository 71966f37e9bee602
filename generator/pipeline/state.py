"""The state one build carries from stage to stage."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from generator.config import Config
from generator.pipeline.cache import Cache
from generator.pipeline.publish import Publisher
from generator.pipeline.stages import Faces, Predictions, TrainedModel

__all__ = ["Run", "evaluation_table", "training_text"]


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
    explanations: Any = None

    @property
    def provenance(self) -> dict[str, Any]:
        """Hashes of the data and models every result depends on, plus the seed."""
        return {"dataset": self.faces.key, "models": {m.name: m.content_hash for m in self.models},
                "seed": self.config.seed}


def evaluation_table(run: Run) -> dict[str, pd.DataFrame]:
    """Per model: evaluation images with label, prediction, probability, groups and shortcut agreement."""
    import numpy as np

    table = run.faces.table[run.faces.table["split"] == "eval"].reset_index(drop=True)
    agrees = table["cue"].astype(bool) == table["label"].astype(bool)
    table = table.assign(shortcut=np.where(agrees, "cue agrees with label", "cue contradicts label"))
    return {name: table.merge(p.table[["image_id", "pred", "prob_1"]], on="image_id", validate="one_to_one")
            for name, p in run.predictions.items()}


def training_text(config: Config) -> str:
    """The training settings in words, for captions."""
    t = config.training
    return (f"Training: SmallCNN width {t.width}, {t.epochs} epochs, batch {t.batch_size}, AdamW lr {t.lr} "
            f"(cosine decay), weight decay {t.weight_decay}, horizontal flips {'on' if t.augment_flip else 'off'}, "
            f"seed {config.seed}.")
