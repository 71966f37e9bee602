"""Procedural, seeded cartoon faces with ground truth for bias audits.

The project's default dataset is drawn at run time, so it needs no image files
and no network. Every image comes with

* a task label (``1`` = smiling: mouth corners curved up, ``0`` = not smiling),
* two protected attributes: ``skin_tone`` (four bands of the Monk Skin Tone
  scale, colours interpolated from the published MST swatches) and
  ``age_group`` (``"young"`` / ``"older"``: greyer hair, higher hairline,
  faint forehead and nasolabial lines),
* an identity whose facial geometry is fixed across its images,
* a region mask (values index :data:`REGIONS`),
* five landmarks (:data:`LANDMARK_NAMES`) in pixel coordinates,
* a planted shortcut ``cue``: a coloured square in the top-left corner.

Three identity-disjoint splits are produced: ``train_fair`` (balanced groups,
cue independent of the label), ``train_biased`` (skin-tone shares from
``biased_shares`` and, for ``shortcut_groups``, a cue that agrees with the
label with probability ``shortcut_strength``) and ``eval`` (balanced, cue
independent of the label).

Rendering and the mask
----------------------
Each image is first drawn as a *part map*: every pixel centre is tested
against the shapes of :data:`PARTS` in painter's order (background, back hair,
neck, ears, face, wrinkles, nose, mouth, eyes, brows, front hair, glasses,
cue) and receives the id of the last shape that contains it. There is no
anti-aliasing, so each pixel shows exactly one part. The part map is then
coloured by a per-image palette (one RGB colour per part), giving the *clean*
image; lighting (a smooth linear gain gradient and a global brightness) and
Gaussian pixel noise are applied last.

"The mask covers exactly the drawn parts" means: ``mask[y, x]`` is the region
(:data:`PART_REGIONS`) of the part whose colour the clean image shows at pixel
``(y, x)``. Consequently, re-rendering with one region recoloured
(``generate(..., clean=True, recolour={region: rgb})``) changes precisely the
pixels where ``mask == REGIONS.index(region)``. A part too small to cover any
pixel centre at the chosen resolution is absent from both image and mask.
Lighting and noise change pixel values but never which part a pixel shows.

The cue square occupies the top-left ``round(0.1 * image_size)`` pixels. A
guard band of two more pixels around it is cleared of every head part in every
image (with or without cue), so cue pixels never touch face or hair pixels
(with the default geometry the guard band is empty of head parts anyway).

Coordinates
-----------
Pixel ``(row y, column x)`` has its centre at ``(x, y)``; landmarks are
``(x, y)`` in that system, "left" meaning image left. Shapes are defined in
face coordinates ``(u, v)``: origin at the face centre, ``v`` pointing down,
unit = image side, then mapped to pixels by a per-image similarity transform
(rotation, scale, translation). Yaw is rendered as a horizontal shift of the
inner features (eyes, brows, glasses, mouth; the nose shifts 1.4 times as far).
"""
from __future__ import annotations

import colorsys
import json
import math
import types
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import numpy as np
import pandas as pd

from generator.errors import ConfigError

__all__ = [
    "AGE_GROUPS",
    "LABEL_NAMES",
    "LANDMARK_NAMES",
    "MST_SWATCHES",
    "PARTS",
    "PART_REGIONS",
    "REGIONS",
    "SKIN_TONES",
    "SPLITS",
    "SyntheticFaces",
    "SyntheticParams",
    "generate",
]

REGIONS: tuple[str, ...] = (
    "background", "hair", "skin", "eyes", "brows", "nose", "mouth", "accessories", "cue",
)
SKIN_TONES: tuple[str, ...] = ("MST 1-3", "MST 4-5", "MST 6-7", "MST 8-10")
AGE_GROUPS: tuple[str, ...] = ("young", "older")
LANDMARK_NAMES: tuple[str, ...] = (
    "left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right",
)
LABEL_NAMES: tuple[str, ...] = ("not smiling", "smiling")
SPLITS: tuple[str, ...] = ("train_fair", "train_biased", "eval")
TABLE_COLUMNS: tuple[str, ...] = (
    "image_id", "split", "identity", "label", "label_name", "skin_tone",
    "age_group", "cue", "glasses", "smile",
)

#: Monk Skin Tone scale swatches 1..10 (Monk 2019, skintone.google).
MST_SWATCHES: tuple[str, ...] = (
    "#f6ede4", "#f3e7db", "#f7ead0", "#eadaba", "#d7bd96",
    "#a07e56", "#825c43", "#604134", "#3a312a", "#292420",
)
_BAND_SWATCHES: tuple[tuple[int, int], ...] = ((1, 3), (4, 5), (6, 7), (8, 10))

#: Drawable parts in painter's order, and the region each one belongs to.
PARTS: tuple[str, ...] = (
    "background", "cue", "hair_back", "neck", "ear", "face", "wrinkle", "nose",
    "nostril", "lip", "mouth_inside", "teeth", "eye_white", "iris", "pupil",
    "brow", "hair_front", "glasses",
)
PART_REGIONS: tuple[str, ...] = (
    "background", "cue", "hair", "skin", "skin", "skin", "skin", "nose",
    "nose", "mouth", "mouth", "mouth", "eyes", "eyes", "eyes",
    "brows", "hair", "accessories",
)

_HAIR_STYLES: tuple[str, ...] = ("short", "long", "bun", "side", "receding")
_HAIR_COLOURS: tuple[tuple[int, int, int], ...] = (
    (28, 24, 22), (58, 40, 28), (96, 64, 38), (128, 62, 34), (196, 160, 98),
)
_HAIR_WEIGHTS: tuple[float, ...] = (0.35, 0.3, 0.17, 0.08, 0.1)
_IRIS_COLOURS: tuple[tuple[int, int, int], ...] = (
    (74, 46, 26), (46, 30, 20), (112, 88, 46), (64, 104, 150), (76, 112, 72),
)
_IRIS_WEIGHTS: tuple[float, ...] = (0.4, 0.3, 0.12, 0.1, 0.08)
_FRAME_COLOURS: tuple[tuple[int, int, int], ...] = (
    (22, 22, 24), (92, 56, 30), (150, 152, 158), (140, 30, 36),
)
_CUE_COLOUR: tuple[int, int, int] = (236, 32, 200)
_CUE_FRACTION = 0.1
_CUE_GUARD_PX = 2
_FACE_OFFSET_V = -0.01  # face centre above the image centre, in image sides

#: Per-identity geometry: name, low, high (uniform), in image-side units.
_GEOMETRY: tuple[tuple[str, float, float], ...] = (
    ("face_w", 0.200, 0.235), ("face_h", 0.258, 0.290), ("jaw", 0.0, 0.22),
    ("chin_power", 1.9, 2.7), ("eye_y", -0.028, 0.004), ("eye_dx", 0.086, 0.102),
    ("eye_rx", 0.036, 0.046), ("eye_aspect", 0.58, 0.74),
    ("brow_gap", 0.050, 0.062), ("brow_t", 0.013, 0.024),
    ("brow_arch", 0.004, 0.014), ("nose_y", 0.078, 0.100),
    ("nose_r", 0.021, 0.030), ("mouth_y", 0.158, 0.182),
    ("mouth_w", 0.060, 0.080), ("lip_t", 0.022, 0.030),
    ("hair_t", 0.024, 0.044), ("hairline", 0.42, 0.58), ("temple", 0.03, 0.08),
    ("neck_w", 0.085, 0.112), ("long_len", 0.30, 0.42), ("bun_r", 0.055, 0.072),
    ("slant", 0.02, 0.06), ("ear_rx", 0.024, 0.032),
)


def _default_identities() -> dict[str, int]:
    return {"train_fair": 128, "train_biased": 128, "eval": 64}


def _default_shares() -> dict[str, float]:
    # 2019 US census shares used in the FairFace literature, lightest -> darkest.
    return {"MST 1-3": 0.637, "MST 4-5": 0.196, "MST 6-7": 0.142, "MST 8-10": 0.025}


def _refuse(name: str, value: object, accepted: str) -> ConfigError:
    return ConfigError(f"synthetic parameter {name} = {value!r} is not accepted: {accepted}")


@dataclass(frozen=True)
class SyntheticParams:
    """Settings of the synthetic face generator, validated on construction.

    Parameters
    ----------
    image_size : int
        Side of the square RGB images in pixels, 48..128.
    identities : Mapping[str, int]
        Number of identities per split (keys from :data:`SPLITS`; a missing
        split gets 0). ``train_biased`` needs 0 or at least one per skin tone.
    images_per_identity : int
        Images drawn per identity, at least 10.
    biased_shares : Mapping[str, float]
        Positive share of ``train_biased`` identities per skin-tone band (every
        band of :data:`SKIN_TONES`; normalised to sum 1).
    shortcut_groups : tuple[str, ...]
        Skin-tone bands whose ``train_biased`` images carry the planted cue.
    shortcut_strength : float
        Probability, in [0, 1], that the cue is present iff ``label == 1`` in
        the shortcut groups.
    noise_std : float
        Standard deviation of the Gaussian pixel noise, in 0..255 units.
    glasses_rate : float
        Fraction of identities that wear glasses (in every image).
    """

    image_size: int = 64
    identities: Mapping[str, int] = field(default_factory=_default_identities)
    images_per_identity: int = 12
    biased_shares: Mapping[str, float] = field(default_factory=_default_shares)
    shortcut_groups: tuple[str, ...] = ("MST 6-7", "MST 8-10")
    shortcut_strength: float = 0.95
    noise_std: float = 4.0
    glasses_rate: float = 0.25

    def __post_init__(self) -> None:
        _check_int("image_size", self.image_size, 48, 128)
        _check_int("images_per_identity", self.images_per_identity, 10, None)
        _check_fraction("shortcut_strength", self.shortcut_strength)
        _check_fraction("glasses_rate", self.glasses_rate)
        _check_noise(self.noise_std)
        object.__setattr__(self, "identities", _checked_identities(self.identities))
        object.__setattr__(self, "biased_shares", _checked_shares(self.biased_shares))
        object.__setattr__(self, "shortcut_groups", _checked_groups(self.shortcut_groups))

    def __hash__(self) -> int:
        return hash(json.dumps(self.as_dict(), sort_keys=True))

    def as_dict(self) -> dict:
        """Return the parameters as plain JSON-able types (for config hashing)."""
        return {
            "image_size": int(self.image_size),
            "identities": {k: int(v) for k, v in self.identities.items()},
            "images_per_identity": int(self.images_per_identity),
            "biased_shares": {k: float(v) for k, v in self.biased_shares.items()},
            "shortcut_groups": list(self.shortcut_groups),
            "shortcut_strength": float(self.shortcut_strength),
            "noise_std": float(self.noise_std),
            "glasses_rate": float(self.glasses_rate),
        }


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_int(name: str, value: object, low: int, high: int | None) -> None:
    ok = _is_int(value) and value >= low and (high is None or value <= high)
    if not ok:
        bounds = f"an integer from {low} to {high}" if high else f"an integer >= {low}"
        raise _refuse(name, value, bounds)


def _check_fraction(name: str, value: object) -> None:
    if not (_is_real(value) and 0.0 <= float(value) <= 1.0):
        raise _refuse(name, value, "a number in [0, 1]")


def _check_noise(value: object) -> None:
    if not (_is_real(value) and math.isfinite(float(value)) and float(value) >= 0):
        raise _refuse("noise_std", value, "a finite number >= 0 (0..255 units)")


def _checked_identities(identities: Mapping[str, int]) -> Mapping[str, int]:
    if not isinstance(identities, Mapping):
        raise _refuse("identities", identities, f"a mapping with keys from {list(SPLITS)}")
    for split, count in identities.items():
        if split not in SPLITS:
            raise _refuse("identities", split, f"split names {list(SPLITS)}")
        if not (_is_int(count) and count >= 0):
            raise _refuse(f"identities[{split!r}]", count, "an integer >= 0")
    biased = identities.get("train_biased", 0)
    if 0 < biased < len(SKIN_TONES):
        raise _refuse("identities['train_biased']", biased,
                      f"0 or at least {len(SKIN_TONES)} (one identity per skin-tone band)")
    if sum(identities.values()) == 0:
        raise _refuse("identities", dict(identities), "at least one identity in some split")
    return types.MappingProxyType({s: int(identities.get(s, 0)) for s in SPLITS})


def _checked_shares(shares: Mapping[str, float]) -> Mapping[str, float]:
    if not isinstance(shares, Mapping):
        raise _refuse("biased_shares", shares, f"a mapping over bands {list(SKIN_TONES)}")
    for band, share in shares.items():
        if band not in SKIN_TONES:
            raise _refuse("biased_shares", band, f"skin-tone bands {list(SKIN_TONES)}")
        if not (_is_real(share) and math.isfinite(float(share)) and share > 0):
            raise _refuse(f"biased_shares[{band!r}]", share, "a positive number")
    missing = [band for band in SKIN_TONES if band not in shares]
    if missing:
        raise _refuse("biased_shares", dict(shares), f"a share for every band; missing {missing}")
    return types.MappingProxyType({band: float(shares[band]) for band in SKIN_TONES})


def _checked_groups(groups: object) -> tuple[str, ...]:
    if isinstance(groups, str) or not isinstance(groups, (tuple, list)):
        raise _refuse("shortcut_groups", groups, f"a tuple of bands from {list(SKIN_TONES)}")
    for band in groups:
        if band not in SKIN_TONES:
            raise _refuse("shortcut_groups", band, f"skin-tone bands {list(SKIN_TONES)}")
    return tuple(groups)


@dataclass(frozen=True)
class SyntheticFaces:
    """Images with their ground truth, row-aligned with ``table``.

    Attributes
    ----------
    images : np.ndarray
        ``(N, H, W, 3)`` uint8 RGB images.
    masks : np.ndarray
        ``(N, H, W)`` uint8 region maps; values index :data:`REGIONS`.
    landmarks : np.ndarray
        ``(N, 5, 2)`` float32 ``(x, y)`` pixel coordinates, :data:`LANDMARK_NAMES`.
    table : pd.DataFrame
        One row per image with the columns of ``TABLE_COLUMNS``.
    """

    images: np.ndarray
    masks: np.ndarray
    landmarks: np.ndarray
    table: pd.DataFrame


@dataclass(frozen=True)
class _Slot:
    """Who one identity is before it is drawn: split, index, groups, cue rule."""

    split: str
    index: int
    skin_tone: str
    age_group: str
    shortcut: float | None  # P(cue == label) when planted, else None


@dataclass(frozen=True)
class _Identity:
    """Fixed appearance of one identity."""

    slot: _Slot
    geo: Mapping[str, float]
    style: str
    glasses: bool
    skin: np.ndarray
    hair: np.ndarray
    iris: np.ndarray
    frame: np.ndarray
    bun_u: float
    side_sign: float


@dataclass(frozen=True)
class _Views:
    """Per-image variation of one identity; every array has length n."""

    label: np.ndarray
    smile: np.ndarray
    cue: np.ndarray
    theta: np.ndarray
    scale: np.ndarray
    shift: np.ndarray  # (n, 2) in image sides
    yaw: np.ndarray
    mouth_open: np.ndarray
    gaze: np.ndarray
    light: np.ndarray  # (n, 3): angle, strength, brightness
    background: np.ndarray  # (n, 3) RGB


# ----------------------------------------------------------------------------
# Identities and splits
# ----------------------------------------------------------------------------

def _band_counts(total: int, shares: Mapping[str, float]) -> list[int]:
    """Largest-remainder counts per band, at least one per band."""
    weights = np.array([shares[band] for band in SKIN_TONES], dtype=float)
    ideal = weights / weights.sum() * total
    counts = np.maximum(1, np.floor(ideal)).astype(int)
    while counts.sum() < total:
        counts[np.argmax(ideal - counts)] += 1
    while counts.sum() > total:
        spare = np.where(counts > 1, ideal - counts, np.inf)
        counts[np.argmin(spare)] -= 1
    return counts.tolist()


def _split_groups(split: str, count: int, params: SyntheticParams) -> list[tuple[str, str]]:
    """(skin_tone, age_group) of each identity of one split, in order."""
    if split != "train_biased":
        cells = [(tone, age) for tone in SKIN_TONES for age in AGE_GROUPS]
        return [cells[k % len(cells)] for k in range(count)]
    counts = _band_counts(count, params.biased_shares) if count else [0] * len(SKIN_TONES)
    return [(tone, AGE_GROUPS[k % 2]) for tone, n in zip(SKIN_TONES, counts) for k in range(n)]


def _slots(params: SyntheticParams) -> list[_Slot]:
    slots: list[_Slot] = []
    for split in SPLITS:
        for tone, age in _split_groups(split, params.identities[split], params):
            planted = split == "train_biased" and tone in params.shortcut_groups
            strength = float(params.shortcut_strength) if planted else None
            slots.append(_Slot(split, len(slots), tone, age, strength))
    return slots


def _hex_rgb(code: str) -> np.ndarray:
    return np.array([int(code[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.float32)


def _skin_colour(rng: np.random.Generator, tone: str) -> np.ndarray:
    """A colour interpolated between adjacent MST swatches within the band."""
    low, high = _BAND_SWATCHES[SKIN_TONES.index(tone)]
    position = rng.uniform(low, high) - 1.0
    below = min(int(position), len(MST_SWATCHES) - 2)
    t = np.float32(position - below)
    return (1 - t) * _hex_rgb(MST_SWATCHES[below]) + t * _hex_rgb(MST_SWATCHES[below + 1])


def _pick(rng: np.random.Generator, options: tuple, weights: tuple[float, ...]) -> np.ndarray:
    return np.array(options[rng.choice(len(options), p=weights)], dtype=np.float32)


def _hair_colour(rng: np.random.Generator, age: str) -> np.ndarray:
    base = _pick(rng, _HAIR_COLOURS, _HAIR_WEIGHTS)
    grey = rng.uniform(0.45, 0.85) if age == "older" else 0.0
    return (1 - grey) * base + grey * np.array([178, 176, 172], dtype=np.float32)


def _hair_style(rng: np.random.Generator, age: str) -> str:
    if age == "older":
        return str(rng.choice(_HAIR_STYLES, p=(0.2, 0.1, 0.1, 0.1, 0.5)))
    return str(rng.choice(_HAIR_STYLES[:4]))


def _sample_identity(rng: np.random.Generator, slot: _Slot, glasses_rate: float) -> _Identity:
    geo = {name: float(rng.uniform(low, high)) for name, low, high in _GEOMETRY}
    if slot.age_group == "older":
        geo["hairline"] += 0.2
    return _Identity(
        slot=slot, geo=types.MappingProxyType(geo), style=_hair_style(rng, slot.age_group),
        glasses=bool(rng.random() < glasses_rate), skin=_skin_colour(rng, slot.skin_tone),
        hair=_hair_colour(rng, slot.age_group), iris=_pick(rng, _IRIS_COLOURS, _IRIS_WEIGHTS),
        frame=_pick(rng, _FRAME_COLOURS, (0.4, 0.25, 0.25, 0.1)),
        bun_u=float(rng.choice([-0.12, 0.0, 0.12])), side_sign=float(rng.choice([-1.0, 1.0])),
    )


# ----------------------------------------------------------------------------
# Per-image variation
# ----------------------------------------------------------------------------

def _balanced_labels(rng: np.random.Generator, n: int) -> np.ndarray:
    """Half 0, half 1 (odd count: the extra one at random), shuffled."""
    return rng.permutation((np.arange(n) + rng.integers(2)) % 2)


def _cues(rng: np.random.Generator, label: np.ndarray, shortcut: float | None) -> np.ndarray:
    if shortcut is None:
        return rng.random(label.size) < 0.5
    agree = rng.random(label.size) < shortcut
    return (label == 1) == agree


def _backgrounds(rng: np.random.Generator, n: int) -> np.ndarray:
    hsv = np.stack([rng.random(n), rng.uniform(0.12, 0.35, n), rng.uniform(0.55, 0.88, n)], 1)
    return np.array([colorsys.hsv_to_rgb(*row) for row in hsv], dtype=np.float32) * 255


def _sample_views(rng: np.random.Generator, slot: _Slot, n: int) -> _Views:
    label = _balanced_labels(rng, n)
    smile = np.where(label == 1, rng.uniform(0.4, 1.0, n), rng.uniform(-0.4, 0.1, n))
    light = np.stack([rng.uniform(0, 2 * np.pi, n), rng.uniform(0.05, 0.3, n),
                      rng.uniform(0.9, 1.08, n)], 1)
    return _Views(
        label=label, smile=smile, cue=_cues(rng, label, slot.shortcut),
        theta=np.deg2rad(rng.uniform(-8, 8, n)), scale=rng.uniform(1.02, 1.14, n),
        shift=rng.uniform(-0.025, 0.025, (n, 2)), yaw=rng.uniform(-0.02, 0.02, n),
        mouth_open=np.maximum(0.0, rng.uniform(-0.008, 0.018, n)),
        gaze=rng.uniform(-0.3, 0.3, n), light=light, background=_backgrounds(rng, n),
    )


# ----------------------------------------------------------------------------
# Geometry: pixel grid <-> face coordinates
# ----------------------------------------------------------------------------


# ----------------------------------------------------------------------------- portable maths
# NumPy computes sin, cos, exp and non-integer powers with code chosen by the CPU's instruction
# set (its own SIMD loops on AVX2, Intel's SVML on AVX-512, libm elsewhere); their results may
# differ in the last bit, and a last-bit difference can move a pixel across a rounding or mask
# boundary. These wrappers compute in float64 and round the result to a grid of 2**-20, so a
# last-bit difference (about 1e-16) changes the output only if the value lies within 1e-16 of a
# grid midpoint: the faces are then the same bytes on every x86-64 CPU (checked by simulating
# another one with NPY_DISABLE_CPU_FEATURES in tests/datasets/test_synthetic.py).
_GRID = 2.0 ** 20


def _snap(values: np.ndarray) -> np.ndarray:
    return np.rint(values * _GRID) / _GRID


def _cos(x: np.ndarray) -> np.ndarray:
    return _snap(np.cos(np.asarray(x, dtype=np.float64)))


def _sin(x: np.ndarray) -> np.ndarray:
    return _snap(np.sin(np.asarray(x, dtype=np.float64)))


def _exp(x: np.ndarray) -> np.ndarray:
    return _snap(np.exp(np.asarray(x, dtype=np.float64)))


def _pow(base: np.ndarray | float, exponent: np.ndarray | float) -> np.ndarray:
    return _snap(np.power(np.asarray(base, dtype=np.float64), np.asarray(exponent, dtype=np.float64)))

def _col(values: np.ndarray) -> np.ndarray:
    """(n,) -> (n, 1, 1) float32, to broadcast per-image values over a grid."""
    return np.asarray(values, dtype=np.float32)[:, None, None]


def _face_centre(views: _Views, size: int) -> tuple[np.ndarray, np.ndarray]:
    centre = (size - 1) / 2
    return (centre + views.shift[:, 0] * size,
            centre + (views.shift[:, 1] + _FACE_OFFSET_V) * size)


def _face_coords(views: _Views, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Face coordinates (u, v) of every pixel centre, each (n, size, size)."""
    fx, fy = _face_centre(views, size)
    grid = np.arange(size, dtype=np.float32)
    unit = _col(views.scale * size)
    dx = (grid[None, None, :] - _col(fx)) / unit
    dy = (grid[None, :, None] - _col(fy)) / unit
    cos, sin = _col(_cos(views.theta)), _col(_sin(views.theta))
    return cos * dx + sin * dy, cos * dy - sin * dx


def _to_pixels(views: _Views, size: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Map face coordinates (n, k) to pixel (x, y), shape (n, k, 2)."""
    fx, fy = _face_centre(views, size)
    unit = (views.scale * size)[:, None]
    cos, sin = _cos(views.theta)[:, None], _sin(views.theta)[:, None]
    x = fx[:, None] + unit * (cos * u - sin * v)
    y = fy[:, None] + unit * (sin * u + cos * v)
    return np.stack([x, y], axis=-1).astype(np.float32)


def _lift(views: _Views) -> np.ndarray:
    """Height the mouth corners rise above the mouth centre (face units)."""
    return 0.075 * views.smile


def _mouth_half_width(g: Mapping[str, float], views: _Views) -> np.ndarray:
    """Half-width of the mouth per image (face units): a smile also widens the mouth."""
    return g["mouth_w"] * (1.0 + 0.3 * np.clip(views.smile, 0.0, None))


def _landmarks(ident: _Identity, views: _Views, size: int) -> np.ndarray:
    g, yaw, n = ident.geo, views.yaw, views.yaw.size
    corner_u = 0.9 * _mouth_half_width(g, views)
    corner_v = g["mouth_y"] - _lift(views) * 0.9 ** 2
    u = np.stack([yaw - g["eye_dx"], yaw + g["eye_dx"], 1.4 * yaw,
                  yaw - corner_u, yaw + corner_u], 1)
    v = np.stack([np.full(n, g["eye_y"]), np.full(n, g["eye_y"]), np.full(n, g["nose_y"]),
                  corner_v, corner_v], 1)
    return _to_pixels(views, size, u, v)


# ----------------------------------------------------------------------------
# Shapes (boolean masks over the (n, size, size) grid)
# ----------------------------------------------------------------------------

def _ellipse(u, v, cu, cv, ru, rv) -> np.ndarray:
    return ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2 <= 1.0


def _face(g: Mapping[str, float], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Ellipse on top; below the centre a super-ellipse narrowed towards the jaw."""
    a, b = g["face_w"], g["face_h"]
    down = np.clip(v / b, 0.0, 1.0)
    width = a * (1.0 - g["jaw"] * down)
    power = np.where(v > 0, g["chin_power"], 2.0)
    return _pow(np.abs(u / width), power) + _pow(np.abs(v / b), power) <= 1.0


def _half_width(g: Mapping[str, float], v: float) -> float:
    """Half-width of the face outline at height v (0 <= v < face_h)."""
    down = min(max(v / g["face_h"], 0.0), 1.0)
    p = g["chin_power"] if v > 0 else 2.0
    return g["face_w"] * (1 - g["jaw"] * down) * float(_pow(1 - _pow(down, p), 1 / p))


def _hair_outer(ident: _Identity, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    g = ident.geo
    shift = 0.01 * ident.side_sign if ident.style == "side" else 0.0
    return _ellipse(u, v, shift, -0.015, g["face_w"] + g["hair_t"],
                    g["face_h"] + 1.2 * g["hair_t"])


def _hair_back(ident: _Identity, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    g = ident.geo
    cap = _hair_outer(ident, u, v) & (v < g["eye_y"] - 0.005)
    if ident.style == "receding":
        return cap & (v > -0.6 * g["face_h"])
    if ident.style == "bun":
        top = -g["face_h"] - g["hair_t"] - 0.1 * g["bun_r"]
        return cap | _ellipse(u, v, ident.bun_u, top, g["bun_r"], g["bun_r"])
    if ident.style == "long":
        half = g["face_w"] + g["hair_t"]
        fall = (_pow(np.abs(u / half), 4) + _pow(np.abs(v / g["long_len"]), 4) <= 1.0) & (v >= 0)
        return cap | (_hair_outer(ident, u, v) & (v < 0)) | fall
    return cap


def _hairline(ident: _Identity, u: np.ndarray) -> np.ndarray:
    """Height of the hairline over the forehead (hair where v < hairline)."""
    g = ident.geo
    x = u / g["face_w"]
    line = -g["hairline"] * g["face_h"] + g["temple"] * x ** 2
    if ident.style == "side":
        line = line + g["slant"] * ident.side_sign * x
    if ident.style == "receding":
        line = line - 2.5 * g["temple"] * x ** 2 + 0.02 * _exp(-(x / 0.15) ** 2)
    brow_top = g["eye_y"] - g["brow_gap"] - g["brow_t"] - g["brow_arch"] - 0.012
    return np.minimum(line, brow_top)


def _hair_front(ident: _Identity, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return _hair_outer(ident, u, v) & (v < _hairline(ident, u))


def _ears(g: Mapping[str, float], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    cv = g["eye_y"] + 0.035
    cu = _half_width(g, cv) - 0.004
    ru, rv = g["ear_rx"], 1.7 * g["ear_rx"]
    return _ellipse(u, v, -cu, cv, ru, rv) | _ellipse(u, v, cu, cv, ru, rv)


def _neck(g: Mapping[str, float], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (np.abs(u) <= g["neck_w"]) & (v >= 0.0)


def _line(coord: np.ndarray, centre, half: np.ndarray) -> np.ndarray:
    return np.abs(coord - centre) <= half


def _wrinkles(g: Mapping[str, float], fu: np.ndarray, v: np.ndarray, px) -> np.ndarray:
    """Two forehead lines and two nasolabial lines, about one pixel wide."""
    half = np.maximum(0.004, 0.5 * px)
    top = g["eye_y"] - g["brow_gap"] - g["brow_t"] - g["brow_arch"]
    forehead = (_line(v, top - 0.022 + 0.1 * fu ** 2, half)
                | _line(v, top - 0.042 + 0.1 * fu ** 2, half)) & (np.abs(fu) < 0.065)
    t = (v - g["nose_y"]) / (g["mouth_y"] - g["nose_y"])
    path = g["nose_r"] + 0.012 + (g["mouth_w"] - g["nose_r"]) * t
    fold = _line(np.abs(fu), path, half) & (t > 0.15) & (t < 0.95)
    return forehead | fold


def _nose(g: Mapping[str, float], nu: np.ndarray, v: np.ndarray, px):
    """Nose (tip ball and side ridge) and nostrils."""
    r = np.maximum(g["nose_r"], 1.4 * px)
    tip = _ellipse(nu, v, 0.0, g["nose_y"], r, 0.7 * r)
    ridge_u = -0.45 * r + 0.2 * r * (v - g["nose_y"]) / 0.1
    ridge = _line(nu, ridge_u, np.maximum(0.005, 0.55 * px)) & (v > g["eye_y"] + 0.03) & (
        v < g["nose_y"])
    small = np.maximum(0.28 * r, 0.6 * px)
    cv = g["nose_y"] + 0.4 * r
    nostril = _ellipse(nu, v, -0.55 * r, cv, small, 0.8 * small) | _ellipse(
        nu, v, 0.55 * r, cv, small, 0.8 * small)
    return tip | ridge, nostril


def _mouth(g: Mapping[str, float], views: _Views, fu: np.ndarray, v: np.ndarray, px):
    """Lips, dark inside and teeth; centre line rises to the corners when smiling."""
    m = fu / _col(_mouth_half_width(g, views))
    inside_x = np.abs(m) <= 1.0
    centre = g["mouth_y"] - _col(_lift(views)) * m ** 2
    opening = _col(views.mouth_open) * np.clip(1 - m ** 2, 0, 1)
    half_lip = np.maximum(0.5 * g["lip_t"] * (0.55 + 0.45 * np.clip(1 - m ** 2, 0, 1)),
                          0.7 * px)
    offset = np.abs(v - centre)
    lip = inside_x & (offset <= opening + half_lip)
    inner = inside_x & (offset < opening) & (opening > 0.6 * px)
    teeth = inner & (v < centre - 0.3 * opening)
    return lip, inner, teeth


def _eyes(ident: _Identity, views: _Views, fu: np.ndarray, v: np.ndarray, px):
    """Whites, iris and pupil of both eyes (iris and pupil clipped to the white)."""
    g = ident.geo
    rx = np.maximum(g["eye_rx"], 1.6 * px)
    ry = np.maximum(g["eye_aspect"] * g["eye_rx"], 1.1 * px)
    gaze = _col(views.gaze) * rx
    whites, irises, pupils = [], [], []
    for side in (-1.0, 1.0):
        cu = side * g["eye_dx"]
        white = _ellipse(fu, v, cu, g["eye_y"], rx, ry)
        whites.append(white)
        irises.append(white & _ellipse(fu, v, cu + gaze, g["eye_y"], ry, ry))
        pupils.append(white & _ellipse(fu, v, cu + gaze, g["eye_y"], 0.45 * ry, 0.45 * ry))
    return whites[0] | whites[1], irises[0] | irises[1], pupils[0] | pupils[1]


def _brows(g: Mapping[str, float], fu: np.ndarray, v: np.ndarray, px) -> np.ndarray:
    half_len = 1.25 * g["eye_rx"]
    half_t = np.maximum(0.5 * g["brow_t"], 0.6 * px)
    found = np.zeros(np.broadcast_shapes(fu.shape, v.shape), dtype=bool)
    for side in (-1.0, 1.0):
        x = (fu - side * g["eye_dx"]) / half_len
        centre = g["eye_y"] - g["brow_gap"] - g["brow_arch"] * (1 - x ** 2) + 0.004 * side * x
        found |= (np.abs(x) <= 1.0) & _line(v, centre, half_t)
    return found


def _glasses(g: Mapping[str, float], u: np.ndarray, fu: np.ndarray, v: np.ndarray, px):
    """Two elliptical rims, a bridge and two arms running to the face outline."""
    ru = max(1.75 * g["eye_rx"], g["eye_rx"] + 0.024)
    rv = max(0.78 * ru, g["eye_aspect"] * g["eye_rx"] + 0.02)
    half_t = np.maximum(0.007, 0.6 * px)
    rims = np.zeros(np.broadcast_shapes(fu.shape, v.shape), dtype=bool)
    for side in (-1.0, 1.0):
        cu = side * g["eye_dx"]
        outer = _ellipse(fu, v, cu, g["eye_y"], ru + half_t, rv + half_t)
        rims |= outer & ~_ellipse(fu, v, cu, g["eye_y"], ru - half_t, rv - half_t)
    bar = _line(v, g["eye_y"] - 0.35 * rv, half_t)
    bridge = bar & (np.abs(fu) <= g["eye_dx"] - ru + half_t)
    arms = bar & (np.abs(fu) >= g["eye_dx"] + ru) & (np.abs(u) <= g["face_w"])
    return rims | bridge | arms


def _layers(ident: _Identity, views: _Views, size: int) -> Iterator[tuple[str, np.ndarray]]:
    """(part, shape) pairs in painter's order for one identity's images."""
    g = ident.geo
    u, v = _face_coords(views, size)
    px = _col(1.0 / (views.scale * size))
    fu = u - _col(views.yaw)
    yield "hair_back", _hair_back(ident, u, v)
    yield "neck", _neck(g, u, v)
    yield "ear", _ears(g, u, v)
    face = _face(g, u, v)
    yield "face", face
    if ident.slot.age_group == "older":
        yield "wrinkle", _wrinkles(g, fu, v, px) & face
    yield from zip(("nose", "nostril"), _nose(g, u - 1.4 * _col(views.yaw), v, px))
    yield from zip(("lip", "mouth_inside", "teeth"), _mouth(g, views, fu, v, px))
    yield from zip(("eye_white", "iris", "pupil"), _eyes(ident, views, fu, v, px))
    yield "brow", _brows(g, fu, v, px)
    yield "hair_front", _hair_front(ident, u, v) & face
    if ident.glasses:
        yield "glasses", _glasses(g, u, fu, v, px)


def _cue_side(size: int) -> int:
    return int(round(_CUE_FRACTION * size))


def _draw_parts(ident: _Identity, views: _Views, size: int) -> np.ndarray:
    """Part ids (n, size, size) uint8: the last shape containing each pixel centre."""
    parts = np.zeros((views.label.size, size, size), dtype=np.uint8)
    for name, shape in _layers(ident, views, size):
        parts[shape] = PARTS.index(name)
    side = _cue_side(size)
    parts[:, : side + _CUE_GUARD_PX, : side + _CUE_GUARD_PX] = PARTS.index("background")
    parts[views.cue, :side, :side] = PARTS.index("cue")
    return parts


# ----------------------------------------------------------------------------
# Colour, lighting, noise
# ----------------------------------------------------------------------------

def _mix(a: np.ndarray, b, t: float) -> np.ndarray:
    return (1 - t) * np.asarray(a, dtype=np.float32) + t * np.asarray(b, dtype=np.float32)


def _identity_colours(ident: _Identity) -> dict[str, np.ndarray]:
    skin, hair = ident.skin, ident.hair
    return {
        "cue": np.array(_CUE_COLOUR, np.float32), "hair_back": 0.85 * hair, "neck": 0.84 * skin,
        "ear": 0.93 * skin, "face": skin, "wrinkle": 0.86 * skin, "nose": 0.84 * skin,
        "nostril": 0.55 * skin, "lip": 0.85 * _mix(skin, (176, 64, 72), 0.4),
        "mouth_inside": np.array((62, 20, 26), np.float32),
        "teeth": np.array((242, 238, 228), np.float32),
        "eye_white": np.array((238, 238, 232), np.float32), "iris": ident.iris,
        "pupil": np.array((14, 12, 12), np.float32), "brow": 0.8 * hair, "hair_front": hair,
        "glasses": ident.frame,
    }


def _palette(ident: _Identity, views: _Views,
             recolour: Mapping[str, tuple[int, int, int]]) -> np.ndarray:
    """Colour of every part in every image, (n, len(PARTS), 3) float32."""
    colours = _identity_colours(ident)
    palette = np.zeros((views.label.size, len(PARTS), 3), dtype=np.float32)
    palette[:, 0] = views.background
    for k, name in enumerate(PARTS[1:], start=1):
        palette[:, k] = colours[name]
    for k, region in enumerate(PART_REGIONS):
        if region in recolour:
            palette[:, k] = recolour[region]
    return np.clip(palette, 0, 255)


def _lighting(views: _Views, size: int) -> np.ndarray:
    """Per-pixel gain (n, size, size): brightness times a linear ramp along a direction."""
    angle, strength, brightness = (_col(views.light[:, k]) for k in range(3))
    ramp = (np.arange(size, dtype=np.float32) - (size - 1) / 2) / (size / 2)
    shade = _cos(angle).astype(np.float32) * ramp[None, None, :] + _sin(angle).astype(np.float32) * ramp[None, :, None]
    return brightness * (1 + strength * shade)


def _finish(clean: np.ndarray, views: _Views, noise_std: float,
            rng: np.random.Generator) -> np.ndarray:
    out = clean * _lighting(views, clean.shape[1])[..., None]
    if noise_std > 0:
        out += noise_std * rng.standard_normal(clean.shape, dtype=np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------
# Assembly
# ----------------------------------------------------------------------------

def _rngs(seed: int, index: int) -> list[np.random.Generator]:
    """Independent generators for identity, views and noise of one identity."""
    children = np.random.SeedSequence([seed, index]).spawn(3)
    return [np.random.default_rng(child) for child in children]


def _check_seed(seed: object) -> None:
    if not (_is_int(seed) and seed >= 0):
        raise ConfigError(f"seed = {seed!r} is not accepted: use an integer >= 0")


def _check_recolour(recolour: Mapping[str, tuple[int, int, int]]) -> None:
    for region, rgb in recolour.items():
        if region not in REGIONS:
            raise ConfigError(f"recolour region {region!r} is not accepted: use {list(REGIONS)}")
        if np.shape(rgb) != (3,) or not all(0 <= c <= 255 for c in rgb):
            raise ConfigError(
                f"recolour[{region!r}] = {rgb!r} is not accepted: use 3 values 0..255")


def _render_identity(slot: _Slot, params: SyntheticParams, seed: int, clean: bool,
                     recolour: Mapping[str, tuple[int, int, int]]):
    """Images, part map, landmarks, identity and views of one identity's images."""
    geo_rng, view_rng, noise_rng = _rngs(seed, slot.index)
    ident = _sample_identity(geo_rng, slot, params.glasses_rate)
    views = _sample_views(view_rng, slot, params.images_per_identity)
    parts = _draw_parts(ident, views, params.image_size)
    palette = _palette(ident, views, recolour)
    flat = palette[np.arange(parts.shape[0])[:, None, None], parts]
    images = (np.clip(np.rint(flat), 0, 255).astype(np.uint8) if clean
              else _finish(flat, views, params.noise_std, noise_rng))
    return images, parts, _landmarks(ident, views, params.image_size), ident, views


def _rows(ident: _Identity, views: _Views, first: int) -> list[dict]:
    slot = ident.slot
    return [{
        "image_id": f"syn-{first + k:05d}", "split": slot.split,
        "identity": f"id-{slot.index:04d}", "label": int(views.label[k]),
        "label_name": LABEL_NAMES[int(views.label[k])], "skin_tone": slot.skin_tone,
        "age_group": slot.age_group, "cue": bool(views.cue[k]), "glasses": ident.glasses,
        "smile": float(views.smile[k]),
    } for k in range(views.label.size)]


def _table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    return table.astype({"label": "int64", "cue": "bool", "glasses": "bool", "smile": "float64"})


def generate(params: SyntheticParams, seed: int,
             progress: Callable[[int], None] | None = None, *, clean: bool = False,
             recolour: Mapping[str, tuple[int, int, int]] | None = None) -> SyntheticFaces:
    """Draw the three identity-disjoint splits of synthetic faces.

    Parameters
    ----------
    params : SyntheticParams
        Validated generator settings.
    seed : int
        Non-negative seed; identity ``k`` draws from ``SeedSequence([seed, k])``,
        so results do not depend on the order of drawing.
    progress : callable, optional
        Called with the number of images just finished, once per identity.
    clean : bool
        If true, skip lighting and noise: every pixel shows its part's flat colour.
    recolour : mapping, optional
        Region name -> RGB that replaces the colour of every part of that region
        (for checking that masks cover exactly the drawn pixels).

    Returns
    -------
    SyntheticFaces
        Images, region masks, landmarks and the per-image table, ordered by
        split (:data:`SPLITS`), identity, image.

    Raises
    ------
    ConfigError
        If ``seed`` or ``recolour`` is not accepted.
    """
    _check_seed(seed)
    _check_recolour(recolour or {})
    slots = _slots(params)
    n, size = len(slots) * params.images_per_identity, params.image_size
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    parts = np.empty((n, size, size), dtype=np.uint8)
    landmarks = np.empty((n, len(LANDMARK_NAMES), 2), dtype=np.float32)
    rows: list[dict] = []
    for slot in slots:
        at = slice(len(rows), len(rows) + params.images_per_identity)
        images[at], parts[at], landmarks[at], ident, views = _render_identity(
            slot, params, seed, clean, recolour or {})
        rows.extend(_rows(ident, views, at.start))
        if progress is not None:
            progress(params.images_per_identity)
    regions = np.array([REGIONS.index(r) for r in PART_REGIONS], dtype=np.uint8)
    return SyntheticFaces(images, regions[parts], landmarks, _table(rows))
