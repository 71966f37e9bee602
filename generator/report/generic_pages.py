"""Result pages for a user's dataset and models (and the real-model demo).

The synthetic default has pages written around its planted bias (see
:mod:`generator.report.pages`). A user's data has no ground-truth masks, no
planted cue and perhaps no labels, so these pages say what the data and models
are, then show every figure and table the build registered for the page, in the
order it registered them. What could not be computed is said in words.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from generator.report.artifacts import FigureArtifact, TableArtifact
from generator.report.markdown import escape, figure_block, table_block, table_link_block, table_markdown

__all__ = ["GENERIC_PAGES"]

Artifacts = dict[str, FigureArtifact | TableArtifact]
LONG_TABLE = 40  # rows; longer tables are linked as CSV, not shown


def _artifacts(art: Artifacts, page: str) -> str:
    blocks = []
    for item in art.values():
        if item.page != page:
            continue
        if isinstance(item, FigureArtifact):
            blocks.append(figure_block(item))
        else:
            blocks.append(table_block(item) if len(item.frame) <= LONG_TABLE else table_link_block(item))
    return "\n".join(blocks) if blocks else "Nothing to show for this dataset and these models (see above).\n"


def _dataset_kind(facts: dict[str, Any]) -> str:
    return facts["config"]["dataset"]["kind"]


def _unlabelled(facts: dict[str, Any]) -> bool:
    return not facts["dataset"]["label_names"]


DEMO_NOTE = """!!! warning "A demonstration, not a bias audit"
    These photographs carry **no demographic labels** and no ground-truth gender: nothing here
    measures whether the model treats groups of people differently. The pages show how the
    explanation methods behave on a real, small network (what they highlight, how faithful and
    stable their maps are), which the cartoon faces of the default audit cannot show.
"""


def dataset_page(facts: dict[str, Any], art: Artifacts) -> str:
    data = facts["dataset"]
    kind = _dataset_kind(facts)
    attributes = ", ".join(f"`{escape(a)}`" for a in data["attributes"]) or "none"
    labels = ", ".join(f"{k} = {escape(n)}" for k, n in enumerate(data["label_names"])) or "none (unlabelled)"
    notes = "".join(f"\n- {escape(n)}" for n in data["notes"])
    splits = ", ".join(f"{escape(k)}: {v}" for k, v in data["splits"].items() if v)
    skipped = data["skipped"]
    demo = DEMO_NOTE if kind == "sample_faces" else ""
    reasons = ""
    if skipped:
        counts = pd.Series(data["skipped_reasons"]).rename_axis("reason").reset_index(name="count")
        reasons = f"\n### Why images were left out\n\n{table_markdown(counts)}\n"
    return f"""# Dataset

{demo}
- **Source:** {escape(data['source'])} (dataset kind `{escape(kind)}`)
- **Images used:** {data['images']} at {data['image_size']} x {data['image_size']} pixels
  ({splits}); identities: {data['identities'] if data['has_identity'] else 'not given by this dataset'}
- **Left out:** {skipped} row(s) or image(s), each listed below with the reason; listed
  {data['images'] + skipped} = used {data['images']} + left out {skipped}.
- **Task label:** {labels}
- **Protected attributes:** {attributes}{notes}

Images are resized to the models' input size without face detection or alignment: the public
face datasets this tool reads ship aligned crops. Group analyses take the crops as aligned.
{reasons}
{_artifacts(art, 'dataset.md')}"""


def models_page(facts: dict[str, Any], art: Artifacts) -> str:
    rows = [{"model": m["name"], "kind": m["kind"], "source": m["check"].get("description", m["split"]),
             "outputs": m["check"].get("outputs", "logits"), "classes": m["check"].get("classes"),
             "CAM layer": m["check"].get("cam_layer"), "content hash": m["hash"]}
            for m in facts["models"]]
    onnx = [m for m in facts["models"] if "max_abs_diff" in m["check"]]
    checks = "".join(f"\n- Model **{escape(m['name'])}**: converted from ONNX with onnx2torch; largest difference "
                     f"from onnxruntime on a probe batch {m['check']['max_abs_diff']:.1e}." for m in onnx)
    return f"""# Models

{table_markdown(pd.DataFrame(rows))}

Models that output probabilities (a softmax inside the network) are explained on the log of the
probability of the predicted class; the others on its logit.{checks}

{_artifacts(art, 'models.md')}"""


def bias_classification_page(facts: dict[str, Any], art: Artifacts) -> str:
    if _unlabelled(facts):
        body = "The images carry no task label, so no error rate or disparity can be computed.\n"
    else:
        body = _artifacts(art, "bias-classification.md")
    return f"""# Bias assessment: classification

Rates per group with Wilson score intervals (F1 and ECE: bootstrap), disparities between groups,
confusion matrices and calibration; definitions on the [bias metrics page](../methods/bias-metrics.md).
Small groups give wide intervals: read the interval, not only the point.

{body}"""


def bias_verification_page(facts: dict[str, Any], art: Artifacts) -> str:
    return f"""# Bias assessment: verification

Verification needs face embeddings with identities (from the built-in model) or a BFW-format
pairs table (`verification.pairs_table`); what this build had is shown below.

{"".join(f"!!! note{chr(10)}    {escape(n)}{chr(10)}{chr(10)}" for n in facts.get("notes", {}).get("bias-verification.md", []))}
{_artifacts(art, 'bias-verification.md')}"""


def attribution_page(facts: dict[str, Any], art: Artifacts) -> str:
    methods = "\n".join(f"- [{escape(m['title'])} ({escape(m['library'].capitalize())})](methods/{m['name']}.md)"
                        + "".join(f" (model {escape(k)}: skipped, {escape(v)})" for k, v in m["skipped"].items())
                        for m in facts["explanations"]["methods"])
    demo = DEMO_NOTE if _dataset_kind(facts) == "sample_faces" else ""
    return f"""# Explanations: galleries

{demo}
{facts['explanations']['n_images']} evaluation images are explained for every model and method,
each on the model's predicted class. Methods (one page each):

{methods}

{_artifacts(art, 'attribution.md')}"""


def evaluation_page(facts: dict[str, Any], art: Artifacts) -> str:
    return f"""# Explanations: evaluation

Faithfulness (deletion and insertion AUC, MuFidelity, infidelity), robustness (max-sensitivity),
complexity and the cascading-randomisation sanity check; definitions on the
[evaluation methods page](../methods/evaluation.md). The per-image region scores of this page
(share on the face, on the background, the pointing game on the mouth) need exact face-region
masks, which only the synthetic faces have: they are empty here. The approximate regions placed
from detected landmarks are used on the page "Where the models look" instead.

{_artifacts(art, 'evaluation.md')}"""


def analysis_page(facts: dict[str, Any], art: Artifacts) -> str:
    return f"""# Where the models look

Mean attribution maps per group and their differences, with pixel-wise permutation tests
(max-statistic correction). Where the dataset settings ask for landmarks (`dataset.landmarks: dlib`,
the default), every face is first located with dlib's HOG face detector and five-point shape
predictor (eye corners, base of the nose; a CC0 model shipped by an installed package, nothing
downloaded), and its image and maps are warped to one template face by a similarity transform;
faces the detector misses are listed and left out of the means. Face regions (forehead, brows,
eyes, nose, cheeks, mouth, chin and jaw; hair, ears, neck and scene together as background) are
ellipses placed from the same landmarks: the shares of attribution per region, the FaceX region
scores on a prototype face and the high-impact patches below use them. They are **approximate**:
they do not follow a face's outline, and the mouth, which five landmarks do not locate, is placed
below the nose by average proportions. With `dataset.landmarks: none` the crops are averaged as
they come and the region analyses are left out.

{_artifacts(art, 'analysis.md')}"""


GENERIC_PAGES = {
    "dataset.md": dataset_page,
    "models.md": models_page,
    "bias-classification.md": bias_classification_page,
    "bias-verification.md": bias_verification_page,
    "attribution.md": attribution_page,
    "evaluation.md": evaluation_page,
    "analysis.md": analysis_page,
}
