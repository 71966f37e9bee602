"""The content of the lecture deck, built from the same results as the site."""
from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from generator.report.artifacts import FigureArtifact, TableArtifact
from generator.report.deck import Slide
from generator.report.pages import accuracy_gaps
from generator.report.verification_text import far_text, fpr_finding

__all__ = ["deck_slides", "generic_deck_slides"]


def deck_slides(facts: dict[str, Any], figures: dict[str, FigureArtifact],
                tables: dict[str, TableArtifact], views: Mapping[str, list[Any]]) -> list[Slide]:
    """The slides, in teaching order, each with speaker notes and, under a figure, a one-line
    takeaway computed from the tables.

    ``views`` maps a site figure id to the slide versions that show it (see
    :class:`generator.pipeline.slide_figures.SlideViews`): each figure redrawn for the room, a
    crowded gallery split over several slides.
    """
    data = facts["dataset"]
    models = [m["name"] for m in facts["models"]]

    def fig(figure_id: str, takeaway: str = "") -> str:
        return _figure(figures[figure_id], views[figure_id][0], takeaway)

    fig.known = figures  # type: ignore[attr-defined]  # which figures the build made

    return [
        Slide("Why audit face classifiers?", _bullets([
            "Face classifiers are deployed on people who never see how they decide.",
            "Two questions: does the model err more for some groups (bias), and what in the image "
            "drives its decisions (explanation)?",
            "This deck uses synthetic faces with a planted bias, so we know the right answer.",
        ]), notes="Open with the two questions. Stress that the synthetic data make the ground truth known: we planted "
                  "a bias and check whether the tools find it. Real data come later in the course.",
              section="Motivation"),
        Slide("The data: synthetic faces", fig("fig-dataset-samples", (
            f"{data['images']} images, {data['identities']} identities, {data['image_size']} px; "
            "identity-disjoint splits.")),
              notes="Each row is one skin-tone band and age group. Point out the task, smiling or not, and the small "
                    "corner mark in some images: it is the planted shortcut.", section="Data"),
        Slide("Ground truth for explanations", fig("fig-dataset-masks"),
              notes="Every pixel belongs to a known region. Later we measure how much of an explanation falls on the "
                    "face, the background or the corner mark."),
        Slide("A fair and a biased training set",
              fig("fig-dataset-group-shares", _shares_takeaway(tables.get("tab-dataset-counts"))),
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
        Slide("Training", fig("fig-models-training-curves", _training_takeaway(facts)),
              notes=f"Both models are the same small CNN. {facts['training']} The curves show no model selection on "
                    "the evaluation split."),
        Slide("Accuracy by skin-tone band", fig("fig-models-accuracy-by-skin-tone", _gap_takeaway(
            tables["tab-models-accuracy-by-skin-tone"], "skin_tone")),
              notes=_gap_notes(tables["tab-models-accuracy-by-skin-tone"], "skin_tone")),
        Slide("When the shortcut misleads", fig("fig-models-accuracy-by-shortcut", _gap_takeaway(
            tables["tab-models-accuracy-by-shortcut"], "shortcut")),
              notes=_gap_notes(tables["tab-models-accuracy-by-shortcut"], "shortcut")
              + " A model that relies on the mark fails where the mark contradicts the label."),
        *_bias_slides(models, fig, tables),
        *_explanation_slides(facts, figures, tables, views, fig),
        Slide("What these numbers do not show", _bullets([
            "The faces are cartoons: results say nothing about a real population.",
            "Accuracy gaps show that a bias exists, not why.",
            "Explanations (next sections) show where the model looks; they need checks of their own.",
        ]), notes="Close the first part: we have a measurable bias. Next: can attribution methods show that the biased "
                  "model looks at the corner mark?", section="Limits"),
    ]


def _bullets(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in items) + "</ul>"


def _figure(source: FigureArtifact, part: Any, takeaway: str = "") -> str:
    """A figure drawn for the slide (``part``: a :class:`~generator.pipeline.slide_figures.SlideFigure`) and,
    under it, the takeaway (or, without one, the figure's title).

    The notes name ``source``, the site figure to cite (see ``deck._slide_views``); its id stays off the
    slide. The image carries what was measured when it was drawn (smallest text in pixels at its natural
    size, overlapping texts) for the deck's browser test.
    """
    overlaps = "; ".join(f"{a} / {b}" for a, b in part.overlaps)
    line = (f'<p class="deck-takeaway">{html.escape(takeaway)}</p>' if takeaway
            else f'<p class="deck-caption">{html.escape(source.title)}{html.escape(part.part)}</p>')
    return (f'<img class="deck-figure" src="{html.escape(part.path)}" alt="{html.escape(part.alt)}" '
            f'data-figure-id="{html.escape(source.id)}" data-min-text-px="{part.min_text_px:g}" '
            f'data-text-overlaps="{html.escape(overlaps)}">{line}')


def _small(text: str) -> str:
    return f'<p class="deck-small">{html.escape(text)}</p>'


def _gap_takeaway(table: TableArtifact, group: str) -> str:
    """``biased: 0.97 (MST 1-3) to 0.62 (MST 8-10); fair: ...``, the model with the largest gap first."""
    gaps = accuracy_gaps(table.frame, group).sort_values("gap", ascending=False, kind="stable")
    return "Accuracy " + "; ".join(
        f"{r.model}: {r.best_accuracy:.2f} ({r.best}) to {r.worst_accuracy:.2f} ({r.worst})"
        for r in gaps.itertuples()) + "."


def _shares_takeaway(table: TableArtifact | None) -> str:
    """The rarest band of the biased training split: its share and count of the split's images."""
    if table is None:
        return ""
    frame = table.frame
    if not {"split", "skin_tone", "images"} <= set(frame.columns):
        return ""
    train = frame[frame["split"] == "train_biased"]
    if train.empty:
        return ""
    bands = train.groupby("skin_tone", sort=False)["images"].sum()
    rare = bands.idxmin()
    return (f"Biased training set: {rare} is {bands[rare] / bands.sum():.0%} of the images "
            f"({int(bands[rare])} of {int(bands.sum())}); the evaluation split is balanced.")


def _training_takeaway(facts: dict[str, Any]) -> str:
    """Each model's accuracy after the last epoch, on its training split and on the evaluation split."""
    finals = [(m["name"], m["final"]) for m in facts["models"]
              if {"epoch", "train_accuracy", "eval_accuracy"} <= set(m.get("final") or {})]
    if not finals:
        return ""
    return "After the last epoch, accuracy on training / evaluation split: " + "; ".join(
        f"{name} {final['train_accuracy']:.2f} / {final['eval_accuracy']:.2f}" for name, final in finals) + "."


def _gap_notes(table: TableArtifact, group: str) -> str:
    return " ".join(
        f"Model {r.model}: from {r.best_accuracy:.2f} ({r.best}) down to {r.worst_accuracy:.2f} ({r.worst})."
        for r in accuracy_gaps(table.frame, group).itertuples())


def _bias_slides(models: list[str], fig: Any, tables: dict[str, TableArtifact]) -> list[Slide]:
    """Fairness definitions, rates by group, disparities and verification thresholds."""
    last = models[-1]
    matcher = "fr-skewed" if "tab-verification-fpr-fr-skewed" in tables else None
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
        slides.append(Slide(f"Error rates by skin tone: {model}", fig(
            f"fig-bias-rates-{model}", _disparity_takeaway(tables[f"tab-bias-disparities-{model}"])),
                            notes=_disparity_notes(tables[f"tab-bias-disparities-{model}"], model)))
    slides += [
        Slide(f"Calibration by skin tone: {last}", fig(f"fig-bias-calibration-{last}",
                                                       _ece_takeaway(tables.get(f"tab-bias-ece-{last}"))),
              notes="A calibrated model's confidence matches its accuracy. Compare the curves of the bands: a model "
                    "can be confident and wrong more often for one group."),
    ]
    verifier = matcher or last
    if f"fig-verification-fpr-inflation-{verifier}" in fig.known:
        slides.append(Slide("Verification: one threshold for everyone?", fig(
            f"fig-verification-fpr-inflation-{verifier}", _fpr_takeaway(tables.get(f"tab-verification-fpr-{verifier}"))),
              notes="Robinson et al. (2020) showed on BFW that one global threshold gives some subgroups up to twice "
                    "the intended false positive rate; per-subgroup thresholds recover it. The bars show the same "
                    "measurement here" + (
                        ", for the face-recognition model trained on census-like skin-tone shares (few identities "
                        "of the darkest band): its threshold, set on all pairs, is too low for the band it saw least."
                        if matcher else ". On these data the embeddings come from a smile classifier, so "
                        "verification itself is weak: this slide demonstrates the method.")))
    if matcher and f"fig-verification-maps-means-{matcher}" in fig.known:
        slides.append(Slide("Explaining a false match", fig(
            f"fig-verification-maps-means-{matcher}", _maps_takeaway(tables.get(f"tab-verification-maps-regions-{matcher}"))),
              notes="Each face of a pair is explained towards the other: with the other face's embedding fixed, the "
                    "similarity is a single output, and Integrated Gradients explains it like a class logit. Rows are "
                    "the four outcomes at the global threshold, columns the skin-tone bands. Compare the false-match "
                    "row with the correct rejections of the same band. Say what such maps cannot show: they tell "
                    "where the score is sensitive for these pairs, not why the network puts two people close, and "
                    "they do not fix the threshold. The site's table gives each region's test with its n and the "
                    "difference the test could detect."))
    return slides


def _maps_takeaway(table: TableArtifact | None) -> str:
    """The largest significant region difference between false matches and correct rejections, in a line."""
    if table is None:
        return ""
    tested = table.frame.dropna(subset=["p_holm"])
    found = tested[tested["p_holm"] < 0.05]
    if tested.empty:
        return "No band has enough false matches to test."
    if found.empty:
        return (f"No face region differs between false matches and correct rejections ({len(tested)} tests, "
                "Holm-corrected).")
    top = found.loc[found["difference"].idxmax()]  # the region that carries most more in false matches
    return (f"{top.subgroup}: false matches put {top.share_false_match:.2f} of the attribution on the {top.region}, "
            f"correct rejections {top.share_correct_rejection:.2f} (Holm p = {top.p_holm:.2g}, "
            f"n = {int(top.n_false_match)} / {int(top.n_correct_rejection)} pairs).")


def _disparity_takeaway(table: TableArtifact) -> str:
    """The largest skin-tone disparity of class 1 with the groups it lies between."""
    frame = table.frame
    rows = frame[(frame["attributes"] == "skin_tone") & (frame["class"] == 1)].dropna(subset=["difference"])
    if rows.empty:
        return ""
    top = rows.loc[rows["difference"].idxmax()]
    return (f"Largest gap: {top.metric.replace('_', ' ')}, difference {top.difference:.2f} "
            f"({top.max_group} vs {top.min_group}).")


def _ece_takeaway(table: TableArtifact | None) -> str:
    if table is None:
        return ""
    frame = table.frame[table.frame["attributes"] == "skin_tone"].dropna(subset=["ece"])
    if frame.empty:
        return ""
    worst, best = frame.loc[frame["ece"].idxmax()], frame.loc[frame["ece"].idxmin()]
    if worst.n == best.n:
        return (f"Expected calibration error {worst.ece:.3f} on {worst.group} against {best.ece:.3f} on "
                f"{best.group} (n = {int(worst.n)} each).")
    return (f"Expected calibration error {worst.ece:.3f} on {worst.group} (n = {int(worst.n)}) against "
            f"{best.ece:.3f} on {best.group} (n = {int(best.n)}).")


def _fpr_takeaway(table: TableArtifact | None) -> str:
    """The subgroup the global threshold hurts most (see :func:`generator.report.verification_text.fpr_finding`)."""
    found = None if table is None else fpr_finding(table.frame)
    if found is None:
        return ""
    return (f"Global threshold for FAR {far_text(found.far)}: {found.subgroup} gets a false match rate of "
            f"{found.actual:.4f}, {found.ratio:.1f} times the intended (n = {found.n_imposter} imposter pairs).")


def _disparity_notes(table: TableArtifact, model: str) -> str:
    frame = table.frame
    rows = frame[(frame["attributes"] == "skin_tone") & (frame["class"] == 1)]
    parts = [f"{r.metric.replace('_', ' ')}: difference {r.difference:.2f} ({r.max_group} vs {r.min_group})"
             for r in rows.itertuples() if r.difference == r.difference]
    return (f"Model {model}, class smiling, across skin-tone bands. " + "; ".join(parts) + ". "
            "Whiskers are 95% Wilson score intervals: overlapping intervals mean the gap is not established.")


def _explanation_slides(facts: dict[str, Any], figures: dict[str, FigureArtifact],
                        tables: dict[str, TableArtifact], views: Mapping[str, list[Any]], fig: Any) -> list[Slide]:
    """Taxonomy, an IG walk-through, galleries, evaluation, sanity checks and the shortcut finding."""
    models = [m["name"] for m in facts["models"]]
    titles = _titles(facts)
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
            if figure:
                parts = views[figure.id]
                slides += [Slide(f"{library.capitalize()} maps: {model}{part.part}", _figure(
                    figure, part, _gallery_takeaway(part, tables.get("tab-analysis-fair-vs-biased"), titles)),
                                 notes=notes + (" The site's gallery shows every method and group on one figure."
                                                if len(parts) > 1 else ""))
                           for part in parts]
    if "fig-evaluation-summary" in figures:
        slides.append(Slide("Can we trust the maps?", fig(
            "fig-evaluation-summary", _evaluation_takeaway(tables.get("tab-evaluation-summary"), models, titles)),
                            notes="Deletion: remove the most-attributed pixels first; a faithful map makes the "
                                  "probability drop fast (low AUC). Insertion is the reverse. MuFidelity correlates "
                                  "attribution with the effect of removing random pixel sets. None of these is a "
                                  "human judgement; they measure consistency with the model."))
    if "fig-sanity" in figures:
        slides.append(Slide("Sanity check: randomise the model", fig(
            "fig-sanity", _sanity_takeaway(tables.get("tab-sanity"), titles)),
                            notes=_sanity_notes(tables.get("tab-sanity"))))
    if "fig-analysis-fair-vs-biased" in figures:
        slides.append(Slide("Do explanations find the shortcut?", fig(
            "fig-analysis-fair-vs-biased", _shortcut_takeaway(tables.get("tab-analysis-fair-vs-biased"))),
                            notes=_shortcut_notes(tables.get("tab-analysis-fair-vs-biased")), section="Where models look"))
    if "fig-analysis-replicates" in figures and facts.get("replicates"):
        slides.append(Slide("Does the verdict survive another training seed?",
                            fig("fig-analysis-replicates", _replicate_takeaway(facts["replicates"])),
                            notes=_replicate_notes(facts["replicates"]), section="Where models look"))
    for key in sorted(k for k in figures if k.startswith("fig-analysis-means-") or k.startswith("fig-analysis-facex-")):
        slides.append(Slide(figures[key].title, fig(key, _map_takeaway(key, tables, titles)),
                            notes="Faces are aligned to one template before averaging, and one colour scale covers the "
                                  "whole figure, so groups and models can be compared directly."))
    return slides


def _titles(facts: dict[str, Any]) -> dict[str, str]:
    return {m["name"]: m["title"] for m in facts["explanations"]["methods"]}


def _names(methods: Any, titles: dict[str, str]) -> str:
    return ", ".join(titles.get(m, m) for m in methods) or "none"


def _overall(table: TableArtifact | None) -> Any:
    """The shortcut test's rows over all groups (one per method), or None."""
    if table is None:
        return None
    frame = table.frame
    return frame[frame["skin_tone"] == "all"] if "skin_tone" in frame else frame


def _gallery_takeaway(part: Any, table: TableArtifact | None, titles: dict[str, str]) -> str:
    """Which of the slide's methods the shortcut test finds the shift onto the mark with."""
    overall = _overall(table)
    if overall is None or not part.methods:
        return ""
    rows = overall[overall["method"].isin(part.methods)]
    if rows.empty:
        return ""
    found = rows[rows["detected"].astype(bool)]["method"]
    missed = rows[~rows["detected"].astype(bool)]["method"]
    verdict = (f"found by all {len(rows)} methods shown" if missed.empty else "found by none of these methods"
               if found.empty else f"found by {_names(found, titles)}; not by {_names(missed, titles)}")
    return f"Shift onto the corner mark, biased vs fair (Holm p < 0.05, n = {_n_range(rows)}): {verdict}."


def _n_range(rows: Any) -> str:
    low, high = int(rows["n"].min()), int(rows["n"].max())
    return f"{low}" if low == high else f"{low}-{high}"


def _shortcut_takeaway(table: TableArtifact | None) -> str:
    overall = _overall(table)
    if overall is None or overall.empty:
        return ""
    detected = int(overall["detected"].astype(bool).sum())
    return (f"{detected} of {len(overall)} methods find the shift onto the corner mark "
            f"(Holm-corrected p < 0.05, n = {_n_range(overall)} images per test).")


def _evaluation_takeaway(table: TableArtifact | None, models: list[str], titles: dict[str, str]) -> str:
    """The most faithful method of the last model by deletion (lowest AUC) and by insertion (highest)."""
    if table is None:
        return ""
    frame = table.frame[table.frame["model"] == models[-1]].dropna(subset=["mean"])
    parts = []
    for metric, best in (("deletion_auc", "idxmin"), ("insertion_auc", "idxmax")):
        rows = frame[frame["metric"] == metric]
        if not rows.empty:
            top = rows.loc[getattr(rows["mean"], best)()]
            parts.append(f"{metric.split('_')[0]} {titles.get(top.method, top.method)} ({top['mean']:.2f})")
    return f"Most faithful for {models[-1]}, n = {int(frame['n'].max())} images: " + "; ".join(parts) + "." if parts else ""


def _sanity_takeaway(table: TableArtifact | None, titles: dict[str, str]) -> str:
    if table is None or table.frame.empty:
        return ""
    frame = table.frame
    failing = frame[~frame["passes"].astype(bool)]["method"]
    return (f"{len(frame) - len(failing)} of {len(frame)} methods change when the weights are randomised"
            + (f"; {_names(failing, titles)} barely change." if len(failing) else "."))


def _replicate_takeaway(found: dict[str, Any]) -> str:
    verdict = found["verdicts"]
    return (f"Over {found['replicates']} training draws, n = {found['n_images']} images each: found in every draw "
            f"by {len(verdict['all'])} methods, in some by {len(verdict['some'])}, in none by {len(verdict['none'])}.")


def _map_takeaway(figure_id: str, tables: dict[str, TableArtifact], titles: dict[str, str]) -> str:
    """Mean maps: each model's share on the corner mark; FaceX: the region that scores highest."""
    if figure_id.startswith("fig-analysis-means-"):
        shares = tables.get("tab-analysis-region-shares")
        library, _, rest = figure_id[len("fig-analysis-means-"):].partition("-")
        method = f"{library}.{rest.replace('-', '_')}"
        if shares is None:
            return ""
        rows = shares.frame[(shares.frame["method"] == method) & (shares.frame["region"] == "cue")]
        if rows.empty:
            return ""
        mean = rows.groupby("model", sort=False).apply(lambda g: (g["share"] * g["n"]).sum() / g["n"].sum(),
                                                       include_groups=False)
        return (f"Share of {titles.get(method, method)} on the corner mark: "
                + ", ".join(f"{model} {value:.1%}" for model, value in mean.items()) + ".")
    if figure_id.startswith("fig-analysis-facex-"):
        scores = tables.get("tab-analysis-facex")
        model = figure_id[len("fig-analysis-facex-"):]
        if scores is None:
            return ""
        rows = scores.frame[scores.frame["model"] == model]
        if rows.empty:
            return ""
        by_region = rows.groupby("region", sort=False)["score"].mean().sort_values(ascending=False)
        return ("Highest mean scores: " + ", ".join(f"{region} {value:.2f}" for region, value
                                                    in by_region.head(3).items()) + " (over bands).")
    return ""


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
    overall = _overall(table)
    if overall is None:
        return ""
    detected = int(overall["detected"].astype(bool).sum())
    return (f"{detected} of {len(overall)} methods put significantly more attribution on the corner mark for the "
            "biased model than for the fair one, on the same images. This is the test that matters: we planted the "
            "bias, so we know the right answer. A method that misses it would also miss a real shortcut.")


def generic_deck_slides(facts: dict[str, Any], figures: dict[str, FigureArtifact],
                        views: Mapping[str, list[Any]]) -> list[Slide]:
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
                slides += [Slide(fig.title + part.part, _figure(fig, part), notes=fig.caption)
                           for part in views[fig.id]]
    slides.append(Slide("What these numbers do not show", _bullets([
        "Intervals are over the images audited here; other images, other thresholds, other results.",
        "A gap between groups shows that a difference exists, not why.",
        "Attribution maps are explanations to be checked (see the sanity check), not ground truth.",
    ]), notes="Close with the limits: these are measurements on one sample, with their own uncertainty.",
        section="Limits"))
    return slides
