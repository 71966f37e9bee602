"""Group labels in natural order: ordinal bins read in order, the default's labels as before."""
from __future__ import annotations

import numpy as np
import pandas as pd

from generator.bias.classification import classification_report
from generator.ordering import natural_sorted


def test_fairface_age_bins_read_in_order():
    bins = ["20-29", "0-2", "more than 70", "10-19", "3-9", "60-69"]
    assert natural_sorted(bins) == ["0-2", "3-9", "10-19", "20-29", "60-69", "more than 70"]


def test_labels_without_numbers_sort_as_before():
    tones = ["MST 8-10", "MST 1-3", "MST 6-7", "MST 4-5"]
    assert natural_sorted(tones) == sorted(tones)
    assert natural_sorted(["young", "Older", "adult"]) == ["adult", "Older", "young"]


def test_report_lists_groups_in_natural_order():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.choice(["0-2", "3-9", "10-19", "20-29"], 200), "label": rng.integers(0, 2, 200)})
    frame["pred"] = frame["label"]
    by_group = classification_report(frame, attributes=["age"], n_boot=5).by_group
    groups = list(dict.fromkeys(by_group.loc[by_group["attributes"] == "age", "group"]))
    assert groups == ["0-2", "3-9", "10-19", "20-29"]
    counts = frame.groupby("age").size()
    rows = by_group[(by_group["attributes"] == "age") & (by_group["metric"] == "accuracy")].set_index("group")
    assert rows["n"].to_dict() == counts.to_dict()  # each group keeps its own rows after reordering


def test_verification_subgroups_in_natural_order():
    from generator.bias.verification import verification_report

    rng = np.random.default_rng(1)
    rows = []
    for subgroup in ("10-19", "3-9", "0-2"):
        for fold in range(1, 4):
            for label, mean in ((1, 0.7), (0, 0.2)):
                rows += [{"subgroup": subgroup, "fold": fold, "label": label, "score": s}
                         for s in rng.normal(mean, 0.1, 40)]
    report = verification_report(pd.DataFrame(rows), fars=(0.1,))
    listed = [g for g in dict.fromkeys(report.tar_at_far["subgroup"]) if g != "all"]
    assert listed == ["0-2", "3-9", "10-19"]


def test_sample_grid_rows_fall_back_to_the_first_attribute_when_the_pair_has_too_many_groups():
    from generator.pipeline.results_models import MAX_SAMPLE_ROWS, sample_rows

    fairface = pd.DataFrame([{"race": r, "age": a} for r in range(7) for a in range(9)])  # 63 groups
    assert sample_rows(fairface, ("race", "age")) == ("race",)
    small = fairface[(fairface["race"] < 4) & (fairface["age"] < 4)]  # 16 groups
    assert small.groupby(["race", "age"]).ngroups == MAX_SAMPLE_ROWS
    assert sample_rows(small, ("race", "age")) == ("race", "age")
