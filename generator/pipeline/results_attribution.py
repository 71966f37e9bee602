"""Results section "explanations": maps, galleries, evaluation, sanity checks, agreement."""
from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from generator.numerics import to_uint8
from generator.pipeline.attribution_stages import (
    MapSet,
    attribution_key,
    attribution_stage,
    group_by,
    select_stage,
)
from generator.pipeline.cache import code_hash
from generator.pipeline.evaluation_stage import evaluated, evaluation_key, submit_evaluation
from generator.pipeline.executor import ChunkTask, MapFeed, chunk_tasks, uses_workers
from generator.pipeline.graph import stage_key
from generator.pipeline.plan import (SHARED_PASSES, MapSetPlan, Plan, calibrate, map_set_seconds, notify,
                                     sanity_seconds)
from generator.pipeline.progress import progress_bar
from generator.pipeline.state import Run

__all__ = ["AGREEMENT_PAIRS", "CRITERIA", "Explanations", "attribution_results"]

# Methods present in both libraries; Captum IG is also run with the trapezoid rule for a like-for-like check.
AGREEMENT_PAIRS = (
    ("captum.saliency", "xplique.saliency"),
    ("captum.input_x_gradient", "xplique.gradient_input"),
    ("captum.integrated_gradients", "xplique.integrated_gradients"),
    ("captum.smoothgrad", "xplique.smoothgrad"),
    ("captum.occlusion", "xplique.occlusion"),
    ("captum.gradcam", "xplique.gradcam"),
)
#: Map sets whose evaluation may be in the workers' hands while the build goes on with the next maps.
EVALUATION_LAG = 2
# Ranking criteria and their direction.
CRITERIA = {"insertion_auc": "higher", "deletion_auc": "lower", "mufidelity": "higher", "infidelity": "lower",
            "max_sensitivity": "lower"}
METRICS = ("deletion_auc", "insertion_auc", "mufidelity", "infidelity", "max_sensitivity", "sparseness",
           "complexity", "share_face", "share_background", "share_cue", "pointing_mouth")


@dataclass
class Explanations:
    """What the explanation section produced, for the pages and the deck."""

    chosen: pd.DataFrame
    maps: dict[tuple[str, str], MapSet] = field(default_factory=dict)
    per_sample: pd.DataFrame = field(default_factory=pd.DataFrame)
    skipped: pd.DataFrame = field(default_factory=pd.DataFrame)
    titles: dict[str, str] = field(default_factory=dict)


def attribution_results(run: Run) -> Explanations:
    """Compute (or load) every map and its evaluation, and register figures and tables."""
    from generator.attribution.registry import REGISTRY

    config = run.config
    first = run.models[0].name
    chosen = select_stage(config, run.faces, run.predictions[first].table)
    out = Explanations(chosen, titles={m: f"{REGISTRY[m].title} ({REGISTRY[m].library.capitalize()})"
                                       for m in config.attribution.methods})
    evaluations, skipped = [], []
    plan = _plan(run, chosen)
    if plan.to_compute:
        notify(plan.summary())
    tasks = _tasks(run, chosen, plan) if uses_workers(config.execution) else []
    executor = run.executor() if uses_workers(config.execution) and plan.to_compute else None
    feed = MapFeed(executor, tasks) if executor is not None and tasks else None
    if executor is not None:
        notify(f"  maps: {len(tasks)} tasks, their evaluation: {len(plan.to_compute)} map sets, {executor.describe()}")
    items = {(m.model, m.method): m for m in plan.map_sets}
    # A map set's evaluation is sent to the workers when its maps are in, and collected EVALUATION_LAG map sets
    # later, so that the workers compute it beside the next maps while the build writes and scores them.
    waiting: deque[tuple[Any, ...]] = deque()
    clock = [time.perf_counter()]

    def collect(bar: Any) -> None:
        item, finish, model, method, counted = waiting.popleft()
        if finish is not None:
            with run.timed("evaluation metrics"):
                evaluations.append(finish().assign(model=model, method=method))
        if not item.cached:
            bar.update(len(chosen) - counted[0])
            now = time.perf_counter()
            plan.record(item, now - clock[0])
            clock[0] = now
            bar.set_postfix_str(plan.eta())

    try:
        with progress_bar(len(chosen) * len(plan.to_compute), "explain + evaluate", unit="image") as bar:
            for trained in run.models:
                targets = _targets(run, trained.name, chosen)
                twin = run.twins.get(trained.name, {}).get("path")
                for method in config.attribution.methods:
                    item, counted = items[(trained.name, method)], [0]

                    def advance(n: int, counted: list[int] = counted, item: MapSetPlan = item) -> None:
                        counted[0] += n
                        if not item.cached:  # the ETA moves with every chunk of images, not per map set only
                            bar.set_postfix_str(plan.eta(item, counted[0] / len(chosen),
                                                         time.perf_counter() - clock[0]), refresh=False)
                        bar.update(n)

                    with run.timed("maps"):
                        maps = attribution_stage(run.cache, config, run.faces, trained, chosen, targets, method,
                                                 twin, progress=advance, feed=feed)
                    out.maps[(trained.name, method)] = maps
                    reason = maps.skipped or _invalid(maps)
                    finish = None
                    if reason:
                        skipped.append({"model": trained.name, "method": method, "reason": reason})
                    else:
                        with run.timed("evaluation metrics"):
                            finish = submit_evaluation(run.cache, config, run.faces, trained, chosen, targets, maps,
                                                       twin, executor)
                    waiting.append((item, finish, trained.name, method, counted))
                    if item.cached:
                        clock[0] = time.perf_counter()
                    while len(waiting) > (EVALUATION_LAG if executor is not None else 0):
                        collect(bar)
            while waiting:
                collect(bar)
    finally:
        if feed is not None:
            feed.close()
    groups = chosen[["image_id", "reason", *group_by(config, run.faces)]]
    out.per_sample = pd.concat(evaluations, ignore_index=True).merge(groups, on="image_id", how="left")
    out.skipped = pd.DataFrame(skipped, columns=["model", "method", "reason"])
    _publish(run, out)
    return out


def _plan(run: Run, chosen: pd.DataFrame) -> Plan:
    """What the loop above will compute, with a duration calibrated on each model that has work."""
    from generator.pipeline.attribution_stages import _framework
    from generator.pipeline.evaluation_stage import SENSITIVITY_IMAGES
    from generator.pipeline.stages import kept_handle

    config, cache = run.config, run.cache
    methods = list(config.attribution.methods)
    steps, size = config.attribution.deletion_steps, int(run.faces.images.shape[1])
    n_evaluated = int(evaluated(chosen).sum())
    plan = Plan(len(chosen), [m.name for m in run.models], methods, steps, evaluation_images=n_evaluated)
    share = min(SENSITIVITY_IMAGES, n_evaluated) / max(n_evaluated, 1)
    images = run.faces.images[chosen["row"].to_numpy()]
    for trained in run.models:
        targets = _targets(run, trained.name, chosen)
        twin = run.twins.get(trained.name, {}).get("path")
        todo = []
        for method in methods:
            key = attribution_key(cache, config, run.faces, trained, chosen, targets, method, twin)
            done = cache.is_done("attribution", key) and (
                cache.is_done("evaluation", evaluation_key(cache, config, key, chosen)) or not _evaluated(cache, key))
            skipped = bool(_framework(method, trained, twin)[1])
            item = MapSetPlan(trained.name, method, done or skipped, 0.0, skipped=skipped)
            plan.map_sets.append(item)
            if not item.cached:
                todo.append(item)
        if not todo:
            continue
        run.publisher.flush()  # the timing below must not share the CPU with the background figure process
        forward, gradient = calibrate(kept_handle(config, trained, trained.framework), images, targets)
        plan.calibration[trained.name] = (forward, gradient)
        for item in todo:
            item.seconds = map_set_seconds(item.method, dict(config.attribution.params.get(item.method, {})), size,
                                           images=len(chosen), evaluated=n_evaluated, steps=steps,
                                           sensitivity_share=share, forward=forward, gradient=gradient)
        plan.shared_seconds[trained.name] = n_evaluated * SHARED_PASSES * forward
    sanity = _sanity_plan(run, chosen)
    if sanity is not None and not cache.is_done("sanity", sanity[3]):
        from generator.evaluation.sanity import parameterised_layers

        trained, methods, count, _ = sanity
        handle = kept_handle(config, trained, trained.framework)
        forward, gradient = plan.calibration.get(trained.name) or calibrate(handle, images, _targets(
            run, trained.name, chosen))
        layers = len(parameterised_layers(handle.model))
        plan.sanity = (sanity_seconds(layers, methods, dict(config.attribution.params), size, images=count,
                                      forward=forward, gradient=gradient), layers, len(methods), count)
    return plan


def _tasks(run: Run, chosen: pd.DataFrame, plan: Plan) -> list[ChunkTask]:
    """The worker tasks of every map set the loop will compute, in its order, each from its resume point."""
    from generator.pipeline.attribution_stages import _framework, resume_point

    config, cache = run.config, run.cache
    images = run.faces.images[chosen["row"].to_numpy()]
    todo = {(m.model, m.method) for m in plan.map_sets if not m.cached}
    tasks: list[ChunkTask] = []
    for trained in run.models:
        targets = _targets(run, trained.name, chosen)
        twin = run.twins.get(trained.name, {}).get("path")
        for method in config.attribution.methods:
            if (trained.name, method) not in todo:
                continue
            key = attribution_key(cache, config, run.faces, trained, chosen, targets, method, twin)
            framework, skipped = _framework(method, trained, twin)
            if skipped or cache.is_done("attribution", key):
                continue
            start = resume_point(cache.partial("attribution", key), len(chosen))
            tasks += chunk_tasks(key, config, trained, framework, twin, method,
                                 dict(config.attribution.params.get(method, {})), images, targets, start)
    return tasks


def _evaluated(cache, key: str) -> bool:
    """Whether a cached map set is evaluated at all (maps that were skipped or invalid are not)."""
    try:
        meta = json.loads((cache.path("attribution", key) / "meta.json").read_text())
    except (OSError, ValueError):
        return True
    finite = meta.get("check", {}).get("finite", True)
    return not meta.get("skipped") and finite and (cache.path("attribution", key) / "maps.npy").is_file()


def _groups_text(run: Run) -> str:
    return " x ".join(run.vocabulary.name(g) for g in group_by(run.config, run.faces))


def _targets(run: Run, model: str, chosen: pd.DataFrame) -> np.ndarray:
    """Each chosen image's predicted class under ``model``: the class whose evidence is explained."""
    predictions = run.predictions[model].table.set_index("image_id")["pred"]
    return predictions.loc[chosen["image_id"]].to_numpy().astype(np.int64)


def _invalid(maps: MapSet) -> str:
    check = maps.check
    if check.get("finite", True):
        return ""
    return f"maps hold non-finite values (NaN: {check.get('n_nan')}, inf: {check.get('n_inf')}); not plotted"


# ----------------------------------------------------------------------------- publishing


def _publish(run: Run, out: Explanations) -> None:
    prov = {**run.provenance, "attribution": run.config.attribution.model_dump(mode="json"),
            "maps": {f"{m.model}/{m.method}": m.key for m in out.maps.values()},
            "code": code_hash("generator.attribution", "generator.evaluation")}
    pub = run.publisher
    pub.table("tab-attribution-images", title="Images explained",
              caption=f"The evaluation images explained for every model and method: per {_groups_text(run)} "
                      f"{run.config.attribution.per_group} chosen at random (seed {run.config.seed}), plus per group "
                      "up to one misclassified, the least confident and the most confident image (first model)."
                      + ("" if evaluated(out.chosen).all() else
                         f" 'evaluated': in the stratified subsample of {int(evaluated(out.chosen).sum())} images "
                         "that the expensive evaluation metrics cover (attribution.budget.evaluation_images)."),
              page="attribution.md", provenance=prov,
              make=lambda: out.chosen.drop(columns=["row"]).loc[:, lambda f: ~f.columns.str.startswith("Unnamed")])
    pub.table("tab-attribution-skipped", title="Skipped method and model pairs",
              caption="Pairs that were not computed or not plotted, with the reason.", page="attribution.md",
              provenance={**prov, "skipped": out.skipped.to_dict("records")}, make=lambda: out.skipped)
    with run.timed("galleries and evaluation tables"):
        _galleries(run, out, prov)
        _evaluation_tables(run, out, prov)
    with run.timed("sanity checks"):
        _sanity(run, out, prov)
    with run.timed("cross-library agreement"):
        _agreement(run, out, prov)
    with run.timed("completeness and method galleries"):
        _completeness(run, out, prov)
        _method_galleries(run, out, prov)


def _gallery_rows(run: Run, chosen: pd.DataFrame) -> np.ndarray:
    """One stratified image per group, in group order (indices into ``chosen``)."""
    stratified = chosen[chosen["reason"] == "stratified"]
    first = stratified.groupby(list(group_by(run.config, run.faces)), sort=True).head(1)
    return first.index.to_numpy()


def _galleries(run: Run, out: Explanations, prov: dict[str, Any]) -> None:
    from generator.attribution.registry import REGISTRY
    from generator.figures.attribution import gallery

    rows = _gallery_rows(run, out.chosen)
    images = run.faces.images[out.chosen["row"].to_numpy()[rows]]
    groups = [" / ".join(str(out.chosen.loc[r, c]) for c in group_by(run.config, run.faces)) for r in rows]
    for trained in run.models:
        labels = _row_labels(run, trained.name, out.chosen.iloc[rows], groups)
        for library in ("captum", "xplique"):
            methods = [m for m in run.config.attribution.methods if m.startswith(library + ".")
                       and out.maps[(trained.name, m)].maps is not None and not _invalid(out.maps[(trained.name, m)])]
            if not methods:
                continue
            maps = {m: np.asarray(out.maps[(trained.name, m)].maps)[rows] for m in methods}
            params = "; ".join(f"{out.titles[m]}: {out.maps[(trained.name, m)].caption}" for m in methods)
            run.publisher.figure(
                f"fig-gallery-{trained.name}-{library}", title=f"{library.capitalize()} maps, model '{trained.name}'",
                caption=f"Attribution maps of model '{trained.name}' for its predicted class, one evaluation image per "
                        f"{_groups_text(run)} (rows), {library.capitalize()} methods (columns). Signed maps on a "
                        "diverging scale (red positive, blue negative, white zero), absolute maps on a sequential "
                        "scale; each map divided by its 99th percentile of |values|. Each row names the group"
                        f"{', the true label and the prediction of model ' + repr(trained.name) + ' with its confidence' if run.faces.labelled else ''}"
                        "; 'all zero' marks a map without any attribution (for Grad-CAM: the gradient-weighted feature "
                        "maps sum to a negative value at every pixel, which its ReLU sets to zero). Parameters: " + params,
                alt=f"Grid of attribution maps from {library} methods for model {trained.name}.",
                page="attribution.md", provenance={**prov, "model": trained.name, "methods": methods},
                make=lambda maps=maps, methods=methods, labels=labels: gallery(
                    images, maps, {m: REGISTRY[m].signed for m in methods}, labels,
                    titles={m: REGISTRY[m].title for m in methods}))


def _row_labels(run: Run, model: str, chosen: pd.DataFrame, groups: list[str]) -> list[str]:
    """Per gallery row: the group, and (labelled data) the true label, the model's prediction and its confidence."""
    if not run.faces.labelled:
        return groups
    names = list(run.faces.label_names)
    predicted = run.predictions[model].table.set_index("image_id")
    labels = []
    for group, (_, row) in zip(groups, chosen.iterrows()):
        hit = predicted.loc[row["image_id"]]
        pred = int(hit["pred"])
        labels.append(f"{group}\ntrue: {names[int(row['label'])]}\npred: {names[pred]} ({float(hit['confidence']):.2f})")
    return labels


def _evaluation_tables(run: Run, out: Explanations, prov: dict[str, Any]) -> None:
    from generator.evaluation.summary import rank_methods, summarise
    from generator.figures.attribution import evaluation_dots

    pub, seed = run.publisher, run.config.seed
    per_sample = out.per_sample
    by_group = list(group_by(run.config, run.faces)[:1])
    group_name = run.vocabulary.name(by_group[0])
    pub.table("tab-evaluation-per-sample", title="Per-sample evaluation scores",
              caption="Every quality score of every map: one row per image, model and method.", page="evaluation.md",
              provenance=prov, make=lambda: per_sample)
    n_all, n_evaluated = len(out.chosen), int(evaluated(out.chosen).sum())
    budget = ("" if n_evaluated == n_all else
              f" Deletion and insertion AUC, MuFidelity, infidelity and max-sensitivity cover a stratified subsample "
              f"of {n_evaluated} of the {n_all} explained images (attribution.budget.evaluation_images; column "
              "'evaluated' of the images table), the other scores all of them; n gives the images per score.")
    summary = pub.table(
        "tab-evaluation-summary", title="Evaluation of attribution methods",
        caption="Mean of each per-sample score per model and method over the explained images, with 95% "
                f"percentile-bootstrap intervals (1000 resamples of images, seed {seed}).{budget}",
        page="evaluation.md", provenance=prov,
        make=lambda: summarise(per_sample, by=["model", "method"], value_cols=list(METRICS), seed=seed))
    pub.table("tab-evaluation-by-group", title=f"Evaluation by {group_name}",
              caption=f"As the evaluation table, split by {group_name}.", page="evaluation.md", provenance=prov,
              make=lambda: summarise(per_sample, by=["model", "method", *by_group], value_cols=list(METRICS),
                                     seed=seed))
    pub.table("tab-evaluation-ranking", title="Ranking of methods",
              caption="Methods ranked per model by their mean rank over the criteria listed in the table "
                      "(faithfulness: insertion and deletion AUC, MuFidelity, infidelity; robustness: "
                      "max-sensitivity where computed). A rank rests only on these criteria; see the sanity checks "
                      "before trusting a highly ranked method.", page="evaluation.md", provenance=prov,
              make=lambda: rank_methods(summary.frame, criteria=CRITERIA, by=["model"]))
    pub.figure("fig-evaluation-summary", title="Evaluation of attribution methods",
               caption=summary.caption, alt="Dot plots of evaluation metrics per method and model.",
               page="evaluation.md", provenance=prov,
               make=lambda: evaluation_dots(summary.frame, metrics=("deletion_auc", "insertion_auc", "mufidelity",
                                                                    *(("share_cue",) if run.faces.synthetic else ())),
                                            method_titles=out.titles,
                                            higher_is_better={"deletion_auc": False, "insertion_auc": True,
                                                              "mufidelity": True, "share_cue": False}))


def _sanity(run: Run, out: Explanations, prov: dict[str, Any]) -> None:
    from generator.figures.attribution import sanity_curves

    found = _sanity_plan(run, out.chosen)
    if found is None:
        return
    trained, methods, count, key = found
    entry = run.cache.get_or_compute("sanity", key, lambda folder: _sanity_table(run, out, trained, methods, count)
                                     .to_csv(folder / "sanity.csv", index=False))
    table = pd.read_csv(entry / "sanity.csv")
    prov = {**prov, "sanity": key}
    run.publisher.table("tab-sanity", title="Sanity check: cascading randomisation",
                        caption=f"Similarity of the maps of model '{trained.name}' to the original maps as its layers "
                                f"are re-initialised from the output back to the input (Adebayo et al., 2018), on "
                                f"{count} images: mean Spearman rank correlation of |maps| with a 95% bootstrap "
                                "interval; 'passes' when it falls below 0.5 after full randomisation.",
                        page="evaluation.md", provenance=prov, make=lambda: _sanity_summary(table))
    run.publisher.figure("fig-sanity", title="Sanity check: cascading randomisation",
                         caption=f"Spearman rank correlation between the maps of model '{trained.name}' and the maps "
                                 "of the same model with its layers cumulatively re-initialised from the output "
                                 f"(left) to the input (right), mean over {count} images with 95% bootstrap bands. A "
                                 "method that explains the model should fall towards 0; dotted line: the 0.5 "
                                 "pass threshold.",
                         alt="Lines of similarity against randomised layer for each method.", page="evaluation.md",
                         provenance=prov, make=lambda: sanity_curves(_sanity_summary(table, keep_steps=True),
                                                                      method_titles=out.titles, threshold=0.5))


def _sanity_plan(run: Run, chosen: pd.DataFrame) -> tuple[Any, list[str], int, str] | None:
    """The sanity check's model, methods, image count and cache key (None when there is none to run)."""
    config = run.config
    trained = next((m for m in run.models if m.framework == "torch"), None)
    methods = [m for m in config.attribution.sanity_methods if m.startswith("captum.")]
    if not methods or trained is None:
        return None
    count = min(config.attribution.sanity_images, len(chosen))
    key = stage_key(run.cache, "sanity", {"methods": methods, "images": chosen["image_id"][:count].tolist(),
                                          "params": {m: config.attribution.params.get(m, {}) for m in methods},
                                          "seed": config.seed}, model=trained.key, faces=run.faces.key)
    return trained, methods, count, key


def _sanity_table(run: Run, out: Explanations, trained, methods: list[str], count: int) -> pd.DataFrame:
    from dataclasses import replace

    from generator.attribution.registry import build_explainer
    from generator.evaluation.sanity import cascading_randomisation
    from generator.pipeline.stages import handle_for

    original = handle_for(run.config, trained)
    model = original.model
    images = run.faces.images[out.chosen["row"].to_numpy()[:count]]
    targets = _targets(run, trained.name, out.chosen.iloc[:count])
    tables = []
    for method in methods:
        params = dict(run.config.attribution.params.get(method, {}))

        def factory(randomised, method=method, params=params):
            handle = replace(original, model=randomised)
            explainer = build_explainer(method, handle, params)
            return lambda x, t: explainer.explain(to_uint8(x), t)

        frame = cascading_randomisation(model, factory, images, targets, seed=run.config.seed)
        tables.append(frame.assign(method=method))
    return pd.concat(tables, ignore_index=True)


def _sanity_summary(table: pd.DataFrame, keep_steps: bool = False) -> pd.DataFrame:
    from generator.evaluation.sanity import sanity_summary

    summary = sanity_summary(table, by=("method",), seed=0)
    if keep_steps:
        return summary
    last = summary.sort_values("step").groupby("method", sort=False).tail(1)
    return last[["method", "layer", "n", "mean", "ci_low", "ci_high", "passes"]].rename(
        columns={"layer": "randomised up to", "mean": "spearman after full randomisation"})


def _agreement(run: Run, out: Explanations, prov: dict[str, Any]) -> None:
    """Cross-library agreement; computed (the matched-rule IG reruns Captum) only when the table is not cached.

    ``prov`` names every map set, the models, the attribution settings and the code, all the
    agreement depends on.
    """
    from generator.evaluation.agreement import map_agreement
    from generator.evaluation.summary import summarise

    def present(model: str, method: str) -> bool:
        found = out.maps.get((model, method))
        return found is not None and found.maps is not None

    pairs = [(trained.name, captum, xplique) for trained in run.models for captum, xplique in AGREEMENT_PAIRS
             if present(trained.name, captum) and present(trained.name, xplique)]
    matched = [t for t in run.models if t.framework == "torch" and present(t.name, "xplique.integrated_gradients")]
    if not pairs and not matched:
        return

    def per_sample() -> pd.DataFrame:
        rows = [map_agreement(np.asarray(out.maps[(model, captum)].maps), np.asarray(out.maps[(model, xplique)].maps))
                .assign(model=model, method=f"{captum} vs {xplique}") for model, captum, xplique in pairs]
        return pd.concat(rows + _matched_ig_agreement(run, out, matched), ignore_index=True)

    run.publisher.table("tab-agreement", title="Cross-library agreement",
                        caption="Agreement between the Captum and Xplique maps of the same method on the same images "
                                "and model: Spearman and Pearson correlation, cosine similarity and the overlap of the "
                                "top 10% pixels of |maps|; mean with 95% bootstrap intervals. Differences in defaults "
                                "(integration rule, occlusion averaging vs summing, SmoothGrad absolute values) are "
                                "listed on the methods page.", page="evaluation.md", provenance=prov,
                        make=lambda: summarise(per_sample(), by=["model", "method"],
                                               value_cols=["spearman", "pearson", "cosine", "topk_intersection"],
                                               seed=run.config.seed))


IG_METHODS = ("captum.integrated_gradients", "xplique.integrated_gradients")


def _matched_ig_agreement(run: Run, out: Explanations, models: list[Any]) -> list[pd.DataFrame]:
    """Captum IG recomputed with Xplique's rule (trapezoid, scaled by n/(n-1)) against Xplique IG, per model
    of ``models`` (PyTorch models with Xplique IG maps).

    With the same integration rule the two libraries should agree to float32 precision;
    the default comparison above mixes Gauss-Legendre (Captum) and trapezoid (Xplique).
    """
    from generator.attribution.registry import build_explainer
    from generator.evaluation.agreement import map_agreement
    from generator.pipeline.stages import kept_handle

    method = "xplique.integrated_gradients"
    frames = []
    for trained in models:
        xplique = out.maps[(trained.name, method)]
        params = {**_defaults(method), **run.config.attribution.params.get(method, {})}
        steps = int(params["steps"])
        handle = kept_handle(run.config, trained)
        explainer = build_explainer("captum.integrated_gradients", handle,
                                    {"steps": steps, "rule": "riemann_trapezoid", "baseline": params["baseline"]})
        images = run.faces.images[out.chosen["row"].to_numpy()]
        captum = explainer.explain(images, _targets(run, trained.name, out.chosen)) * steps / (steps - 1)
        frames.append(map_agreement(captum, np.asarray(xplique.maps), absolute=False).assign(
            model=trained.name, method="captum.integrated_gradients (trapezoid x n/(n-1)) vs "
                                       "xplique.integrated_gradients"))
    return frames


#: Output differences (logits) below which the completeness gap is not divided by them.
RELATIVE_GAP_FLOOR = 0.1


def _completeness(run: Run, out: Explanations, prov: dict[str, Any]) -> None:
    """IG's completeness gap per image: sum of attributions minus (F(x) - F(baseline)), on the logit."""
    pairs = [(trained, method) for trained in run.models for method in IG_METHODS
             if (found := out.maps.get((trained.name, method))) is not None and found.maps is not None]
    if not pairs:
        return

    def table() -> pd.DataFrame:
        from generator.evaluation.agreement import completeness_table
        from generator.pipeline.stages import kept_handle

        images = run.faces.images[out.chosen["row"].to_numpy()]
        rows = []
        for trained, method in pairs:
            params = {**_defaults(method), **run.config.attribution.params.get(method, {})}
            baseline = np.zeros_like(images) if params.get("baseline", "black") == "black" else np.full_like(images, 127)
            gaps = completeness_table(kept_handle(run.config, trained, trained.framework).logits, images, baseline,
                                      _targets(run, trained.name, out.chosen), out.maps[(trained.name, method)].maps,
                                      min_difference=RELATIVE_GAP_FLOOR)
            rows.append(pd.concat([pd.DataFrame({"model": trained.name, "method": method,
                                                 "image_id": out.chosen["image_id"].to_numpy()}), gaps], axis=1))
        return pd.concat(rows, ignore_index=True)

    run.publisher.table("tab-ig-completeness", title="Integrated Gradients: completeness gap",
                        caption="Per image: the sum of the Integrated Gradients attributions, the difference of the "
                                "explained logit between the image and the baseline, and the gap between the two, in "
                                "logits, and relative to the output difference where that is at least "
                                f"{RELATIVE_GAP_FLOOR} logit (empty below: a ratio to a near-zero difference means "
                                "nothing). IG promises a zero gap; what remains is "
                                "integration error (steps and rule: Gauss-Legendre for Captum by default, trapezoid "
                                "for Xplique).", page="evaluation.md", provenance=prov, make=table)


def _defaults(method: str) -> dict[str, Any]:
    from generator.attribution.registry import REGISTRY

    return dict(REGISTRY[method].defaults)


def _method_galleries(run: Run, out: Explanations, prov: dict[str, Any]) -> None:
    """One small gallery per method: a face per group (rows), each model's map (columns)."""
    from generator.attribution.registry import REGISTRY
    from generator.figures.attribution import gallery

    rows = _gallery_rows(run, out.chosen)
    images = run.faces.images[out.chosen["row"].to_numpy()[rows]]
    labels = [" / ".join(str(out.chosen.loc[r, c]) for c in group_by(run.config, run.faces)) for r in rows]
    for method in run.config.attribution.methods:
        found = {m.name: out.maps[(m.name, method)] for m in run.models}
        usable = {name: f for name, f in found.items() if f.maps is not None and not _invalid(f)}
        if not usable:
            continue
        maps = {name: np.asarray(f.maps)[rows] for name, f in usable.items()}
        signed = {name: REGISTRY[method].signed for name in usable}
        caption = next(iter(usable.values())).caption
        run.publisher.figure(
            f"fig-method-{method.replace('.', '-').replace('_', '-')}", title=f"{out.titles[method]} by model",
            caption=f"{out.titles[method]} maps of each model (columns) for its predicted class, one evaluation image "
                    f"per {_groups_text(run)} (rows); each map divided by its 99th percentile of |values|. "
                    f"Parameters: {caption}.",
            alt=f"{out.titles[method]} maps of each model for one face per group.", page=f"methods/{method}.md",
            provenance={**prov, "method": method}, make=lambda maps=maps, signed=signed: gallery(
                images, maps, signed, labels))
