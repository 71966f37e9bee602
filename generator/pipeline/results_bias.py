"""Results section "bias assessment": classification fairness and verification bias.

Reports are computed lazily: on a rerun whose figures and tables are all cached,
nothing here is recomputed.
"""
from __future__ import annotations

from functools import cache
from typing import Any, Callable

import pandas as pd

from generator.bias.intervals import PROPORTION_INTERVAL
from generator.pipeline.cache import file_sha256
from generator.pipeline.state import Run, Vocabulary, evaluation_table

__all__ = ["N_BOOT", "bias_results"]

N_BOOT = 200
RATES = ("tpr", "fpr", "selection_rate", "precision")


def bias_results(run: Run) -> None:
    """Register every bias figure and table of every model."""
    evaluation = evaluation_table(run) if run.faces.labelled else {}
    words = run.vocabulary
    matchers = run.matchers
    for name, frame in evaluation.items():
        _classification(run, name, _lazy(lambda frame=frame: _classification_report(frame, run.config.seed, words)))
        if matchers is not None:
            continue  # the face-recognition models below are audited instead of the classifiers' pooled features
        if run.predictions[name].embeddings is not None and run.faces.has_identity:
            reason = _no_pairs(run)
            if reason:
                run.notes.setdefault("bias-verification.md", []).append(
                    f"Verification of model '{name}' left out: {reason}.")
            else:
                _verification(run, name, _lazy(lambda name=name: _verification_reports(run, name)))
    if matchers is not None:
        fr = run.config.verification.face_recognition
        n_ids = len(matchers.table["identity"].unique())
        for matcher in matchers.models:
            _verification(
                run, matcher.name, _lazy(lambda matcher=matcher: _matcher_reports(run, matcher)),
                pairs_text=(f"Pairs of {len(matchers.table)} held-out faces of {n_ids} identities scored by the cosine "
                            f"similarity of the embeddings of face-recognition model '{matcher.name}' "
                            f"({matcher.description}); genuine pairs share an identity (up to 20 per identity), "
                            f"imposter pairs are two identities of the same skin-tone band ({fr.imposters_per_genuine} "
                            "per genuine pair, at most all there are); 5 subject-disjoint folds, thresholds chosen on "
                            "the other folds."),
                prov_extra={"face_recognition": fr.model_dump(), "weights": matcher.key},
                subject=f"face-recognition model '{matcher.name}'", subgroup=["skin_tone"],
                pairs_prov=f"genuine: up to 20 per identity; imposters: {fr.imposters_per_genuine} per genuine, same "
                           "skin-tone band; 5 subject-disjoint folds")
    table = run.config.verification.pairs_table
    if table is not None:
        _verification(run, "pairs-table", _lazy(lambda: _table_reports(run)),
                      pairs_text=f"Pairs and similarity scores (column '{run.config.verification.score}') read from "
                                 f"the BFW-format table '{table.name}'; thresholds chosen on the other folds.",
                      prov_extra={"table_sha256": file_sha256(table), "score": run.config.verification.score},
                      subject=f"pairs table '{table.name}'", with_rank1=False)


def _table_reports(run: Run) -> tuple[Any, None]:
    from generator.bias.pairs import read_bfw_datatable
    from generator.bias.verification import verification_report

    pairs = read_bfw_datatable(run.config.verification.pairs_table, score=run.config.verification.score)
    return verification_report(pairs, seed=run.config.seed), None


def _lazy(function: Callable[[], Any]) -> Callable[[], Any]:
    return cache(function)


def _classification_report(frame: pd.DataFrame, seed: int, words: Vocabulary):
    from generator.bias.classification import classification_report

    scores = [f"prob_{k}" for k in range(len(words.label_names))]
    return classification_report(frame, attributes=list(words.attributes), scores=scores, n_boot=N_BOOT,
                                 seed=seed, class_names=list(words.label_names))


def _classification(run: Run, model: str, report: Callable[[], Any]) -> None:
    from generator.figures import bias as figs

    pub, seed, words = run.publisher, run.config.seed, run.vocabulary
    class_names, group, groups = list(words.label_names), words.primary, words.name(words.primary)
    names = [words.name(a) for a in words.attributes]
    listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
    prov = {**run.provenance, "model": model, "n_boot": N_BOOT, "attributes": list(words.attributes)}
    boot = (f"95% {PROPORTION_INTERVAL}s for the rates (from each group's counts) and percentile-bootstrap "
            f"intervals for F1 ({N_BOOT} resamples of the evaluation images, seed {seed}); the 'interval' column "
            "names each row's method")
    boot_ece = f"95% percentile-bootstrap intervals ({N_BOOT} resamples of the evaluation images, seed {seed})"
    page = "bias-classification.md"
    pub.table(f"tab-bias-rates-{model}", title=f"Rates by group, model '{model}'",
              caption=f"Base rate, accuracy, TPR, FPR, FNR, precision, selection rate and F1 of model '{model}' on "
                      f"the evaluation split for each {listed}"
                      f"{' and their intersections' if len(names) > 1 else ''}, class '{words.positive}' as "
                      f"positive{'' if len(class_names) == 2 else ' (one-vs-rest for every class)'}, with {boot}. "
                      "Undefined rates are empty with a note.",
              page=page, provenance=prov, make=lambda: report().by_group)
    pub.table(f"tab-bias-disparities-{model}", title=f"Disparities, model '{model}'",
              caption=f"Demographic parity (selection rate), equal opportunity (TPR) and equalized odds (TPR and "
                      f"FPR) of model '{model}': difference = largest minus smallest group value, ratio = smallest "
                      f"over largest, for each grouping and class (one-vs-rest).",
              page=page, provenance=prov, make=lambda: report().disparities)
    pub.table(f"tab-bias-ece-{model}", title=f"Expected calibration error, model '{model}'",
              caption=f"ECE of model '{model}' per group (10 equal-width bins of the predicted class's "
                      f"probability), with {boot_ece}.", page=page, provenance=prov, make=lambda: report().ece)
    pub.figure(f"fig-bias-rates-{model}", title=f"Error rates by {groups}, model '{model}'",
               caption=f"TPR, FPR, selection rate and precision of model '{model}' per {groups}, class "
                       f"'{words.positive}' positive; whiskers: 95% {PROPORTION_INTERVAL}s.",
               alt=f"Dot plots of four rates per {groups} for model {model}.", page=page, provenance=prov,
               make=lambda: figs.metric_by_group(report().by_group, metrics=RATES, attributes=group))
    pub.figure(f"fig-bias-confusion-{model}", title=f"Confusion matrices by {groups}, model '{model}'",
               caption=f"Row-normalised confusion matrix of model '{model}' for each {groups} of the "
                       "evaluation split (rows: true label, columns: prediction; counts in cells).",
               alt=f"One confusion matrix per {groups} for model {model}.", page=page, provenance=prov,
               make=lambda: figs.confusion_matrices(report().confusion, attributes=group,
                                                    class_names=class_names))
    pub.figure(f"fig-bias-calibration-{model}", title=f"Calibration by {groups}, model '{model}'",
               caption=f"Reliability curves of model '{model}' per {groups}: accuracy against mean "
                       "confidence of the predicted class in 10 equal-width bins; the diagonal is perfect "
                       "calibration; the legend gives each group's ECE.",
               alt=f"Reliability curves per {groups} for model {model}.", page=page, provenance=prov,
               make=lambda: figs.reliability(report().calibration, report().ece, attributes=group))


def _no_pairs(run: Run) -> str:
    """Why the evaluation split gives no genuine or no imposter pair (empty when it gives both)."""
    evaluation = run.faces.table[run.faces.table["split"] == "eval"]
    per_identity = evaluation.groupby("identity").size()
    if not (per_identity >= 2).any():
        return (f"each of the {len(per_identity)} identities of the evaluation split has a single image, so there "
                "is no genuine pair (two images of one person); the classification audit is unaffected")
    subgroup = list(run.vocabulary.pair)
    identities = evaluation.groupby(subgroup)["identity"].nunique() if subgroup else pd.Series([per_identity.size])
    if not (identities >= 2).any():
        return ("no subgroup of the evaluation split has two identities, so there is no imposter pair of the "
                "same subgroup; the classification audit is unaffected")
    return ""


def _verification_reports(run: Run, model: str) -> tuple[Any, Any]:
    from generator.bias.pairs import pairs_from_embeddings
    from generator.bias.verification import rank1_confusion, verification_report

    evaluation = run.faces.table[run.faces.table["split"] == "eval"].reset_index(drop=True)
    embeddings = run.predictions[model].embeddings
    subgroup = list(run.vocabulary.pair)
    pairs = pairs_from_embeddings(evaluation, embeddings, subgroup=subgroup, seed=run.config.seed)
    groups = evaluation[subgroup].astype(str).agg(" / ".join, axis=1)
    confusion = rank1_confusion(embeddings, evaluation["identity"].tolist(), groups.tolist())
    return verification_report(pairs, seed=run.config.seed), confusion


def _matcher_reports(run: Run, matcher: Any) -> tuple[Any, Any]:
    """Verification report and rank-1 confusion of one face-recognition model on its held-out faces."""
    from generator.bias.pairs import pairs_from_embeddings
    from generator.bias.verification import rank1_confusion, verification_report

    table, fr = run.matchers.table, run.config.verification.face_recognition
    pairs = pairs_from_embeddings(table, matcher.embeddings, subgroup="skin_tone", seed=run.config.seed,
                                  imposters_per_genuine=fr.imposters_per_genuine)
    confusion = rank1_confusion(matcher.embeddings, table["identity"].tolist(), table["skin_tone"].tolist())
    return verification_report(pairs, seed=run.config.seed), confusion


def _verification(run: Run, model: str, reports: Callable[[], Any], *, pairs_text: str | None = None,
                  prov_extra: dict[str, Any] | None = None, subject: str | None = None,
                  with_rank1: bool = True, subgroup: list[str] | None = None, pairs_prov: str | None = None) -> None:
    from generator.figures import bias as figs

    pub = run.publisher
    words = run.vocabulary
    prov = {**run.provenance, "model": model, "subgroup": subgroup or list(words.pair),
            "pairs": pairs_prov or "genuine: up to 20 per identity; imposters: 5 per genuine, same subgroup; "
                                   "5 subject-disjoint folds", **(prov_extra or {})}
    page = "bias-verification.md"
    subject = subject or f"model '{model}'"
    pairs_text = pairs_text or (
        f"Pairs of evaluation images scored by the cosine similarity of model '{model}''s pooled features; "
        "genuine pairs share an identity, imposter pairs are different identities of the same subgroup "
        f"({' / '.join(words.name(a) for a in words.pair)}); 5 subject-disjoint folds, thresholds chosen on the "
        "other folds.")
    pub.table(f"tab-verification-tar-{model}", title=f"TAR at FAR by subgroup, {subject}",
              caption=f"{pairs_text} TAR at each intended FAR with one global threshold and with per-subgroup "
                      "thresholds (mean and SD over folds). Empty where the FAR needs more imposters than exist.",
              page=page, provenance=prov, make=lambda: reports()[0].tar_at_far)
    pub.table(f"tab-verification-fpr-{model}", title=f"FPR at the global threshold, {subject}",
              caption=f"{pairs_text} The false positive rate each subgroup actually gets when one global threshold "
                      "is set for the intended FAR, and its percent difference from the intended FAR.",
              page=page, provenance=prov, make=lambda: reports()[0].fpr_at_global)
    figures = (
        ("roc", "ROC curves by subgroup", "ROC curve per subgroup (log FPR axis).",
         lambda: figs.roc_curves(reports()[0].roc)),
        ("det", "DET curves by subgroup", "DET curve per subgroup on normal-deviate axes.",
         lambda: figs.det_curves(reports()[0].det)),
        ("scores", "Genuine and imposter scores by subgroup",
         "Distributions of genuine (solid) and imposter (hatched) similarity scores per subgroup.",
         lambda: figs.score_violins(reports()[0].scores)),
        ("fpr-inflation", "FPR inflation at a global threshold",
         "Actual over intended FPR per subgroup when one global threshold is used (1 = as intended).",
         lambda: figs.fpr_inflation(reports()[0].fpr_at_global)),
        ("rank1", "Rank-1 confusion between subgroups",
         "For each probe image whose nearest neighbour (cosine) is another identity: the share of those errors "
         "falling in each subgroup.", lambda: figs.rank1_heatmap(reports()[1])),
    )
    for slug, title, what, make in figures:
        if slug == "rank1" and not with_rank1:
            continue  # a pairs table has no embeddings, so no nearest-neighbour search
        pub.figure(f"fig-verification-{slug}-{model}", title=f"{title}, {subject}",
                   caption=f"{what} {pairs_text}", alt=f"{title} for {subject}.", page=page,
                   provenance=prov, make=make)
