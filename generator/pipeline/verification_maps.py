"""Explaining verification decisions: attribution maps of the face-recognition models' similarity scores.

For each face-recognition model (:mod:`generator.pipeline.face_recognition_stage`) the evaluation
pairs of the verification audit are decided by one global threshold, set for the intended FAR
``verification.face_recognition.explain.far`` on all imposter pairs. Every pair then has one of four
outcomes (:data:`OUTCOMES`): a genuine pair above the threshold is a *match*, below it a *false
non-match*; an imposter pair above it is a *false match*, below it a *correct rejection*. Up to
``explain.pairs`` false matches and correct rejections and ``explain.other_pairs`` matches and false
non-matches of each skin-tone band (a seeded sample) are explained with
``explain.method``: the map of each image of the pair towards the other
(:func:`generator.attribution.verification.explain_pairs`). One pair of each outcome and band, the
one with the median score of its sample, is also explained with every method of
``explain.gallery_methods`` for the gallery.

The result of each model is cached under a key made from the model's training key, the draw's key,
the settings and the code.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from generator.config import Config
from generator.pipeline.cache import Cache
from generator.pipeline.graph import stage_key
from generator.pipeline.progress import progress_bar

__all__ = ["OUTCOMES", "PairMaps", "decided_pairs", "method_params", "sample_sizes", "verification_maps_stage"]

#: The outcomes of a verification decision, in the order the pages show them.
OUTCOMES = ("match", "false non-match", "false match", "correct rejection")


@dataclass(frozen=True)
class PairMaps:
    """The explained pairs of one face-recognition model and their maps.

    ``pairs`` has one row per explained pair: ``p1, p2`` (image ids), ``row_a, row_b`` (rows of the
    face-recognition evaluation table), ``label`` (1 genuine), ``score``, ``subgroup`` (skin-tone band),
    ``outcome`` and ``gallery`` (whether the pair is in the gallery). ``maps`` holds the maps of
    ``method`` for every pair, ``(maps of the a images, maps of the b images)``; ``gallery[method]``
    the same for the gallery pairs, in their order in ``pairs``. ``counts`` gives, per band and
    outcome, the pairs there are and the pairs explained.
    """

    matcher: str
    key: str
    far: float
    threshold: float
    method: str
    pairs: pd.DataFrame
    counts: pd.DataFrame
    maps: tuple[np.ndarray, np.ndarray]
    gallery: dict[str, tuple[np.ndarray, np.ndarray]]
    seconds: float


def decided_pairs(table: pd.DataFrame, embeddings: np.ndarray, config: Config) -> tuple[pd.DataFrame, float]:
    """The verification pairs of one model with the outcome of each at the global threshold, and the threshold.

    The pairs are those of the verification report (:func:`generator.bias.pairs.pairs_from_embeddings`,
    within skin-tone band, the config's seed and imposter count); the threshold is the smallest with at
    most ``explain.far`` of all imposter pairs above it (:func:`generator.bias.verification.threshold_at_far`).
    """
    from generator.bias.pairs import pairs_from_embeddings
    from generator.bias.verification import threshold_at_far

    fr = config.verification.face_recognition
    pairs = pairs_from_embeddings(table, embeddings, subgroup="skin_tone", seed=config.seed,
                                  imposters_per_genuine=fr.imposters_per_genuine)
    genuine = pairs["label"].to_numpy() == 1
    threshold = threshold_at_far(pairs.loc[~genuine, "score"].to_numpy(), fr.explain.far)
    accepted = pairs["score"].to_numpy() >= threshold
    pairs["outcome"] = np.select([genuine & accepted, genuine & ~accepted, ~genuine & accepted],
                                 list(OUTCOMES[:3]), OUTCOMES[3])
    return pairs, threshold


def _sample(pairs: pd.DataFrame, per_cell: int | dict[str, int], seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Up to ``per_cell`` pairs of each band and outcome (seeded; one number, or one per outcome), and the
    counts of the cells."""
    rng = np.random.default_rng([seed, 7])
    sizes = per_cell if isinstance(per_cell, dict) else dict.fromkeys(OUTCOMES, per_cell)
    chosen, counts = [], []
    for (band, outcome), cell in pairs.groupby(["subgroup", "outcome"], sort=True):
        take = np.sort(rng.choice(len(cell), size=min(sizes[outcome], len(cell)), replace=False))
        picked = cell.iloc[take].copy()
        median = float(np.median(picked["score"]))
        picked["gallery"] = False
        picked.iloc[int(np.argmin(np.abs(picked["score"].to_numpy() - median))),
                    picked.columns.get_loc("gallery")] = True
        chosen.append(picked)
        counts.append({"subgroup": band, "outcome": outcome, "pairs": len(cell), "explained": len(picked)})
    frame = pd.concat(chosen, ignore_index=True) if chosen else pairs.head(0).assign(gallery=False)
    order = {o: i for i, o in enumerate(OUTCOMES)}
    frame = frame.sort_values(["subgroup", "outcome"], key=lambda c: c.map(order) if c.name == "outcome" else c,
                              kind="stable").reset_index(drop=True)
    return frame, pd.DataFrame(counts, columns=["subgroup", "outcome", "pairs", "explained"])


def sample_sizes(config: Config) -> dict[str, int]:
    """Pairs explained per band of each outcome: ``explain.pairs`` of the false matches and correct rejections
    (the region tests compare them), ``explain.other_pairs`` of the matches and false non-matches."""
    explain = config.verification.face_recognition.explain
    return {"match": explain.other_pairs, "false non-match": explain.other_pairs, "false match": explain.pairs,
            "correct rejection": explain.pairs}


def method_params(config: Config) -> dict[str, dict]:
    """The parameters of each method of the similarity maps: ``attribution.params``, then ``explain.params``."""
    explain = config.verification.face_recognition.explain
    return {m: {**config.attribution.params.get(m, {}), **explain.params.get(m, {})}
            for m in (explain.method, *explain.gallery_methods)}


def verification_maps_stage(cache: Cache, config: Config, matchers) -> dict[str, PairMaps]:
    """Decide, sample and explain the pairs of every face-recognition model (cached per model)."""
    from generator.pipeline.face_recognition_stage import load_matcher

    explain = config.verification.face_recognition.explain
    table = matchers.table
    rows = pd.Series(np.arange(len(table)), index=table["image_id"].to_numpy())
    params = method_params(config)
    out = {}
    for matcher in matchers.models:
        key = stage_key(cache, "fr-maps", {"explain": explain.model_dump(), "params": params, "seed": config.seed,
                                           "imposters": config.verification.face_recognition.imposters_per_genuine},
                        matcher=matcher.key, faces=matchers.faces_key)

        def compute(folder: Path, matcher=matcher) -> None:
            from generator.attribution.verification import explain_pairs

            start = time.perf_counter()
            pairs, threshold = decided_pairs(table, matcher.embeddings, config)
            chosen, counts = _sample(pairs, sample_sizes(config), config.seed)
            chosen["row_a"] = rows[chosen["p1"]].to_numpy()
            chosen["row_b"] = rows[chosen["p2"]].to_numpy()
            embedder = load_matcher(matcher.path, config)
            images = matchers.images
            shown = chosen[chosen["gallery"]]
            jobs = [(explain.method, chosen), *((m, shown) for m in explain.gallery_methods if m != explain.method)]
            arrays = {}
            with progress_bar(sum(2 * len(p) for _, p in jobs), f"similarity maps {matcher.name}",
                              unit="map") as bar:
                for method, subset in jobs:
                    a, b = explain_pairs(method, embedder, images[subset["row_a"].to_numpy()],
                                         images[subset["row_b"].to_numpy()], params=params[method])
                    arrays[f"{method}|a"], arrays[f"{method}|b"] = a, b
                    bar.update(2 * len(subset))
            np.savez(folder / "maps.npz", **arrays)
            chosen.to_csv(folder / "pairs.csv", index=False)
            counts.to_csv(folder / "counts.csv", index=False)
            (folder / "meta.json").write_text(json.dumps({"threshold": threshold,
                                                          "seconds": time.perf_counter() - start}))

        entry = cache.get_or_compute("fr-maps", key, compute)
        meta = json.loads((entry / "meta.json").read_text())
        pairs = pd.read_csv(entry / "pairs.csv", dtype={"p1": str, "p2": str, "id1": str, "id2": str})
        with np.load(entry / "maps.npz") as found:
            arrays = {name: found[name] for name in found.files}
        main = (arrays[f"{explain.method}|a"], arrays[f"{explain.method}|b"])
        in_gallery = pairs["gallery"].to_numpy()
        gallery = {m: ((main[0][in_gallery], main[1][in_gallery]) if m == explain.method
                       else (arrays[f"{m}|a"], arrays[f"{m}|b"])) for m in explain.gallery_methods}
        out[matcher.name] = PairMaps(matcher.name, key, explain.far, float(meta["threshold"]), explain.method, pairs,
                                     pd.read_csv(entry / "counts.csv"), main, gallery, float(meta["seconds"]))
    return out
