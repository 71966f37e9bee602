"""Face-verification bias by subgroup, after Robinson et al. 2020 (BFW).

Robinson, Livitz, Henon, Qin, Fu & Timoner, "Face Recognition: Too Bias, or Not
Too Bias?" (CVPR workshops 2020) showed that one global decision threshold,
chosen for an intended false-accept rate (FAR) on all imposter pairs, gives some
subgroups up to twice the intended false-positive rate, and that per-subgroup
thresholds recover it. :func:`verification_report` measures exactly that on a
table of scored pairs: TAR at FAR with the global and the subgroup threshold,
the actual FPR of each subgroup at the global threshold, ROC and DET curves
and score distributions. :func:`rank1_confusion` shows which subgroup a
face's nearest wrong neighbour comes from (their Fig. 6).

Conventions
-----------
A pair is accepted ("same person") when ``score >= threshold``. A FAR ``f``
can only be resolved with at least ``1 / f`` imposter pairs; with fewer, the
threshold and every number that depends on it are NaN with a note, never
extrapolated. With a ``fold`` column, each fold is evaluated with thresholds
chosen on the other folds' imposters only (BFW's folds are subject-disjoint), and
the tables give the mean over folds, the sample standard deviation (``*_sd``,
``ddof=1``) and the number of folds that gave a value (``n_folds``).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from generator.errors import ConfigError, DataError
from generator.ordering import natural_sorted

__all__ = ["FARS", "FPR_COLUMNS", "RANK1_COLUMNS", "TAR_COLUMNS", "VerificationReport", "rank1_confusion",
           "threshold_at_far", "verification_report"]

FARS = (0.3, 0.1, 1e-2, 1e-3, 1e-4)
TAR_COLUMNS = ("subgroup", "far", "threshold_global", "tar_global", "threshold_subgroup", "tar_subgroup",
               "n_genuine", "n_imposter", "note")
FPR_COLUMNS = ("subgroup", "intended_far", "threshold", "actual_fpr", "percent_difference", "n_imposter", "note")
RANK1_COLUMNS = ("probe_subgroup", "neighbour_subgroup", "count", "share", "n_errors", "n_probes")
OVERALL = "all"
MAX_CURVE_POINTS = 200
MAX_VIOLIN_SCORES = 5000
_TAR_VALUES = ("threshold_global", "tar_global", "threshold_subgroup", "tar_subgroup")
_FPR_VALUES = ("threshold", "actual_fpr")
_CHUNK = 2048


@dataclass(frozen=True)
class VerificationReport:
    """Tables of :func:`verification_report`.

    Attributes
    ----------
    tar_at_far
        ``TAR_COLUMNS`` per subgroup (and ``"all"``) and FAR; with folds also
        ``threshold_global_sd, tar_global_sd, threshold_subgroup_sd,
        tar_subgroup_sd, n_folds``.
    fpr_at_global
        ``FPR_COLUMNS`` per subgroup (and ``"all"``) and intended FAR; with folds
        also ``threshold_sd, actual_fpr_sd, n_folds``.
    roc
        ``subgroup, fpr, tpr, threshold`` (at most 200 points per subgroup, ends
        kept; the first threshold is ``inf``, which accepts nothing).
    det
        ``subgroup, fpr, fnr`` at the same points, for normal-deviate axes.
    scores
        ``subgroup, label, score``: at most 5000 scores per subgroup and label.
    warnings
        Human-readable remarks (few imposters, subgroups without genuine pairs...).
    """

    tar_at_far: pd.DataFrame
    fpr_at_global: pd.DataFrame
    roc: pd.DataFrame
    det: pd.DataFrame
    scores: pd.DataFrame
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class _Split:
    """Pairs that choose the thresholds (``calibrate``) and pairs that are measured (``evaluate``)."""

    calibrate: pd.DataFrame
    evaluate: pd.DataFrame


def threshold_at_far(imposter_scores: np.ndarray, far: float) -> float:
    """Smallest threshold ``t`` with ``P(imposter score >= t) <= far`` on these imposters.

    Parameters
    ----------
    imposter_scores
        Similarity scores of imposter pairs (finite).
    far
        Intended false-accept rate, in (0, 1].

    Returns
    -------
    float
        With the scores sorted from high to low, ``s_(0) >= s_(1) >= ...`` and
        ``m = floor(far * n)`` false accepts allowed, every threshold above
        ``s_(m)`` is valid and none at or below it (accepting means
        ``score >= t``, so ``t = s_(m)`` would accept ``s_(m)`` too). The
        smallest such float is ``nextafter(s_(m), +inf)``. Ties: all imposters
        tied with ``s_(m)`` are rejected together, so the FAR on these scores can
        be below ``far``. NaN when ``far * n < 1`` (no false accept allowed: the
        FAR cannot be resolved with ``n`` imposters). ``-inf`` when ``m >= n``.

    Raises
    ------
    ConfigError
        ``far`` outside (0, 1].
    """
    if not 0.0 < far <= 1.0:
        raise ConfigError(f"far = {far!r}: expected a false-accept rate in (0, 1]")
    return float(_thresholds(np.sort(np.asarray(imposter_scores, dtype=float))[::-1], [far])[0])


def _thresholds(descending: np.ndarray, fars: Sequence[float]) -> np.ndarray:
    """:func:`threshold_at_far` for several FARs on scores already sorted high to low."""
    out = np.full(len(fars), np.nan)
    for j, far in enumerate(fars):
        allowed = _allowed_false_accepts(far, len(descending))
        if allowed >= len(descending):
            out[j] = -np.inf
        elif allowed >= 1:
            out[j] = np.nextafter(descending[allowed], np.inf)
    return out


def _allowed_false_accepts(far: float, n: int) -> int:
    """``floor(far * n)``, robust to ``0.29 * 100 = 28.999...``."""
    return math.floor(far * n * (1.0 + 1e-12) + 1e-9)


def verification_report(pairs: pd.DataFrame, *, fars: Sequence[float] = FARS, seed: int = 0,
                        min_imposters: int = 100) -> VerificationReport:
    """Per-subgroup verification accuracy with a global and per-subgroup thresholds.

    Parameters
    ----------
    pairs
        One row per pair: ``score`` (higher means more likely the same person),
        ``label`` (1 genuine, 0 imposter), ``subgroup`` and optionally ``fold``.
    fars
        Intended false-accept rates, each in (0, 1).
    seed
        Random state of the score subsample for violin plots.
    min_imposters
        Subgroups with fewer imposter pairs get a warning: their thresholds
        are coarse.

    Returns
    -------
    VerificationReport

    Raises
    ------
    DataError
        Missing columns, labels other than 0/1, non-finite scores, an empty table.
    ConfigError
        A FAR outside (0, 1).
    """
    _check_fars(fars)
    pairs = _validated(pairs)
    subgroups = natural_sorted(pairs["subgroup"].unique())  # FairFace's "3-9" before "10-19"
    splits, folded = _splits(pairs)
    tar = _aggregate([_tar_rows(s, subgroups, fars) for s in splits], _TAR_VALUES, folded)
    fpr = _aggregate([_fpr_rows(s, subgroups, fars) for s in splits], _FPR_VALUES, folded)
    tar, fpr = _finish_tar(tar, pairs, fars, folded), _finish_fpr(fpr, pairs, fars, folded)
    roc = _roc_table(pairs, subgroups)
    det = roc.assign(fnr=1.0 - roc["tpr"])[["subgroup", "fpr", "fnr"]]
    notes = (*_pair_warnings(pairs, subgroups, min_imposters), *_fold_warnings(pairs, folded))
    return VerificationReport(tar, fpr, roc, det, _score_sample(pairs, subgroups, seed), notes)


# --------------------------------------------------------------------------- validation

def _check_fars(fars: Sequence[float]) -> None:
    """Every FAR strictly between 0 and 1."""
    if len(fars) == 0:
        raise ConfigError("fars is empty: give at least one false-accept rate, e.g. (1e-3,)")
    for far in fars:
        if not 0.0 < far < 1.0:
            raise ConfigError(f"far = {far!r}: expected a false-accept rate strictly between 0 and 1")


def _validated(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs table with clean columns, or a DataError naming what is wrong."""
    missing = [c for c in ("score", "label", "subgroup") if c not in pairs.columns]
    if missing:
        raise DataError(f"pairs table lacks column(s) {missing}; it has {list(pairs.columns)} "
                        "(needed: score, label, subgroup; optional: fold)")
    if len(pairs) == 0:
        raise DataError("the pairs table is empty: at least one genuine and one imposter pair are needed")
    if pairs["subgroup"].isna().any():
        raise DataError(f"column 'subgroup' has {int(pairs['subgroup'].isna().sum())} missing value(s)")
    if (pairs["subgroup"].astype(str) == OVERALL).any():
        raise DataError(f"column 'subgroup' holds the name {OVERALL!r}, which is reserved for the overall rows; "
                        "rename that subgroup")
    out = pd.DataFrame({"subgroup": pairs["subgroup"].astype(str), "label": _labels(pairs["label"]),
                        "score": pd.to_numeric(pairs["score"], errors="coerce").astype(float)})
    _check_scores(out)
    if "fold" in pairs.columns:
        out["fold"] = _folds(pairs["fold"])
    return out


def _labels(labels: pd.Series) -> np.ndarray:
    """Labels as int 0/1."""
    numeric = pd.to_numeric(labels, errors="coerce")
    bad = ~numeric.isin([0, 1])
    if bad.any():
        examples = sorted({str(v) for v in labels[bad].head(50)})[:5]
        raise DataError(f"column 'label' has {int(bad.sum())} value(s) other than 0 (imposter) and "
                        f"1 (genuine), e.g. {examples}")
    return numeric.to_numpy(dtype=np.int64)


def _check_scores(table: pd.DataFrame) -> None:
    """Refuse NaN and infinite scores, saying how many and in which subgroups."""
    bad = ~np.isfinite(table["score"].to_numpy())
    if bad.any():
        where = table.loc[bad, "subgroup"].value_counts().sort_index()
        detail = ", ".join(f"{g!r}: {n}" for g, n in where.items())
        raise DataError(f"column 'score' has {int(bad.sum())} missing, non-numeric or infinite value(s) "
                        f"(by subgroup: {detail}); every pair needs a finite similarity")


def _folds(folds: pd.Series) -> np.ndarray:
    """Fold ids as int."""
    numeric = pd.to_numeric(folds, errors="coerce")
    bad = numeric.isna() | (numeric != np.round(numeric))
    if bad.any():
        raise DataError(f"column 'fold' has {int(bad.sum())} value(s) that are not integers "
                        f"(e.g. {folds[bad].iloc[0]!r})")
    return numeric.to_numpy(dtype=np.int64)


# --------------------------------------------------------------------------- thresholds and rates

def _splits(pairs: pd.DataFrame) -> tuple[list[_Split], bool]:
    """One split on all pairs, or one per fold (thresholds from the other folds)."""
    if "fold" not in pairs.columns or pairs["fold"].nunique() < 2:
        return [_Split(pairs, pairs)], False
    return [_Split(pairs[pairs["fold"] != f], pairs[pairs["fold"] == f])
            for f in sorted(pairs["fold"].unique())], True


def _sorted_scores(table: pd.DataFrame, label: int, subgroup: str | None = None) -> np.ndarray:
    """Scores of one label (and subgroup), ascending."""
    mask = table["label"] == label
    if subgroup is not None:
        mask &= table["subgroup"] == subgroup
    return np.sort(table.loc[mask, "score"].to_numpy())


def _share_at_least(ascending: np.ndarray, threshold: float) -> float:
    """Share of scores ``>= threshold``; NaN for no scores or a NaN threshold."""
    if ascending.size == 0 or np.isnan(threshold):
        return np.nan
    return float(ascending.size - np.searchsorted(ascending, threshold, side="left")) / ascending.size


def _tar_rows(split: _Split, subgroups: list[str], fars: Sequence[float]) -> pd.DataFrame:
    """TAR at each FAR per subgroup with the global and the subgroup's own threshold, one split."""
    global_t = _thresholds(_sorted_scores(split.calibrate, 0)[::-1], fars)
    records = []
    for subgroup in [OVERALL, *subgroups]:
        key = None if subgroup == OVERALL else subgroup
        own_t = _thresholds(_sorted_scores(split.calibrate, 0, key)[::-1], fars)
        genuine = _sorted_scores(split.evaluate, 1, key)
        records += [{"subgroup": subgroup, "far": far, "threshold_global": global_t[j],
                     "tar_global": _share_at_least(genuine, global_t[j]), "threshold_subgroup": own_t[j],
                     "tar_subgroup": _share_at_least(genuine, own_t[j])} for j, far in enumerate(fars)]
    return pd.DataFrame.from_records(records)


def _fpr_rows(split: _Split, subgroups: list[str], fars: Sequence[float]) -> pd.DataFrame:
    """Actual FPR of each subgroup at the global threshold for each intended FAR, one split."""
    global_t = _thresholds(_sorted_scores(split.calibrate, 0)[::-1], fars)
    records = []
    for subgroup in [OVERALL, *subgroups]:
        imposters = _sorted_scores(split.evaluate, 0, None if subgroup == OVERALL else subgroup)
        records += [{"subgroup": subgroup, "intended_far": far, "threshold": global_t[j],
                     "actual_fpr": _share_at_least(imposters, global_t[j])} for j, far in enumerate(fars)]
    return pd.DataFrame.from_records(records)


def _aggregate(tables: list[pd.DataFrame], columns: Sequence[str], folded: bool) -> pd.DataFrame:
    """The single split's table, or the mean and sample SD over folds where a value is defined.

    Adds ``n_folds`` (folds evaluated) and ``fold_note`` (values undefined in some folds).
    """
    if not folded:
        return tables[0].assign(fold_note="")
    stacked = pd.concat(tables, ignore_index=True)
    keys = [c for c in stacked.columns if c not in columns]
    grouped = stacked.groupby(keys, sort=False)[list(columns)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = grouped.mean().join(grouped.std(ddof=1).add_suffix("_sd"))
    defined = grouped.count()
    out["n_folds"] = len(tables)
    out["fold_note"] = [_fold_note(row, len(tables)) for _, row in defined.iterrows()]
    return out.reset_index()


def _fold_note(defined: pd.Series, n_folds: int) -> str:
    """Which values are averaged over fewer than all folds."""
    return "; ".join(f"{column} defined in {count} of {n_folds} folds"
                     for column, count in defined.items() if 0 < count < n_folds)


# --------------------------------------------------------------------------- notes and counts

def _counts(pairs: pd.DataFrame) -> pd.DataFrame:
    """Genuine and imposter pairs per subgroup and overall."""
    table = pd.crosstab(pairs["subgroup"], pairs["label"]).reindex(columns=[1, 0], fill_value=0)
    table.columns = ["n_genuine", "n_imposter"]
    table.loc[OVERALL] = table.sum()
    return table


def _resolution_note(far: float, n: int, what: str) -> str:
    """Note for a FAR that ``n`` imposters cannot resolve, or empty."""
    if n == 0:
        return f"no imposter pairs for the {what} threshold"
    if _allowed_false_accepts(far, n) < 1:
        return f"{what} threshold: FAR {far:g} needs at least {math.ceil(1 / far - 1e-9)} imposters (have {n})"
    return ""


def _calibration_sizes(pairs: pd.DataFrame, subgroup: str, folded: bool) -> list[int]:
    """Imposters that choose a threshold: all of them, or those outside each fold."""
    imposters = pairs[pairs["label"] == 0]
    if subgroup != OVERALL:
        imposters = imposters[imposters["subgroup"] == subgroup]
    if not folded:
        return [len(imposters)]
    return [int((imposters["fold"] != f).sum()) for f in sorted(pairs["fold"].unique())]


def _tar_note(pairs: pd.DataFrame, subgroup: str, far: float, counts: pd.Series, folded: bool) -> str:
    """Why a TAR row has NaN values."""
    notes = [] if counts["n_genuine"] else ["no genuine pairs in this subgroup: TAR undefined"]
    notes += [_resolution_note(far, min(_calibration_sizes(pairs, OVERALL, folded)), "global")]
    notes += [_resolution_note(far, min(_calibration_sizes(pairs, subgroup, folded)), "subgroup")]
    return "; ".join(dict.fromkeys(n for n in notes if n))


def _finish_tar(table: pd.DataFrame, pairs: pd.DataFrame, fars: Sequence[float], folded: bool) -> pd.DataFrame:
    """Add counts and notes; order the columns."""
    counts = _counts(pairs)
    table = table.join(counts, on="subgroup")
    table["note"] = [_join(_tar_note(pairs, row.subgroup, row.far, counts.loc[row.subgroup], folded),
                           row.fold_note) for row in table.itertuples()]
    extra = [f"{c}_sd" for c in _TAR_VALUES] + ["n_folds"] if folded else []
    return table[[*TAR_COLUMNS, *extra]].astype({"n_genuine": int, "n_imposter": int})


def _fpr_note(pairs: pd.DataFrame, n_imposter: int, far: float, folded: bool) -> str:
    """Why an FPR row has NaN values."""
    notes = [] if n_imposter else ["no imposter pairs in this subgroup: FPR undefined"]
    notes += [_resolution_note(far, min(_calibration_sizes(pairs, OVERALL, folded)), "global")]
    return "; ".join(n for n in notes if n)


def _finish_fpr(table: pd.DataFrame, pairs: pd.DataFrame, fars: Sequence[float], folded: bool) -> pd.DataFrame:
    """Add percent difference, counts and notes; order the columns."""
    counts = _counts(pairs)
    table = table.join(counts["n_imposter"], on="subgroup")
    table["percent_difference"] = 100.0 * (table["actual_fpr"] - table["intended_far"]) / table["intended_far"]
    table["note"] = [_join(_fpr_note(pairs, row.n_imposter, row.intended_far, folded), row.fold_note)
                     for row in table.itertuples()]
    extra = ["threshold_sd", "actual_fpr_sd", "n_folds"] if folded else []
    return table[[*FPR_COLUMNS, *extra]].astype({"n_imposter": int})


def _join(*notes: str) -> str:
    """Non-empty notes joined with "; "."""
    return "; ".join(n for n in notes if n)


def _pair_warnings(pairs: pd.DataFrame, subgroups: list[str], min_imposters: int) -> tuple[str, ...]:
    """Subgroups without genuine pairs, without imposters, or with few imposters."""
    counts = _counts(pairs)
    out = []
    for subgroup in subgroups:
        genuine, imposter = counts.loc[subgroup, "n_genuine"], counts.loc[subgroup, "n_imposter"]
        if genuine == 0:
            out.append(f"subgroup {subgroup!r} has no genuine pairs: its TAR is undefined")
        if imposter == 0:
            out.append(f"subgroup {subgroup!r} has no imposter pairs: its threshold and FPR are undefined")
        elif imposter < min_imposters:
            out.append(f"subgroup {subgroup!r} has only {imposter} imposter pairs (< {min_imposters}): "
                       "its thresholds are coarse")
    return tuple(out)


def _fold_warnings(pairs: pd.DataFrame, folded: bool) -> tuple[str, ...]:
    """A single fold cannot be cross-validated."""
    if "fold" in pairs.columns and not folded:
        return ("the pairs hold a single fold: thresholds are chosen and measured on the same pairs",)
    return ()


# --------------------------------------------------------------------------- curves and samples

def _roc_table(pairs: pd.DataFrame, subgroups: list[str]) -> pd.DataFrame:
    """Downsampled ROC per subgroup (and overall) with both labels present."""
    parts = []
    for subgroup in [OVERALL, *subgroups]:
        table = pairs if subgroup == OVERALL else pairs[pairs["subgroup"] == subgroup]
        if table["label"].nunique() < 2:
            continue
        fpr, tpr, threshold = roc_curve(table["label"], table["score"], drop_intermediate=True)
        keep = _curve_points(fpr, MAX_CURVE_POINTS)
        parts.append(pd.DataFrame({"subgroup": subgroup, "fpr": fpr[keep], "tpr": tpr[keep],
                                   "threshold": threshold[keep]}))
    columns = ["subgroup", "fpr", "tpr", "threshold"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def _curve_points(fpr: np.ndarray, max_points: int) -> np.ndarray:
    """At most ``max_points`` indices: both ends, evenly spaced ones, and ones evenly spaced in log FPR."""
    if len(fpr) <= max_points:
        return np.arange(len(fpr))
    half = (max_points - 2) // 2
    even = np.linspace(0, len(fpr) - 1, half).round().astype(int)
    positive = fpr[fpr > 0]
    grid = np.geomspace(positive.min(), 1.0, half) if positive.size else np.array([], dtype=float)
    logs = np.clip(np.searchsorted(fpr, grid, side="left"), 0, len(fpr) - 1)
    return np.unique(np.concatenate([[0, len(fpr) - 1], even, logs]))


def _score_sample(pairs: pd.DataFrame, subgroups: list[str], seed: int) -> pd.DataFrame:
    """At most ``MAX_VIOLIN_SCORES`` scores per subgroup and label, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    parts = []
    for subgroup in subgroups:
        for label in (1, 0):
            scores = pairs.loc[(pairs["subgroup"] == subgroup) & (pairs["label"] == label), "score"].to_numpy()
            if scores.size > MAX_VIOLIN_SCORES:
                scores = scores[np.sort(rng.choice(scores.size, MAX_VIOLIN_SCORES, replace=False))]
            parts.append(pd.DataFrame({"subgroup": subgroup, "label": label, "score": scores}))
    return pd.concat(parts, ignore_index=True).astype({"label": int, "score": float})


# --------------------------------------------------------------------------- rank-1 confusion

def rank1_confusion(embeddings: np.ndarray, identities: Sequence[str], subgroups: Sequence[str]) -> pd.DataFrame:
    """Subgroup of the nearest wrong neighbour, over rank-1 errors (Robinson et al. 2020, Fig. 6).

    Each image is a probe; its nearest neighbour is the most cosine-similar of
    all *other* images (ties: the first in table order). A rank-1 error is a
    probe whose neighbour has a different identity. Counts are probe subgroup
    x neighbour subgroup over errors, and ``share`` is the row-normalised
    share (NaN for a probe subgroup without errors).

    Parameters
    ----------
    embeddings
        ``(N, D)`` face embeddings, no zero rows.
    identities, subgroups
        Identity and subgroup of each row.

    Returns
    -------
    pandas.DataFrame
        ``RANK1_COLUMNS``: every probe x neighbour subgroup combination, with
        ``n_errors`` (rank-1 errors of the probe subgroup) and ``n_probes``.
    """
    unit = _unit_rows(embeddings, len(identities), len(subgroups))
    ids, groups = np.asarray(identities).astype(str), np.asarray(subgroups).astype(str)
    neighbour = _nearest_other(unit)
    errors = ids[neighbour] != ids
    names = sorted(set(groups))
    counts = pd.crosstab(pd.Categorical(groups[errors], names), pd.Categorical(groups[neighbour][errors], names),
                         dropna=False).reindex(index=names, columns=names, fill_value=0)
    long = counts.stack().rename("count").reset_index()
    long.columns = ["probe_subgroup", "neighbour_subgroup", "count"]
    totals = long.groupby("probe_subgroup")["count"].transform("sum")
    long["share"] = long["count"] / totals.where(totals > 0)
    long["n_errors"] = totals.astype(int)
    long["n_probes"] = long["probe_subgroup"].map(pd.Series(groups).value_counts()).astype(int)
    return long[list(RANK1_COLUMNS)].astype({"probe_subgroup": str, "neighbour_subgroup": str, "count": int})


def _unit_rows(embeddings: np.ndarray, n_ids: int, n_groups: int) -> np.ndarray:
    """Rows scaled to unit length, after checking shape and values."""
    array = np.asarray(embeddings, dtype=float)
    if array.ndim != 2 or array.shape[0] < 2:
        raise DataError(f"embeddings have shape {array.shape}: expected (N, D) with N >= 2")
    if not (array.shape[0] == n_ids == n_groups):
        raise DataError(f"embeddings have {array.shape[0]} rows but identities {n_ids} and subgroups {n_groups}")
    if not np.isfinite(array).all():
        raise DataError(f"embeddings hold {int((~np.isfinite(array)).sum())} NaN or infinite value(s)")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if (norms == 0).any():
        raise DataError(f"embedding row(s) {np.flatnonzero(norms[:, 0] == 0)[:5].tolist()} are all zero: "
                        "cosine similarity is undefined")
    return array / norms


def _nearest_other(unit: np.ndarray) -> np.ndarray:
    """Index of the most similar other row of every row (chunked to bound memory)."""
    out = np.empty(len(unit), dtype=np.int64)
    for start in range(0, len(unit), _CHUNK):
        sims = unit[start:start + _CHUNK] @ unit.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf
        out[start:start + _CHUNK] = sims.argmax(axis=1)
    return out
