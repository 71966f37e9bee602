"""Results section "where the models look": region shares, fair vs biased, aligned group means.

Everything here works on the maps the explanation section already computed; the
analyses themselves are computed lazily, so a rerun with every figure and table
cached does no work.
"""
from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from generator.ordering import natural_key, natural_sorted
from generator.pipeline.results_attribution import Explanations
from generator.pipeline.state import Run

__all__ = ["HEADLINE_METHODS", "analysis_results", "compared_models"]

HEADLINE_METHODS = ("captum.integrated_gradients", "captum.gradcam")  # group means and difference maps
CAM_METHOD = "captum.gradcam"  # FaceX region scores and high-impact patches
N_PERMUTATIONS = 1000


def compared_models(run: Run) -> tuple[str, str] | None:
    """The (fair, biased) pair: the first models trained on each training split, if both exist."""
    fair = next((m.name for m in run.models if m.config.train_split == "train_fair"), None)
    biased = next((m.name for m in run.models if m.config.train_split == "train_biased"), None)
    return (fair, biased) if fair and biased else None


def analysis_results(run: Run, explained: Explanations) -> None:
    """Register the analysis figures and tables."""
    data = _Data(run, explained)
    prov = {**run.provenance, "maps": sorted(m.key for m in explained.maps.values()), "permutations": N_PERMUTATIONS}
    _group_means(run, data, prov)
    if run.faces.masks is None or not data.located.any():  # no face regions: no landmarks, or none detected
        return
    _region_shares(run, data, prov)
    pair = compared_models(run)
    if pair and run.faces.synthetic:
        _fair_vs_biased(run, data, pair, prov)
    if any((m, CAM_METHOD) in explained.maps for m in data.models):
        _facex(run, data, prov)
        _patches(run, data, prov)


class _Data:
    """Lazily computed inputs shared by the analyses."""

    def __init__(self, run: Run, explained: Explanations) -> None:
        self.run, self.explained = run, explained
        rows = explained.chosen["row"].to_numpy()
        faces = run.faces
        self.images = faces.images[rows]
        self.masks = None if faces.masks is None else faces.masks[rows]
        self.landmarks = None if faces.landmarks is None else faces.landmarks[rows]
        self.located = faces.located[rows]  # the images whose face regions are known
        self.regions = faces.regions
        self.synthetic = faces.synthetic
        self.group = run.vocabulary.primary
        self.meta = explained.chosen[["image_id", *faces.attributes]]
        if "cue" in faces.table:
            self.meta = self.meta.assign(cue=faces.table["cue"].to_numpy()[rows])
        self.models = [m.name for m in run.models]

    def maps(self, model: str, method: str) -> np.ndarray | None:
        found = self.explained.maps.get((model, method))
        return None if found is None or found.maps is None else np.asarray(found.maps)

    @cache
    def shares(self) -> pd.DataFrame:
        """Region shares of every map set, on the images whose regions are known."""
        from generator.analysis.regions import region_share_table

        at = self.located
        meta = self.meta[at].reset_index(drop=True)
        frames = [region_share_table(maps[at], self.masks[at], self.regions, meta.assign(model=model, method=method))
                  for (model, method), found in self.explained.maps.items()
                  if (maps := self.maps(model, method)) is not None]
        return pd.concat(frames, ignore_index=True)

    @property
    def region_source(self) -> str:
        """How the regions were obtained, for captions."""
        if self.synthetic:
            return "exact masks of the synthetic faces"
        return (f"regions placed from five detected landmarks, approximate; {int(self.located.sum())} of "
                f"{len(self.located)} images with a detected face")

    @property
    def landmarked(self) -> bool:
        """Whether the faces have landmarks to align them by (otherwise the crops are taken as aligned)."""
        return self.landmarks is not None

    @cache
    def alignment(self) -> tuple[list, pd.DataFrame]:
        from generator.analysis.alignment import PHOTO_LANDMARKS, alignment_transforms

        template = None if self.synthetic else PHOTO_LANDMARKS
        transforms, report = alignment_transforms(self.landmarks, self.images.shape[1], template=template)
        return transforms, report.assign(image_id=self.meta["image_id"].to_numpy())

    @cache
    def aligned(self, model: str, method: str) -> np.ndarray:
        from generator.analysis.alignment import warp_to_template
        from generator.analysis.group_maps import normalise_maps

        maps = normalise_maps(self.maps(model, method))
        if not self.landmarked:
            return maps
        transforms, _ = self.alignment()
        return warp_to_template(maps, transforms, self.images.shape[1])

    @cache
    def mean_face(self) -> np.ndarray:
        """The mean (aligned) face: the background of the group-mean figures (computed when a figure is drawn,
        not when every figure is cached)."""
        from generator.analysis.alignment import warp_to_template

        if not self.landmarked:
            return self.images.astype(np.float32).mean(axis=0)
        transforms, _ = self.alignment()
        return np.nanmean(warp_to_template(self.images.astype(np.float32), transforms, self.images.shape[1]), axis=0)


def _region_shares(run: Run, data: _Data, prov: dict[str, Any]) -> None:
    from generator.analysis.regions import region_share_summary
    from generator.figures.analysis import region_share_bars

    seed = run.config.seed
    summary = run.publisher.table(
        "tab-analysis-region-shares", title="Attribution share per face region",
        caption=f"Mean share of the absolute attribution falling on each region ({data.region_source}) per model, "
                f"method and {run.vocabulary.name(data.group)}, with 95% percentile-bootstrap intervals over images "
                f"(1000 resamples, seed {seed}). Shares of one image sum to 1.", page="analysis.md",
        provenance=prov, make=lambda: region_share_summary(data.shares(), by=["model", "method", data.group],
                                                           seed=seed))
    for method in HEADLINE_METHODS:
        rows = summary.frame[summary.frame["method"] == method]
        if rows.empty:
            continue
        run.publisher.figure(
            f"fig-analysis-regions-{_slug(method)}", title=f"Where {_title(method)} puts the attribution",
            caption=f"Mean share of the absolute {_title(method)} attribution on each region ({data.region_source}), "
                    f"per model, on {int(data.located.sum())} explained evaluation images; whiskers: 95% bootstrap "
                    "intervals.",
            alt="Bars of attribution share per face region for each model.", page="analysis.md", provenance=prov,
            make=lambda rows=rows: region_share_bars(
                _pooled(data.shares(), method_filter=rows["method"].iloc[0], seed=seed), by="model",
                region_order=data.regions))


def _pooled(shares: pd.DataFrame, *, method_filter: str, seed: int) -> pd.DataFrame:
    from generator.analysis.regions import region_share_summary

    return region_share_summary(shares[shares["method"] == method_filter], by=["model"], seed=seed)


def _fair_vs_biased(run: Run, data: _Data, pair: tuple[str, str], prov: dict[str, Any]) -> None:
    from generator.analysis.compare import compare_models_on_region
    from generator.figures.analysis import fair_vs_biased

    fair, biased = pair
    titles = data.explained.titles

    @cache
    def comparison() -> pd.DataFrame:
        shares = data.shares()
        with_cue = shares[shares["cue"].astype(bool)]
        return compare_models_on_region(with_cue, region="cue", model_a=fair, model_b=biased, by=["skin_tone"],
                                        seed=run.config.seed, method_labels=titles, region_label="corner mark")

    caption = (f"Share of attribution on the shortcut cue (the corner mark) for models '{fair}' and '{biased}' on "
               "the same explained evaluation images that show the mark, per method: difference with a 95% "
               f"bootstrap interval and a one-sided paired sign-flip permutation test (10000 permutations), "
               "Holm-corrected across methods; '*' marks detection (corrected p < 0.05).")
    table = run.publisher.table("tab-analysis-fair-vs-biased", title="Does the explanation find the shortcut?",
                                caption=caption, page="analysis.md", provenance=prov, make=comparison)
    run.publisher.table(
        "tab-analysis-fair-vs-biased-regions", title="Fair vs biased: attribution share per region",
        caption=f"For every face region (and the face as a whole: skin, eyes, brows, nose, mouth): mean share of "
                f"attribution of models '{fair}' and '{biased}' on the same explained images, difference with a 95% "
                "bootstrap interval and a one-sided paired sign-flip permutation test of biased > fair (2000 "
                "permutations), Holm-corrected across methods within each region; read the difference and its "
                "interval for shifts in the other direction.", page="analysis.md", provenance=prov,
        make=lambda: _region_comparisons(data, fair, biased, run.config.seed, titles))
    run.publisher.figure("fig-analysis-fair-vs-biased", title="Attribution on the shortcut cue, fair vs biased",
                         caption=caption, alt="Dots of cue attribution share for both models per method.",
                         page="analysis.md", provenance=prov,
                         make=lambda: fair_vs_biased(table.frame, model_a=fair, model_b=biased))


def _region_comparisons(data: _Data, fair: str, biased: str, seed: int, titles: dict[str, str]) -> pd.DataFrame:
    from generator.analysis.compare import compare_models_on_region
    from generator.datasets.synthetic import REGIONS

    regions = {"face": ["skin", "eyes", "brows", "nose", "mouth"], **{r: [r] for r in REGIONS}}
    frames = [compare_models_on_region(data.shares(), region=members, model_a=fair, model_b=biased,
                                       n_permutations=2000, seed=seed, method_labels=titles,
                                       region_label=name).assign(region=name)
              for name, members in regions.items()]
    return pd.concat(frames, ignore_index=True).drop(columns=["sentence"])


def _group_means(run: Run, data: _Data, prov: dict[str, Any]) -> None:
    from generator.figures.analysis import difference_maps

    words = run.vocabulary
    if data.landmarked:
        _, report = data.alignment()
        run.publisher.table("tab-analysis-alignment", title="Alignment of the explained faces",
                            caption="Each explained image's similarity transform to the canonical face from its five "
                                    "landmarks: RMS residual in pixels; images above 4 px are not aligned and are left "
                                    "out of the group means (with the reason).", page="analysis.md",
                            provenance=prov, make=lambda: data.alignment()[1])
        n_aligned = int(report["aligned"].sum())
        how = f"warped to a canonical face from its landmarks; {n_aligned} of {len(report)} images aligned"
    else:
        how = ("not warped: the dataset has no landmarks, so its crops are taken as aligned as they come; "
               "misaligned crops blur these means")
    attribute = words.primary
    group_name = words.name(attribute)
    groups = data.meta[attribute].astype(str).to_numpy()
    pair = compared_models(run) or (tuple(data.models[:2]) if len(data.models) >= 2 else None)
    for method in HEADLINE_METHODS:
        if not all(data.maps(m, method) is not None for m in data.models):
            continue
        slug, title = _slug(method), _title(method)
        run.publisher.figure(
            f"fig-analysis-means-{slug}", title=f"Mean {title} map by {group_name}",
            caption=f"Mean of the {title} maps (absolute, each normalised to sum 1, {how}) per model (rows) and "
                    f"{group_name} (columns), over the mean face. One colour scale for the whole figure.",
            alt=f"Grid of mean {title} maps per model and {group_name}.", page="analysis.md", provenance=prov,
            make=lambda method=method: _mean_grid(data, method, groups, data.mean_face()))
        usable = data.alignment()[1]["aligned"].to_numpy() if data.landmarked else np.ones(len(groups), bool)
        # 2 aligned maps a side
        testable = sorted((g for g in set(groups) if (usable & (groups == g)).sum() >= 2), key=natural_key)
        if len(testable) < 2:
            continue
        reference = testable[0]
        others = f"'{testable[1]}'" if len(testable) == 2 else f"each other {group_name}"
        for model in data.models:
            run.publisher.figure(
                f"fig-analysis-groups-{slug}-{model}", title=f"{title}: {others} minus '{reference}', "
                                                             f"model '{model}'",
                caption=f"Difference of the mean {title} maps of model '{model}' between {others} "
                        f"and the reference {group_name} '{reference}'; contours: pixels with a family-wise "
                        f"corrected p < 0.05 (two-sample permutation test of Welch t, {N_PERMUTATIONS} permutations, max-statistic "
                        "correction). One symmetric colour scale, white at zero.",
                alt=f"Difference maps between groups of {group_name} for model {model}.", page="analysis.md",
                provenance=prov, make=lambda method=method, model=model: _difference_figure(
                    _between_groups(data, method, model, groups, reference, testable), data.mean_face(),
                    run.config.seed, difference_maps))
        if pair:
            run.publisher.figure(
                f"fig-analysis-difference-{slug}", title=f"'{pair[1]}' minus '{pair[0]}': {title}",
                caption=f"Difference of the mean {title} maps, model '{pair[1]}' minus model '{pair[0]}', per "
                        f"{group_name}; contours: pixels with a family-wise corrected p < 0.05 (permutation test "
                        f"of Welch t, {N_PERMUTATIONS} permutations, max-statistic correction). One symmetric colour "
                        "scale, white at zero.",
                alt=f"Difference maps of {title}, {pair[1]} minus {pair[0]}, per {group_name}.", page="analysis.md",
                provenance=prov, make=lambda method=method: _difference_figure(
                    _between_models(data, method, pair, groups, testable), data.mean_face(), run.config.seed,
                    difference_maps))


def _mean_grid(data: _Data, method: str, groups: np.ndarray, mean_face: np.ndarray) -> Any:
    from generator.figures.analysis import group_mean_grid

    means, counts = _means_and_counts(data, method, groups)
    return group_mean_grid(means, row_label="model", background=mean_face, n=counts)


def _means_and_counts(data: _Data, method: str, groups: np.ndarray) -> tuple[dict, dict]:
    """Per model and group: the mean aligned map and the number of images behind it."""
    from generator.analysis.group_maps import group_means

    per_model = {model: group_means(data.aligned(model, method), groups) for model in data.models}
    means = {model: {g: mean for g, (mean, _) in found.items()} for model, found in per_model.items()}
    counts = {model: {g: n for g, (_, n) in found.items()} for model, found in per_model.items()}
    return means, counts


def _difference_figure(comparisons: dict[str, tuple[np.ndarray, np.ndarray]], mean_face: np.ndarray, seed: int,
                       plot) -> Any:
    """Per panel: mean(x) - mean(y) of two sets of aligned maps, with corrected pixel-wise significance."""
    from generator.analysis.stats import permutation_test_maps

    diffs, significant = {}, {}
    for label, (x, y) in comparisons.items():
        result = permutation_test_maps(x, y, n_permutations=N_PERMUTATIONS, seed=seed)
        diffs[label], significant[label] = result.difference, result.significant
    return plot(diffs, significant, background=mean_face)


def _between_groups(data: _Data, method: str, model: str, groups: np.ndarray, reference: str,
                    testable: list[str]) -> dict:
    aligned = data.aligned(model, method)
    return {g: (aligned[groups == g], aligned[groups == reference]) for g in testable if g != reference}


def _between_models(data: _Data, method: str, pair: tuple[str, str], groups: np.ndarray,
                    testable: list[str]) -> dict:
    fair, biased = data.aligned(pair[0], method), data.aligned(pair[1], method)
    return {g: (biased[groups == g], fair[groups == g]) for g in testable}


def _facex(run: Run, data: _Data, prov: dict[str, Any]) -> None:
    from generator.analysis.alignment import majority_mask, warp_to_template
    from generator.analysis.regions import facex_region_scores
    from generator.figures.analysis import face_prototype

    at, group, group_name = data.located, data.group, run.vocabulary.name(data.group)

    @cache
    def scores() -> pd.DataFrame:
        meta = data.meta[at].reset_index(drop=True)
        frames = [facex_region_scores(cams[at], data.masks[at], data.regions, meta.assign(model=model),
                                      by=["model", group])
                  for model in data.models if (cams := data.maps(model, CAM_METHOD)) is not None]
        return pd.concat(frames, ignore_index=True)

    table = run.publisher.table(
        "tab-analysis-facex", title="FaceX region scores (Grad-CAM)",
        caption=f"FaceX region score per model, {group_name} and region ({data.region_source}): per image, the "
                "share of the region's pixels whose Grad-CAM value exceeds the mean of the image's non-zero CAM "
                "values, averaged over the images that contain the region (as in the MAI-BIAS toolkit, here for "
                "any number of groups).",
        page="analysis.md", provenance=prov, make=scores)
    transforms, _ = data.alignment()
    prototype = majority_mask(warp_to_template(data.masks.astype(np.float32), transforms, data.images.shape[1],
                                               order=0), len(data.regions))
    vmax = float(np.nanmax(table.frame["score"])) if len(table.frame) else 1.0
    for model in data.models:
        rows = table.frame[table.frame["model"] == model]
        run.publisher.figure(
            f"fig-analysis-facex-{model}", title=f"Face regions by Grad-CAM score, model '{model}'",
            caption=f"FaceX region scores of model '{model}' painted on a prototype face (majority region of the "
                    f"aligned masks), one panel per {group_name}; one colour scale shared by all panels and by the "
                    f"figures of every model (0 to {vmax:.2f}); background not scored.",
            alt=f"Prototype faces coloured by region score for model {model}.", page="analysis.md",
            provenance={**prov, "vmax": vmax},
            make=lambda rows=rows: face_prototype(rows, template_mask=prototype, region_names=data.regions,
                                                  groups=natural_sorted(rows[group].astype(str).unique()),
                                                  group_col=group, vmax=vmax))


def _slug(method: str) -> str:
    return method.replace(".", "-").replace("_", "-")


def _title(method: str) -> str:
    from generator.attribution.registry import REGISTRY

    spec = REGISTRY[method]
    return f"{spec.title} ({spec.library.capitalize()})"


def _patches(run: Run, data: _Data, prov: dict[str, Any]) -> None:
    """FaceX high-impact patches per model: the windows with the largest in-region Grad-CAM mass."""
    from generator.analysis.patches import crop_patches, high_impact_patches
    from generator.figures.analysis import patch_gallery

    at = data.located
    meta = data.meta[at].reset_index(drop=True)

    size = max(4, data.images.shape[1] // 8)
    for model in data.models:
        cams = data.maps(model, CAM_METHOD)
        if cams is None:
            continue

        @cache
        def table(cams=cams, model=model) -> pd.DataFrame:
            return high_impact_patches(cams[at], data.masks[at], data.regions, meta.assign(model=model), patch=size,
                                       top=20)

        patches = run.publisher.table(
            f"tab-analysis-patches-{model}", title=f"High-impact patches, model '{model}'",
            caption=f"The 20 windows of {size} x {size} px with the largest Grad-CAM mass inside one face region "
                    f"(FaceX high-impact patches), over all explained images of model '{model}', with their source "
                    "image and group.", page="analysis.md", provenance=prov, make=table)
        run.publisher.figure(
            f"fig-analysis-patches-{model}", title=f"High-impact patches, model '{model}'",
            caption=patches.caption, alt=f"Crops of the 20 highest-scoring patches for model {model}.",
            page="analysis.md", provenance=prov,
            make=lambda patches=patches: patch_gallery(crop_patches(data.images[at], patches.frame),
                                                       patches.frame, label_cols=("region", data.group)))

