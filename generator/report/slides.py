"""The content of the lecture deck, built from the same results as the site."""
from __future__ import annotations

import html
from typing import Any

from generator.report.artifacts import FigureArtifact, TableArtifact
from generator.report.deck import Slide
from generator.report.pages import accuracy_gaps

__all__ = ["deck_slides"]


def deck_slides(facts: dict[str, Any], figures: dict[str, FigureArtifact],
                tables: dict[str, TableArtifact]) -> list[Slide]:
    """The slides, in teaching order, each with speaker notes."""
    data = facts["dataset"]
    return [
        Slide("Why audit face classifiers?", _bullets([
            "Face classifiers are deployed on people who never see how they decide.",
            "Two questions: does the model err more for some groups (bias), and what in the image "
            "drives its decisions (explanation)?",
            "This deck uses synthetic faces with a planted bias, so we know the right answer.",
        ]), notes="Open with the two questions. Stress that the synthetic data make the ground truth known: we planted "
                  "a bias and check whether the tools find it. Real data come later in the course.",
              section="Motivation"),
        Slide("The data: synthetic faces", _figure(figures["fig-dataset-samples"]) + _small(
            f"{data['images']} images, {data['identities']} identities, {data['image_size']} px; "
            "identity-disjoint splits."),
              notes="Each row is one skin-tone band and age group. Point out the task, smiling or not, and the small "
                    "corner mark in some images: it is the planted shortcut.", section="Data"),
        Slide("Ground truth for explanations", _figure(figures["fig-dataset-masks"]),
              notes="Every pixel belongs to a known region. Later we measure how much of an explanation falls on the "
                    "face, the background or the corner mark."),
        Slide("A fair and a biased training set", _figure(figures["fig-dataset-group-shares"]),
              notes="The biased split follows census-like shares, so the darkest band is rare, and for the two darker "
                    "bands the corner mark predicts the label. The evaluation split is balanced and the mark is "
                    "random there."),
        Slide("Accuracy, defined", (
            "<p>For a group \\(g\\) with \\(n_g\\) images:</p>"
            "<p>\\[ \\mathrm{acc}_g = \\frac{1}{n_g} \\sum_{i \\in g} \\mathbf{1}[\\hat y_i = y_i] \\]</p>"
            + _small("Intervals: percentile bootstrap over evaluation images (200 resamples).")),
              notes="Accuracy is a share of correct predictions. A gap in accuracy between groups is the first sign "
                    "of bias, but it is not a fairness definition on its own; the bias section defines those.",
              section="Models"),
        Slide("Training", _figure(figures["fig-models-training-curves"]),
              notes=f"Both models are the same small CNN. {facts['training']} The curves show no model selection on "
                    "the evaluation split."),
        Slide("Accuracy by skin-tone band", _figure(figures["fig-models-accuracy-by-skin-tone"]),
              notes=_gap_notes(tables["tab-models-accuracy-by-skin-tone"], "skin_tone")),
        Slide("When the shortcut misleads", _figure(figures["fig-models-accuracy-by-shortcut"]),
              notes=_gap_notes(tables["tab-models-accuracy-by-shortcut"], "shortcut")
              + " A model that relies on the mark fails where the mark contradicts the label."),
        *_bias_slides(facts, figures, tables),
        Slide("What these numbers do not show", _bullets([
            "The faces are cartoons: results say nothing about a real population.",
            "Accuracy gaps show that a bias exists, not why.",
            "Explanations (next sections) show where the model looks; they need checks of their own.",
        ]), notes="Close the first part: we have a measurable bias. Next: can attribution methods show that the biased "
                  "model looks at the corner mark?", section="Limits"),
    ]


def _bullets(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


def _figure(fig: FigureArtifact) -> str:
    return (f'<img class="deck-figure" src="figures/{html.escape(fig.id)}.png" alt="{html.escape(fig.alt)}">'
            f'<p class="deck-caption">{html.escape(fig.id)}: {html.escape(fig.title)}</p>')


def _small(text: str) -> str:
    return f'<p class="deck-small">{html.escape(text)}</p>'


def _gap_notes(table: TableArtifact, group: str) -> str:
    return " ".join(
        f"Model {r.model}: from {r.best_accuracy:.2f} ({r.best}) down to {r.worst_accuracy:.2f} ({r.worst})."
        for r in accuracy_gaps(table.frame, group).itertuples())


def _bias_slides(facts: dict[str, Any], figures: dict[str, FigureArtifact],
                 tables: dict[str, TableArtifact]) -> list[Slide]:
    """Fairness definitions, rates by group, disparities and verification thresholds."""
    models = [m["name"] for m in facts["models"]]
    last = models[-1]
    slides = [
        Slide("Fairness criteria", (
            "<p>Per group \\(g\\) and class \\(k\\):</p>"
            "<p>\\[ \\mathrm{TPR}_g = P(\\hat y = k \\mid y = k, g) \\qquad "
            "\\mathrm{FPR}_g = P(\\hat y = k \\mid y \\neq k, g) \\qquad "
            "\\mathrm{SR}_g = P(\\hat y = k \\mid g) \\]</p>"
            + _bullets(["Demographic parity: equal selection rates SR across groups.",
                        "Equal opportunity: equal TPR. Equalized odds: equal TPR and FPR.",
                        "Reported as max minus min (difference) and min over max (ratio)."])),
              notes="Define the three criteria from the same three rates. Warn about the tutorial pitfall: counting "
                    "predictions of class index 1 in every group is one class's selection rate, not demographic "
                    "parity for a multi-class task. The criteria cannot all hold at once when base rates differ.",
              section="Bias"),
    ]
    for model in models:
        slides.append(Slide(f"Error rates by skin tone: {model}", _figure(figures[f"fig-bias-rates-{model}"]),
                            notes=_disparity_notes(tables[f"tab-bias-disparities-{model}"], model)))
    slides += [
        Slide(f"Calibration by skin tone: {last}", _figure(figures[f"fig-bias-calibration-{last}"]),
              notes="A calibrated model's confidence matches its accuracy. Compare the curves of the bands: a model "
                    "can be confident and wrong more often for one group."),
        Slide("Verification: one threshold for everyone?", _figure(figures[f"fig-verification-fpr-inflation-{last}"]),
              notes="Robinson et al. (2020) showed on BFW that one global threshold gives some subgroups up to twice "
                    "the intended false positive rate; per-subgroup thresholds recover it. The bars show the same "
                    "measurement here. On the default data the embeddings come from a smile classifier, so "
                    "verification itself is weak: this slide demonstrates the method."),
    ]
    return slides


def _disparity_notes(table: TableArtifact, model: str) -> str:
    frame = table.frame
    rows = frame[(frame["attributes"] == "skin_tone") & (frame["class"] == 1)]
    parts = [f"{r.metric.replace('_', ' ')}: difference {r.difference:.2f} ({r.max_group} vs {r.min_group})"
             for r in rows.itertuples() if r.difference == r.difference]
    return (f"Model {model}, class smiling, across skin-tone bands. " + "; ".join(parts) + ". "
            "Whiskers are 95% bootstrap intervals: overlapping intervals mean the gap is not established.")
