"""Results section "over training draws": does each conclusion survive another training seed?

One training run is one draw: another seed gives another model, and a verdict such as "this
explanation method finds the shortcut" can flip with it. With ``replicates: R`` the fair and the
biased model are trained R times (training seeds ``seed, seed+1, ...``; replicate 0 is the pair
the other pages explain in full). For every replicate and method, the share of attribution on
the corner mark is compared between the two models on **every** evaluation image that shows the
mark (a few hundred), not on a sample: a paired sign-flip permutation test, Holm-corrected across
the methods of the replicate. The maps themselves are not kept (only each image's region shares),
so the cost is the explainers' and the cache stays small.

The section also reports each replicate's accuracies by skin-tone band and by cue agreement, so
that the README and the pages can quote ranges that hold over training draws, and states the
power of the test at the n used.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from generator.pipeline.attribution_stages import _framework, shares_key, shares_stage
from generator.pipeline.cache import code_hash
from generator.pipeline.executor import MapFeed, chunk_tasks, uses_workers
from generator.pipeline.graph import SHARES_CODE
from generator.pipeline.plan import notify
from generator.pipeline.progress import progress_bar
from generator.pipeline.stages import TrainedModel
from generator.pipeline.state import Run

__all__ = ["REPLICATE_N_PERMUTATIONS", "ReplicatePair", "detectable_effect", "replicate_results", "verdicts"]

REPLICATE_N_PERMUTATIONS = 10000
LEVEL, POWER = 0.05, 0.8


@dataclass(frozen=True)
class ReplicatePair:
    """The fair and the biased model of one training draw, with their twins (for Keras-only methods)."""

    replicate: int
    fair: TrainedModel
    biased: TrainedModel
    twins: dict[str, Path | None]


def detectable_effect(n: int, m: int, level: float = LEVEL, power: float = POWER) -> float:
    """Smallest standardised mean difference ``d = mean / sd`` of paired differences that a one-sided test
    detects with probability ``power`` at the strictest Holm level ``level / m``, with ``n`` pairs
    (normal approximation: ``d = (z_{1 - level/m} + z_power) / sqrt(n)``)."""
    if n < 2:
        return float("nan")
    return float((sps.norm.ppf(1 - level / max(m, 1)) + sps.norm.ppf(power)) / np.sqrt(n))


def verdicts(summary: pd.DataFrame) -> dict[str, list[str]]:
    """Method titles by how many replicates detect the shortcut: ``all``, ``some`` and ``none``."""
    out: dict[str, list[str]] = {"all": [], "some": [], "none": []}
    for row in summary.to_dict("records"):
        if row["tested"] == 0:
            continue
        kind = "all" if row["detected"] == row["tested"] else "none" if row["detected"] == 0 else "some"
        out[kind].append(str(row["title"]))
    return out


def replicate_results(run: Run, pairs: list[ReplicatePair]) -> dict[str, Any]:
    """Register the replicate tables and figure; return the facts the pages and the deck state in words."""
    faces, config = run.faces, run.config
    if not pairs or faces.masks is None or "cue" not in faces.table:
        return {}
    evaluation = faces.evaluation
    rows = evaluation[faces.table["cue"].to_numpy()[evaluation].astype(bool)]
    methods = list(config.attribution.repeated_methods)
    if not methods:
        return {}
    titles = run.explanations.titles if run.explanations is not None else {m: m for m in methods}
    left_out = [titles.get(m, m) for m in config.attribution.methods if m not in methods]
    params = _parameters(run, methods, titles)
    prov = {**run.provenance, "replicates": [(p.fair.key, p.biased.key) for p in pairs], "rows": len(rows),
            "attribution": config.attribution.model_dump(mode="json"), "permutations": REPLICATE_N_PERMUTATIONS,
            "code": code_hash(*SHARES_CODE, "generator.analysis.compare", "generator.pipeline.results_replicates")}

    @cache
    def tests() -> pd.DataFrame:
        return _tests(run, pairs, rows, methods, titles)

    table = run.publisher.table(
        "tab-analysis-replicates", title="The shortcut test in every training draw",
        caption=f"For each training draw (replicate r: both models trained with seed {config.seed} + r) and method: "
                f"share of attribution on the corner mark for the fair and the biased model on all {len(rows)} "
                "evaluation images that show the mark (each model explains its predicted class), paired difference "
                "with a 95% percentile-bootstrap interval over images (2000 resamples), one-sided paired sign-flip "
                f"permutation test ({REPLICATE_N_PERMUTATIONS} sign flips), Holm-corrected across the methods of the "
                "draw; 'detected' means corrected p < 0.05. 'd' is the mean paired difference over its standard "
                "deviation; 'min_detectable' is the difference (share points) the test finds with 80% power at the "
                "strictest Holm level." + params,
        page="analysis.md", provenance=prov, make=tests)
    summary = run.publisher.table(
        "tab-analysis-replicates-summary", title="Which methods find the shortcut in every draw",
        caption=f"Per method: in how many of the {len(pairs)} training draws the shortcut test detects the corner "
                "mark (Holm-corrected p < 0.05, see the table above), and the smallest and largest difference in "
                "attribution share on it (biased minus fair, share points) over the draws.",
        page="analysis.md", provenance=prov, make=lambda: _summary(tests(), titles, methods))
    accuracy = run.publisher.table(
        "tab-models-replicates", title="Accuracy in every training draw",
        caption=f"Evaluation accuracy of the fair and the biased model in each training draw (seed {config.seed} + r), "
                "per skin-tone band and by whether the corner mark agrees with the label (all evaluation images).",
        page="models.md", provenance={**run.provenance, "replicates": prov["replicates"]},
        make=lambda: _accuracies(run, pairs))
    from generator.figures.analysis import replicate_detection

    run.publisher.figure(
        "fig-analysis-replicates", title="The shortcut test over training draws",
        caption=f"Per method, the biased-minus-fair difference in attribution share on the corner mark in each of "
                f"the {len(pairs)} training draws (markers side by side), with 95% bootstrap intervals over the "
                f"{len(rows)} evaluation images showing the mark; filled: detected (Holm-corrected paired "
                "permutation p < 0.05), open: not detected." + params,
        alt="Dot plot of the difference in attribution on the corner mark per method, one marker per training draw.",
        page="analysis.md", provenance=prov,
        make=lambda: replicate_detection(table.frame, method_labels=titles, order=methods))
    frame = summary.frame
    n_values = table.frame["n"].dropna()
    return {"replicates": len(pairs), "n_images": int(len(rows)), "verdicts": verdicts(frame),
            "n_min": int(n_values.min()) if len(n_values) else 0,
            "detectable_d": detectable_effect(int(n_values.min()) if len(n_values) else 0, len(methods)),
            "accuracy": _accuracy_ranges(accuracy.frame), "seeds": [config.seed + p.replicate for p in pairs],
            "left_out": left_out}


def _parameters(run: Run, methods: list[str], titles: dict[str, str]) -> str:
    """The methods' parameters for a caption: those of the explanation section's map sets (the same settings)."""
    if run.explanations is None or not run.models:
        return ""
    first = run.models[0].name
    stated = [f"{titles.get(m, m)}: {run.explanations.maps[(first, m)].caption}" for m in methods
              if (first, m) in run.explanations.maps and run.explanations.maps[(first, m)].caption]
    return " Parameters: " + "; ".join(stated) + "." if stated else ""


def _tests(run: Run, pairs: list[ReplicatePair], rows: np.ndarray, methods: list[str],
           titles: dict[str, str]) -> pd.DataFrame:
    frames = []
    feed = _feed(run, pairs, rows, methods)
    try:
        with progress_bar(len(pairs) * 2 * len(methods), f"shortcut test, {len(pairs)} draws x {len(rows)} images",
                          unit="map set") as bar:
            for pair in pairs:
                shares = []
                for trained in (pair.fair, pair.biased):
                    targets = _targets(run, trained, rows)
                    for method in methods:
                        found = shares_stage(run.cache, run.config, run.faces, trained, rows, targets, method,
                                             pair.twins.get(trained.name), feed)
                        bar.update(1)
                        if found is not None:
                            shares.append(found.assign(model=trained.config.name, method=method))
                frames += _compared(run, pair, shares, titles)
    finally:
        if feed is not None:
            feed.close()
    table = pd.concat(frames, ignore_index=True)
    table["d"] = table["difference"] / table["sd"]
    first = ["replicate", "seed", "method"]
    return table[first + [c for c in table.columns if c not in first]]


def _feed(run: Run, pairs: list[ReplicatePair], rows: np.ndarray, methods: list[str]) -> MapFeed | None:
    """Worker tasks for every shares entry still to compute (none without workers or Ray)."""
    config = run.config
    if not uses_workers(config.execution):
        return None
    tasks = []
    for pair in pairs:
        for trained in (pair.fair, pair.biased):
            targets, twin = _targets(run, trained, rows), pair.twins.get(trained.name)
            for method in methods:
                framework, skipped = _framework(method, trained, twin)
                key = shares_key(run.cache, config, run.faces, trained, rows, targets, method, twin)
                if not skipped and not run.cache.is_done("shares", key):
                    tasks += chunk_tasks(key, config, trained, framework, twin, method,
                                         dict(config.attribution.params.get(method, {})), run.faces.images[rows],
                                         targets)
    if not tasks:
        return None
    executor = run.executor()
    notify(f"shortcut test over training draws: {len(tasks)} tasks {executor.describe()}")
    return MapFeed(executor, tasks)


def _compared(run: Run, pair: ReplicatePair, shares: list[pd.DataFrame], titles: dict[str, str]) -> list[pd.DataFrame]:
    """The shortcut test of one training draw (empty when no method ran)."""
    from generator.analysis.compare import compare_models_on_region

    if not shares:
        return []
    long = pd.concat(shares, ignore_index=True)
    compared = compare_models_on_region(long, region="cue", model_a=pair.fair.config.name,
                                        model_b=pair.biased.config.name, seed=run.config.seed,
                                        n_permutations=REPLICATE_N_PERMUTATIONS, method_labels=titles,
                                        region_label="corner mark")
    compared = compared.merge(_paired_spread(long, pair), on="method", how="left")
    m = int(compared["p_value"].notna().sum())
    compared["min_detectable"] = [detectable_effect(int(n), m) * sd if n >= 2 else np.nan
                                  for n, sd in zip(compared["n"], compared["sd"])]
    return [compared.drop(columns=["sentence", "region"]).assign(replicate=pair.replicate,
                                                                 seed=run.config.seed + pair.replicate)]


def _paired_spread(long: pd.DataFrame, pair: ReplicatePair) -> pd.DataFrame:
    """Per method: the standard deviation of the paired (biased - fair) cue shares."""
    cue = long[long["region"] == "cue"].pivot_table(index=["method", "image_id"], columns="model", values="share")
    diff = (cue[pair.biased.config.name] - cue[pair.fair.config.name]).dropna()
    return diff.groupby(level="method").std(ddof=1).rename("sd").reset_index()


def _targets(run: Run, trained: TrainedModel, rows: np.ndarray) -> np.ndarray:
    table = run.predictions_of(trained.name).table.set_index("image_id")["pred"]
    return table.loc[run.faces.table["image_id"].to_numpy()[rows]].to_numpy().astype(np.int64)


def _summary(tests: pd.DataFrame, titles: dict[str, str], methods: list[str]) -> pd.DataFrame:
    grouped = tests.groupby("method", sort=False)
    out = pd.DataFrame({
        "tested": grouped["p_holm"].count(), "detected": grouped["detected"].sum().astype(int),
        "difference_min": grouped["difference"].min(), "difference_max": grouped["difference"].max(),
        "n": grouped["n"].min()}).reindex(methods)
    out.insert(0, "title", [titles.get(m, m) for m in out.index])
    out["tested"] = out["tested"].fillna(0).astype(int)
    out["detected"] = out["detected"].fillna(0).astype(int)
    return out.rename_axis("method").reset_index()


def _accuracies(run: Run, pairs: list[ReplicatePair]) -> pd.DataFrame:
    table = run.faces.table.iloc[run.faces.evaluation]
    agrees = np.where(table["cue"].astype(bool) == table["label"].astype(bool), "cue agrees with label",
                      "cue contradicts label")
    records = []
    for pair in pairs:
        for trained in (pair.fair, pair.biased):
            pred = run.predictions_of(trained.name).table.set_index("image_id")["pred"]
            correct = pred.loc[table["image_id"]].to_numpy() == table["label"].to_numpy()
            row = {"replicate": pair.replicate, "seed": run.config.seed + pair.replicate,
                   "model": trained.config.name, "all": float(correct.mean())}
            for values in (table["skin_tone"].to_numpy(), agrees):
                for group in sorted(set(values)):
                    row[str(group)] = float(correct[values == group].mean())
            records.append(row)
    return pd.DataFrame(records)


def _accuracy_ranges(frame: pd.DataFrame) -> dict[str, dict[str, tuple[float, float]]]:
    """Per model and column: (min, max) over replicates."""
    groups = [c for c in frame.columns if c not in ("replicate", "seed", "model")]
    return {model: {g: (float(rows[g].min()), float(rows[g].max())) for g in groups}
            for model, rows in frame.groupby("model", sort=False)}
