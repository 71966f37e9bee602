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

__all__ = [
    "AttributionConfig",
    "Config",
    "DatasetConfig",
    "ModelConfig",
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


class DatasetConfig(_Strict):
    """Which faces to audit. Only the embedded synthetic set exists so far."""

    kind: Literal["synthetic"] = "synthetic"
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)


class TrainingConfig(_Strict):
    """How the default models are trained (deterministically, on the CPU or a GPU)."""

    epochs: int = Field(10, ge=1, le=200)
    batch_size: int = Field(32, ge=1, le=4096)
    lr: float = Field(3e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(1e-4, ge=0.0, le=1.0)
    width: int = Field(16, ge=4, le=256)
    augment_flip: bool = True


class ModelConfig(_Strict):
    """One model to audit. ``kind: default`` trains the project's small CNN on a split."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    kind: Literal["default"] = "default"
    train_split: Literal["train_fair", "train_biased"] = "train_fair"
    keras_twin: bool = False
    description: str = ""


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


class AttributionConfig(_Strict):
    """Which attribution methods run, with which parameters, on which images."""

    methods: tuple[str, ...] = DEFAULT_METHODS
    params: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                              description="per method: parameter overrides, e.g. steps, baseline")
    per_group: int = Field(3, ge=1, le=100, description="stratified images per group")
    extremes_per_group: int = Field(1, ge=0, le=10, description="misclassified / least / most confident per group")
    group_by: tuple[Literal["skin_tone", "age_group"], ...] = ("skin_tone", "age_group")
    deletion_steps: int = Field(16, ge=4, le=256)
    sanity_methods: tuple[str, ...] = SANITY_METHODS
    sanity_images: int = Field(8, ge=2, le=64)

    @model_validator(mode="after")
    def _known_methods(self) -> "AttributionConfig":
        from generator.attribution.registry import available

        known = available()
        for key, names in (("methods", self.methods), ("sanity_methods", self.sanity_methods),
                           ("params", tuple(self.params))):
            unknown = [n for n in names if n not in known]
            if unknown:
                hints = {n: difflib.get_close_matches(n, known, n=1) for n in unknown}
                shown = ", ".join(f"'{n}'" + (f" (did you mean '{h[0]}'?)" if h else "") for n, h in hints.items())
                raise ValueError(f"unknown method(s) in {key}: {shown}; available: {', '.join(known)}")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError("methods must not repeat")
        return self


class VerificationConfig(_Strict):
    """An optional face-verification pairs table to audit, in the BFW datatable format.

    BFW's ``bfw-v0.1.5-datatable.csv`` ships similarity scores of three networks, so no
    images are needed; ``score`` picks the column (vgg16, resnet50 or senet50).
    """

    pairs_table: Path | None = None
    score: str = "resnet50"

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
    attribution: AttributionConfig = Field(default_factory=AttributionConfig)
    verification: VerificationConfig = Field(default_factory=VerificationConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)

    @model_validator(mode="after")
    def _unique_model_names(self) -> "Config":
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique; repeated: {dupes}")
        return self


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

    ``output`` (where files go) is left out and input files count by their content:
    the same settings and data in another folder give the same numbers and the same hash.
    """
    settings = config.model_dump(mode="json", exclude={"output"})
    table = config.verification.pairs_table
    if table is not None:  # identify an input file by its content, not by where it lies
        settings["verification"]["pairs_table"] = hashlib.sha256(Path(table).read_bytes()).hexdigest()
    text = json.dumps(settings, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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
