"""Confidence intervals for proportions: Wilson score intervals, from SciPy.

A rate such as accuracy, TPR or FPR is ``k`` successes out of ``n`` trials. A percentile
bootstrap of such a rate collapses at the boundary: 192 correct out of 192 gives the
interval ``[1, 1]``, as if the rate were known exactly, and 190 of 192 gives ``[0.976, 1]``
where the Wilson score interval (Wilson, 1927) gives ``[0.963, 0.997]``. Wilson's interval
keeps close to its nominal coverage for small ``n`` and rates near 0 or 1 (Brown, Cai &
DasGupta, 2001, "Interval Estimation for a Binomial Proportion", Statistical Science), so
it is used for every proportion; a bootstrap serves statistics without a closed form
(F1, ECE, differences of maps).
"""
from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

__all__ = ["PROPORTION_INTERVAL", "proportion_interval"]

#: How the intervals of proportions are named in captions and tables.
PROPORTION_INTERVAL = "Wilson score interval"


def proportion_interval(successes: np.ndarray, trials: np.ndarray, *,
                        level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of ``successes / trials``, elementwise.

    Parameters
    ----------
    successes, trials
        Counts of the same shape (``0 <= successes <= trials``); floats holding whole numbers
        are accepted.
    level
        Coverage, in ``(0, 1)``.

    Returns
    -------
    tuple of np.ndarray
        Lower and upper bounds (float64, same shape); NaN where ``trials`` is 0.

    Raises
    ------
    ValueError
        If the counts are not whole, negative, or ``successes > trials``.
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    k, n = np.broadcast_arrays(k, n)
    if np.any((k != np.round(k)) | (n != np.round(n)) | (k < 0) | (k > n)):
        raise ValueError("proportion_interval needs whole counts with 0 <= successes <= trials")
    low, high = np.full(k.size, np.nan), np.full(k.size, np.nan)
    flat_k, flat_n = k.ravel(), n.ravel()
    for i in np.flatnonzero(flat_n > 0):
        ci = binomtest(int(flat_k[i]), int(flat_n[i])).proportion_ci(confidence_level=level, method="wilson")
        low[i], high[i] = ci.low, ci.high
    return low.reshape(k.shape), high.reshape(k.shape)
