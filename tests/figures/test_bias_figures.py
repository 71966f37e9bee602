"""Bias figures: each returns a Figure with the expected panels, renders, and shows NaN as "n/a"."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from generator.bias.classification import classification_report
from generator.bias.verification import rank1_confusion, verification_report
from generator.figures import bias
from generator.figures.export import figure_bytes

SUBGROUPS = ["AF", "AM", "BF"]


def _render(fig: Figure) -> None:
    files = figure_bytes(fig, figure_id="test", title="t", caption="c", provenance={})
    assert files["png"].startswith(b"\x89PNG")


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


@pytest.fixture(scope="module")
def classification():
    rng = np.random.default_rng(0)
    n = 90
    frame = pd.DataFrame({"skin": rng.choice(["dark", "light", "mid"], n), "label": rng.integers(0, 3, n)})
    frame["pred"] = np.where(rng.random(n) < 0.7, frame["label"], rng.integers(0, 3, n))
    frame.loc[frame["skin"] == "mid", "label"] = 0  # class 1 absent in "mid": its TPR is NaN
    probs = rng.dirichlet(np.ones(3), n)
    probs[np.arange(n), frame["pred"]] += 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    frame[["p0", "p1", "p2"]] = probs
    return classification_report(frame, attributes=["skin"], scores=["p0", "p1", "p2"], n_boot=10)


@pytest.fixture(scope="module")
def verification():
    rng = np.random.default_rng(1)
    parts = [pd.DataFrame({"subgroup": g, "label": label, "score": rng.normal(mu * label, 1, 400)})
             for g, mu in zip(SUBGROUPS, (2.0, 2.5, 3.0)) for label in (0, 1)]
    return verification_report(pd.concat(parts, ignore_index=True), fars=(0.1, 1e-2, 1e-4))


def test_metric_by_group_one_panel_per_metric_and_na_text(classification):
    fig = bias.metric_by_group(classification.by_group, metrics=["tpr", "fpr", "accuracy"], attributes="skin",
                               class_=1)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert "n/a" in _texts(fig)
    _render(fig)


def test_confusion_matrices_one_heatmap_per_group(classification):
    fig = bias.confusion_matrices(classification.confusion, attributes="skin", class_names=["a", "b", "c"])
    assert len(fig.axes) == 3 and len(fig.axes[0].images) == 1
    counts = classification.confusion[(classification.confusion["attributes"] == "skin")
                                      & (classification.confusion["group"] == "dark")]["count"]
    assert sorted(int(t) for t in _texts(fig)[:9]) == sorted(counts)
    _render(fig)


def test_reliability_curve_and_counts(classification):
    fig = bias.reliability(classification.calibration, classification.ece, attributes="skin")
    assert len(fig.axes) == 2
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("dark: ECE") for label in labels)
    _render(fig)


def test_verification_curves(verification):
    for fig in (bias.roc_curves(verification.roc), bias.roc_curves(verification.roc, log_fpr=False),
                bias.det_curves(verification.det)):
        assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) == 4  # 3 subgroups + all
        _render(fig)
    det = bias.det_curves(verification.det)
    assert "1%" in [t.get_text() for t in det.axes[0].get_xticklabels()]


def test_score_violins_with_thresholds(verification):
    fig = bias.score_violins(verification.scores, thresholds={"global, FAR 1e-2": 2.3, "BF": 2.4})
    assert len(fig.axes) == 1
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["genuine", "imposter", "global, FAR 1e-2"]
    _render(fig)


def test_fpr_inflation_marks_unresolvable_far(verification):
    fig = bias.fpr_inflation(verification.fpr_at_global)
    assert len(fig.axes) == 1 and len(fig.axes[0].patches) == 3 * 3
    assert _texts(fig).count("n/a") == 3  # FAR 1e-4 needs 10,000 imposters; there are 1,200
    _render(fig)


def test_rank1_heatmap_with_a_subgroup_without_errors():
    angles = np.radians([0, 10, 100, 120, 150, 200, 300, 300])
    embeddings = np.column_stack([np.cos(angles), np.sin(angles)])
    confusion = rank1_confusion(embeddings, list("PPQRSTUU"), list("XXXYYXZZ"))
    fig = bias.rank1_heatmap(confusion)
    assert len(fig.axes) == 1 and _texts(fig).count("n/a") == 3
    _render(fig)


def test_group_colour_is_the_same_across_figures(verification):
    order = ["BF", "AF", "AM"]
    roc = bias.roc_curves(verification.roc, groups=order)
    det = bias.det_curves(verification.det, groups=order)
    for fig in (roc, det):
        colours = {line.get_label(): to_hex(line.get_color()) for line in fig.axes[0].get_lines()}
        assert colours["BF"] == to_hex(bias.GROUP_PALETTE[0]) and colours["AM"] == to_hex(bias.GROUP_PALETTE[2])
    assert bias.group_colours(order)["AF"] == bias.GROUP_PALETTE[1]
