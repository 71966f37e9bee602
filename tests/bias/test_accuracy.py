"""Accuracy by group: values against masks and fairlearn, intervals against SciPy's Wilson interval."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame
from sklearn.metrics import accuracy_score

from generator.bias.accuracy import accuracy_by_group


@pytest.fixture
def table():
    rng = np.random.default_rng(4)
    n = 300
    frame = pd.DataFrame({"label": rng.integers(0, 2, n), "a": rng.choice(["x", "y", "z"], n),
                          "b": rng.choice(["u", "v"], n)})
    flip = rng.random(n) < np.where(frame["a"] == "z", 0.4, 0.1)
    frame["pred"] = np.where(flip, 1 - frame["label"], frame["label"])
    return frame


@pytest.mark.parametrize("by", [["a"], ["a", "b"]])
def test_matches_masks_and_wilson_intervals(table, by):
    from scipy.stats import binomtest

    out = accuracy_by_group(table, by=by)
    frame = MetricFrame(metrics=accuracy_score, y_true=table["label"], y_pred=table["pred"],
                        sensitive_features=table[by])
    for row in out.itertuples(index=False):
        keys = dict(zip(by, row[: len(by)]))
        if all(v == "all" for v in keys.values()):
            mask = np.ones(len(table), bool)
            assert row.accuracy == pytest.approx(frame.overall, abs=1e-12)
        else:
            mask = np.logical_and.reduce([table[c].to_numpy() == v for c, v in keys.items()])
        correct = int((table["label"][mask] == table["pred"][mask]).sum())
        assert row.n == mask.sum()
        assert row.accuracy == pytest.approx(correct / mask.sum(), abs=1e-12)
        ci = binomtest(correct, int(mask.sum())).proportion_ci(method="wilson")
        assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high), abs=1e-12)
