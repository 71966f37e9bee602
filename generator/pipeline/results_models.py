"""Results sections "dataset" and "models": their figures and tables."""
from __future__ import annotations

import numpy as np
import pandas as pd

from generator.pipeline.state import Run, evaluation_table, training_text

__all__ = ["SPLIT_ORDER", "dataset_results", "model_results"]

SPLIT_ORDER = ("train_fair", "train_biased", "eval")


def dataset_results(run: Run) -> None:
    from generator.datasets.synthetic import REGIONS
    from generator.figures import dataset as figs

    faces, pub, seed = run.faces, run.publisher, run.config.seed
    prov = {"dataset": faces.key, "seed": seed}
    evaluation = np.flatnonzero(faces.table["split"].to_numpy() == "eval")
    per = run.config.report.samples_per_group
    pub.figure("fig-dataset-samples", title="Evaluation faces by skin-tone band and age group",
               caption=f"{per} faces drawn at random (seed {seed}) from each skin-tone band x age group of the "
                       "evaluation split; titles give the task label and whether the shortcut cue is drawn.",
               alt="Grid of synthetic faces, one row per skin-tone band and age group.", page="dataset.md",
               make=lambda: figs.sample_grid(faces.images[evaluation], faces.table.iloc[evaluation],
                                             by=("skin_tone", "age_group"), per_group=per, seed=seed),
               provenance={**prov, "per_group": per})
    shown = evaluation[:: max(1, len(evaluation) // 5)][:5]
    pub.figure("fig-dataset-masks", title="Region masks and landmarks",
               caption="Five evaluation faces (top) and the region each pixel belongs to (bottom), with the five "
                       "landmarks (eye centres, nose tip, mouth corners) as crosses.",
               alt="Faces above their colour-coded region masks.", page="dataset.md",
               make=lambda: figs.mask_examples(faces.images[shown], faces.masks[shown], faces.landmarks[shown],
                                               REGIONS),
               provenance={**prov, "images": [int(i) for i in shown]})
    counts = _group_counts(faces.table)
    pub.table("tab-dataset-counts", title="Images per split and group",
              caption="Number of images, identities and smiling share per split, skin-tone band and age group.",
              page="dataset.md", make=lambda: counts, provenance=prov)
    pub.figure("fig-dataset-group-shares", title="Skin-tone shares per split",
               caption="Share of each skin-tone band among the images of each split. The biased training split "
                       "follows census-like shares; the fair training split and the evaluation split are balanced.",
               alt="Stacked bars of skin-tone shares for each split.", page="dataset.md",
               make=lambda: figs.group_shares(counts.rename(columns={"images": "n"}), group="skin_tone",
                                              split_order=SPLIT_ORDER),
               provenance=prov)


def _group_counts(table: pd.DataFrame) -> pd.DataFrame:
    grouped = table.groupby(["split", "skin_tone", "age_group"], sort=False)
    counts = grouped.agg(images=("image_id", "size"), identities=("identity", "nunique"),
                         smiling_share=("label", "mean"), cue_share=("cue", "mean")).reset_index()
    order = {s: i for i, s in enumerate(SPLIT_ORDER)}
    return counts.sort_values(["split", "skin_tone", "age_group"], key=lambda c: c.map(order) if c.name == "split" else c,
                              ignore_index=True)


def model_results(run: Run) -> None:
    from generator.figures import models as figs

    pub, seed = run.publisher, run.config.seed
    prov = run.provenance
    histories = {m.name: m.history for m in run.models}
    pub.figure("fig-models-training-curves", title="Training curves",
               caption=f"Cross-entropy loss and accuracy per epoch of {_model_list(run)}; solid lines on the "
                       "model's training split, dashed on the evaluation split (not used for model selection). "
                       f"{training_text(run.config)}",
               alt="Loss and accuracy curves per epoch for each model.", page="models.md",
               make=lambda: figs.training_curves(histories), provenance=prov)
    evaluation = evaluation_table(run)
    for by, slug, what in ((("skin_tone",), "skin-tone", "skin-tone band"),
                           (("skin_tone", "age_group"), "intersection", "skin-tone band x age group"),
                           (("shortcut",), "shortcut", "agreement of the shortcut cue with the label")):
        table = pub.table(
            f"tab-models-accuracy-by-{slug}", title=f"Accuracy by {what}",
            caption=f"Accuracy of each model on the evaluation split by {what}, with 95% percentile-bootstrap "
                    f"intervals (200 resamples of the evaluation images, seed {seed}); 'all' is the whole split.",
            page="models.md", provenance={**prov, "by": list(by), "n_boot": 200},
            make=lambda by=by: _accuracy_table(evaluation, by, seed),
        )
        if len(by) == 1:
            frame = table.frame[table.frame[by[0]] != "all"].rename(columns={by[0]: "group"})
            pub.figure(f"fig-models-accuracy-by-{slug}", title=f"Accuracy by {what}",
                       caption=f"{table.caption} Error bars: the 95% interval. Dotted line: chance (0.5).",
                       alt=f"Bar chart of accuracy by {what} for each model.", page="models.md",
                       make=lambda frame=frame: figs.accuracy_by_group(frame, group="group"),
                       provenance={**prov, "table": table.id})


def _accuracy_table(evaluation: dict[str, pd.DataFrame], by: tuple[str, ...], seed: int) -> pd.DataFrame:
    """Accuracy by group for every model, one block of rows per model (fairlearn imported lazily)."""
    from generator.bias.accuracy import accuracy_by_group

    frames = [accuracy_by_group(frame, by=by, n_boot=200, seed=seed).assign(model=name)
              for name, frame in evaluation.items()]
    return pd.concat(frames, ignore_index=True)[["model", *by, "n", "accuracy", "ci_low", "ci_high"]]


def _model_list(run: Run) -> str:
    return ", ".join(f"'{m.name}' (trained on {m.config.train_split})" for m in run.models)
