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
from generator.report.markdown import escape, figure_block, table_block, table_markdown

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
{table_block(art['tab-models-accuracy-by-intersection'])}
## Accuracy when the shortcut cue misleads

In the evaluation split the corner mark is random. A model that learned "mark means smiling"
fails where the mark contradicts the label.

{_gap_sentences(shortcut, "cue condition")}

{figure_block(art['fig-models-accuracy-by-shortcut'])}
{table_block(art['tab-models-accuracy-by-shortcut'])}"""


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
    return f"""# Reproducibility

Every number and figure on this site comes from one configuration and one seed. The same
configuration, seed and package versions give the same tables and byte-identical figure files.

- Seed: **{facts['seed']}**
- Git commit: `{escape(env['git_commit'])}`
- Python: {escape(env['python'])}
- Figures: {count}, tables: {len(art) - count}; all listed in the
  [results manifest](manifest.json) with their ids, captions and files.

To rebuild: `python -m generator build --config FILE` with the configuration below saved as FILE.

## Hashes

{table_markdown(hashes)}

## Package versions

{table_markdown(packages)}

## Configuration

```yaml
{config_yaml}```
"""
