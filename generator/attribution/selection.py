"""Choose which images to explain: a seeded stratified sample per group, plus each group's telling cases.

Explaining every image is slow and unreadable; explaining a handful of hand-picked
faces hides the pattern. :func:`select_images` takes the same number of images from
every protected group, then adds per group the images a reader most needs to see:
misclassified ones, the least confident and the most confident.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np
import pandas as pd

from generator.errors import ConfigError, DataError

__all__ = ["REASONS", "select_images"]

#: Why a row was selected, in order of priority (a row chosen twice keeps the first).
REASONS: tuple[str, ...] = ("stratified", "misclassified", "least confident", "most confident")


def select_images(table: pd.DataFrame, *, group_cols: Sequence[str], per_group: int, seed: int,
                  label: str = "label", pred: str | None = "pred", confidence: str | None = "prob_1",
                  extremes_per_group: int = 1) -> pd.DataFrame:
    """Select images to explain, the same number from every group plus each group's extremes.

    Parameters
    ----------
    table : pd.DataFrame
        One row per image, with a unique index.
    group_cols : sequence of str
        Protected-attribute columns; each combination of values is a group.
    per_group : int
        Images sampled at random (seeded) from each group (fewer if the group is smaller).
    seed : int
        Seed of the stratified sample.
    label : str
        Column of true classes.
    pred : str or None
        Column of predicted classes; ``None`` skips the misclassified cases.
    confidence : str or None
        Column of confidences; ``None`` skips the confidence extremes. A column named
        ``prob_1`` (probability of class 1, binary task) is turned into the confidence of
        the predicted class: ``p`` where the prediction is 1, ``1 - p`` where it is 0
        (``max(p, 1 - p)`` without a prediction column). Any other column is taken as
        the confidence of the predicted class already.
    extremes_per_group : int
        Misclassified, least confident and most confident images added per group (each).
        Misclassified images are taken most confident first (the most telling errors).

    Returns
    -------
    pd.DataFrame
        The selected rows of ``table`` (original index kept), group by group, with a column
        ``reason`` in :data:`REASONS`. No row appears twice: a row chosen for two reasons
        keeps the first in the order of :data:`REASONS`. Deterministic for a given seed.

    Raises
    ------
    DataError
        If a column is missing or the index has duplicates.
    ConfigError
        If ``per_group``, ``extremes_per_group`` or ``seed`` is not a non-negative integer.
    """
    group_cols = list(group_cols)
    _check_arguments(table, group_cols, label, pred, confidence, per_group, extremes_per_group, seed)
    scores = _confidence(table, pred, confidence) if confidence is not None else None
    rng = np.random.default_rng(seed)
    chosen: dict[object, str] = {}
    for _, group in table.groupby(group_cols, sort=True, dropna=False):
        for reason, index in _picks(group, rng, label, pred, scores, per_group, extremes_per_group):
            for row in index:
                chosen.setdefault(row, reason)
    selected = table.loc[list(chosen)].copy()
    selected["reason"] = list(chosen.values())
    return selected


def _picks(group: pd.DataFrame, rng: np.random.Generator, label: str, pred: str | None,
           scores: pd.Series | None, per_group: int, extremes: int) -> list[tuple[str, pd.Index]]:
    """The rows of one group for each reason, in the order of :data:`REASONS`."""
    sample = rng.permutation(len(group))[:per_group]
    picks = [("stratified", group.index[np.sort(sample)])]
    if pred is not None:
        wrong = group.index[(group[pred] != group[label]) & group[pred].notna()]
        order = _ranked(scores, wrong, descending=True) if scores is not None else wrong
        picks.append(("misclassified", order[:extremes]))
    if scores is not None:
        valid = group.index[scores.loc[group.index].notna()]
        picks.append(("least confident", _ranked(scores, valid, descending=False)[:extremes]))
        picks.append(("most confident", _ranked(scores, valid, descending=True)[:extremes]))
    return picks


def _ranked(scores: pd.Series, index: pd.Index, *, descending: bool) -> pd.Index:
    """``index`` sorted by score (ties keep table order: stable sort)."""
    values = scores.loc[index].to_numpy(dtype=float)
    order = np.argsort(-values if descending else values, kind="stable")
    return index[order]


def _confidence(table: pd.DataFrame, pred: str | None, column: str) -> pd.Series:
    """Confidence of the predicted class per row."""
    values = pd.to_numeric(table[column], errors="coerce")
    if column != "prob_1":
        return values
    if pred is None:
        return np.maximum(values, 1 - values)
    return pd.Series(np.where(table[pred] == 1, values, 1 - values), index=table.index).where(values.notna())


def _check_arguments(table: pd.DataFrame, group_cols: list[str], label: str, pred: str | None,
                     confidence: str | None, per_group: int, extremes: int, seed: int) -> None:
    """Refuse missing columns, a duplicated index and negative or non-integer counts."""
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    if not group_cols:
        raise ConfigError("group_cols must name at least one column")
    wanted = [*group_cols, label, *(c for c in (pred, confidence) if c is not None)]
    missing = [column for column in wanted if column not in table.columns]
    if missing:
        raise DataError(f"table has no column(s) {missing}; its columns are {list(table.columns)}")
    if not table.index.is_unique:
        raise DataError("table index must be unique to identify the selected images")
    for name, value in (("per_group", per_group), ("extremes_per_group", extremes), ("seed", seed)):
        try:
            ok = not isinstance(value, bool) and operator.index(value) >= 0
        except TypeError:
            ok = False
        if not ok:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
