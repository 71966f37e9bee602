"""The replicate analysis: its power statement and its verdict lists."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from generator.pipeline.results_replicates import detectable_effect, verdicts


@pytest.mark.parametrize(("n", "m"), [(380, 20), (60, 6), (25, 1)])
def test_detectable_effect_has_the_stated_power(n, m):
    """Simulate paired differences with mean d * sd: a one-sided test at level 0.05 / m rejects in about 80 %."""
    d = detectable_effect(n, m)
    rng = np.random.default_rng(0)
    trials = 4000
    samples = rng.normal(d, 1.0, size=(trials, n))
    t = samples.mean(axis=1) / (samples.std(axis=1, ddof=1) / np.sqrt(n))
    power = float((stats.t.sf(t, df=n - 1) < 0.05 / m).mean())
    # The normal approximation slightly overstates the t test's power for small n.
    assert 0.80 - (0.06 if n < 50 else 0.03) <= power <= 0.83, (d, power)


def test_detectable_effect_values():
    assert detectable_effect(380, 20) == pytest.approx((stats.norm.ppf(1 - 0.0025) + stats.norm.ppf(0.8)) / np.sqrt(380))
    assert detectable_effect(100, 1) == pytest.approx((1.6448536 + 0.8416212) / 10, rel=1e-6)
    assert np.isnan(detectable_effect(1, 3))


def test_verdicts_sort_methods_by_how_many_draws_detect():
    summary = pd.DataFrame({"title": ["A", "B", "C", "D"], "tested": [3, 3, 3, 0], "detected": [3, 1, 0, 0]})
    assert verdicts(summary) == {"all": ["A"], "some": ["B"], "none": ["C"]}
