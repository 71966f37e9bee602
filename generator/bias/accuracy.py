"""Accuracy by group with Wilson score intervals.

Point estimates come from fairlearn's ``MetricFrame``; the interval of each group's
accuracy (``k`` correct of ``n``) is the Wilson score interval
(:func:`generator.bias.intervals.proportion_interval`), which, unlike a percentile
bootstrap, does not collapse to ``[1, 1]`` when a group has no error.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from sklearn.metrics import accuracy_score

from generator.bias.intervals import proportion_interval

__all__ = ["accuracy_by_group"]


def accuracy_by_group(table: pd.DataFrame, *, by: Sequence[str], level: float = 0.95) -> pd.DataFrame:
    """Accuracy per group of ``by`` columns, with a Wilson score interval.

    Parameters
    ----------
    table
        One row per image with columns ``label``, ``pred`` and the ``by`` columns.
    by
        Column(s) whose combinations define the groups (several columns give
        intersectional groups).
    level
        Coverage of the interval.

    Returns
    -------
    pandas.DataFrame
        Columns: the ``by`` columns, ``n``, ``accuracy``, ``ci_low``, ``ci_high``;
        one row per group, then an overall row with ``"all"`` in every ``by`` column.
    """
    by = list(by)
    frame = MetricFrame(metrics={"accuracy": accuracy_score}, y_true=table["label"].to_numpy(),
                        y_pred=table["pred"].to_numpy(), sensitive_features=table[by])
    out = frame.by_group.reset_index()
    codes = _group_codes(table, by, out)
    correct = (table["label"].to_numpy() == table["pred"].to_numpy()).astype(float)
    hits = np.append(np.bincount(codes, weights=correct, minlength=len(out)), correct.sum())
    sizes = np.append(np.bincount(codes, minlength=len(out)), len(codes))
    low, high = proportion_interval(np.round(hits), sizes, level=level)
    out["n"] = sizes[:-1]
    out["ci_low"], out["ci_high"] = low[:-1], high[:-1]
    overall = {c: "all" for c in by} | {"n": len(table), "accuracy": float(frame.overall["accuracy"]),
                                        "ci_low": low[-1], "ci_high": high[-1]}
    out = pd.concat([out, pd.DataFrame([overall])], ignore_index=True)
    out["n"] = out["n"].astype(int)
    return out[[*by, "n", "accuracy", "ci_low", "ci_high"]]


def _group_codes(table: pd.DataFrame, by: list[str], groups: pd.DataFrame) -> np.ndarray:
    """Index of each row's group in ``groups`` (MetricFrame's order)."""
    keys = pd.MultiIndex.from_frame(groups[by])
    return keys.get_indexer(pd.MultiIndex.from_frame(table[by])).astype(np.int64)
