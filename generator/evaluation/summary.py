"""Aggregate per-sample metric values: group means with bootstrap intervals, method rankings."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from generator.errors import ConfigError, DataError

__all__ = ["SUMMARY_COLUMNS", "bootstrap_ci", "rank_methods", "summarise"]

SUMMARY_COLUMNS: tuple[str, ...] = ("metric", "n", "mean", "ci_low", "ci_high")
_DIRECTIONS: tuple[str, ...] = ("higher", "lower")
_BOOT_CHUNK = 2_000_000  # resampled values held in memory at once


def _check_columns(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"{what} column(s) {missing} not found; the table has {list(table.columns)}")


def bootstrap_ci(values: np.ndarray, *, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (Efron & Tibshirani 1993, ch. 13).

    Parameters
    ----------
    values : np.ndarray
        1-D sample without NaN.
    n_boot : int
        Resamples (with replacement, of the sample's size).
    seed : int
        Seed of the resampling.
    level : float
        Coverage of the interval, in ``(0, 1)``.

    Returns
    -------
    tuple of float
        ``(low, high)``; ``(nan, nan)`` for an empty sample, ``(v, v)`` for one value.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOT_CHUNK // values.size)
    means = np.concatenate([values[rng.integers(0, values.size, (min(chunk, n_boot - start), values.size))]
                            .mean(axis=1) for start in range(0, n_boot, chunk)])
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _groups(table: pd.DataFrame, by: Sequence[str]) -> list[tuple[tuple, pd.DataFrame]]:
    """``(key tuple, rows)`` per combination of ``by`` (one group of everything if ``by`` is empty)."""
    if not by:
        return [((), table)]
    return [(key if isinstance(key, tuple) else (key,), rows)
            for key, rows in table.groupby(list(by), sort=True, dropna=False)]


def summarise(per_sample: pd.DataFrame, *, by: Sequence[str], value_cols: Sequence[str],
              n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Mean and percentile-bootstrap interval of each metric per group, NaN-aware.

    Parameters
    ----------
    per_sample : pandas.DataFrame
        One row per sample (image, or image x method ...), with the ``by`` and
        ``value_cols`` columns.
    by : sequence of str
        Grouping columns (e.g. ``["method", "skin_tone"]``); empty for one overall group.
    value_cols : sequence of str
        Numeric (or boolean) metric columns to summarise.
    n_boot : int
        Bootstrap resamples per group and metric.
    seed : int
        Seed of every resampling (each group and metric restarts from it, so a
        result does not depend on which other groups are present).
    level : float
        Coverage of the interval, in ``(0, 1)``.

    Returns
    -------
    pandas.DataFrame
        Long format, one row per group and metric, columns ``*by, metric, n,
        mean, ci_low, ci_high``; ``n`` counts the non-NaN values the row rests
        on (NaN values are dropped, never counted as zero); mean and interval
        are NaN where ``n == 0``.

    Raises
    ------
    DataError
        If a column is missing.
    ConfigError
        If ``level`` is not in ``(0, 1)`` or ``n_boot < 1``.
    """
    _check_columns(per_sample, [*by, *value_cols], "summarise")
    if not 0.0 < level < 1.0 or n_boot < 1:
        raise ConfigError(f"level must be in (0, 1) and n_boot >= 1, got level={level!r}, n_boot={n_boot!r}")
    rows = []
    for key, frame in _groups(per_sample, by):
        for metric in value_cols:
            values = pd.to_numeric(frame[metric], errors="coerce").to_numpy(dtype=np.float64)
            values = values[~np.isnan(values)]
            low, high = bootstrap_ci(values, n_boot=n_boot, seed=seed, level=level)
            mean = float(values.mean()) if values.size else float("nan")
            rows.append((*key, metric, int(values.size), mean, low, high))
    return pd.DataFrame(rows, columns=[*by, *SUMMARY_COLUMNS])


def _criterion_ranks(means: pd.DataFrame, criteria: Mapping[str, str]) -> pd.DataFrame:
    """Rank (1 = best, ties averaged, NaN kept) of every row on every criterion column."""
    return pd.DataFrame({f"rank_{metric}": means[metric].rank(ascending=direction == "lower",
                                                              method="average")
                         for metric, direction in criteria.items()}, index=means.index)


def _rank_group(means: pd.DataFrame, criteria: Mapping[str, str]) -> pd.DataFrame:
    """Rank the methods (rows of ``means``) of one group."""
    ranks = _criterion_ranks(means, criteria)
    out = ranks.copy()
    out["mean_rank"] = ranks.mean(axis=1, skipna=True)
    out["rank"] = out["mean_rank"].rank(method="min")
    out["n_criteria"] = ranks.notna().sum(axis=1)
    out["criteria"] = [", ".join(f"{m} ({d})" for m, d in criteria.items() if not np.isnan(means.at[i, m]))
                       for i in means.index]
    return out


def rank_methods(summary: pd.DataFrame, *, criteria: Mapping[str, Literal["higher", "lower"]],
                 method_col: str = "method", by: Sequence[str] = ()) -> pd.DataFrame:
    """Rank methods by their mean rank over several metrics.

    On each criterion the methods are ranked by their ``mean`` (1 = best:
    highest for ``"higher"``, lowest for ``"lower"``; ties share the average
    rank); a method's score is the mean of its ranks over the criteria it has
    a value for, and its final ``rank`` orders that score (ties share the
    smallest rank). This is the mean-rank aggregation common in XAI benchmarks
    (e.g. Hedström et al. 2023, "Quantus", JMLR); it ignores effect sizes and
    intervals, so read it beside the summary.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`summarise` grouped by at least ``method_col`` (and ``by``).
    criteria : mapping of str to {"higher", "lower"}
        Metric name -> which direction is better.
    method_col : str
        Column naming the method.
    by : sequence of str
        Columns to rank within (e.g. ``["model"]``); empty for one ranking.

    Returns
    -------
    pandas.DataFrame
        One row per method (and ``by`` group), sorted by ``rank``; columns
        ``*by, method_col, rank, mean_rank, n_criteria, criteria, rank_<metric>...``,
        where ``criteria`` lists the metrics (with direction) the rank rests on.

    Raises
    ------
    ConfigError
        If a direction is not "higher" or "lower", or ``criteria`` is empty.
    DataError
        If a column or criterion is missing, or a method has two rows for one metric.
    """
    _check_criteria(criteria)
    _check_columns(summary, [*by, method_col, "metric", "mean"], "rank_methods")
    absent = sorted(set(criteria) - set(summary["metric"]))
    if absent:
        raise DataError(f"criteria {absent} are not metrics of the summary; it has "
                        f"{sorted(summary['metric'].unique())}")
    chosen = summary[summary["metric"].isin(list(criteria))]
    if chosen.duplicated([*by, method_col, "metric"]).any():
        raise DataError(f"summary has several rows per ({', '.join([*by, method_col])}, metric): "
                        f"pass the extra grouping columns as `by`")
    means = chosen.pivot_table(index=[*by, method_col], columns="metric", values="mean", dropna=False)
    means = means.reindex(columns=list(criteria))
    parts = [_rank_group(rows, criteria) for _, rows in _groups(means.reset_index(), by)]
    ranked = pd.concat(parts).join(means.reset_index()[[*by, method_col]])
    columns = [*by, method_col, "rank", "mean_rank", "n_criteria", "criteria",
               *(f"rank_{m}" for m in criteria)]
    return ranked[columns].sort_values([*by, "rank", method_col]).reset_index(drop=True)


def _check_criteria(criteria: Mapping[str, str]) -> None:
    if not criteria:
        raise ConfigError("criteria must name at least one metric and its direction")
    for metric, direction in criteria.items():
        if direction not in _DIRECTIONS:
            raise ConfigError(f"criteria[{metric!r}] = {direction!r} is not accepted: "
                              f"use one of {list(_DIRECTIONS)}")
