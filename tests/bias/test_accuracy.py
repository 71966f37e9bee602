"""Accuracy by group: values against masks, intervals against fairlearn's own bootstrap."""
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
def test_matches_masks_and_fairlearn_intervals(table, by):
    out = accuracy_by_group(table, by=by, n_boot=50, seed=3)
    for row in out.itertuples(index=False):
        keys = dict(zip(by, row[: len(by)]))
        if all(v == "all" for v in keys.values()):
            mask = np.ones(len(table), bool)
        else:
            mask = np.logical_and.reduce([table[c].to_numpy() == v for c, v in keys.items()])
        assert row.n == mask.sum()
        assert row.accuracy == pytest.approx((table["label"][mask] == table["pred"][mask]).mean(), abs=1e-12)
    frame = MetricFrame(metrics=accuracy_score, y_true=table["label"], y_pred=table["pred"],
                        sensitive_features=table[by], n_boot=50, ci_quantiles=[0.025, 0.975], random_state=3)
    low, high = frame.by_group_ci
    groups = out.iloc[:-1]
    np.testing.assert_allclose(groups["ci_low"], low.to_numpy().ravel(), atol=1e-12)
    np.testing.assert_allclose(groups["ci_high"], high.to_numpy().ravel(), atol=1e-12)
    assert out.iloc[-1]["ci_low"] == pytest.approx(frame.overall_ci[0], abs=1e-12)
