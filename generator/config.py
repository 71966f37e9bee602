"""The one validated configuration of a run.

A run is described by one YAML file. :func:`load_config` reads it, checks every key
and value against the schema below and returns a frozen :class:`Config`. Anything
wrong is refused at start-up with a :class:`~generator.errors.ConfigError` whose
message names the file, the key (as a dotted path), the value given and what is
accepted; a misspelt key gets a "did you mean" suggestion.

Relative paths in ``output`` are resolved against the current working directory
(the repository root when run through ``make``).
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from generator.errors import ConfigError
from generator.fileio import file_sha256

__all__ = [
    "AttributionBudget",
    "AttributionConfig",
    "Config",
    "DatasetConfig",
    "ModelConfig",
    "PreprocessingConfig",
    "OutputConfig",
    "ReportConfig",
    "SyntheticConfig",
    "TrainingConfig",
    "VerificationConfig",
    "config_hash",
    "load_config",
    "parse_config",
]

SPLITS = ("train_fair", "train_biased", "eval")
MST_BANDS = ("MST 1-3", "MST 4-5", "MST 6-7", "MST 8-10")
# 2019 US census shares used for the biased FairFace set in the capstone report
# (White .601, Latino .185, Black .134, Middle Eastern .024, ...), the four largest
# renormalised and mapped onto skin-tone bands from lightest to darkest.
CENSUS_SHARES = {"MST 1-3": 0.637, "MST 4-5": 0.196, "MST 6-7": 0.142, "MST 8-10": 0.025}


class _Strict(BaseModel):
    """Base of every config section: unknown keys are errors, objects are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticConfig(_Strict):
    """Parameters of the procedural face generator (the embedded default data)."""

    image_size: int = Field(64, ge=48, le=128, description="side of the square images in pixels")
    identities: dict[Literal["train_fair", "train_biased", "eval"], int] = Field(
        default_factory=lambda: {"train_fair": 128, "train_biased": 128, "eval": 64},
        description="number of identities per split",
    )
    images_per_identity: int = Field(12, ge=10, le=200)
    biased_shares: dict[str, float] = Field(default_factory=lambda: dict(CENSUS_SHARES))
    shortcut_groups: tuple[str, ...] = ("MST 6-7", "MST 8-10")
    shortcut_strength: float = Field(0.95, ge=0.0, le=1.0)
    noise_std: float = Field(4.0, ge=0.0, le=64.0)
    glasses_rate: float = Field(0.25, ge=0.0, le=1.0)

    @field_validator("identities")
    @classmethod
    def _all_splits_positive(cls, value: dict[str, int]) -> dict[str, int]:
        missing = [s for s in SPLITS if s not in value]
        if missing:
            raise ValueError(f"missing split(s) {missing}; give a count for each of {list(SPLITS)}")
        bad = {k: v for k, v in value.items() if v < 1}
        if bad:
            raise ValueError(f"counts must be at least 1, got {bad}")
        return value

    @field_validator("biased_shares")
    @classmethod
    def _known_bands(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = [k for k in value if k not in MST_BANDS]
        if unknown:
            raise ValueError(f"unknown skin-tone band(s) {unknown}; accepted: {list(MST_BANDS)}")
        missing = [k for k in MST_BANDS if k not in value]
        if missing:
            raise ValueError(f"missing share(s) for {missing}; give a share for each of {list(MST_BANDS)}")
        if any(v <= 0 for v in value.values()):
            raise ValueError(f"shares must be positive, got {value}")
        return value

    @field_validator("shortcut_groups")
    @classmethod
    def _known_groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in value if k not in MST_BANDS]
        if unknown:
            raise ValueError(f"unknown skin-tone band(s) {unknown}; accepted: {list(MST_BANDS)}")
        return value


DATASET_KINDS = ("synthetic", "fairface", "celeba", "utkface", "bfw", "csv", "sample_faces")
# Per dataset kind: the default task label and protected attributes (see generator.datasets).
DATASET_DEFAULTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "synthetic": ("smiling", ("skin_tone", "age_group")),
    "fairface": ("gender", ("race", "age")),
    "celeba": ("Smiling", ("Male", "Young")),
    "utkface": ("gender", ("race", "age_group")),
    "bfw": ("gender", ("ethnicity",)),
    "csv": ("label", ()),
    "sample_faces": ("", ("source",)),
}
# Which files each kind reads: (needs root, needs annotations).
_DATASET_FILES = {"fairface": (True, True), "celeba": (True, True), "utkface": (True, False),
                  "bfw": (True, False), "csv": (True, True)}


class DatasetConfig(_Strict):
    """Which faces to audit: the embedded synthetic set, a public dataset's files, or a CSV.

    For every kind but ``synthetic``, images are read from ``root`` (paths in the
    annotation file are relative to it), resized to ``image_size`` and, when
    ``max_images`` is set, subsampled with group shares kept.
    """

    kind: Literal["synthetic", "fairface", "celeba", "utkface", "bfw", "csv", "sample_faces"] = "synthetic"
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    root: Path | None = Field(None, description="folder the image paths are relative to")
    annotations: Path | None = Field(None, description="label file: FairFace CSV, CelebA list_attr_celeba.txt, "
                                                       "or the generic CSV")
    identity_file: Path | None = Field(None, description="CelebA identity_CelebA.txt (optional)")
    label: str | None = Field(None, description="the task label the models predict (default per kind)")
    label_values: tuple[str, ...] | None = Field(None, description="csv: class names in class-index order")
    attributes: tuple[str, ...] | None = Field(None, description="protected attributes (default per kind)")
    image_column: str = "image"
    identity_column: str | None = None
    image_size: int = Field(64, ge=16, le=512, description="images are resized to this square size")
    crop: Literal["centre", "pad", "resize"] = Field(
        "centre", description="a non-square image: 'centre' crops its centred square, 'pad' pads it to a square "
                              "with black, 'resize' stretches it (the faces change shape)")
    landmarks: Literal["dlib", "none"] = Field(
        "dlib", description="photographs: detect faces and five landmarks with dlib (offline, CC0 model) to align "
                            "the maps and place face regions; 'none' takes the crops as aligned and skips regions")
    max_images: int | None = Field(2000, ge=10, description="stratified subsample of this many images (null: all)")
    eval_fraction: float = Field(0.3, gt=0.0, lt=1.0, description="identities held out for evaluation when a "
                                                                   "default model is trained on this data")

    @model_validator(mode="after")
    def _files_given(self) -> "DatasetConfig":
        needs = _DATASET_FILES.get(self.kind)
        if needs is None:
            return self
        for key, needed in zip(("root", "annotations"), needs):
            value = getattr(self, key)
            if needed and value is None:
                raise ValueError(f"dataset.kind '{self.kind}' needs dataset.{key} (see data/configs/{self.kind}.yaml)")
            if value is not None and key == "root" and not Path(value).is_dir():
                raise ValueError(f"dataset.root: folder not found: '{value}'")
            if value is not None and key == "annotations" and not Path(value).is_file():
                raise ValueError(f"dataset.annotations: file not found: '{value}'")
        if self.identity_file is not None and not Path(self.identity_file).is_file():
            raise ValueError(f"dataset.identity_file: file not found: '{self.identity_file}'")
        return self

    @property
    def task_label(self) -> str:
        """The label column the models predict (the kind's default unless set)."""
        return self.label if self.label is not None else DATASET_DEFAULTS[self.kind][0]

    @property
    def protected(self) -> tuple[str, ...]:
        """The protected attributes (the kind's default unless set)."""
        return self.attributes if self.attributes is not None else DATASET_DEFAULTS[self.kind][1]


class TrainingConfig(_Strict):
    """How the default models are trained (deterministically, on the CPU or a GPU)."""

    epochs: int = Field(10, ge=1, le=200)
    batch_size: int = Field(32, ge=1, le=4096)
    lr: float = Field(3e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(1e-4, ge=0.0, le=1.0)
    width: int = Field(16, ge=4, le=256)
    augment_flip: bool = True


class PreprocessingConfig(_Strict):
    """How a model expects its input: ``x = (pixel / 255 - mean) / std`` per channel.

    ``mean`` and ``std`` are in ``[0, 1]`` pixel units and given in RGB order; ``BGR``
    models get their channels reordered after normalisation.
    """

    size: int | tuple[int, int] = Field(64, description="input side in pixels, or [height, width]")
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    channel_order: Literal["RGB", "BGR"] = "RGB"

    @field_validator("std")
    @classmethod
    def _positive(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(v <= 0 for v in value):
            raise ValueError(f"std values must be positive, got {list(value)}")
        return value

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.size, self.size) if isinstance(self.size, int) else tuple(self.size)


MODEL_KINDS = ("default", "pytorch", "torchvision", "keras", "onnx")
_MODEL_SUFFIXES = {"pytorch": (".pt", ".pth", ".bin", ".ckpt"), "torchvision": (".pt", ".pth", ".bin", ".ckpt"),
                   "keras": (".keras",), "onnx": (".onnx",)}


class ModelConfig(_Strict):
    """One model to audit.

    ``kind: default`` trains the project's small CNN on a split of the data. The other
    kinds load a file: ``pytorch`` (a state_dict plus the Python file defining the class;
    that file is run as code, so only point at code you trust), ``torchvision`` (an
    architecture by name plus a state_dict), ``keras`` (a ``.keras`` file) and ``onnx``
    (converted to PyTorch with onnx2torch, checked against onnxruntime).
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    kind: Literal["default", "pytorch", "torchvision", "keras", "onnx"] = "default"
    train_split: Literal["train_fair", "train_biased", "train"] = "train_fair"
    keras_twin: bool = False
    description: str = ""
    path: Path | None = Field(None, description="weights (.pt), .keras or .onnx file")
    class_file: Path | None = Field(None, description="pytorch: Python file defining the model class (run as code)")
    class_name: str | None = None
    init_args: dict[str, Any] = Field(default_factory=dict)
    architecture: str | None = Field(None, description="torchvision: architecture name, e.g. resnet18")
    num_classes: int | None = Field(None, ge=2)
    cam_layer: str | None = Field(None, description="layer for CAM methods (see `python -m generator layers`)")
    preprocessing: PreprocessingConfig | None = None

    @field_validator("path", "class_file", mode="before")
    @classmethod
    def _package_path(cls, value: Any) -> Any:
        """``package:NAME/inner/path`` names a file shipped inside an installed Python package."""
        if isinstance(value, str) and value.startswith("package:"):
            return resolve_package_path(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "ModelConfig":
        if self.kind == "default":
            loaded = [k for k in ("path", "class_file", "class_name", "architecture", "cam_layer", "preprocessing")
                      if getattr(self, k) is not None]
            if loaded:
                raise ValueError(f"model '{self.name}': kind 'default' trains the built-in CNN and takes no "
                                 f"{', '.join(loaded)}; set kind to pytorch, torchvision, keras or onnx to load a file")
            return self
        if self.keras_twin:
            raise ValueError(f"model '{self.name}': keras_twin is only for kind 'default' models")
        if self.path is None:
            raise ValueError(f"model '{self.name}': kind '{self.kind}' needs path (the model file)")
        if not Path(self.path).is_file():
            raise ValueError(f"model '{self.name}': file not found: '{self.path}'")
        if Path(self.path).suffix.lower() not in _MODEL_SUFFIXES[self.kind]:
            raise ValueError(f"model '{self.name}': '{self.path}' does not look like a {self.kind} file "
                             f"(expected {', '.join(_MODEL_SUFFIXES[self.kind])})")
        if self.kind == "pytorch":
            if self.class_file is None or self.class_name is None:
                raise ValueError(f"model '{self.name}': kind 'pytorch' needs class_file and class_name")
            if not Path(self.class_file).is_file():
                raise ValueError(f"model '{self.name}': class_file not found: '{self.class_file}'")
        if self.preprocessing is None:
            raise ValueError(f"model '{self.name}': kind '{self.kind}' needs preprocessing (size, mean, std, "
                             "channel_order) as the model was trained with; a wrong normalisation silently "
                             "changes every prediction and map")
        if self.kind == "torchvision" and (self.architecture is None or self.num_classes is None):
            raise ValueError(f"model '{self.name}': kind 'torchvision' needs architecture and num_classes")
        return self


DEFAULT_METHODS = (
    "captum.saliency", "captum.input_x_gradient", "captum.integrated_gradients", "captum.smoothgrad",
    "captum.guided_backprop", "captum.deeplift", "captum.gradient_shap", "captum.gradcam", "captum.guided_gradcam",
    "captum.occlusion",
    "xplique.saliency", "xplique.gradient_input", "xplique.integrated_gradients", "xplique.smoothgrad",
    "xplique.vargrad", "xplique.squaregrad", "xplique.occlusion", "xplique.rise", "xplique.gradcam",
    "xplique.gradcampp",
)
SANITY_METHODS = ("captum.saliency", "captum.integrated_gradients", "captum.smoothgrad", "captum.guided_backprop",
                  "captum.gradcam", "captum.guided_gradcam")
# The shortcut test over training draws runs on every evaluation image that shows the mark (a few
# hundred) for each model of each draw. Measured on 2 cores at 64 px, per model and 380 images: these
# cost 0.4 to 30 s each (IG the most); SmoothGrad, VarGrad, SquareGrad (18-20 s each), occlusion
# (75 s in Captum) and RISE cost more and are left out by default to keep the build in minutes.
# Xplique's Integrated Gradients is left out: it estimates the same integral as Captum's (the
# evaluation page's matched-rule agreement shows the maps agree), at a quarter of the whole test's time.
REPLICATE_METHODS = ("captum.saliency", "captum.input_x_gradient", "captum.integrated_gradients",
                     "captum.guided_backprop", "captum.deeplift", "captum.gradient_shap", "captum.gradcam",
                     "captum.guided_gradcam", "xplique.saliency", "xplique.gradient_input",
                     "xplique.gradcam", "xplique.gradcampp")


class AttributionBudget(_Strict):
    """How much of the explained images the expensive per-sample metrics cover."""

    evaluation_images: int | None = Field(None, ge=2, description=(
        "deletion, insertion, MuFidelity, infidelity and max-sensitivity on a stratified subsample of this many "
        "of the explained images (the maps, their region shares and group statistics still cover all of them); "
        "unset: all"))


class AttributionConfig(_Strict):
    """Which attribution methods run, with which parameters, on which images."""

    methods: tuple[str, ...] = DEFAULT_METHODS
    params: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                              description="per method: parameter overrides, e.g. steps, baseline")
    per_group: int = Field(3, ge=1, le=100, description="stratified images per group")
    extremes_per_group: int = Field(1, ge=0, le=10, description="misclassified / least / most confident per group")
    group_by: tuple[str, ...] | None = Field(None, description="attributes to stratify by (default: the dataset's "
                                                              "protected attributes)")
    deletion_steps: int = Field(16, ge=4, le=256)
    budget: AttributionBudget = Field(default_factory=AttributionBudget)
    sanity_methods: tuple[str, ...] = SANITY_METHODS
    sanity_images: int = Field(8, ge=2, le=64)
    replicate_methods: tuple[str, ...] | None = Field(None, description=(
        "methods whose shortcut test is repeated on every training draw over all evaluation images that show "
        "the mark (default: those of REPLICATE_METHODS that are in methods; each must be in methods)"))

    @property
    def repeated_methods(self) -> tuple[str, ...]:
        """The methods of the shortcut test over training draws, in the order of ``methods``."""
        chosen = REPLICATE_METHODS if self.replicate_methods is None else self.replicate_methods
        return tuple(m for m in self.methods if m in chosen)

    @model_validator(mode="after")
    def _known_methods(self) -> "AttributionConfig":
        from generator.attribution.registry import available

        known = available()
        for key, names in (("methods", self.methods), ("sanity_methods", self.sanity_methods),
                           ("params", tuple(self.params))):
            _check_methods(names, known, key)
        if len(set(self.methods)) != len(self.methods):
            raise ValueError("methods must not repeat")
        outside = [m for m in (self.replicate_methods or ()) if m not in self.methods]
        if outside:
            raise ValueError(f"replicate_methods {outside} are not in methods; the test over training draws repeats "
                             f"methods that also run on the explained images (methods: {', '.join(self.methods)})")
        return self


class VerificationMapsConfig(_Strict):
    """Attribution maps of the face-recognition models' verification scores (synthetic data only).

    Each evaluation pair is decided by one global threshold set for ``far`` on all imposter pairs:
    genuine pairs above it are matches, below it false non-matches; imposter pairs above it are
    false matches, below it correct rejections. Up to ``pairs`` false matches and correct rejections
    and ``other_pairs`` matches and false non-matches of each skin-tone band are explained with
    ``method`` (both images, each towards the other); the gallery shows one pair of each outcome and
    band with every method of ``gallery_methods``.
    """

    enabled: bool = True
    far: float = Field(1e-3, gt=0.0, lt=0.5, description="intended FAR of the global threshold that decides the pairs")
    pairs: int = Field(32, ge=2, le=100000, description="false matches and correct rejections explained per "
                                                          "skin-tone band (a seeded sample; all there are if fewer)")
    other_pairs: int = Field(8, ge=1, le=100000, description="matches and false non-matches explained per band")
    method: str = Field("captum.integrated_gradients", description="the method of the mean maps and region tests")
    gallery_methods: tuple[str, ...] = ("captum.saliency", "captum.integrated_gradients", "captum.occlusion",
                                        "xplique.integrated_gradients")
    params: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"captum.integrated_gradients": {"steps": 16}, "captum.occlusion": {"stride": 8},
                                 "xplique.integrated_gradients": {"steps": 16}},
        description="per method: parameters of the similarity maps, over those of attribution.params (the defaults "
                    "halve the cost of IG and quarter that of occlusion against the classification maps)")

    @model_validator(mode="after")
    def _known_methods(self) -> "VerificationMapsConfig":
        from generator.attribution.registry import available

        _check_methods((self.method, *self.gallery_methods, *self.params), available(),
                       "verification.face_recognition.explain")
        if not self.gallery_methods or len(set(self.gallery_methods)) != len(self.gallery_methods):
            raise ValueError("gallery_methods must name at least one method, none twice")
        return self


class FaceRecognitionConfig(_Strict):
    """The face-recognition models the verification audit trains on synthetic data (ignored on other data).

    A draw of the synthetic generator with these identity counts (its other settings as in
    ``dataset.synthetic``) gives two embedders, trained with the CosFace loss: ``fr-balanced`` on
    the ``train_fair`` identities, ``fr-skewed`` on the ``train_biased`` ones; both are evaluated on
    the ``eval`` identities, with pairs within each skin-tone band.
    """

    enabled: bool = Field(True, description="train and audit the two face-recognition models (synthetic data only)")
    identities: dict[Literal["train_fair", "train_biased", "eval"], int] = Field(
        default_factory=lambda: {"train_fair": 256, "train_biased": 256, "eval": 320},
        description="identities per split of the face-recognition draw")
    images_per_identity: int = Field(10, ge=10, le=100)
    epochs: int = Field(20, ge=1, le=200)
    batch_size: int = Field(64, ge=2, le=4096)
    lr: float = Field(3e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(5e-4, ge=0.0, le=1.0)
    width: int = Field(16, ge=4, le=256)
    dim: int = Field(64, ge=2, le=1024, description="length of the embedding")
    scale: float = Field(16.0, gt=0.0, le=128.0, description="CosFace's scale s")
    margin: float = Field(0.2, ge=0.0, lt=1.0, description="CosFace's cosine margin m")
    imposters_per_genuine: int = Field(40, ge=1, le=1000, description=(
        "imposter pairs drawn per genuine pair (same skin-tone band and fold); more resolve smaller FARs"))
    explain: VerificationMapsConfig = Field(default_factory=VerificationMapsConfig)

    @field_validator("identities")
    @classmethod
    def _enough(cls, value: dict[str, int]) -> dict[str, int]:
        short = {split: value.get(split, 0) for split in ("train_fair", "train_biased", "eval") if value.get(split, 0) < 8}
        if short:
            raise ValueError(f"every split needs at least 8 identities (two per skin-tone band), got {short}")
        return value


class VerificationConfig(_Strict):
    """The verification audit: face-recognition models on synthetic data, and an optional pairs table.

    BFW's ``bfw-v0.1.5-datatable.csv`` ships similarity scores of three networks, so no
    images are needed; ``score`` picks the column (vgg16, resnet50 or senet50).
    """

    pairs_table: Path | None = None
    score: str = "resnet50"
    face_recognition: FaceRecognitionConfig = Field(default_factory=FaceRecognitionConfig)

    @field_validator("pairs_table")
    @classmethod
    def _exists(cls, value: Path | None) -> Path | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"file not found: '{value}' (a BFW datatable CSV with columns fold, p1, p2, label, "
                             "id1, id2, att1, att2, vgg16, resnet50, senet50, a1, a2, g1, g2, e1, e2)")
        return value


class ReportConfig(_Strict):
    """What the pages and the deck show."""

    title: str = "Face-classifier bias and explanation audit"
    samples_per_group: int = Field(6, ge=1, le=32)
    slides_pdf: bool = False
    site_url: str | None = Field(None, description=(
        "where the site is published (https://...); citations then link each figure and table by an absolute "
        "URL. Unset: mkdocs.yml's site_url, else links relative to the site root"))

    @field_validator("site_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError(f"site_url = {value!r} is not accepted: an absolute http(s) URL such as "
                             "'https://example.org/audit/'")
        return value if value.endswith("/") else value + "/"


class ExecutionConfig(_Strict):
    """Where the attribution maps and the figure files are computed (see :mod:`generator.pipeline.executor` and
    :mod:`generator.pipeline.publish`); results do not change."""

    engine: Literal["local", "ray"] = Field("local", description=(
        "local: this machine (one worker: the build process itself); ray: a Ray cluster"))
    workers: int = Field(1, ge=1, le=1024, description=(
        "local: worker processes; ray without an address: CPUs of the local cluster it starts"))
    address: str | None = Field(None, description="ray: the cluster to join ('auto' or HOST:PORT); unset: start one")
    background_figures: bool = Field(True, description=(
        "render the figure files (PNG, SVG, PDF) in a second process while the build goes on; the same bytes"))

    @model_validator(mode="after")
    def _address_needs_ray(self) -> "ExecutionConfig":
        if self.address is not None and self.engine != "ray":
            raise ValueError(f"execution.address {self.address!r} is only read with engine: ray "
                             f"(engine is {self.engine!r})")
        return self


class OutputConfig(_Strict):
    """Where results go. Relative paths are taken from the current working directory."""

    results_dir: Path = Path("docs/results")
    slides_dir: Path = Path("slides/build")
    cache_dir: Path = Path("data/cache")
    site_dir: Path = Path("site")
    mkdocs_config: Path = Path("mkdocs.yml")
    node_modules: Path = Path("node_modules")


class Config(_Strict):
    """A whole run: seed, data, models, training, report and output locations."""

    seed: int = Field(0, ge=0, le=2**32 - 1)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    models: tuple[ModelConfig, ...] = Field(
        default_factory=lambda: (
            ModelConfig(name="fair", train_split="train_fair", keras_twin=True,
                        description="trained on balanced groups, no shortcut"),
            ModelConfig(name="biased", train_split="train_biased", keras_twin=True,
                        description="trained on census-skewed groups with a planted shortcut"),
        ),
        min_length=1,
    )
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    replicates: int = Field(3, ge=1, le=20, description=(
        "training draws of each built-in model (training seeds seed, seed+1, ...); the headline analyses "
        "are repeated on every draw and reported per draw"))
    attribution: AttributionConfig = Field(default_factory=AttributionConfig)
    verification: VerificationConfig = Field(default_factory=VerificationConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _unique_model_names(self) -> "Config":
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; repeated: {dupes}")
        return self

    @model_validator(mode="after")
    def _fits_the_data(self) -> "Config":
        synthetic = self.dataset.kind == "synthetic"
        size = self.dataset.synthetic.image_size if synthetic else self.dataset.image_size
        for model in self.models:
            if model.kind != "default":
                if model.preprocessing.shape != (size, size):
                    where = "dataset.synthetic.image_size" if synthetic else "dataset.image_size"
                    raise ValueError(f"model '{model.name}': preprocessing.size {list(model.preprocessing.shape)} "
                                     f"differs from {where} {size}; the images are resized once for all models, "
                                     f"so set {where}: {model.preprocessing.shape[0]} (square inputs only)")
                continue
            if synthetic and model.train_split == "train":
                raise ValueError(f"model '{model.name}': train_split 'train' is for a user's dataset; the synthetic "
                                 "data has train_fair and train_biased")
            if not synthetic and model.train_split != "train":
                raise ValueError(f"model '{model.name}': a default model trained on dataset.kind "
                                 f"'{self.dataset.kind}' uses train_split 'train' (got '{model.train_split}')")
            if self.dataset.kind == "sample_faces":
                raise ValueError(f"model '{model.name}': the sample faces carry no labels to train on; "
                                 "load a model file instead (kind pytorch, torchvision, keras or onnx)")
        if synthetic:
            known = DATASET_DEFAULTS["synthetic"][1]
            given = self.attribution.group_by or ()
            unknown = [g for g in given if g not in known]
            if unknown:
                raise ValueError(f"attribution.group_by: unknown attribute(s) {unknown} for the synthetic data; "
                                 f"accepted: {list(known)}")
        return self

    @property
    def trains_models(self) -> bool:
        """Whether any model is trained here (then a user's dataset is split into train and eval)."""
        return any(m.kind == "default" for m in self.models)


def _check_methods(names, known: list[str], where: str) -> None:
    """Refuse method names that are not registered, each with the closest registered name."""
    unknown = [n for n in names if n not in known]
    if unknown:
        hints = {n: difflib.get_close_matches(n, known, n=1) for n in unknown}
        shown = ", ".join(f"'{n}'" + (f" (did you mean '{h[0]}'?)" if h else "") for n, h in hints.items())
        raise ValueError(f"unknown method(s) in {where}: {shown}; available: {', '.join(known)}")


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config file.

    Parameters
    ----------
    path
        The YAML file. An empty file means "all defaults".

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, or holds a bad key or value.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: '{path}' (give a YAML file, e.g. data/configs/default.yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not a readable YAML file: {err}") from None
    return parse_config(raw if raw is not None else {}, source=str(path))


def parse_config(raw: Any, *, source: str = "<config>") -> Config:
    """Validate an already-parsed mapping; see :func:`load_config`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        errors = err.errors(include_url=False)
        lines = [_describe(e) for e in errors if not _follows_from_others(e, errors)]
        raise ConfigError(f"{source}: invalid configuration:\n  - " + "\n  - ".join(lines)) from None


def config_hash(config: Config) -> str:
    """A short, stable hash of every setting that can change a result.

    ``output`` (where files go) and ``execution`` (where maps are computed) are left out, and
    input files count by their content:
    the same settings and data in another folder give the same numbers and the same hash.
    """
    settings = config.model_dump(mode="json", exclude={"output", "execution"})
    table = config.verification.pairs_table
    if table is not None:  # identify an input file by its content, not by where it lies
        settings["verification"]["pairs_table"] = file_sha256(table)
    for key in ("annotations", "identity_file"):
        if getattr(config.dataset, key) is not None:
            settings["dataset"][key] = file_sha256(getattr(config.dataset, key))
    settings["dataset"].pop("root", None)  # images count by content: the dataset stage hashes them
    for raw, model in zip(settings["models"], config.models):
        for key in ("path", "class_file"):
            if getattr(model, key) is not None:
                raw[key] = file_sha256(getattr(model, key))
    text = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve_package_path(value: str) -> Path:
    """The file ``package:NAME/inner/path`` points at inside the installed package NAME (nothing imported)."""
    import importlib.util

    package, _, inner = value.removeprefix("package:").partition("/")
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"'{value}': no installed package '{package}' (install it, or give a file path)")
    return Path(next(iter(spec.submodule_search_locations))) / inner


def _follows_from_others(error: dict[str, Any], errors: list[dict[str, Any]]) -> bool:
    """A "too short" list whose items failed is a consequence, not a separate error."""
    loc = tuple(error["loc"])
    return error["type"] == "too_short" and any(
        len(other["loc"]) > len(loc) and tuple(other["loc"][: len(loc)]) == loc for other in errors)


def _describe(error: dict[str, Any]) -> str:
    """One readable line for one pydantic error: key path, value given, what is accepted."""
    loc = [str(p) for p in error["loc"]]
    key = ".".join(loc) or "<top level>"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = difflib.get_close_matches(loc[-1], allowed, n=1)
        suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
        return f"unknown key '{key}'{suggestion} (allowed here: {', '.join(allowed)})"
    given = error.get("input")
    shown = json.dumps(given, default=str) if not isinstance(given, dict) else "a mapping"
    message = error["msg"].removeprefix("Value error, ")
    return f"'{key}': {message} (got {shown})"


def _allowed_keys(loc: list[str]) -> list[str]:
    """The field names of the config section at ``loc`` (list indices are skipped)."""
    model: type[BaseModel] = Config
    for part in loc:
        if part.isdigit():
            continue
        annotation = model.model_fields[part].annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return sorted(model.model_fields)
