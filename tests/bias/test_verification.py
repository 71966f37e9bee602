"""Verification bias (Robinson et al. 2020): known answers from Gaussian score models.

Genuine scores ~ N(mu_g, 1) and imposter scores ~ N(shift_g, 1) per subgroup, so every
TAR and FPR has a closed form. Tolerances are 3 standard errors: the binomial error of
the measured share plus, where a threshold is estimated, the delta-method error of the
empirical quantile, sqrt(f (1 - f) / n) / phi(z), carried through the density.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.stats import norm

from generator.bias.verification import (
    FPR_COLUMNS,
    RANK1_COLUMNS,
    TAR_COLUMNS,
    rank1_confusion,
    threshold_at_far,
    verification_report,
)
from generator.errors import DataError

N_IMPOSTER, N_GENUINE = 200_000, 20_000
FARS = (0.1, 1e-2, 1e-3, 1e-4)


def _gaussian_pairs(spec: dict[str, tuple[float, float]], *, seed: int) -> pd.DataFrame:
    """Pairs with genuine ~ N(mu, 1), imposter ~ N(shift, 1) for each subgroup: (mu, shift)."""
    rng = np.random.default_rng(seed)
    parts = []
    for subgroup, (mu, shift) in spec.items():
        parts.append(pd.DataFrame({"subgroup": subgroup, "label": 1, "score": rng.normal(mu, 1.0, N_GENUINE)}))
        parts.append(pd.DataFrame({"subgroup": subgroup, "label": 0, "score": rng.normal(shift, 1.0, N_IMPOSTER)}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def shifted():
    """A's imposters ~ N(0, 1), B's ~ N(0.5, 1); genuine means 2 and 3."""
    pairs = _gaussian_pairs({"A": (2.0, 0.0), "B": (3.0, 0.5)}, seed=11)
    return pairs, verification_report(pairs, fars=FARS, seed=0)


def _quantile_se(far: float, n: int, shift: float = 0.0) -> float:
    """Standard error of the empirical (1 - far) quantile of N(shift, 1) imposters."""
    return np.sqrt(far * (1 - far) / n) / norm.pdf(norm.isf(far))


def test_tar_with_own_threshold_matches_the_normal_model(shifted):
    _, report = shifted
    assert tuple(report.tar_at_far.columns) == TAR_COLUMNS
    for subgroup, mu, shift in (("A", 2.0, 0.0), ("B", 3.0, 0.5)):
        for far in FARS:
            row = report.tar_at_far.set_index(["subgroup", "far"]).loc[(subgroup, far)]
            z = shift + norm.isf(far)
            expected = norm.sf(z - mu)  # 1 - Phi(Phi^-1(1 - f) - mu), shifted with the imposters
            se = np.hypot(np.sqrt(expected * (1 - expected) / N_GENUINE),
                          norm.pdf(z - mu) * _quantile_se(far, N_IMPOSTER))
            assert abs(row["tar_subgroup"] - expected) < 3 * se, (subgroup, far)
            assert row["n_genuine"] == N_GENUINE and row["n_imposter"] == N_IMPOSTER and row["note"] == ""


def _mixture_threshold(far: float) -> float:
    """Analytic global threshold: half the imposters ~ N(0, 1), half ~ N(0.5, 1) exceed it with probability far."""
    return brentq(lambda x: 0.5 * norm.sf(x) + 0.5 * norm.sf(x - 0.5) - far, -5, 10)


def test_global_threshold_inflates_the_shifted_subgroups_fpr(shifted):
    _, report = shifted
    table = report.fpr_at_global.set_index(["subgroup", "intended_far"])
    assert tuple(report.fpr_at_global.columns) == FPR_COLUMNS
    for far in FARS:
        t = _mixture_threshold(far)
        row = table.loc[("B", far)]
        expected = norm.sf(row["threshold"] - 0.5)
        assert abs(row["threshold"] - t) < 3 * np.sqrt(far * (1 - far) / (2 * N_IMPOSTER)) / (
            0.5 * norm.pdf(t) + 0.5 * norm.pdf(t - 0.5))
        assert abs(row["actual_fpr"] - expected) < 3 * np.sqrt(expected * (1 - expected) / N_IMPOSTER)
        assert row["actual_fpr"] > far and row["percent_difference"] > 25
        assert table.loc[("A", far), "actual_fpr"] < far
        assert row["percent_difference"] == pytest.approx(100 * (row["actual_fpr"] - far) / far)


def test_subgroup_thresholds_recover_the_intended_far(shifted):
    pairs, report = shifted
    fresh = _gaussian_pairs({"A": (2.0, 0.0), "B": (3.0, 0.5)}, seed=12)
    tar = report.tar_at_far.set_index(["subgroup", "far"])
    for subgroup in ("A", "B"):
        for far in FARS:
            t = tar.loc[(subgroup, far), "threshold_subgroup"]
            own = pairs[(pairs["subgroup"] == subgroup) & (pairs["label"] == 0)]["score"]
            # on its own imposters: exactly floor(far * n) accepted (continuous scores, no ties)
            assert (own >= t).sum() == int(np.floor(far * N_IMPOSTER + 1e-9))
            held_out = fresh[(fresh["subgroup"] == subgroup) & (fresh["label"] == 0)]["score"]
            # on fresh imposters: within 3 SE (sampling of the threshold and of the fresh FPR)
            assert abs((held_out >= t).mean() - far) < 3 * np.sqrt(2 * far * (1 - far) / N_IMPOSTER)


def test_threshold_at_far_on_a_hand_example_with_ties():
    scores = np.array([0.9, 0.8, 0.8, 0.7, 0.5, 0.3, 0.2, 0.1, 0.1, 0.0])
    # far 0.1: one false accept allowed -> reject 0.8 and below, accept 0.9
    assert threshold_at_far(scores, 0.1) == np.nextafter(0.8, np.inf)
    # far 0.2: two allowed, but 0.8 is tied twice: accepting either accepts both (3 > 2), so both rejected
    assert threshold_at_far(scores, 0.2) == np.nextafter(0.8, np.inf)
    assert threshold_at_far(scores, 0.3) == np.nextafter(0.7, np.inf)
    assert threshold_at_far(scores[::-1], 0.3) == np.nextafter(0.7, np.inf)  # order does not matter
    for far in (0.1, 0.2, 0.3, 0.5):
        t = threshold_at_far(scores, far)
        assert (scores >= t).mean() <= far  # valid
        assert (scores >= np.nextafter(t, -np.inf)).mean() > far  # and the smallest valid one
    assert np.isnan(threshold_at_far(scores, 0.05))  # 0.05 * 10 < 1: cannot be resolved
    assert threshold_at_far(scores, 1.0) == -np.inf


def test_folds_choose_thresholds_on_the_other_folds_only():
    # fold 1 imposters lie in [0, 1), fold 2 imposters in [5, 6); all genuine scores are 3.
    # Without leakage fold 1 is judged with fold 2's threshold (about 5.9: TAR 0, FPR 0)
    # and fold 2 with fold 1's (about 0.9: TAR 1, FPR 1); pooled thresholds would give TAR 0 twice.
    imposters_1, imposters_2 = np.linspace(0, 1, 100, endpoint=False), np.linspace(5, 6, 100, endpoint=False)
    pairs = pd.DataFrame({"subgroup": "S", "fold": np.repeat([1, 2, 1, 2], 100),
                          "label": np.repeat([0, 0, 1, 1], 100),
                          "score": np.concatenate([imposters_1, imposters_2, np.full(200, 3.0)])})
    report = verification_report(pairs, fars=(0.1,))
    row = report.tar_at_far.set_index("subgroup").loc["S"]
    expected = [threshold_at_far(imposters_2, 0.1), threshold_at_far(imposters_1, 0.1)]
    assert row["threshold_global"] == pytest.approx(np.mean(expected), abs=1e-12)
    assert row["threshold_global_sd"] == pytest.approx(np.std(expected, ddof=1), abs=1e-12)
    assert row["tar_global"] == 0.5 and row["tar_subgroup"] == 0.5 and row["n_folds"] == 2
    assert row["tar_global_sd"] == pytest.approx(np.sqrt(0.5))
    fpr = report.fpr_at_global.set_index("subgroup").loc["S"]
    assert fpr["actual_fpr"] == 0.5 and fpr["n_folds"] == 2


def test_unresolvable_far_is_nan_with_a_note():
    rng = np.random.default_rng(3)
    pairs = pd.DataFrame({"subgroup": "S", "label": np.repeat([1, 0], [30, 50]),
                          "score": np.r_[rng.normal(2, 1, 30), rng.normal(0, 1, 50)]})
    report = verification_report(pairs, fars=(0.1, 1e-3))
    tar = report.tar_at_far.set_index(["subgroup", "far"])
    assert np.isfinite(tar.loc[("S", 0.1), "tar_global"])
    row = tar.loc[("S", 1e-3)]
    assert row[["threshold_global", "tar_global", "threshold_subgroup", "tar_subgroup"]].isna().all()
    assert "needs at least 1000 imposters (have 50)" in row["note"]
    fpr = report.fpr_at_global.set_index(["subgroup", "intended_far"]).loc[("S", 1e-3)]
    assert np.isnan(fpr["actual_fpr"]) and "needs at least 1000" in fpr["note"]
    assert any("only 50 imposter" in w for w in report.warnings)


def test_subgroup_without_genuine_pairs_is_reported_not_fatal():
    pairs = pd.DataFrame({"subgroup": ["A"] * 20 + ["B"] * 10, "label": [1] * 10 + [0] * 20,
                          "score": np.linspace(0, 1, 30)})
    report = verification_report(pairs, fars=(0.1,))
    row = report.tar_at_far.set_index("subgroup").loc["B"]
    assert np.isnan(row["tar_global"]) and "no genuine pairs" in row["note"]
    assert any("'B' has no genuine pairs" in w for w in report.warnings)
    assert set(report.roc["subgroup"]) == {"all", "A"}  # B has one label only: no ROC


def test_curves_are_downsampled_with_ends_and_scores_subsampled(shifted):
    _, report = shifted
    for subgroup, curve in report.roc.groupby("subgroup"):
        assert len(curve) <= 200
        assert (curve["fpr"].iloc[0], curve["tpr"].iloc[0]) == (0.0, 0.0)
        assert (curve["fpr"].iloc[-1], curve["tpr"].iloc[-1]) == (1.0, 1.0)
        assert curve["fpr"].is_monotonic_increasing
        assert (curve["fpr"] > 0).sum() > 0 and curve.loc[curve["fpr"] > 0, "fpr"].min() < 1e-4
    np.testing.assert_allclose(report.det["fnr"], 1 - report.roc["tpr"])
    sizes = report.scores.groupby(["subgroup", "label"]).size()
    assert (sizes == 5000).all() and len(sizes) == 4


def test_score_sample_is_seeded(shifted):
    pairs, report = shifted
    again = verification_report(pairs, fars=(0.1,), seed=0).scores
    other = verification_report(pairs, fars=(0.1,), seed=1).scores
    pd.testing.assert_frame_equal(report.scores, again)
    assert not report.scores["score"].equals(other["score"])


@pytest.mark.parametrize(("pairs", "words"), [
    (pd.DataFrame({"score": [0.1], "subgroup": ["A"]}), ["'label'", "score"]),
    (pd.DataFrame({"score": [0.1, 0.2], "label": [1, 2], "subgroup": ["A", "A"]}), ["'label'", "'2'"]),
    (pd.DataFrame({"score": [0.1, np.nan, np.inf], "label": [1, 0, 0], "subgroup": ["A", "B", "B"]}),
     ["'score'", "2", "'B': 2"]),
    (pd.DataFrame({"score": [], "label": [], "subgroup": []}), ["empty"]),
    (pd.DataFrame({"score": [0.1, 0.2], "label": [1, 0], "subgroup": ["all", "A"]}), ["'all'", "reserved"]),
])
def test_bad_pairs_name_the_problem(pairs, words):
    with pytest.raises(DataError) as error:
        verification_report(pairs)
    for word in words:
        assert word in str(error.value)


def _unit(degrees: float) -> list[float]:
    return [np.cos(np.radians(degrees)), np.sin(np.radians(degrees))]


def test_rank1_confusion_on_a_hand_made_circle():
    # angles (degrees), identities and subgroups; nearest other image by angle:
    #   0 (P,X) <-> 10 (P,X): right.  100 (Q,X) -> 120 (R,Y): X->Y.  120 (R,Y) -> 100: Y->X.
    #   150 (S,Y) -> 120: Y->Y.  200 (T,X) -> 150: X->Y.  two identical faces of U (Z): right.
    angles = [0, 10, 100, 120, 150, 200, 300, 300]
    identities = ["P", "P", "Q", "R", "S", "T", "U", "U"]
    subgroups = ["X", "X", "X", "Y", "Y", "X", "Z", "Z"]
    table = rank1_confusion(3.0 * np.array([_unit(a) for a in angles]), identities, subgroups)
    assert tuple(table.columns) == RANK1_COLUMNS and len(table) == 9
    cell = table.set_index(["probe_subgroup", "neighbour_subgroup"])
    assert cell.loc[("X", "Y"), "count"] == 2 and cell.loc[("X", "Y"), "share"] == 1.0
    assert cell.loc[("X", "X"), "count"] == 0 and cell.loc[("X", "X"), "share"] == 0.0
    assert cell.loc[("Y", "X"), "share"] == 0.5 and cell.loc[("Y", "Y"), "share"] == 0.5
    assert cell.loc[("Z", "Z"), "count"] == 0 and np.isnan(cell.loc[("Z", "Z"), "share"])
    assert cell.loc[("X", "Y"), "n_probes"] == 4 and cell.loc[("Y", "Y"), "n_errors"] == 2


def test_rank1_confusion_refuses_zero_embeddings():
    with pytest.raises(DataError, match="all zero"):
        rank1_confusion(np.array([[1.0, 0.0], [0.0, 0.0]]), ["a", "b"], ["X", "X"])
