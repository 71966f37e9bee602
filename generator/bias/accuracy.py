"""Accuracy by group with bootstrap confidence intervals (fairlearn's MetricFrame)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame
from sklearn.metrics import accuracy_score

__all__ = ["accuracy_by_group"]


def accuracy_by_group(table: pd.DataFrame, *, by: Sequence[str], n_boot: int = 200,
                      seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Accuracy per group of ``by`` columns, with a percentile bootstrap interval.

    Parameters
    ----------
    table
        One row per image with columns ``label``, ``pred`` and the ``by`` columns.
    by
        Column(s) whose combinations define the groups (several columns give
        intersectional groups).
    n_boot
        Bootstrap resamples of the whole table (fairlearn resamples rows, so a
        group's size varies between resamples as it would between datasets).
    seed
        Random state of the bootstrap.
    level
        Coverage of the interval.

    Returns
    -------
    pandas.DataFrame
        Columns: the ``by`` columns, ``n``, ``accuracy``, ``ci_low``, ``ci_high``,
        plus one row per group; the overall row has ``"all"`` in every ``by`` column.
    """
    alpha = (1.0 - level) / 2.0
    frame = MetricFrame(
        metrics={"accuracy": accuracy_score, "n": _count},
        y_true=table["label"].to_numpy(),
        y_pred=table["pred"].to_numpy(),
        sensitive_features=table[list(by)],
        n_boot=n_boot,
        ci_quantiles=[alpha, 1.0 - alpha],
        random_state=seed,
    )
    low, high = frame.by_group_ci
    out = frame.by_group.copy()
    out["ci_low"], out["ci_high"] = low["accuracy"], high["accuracy"]
    out = out.reset_index()
    overall_low, overall_high = frame.overall_ci
    overall = {c: "all" for c in by} | {
        "accuracy": frame.overall["accuracy"], "n": frame.overall["n"],
        "ci_low": overall_low["accuracy"], "ci_high": overall_high["accuracy"],
    }
    out = pd.concat([out, pd.DataFrame([overall])], ignore_index=True)
    out["n"] = out["n"].astype(int)
    return out[[*by, "n", "accuracy", "ci_low", "ci_high"]]


def _count(y_true: np.ndarray, y_pred: np.ndarray) -> int:
    """Number of rows in a group (kept beside the metric so every row shows its n)."""
    return int(len(y_true))
