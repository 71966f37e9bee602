"""Permutation tests: calibration under the null, power on planted effects, p never 0."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kstest

from generator.analysis.stats import (
    benjamini_hochberg,
    holm,
    permutation_test_maps,
    permutation_test_scalar,
)
from generator.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def null_runs():
    """200 null experiments: 12 vs 10 maps of 8 x 8 i.i.d. (skewed) noise, 200 permutations each."""
    rng = np.random.default_rng(123)
    runs = []
    for k in range(200):
        data = rng.exponential(size=(22, 8, 8))
        runs.append(permutation_test_maps(data[:12], data[12:], n_permutations=200, seed=k))
    return runs


def test_raw_p_values_are_uniform_under_the_null(null_runs):
    """One pixel per run (independent runs): KS against U(0, 1) does not reject at 0.01."""
    p = np.array([r.p_raw[3, 4] for r in null_runs])
    assert kstest(p, "uniform").pvalue > 0.01


def test_max_t_controls_the_family_wise_error(null_runs):
    """FWER at alpha 0.05 is at most 0.05 + 3 SE (SE of a rate over 200 runs)."""
    rate = np.mean([r.significant.any() for r in null_runs])
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 200)
    assert all(r.p_corrected.min() >= 1 / 201 for r in null_runs)


def test_planted_block_is_detected_and_nothing_else():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(20, 16, 16)), rng.normal(size=(20, 16, 16))
    a[:, 4:8, 4:8] += 2.0
    block = np.zeros((16, 16), bool)
    block[4:8, 4:8] = True
    for correction in ("maxT", "fdr_bh"):
        result = permutation_test_maps(a, b, n_permutations=500, seed=1, correction=correction)
        assert result.significant[block].all()
        assert result.significant[~block].sum() <= 2  # FWER / FDR 5 %: a stray pixel at most
        assert (result.p_raw >= 1 / 501).all() and (result.p_corrected >= result.p_raw - 1e-12).all()
    np.testing.assert_allclose(result.difference, a.mean(0) - b.mean(0))
    assert result.n_a == 20 and result.n_permutations == 500 and "Benjamini" in result.test


def test_pixel_test_is_seeded_and_drops_nan_images():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 4, 4)), rng.normal(size=(5, 4, 4))
    first = permutation_test_maps(a, b, n_permutations=50, seed=3)
    again = permutation_test_maps(a, b, n_permutations=50, seed=3)
    np.testing.assert_array_equal(first.p_corrected, again.p_corrected)
    with_nan = np.concatenate([a, np.full((1, 4, 4), np.nan)])
    assert permutation_test_maps(with_nan, b, n_permutations=50, seed=3).n_a == 6
    partly = a.copy()
    partly[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="some NaN pixels"):
        permutation_test_maps(partly, b)
    with pytest.raises(ConfigError, match="correction"):
        permutation_test_maps(a, b, correction="bonferroni")


def test_scalar_detects_a_shift_and_not_a_null():
    rng = np.random.default_rng(2)
    shifted = permutation_test_scalar(rng.normal(0.8, 1, 40), rng.normal(0, 1, 40), n_permutations=2000,
                                      alternative="greater")
    assert shifted.p_value < 0.01 and shifted.ci_low > 0 and shifted.difference > 0
    nulls = [permutation_test_scalar(rng.normal(size=30), rng.normal(size=30), n_permutations=500, seed=k).p_value
             for k in range(100)]
    assert np.mean(np.array(nulls) <= 0.05) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 100)
    assert "two-sample permutation test" in shifted.test and "2000 permutations, greater" in shifted.test


def test_paired_beats_unpaired_when_units_vary():
    """Large between-image variation, small consistent shift: only the paired test sees it."""
    rng = np.random.default_rng(4)
    base = rng.normal(0, 5, 30)
    after = base + 0.5 + rng.normal(0, 0.2, 30)
    paired = permutation_test_scalar(after, base, paired=True, n_permutations=2000)
    unpaired = permutation_test_scalar(after, base, n_permutations=2000)
    assert paired.p_value < 0.001 and unpaired.p_value > 0.2
    assert paired.difference == pytest.approx(np.mean(after - base))
    assert paired.test.startswith("paired sign-flip permutation test")


def test_p_value_is_never_zero_and_ties_count():
    far = permutation_test_scalar(np.full(20, 5.0), np.zeros(20), n_permutations=99, paired=True,
                                  alternative="greater")
    assert far.p_value == pytest.approx(1 / 100)  # all-plus flips (2^-20) aside, only the observed one counts
    same = permutation_test_scalar(np.ones(8), np.ones(8), n_permutations=99)
    assert same.p_value == 1.0 and same.difference == 0.0
    with pytest.raises(DataError, match="equal length"):
        permutation_test_scalar(np.ones(3), np.ones(4), paired=True)


def test_holm_and_bh_known_answers():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])
    assert np.isnan(holm(np.array([0.01, np.nan]))[1])
