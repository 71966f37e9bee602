"""The one-line takeaways under the deck's figures quote the numbers of their tables."""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from generator.report.artifacts import TableArtifact
from generator.report.slides import _fpr_takeaway, _gallery_takeaway, _gap_takeaway, _shortcut_takeaway
from generator.report.verification_text import far_text as _far


def _table(frame: pd.DataFrame) -> TableArtifact:
    return TableArtifact("tab-x", "X", "Caption.", "page.md", "tables/tab-x.csv", frame)


def test_accuracy_gap_takeaway_names_best_and_worst_group_per_model_largest_gap_first():
    frame = pd.DataFrame({"model": ["fair"] * 3 + ["biased"] * 3,
                          "skin_tone": ["MST 1-3", "MST 8-10", "all"] * 2,
                          "accuracy": [0.97, 0.91, 0.94, 0.99, 0.52, 0.75]})
    assert _gap_takeaway(_table(frame), "skin_tone") == (
        "Accuracy biased: 0.99 (MST 1-3) to 0.52 (MST 8-10); fair: 0.97 (MST 1-3) to 0.91 (MST 8-10).")


def test_fpr_takeaway_uses_the_smallest_measured_far_and_states_the_inflation():
    frame = pd.DataFrame({"subgroup": ["all", "A", "B", "A", "B", "A", "B"],
                          "intended_far": [0.01, 0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4],
                          "actual_fpr": [0.01, 0.004, 0.031, 0.0, 0.005, float("nan"), float("nan")],
                          "n_imposter": [2000, 1000, 1000, 1000, 1000, 1000, 1000]})
    # at FAR 1e-3 each subgroup expects 1 false match out of 1000: too few, so FAR 0.01 (10 expected)
    assert _fpr_takeaway(_table(frame)) == ("Global threshold for FAR 0.01: B gets a false match rate of 0.0310, "
                                            "3.1 times the intended (n = 1000 imposter pairs).")
    assert [_far(v) for v in (0.3, 0.01, 1e-3, 1e-4, 2.5e-4)] == ["0.3", "0.01", "1e-3", "1e-4", "2.5e-04"]


def test_shortcut_takeaways_count_detections_over_all_groups():
    frame = pd.DataFrame({"method": ["m1", "m2", "m3", "m1"], "skin_tone": ["all", "all", "all", "MST 1-3"],
                          "n": [21, 19, 21, 5], "detected": [True, False, True, False]})
    table = _table(frame)
    assert _shortcut_takeaway(table) == ("2 of 3 methods find the shift onto the corner mark "
                                         "(Holm-corrected p < 0.05, n = 19-21 images per test).")
    titles = {"m1": "Method one", "m2": "Method two"}
    assert _gallery_takeaway(SimpleNamespace(methods=("m1", "m2")), table, titles).endswith(
        "n = 19-21): found by Method one; not by Method two.")
    assert _gallery_takeaway(SimpleNamespace(methods=("m1", "m3")), table, titles).endswith(
        "found by all 2 methods shown.")
    assert _gallery_takeaway(SimpleNamespace(methods=("m2",)), table, titles).endswith(
        "found by none of these methods.")
