"""Tests of generator.evaluation.summary: bootstrap summaries and method rankings."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generator.errors import ConfigError, DataError
from generator.evaluation.summary import bootstrap_ci, rank_methods, summarise


def _per_sample() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"method": np.repeat(["a", "b"], 40), "group": np.tile(["x", "y"], 40),
                          "score": rng.normal(size=80), "hit": rng.random(80) < 0.5})
    table.loc[[0, 2, 4], "score"] = np.nan
    return table


def test_ci_contains_mean_and_columns() -> None:
    summary = summarise(_per_sample(), by=["method", "group"], value_cols=["score", "hit"], n_boot=500)
    assert list(summary.columns) == ["method", "group", "metric", "n", "mean", "ci_low", "ci_high"]
    assert len(summary) == 2 * 2 * 2
    assert ((summary["ci_low"] <= summary["mean"]) & (summary["mean"] <= summary["ci_high"])).all()
    assert (summary["ci_low"] < summary["ci_high"]).all()


def test_nan_values_are_dropped_not_counted() -> None:
    table = _per_sample()
    summary = summarise(table, by=["method", "group"], value_cols=["score"], n_boot=100)
    row = summary[(summary["method"] == "a") & (summary["group"] == "x")].iloc[0]
    values = table[(table["method"] == "a") & (table["group"] == "x")]["score"]
    assert row["n"] == 17 and row["mean"] == pytest.approx(values.mean(skipna=True), abs=1e-12)
    empty = summarise(pd.DataFrame({"score": [np.nan, np.nan]}), by=[], value_cols=["score"])
    assert empty.loc[0, "n"] == 0 and empty[["mean", "ci_low", "ci_high"]].isna().all(axis=None)


def test_bootstrap_is_seeded_and_degenerate_cases() -> None:
    values = np.random.default_rng(1).normal(size=30)
    assert bootstrap_ci(values, seed=2) == bootstrap_ci(values, seed=2)
    assert bootstrap_ci(np.array([3.0])) == (3.0, 3.0)
    low, high = bootstrap_ci(values, n_boot=2000, level=0.9)
    # normal approximation of the 90 % interval of the mean, tolerance 0.1
    half = 1.645 * values.std(ddof=1) / np.sqrt(30)
    assert low == pytest.approx(values.mean() - half, abs=0.1)
    assert high == pytest.approx(values.mean() + half, abs=0.1)


def _hand_summary() -> pd.DataFrame:
    # deletion: lower is better, insertion: higher is better
    rows = [("a", "deletion", 0.1), ("b", "deletion", 0.3), ("c", "deletion", 0.2),
            ("a", "insertion", 0.5), ("b", "insertion", 0.9), ("c", "insertion", 0.4),
            ("a", "sparseness", 0.9)]
    return pd.DataFrame(rows, columns=["method", "metric", "mean"])


def test_rank_methods_hand_example() -> None:
    ranked = rank_methods(_hand_summary(), criteria={"deletion": "lower", "insertion": "higher"})
    # ranks: a (1, 2) -> 1.5; b (3, 1) -> 2; c (2, 3) -> 2.5
    assert ranked["method"].tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(ranked["mean_rank"], [1.5, 2.0, 2.5])
    assert ranked["rank"].tolist() == [1, 2, 3]
    assert ranked.loc[0, "criteria"] == "deletion (lower), insertion (higher)"
    assert ranked["rank_deletion"].tolist() == [1, 3, 2]


def test_rank_methods_lists_only_criteria_a_method_has() -> None:
    ranked = rank_methods(_hand_summary(), criteria={"insertion": "higher", "sparseness": "higher"})
    by_method = ranked.set_index("method")
    assert by_method.loc["b", "criteria"] == "insertion (higher)"
    assert by_method.loc["b", "n_criteria"] == 1 and by_method.loc["a", "n_criteria"] == 2


def test_rank_methods_within_groups() -> None:
    summary = pd.concat([_hand_summary().assign(model="fair"),
                         _hand_summary().assign(model="biased", mean=lambda t: -t["mean"])])
    ranked = rank_methods(summary, criteria={"deletion": "lower"}, by=["model"])
    assert ranked[ranked["model"] == "fair"]["method"].tolist() == ["a", "c", "b"]
    assert ranked[ranked["model"] == "biased"]["method"].tolist() == ["b", "c", "a"]
    with pytest.raises(DataError, match="by"):
        rank_methods(summary, criteria={"deletion": "lower"})


def test_refuses_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="higher"):
        rank_methods(_hand_summary(), criteria={"deletion": "smaller"})
    with pytest.raises(DataError, match="faithfulness"):
        rank_methods(_hand_summary(), criteria={"faithfulness": "higher"})
    with pytest.raises(DataError, match="column"):
        summarise(_per_sample(), by=["model"], value_cols=["score"])
    with pytest.raises(ConfigError, match="level"):
        summarise(_per_sample(), by=[], value_cols=["score"], level=95)
