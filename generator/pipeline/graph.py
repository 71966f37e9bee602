"""The stages of a build, declared once: what each reads, what it makes, which code computes it.

Every cached result of the pipeline is made by one stage of :data:`STAGES` (in build order). A stage
declares the results it reads (``inputs``, by name), the modules whose source computes it (``code``)
and the type of what it makes (``result``). Its cache key is derived by :func:`stage_key` from exactly
those: the keys of the declared inputs, the stage's parameters and the hash of its code. A stage
function hands :func:`stage_key` the keys of the results it reads; a set that differs from the
declaration (an input missing, or one not declared) is refused with the stage's name and both lists.
So the declaration here is the one place that says what a result depends on, and
``tests/pipeline/test_stale_inputs.py`` checks it against builds: a replaced image, annotation row,
model file or parameter recomputes exactly the results that read it.

The data flow of the default build (``python -m generator stages`` prints the list)::

    dataset ── train ──┬── predict ────────────────────── bias tables and figures
      │   (draws 0..R) ├── keras (twin) ─┐
      │                ├─────────────────┴── attribution ── evaluation ── galleries, evaluation tables
      │                │                 ├── sanity
      │                └─────────────────┴── shares (every draw) ── shortcut test over draws
      └── landmarks (photographs only: the regions the maps are measured on)
    fr-dataset ── fr-train ── fr-embed ── verification tables ── fr-maps ── verification maps
    then every table, figure and slide figure, each keyed by the keys of the results it shows

This module imports nothing of the pipeline but the cache's hashing, so every stage module can import
its code tuple from here (the tuples are the stages' declaration, not a copy of it).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.pipeline.cache import Cache, code_hash

__all__ = ["STAGES", "Stage", "stage", "stage_key", "stage_table"]

# ----------------------------------------------------------------------------- the code of each stage
# (module names: a package means all its files; a change to any of them recomputes that stage's results)
DATASET_CODE = ("generator.datasets.synthetic",)
SAMPLE_FACES_CODE = ("generator.datasets.sample_faces",)
FILES_CODE = ("generator.datasets", "generator.pipeline.stages")
LANDMARK_CODE = ("generator.datasets.landmarks", "generator.analysis.regions")
TRAIN_CODE = ("generator.models.nets", "generator.models.train", "generator.models.device", "generator.portable")
LOAD_CODE = ("generator.models.adapters",)
KERAS_CODE = ("generator.models.nets", "generator.models.keras_twin")
PREDICT_CODE = ("generator.models.nets", "generator.models.train", "generator.models.adapters",
                "generator.attribution.handles", "generator.pipeline.stages", "generator.numerics")
ATTRIBUTION_CODE = ("generator.attribution", "generator.models.nets", "generator.models.adapters",
                    "generator.pipeline.attribution_stages")
SHARES_CODE = (*ATTRIBUTION_CODE, "generator.analysis.regions")
EVALUATION_CODE = ("generator.evaluation", "generator.attribution", "generator.models.nets",
                   "generator.models.adapters", "generator.pipeline.evaluation_stage", "generator.numerics")
SANITY_CODE = ("generator.evaluation", "generator.attribution", "generator.numerics")
FR_CODE = (*TRAIN_CODE, "generator.models.face_recognition")
VERIFICATION_MAPS_CODE = ("generator.attribution", "generator.models.keras_twin",
                          "generator.pipeline.verification_maps", "generator.bias.pairs", "generator.bias.verification")
COMPUTE_CODE = ("generator.bias", "generator.evaluation", "generator.analysis", "generator.pipeline")
FIGURE_CODE = ("generator.figures", *COMPUTE_CODE)
TABLE_CODE = COMPUTE_CODE
SLIDE_FIGURE_CODE = ("generator.figures", "generator.pipeline.slide_figures")


PROVENANCE = "the keys of the results it shows (its provenance)"


@dataclass(frozen=True)
class Stage:
    """One declared stage: its name, the results it reads, its code, what it makes and where it is cached."""

    name: str
    inputs: tuple[str, ...]
    code: tuple[str, ...]
    result: str
    does: str
    #: The cache folder (default: the name); the three ways of reading a dataset share the folder "dataset".
    folder: str = ""
    #: Where the stage is defined (``module:function`` in generator.pipeline), for the catalogue.
    where: str = ""
    #: What the key covers when the stage reads no cached result by key (said in the catalogue).
    keyed_by: str = ""

    @property
    def cache_folder(self) -> str:
        return self.folder or self.name


STAGES: tuple[Stage, ...] = (
    Stage("dataset", (), DATASET_CODE, "Faces", "generate the embedded synthetic faces (images, region masks, "
          "landmarks, table with splits)", where="stages:dataset_stage"),
    Stage("dataset-sample-faces", (), SAMPLE_FACES_CODE, "Faces", "the photographs shipped with scikit-image and "
          "matplotlib (the real-model demo)", folder="dataset", where="stages:dataset_stage"),
    Stage("dataset-files", (), FILES_CODE, "Faces", "a user's annotation table and images", folder="dataset",
          where="stages:dataset_stage", keyed_by="the table's and the images' content"),
    Stage("landmarks", ("faces",), LANDMARK_CODE, "Faces", "five landmarks per photograph and the face regions "
          "placed from them", where="stages:landmarks_stage"),
    Stage("train", ("faces",), TRAIN_CODE, "TrainedModel", "train a built-in model on its split with seed + replicate "
          "(or copy its shipped weights)", where="stages:train_stage"),
    Stage("model", (), LOAD_CODE, "TrainedModel", "load and check a user's model file (and its settings)",
          where="stages:load_stage", keyed_by="the model file's content"),
    Stage("keras", ("model", "faces"), KERAS_CODE, "Keras twin", "convert a built-in model to Keras and measure the "
          "twins' agreement on evaluation faces", where="stages:keras_twin_stage"),
    Stage("predict", ("faces", "model"), PREDICT_CODE, "Predictions", "logits, probabilities and labels on the "
          "evaluation split (resumable chunk by chunk)", where="stages:predict_stage"),
    Stage("attribution", ("model", "faces"), ATTRIBUTION_CODE, "MapSet", "one method's maps of the explained images "
          "(resumable chunk by chunk)", where="attribution_stages:attribution_stage"),
    Stage("evaluation", ("maps",), EVALUATION_CODE, "per-sample scores", "faithfulness, complexity, robustness and "
          "localisation of one map set (its curves resumable chunk by chunk)",
          where="evaluation_stage:evaluation_stage"),
    Stage("sanity", ("model", "faces"), SANITY_CODE, "sanity scores", "model-randomisation checks of the Captum "
          "methods", where="results_attribution:_sanity_plan"),
    Stage("shares", ("model", "faces"), SHARES_CODE, "region shares", "one method's attribution share per face region "
          "on every evaluation image showing the mark, per training draw", where="attribution_stages:shares_stage"),
    Stage("fr-dataset", (), DATASET_CODE, "face-recognition faces", "the identities of the verification audit (its "
          "own draw of the generator)", folder="dataset", where="face_recognition_stage:_faces"),
    Stage("fr-train", ("faces",), FR_CODE, "Matcher", "train a face-recognition model (or copy its shipped weights)",
          where="face_recognition_stage:face_recognition_stage"),
    Stage("fr-embed", ("matcher", "faces"), FR_CODE, "embeddings", "embeddings of the held-out identities",
          where="face_recognition_stage:face_recognition_stage"),
    Stage("fr-maps", ("matcher", "faces"), VERIFICATION_MAPS_CODE, "PairMaps", "similarity maps of sampled pairs of "
          "every outcome per band", where="verification_maps:verification_maps_stage"),
    Stage("table", (), TABLE_CODE, "CSV table", "one published table", where="publish:Publisher.table",
          keyed_by=PROVENANCE),
    Stage("figure", (), FIGURE_CODE, "PNG, SVG, PDF", "one published figure (with its title and caption)",
          where="publish:Publisher.figure", keyed_by=PROVENANCE),
    Stage("slide-figure", (), SLIDE_FIGURE_CODE, "PNG", "one figure redrawn for the deck",
          where="slide_figures:_write", keyed_by=PROVENANCE),
)

_BY_NAME = {s.name: s for s in STAGES}


def stage(name: str) -> Stage:
    """The declared stage ``name`` (a clear error naming the declared ones otherwise)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no stage {name!r} is declared in generator.pipeline.graph; declared: "
                       f"{', '.join(_BY_NAME)}") from None


def stage_key(cache: Cache, name: str, params: Mapping[str, Any], **inputs: str) -> str:
    """The cache key of one run of stage ``name``: its parameters, its code and the keys of its declared inputs.

    ``inputs`` must name exactly the stage's declared inputs (each given as that result's key); the
    key lists them in declaration order. ``params`` must not hold ``code``: the stage's code hash is
    added here from its declaration.
    """
    declared = stage(name)
    given = set(inputs)
    if given != set(declared.inputs):
        missing, extra = sorted(set(declared.inputs) - given), sorted(given - set(declared.inputs))
        raise TypeError(f"stage {name!r} reads {list(declared.inputs) or 'no results'}; "
                        + (f"not given: {missing}" if missing else "") + ("; " if missing and extra else "")
                        + (f"not declared: {extra} (declare them in generator.pipeline.graph)" if extra else ""))
    bad = [k for k, v in inputs.items() if not isinstance(v, str) or not v]
    if bad:
        raise TypeError(f"stage {name!r}: inputs {bad} must be given as the cache keys (non-empty strings) of "
                        "those results")
    if "code" in params:
        raise ValueError(f"stage {name!r}: 'code' is added from the stage's declaration, not passed as a parameter")
    payload = dict(params)
    if declared.code:
        payload["code"] = code_hash(*declared.code)
    return cache.key(declared.cache_folder, payload, tuple(inputs[n] for n in declared.inputs))


def stage_table() -> str:
    """The catalogue as text: one line per stage with what it reads, what it makes and its code."""
    width = max(len(s.name) for s in STAGES)
    lines = [f"{'stage'.ljust(width)}  reads -> makes; computed by (code hashed into its key)"]
    for s in STAGES:
        reads = ", ".join(s.inputs) or s.keyed_by or "the config"
        lines.append(f"{s.name.ljust(width)}  {reads} -> {s.result}: {s.does}")
        lines.append(f"{''.ljust(width)}  generator.pipeline.{s.where}; code: {', '.join(s.code)}"
                     + (f"; cached in {s.cache_folder}/" if s.folder else ""))
    return "\n".join(lines)
