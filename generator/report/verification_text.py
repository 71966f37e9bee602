"""The verification audit's headline in words, from its FPR and TAR tables (shared by the page and the deck)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

__all__ = ["MIN_EXPECTED_FALSE_MATCHES", "FprFinding", "false_match_text", "far_text", "fold_interval", "fpr_finding",
           "region_findings"]

#: A false match rate is read only at an intended FAR at which every subgroup expects this many false matches.
MIN_EXPECTED_FALSE_MATCHES = 10


def far_text(value: float) -> str:
    """A false accept rate as written in the literature: 0.1, 0.01, 1e-3, 1e-4."""
    return f"{value:g}" if value >= 0.01 else f"1e-{round(-math.log10(value))}" if math.log10(
        value).is_integer() else f"{value:.1e}"


def fold_interval(mean: float, sd: float, n: int) -> tuple[float, float]:
    """95 % t-interval of a mean over ``n`` folds (clipped to [0, 1]); ``(nan, nan)`` without spread."""
    from scipy.stats import t

    if not (n and n > 1) or not math.isfinite(sd):
        return float("nan"), float("nan")
    half = float(t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return max(0.0, mean - half), min(1.0, mean + half)


@dataclass(frozen=True)
class FprFinding:
    """The subgroup a global threshold hurts most: its false match rate against the intended one."""

    far: float
    subgroup: str
    actual: float
    low: float
    high: float
    n_imposter: int
    n_folds: int
    best_subgroup: str
    best_actual: float

    @property
    def ratio(self) -> float:
        return self.actual / self.far

    def sentence(self) -> str:
        interval = (f" (95 % interval over the {self.n_folds} folds {self.low:.4f} to {self.high:.4f})"
                    if math.isfinite(self.low) else "")
        head = f"with one global threshold set for FAR {far_text(self.far)}, "
        if self.best_actual == self.actual:
            return head + f"every band gets a false match rate of {self.actual:.4f}, {self.ratio:.1f} times the intended"
        return head + (f"{self.subgroup} gets a false match rate of {self.actual:.4f}{interval}, {self.ratio:.1f} "
                       f"times the intended, while {self.best_subgroup} gets {self.best_actual:.4f} "
                       f"({self.n_imposter} imposter pairs in {self.subgroup})")


def fpr_finding(frame: pd.DataFrame, far: float | None = None) -> FprFinding | None:
    """The worst-served subgroup at ``far``, or at the smallest intended FAR at which every subgroup expects at
    least :data:`MIN_EXPECTED_FALSE_MATCHES` false matches (a rate from fewer is noise)."""
    frame = frame.dropna(subset=["actual_fpr"])
    frame = frame[frame["subgroup"] != "all"]
    if frame.empty:
        return None
    if far is None:
        fewest = frame.groupby("intended_far")["n_imposter"].min()  # imposter pairs of the smallest subgroup
        supported = fewest[fewest * fewest.index >= MIN_EXPECTED_FALSE_MATCHES]
        far = float(supported.index.min() if len(supported) else frame["intended_far"].max())
    at = frame[frame["intended_far"] == far]
    if at.empty:
        return None
    worst, best = at.loc[at["actual_fpr"].idxmax()], at.loc[at["actual_fpr"].idxmin()]
    n_folds = int(worst["n_folds"]) if "n_folds" in at and pd.notna(worst.get("n_folds")) else 0
    sd = float(worst["actual_fpr_sd"]) if "actual_fpr_sd" in at else float("nan")
    low, high = fold_interval(float(worst["actual_fpr"]), sd, n_folds)
    return FprFinding(far, str(worst["subgroup"]), float(worst["actual_fpr"]), low, high, int(worst["n_imposter"]),
                      n_folds, str(best["subgroup"]), float(best["actual_fpr"]))


def false_match_text(pairs: pd.DataFrame) -> str:
    """Where the false matches of one model fall, from its explained-pairs table
    (``tab-verification-maps-pairs-*``: ``subgroup, outcome, pairs, far, threshold``)."""
    fm = pairs[pairs["outcome"] == "false match"]
    total = int(fm["pairs"].sum())
    far, threshold = float(pairs["far"].iloc[0]), float(pairs["threshold"].iloc[0])
    head = f"at the global threshold {threshold:.4f} (FAR {far_text(far)} over all imposter pairs)"
    if total == 0:
        return head + ", no imposter pair is accepted"
    imposters = pairs[pairs["outcome"].isin(["false match", "correct rejection"])].groupby("subgroup")["pairs"].sum()
    parts = [f"{int(r.pairs)} in {r.subgroup} ({int(r.pairs) / imposters[r.subgroup]:.4f} of its imposter pairs)"
             for r in fm.sort_values("pairs", ascending=False).itertuples() if r.pairs > 0]
    return head + f", {total} imposter pairs are accepted: " + ", ".join(parts)


def region_findings(tests: pd.DataFrame, limit: int = 3) -> list[str]:
    """The largest significant differences of a region table (``tab-verification-maps-regions-*``), in words;
    without any, one sentence with the differences the tests could have found."""
    tested = tests.dropna(subset=["p_holm"])
    if tested.empty:
        return ["no band has two or more false matches, so no region is tested"]
    found = tested[tested["p_holm"] < 0.05]
    # regions that carry more in false matches first (what drives them), then those that carry less
    found = found.sort_values("difference", ascending=False, kind="stable").head(limit)
    if found.empty:
        low, high = tested["min_detectable"].min(), tested["min_detectable"].max()
        return [f"no region's share differs between false matches and correct rejections after Holm correction "
                f"({len(tested)} tests); with these pairs a difference of {low:.3f} to {high:.3f} share points "
                "would have been found with 80 % power"]
    return [f"in {r.subgroup}, false matches put {r.share_false_match:.3f} of the attribution on the {r.region} "
            f"against {r.share_correct_rejection:.3f} in correct rejections (difference {r.difference:+.3f}, 95 % "
            f"interval {r.ci_low:+.3f} to {r.ci_high:+.3f}, Holm p = {r.p_holm:.3g}; n = {int(r.n_false_match)} and "
            f"{int(r.n_correct_rejection)} pairs)" for r in found.itertuples()]
