"""The content of the lecture deck, built from the same results as the site."""
from __future__ import annotations

import html
from typing import Any

from generator.report.artifacts import FigureArtifact, TableArtifact
from generator.report.deck import Slide
from generator.report.pages import accuracy_gaps

__all__ = ["deck_slides", "generic_deck_slides"]


def deck_slides(facts: dict[str, Any], figures: dict[str, FigureArtifact],
                tables: dict[str, TableArtifact], deck_figures: dict[str, list[Any]] | None = None) -> list[Slide]:
    """The slides, in teaching order, each with speaker notes.

    ``deck_figures`` maps a site figure id to the slide versions that replace it (see
    :mod:`generator.pipeline.slide_figures`): a crowded gallery becomes several legible slides.
    """
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
            + _small("Intervals: Wilson score intervals from each group's counts.")),
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
        *_explanation_slides(facts, figures, tables, deck_figures or {}),
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
    """A figure and its title; its id goes to the speaker notes (see ``deck._slide_views``), not on the slide."""
    return (f'<img class="deck-figure" src="figures/{html.escape(fig.id)}.png" alt="{html.escape(fig.alt)}" '
            f'data-figure-id="{html.escape(fig.id)}">'
            f'<p class="deck-caption">{html.escape(fig.title)}</p>')


def _deck_figure(part: Any, source: FigureArtifact) -> str:
    """A figure redrawn for the slide (``part``: a :class:`~generator.pipeline.slide_figures.SlideFigure`);
    the notes name ``source``, the site figure to cite."""
    return (f'<img class="deck-figure" src="{html.escape(part.path)}" alt="{html.escape(part.alt)}" '
            f'data-figure-id="{html.escape(source.id)}">'
            f'<p class="deck-caption">{html.escape(source.title)}{html.escape(part.part)}</p>')


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
            "<p>\\[ \\begin{aligned} \\mathrm{TPR}_g &= P(\\hat y = k \\mid y = k, g) \\\\ "
            "\\mathrm{FPR}_g &= P(\\hat y = k \\mid y \\neq k, g) \\\\ "
            "\\mathrm{SR}_g &= P(\\hat y = k \\mid g) \\end{aligned} \\]</p>"
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
            "Whiskers are 95% Wilson score intervals: overlapping intervals mean the gap is not established.")


def _explanation_slides(facts: dict[str, Any], figures: dict[str, FigureArtifact],
                        tables: dict[str, TableArtifact], deck_figures: dict[str, list[Any]]) -> list[Slide]:
    """Taxonomy, an IG walk-through, galleries, evaluation, sanity checks and the shortcut finding."""
    models = [m["name"] for m in facts["models"]]
    slides = [
        Slide("Explaining a prediction: a taxonomy", _bullets([
            "Surrogates: fit a simple model around one prediction (LIME, KernelSHAP).",
            "Attributions: score each input pixel (gradients, Integrated Gradients, occlusion, Grad-CAM).",
            "Contrastive and counterfactual: what would have to change for another outcome.",
            "Example-based: prototypes and similar training images.",
        ]), notes="Place everything that follows in the attribution family: local, post-hoc explanations of one "
                  "prediction. Gradient methods need the model's internals; perturbation methods only its outputs.",
              section="Explanations"),
        Slide("Integrated Gradients, step by step", (
            "<p>\\[ \\mathrm{IG}_i(x) = (x_i - x'_i) \\int_0^1 "
            "\\frac{\\partial F(x' + \\alpha (x - x'))}{\\partial x_i} \\, d\\alpha \\]</p>"
            + _bullets(["Pick a baseline x' (here a black image) and walk a straight path from x' to x.",
                        "Average the gradients at points along the path (a Riemann or Gauss-Legendre sum).",
                        "Multiply by the input difference: attributions add up to F(x) - F(x') (completeness)."])),
              notes="Walk through the three steps. The baseline is a modelling choice: a grey baseline makes grey "
                    "pixels invisible to IG. Captum uses Gauss-Legendre points by default; Xplique a trapezoid rule "
                    "on evenly spaced points, which is why the two differ slightly unless the rule is matched."),
    ]
    for model in models:
        for library in ("captum", "xplique"):
            figure = figures.get(f"fig-gallery-{model}-{library}")
            notes = ("One face per group, with its true label and the model's prediction. Compare patterns, not "
                     "colours across columns: each map is scaled on its own. Look at the top-left corner in the "
                     "biased model's maps: that is where the shortcut mark sits.")
            if figure and figure.id in deck_figures:
                slides += [Slide(f"{library.capitalize()} maps: {model}{part.part}", _deck_figure(part, figure),
                                 notes=notes + " The site's gallery shows every method and group on one figure.")
                           for part in deck_figures[figure.id]]
            elif figure:
                slides.append(Slide(f"{library.capitalize()} maps: {model}", _figure(figure), notes=notes))
    if "fig-evaluation-summary" in figures:
        slides.append(Slide("Can we trust the maps?", _figure(figures["fig-evaluation-summary"]),
                            notes="Deletion: remove the most-attributed pixels first; a faithful map makes the "
                                  "probability drop fast (low AUC). Insertion is the reverse. MuFidelity correlates "
                                  "attribution with the effect of removing random pixel sets. None of these is a "
                                  "human judgement; they measure consistency with the model."))
    if "fig-sanity" in figures:
        slides.append(Slide("Sanity check: randomise the model", _figure(figures["fig-sanity"]),
                            notes=_sanity_notes(tables.get("tab-sanity"))))
    if "fig-analysis-fair-vs-biased" in figures:
        shortcut = figures["fig-analysis-fair-vs-biased"]
        parts = deck_figures.get(shortcut.id)
        slides.append(Slide("Do explanations find the shortcut?",
                            _deck_figure(parts[0], shortcut) if parts else _figure(shortcut),
                            notes=_shortcut_notes(tables.get("tab-analysis-fair-vs-biased")), section="Where models look"))
    if "fig-analysis-replicates" in figures and facts.get("replicates"):
        slides.append(Slide("Does the verdict survive another training seed?",
                            _figure(figures["fig-analysis-replicates"]),
                            notes=_replicate_notes(facts["replicates"]), section="Where models look"))
    for key in sorted(k for k in figures if k.startswith("fig-analysis-means-") or k.startswith("fig-analysis-facex-")):
        slides.append(Slide(figures[key].title, _figure(figures[key]),
                            notes="Faces are aligned to one template before averaging, and one colour scale covers the "
                                  "whole figure, so groups and models can be compared directly."))
    return slides


def _sanity_notes(table: TableArtifact | None) -> str:
    if table is None:
        return ""
    frame = table.frame
    failing = [str(m) for m, ok in zip(frame["method"], frame["passes"]) if not bool(ok)]
    found = ("Here, " + ", ".join(failing) + " barely change: their maps reflect the image, not the model."
             if failing else "Here every method tested changes when the weights are randomised.")
    return ("Adebayo et al. (2018): re-initialise the layers from the output back and recompute the maps. A map that "
            "stays the same cannot be explaining the model. " + found)


def _replicate_notes(found: dict[str, Any]) -> str:
    verdict = found["verdicts"]

    def names(kind: str) -> str:
        return ", ".join(verdict[kind]) or "none"

    return (f"Both models were trained {found['replicates']} times with different seeds, and each pair was compared "
            f"on all {found['n_images']} evaluation images that show the mark. Found in every draw: {names('all')}. "
            f"In some draws only: {names('some')}. In none: {names('none')}. A verdict that changes with the "
            "training seed is not a result. With this n the test finds a shift of "
            f"{found['detectable_d']:.2f} standard deviations with 80 % power.")


def _shortcut_notes(table: TableArtifact | None) -> str:
    if table is None:
        return ""
    frame = table.frame
    overall = frame[frame["skin_tone"] == "all"] if "skin_tone" in frame else frame
    detected = int(overall["detected"].astype(bool).sum())
    return (f"{detected} of {len(overall)} methods put significantly more attribution on the corner mark for the "
            "biased model than for the fair one, on the same images. This is the test that matters: we planted the "
            "bias, so we know the right answer. A method that misses it would also miss a real shortcut.")


def generic_deck_slides(facts: dict[str, Any], figures: dict[str, FigureArtifact]) -> list[Slide]:
    """A deck for a user's dataset or the real-model demo: what was audited, then one slide per figure.

    The teaching deck above is written around the synthetic faces' planted bias; here
    every figure gets a slide in the site's page order, its caption as speaker notes.
    """
    data = facts["dataset"]
    labels = ", ".join(data["label_names"]) or "none (unlabelled)"
    intro = [
        f"Data: {data['source']}; {data['images']} images at {data['image_size']} px.",
        f"Task label: {labels}. Protected attributes: {', '.join(data['attributes']) or 'none'}.",
        f"Models: {', '.join(m['name'] for m in facts['models'])}.",
    ]
    if not data["label_names"]:
        intro.append("No labels: this deck shows how explanation methods behave, not whether the model is biased.")
    slides = [Slide("What was audited", _bullets(intro),
                    notes="Say where the images come from, what the models predict and which groups are compared. "
                          "Results hold for these images and models only.", section="Audit")]
    order = ["dataset.md", "models.md", "bias-classification.md", "bias-verification.md", "attribution.md",
             "evaluation.md", "analysis.md"]
    for page in order:
        for fig in figures.values():
            if fig.page == page:
                slides.append(Slide(fig.title, _figure(fig), notes=fig.caption))
    slides.append(Slide("What these numbers do not show", _bullets([
        "Intervals are over the images audited here; other images, other thresholds, other results.",
        "A gap between groups shows that a difference exists, not why.",
        "Attribution maps are explanations to be checked (see the sanity check), not ground truth.",
    ]), notes="Close with the limits: these are measurements on one sample, with their own uncertainty.",
        section="Limits"))
    return slides
