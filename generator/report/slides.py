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
