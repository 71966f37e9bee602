"""The verification headline in words: the worst-served subgroup at a FAR the pair counts support."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from generator.report.verification_text import far_text, fold_interval, fpr_finding


def _frame(rows):
    return pd.DataFrame(rows, columns=["subgroup", "intended_far", "actual_fpr", "actual_fpr_sd", "n_imposter",
                                       "n_folds"])


def test_the_finding_is_read_at_the_smallest_far_with_ten_expected_false_matches():
    frame = _frame([
        ("all", 0.01, 0.01, 0.0, 40000, 5),
        ("A", 0.01, 0.004, 0.002, 20000, 5), ("B", 0.01, 0.03, 0.01, 20000, 5),
        ("A", 1e-3, 0.0, 0.0, 20000, 5), ("B", 1e-3, 0.006, 0.004, 20000, 5),  # 20 expected: supported
        ("A", 1e-4, 0.0, 0.0, 20000, 5), ("B", 1e-4, 0.002, 0.003, 20000, 5),  # 2 expected: not
    ])
    found = fpr_finding(frame)
    assert (found.far, found.subgroup, found.best_subgroup) == (1e-3, "B", "A")
    assert found.ratio == pytest.approx(6.0)
    half = 2.7764451051977987 * 0.004 / math.sqrt(5)  # t(0.975, 4)
    assert (found.low, found.high) == pytest.approx((0.006 - half, 0.006 + half))
    text = found.sentence()
    assert "FAR 1e-3, B gets a false match rate of 0.0060" in text and "6.0 times the intended" in text
    assert "while A gets 0.0000" in text
    assert fpr_finding(frame, far=0.01).subgroup == "B"


def test_no_finding_without_rates_and_equal_bands_are_said_so():
    assert fpr_finding(_frame([("all", 0.1, 0.1, 0.0, 100, 5)])) is None
    equal = fpr_finding(_frame([("A", 0.1, 0.2, 0.0, 100, 5), ("B", 0.1, 0.2, 0.0, 100, 5)]))
    assert "every band gets a false match rate of 0.2000" in equal.sentence()


def test_fold_interval_and_far_text():
    assert fold_interval(0.5, 0.1, 1) != fold_interval(0.5, 0.1, 1)  # NaN pair: one fold has no spread
    low, high = fold_interval(0.01, 0.05, 5)
    assert low == 0.0 and 0.01 < high < 1.0  # clipped at zero
    assert [far_text(v) for v in (0.3, 0.01, 1e-3, 1e-4)] == ["0.3", "0.01", "1e-3", "1e-4"]
