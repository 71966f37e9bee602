"""``attribution.budget.evaluation_images``: which images the expensive metrics cover, and the plan that says so."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generator.config import ConfigError, parse_config
from generator.pipeline.attribution_stages import stratified_subsample
from generator.pipeline.plan import MapSetPlan, Plan


def _table() -> pd.DataFrame:
    return pd.DataFrame({"band": ["a"] * 10 + ["b"] * 5 + ["c"], "age": (["young", "older"] * 8)})


@pytest.mark.parametrize("size, expected", [(3, {"a": 1, "b": 1, "c": 1}), (4, {"a": 2, "b": 1, "c": 1}),
                                            (8, {"a": 5, "b": 2, "c": 1}), (12, {"a": 7, "b": 4, "c": 1})])
def test_each_group_gets_its_share_and_at_least_one_image(size, expected):
    keep = stratified_subsample(_table(), ["band"], size, seed=0)
    assert keep.sum() == size
    assert _table()[keep]["band"].value_counts().to_dict() == expected


def test_the_subsample_is_seeded_and_unset_or_large_budgets_keep_everything():
    table = _table()
    np.testing.assert_array_equal(stratified_subsample(table, ["band"], 8, seed=3),
                                  stratified_subsample(table, ["band"], 8, seed=3))
    assert not np.array_equal(stratified_subsample(table, ["band"], 8, seed=3),
                              stratified_subsample(table, ["band"], 8, seed=4))
    assert stratified_subsample(table, ["band"], None, seed=0).all()
    assert stratified_subsample(table, ["band"], 40, seed=0).all()
    assert stratified_subsample(table, [], 5, seed=0).sum() == 5
    # fewer images than groups: the largest groups first, never more than asked
    assert stratified_subsample(table, ["band", "age"], 2, seed=0).sum() == 2


def test_the_budget_is_validated():
    with pytest.raises(ConfigError, match="evaluation_images"):
        parse_config({"attribution": {"budget": {"evaluation_images": 1}}}, source="test")
    with pytest.raises(ConfigError, match="evaluation_image"):
        parse_config({"attribution": {"budget": {"evaluation_image": 10}}}, source="test")
    assert parse_config({"attribution": {"budget": {"evaluation_images": 50}}},
                        source="test").attribution.budget.evaluation_images == 50


def test_the_plan_says_what_the_budget_covers():
    plan = Plan(205, ["resnet"], ["captum.saliency"], steps=16, evaluation_images=60)
    plan.map_sets = [MapSetPlan("resnet", "captum.saliency", False, 100.0)]
    plan.calibration = {"resnet": (0.01, 0.03)}
    assert "a stratified subsample of 60 of the 205 images" in plan.summary()
    plan.evaluation_images = 205
    assert "subsample" not in plan.summary()
