"""Results section "explaining verification": galleries, aligned mean maps and region tests of similarity maps.

Works on the maps of :mod:`generator.pipeline.verification_maps`. The statistics are those of the
classification analysis (:mod:`generator.pipeline.results_analysis`): maps normalised to sum 1 and
aligned to the canonical face for the means, a pixel-wise permutation test of Welch t with
max-statistic correction for the difference maps, and per-region shares with bootstrap intervals and
permutation tests (Holm-corrected) for the question "what makes a false match": within each
skin-tone band, the share of attribution on each face region in false matches against correct
rejections. The unit of the region tests is the pair (the mean of its two maps' shares).
"""
from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from generator.ordering import natural_sorted
from generator.pipeline.state import Run
from generator.pipeline.verification_maps import OUTCOMES, PairMaps, method_params
from generator.report.verification_text import far_text

__all__ = ["N_PERMUTATIONS", "region_tests", "verification_map_results"]

N_PERMUTATIONS = 2000
PAGE = "bias-verification.md"


def verification_map_results(run: Run, maps: dict[str, PairMaps]) -> None:
    """Register the figures and tables of every face-recognition model's similarity maps."""
    for pm in maps.values():
        _Section(run, pm).register()


class _Section:
    def __init__(self, run: Run, pm: PairMaps) -> None:
        from generator.attribution.registry import REGISTRY

        self.run, self.pm = run, pm
        matchers = run.matchers
        self.rows_a, self.rows_b = pm.pairs["row_a"].to_numpy(), pm.pairs["row_b"].to_numpy()
        self.images, self.masks, self.landmarks = matchers.images, matchers.masks, matchers.landmarks
        self.bands = natural_sorted(pm.pairs["subgroup"].astype(str).unique())
        self.title = REGISTRY[pm.method].title + f" ({REGISTRY[pm.method].library.capitalize()})"
        fr = run.config.verification.face_recognition
        self.prov = {**run.provenance, "maps": pm.key, "method": pm.method, "far": pm.far,
                     "pairs_per_cell": [fr.explain.pairs, fr.explain.other_pairs], "permutations": N_PERMUTATIONS}
        self.params = method_params(run.config)
        self.decided = (f"Pairs of model '{pm.matcher}' decided by one global threshold ({pm.threshold:.4f}) set for "
                        f"an intended FAR of {far_text(pm.far)} on all imposter pairs; per skin-tone band up to "
                        f"{fr.explain.pairs} false matches and correct rejections and {fr.explain.other_pairs} matches "
                        "and false non-matches (seeded sample), each image explained towards the other")

    def register(self) -> None:
        self._pairs_table()
        self._means()
        self._difference()
        self._regions()
        self._galleries()

    # ------------------------------------------------------------------ data
    @cache
    def aligned(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised maps warped to the canonical face: a images, b images, and the mean face."""
        from generator.analysis.alignment import alignment_transforms, warp_to_template
        from generator.analysis.group_maps import normalise_maps

        size = self.images.shape[1]
        out = []
        for rows, maps in ((self.rows_a, self.pm.maps[0]), (self.rows_b, self.pm.maps[1])):
            transforms, _ = alignment_transforms(self.landmarks[rows], size)
            out.append(warp_to_template(normalise_maps(maps), transforms, size))
        rows = np.unique(np.r_[self.rows_a, self.rows_b])
        transforms, _ = alignment_transforms(self.landmarks[rows], size)
        face = np.nanmean(warp_to_template(self.images[rows].astype(np.float32), transforms, size), axis=0)
        return out[0], out[1], face

    def cell(self, band: str, outcome: str) -> np.ndarray:
        pairs = self.pm.pairs
        return ((pairs["subgroup"].astype(str) == band) & (pairs["outcome"] == outcome)).to_numpy()

    @cache
    def shares(self) -> pd.DataFrame:
        """Per pair and region: the mean share of its two maps (long format)."""
        from generator.analysis.regions import region_share_table
        from generator.datasets.synthetic import REGIONS

        meta = self.pm.pairs[["p1", "p2", "subgroup", "outcome"]].reset_index().rename(columns={"index": "pair"})
        a = region_share_table(self.pm.maps[0], self.masks[self.rows_a], REGIONS, meta)
        b = region_share_table(self.pm.maps[1], self.masks[self.rows_b], REGIONS, meta)
        return a.assign(share=(a["share"].to_numpy() + b["share"].to_numpy()) / 2)

    # ------------------------------------------------------------------ artifacts
    def _pairs_table(self) -> None:
        pm = self.pm

        def make() -> pd.DataFrame:
            explained = pm.pairs.groupby(["subgroup", "outcome"]).agg(mean_score=("score", "mean")).reset_index()
            frame = pm.counts.merge(explained, on=["subgroup", "outcome"], how="left")
            frame["share_of_band"] = frame["pairs"] / frame.groupby("subgroup")["pairs"].transform("sum")
            order = {o: i for i, o in enumerate(OUTCOMES)}
            return frame.sort_values(["subgroup", "outcome"], key=lambda c: c.map(order) if c.name == "outcome"
                                     else c).assign(threshold=pm.threshold, far=pm.far).reset_index(drop=True)

        self.run.publisher.table(
            f"tab-verification-maps-pairs-{pm.matcher}", title=f"Explained verification pairs, model '{pm.matcher}'",
            caption=f"{self.decided}. Per band and outcome: the pairs there are, the pairs explained, their mean "
                    "score.", page=PAGE, provenance=self.prov, make=make)

    def _means(self) -> None:
        from generator.figures.analysis import group_mean_grid

        pm = self.pm

        def make(outcomes: tuple[str, ...] = OUTCOMES) -> Any:
            a, b, face = self.aligned()
            means, counts = {}, {}
            for outcome in outcomes:
                means[outcome], counts[outcome] = {}, {}
                for band in self.bands:
                    at = self.cell(band, outcome)
                    if at.any():
                        means[outcome][band] = np.nanmean(np.concatenate([a[at], b[at]]), axis=0)
                        counts[outcome][band] = int(at.sum())
            means = {o: v for o, v in means.items() if v}
            return group_mean_grid(means, row_label="outcome", background=face, n={o: counts[o] for o in means},
                                   empty_label="no pairs", groups=self.bands)

        self.run.publisher.figure(
            f"fig-verification-maps-means-{pm.matcher}", title=f"Mean {self.title} map of the similarity by outcome, "
                                                               f"model '{pm.matcher}'",
            caption=f"{self.decided}. Mean of the {self.title} maps ({_settings(self.params[pm.method])}) of the "
                    "similarity score (absolute, each "
                    "normalised to sum 1, warped to the canonical face from its landmarks; both images of each pair) "
                    "per outcome (rows) and skin-tone band (columns), over the mean face; n: pairs. One colour scale "
                    "for the whole figure; an empty cell has no pair of that outcome.",
            alt=f"Grid of mean similarity maps per outcome and skin-tone band for model {pm.matcher}.", page=PAGE,
            provenance=self.prov, make=make, slide=lambda: make(("false match", "correct rejection")))

    def _difference(self) -> None:
        from generator.analysis.stats import permutation_test_maps
        from generator.figures.analysis import difference_maps

        pm = self.pm
        testable = [band for band in self.bands
                    if self.cell(band, "false match").sum() >= 2 and self.cell(band, "correct rejection").sum() >= 2]
        if not testable:
            return

        def make() -> Any:
            a, b, face = self.aligned()
            diffs, significant = {}, {}
            for band in testable:
                fm, cr = self.cell(band, "false match"), self.cell(band, "correct rejection")
                result = permutation_test_maps(np.concatenate([a[fm], b[fm]]), np.concatenate([a[cr], b[cr]]),
                                               n_permutations=N_PERMUTATIONS // 2, seed=self.run.config.seed)
                diffs[f"{band} (n = {int(fm.sum())} / {int(cr.sum())})"] = result.difference
                significant[f"{band} (n = {int(fm.sum())} / {int(cr.sum())})"] = result.significant
            return difference_maps(diffs, significant, background=face)

        self.run.publisher.figure(
            f"fig-verification-maps-difference-{pm.matcher}",
            title=f"False matches minus correct rejections: {self.title}, model '{pm.matcher}'",
            caption=f"{self.decided}. Difference of the mean aligned {self.title} maps between false matches and "
                    "correct rejections (imposter pairs below the threshold) of each skin-tone band that has at least "
                    "two false matches; n: pairs of each; contours: pixels with a family-wise corrected p < 0.05 "
                    f"(two-sample permutation test of Welch t over the maps, {N_PERMUTATIONS // 2} permutations, "
                    "max-statistic correction). One symmetric colour scale, white at zero.",
            alt=f"Difference maps, false matches minus correct rejections, per band for model {pm.matcher}.",
            page=PAGE, provenance=self.prov, make=make)

    def _regions(self) -> None:
        pm = self.pm
        seed = self.run.config.seed
        self.run.publisher.table(
            f"tab-verification-maps-regions-{pm.matcher}",
            title=f"What makes a false match: attribution share per region, model '{pm.matcher}'",
            caption=f"{self.decided}. Per skin-tone band and face region (exact masks of the synthetic faces): mean "
                    f"share of the absolute {self.title} attribution in false matches and in correct rejections (per "
                    "pair, the mean of its two maps), difference with a 95% bootstrap interval, a two-sided "
                    f"permutation test ({N_PERMUTATIONS} permutations), Holm-corrected over every band and region of "
                    "the table; 'min_detectable' is the difference (share points) the test finds with 80% power at "
                    "the Holm level, from the pooled standard deviation. Bands with fewer than two false matches "
                    "are not tested.", page=PAGE, provenance=self.prov,
            make=lambda: region_tests(self.shares(), seed=seed))

    def _galleries(self) -> None:
        from generator.attribution.registry import REGISTRY
        from generator.figures.attribution import gallery

        pm = self.pm
        shown = pm.pairs[pm.pairs["gallery"]].reset_index(drop=True)
        methods = list(pm.gallery)
        titles = {m: f"{REGISTRY[m].title} ({REGISTRY[m].library.capitalize()})" for m in methods}
        for band in self.bands:
            at = (shown["subgroup"].astype(str) == band).to_numpy()
            if not at.any():
                continue
            rows = shown[at]
            order = np.flatnonzero(at)

            def make(rows=rows, order=order) -> Any:
                images = np.stack([self.images[r] for row in rows.itertuples() for r in (row.row_a, row.row_b)])
                maps = {m: np.stack([x for i in order for x in (pm.gallery[m][0][i], pm.gallery[m][1][i])])
                        for m in methods}
                labels = [f"{row.outcome} ({row.score:.3f})\n{side}" for row in rows.itertuples()
                          for side in ("face A, towards B", "face B, towards A")]
                return gallery(images, maps, {m: REGISTRY[m].signed for m in methods}, labels, titles)

            slug = band.lower().replace(" ", "-")
            self.run.publisher.figure(
                f"fig-verification-gallery-{pm.matcher}-{slug}",
                title=f"Why two faces match: {band}, model '{pm.matcher}'",
                caption=f"{self.decided}. For {band}: one pair of each outcome (the pair with the median score of its "
                        "sample; score in brackets), both faces, each explained towards the other with "
                        f"{'; '.join(f'{titles[m]} ({_settings(self.params[m])})' for m in methods)} (Xplique on "
                        "the Keras twin of the same network). Maps scaled by their 99th percentile of |value|.",
                alt=f"Pairs of faces of {band} with similarity maps for model {pm.matcher}.", page=PAGE,
                provenance=self.prov, make=make)


def _settings(params: dict) -> str:
    """A method's parameters for a caption: ``steps 16, baseline black`` (or its defaults)."""
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in params.items()) or "its default parameters"


def region_tests(shares: pd.DataFrame, *, seed: int, n_permutations: int = N_PERMUTATIONS) -> pd.DataFrame:
    """False matches against correct rejections, per band and region: shares, difference, p, Holm p, power.

    ``shares`` is long format with ``pair, subgroup, outcome, region, share`` (one row per pair and region).
    """
    from generator.analysis.stats import holm, permutation_test_scalar
    from generator.pipeline.results_replicates import detectable_effect

    rows = []
    for (band, region), frame in shares.groupby(["subgroup", "region"], sort=False):
        fm = frame.loc[frame["outcome"] == "false match", "share"].dropna().to_numpy()
        cr = frame.loc[frame["outcome"] == "correct rejection", "share"].dropna().to_numpy()
        row = {"subgroup": band, "region": region, "n_false_match": len(fm), "n_correct_rejection": len(cr),
               "share_false_match": float(fm.mean()) if len(fm) else np.nan,
               "share_correct_rejection": float(cr.mean()) if len(cr) else np.nan}
        if len(fm) >= 2 and len(cr) >= 2:
            result = permutation_test_scalar(fm, cr, n_permutations=n_permutations, seed=seed)
            pooled = np.sqrt(((len(fm) - 1) * fm.var(ddof=1) + (len(cr) - 1) * cr.var(ddof=1))
                             / (len(fm) + len(cr) - 2))
            row.update(difference=result.difference, ci_low=result.ci_low, ci_high=result.ci_high,
                       p_value=result.p_value, pooled_sd=float(pooled))
        rows.append(row)
    table = pd.DataFrame(rows, columns=["subgroup", "region", "n_false_match", "n_correct_rejection",
                                        "share_false_match", "share_correct_rejection", "difference", "ci_low",
                                        "ci_high", "p_value", "pooled_sd"])
    tested = table["p_value"].notna().to_numpy()
    table["p_holm"] = np.nan
    if tested.any():
        table.loc[tested, "p_holm"] = holm(table.loc[tested, "p_value"].to_numpy())
    m = int(tested.sum())
    # two-sided at the strictest Holm level: level/2 per side; unpaired: the effective n is n1 n2 / (n1 + n2)
    n_eff = (table["n_false_match"] * table["n_correct_rejection"]
             / (table["n_false_match"] + table["n_correct_rejection"]).replace(0, np.nan))
    table["min_detectable"] = [detectable_effect(int(round(n)) if n == n else 0, 2 * max(m, 1)) * sd
                               if t else np.nan for n, sd, t in zip(n_eff, table["pooled_sd"], tested)]
    table["significant"] = table["p_holm"] < 0.05
    return natural_order(table.drop(columns="pooled_sd"))


def natural_order(table: pd.DataFrame) -> pd.DataFrame:
    """Rows by band in natural order (MST 1-3 before MST 10), regions as they came."""
    from generator.ordering import natural_key

    return table.sort_values("subgroup", key=lambda c: c.map(natural_key), kind="stable").reset_index(drop=True)
