"""Results sections "dataset" and "models": their figures and tables."""
from __future__ import annotations

import numpy as np
import pandas as pd

from generator.bias.intervals import PROPORTION_INTERVAL
from generator.pipeline.state import Run, evaluation_table, training_text

__all__ = ["SPLIT_ORDER", "dataset_results", "model_results", "sample_rows"]

SPLIT_ORDER = ("train_fair", "train_biased", "train", "eval")
MAX_SAMPLE_ROWS = 16  # more groups than this, and the sample grid shows one row per group of the first attribute


def sample_rows(table: pd.DataFrame, by: tuple[str, ...]) -> tuple[str, ...]:
    """The attributes whose groups make the sample grid's rows: all of ``by``, or only its first attribute
    when ``by`` has more than :data:`MAX_SAMPLE_ROWS` groups (FairFace's 7 races x 9 age bins: 63 rows)."""
    by = tuple(by)
    return by if table.groupby(list(by)).ngroups <= MAX_SAMPLE_ROWS else by[:1]


def dataset_results(run: Run) -> None:
    """Samples, group counts and (synthetic faces) masks; for a user's dataset also the skipped images."""
    from generator.figures import dataset as figs

    faces, pub, seed, words = run.faces, run.publisher, run.config.seed, run.vocabulary
    prov = {"dataset": faces.key, "seed": seed}
    evaluation = faces.evaluation
    per = run.config.report.samples_per_group
    by = words.pair
    groups = " x ".join(words.name(a) for a in by)
    labelled = "titles give the task label" + (" and whether the shortcut cue is drawn" if faces.synthetic else "")
    rows = sample_rows(faces.table.iloc[evaluation], by)
    shown = " x ".join(words.name(a) for a in rows)
    fitted = "".join(f" {n[0].upper()}{n[1:]}." for n in faces.notes if "aspect ratio" in n)
    pub.figure("fig-dataset-samples", title=f"Evaluation faces by {shown}",
               caption=f"{per} faces drawn at random (seed {seed}) from each {shown} of the evaluation split"
                       + (f" ({groups} has more than {MAX_SAMPLE_ROWS} groups: one row per {shown})"
                          if rows != tuple(by) else "")
                       + (f"; {labelled}." if faces.labelled else ".") + fitted,
               alt=f"Grid of faces, one row per {shown}.", page="dataset.md",
               make=lambda: figs.sample_grid(faces.images[evaluation], faces.table.iloc[evaluation],
                                             by=rows, per_group=per, seed=seed),
               provenance={**prov, "per_group": per, "rows": list(rows)},
               # on a slide: one row per group of the first attribute, faces large enough to see the mark
               slide=lambda: figs.sample_grid(faces.images[evaluation], faces.table.iloc[evaluation],
                                              by=by[:1], per_group=min(per, 6), seed=seed))
    if faces.masks is not None and faces.located.any():
        located = faces.located
        pool = evaluation[located[evaluation]] if located[evaluation].any() else np.flatnonzero(located)
        shown = pool[:: max(1, len(pool) // 5)][:5]
        if faces.synthetic:
            how = ("the region each pixel belongs to (bottom), with the five landmarks (eye centres, nose tip, mouth "
                   "corners) as crosses.")
        else:
            how = ("the face regions placed from the detected landmarks (bottom; approximate ellipses, the mouth "
                   "placed below the nose by average proportions), with the landmarks (eye centres, base of the "
                   "nose) as crosses; hair, ears, neck and scene are all 'background'.")
        pub.figure("fig-dataset-masks", title="Region masks and landmarks",
                   caption=f"{len(shown)} faces (top) and {how}",
                   alt="Faces above their colour-coded region masks.", page="dataset.md",
                   make=lambda: figs.mask_examples(faces.images[shown], faces.masks[shown], faces.landmarks[shown],
                                                   faces.regions),
                   provenance={**prov, "images": [int(i) for i in shown]})
    if faces.landmark_report is not None:
        from generator.datasets.landmarks import DETECTOR

        pub.table("tab-dataset-landmarks", title="Landmark detection",
                  caption=f"Per image: faces found by the detector ({DETECTOR}; images upsampled to at least 160 px "
                          "first), the score of the face used (the highest) and, where none was found, the reason. "
                          "Images without a face keep their maps and scores but are left out of alignment and of "
                          "the face-region analyses.", page="dataset.md", provenance=prov,
                  make=lambda: faces.landmark_report[["image_id", "faces_found", "score", "reason"]])
    counts = group_counts(faces)
    pub.table("tab-dataset-counts", title="Images per split and group",
              caption=f"Number of images and identities per split and {groups}"
                      + (f", with the share of label '{words.positive}'" if faces.labelled else "")
                      + (" and of the shortcut cue" if faces.synthetic else "") + ".",
              page="dataset.md", make=lambda: counts, provenance=prov)
    pub.figure("fig-dataset-group-shares", title=f"{words.name(words.primary).capitalize()} shares per split",
               caption=f"Share of each {words.name(words.primary)} among the images of each split."
                       + (" The biased training split follows census-like shares; the fair training split and the "
                          "evaluation split are balanced." if faces.synthetic else ""),
               alt=f"Stacked bars of {words.name(words.primary)} shares for each split.", page="dataset.md",
               make=lambda: figs.group_shares(counts.rename(columns={"images": "n"}), group=words.primary,
                                              split_order=SPLIT_ORDER),
               provenance=prov)
    if not faces.synthetic and faces.kind != "sample_faces":
        pub.table("tab-dataset-skipped", title="Images and rows left out",
                  caption="Every annotation row or image file the loader did not use, with the reason: 'table' "
                          "rows were refused while reading the annotations, 'image' files could not be decoded. "
                          f"Listed: {len(faces.table) + len(faces.skipped)}; used: {len(faces.table)}; "
                          f"left out: {len(faces.skipped)}.",
                  page="dataset.md", make=lambda: faces.skipped.reset_index(drop=True), provenance=prov)


def group_counts(faces) -> pd.DataFrame:
    """Images and identities per split and group (label share and, for the synthetic faces, cue share)."""
    table, by = faces.table, ["split", *faces.attributes[:2]]
    extra = {}
    if faces.labelled:
        extra["label_share"] = ("label", lambda s: float((s == len(faces.label_names) - 1).mean()))
    if "cue" in table:
        extra["cue_share"] = ("cue", "mean")
    counts = table.groupby(by, sort=False).agg(images=("image_id", "size"), identities=("identity", "nunique"),
                                               **extra).reset_index()
    if faces.synthetic:
        counts = counts.rename(columns={"label_share": "smiling_share"})
    order = {s: i for i, s in enumerate(SPLIT_ORDER)}
    return counts.sort_values(by, key=lambda c: c.map(order) if c.name == "split" else c, ignore_index=True)


def model_results(run: Run) -> None:
    from generator.figures import models as figs

    pub, words = run.publisher, run.vocabulary
    prov = run.provenance
    histories = {m.name: m.history for m in run.models if m.history is not None}
    if histories:
        pub.figure("fig-models-training-curves", title="Training curves",
                   caption=f"Cross-entropy loss and accuracy per epoch of {_model_list(run)}; solid lines on the "
                           "model's training split, dashed on the evaluation split (not used for model selection). "
                           f"{training_text(run.config)}",
                   alt="Loss and accuracy curves per epoch for each model.", page="models.md",
                   make=lambda: figs.training_curves(histories), provenance=prov)
    evaluation = evaluation_table(run)
    if not run.faces.synthetic:
        pub.table("tab-models-predictions", title=f"Predictions by {words.name(words.primary)}",
                  caption=f"Share of the evaluation images each model assigns to each class, and the mean "
                          f"probability of the predicted class, per {words.name(words.primary)}. Without labels "
                          "this shows what the model decides, not whether it is right.",
                  page="models.md", provenance=prov,
                  make=lambda: _prediction_shares(evaluation, words.primary, run.predictions))
    if not run.faces.labelled:
        return
    groupings = [((a,), a.replace("_", "-"), words.name(a)) for a in words.attributes]
    if len(words.pair) == 2:
        groupings.append((words.pair, "intersection", " x ".join(words.name(a) for a in words.pair)))
    if run.faces.synthetic:
        groupings.append((("shortcut",), "shortcut", "agreement of the shortcut cue with the label"))
    chance = 1 / len(words.label_names)
    for by, slug, what in groupings:
        table = pub.table(
            f"tab-models-accuracy-by-{slug}", title=f"Accuracy by {what}",
            caption=f"Accuracy of each model on the evaluation split by {what}, with 95% {PROPORTION_INTERVAL}s "
                    "(from each group's count of correct predictions); 'all' is the whole split.",
            page="models.md", provenance={**prov, "by": list(by), "interval": PROPORTION_INTERVAL},
            make=lambda by=by: _accuracy_table(evaluation, by),
        )
        if len(by) == 1:
            frame = table.frame[table.frame[by[0]] != "all"].rename(columns={by[0]: "group"})
            pub.figure(f"fig-models-accuracy-by-{slug}", title=f"Accuracy by {what}",
                       caption=f"{table.caption} Error bars: the 95% interval. Dotted line: chance ({chance:.2g}).",
                       alt=f"Bar chart of accuracy by {what} for each model.", page="models.md",
                       make=lambda frame=frame: figs.accuracy_by_group(frame, group="group", chance=chance),
                       provenance={**prov, "table": table.id})


def _prediction_shares(evaluation: dict[str, pd.DataFrame], group: str, predictions: dict) -> pd.DataFrame:
    """Per model and group: images, share predicted as each class, mean confidence."""
    rows = []
    for name, frame in evaluation.items():
        classes = sorted(c for c in predictions[name].table.columns if c.startswith("prob_"))
        for value, sub in [("all", frame), *frame.groupby(group, sort=True)]:
            row = {"model": name, group: value, "n": len(sub)}
            for k, _ in enumerate(classes):
                row[f"share predicted {k}"] = float((sub["pred"] == k).mean())
            row["mean confidence"] = float(sub["confidence"].mean())
            rows.append(row)
    return pd.DataFrame(rows)


def _accuracy_table(evaluation: dict[str, pd.DataFrame], by: tuple[str, ...]) -> pd.DataFrame:
    """Accuracy by group for every model, one block of rows per model (fairlearn imported lazily)."""
    from generator.bias.accuracy import accuracy_by_group

    frames = [accuracy_by_group(frame, by=by).assign(model=name)
              for name, frame in evaluation.items()]
    return pd.concat(frames, ignore_index=True)[["model", *by, "n", "accuracy", "ci_low", "ci_high"]]


def _model_list(run: Run) -> str:
    return ", ".join(f"'{m.name}' (trained on {m.config.train_split})" for m in run.models if m.trained)
