"""Permutation tests: pixel-wise between two groups of maps, and for one scalar.

Permutation tests assume only that the group labels are exchangeable under the
null hypothesis (the two samples come from one distribution), which suits
attribution maps: they are far from Gaussian, skewed and heavy-tailed. The
pixel-wise test is the one used for statistical maps in neuroimaging (Nichols
& Holmes 2002, "Nonparametric permutation tests for functional neuroimaging",
Human Brain Mapping): its maximum-statistic correction controls the
family-wise error over all pixels (Westfall & Young 1993), or, alternatively,
Benjamini & Hochberg 1995 control the false discovery rate. p-values count the
observed labelling as one of the permutations, ``(count + 1) / (B + 1)``
(Phipson & Smyth 2010), so they are never 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from generator.errors import ConfigError, DataError
from generator.evaluation.summary import bootstrap_ci

__all__ = ["PixelTestResult", "ScalarTestResult", "benjamini_hochberg", "holm",
           "permutation_test_maps", "permutation_test_scalar"]

_CORRECTIONS: tuple[str, ...] = ("maxT", "fdr_bh")
_STATISTICS: tuple[str, ...] = ("t", "difference")
_ALTERNATIVES: tuple[str, ...] = ("two-sided", "greater", "less")
_CHUNK_VALUES = 4_000_000  # permuted statistics held in memory at once
_TIE = 1e-10  # relative tolerance: permutations equal to the observed one up to rounding count as ties


@dataclass(frozen=True)
class PixelTestResult:
    """Outcome of :func:`permutation_test_maps`; every map is ``(H, W)``.

    Attributes
    ----------
    difference : np.ndarray
        ``mean(a) - mean(b)`` per pixel.
    statistic : np.ndarray
        Welch ``t`` (or the difference, see ``statistic_name``) per pixel.
    p_raw, p_corrected : np.ndarray
        Two-sided permutation p-values, before and after the correction.
    significant : np.ndarray
        bool, ``p_corrected <= alpha``.
    n_a, n_b, n_permutations : int
        Images per group (after dropping all-NaN ones) and permutations.
    correction, statistic_name : str
        ``"maxT"`` or ``"fdr_bh"``; ``"t"`` or ``"difference"``.
    alpha : float
        Level of ``significant``.
    test : str
        The test in words, for captions.
    """

    difference: np.ndarray
    statistic: np.ndarray
    p_raw: np.ndarray
    p_corrected: np.ndarray
    significant: np.ndarray
    n_a: int
    n_b: int
    n_permutations: int
    correction: str
    statistic_name: str
    alpha: float
    test: str


@dataclass(frozen=True)
class ScalarTestResult:
    """Outcome of :func:`permutation_test_scalar`.

    Attributes
    ----------
    difference : float
        ``mean(a) - mean(b)`` (paired: mean of ``a - b``).
    ci_low, ci_high : float
        Percentile bootstrap interval of the difference (seeded).
    p_value : float
        Permutation p-value, in ``[1 / (B + 1), 1]``.
    n_a, n_b : int
        Values used per sample (paired: both the number of complete pairs).
    test : str
        The test in words, e.g. "paired sign-flip permutation test, 10000
        permutations, two-sided".
    """

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_a: int
    n_b: int
    test: str


# --------------------------------------------------------------------------- corrections

def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini & Hochberg 1995 adjusted p-values (step-up FDR), same shape as ``p``."""
    flat = np.asarray(p, dtype=np.float64).ravel()
    order = np.argsort(flat)
    ranked = flat[order] * flat.size / np.arange(1, flat.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(flat)
    out[order] = np.minimum(adjusted, 1.0)
    return out.reshape(np.shape(p))


def holm(p: np.ndarray) -> np.ndarray:
    """Holm 1979 step-down adjusted p-values (family-wise error), NaN kept as NaN."""
    flat = np.asarray(p, dtype=np.float64).ravel()
    keep = np.flatnonzero(~np.isnan(flat))
    order = keep[np.argsort(flat[keep])]
    m = order.size
    stepped = np.maximum.accumulate(flat[order] * (m - np.arange(m)))
    out = np.full_like(flat, np.nan)
    out[order] = np.minimum(stepped, 1.0)
    return out.reshape(np.shape(p))


# --------------------------------------------------------------------------- pixel-wise

def _check_choice(name: str, value: str, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise ConfigError(f"{name} = {value!r} is not accepted: use one of {list(accepted)}")


def _check_permutations(n_permutations: int) -> None:
    if not (isinstance(n_permutations, (int, np.integer)) and n_permutations >= 1):
        raise ConfigError(f"n_permutations = {n_permutations!r} is not accepted: use an integer >= 1")


def _group_stack(maps: np.ndarray, name: str) -> np.ndarray:
    """``(n, H, W)`` float64 without all-NaN images; refuses partly NaN maps."""
    array = np.asarray(maps, dtype=np.float64)
    if array.ndim != 3:
        raise DataError(f"{name} must be (N, H, W), got shape {array.shape}")
    array = array[np.isfinite(array).any(axis=(1, 2))]
    if not np.all(np.isfinite(array)):
        raise DataError(f"{name} has maps with some NaN pixels: fill them (e.g. warp with cval=0) first")
    if len(array) < 2:
        raise DataError(f"{name} needs at least 2 valid maps for a pixel-wise test, got {len(array)}")
    return array


def _welch(sum_a, sq_a, n_a, total, sq_total, n_b, statistic: str) -> np.ndarray:
    """Pixel statistic from group sums (any leading shape); ``b`` = total - a."""
    mean_a, mean_b = sum_a / n_a, (total - sum_a) / n_b
    diff = mean_a - mean_b
    if statistic == "difference":
        return diff
    var_a = np.maximum(sq_a - n_a * mean_a ** 2, 0.0) / (n_a - 1)
    var_b = np.maximum(sq_total - sq_a - n_b * mean_b ** 2, 0.0) / (n_b - 1)
    se = np.sqrt(var_a / n_a + var_b / n_b)
    with np.errstate(invalid="ignore", divide="ignore"):  # both branches are evaluated; np.where picks
        t = diff / se
        return np.where(se > 0, t, np.where(diff == 0, 0.0, np.sign(diff) * np.inf))


def _permuted_members(rng: np.random.Generator, count: int, n: int, n_a: int) -> np.ndarray:
    """``(count, n)`` 0/1 indicators of group ``a`` under random relabellings."""
    order = rng.permuted(np.tile(np.arange(n), (count, 1)), axis=1)[:, :n_a]
    members = np.zeros((count, n))
    np.put_along_axis(members, order, 1.0, axis=1)
    return members


def _null_counts(x: np.ndarray, n_a: int, observed: np.ndarray, n_permutations: int, seed: int,
                 statistic: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel counts of ``|null| >= |observed|`` and the per-permutation max ``|null|``."""
    rng = np.random.default_rng(seed)
    n, n_b = len(x), len(x) - n_a
    total, sq_total, squares = x.sum(axis=0), (x ** 2).sum(axis=0), x ** 2
    level = np.abs(observed) * (1.0 - _TIE)
    counts, maxima = np.zeros(x.shape[1]), []
    chunk = max(1, _CHUNK_VALUES // x.shape[1])
    for start in range(0, n_permutations, chunk):
        members = _permuted_members(rng, min(chunk, n_permutations - start), n, n_a)
        null = np.abs(_welch(members @ x, members @ squares, n_a, total, sq_total, n_b, statistic))
        counts += (null >= level).sum(axis=0)
        maxima.append(null.max(axis=1))
    return counts, np.concatenate(maxima)


def _describe_maps(statistic: str, correction: str, n_permutations: int) -> str:
    stat = "Welch t" if statistic == "t" else "mean difference"
    fix = ("max-statistic family-wise correction" if correction == "maxT"
           else "Benjamini-Hochberg false discovery rate")
    return f"pixel-wise two-sided permutation test of the {stat}, {n_permutations} permutations, {fix}"


def permutation_test_maps(maps_a: np.ndarray, maps_b: np.ndarray, *, n_permutations: int = 1000, seed: int = 0,
                          correction: Literal["maxT", "fdr_bh"] = "maxT", alpha: float = 0.05,
                          statistic: Literal["t", "difference"] = "t") -> PixelTestResult:
    """Pixel-wise two-sample permutation test of a mean difference, corrected over pixels.

    The group labels are permuted ``n_permutations`` times; for each
    relabelling every pixel's statistic is recomputed at once (group sums as
    one matrix product). With ``correction="maxT"`` a pixel's corrected
    p-value is the share of permutations whose largest ``|statistic|`` over
    all pixels reaches the pixel's observed ``|statistic|`` (single-step
    max-statistic, Nichols & Holmes 2002; Westfall & Young 1993): it controls
    the family-wise error rate at ``alpha``. ``"fdr_bh"`` applies Benjamini &
    Hochberg 1995 to the raw p-values. The Welch ``t`` (default) puts pixels
    of different variance on one scale, so the maximum is not dominated by
    the noisiest pixels. Maps normalised to mass 1 are coupled: attribution
    gained in one region is lost everywhere else, so with many images the
    ``t`` statistic also flags small but consistent losses far from the
    effect; read the size from ``difference`` (or test ``"difference"``,
    which weights pixels by effect size).

    Parameters
    ----------
    maps_a, maps_b : np.ndarray
        ``(n_a, H, W)`` and ``(n_b, H, W)`` aligned, normalised maps; all-NaN
        maps (not aligned) are dropped, at least 2 valid maps per group.
    n_permutations : int
        Random relabellings ``B``.
    seed : int
        Seed of the relabellings.
    correction : {"maxT", "fdr_bh"}
        Multiple-comparison correction.
    alpha : float
        Level for ``significant``.
    statistic : {"t", "difference"}
        Welch t or the raw mean difference.

    Returns
    -------
    PixelTestResult
    """
    _check_choice("correction", correction, _CORRECTIONS)
    _check_choice("statistic", statistic, _STATISTICS)
    _check_permutations(n_permutations)
    if not 0.0 < float(alpha) < 1.0:
        raise ConfigError(f"alpha = {alpha!r} is not accepted: use a number in (0, 1)")
    a, b = _group_stack(maps_a, "maps_a"), _group_stack(maps_b, "maps_b")
    if a.shape[1:] != b.shape[1:]:
        raise DataError(f"maps_a and maps_b differ in size: {a.shape[1:]} vs {b.shape[1:]}")
    shape, n_a = a.shape[1:], len(a)
    x = np.concatenate([a, b]).reshape(n_a + len(b), -1)
    x = x - x.mean(axis=0)  # centring changes no statistic and avoids cancellation
    observed = _welch(x[:n_a].sum(0), (x[:n_a] ** 2).sum(0), n_a, x.sum(0), (x ** 2).sum(0), len(b), statistic)
    counts, maxima = _null_counts(x, n_a, observed, n_permutations, seed, statistic)
    p_raw = (counts + 1.0) / (n_permutations + 1.0)
    if correction == "maxT":
        exceed = maxima.size - np.searchsorted(np.sort(maxima), np.abs(observed) * (1.0 - _TIE), side="left")
        p_corr = (exceed + 1.0) / (n_permutations + 1.0)
    else:
        p_corr = benjamini_hochberg(p_raw)
    return PixelTestResult(
        difference=a.mean(0) - b.mean(0), statistic=observed.reshape(shape), p_raw=p_raw.reshape(shape),
        p_corrected=p_corr.reshape(shape), significant=(p_corr <= alpha).reshape(shape), n_a=n_a, n_b=len(b),
        n_permutations=int(n_permutations), correction=correction, statistic_name=statistic, alpha=float(alpha),
        test=_describe_maps(statistic, correction, n_permutations))


# --------------------------------------------------------------------------- scalar

def _samples(a: np.ndarray, b: np.ndarray, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    """Drop NaN (paired: incomplete pairs); refuse empty samples."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if paired:
        if a.shape != b.shape:
            raise DataError(f"paired samples must have equal length, got {a.size} and {b.size}")
        keep = ~(np.isnan(a) | np.isnan(b))
        a, b = a[keep], b[keep]
    else:
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        raise DataError(f"permutation test needs non-empty samples, got {a.size} and {b.size} values after "
                        f"dropping NaN")
    return a, b


def _null_scalar(a: np.ndarray, b: np.ndarray, paired: bool, n_permutations: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``(B,)`` statistics under the null: sign flips of differences, or relabellings."""
    x = a - b if paired else np.concatenate([a, b])
    chunk, parts = max(1, _CHUNK_VALUES // x.size), []
    for start in range(0, n_permutations, chunk):
        count = min(chunk, n_permutations - start)
        if paired:
            parts.append((rng.choice([-1.0, 1.0], (count, x.size)) @ x) / x.size)
        else:
            members = _permuted_members(rng, count, x.size, a.size)
            sums = members @ x
            parts.append(sums / a.size - (x.sum() - sums) / b.size)
    return np.concatenate(parts)


def _p_value(null: np.ndarray, observed: float, alternative: str) -> float:
    tie = _TIE * max(1.0, abs(observed))
    if alternative == "greater":
        hits = null >= observed - tie
    elif alternative == "less":
        hits = null <= observed + tie
    else:
        hits = np.abs(null) >= abs(observed) - tie
    return float((hits.sum() + 1.0) / (null.size + 1.0))


def _two_sample_ci(a: np.ndarray, b: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap of ``mean(a) - mean(b)``, each sample resampled on its own."""
    rng = np.random.default_rng(seed)
    diffs = (a[rng.integers(0, a.size, (n_boot, a.size))].mean(axis=1)
             - b[rng.integers(0, b.size, (n_boot, b.size))].mean(axis=1))
    low, high = np.quantile(diffs, [0.025, 0.975])
    return float(low), float(high)


def permutation_test_scalar(a: np.ndarray, b: np.ndarray, *, n_permutations: int = 10000, seed: int = 0,
                            alternative: Literal["two-sided", "greater", "less"] = "two-sided",
                            paired: bool = False, n_boot: int = 2000) -> ScalarTestResult:
    """Permutation test of a difference of means, with a bootstrap interval.

    Unpaired: the pooled values are relabelled at random (Fisher 1935;
    Good 2005, "Permutation, Parametric and Bootstrap Tests of Hypotheses").
    Paired (the same images under two models): the signs of the per-pair
    differences are flipped at random, which is exact under the null that
    each difference is symmetric about 0.

    Parameters
    ----------
    a, b : np.ndarray
        1-D samples; NaN values (paired: pairs with a NaN) are dropped.
    n_permutations : int
        Random relabellings or sign flips ``B``.
    seed : int
        Seed of the permutations and of the bootstrap.
    alternative : {"two-sided", "greater", "less"}
        ``"greater"``: the mean of ``a`` exceeds that of ``b``.
    paired : bool
        ``a[i]`` and ``b[i]`` belong to one unit.
    n_boot : int
        Bootstrap resamples of the 95 % interval.

    Returns
    -------
    ScalarTestResult
        p-value ``(count + 1) / (B + 1)``, never 0.
    """
    _check_choice("alternative", alternative, _ALTERNATIVES)
    _check_permutations(n_permutations)
    a, b = _samples(a, b, paired)
    perm_seed, boot_seed = np.random.SeedSequence(seed).spawn(2)
    observed = float(np.mean(a - b)) if paired else float(a.mean() - b.mean())
    null = _null_scalar(a, b, paired, n_permutations, np.random.default_rng(perm_seed))
    boot = int(boot_seed.generate_state(1)[0])
    low, high = (bootstrap_ci(a - b, n_boot=n_boot, seed=boot) if paired
                 else _two_sample_ci(a, b, n_boot, boot))
    kind = "paired sign-flip permutation test" if paired else "two-sample permutation test"
    return ScalarTestResult(difference=observed, ci_low=low, ci_high=high,
                            p_value=_p_value(null, observed, alternative), n_a=int(a.size), n_b=int(b.size),
                            test=f"{kind} of the mean difference, {n_permutations} permutations, {alternative}")
