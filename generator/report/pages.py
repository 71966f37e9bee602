"""Markdown of the generated result pages (data in, string out; no I/O).

``facts`` is the dictionary of settings, hashes and timings the build collected;
``art`` maps artifact ids to the figures and tables of the build. Every value that
comes from a dataset or a config is escaped.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import yaml

from generator.report.artifacts import FigureArtifact, TableArtifact
from generator.report.markdown import (
    escape,
    figure_block,
    table_block,
    table_link_block,
    table_markdown,
)

__all__ = ["dataset_page", "models_page", "reproducibility_page", "accuracy_gaps"]

Artifacts = dict[str, FigureArtifact | TableArtifact]


def dataset_page(facts: dict[str, Any], art: Artifacts) -> str:
    """The dataset page: what the synthetic faces are, samples, masks and group counts."""
    data, synthetic = facts["dataset"], facts["config"]["dataset"]["synthetic"]
    splits = ", ".join(f"{escape(k)}: {v} images" for k, v in data["splits"].items())
    shortcut = ", ".join(escape(g) for g in synthetic["shortcut_groups"])
    return f"""# Dataset: synthetic faces with ground truth

The default data are faces drawn by a seeded procedural generator at run time, so the whole
audit runs offline and every pixel has a known meaning. There are {data['images']} images of
{data['image_size']} x {data['image_size']} pixels from {data['identities']} identities ({splits}).
Each identity keeps its face geometry, skin colour, hair and glasses habit across at least
{synthetic['images_per_identity']} images; pose, lighting, expression and noise vary per image.
The three splits share no identity, so no person seen in training is evaluated.

- **Task label**: smiling or not smiling (mouth-corner curvature).
- **Protected attributes**: a skin-tone band named after the Monk Skin Tone scale
  (MST 1-3, 4-5, 6-7, 8-10) and a binary age group (young, older).
- **Ground truth for explanations**: a region mask per image (background, hair, skin, eyes,
  brows, nose, mouth, accessories, cue) and five landmarks.
- **Planted bias**: the *biased* training split has census-like group shares and a shortcut: for
  the bands {shortcut}, a small mark in the image corner appears on
  {synthetic['shortcut_strength']:.0%} of smiling images and is absent on as many non-smiling ones.
  In the *fair* training split and in the evaluation split the mark is drawn at random,
  independent of the label.

What these numbers do **not** show: the faces are cartoons. Results on them show how the audit
detects a bias that was planted on purpose; they say nothing about any real population.

## Samples by group

{figure_block(art['fig-dataset-samples'])}
## Region masks and landmarks

{figure_block(art['fig-dataset-masks'])}
## Group counts per split

{figure_block(art['fig-dataset-group-shares'])}
{table_block(art['tab-dataset-counts'])}"""


def models_page(facts: dict[str, Any], art: Artifacts) -> str:
    """The models page: what each model is, its training, and accuracy by group."""
    rows = [{"model": m["name"], "training split": m["split"], "content hash": m["hash"],
             "final eval accuracy": m["final"].get("eval_accuracy"), "training time (s)": round(m["seconds"], 1),
             "Keras twin max abs logit difference": _scientific(m["twin"].get("max_abs_logit_diff"))}
            for m in facts["models"]]
    descriptions = "\n".join(f"- **{escape(m['name'])}**: {escape(m['description'] or 'no description')}"
                             for m in facts["models"])
    gaps = accuracy_gaps(art["tab-models-accuracy-by-skin-tone"].frame, "skin_tone")
    shortcut = accuracy_gaps(art["tab-models-accuracy-by-shortcut"].frame, "shortcut")
    return f"""# Models

{descriptions}

Both are the same small convolutional network ({escape(facts['training'])}) trained deterministically
at the first run and cached by the hash of their data and settings. A Keras copy of a model (the
*twin*) has the same weights, so TensorFlow explainers see the same function; the largest logit
difference between the two on 64 evaluation images is reported below.

{table_markdown(pd.DataFrame(rows), digits=4)}

## Training curves

{figure_block(art['fig-models-training-curves'])}
## Accuracy by group

The accuracy of a group \\(g\\) with \\(n_g\\) evaluation images is the share of them the model labels
correctly:

\\[ \\mathrm{{acc}}_g = \\frac{{1}}{{n_g}} \\sum_{{i \\in g}} \\mathbf{{1}}\\left[\\hat y_i = y_i\\right] \\]

It is shown here to check that the planted bias took hold. Accuracy gaps alone are not a fairness
definition: the rates they mix (true and false positives) are separated on the bias pages.

{_gap_sentences(gaps, "skin-tone band")}

{figure_block(art['fig-models-accuracy-by-skin-tone'])}
{table_block(art['tab-models-accuracy-by-skin-tone'])}
{figure_block(art['fig-models-accuracy-by-age-group'])}
{table_block(art['tab-models-accuracy-by-age-group'])}
{table_block(art['tab-models-accuracy-by-intersection'])}
## Accuracy when the shortcut cue misleads

In the evaluation split the corner mark is random. A model that learned "mark means smiling"
fails where the mark contradicts the label.

{_gap_sentences(shortcut, "cue condition")}

{figure_block(art['fig-models-accuracy-by-shortcut'])}
{table_block(art['tab-models-accuracy-by-shortcut'])}{_replicate_accuracy(facts, art)}"""


def _range_text(low: float, high: float) -> str:
    return f"{low:.3f}" if round(low, 3) == round(high, 3) else f"{low:.3f} to {high:.3f}"


def _replicate_accuracy(facts: dict[str, Any], art: Artifacts) -> str:
    """The accuracies of every training draw, and their ranges in words."""
    found = facts.get("replicates") or {}
    if "tab-models-replicates" not in art or not found:
        return ""
    lines = []
    for model, ranges in found["accuracy"].items():
        parts = ", ".join(f"{escape(g)} {_range_text(*ranges[g])}" for g in ranges if g != "all")
        lines.append(f"- **{escape(model)}**: all images {_range_text(*ranges['all'])}; {parts}.")
    seeds = ", ".join(str(s) for s in found["seeds"])
    return f"""
## Another training draw, another model

The tables above describe one training run (seed {facts['seed']}). Training the same network with
another seed gives another model, so each model was trained {found['replicates']} times (training
seeds {seeds}); the analysis page repeats the shortcut test on every draw. Over the draws, the
evaluation accuracy ranges (lowest to highest):

{chr(10).join(lines)}

{table_block(art['tab-models-replicates'])}"""


def _scientific(value: float | None) -> str:
    return "no twin" if value is None else f"{value:.1e}"


def accuracy_gaps(frame: pd.DataFrame, group: str) -> pd.DataFrame:
    """Per model: the best and worst group by accuracy and the gap between them."""
    rows = []
    for model, sub in frame[frame[group] != "all"].groupby("model", sort=False):
        best, worst = sub.loc[sub["accuracy"].idxmax()], sub.loc[sub["accuracy"].idxmin()]
        rows.append({"model": model, "best": best[group], "best_accuracy": best["accuracy"],
                     "worst": worst[group], "worst_accuracy": worst["accuracy"],
                     "gap": best["accuracy"] - worst["accuracy"]})
    return pd.DataFrame(rows)


def _gap_sentences(gaps: pd.DataFrame, what: str) -> str:
    return "\n".join(
        f"- Model **{escape(r.model)}**: highest accuracy {r.best_accuracy:.3f} ({escape(r.best)}), lowest "
        f"{r.worst_accuracy:.3f} ({escape(r.worst)}); a gap of {r.gap:.3f} between {what}s."
        for r in gaps.itertuples())


def reproducibility_page(facts: dict[str, Any], art: Artifacts) -> str:
    """Versions, config, seed, hashes and commit: what it takes to rebuild every number."""
    env = facts["environment"]
    packages = pd.DataFrame({"package": list(env["packages"]), "version": list(env["packages"].values())})
    hashes = pd.DataFrame([{"what": "configuration", "hash": facts["config_hash"]},
                           {"what": "dataset (cache key)", "hash": facts["dataset"]["key"]},
                           *({"what": f"model '{m['name']}' (weights)", "hash": m["hash"]} for m in facts["models"])])
    config_yaml = yaml.safe_dump(facts["config"], sort_keys=False)
    count = sum(isinstance(a, FigureArtifact) for a in art.values())
    machine = env.get("machine", {})
    shipped = [m["name"] for m in facts["models"] if m.get("shipped")]
    return f"""# Reproducibility

Every number and figure on this site comes from one configuration and one seed. The same
configuration, seed and package versions give the same tables and byte-identical figure files.

## What is guaranteed, and on which machines

- **Data: the same bytes on every x86-64 CPU with AVX2** (Intel or AMD, any core count; measured
  on an Intel Xeon and an AMD EPYC). The synthetic faces round every sine, cosine, exponential and
  power to a grid of 2^-20 before use, so NumPy's CPU-specific maths cannot move a pixel.
- **Trained models: the same bytes on CPUs of one vendor, not between Intel and AMD.** Training and
  the built-in network's predictions run with {escape(machine.get("training_threads", "1"))} intra-op thread and without oneDNN or NNPACK, with
  ATen's kernels pinned to AVX2 and MKL in its reproducible `COMPATIBLE` mode (`MKL_CBWR`); the
  project's tests check this by simulating other CPUs on one (NumPy without AVX2, oneDNN and MKL
  capped at SSE4, 1, 2 and 3 threads) and against hashes committed per CPU vendor. An AMD EPYC
  still trains other bytes than an Intel Xeon, so the default models are shipped (below) and
  every machine audits the same ones; their logits are tested against values recorded on the
  EPYC (within 1e-5, the same classes).
- **Every table built from predictions** (accuracy, fairness rates, disparities, calibration, the
  verification tables of this build) then has the same counts, accuracies and rates on any such
  machine; values computed by NumPy from the logits (softmax probabilities in float64,
  calibration, scores) agree as closely as the logits do.
- **Attribution maps and their evaluation** use PyTorch's fast default kernels (oneDNN, with the
  built-in network and torchvision models in channels-last memory) and, for the Xplique methods,
  TensorFlow: they are not bit-identical across CPUs. Measured on the tiny test
  configuration against a simulated older CPU (oneDNN at SSE4.1, MKL at SSE4.2, NumPy without AVX2,
  one thread): map-based statistics differed by up to 1e-3 relative (a bootstrap bound near zero by
  4.5e-3), every "detected" and "passes" flag was the same, and one method ranking swapped two
  near-tied methods. Read map-based numbers to two or three significant digits.
- **On a GPU** the models are trained with deterministic cuDNN kernels and TF32 off: two GPU runs
  give the same weights, but not the CPU's; expect other models and numbers. The default weights
  are shipped (below), so the default build uses the CPU-trained models on a GPU too.
- **A CPU without AVX2** falls back to other kernels, and the results are not comparable.
- Shipped weights: {escape(", ".join(shipped)) if shipped else "none used in this build"}. The default models of every
  training draw are shipped in `data/weights/` (made by `make weights`, which trains them the way a
  build would); a build with other training settings, data or code trains its own. The tutorial
  notebook's model is shipped too, so the tutorial shows the same numbers on every machine.

## This machine

{table_markdown(pd.DataFrame({"setting": list(machine), "value": list(machine.values())}))}

- Seed: **{facts['seed']}**
- Git commit: `{escape(env['git_commit'])}`
- Python: {escape(env['python'])}
- Figures: {count}, tables: {len(art) - count}; all listed in the
  [results manifest](manifest.json) with their ids, captions and files.
- Citations: every figure as a BibTeX entry in [figures.bib](figures.bib), every table in
  [tables.bib](tables.bib); each also has its own "Cite this" box. {_citation_url_text(facts)}

To rebuild: `python -m generator build --config FILE` with the configuration below saved as FILE.

## Hashes

{table_markdown(hashes)}

## Package versions

{table_markdown(packages)}

## Configuration

```yaml
{config_yaml}```
"""


# ----------------------------------------------------------------------------- bias

_RATE_COLUMNS = {"accuracy": "accuracy", "base_rate": "base rate", "tpr": "TPR", "fpr": "FPR", "fnr": "FNR",
                 "precision": "precision", "selection_rate": "selection rate", "f1": "F1"}


def rates_display(by_group: pd.DataFrame, attributes: str, positive: int = 1) -> pd.DataFrame:
    """One row per group of ``attributes``: each rate as "value [low, high]", "n/a" when undefined."""
    rows = by_group[(by_group["attributes"].isin([attributes, "all"]))
                    & ((by_group["metric"] == "accuracy") | (by_group["class"] == positive))]
    out = []
    for group, sub in rows.groupby("group", sort=False):
        cells = {"group": group, "n": int(sub["n"].iloc[0])}
        notes = []
        for metric, label in _RATE_COLUMNS.items():
            hit = sub[sub["metric"] == metric]
            cells[label] = _interval(hit.iloc[0]) if len(hit) else "n/a"
            notes += [str(n) for n in hit["note"] if isinstance(n, str) and n]
        cells["notes"] = "; ".join(dict.fromkeys(notes))
        out.append(cells)
    return pd.DataFrame(out)


def _interval(row: pd.Series) -> str:
    if pd.isna(row["value"]):
        return "n/a"
    if pd.isna(row["ci_low"]):
        return f"{row['value']:.3f}"
    return f"{row['value']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"


def _models(facts: dict[str, Any]) -> list[str]:
    return [m["name"] for m in facts["models"]]


def bias_classification_page(facts: dict[str, Any], art: Artifacts) -> str:
    """Fairness of each model's predictions by group, with intervals and definitions."""
    sections = []
    for model in _models(facts):
        rates = art[f"tab-bias-rates-{model}"]
        disparities = art[f"tab-bias-disparities-{model}"].frame
        shown = disparities[(disparities["class"] == 1) | disparities["class"].isna()]
        sections.append(f"""## Model {escape(model)}

{figure_block(art[f'fig-bias-rates-{model}'])}
### Rates by skin-tone band

{table_markdown(rates_display(rates.frame, "skin_tone"))}

### Rates by skin-tone band and age group

{table_markdown(rates_display(rates.frame, "skin_tone x age_group"))}

{table_link_block(rates)}

### Disparities (class "smiling")

{table_markdown(shown[["attributes", "metric", "difference", "ratio", "min_group", "max_group", "note"]])}

{table_link_block(art[f'tab-bias-disparities-{model}'])}

{figure_block(art[f'fig-bias-confusion-{model}'])}
{figure_block(art[f'fig-bias-calibration-{model}'])}
{table_block(art[f'tab-bias-ece-{model}'])}""")
    return f"""# Bias assessment: classification

How each model's errors fall on each group of the evaluation split: for every skin-tone band,
age group and their intersections, the base rate, accuracy, true and false positive rates, false
negative rate, precision, selection rate and F1, each with a 95 % interval (Wilson's score
interval for the rates, which are proportions; a percentile bootstrap for F1 and the ECE); the
disparities between groups; confusion matrices; and calibration. The definitions, with formulas and
what each metric does not show, are on the [bias metrics page](../methods/bias-metrics.md).

!!! warning "Demographic parity is not 'the rate of predicting class 1'"
    Demographic parity compares the **selection rate** \\(P(\\hat y = k \\mid g)\\) of a class \\(k\\)
    across groups \\(g\\). Counting predictions of class index 1 in every group is one class's selection
    rate, and for a multi-class task it says nothing about the other classes. Here every rate is computed
    per class (one-vs-rest) and the disparity tables name the class.

"n/a" marks a rate that is undefined for a group (for example a TPR in a group with no positives);
the note says why. A group smaller than 30 images is reported with a note, never dropped.

{chr(10).join(sections)}"""


def bias_verification_page(facts: dict[str, Any], art: Artifacts) -> str:
    """Face-verification bias after Robinson et al. (2020), on pairs of evaluation images."""
    matchers = facts.get("matchers") or []
    sections = []
    if matchers:
        subjects = [(m["name"], f"Face-recognition model {escape(m['name'])}") for m in matchers]
    else:
        subjects = [(m, f"Model {escape(m)}") for m in _models(facts)]
    if "tab-verification-tar-pairs-table" in art:
        subjects.append(("pairs-table", "Pairs table (BFW format)"))
    for model, heading in subjects:
        tar = art[f"tab-verification-tar-{model}"]
        fpr = art[f"tab-verification-fpr-{model}"]
        figures = "".join(figure_block(art[key]) for slug in ("roc", "det", "scores", "fpr-inflation", "rank1")
                          if (key := f"fig-verification-{slug}-{model}") in art)
        sections.append(f"""## {heading}

{table_block(tar)}
{table_block(fpr)}
{figures}""")
    return f"""# Bias assessment: verification

Face verification asks whether two images show the same person: a similarity score is compared
with a threshold. Following Robinson et al. (2020, *Balanced Faces in the Wild*), this page measures
per subgroup the true acceptance rate (TAR) at fixed false acceptance rates (FAR), with **one
global threshold** and with **per-subgroup thresholds**, and the false positive rate each subgroup
really gets at the global threshold. See [TAR at FAR](../methods/bias-metrics.md#tar-at-far) and
[global thresholds](../methods/bias-metrics.md#global-threshold).

{_matchers_text(facts, art) if matchers else _classifier_embeddings_note()}

Identities are split into 5 folds; for each fold the thresholds are chosen on the other folds, and
the tables give the mean and standard deviation over folds. A FAR that would need more imposter
pairs than exist is left empty with a note.

{chr(10).join(sections)}
{_verification_maps_section(facts, art, [m['name'] for m in matchers])}"""


def _verification_maps_section(facts: dict[str, Any], art: Artifacts, matchers: list[str]) -> str:
    """Attribution maps of the verification scores: what they are, what they show here, and their limits."""
    from generator.report.verification_text import false_match_text, far_text, region_findings

    shown = [m for m in matchers if f"tab-verification-maps-regions-{m}" in art]
    if not shown:
        return ""
    explain = facts["config"]["verification"]["face_recognition"]["explain"]
    blocks = []
    for model in shown:
        pairs = art[f"tab-verification-maps-pairs-{model}"]
        regions = art[f"tab-verification-maps-regions-{model}"]
        findings = "\n".join(f"- {escape(line)}." for line in region_findings(regions.frame))
        figures = "".join(figure_block(art[key]) for key in (f"fig-verification-maps-means-{model}",
                                                            f"fig-verification-maps-difference-{model}") if key in art)
        galleries = "".join(figure_block(f) for key, f in art.items() if key.startswith(f"fig-verification-gallery-{model}-"))
        blocks.append(f"""### Similarity maps of {escape(model)}

Read on this build: {escape(false_match_text(pairs.frame))}. What separates false matches from correct
rejections in each band:

{findings}

{table_block(pairs)}
{figures}
{table_block(regions)}
{galleries}""")
    return f"""## Explaining verification decisions

A verification score is the cosine similarity \\(s(a, b) = f(a) \\cdot f(b)\\) of two unit-length
embeddings. To explain it, each image of a pair is explained *towards the other*: with
\\(e = f(b)\\) fixed, the attribution method explains \\(x \\mapsto f(x) \\cdot e\\) at \\(x = a\\)
exactly as it would explain a class logit (and symmetrically for \\(b\\)). Every pair is decided by
one global threshold, set for an intended FAR of {far_text(explain['far'])} on all imposter pairs, and falls in one
of four outcomes: **match** and **false non-match** (genuine pairs above and below the threshold),
**false match** and **correct rejection** (imposter pairs above and below it). In every skin-tone
band, up to {explain['pairs']} false matches and as many correct rejections (the pairs the tests
compare) and up to {explain['other_pairs']} matches and false non-matches are explained with
{method_link(explain['method'], _method_title(explain['method']))}; one pair of each outcome also with
{", ".join(method_link(m, _method_title(m)) for m in explain['gallery_methods'])}. The statistics are those of the
[classification analysis](analysis.md): aligned mean maps, pixel-wise permutation tests with
family-wise correction, and region shares (exact masks of the synthetic faces) compared between
false matches and correct rejections with permutation tests, Holm-corrected, the pair as the unit.

!!! warning "What similarity maps can and cannot show"
    They show which pixels of *one* face, changed a little (gradients) or covered (occlusion),
    move *this pair's* score, given the other face. They do not show why the network places two
    identities close: a region that carries much of a false match's attribution is where the
    embedding is sensitive for such pairs, not proof that the network "compares" that region, and
    a mean over pairs blurs faces that differ. The maps of the two images of a pair differ although
    the score is symmetric. They say nothing about where the threshold should be; per-subgroup
    thresholds (above) address that. A band with few false matches gives a small sample: read the
    n and the detectable difference in the tables before reading a map.

{chr(10).join(blocks)}"""


def _method_title(method: str) -> str:
    from generator.attribution.registry import REGISTRY

    spec = REGISTRY[method]
    return f"{spec.title} ({spec.library.capitalize()})"


def _classifier_embeddings_note() -> str:
    return """!!! note "What these numbers are"
    The models were trained to classify, not to recognise people; their pooled features are used
    here as face embeddings only to demonstrate the analysis. Expect weak verification overall. On
    real verification data (for example BFW's pairs table, which ships scores) the same analysis
    applies unchanged.

Pairs: genuine pairs share an identity; imposter pairs are two identities of the same subgroup,
as in BFW."""


def _matchers_text(facts: dict[str, Any], art: Artifacts) -> str:
    """What the two face-recognition models are and what the global threshold does to each, in numbers."""
    from generator.report.verification_text import far_text, fold_interval, fpr_finding

    fr = facts["config"]["verification"]["face_recognition"]
    lines = []
    for m in facts["matchers"]:
        tar = art[f"tab-verification-tar-{m['name']}"].frame
        overall = tar[(tar["subgroup"] == "all") & (tar["far"] == 1e-3)]
        found = fpr_finding(art[f"tab-verification-fpr-{m['name']}"].frame)
        parts = [f"- **{escape(m['name'])}** ({escape(m['description'])}; "
                 f"{'shipped weights' if m['shipped'] else 'trained in this build'}):"]
        if len(overall) and pd.notna(overall["tar_global"].iloc[0]):
            row = overall.iloc[0]
            low, high = fold_interval(float(row["tar_global"]), float(row.get("tar_global_sd", float("nan"))),
                                      int(row.get("n_folds", 0) or 0))
            ci = f" (95 % interval over folds {low:.2f} to {high:.2f})" if low == low else ""
            parts.append(f"TAR at FAR {far_text(1e-3)} over all pairs {row['tar_global']:.2f}{ci}, against "
                         f"{far_text(1e-3)} for a matcher that guesses;")
        if found is not None:
            parts.append(escape(found.sentence()) + ".")
        lines.append(" ".join(parts))
    listed = "\n".join(lines)
    return f"""On the synthetic data the audit trains two **face-recognition models** for this purpose
(a small CNN whose unit-length embeddings are trained with the CosFace loss to tell identities
apart), on a draw of the generator with more identities than the classifiers' data:
{fr['identities']['train_fair']} training identities with balanced skin-tone bands for one,
{fr['identities']['train_biased']} in census-like shares (few of the darkest band) for the other,
{fr['images_per_identity']} images each. Both are evaluated on the same
{fr['identities']['eval']} held-out identities, so any difference between them comes from their
training data. Pairs: genuine pairs share an identity; imposter pairs are two identities of the
same skin-tone band, as in BFW. Read on this build:

{listed}

The false match rates are read at the smallest FAR at which every band expects at least ten false
matches; below that, a rate rests on a handful of pairs. The synthetic faces are cartoons whose
identities differ in geometry, colours, hair and glasses: the numbers show how the analysis finds
a threshold that serves one band worse, not how a real face-recognition system behaves."""


# ----------------------------------------------------------------------------- explanations

_METHOD_ANCHORS = {"saliency": "saliency", "input_x_gradient": "input-x-gradient", "gradient_input": "input-x-gradient",
                   "integrated_gradients": "integrated-gradients", "smoothgrad": "smoothgrad", "vargrad": "vargrad",
                   "squaregrad": "squaregrad", "gradient_shap": "gradient-shap", "kernel_shap": "kernel-shap",
                   "deeplift": "deeplift", "guided_backprop": "guided-backprop", "gradcam": "gradcam",
                   "gradcampp": "gradcam-plus-plus", "guided_gradcam": "guided-gradcam", "occlusion": "occlusion",
                   "feature_ablation": "occlusion", "rise": "rise", "lime": "lime", "sobol": "sobol", "hsic": "hsic"}


def method_link(method: str, title: str, prefix: str = "../") -> str:
    """A link from a method's registry name to its section on the methods page (``prefix``: the way up to docs/)."""
    anchor = _METHOD_ANCHORS.get(method.split(".", 1)[1], "")
    return f"[{escape(title)}]({prefix}methods/attribution.md#{anchor})" if anchor else escape(title)


def attribution_page(facts: dict[str, Any], art: Artifacts) -> str:
    """Galleries of every method on every model, the explained images, and what was skipped."""
    explained = facts["explanations"]
    methods = "\n".join(f"| [{escape(m['title'])}](methods/{m['name']}.md) | {escape(m['library'])} | {escape(m['family'])} | "
                        f"{'signed' if m['signed'] else 'absolute'} | {escape(m['caption'])} |"
                        for m in explained["methods"])
    galleries = "".join(figure_block(a) for key, a in art.items() if key.startswith("fig-gallery-"))
    skipped = art["tab-attribution-skipped"]
    skipped_text = ("Every method ran on every model." if skipped.frame.empty else table_block(skipped))
    return f"""# Explanations: where each model looks

Attribution methods assign each pixel a share of the model's output for one class. Here every
method explains the class each model **predicted** for an image (its logit), on
{explained['n_images']} evaluation images chosen per skin-tone band and age group (see the table
at the end). Methods and formulas: [attribution methods](../methods/attribution.md); how far to
trust the maps: [evaluation](evaluation.md).

## Methods and parameters

| method | library | family | map | parameters |
|---|---|---|---|---|
{methods}

## Galleries

One image per skin-tone band x age group. Each map is scaled by its own 99th percentile so that
methods with different units fit one colour scale; compare patterns within a map, not magnitudes
between maps. Group-level comparisons on one shared scale are on the analysis page.

{galleries}
## Skipped pairs

{skipped_text}

{table_link_block(art['tab-attribution-images'])}"""


def _citation_url_text(facts: dict[str, Any]) -> str:
    url = facts.get("site_url")
    if url:
        return f"Their URLs are absolute, under `{escape(url)}`."
    return ("Their URLs are relative to the site root: this build had no `site_url` (set `report.site_url` "
            "in the configuration, or `site_url` in mkdocs.yml, to the address the site is published at).")


def _completeness_block(art: Artifacts) -> str:
    if "tab-ig-completeness" not in art:
        return ""
    frame = art["tab-ig-completeness"].frame
    summary = (frame.assign(abs_gap=frame["gap"].abs(), abs_relative_gap=frame["relative_gap"].abs())
               .groupby(["model", "method"], sort=False)
               .agg(**{"median |gap| (logit)": ("abs_gap", "median"), "largest |gap| (logit)": ("abs_gap", "max"),
                       "median relative gap": ("abs_relative_gap", "median"),
                       "images with a relative gap": ("abs_relative_gap", "count")})
               .reset_index())
    return f"""### Integrated Gradients completeness

{table_markdown(summary, digits=4)}

{table_link_block(art['tab-ig-completeness'])}"""


def evaluation_page(facts: dict[str, Any], art: Artifacts) -> str:
    """How far the maps can be trusted: faithfulness, robustness, complexity, sanity, agreement."""
    sanity = art.get("tab-sanity")
    flagged = []
    if sanity is not None:
        frame = sanity.frame
        flagged = frame.loc[~frame["passes"].astype(bool), "method"].tolist()
    flagged_text = ("No method failed the randomisation check." if not flagged else
                    "**Flagged:** " + ", ".join(escape(m) for m in flagged) + " barely change when the model's "
                    "weights are randomised: their maps reflect the image more than the model, as Adebayo et al. "
                    "(2018) found for Guided Backpropagation and Guided Grad-CAM. Do not read them as evidence of "
                    "what the model uses.")
    ranking = art["tab-evaluation-ranking"]
    agreement = table_block(art["tab-agreement"]) if "tab-agreement" in art else "No method ran in both libraries."
    sanity_blocks = (figure_block(art["fig-sanity"]) + table_block(sanity)) if sanity is not None else ""
    return f"""# Evaluating the explanations

A saliency map is a claim about the model. Each map is scored per image, so every score can be
split by group like accuracy is. Definitions: [evaluating explanations](../methods/evaluation.md).

- **Deletion AUC** (lower is better) and **insertion AUC** (higher is better): the predicted class's
  probability as the most-attributed pixels are removed from the image (set to black), or inserted
  into a black image, in {facts['deletion_steps']} steps.
- **MuFidelity** (higher is better): correlation between the attribution of random pixel subsets and
  the drop in probability when they are removed (8 x 8 grid, 20 % of cells, 64 subsets).
- **Infidelity** (lower is better, Captum): expected squared error between attribution-weighted
  perturbations and the change in output (Gaussian perturbations).
- **Max-sensitivity** (lower is better): largest relative change of the map under small input noise
  (4 draws, radius 2 % of the pixel range); computed for gradient, path and CAM methods only, on
  the first 12 explained images, because it re-runs the explainer; empty elsewhere.
- **Sparseness** (Gini) and **complexity** (entropy): how concentrated a map is; neither is good or
  bad by itself.
- **Localisation** (synthetic ground truth): share of attribution mass on the face, the background
  and the shortcut cue; pointing game on the mouth (the evidence for smiling).

{figure_block(art['fig-evaluation-summary'])}
{table_block(art['tab-evaluation-summary'])}
## Ranking

{table_block(ranking)}
## Sanity check: does the map depend on the model?

{flagged_text}

{sanity_blocks}
## Cross-library agreement

{agreement}
{_completeness_block(art)}
{table_link_block(art['tab-evaluation-by-group'])}
{table_link_block(art['tab-evaluation-per-sample'])}"""


# ----------------------------------------------------------------------------- where the models look


def shortcut_findings(comparison: pd.DataFrame) -> list[str]:
    """The plain-words sentence of each method's overall fair-vs-biased comparison."""
    overall = comparison[comparison["skin_tone"] == "all"] if "skin_tone" in comparison else comparison
    return [str(s) for s in overall["sentence"]]


def analysis_page(facts: dict[str, Any], art: Artifacts) -> str:
    """Group-level analysis: region shares, fair vs biased on the shortcut, aligned means, FaceX."""
    parts = ["""# Where the models look

Single heatmaps invite stories. This page aggregates the maps of every explained image: how much
attribution falls on each face region (the synthetic faces have exact region masks), whether the
biased model's explanations reveal the shortcut it was trained with, and where each model looks on
average per group after aligning faces to a common template from their landmarks.
"""]
    if "tab-analysis-fair-vs-biased" in art:
        comparison = art["tab-analysis-fair-vs-biased"]
        detected = comparison.frame[(comparison.frame["skin_tone"] == "all") & comparison.frame["detected"]]
        verdict = (f"**{len(detected)} of {len(shortcut_findings(comparison.frame))} methods** show that the biased "
                   "model relies on the corner mark (more attribution on it than the fair model, on the same images).")
        findings = "\n".join(f"- {escape(s)}" for s in shortcut_findings(comparison.frame))
        parts.append(f"""## Does the explanation find the planted shortcut?

The biased model was trained on images where, for the two darker skin-tone bands, a corner mark
appeared on smiling faces only. If an explanation method works, the biased model's maps should put
clearly more attribution on the mark than the fair model's, on the same images showing the mark.

{verdict}

{findings}

{figure_block(art['fig-analysis-fair-vs-biased'])}
{table_block(comparison)}
{table_link_block(art['tab-analysis-fair-vs-biased-regions'])}""")
    parts.append(_replicate_section(facts, art))
    regions = "".join(figure_block(a) for k, a in art.items() if k.startswith("fig-analysis-regions-"))
    means = "".join(figure_block(a) for k, a in art.items()
                    if k.startswith(("fig-analysis-means-", "fig-analysis-difference-", "fig-analysis-groups-")))
    facex = "".join(figure_block(a) for k, a in art.items()
                    if k.startswith("fig-analysis-facex-") or k.startswith("fig-analysis-patches-"))
    parts.append(f"""## Attribution by face region

{regions}
{table_link_block(art['tab-analysis-region-shares'])}
## Aligned mean maps by group

Faces differ in pose and shape, so pixel-wise averages need alignment: each image and its map are
warped to a canonical face by a similarity transform fitted to the five landmarks. Maps are
normalised to sum 1 before averaging so every image weighs the same, and one colour scale serves a
whole figure, so groups and models can be compared.

{means}
{table_block(art['tab-analysis-alignment'])}""")
    if facex:
        parts.append(f"""## Face regions, FaceX style

The region score of the MAI-BIAS toolkit ("FaceX"), computed for every group instead of two and
painted with one colour scale for all groups and models (the original re-normalises each plot,
which hides differences between groups).

{facex}
{table_block(art['tab-analysis-facex'])}
{"".join(table_link_block(a) for k, a in art.items() if k.startswith("tab-analysis-patches-"))}""")
    return "\n".join(parts)


def _method_list(titles: list[str]) -> str:
    return ", ".join(escape(t) for t in titles) if titles else "none"


def _left_out(found: dict[str, Any]) -> str:
    if not found.get("left_out"):
        return ""
    return (f"- **Not repeated over draws** (costly on a CPU; add them to `attribution.replicate_methods`): "
            f"{_method_list(found['left_out'])}. For these, only the single-draw test above applies.\n")


def _replicate_section(facts: dict[str, Any], art: Artifacts) -> str:
    """The shortcut test repeated over training draws, on every evaluation image that shows the mark."""
    found = facts.get("replicates") or {}
    if "tab-analysis-replicates" not in art or not found:
        return ""
    r, n, verdict = found["replicates"], found["n_images"], found["verdicts"]
    tested = len(verdict["all"]) + len(verdict["some"]) + len(verdict["none"])
    return f"""## Does the verdict hold over training draws? {{#replicates}}

The test above uses the explained images only, and one training run. Here both models are trained
{r} times (training seeds {", ".join(str(s) for s in found["seeds"])}) and each draw's pair is compared on
**all {n} evaluation images that show the corner mark**, for every method (paired sign-flip permutation
test, Holm-corrected across the {tested} methods of a draw).

- **Detected in all {r} draws:** {_method_list(verdict["all"])}.
- **Detected in some draws only:** {_method_list(verdict["some"])}.
- **Detected in none:** {_method_list(verdict["none"])}.
{_left_out(found)}
*Power.* With n = {found["n_min"]} image pairs a test detects, with 80 % probability at the strictest
Holm level (0.05 / {tested}), a mean difference of {found["detectable_d"]:.2f} standard deviations of the
paired differences; the table gives that smallest detectable difference in share points for every
method and draw (column `min_detectable`). A method listed under "none" therefore shows no
shift at least that large; it does not prove that the model ignores the mark. A method found in
some draws only gives a verdict that depends on the training seed: do not rest a conclusion on it.

{figure_block(art['fig-analysis-replicates'])}
{table_block(art['tab-analysis-replicates-summary'])}
{table_link_block(art['tab-analysis-replicates'])}"""


def method_page(method: dict[str, Any], art: Artifacts) -> str:
    """One attribution method: what it computes, formula, paper, parameters used, gallery and scores."""
    name = method["name"]
    slug = name.replace(".", "-").replace("_", "-")
    figure = art.get(f"fig-method-{slug}")
    summary = art["tab-evaluation-summary"].frame if "tab-evaluation-summary" in art else pd.DataFrame()
    scores = summary[summary["method"] == name] if len(summary) else summary
    shown = (scores.assign(value=[_interval(pd.Series({"value": r.mean, "ci_low": r.ci_low, "ci_high": r.ci_high}))
                                  for r in scores.itertuples()])
             .pivot(index="metric", columns="model", values="value").reset_index()) if len(scores) else scores
    sanity = art.get("tab-sanity")
    sanity_rows = sanity.frame[sanity.frame["method"] == name] if sanity is not None else pd.DataFrame()
    sanity_text = ("Not part of the randomisation check (see `attribution.sanity_methods`)." if sanity_rows.empty else
                   f"After re-initialising every layer the maps keep a Spearman correlation of "
                   f"{float(sanity_rows.iloc[0]['spearman after full randomisation']):.2f} with the original: "
                   + ("**passes** (the map depends on the model)." if bool(sanity_rows.iloc[0]["passes"]) else
                      "**fails**: the map barely depends on the model's weights."))
    skipped = "".join(f"\n- Model {escape(m)}: skipped, {escape(r)}" for m, r in method["skipped"].items())
    return f"""# {escape(method['title'])} ({escape(method['library'].capitalize())})

- **Family:** {escape(method['family'])}; **map:** {'signed (diverging colours, white at zero)' if method['signed'] else 'absolute (sequential colours)'}
- **Paper:** [{escape(method['paper'])}]({method['url']})
- **Explained:** the logit of each model's predicted class.
- **Parameters used:** {escape(method['caption'])}{skipped}
- **More:** {method_link(name, 'the method explained', prefix='../../')} on the methods page.

\\[ {method['formula']} \\]

{figure_block(figure, prefix='../') if figure else 'No map to show.'}
## Scores

Means over the explained images with 95 % bootstrap intervals; definitions on the
[evaluation page](../evaluation.md).

{table_markdown(shown) if len(shown) else 'No scores.'}

## Sanity check

{sanity_text}
"""
