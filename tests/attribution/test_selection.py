"""Tests of generator.attribution.selection.select_images, answers computed independently with masks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generator.attribution.selection import REASONS, select_images
from generator.errors import ConfigError, DataError

SIZES = {("A", "x"): 12, ("A", "y"): 9, ("B", "x"): 3, ("B", "y"): 15}


@pytest.fixture()
def table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [{"skin": skin, "sex": sex} for (skin, sex), n in SIZES.items() for _ in range(n)]
    frame = pd.DataFrame(rows)
    frame["label"] = rng.integers(0, 2, len(frame))
    frame["prob_1"] = rng.uniform(0, 1, len(frame)).round(3)
    frame["pred"] = (frame["prob_1"] > 0.5).astype(int)
    frame.index = [f"img{i:03d}" for i in range(len(frame))]  # a non-default index that must be kept
    return frame.sample(frac=1.0, random_state=1)  # rows of a group are not contiguous


def _select(table: pd.DataFrame, **kwargs) -> pd.DataFrame:
    return select_images(table, group_cols=["skin", "sex"], per_group=4, seed=5, **kwargs)


def _confidence(table: pd.DataFrame) -> pd.Series:
    return pd.Series(np.where(table["pred"] == 1, table["prob_1"], 1 - table["prob_1"]), index=table.index)


def test_stratified_counts_per_group(table) -> None:
    selected = _select(table)
    stratified = selected[selected["reason"] == "stratified"]
    counts = stratified.groupby(["skin", "sex"]).size().to_dict()
    assert counts == {group: min(4, n) for group, n in SIZES.items()}


def test_rows_are_original_rows_without_duplicates(table) -> None:
    selected = _select(table)
    assert selected.index.is_unique
    assert set(selected["reason"]) <= set(REASONS)
    pd.testing.assert_frame_equal(selected.drop(columns="reason"), table.loc[selected.index])


def test_misclassified_rows_are_misclassified_and_the_most_confident_errors(table) -> None:
    selected = _select(table, extremes_per_group=2)
    wrong = selected[selected["reason"] == "misclassified"]
    assert len(wrong) > 0 and (wrong["pred"] != wrong["label"]).all()
    assert wrong.groupby(["skin", "sex"]).size().max() <= 2
    confidence = _confidence(table)
    for group, rows in table.groupby(["skin", "sex"]):
        errors = rows.index[rows["pred"] != rows["label"]]
        top = confidence.loc[errors].sort_values(ascending=False, kind="stable").index[:2]
        assert set(top) <= set(selected.index), group  # chosen here or already for an earlier reason


def test_confidence_extremes_per_group(table) -> None:
    selected = _select(table)
    confidence = _confidence(table)
    for group, rows in table.groupby(["skin", "sex"]):
        least, most = confidence.loc[rows.index].idxmin(), confidence.loc[rows.index].idxmax()
        assert least in selected.index and most in selected.index, group
        assert selected.loc[least, "reason"] in ("stratified", "misclassified", "least confident")
        assert selected.loc[most, "reason"] in ("stratified", "misclassified", "most confident")
    assert (selected["reason"] == "least confident").any() and (selected["reason"] == "most confident").any()


def test_prob_1_without_pred_uses_max_p_and_one_minus_p(table) -> None:
    selected = _select(table, pred=None)
    assert "misclassified" not in set(selected["reason"])
    confidence = np.maximum(table["prob_1"], 1 - table["prob_1"])
    for _, rows in table.groupby(["skin", "sex"]):
        assert confidence.loc[rows.index].idxmin() in selected.index


def test_only_stratified_without_pred_and_confidence(table) -> None:
    selected = _select(table, pred=None, confidence=None)
    assert set(selected["reason"]) == {"stratified"} and len(selected) == sum(min(4, n) for n in SIZES.values())


def test_deterministic_and_seeded(table) -> None:
    pd.testing.assert_frame_equal(_select(table), _select(table))
    other = select_images(table, group_cols=["skin", "sex"], per_group=4, seed=6)
    assert set(other.index) != set(_select(table).index)


def test_bad_arguments_are_refused(table) -> None:
    with pytest.raises(DataError, match="no column"):
        select_images(table, group_cols=["age"], per_group=2, seed=0)
    with pytest.raises(ConfigError, match="per_group"):
        select_images(table, group_cols=["skin"], per_group=-1, seed=0)
    with pytest.raises(ConfigError, match="seed"):
        select_images(table, group_cols=["skin"], per_group=1, seed=1.5)
    with pytest.raises(DataError, match="unique"):
        select_images(pd.concat([table, table]), group_cols=["skin"], per_group=1, seed=0)
