"""Tests of the procedural synthetic face generator (tiny images, few identities)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from generator.datasets.synthetic import (
    AGE_GROUPS,
    LABEL_NAMES,
    LANDMARK_NAMES,
    MST_SWATCHES,
    REGIONS,
    SKIN_TONES,
    SyntheticParams,
    generate,
)
from generator.errors import ConfigError

COLUMNS = ["image_id", "split", "identity", "label", "label_name", "skin_tone",
           "age_group", "cue", "glasses", "smile"]
HEAD = [REGIONS.index(r) for r in REGIONS if r not in ("background", "cue")]


def _params(size: int = 48, fair: int = 16, biased: int = 40, held: int = 16,
            **kwargs) -> SyntheticParams:
    counts = {"train_fair": fair, "train_biased": biased, "eval": held}
    return SyntheticParams(image_size=size, identities=counts, images_per_identity=10, **kwargs)


@pytest.fixture(scope="module")
def faces():
    return generate(_params(), seed=7)


@pytest.fixture(scope="module")
def clean():
    return generate(_params(), seed=7, clean=True)


@pytest.fixture(scope="module", params=[48, 64, 128])
def sized(request):
    return generate(_params(request.param, fair=8, biased=0, held=8), seed=3)


# --- determinism and layout ------------------------------------------------

def test_same_seed_is_bit_identical(faces):
    again = generate(_params(), seed=7)
    for name in ("images", "masks", "landmarks"):
        np.testing.assert_array_equal(getattr(again, name), getattr(faces, name))
    pd.testing.assert_frame_equal(again.table, faces.table)


def test_different_seed_changes_pixels(faces):
    other = generate(_params(), seed=8)
    assert np.mean(other.images != faces.images) > 0.5


def test_shapes_dtypes_and_columns(faces):
    n = 72 * 10
    assert faces.images.shape == (n, 48, 48, 3) and faces.images.dtype == np.uint8
    assert faces.masks.shape == (n, 48, 48) and faces.masks.dtype == np.uint8
    assert faces.landmarks.shape == (n, len(LANDMARK_NAMES), 2)
    assert faces.landmarks.dtype == np.float32
    assert list(faces.table.columns) == COLUMNS
    assert faces.table["image_id"].is_unique and faces.table.index.equals(pd.RangeIndex(n))


def test_row_order_is_split_then_identity(faces):
    table = faces.table
    order = table["split"].map({"train_fair": 0, "train_biased": 1, "eval": 2})
    assert order.is_monotonic_increasing
    assert table["identity"].is_monotonic_increasing
    assert (table["label_name"] == table["label"].map(dict(enumerate(LABEL_NAMES)))).all()


def test_progress_counts_every_image():
    calls: list[int] = []
    generate(_params(fair=2, biased=0, held=1), seed=0, progress=calls.append)
    assert calls == [10, 10, 10]


def test_params_as_dict_is_json_and_hashable():
    params = _params()
    text = json.dumps(params.as_dict(), sort_keys=True)
    assert json.loads(text)["identities"] == {"train_fair": 16, "train_biased": 40, "eval": 16}
    assert hash(params) == hash(_params()) and params == _params()
    assert SyntheticParams().as_dict()["biased_shares"]["MST 8-10"] == 0.025


# --- masks -----------------------------------------------------------------

@pytest.mark.parametrize("region", REGIONS)
def test_recolouring_a_region_changes_exactly_its_mask(clean, region):
    """Exactness: in the clean render, the pixels showing a region are its mask."""
    odd = (1, 2, 3)
    assert not np.all(clean.images == odd, axis=-1).any()
    other = generate(_params(), seed=7, clean=True, recolour={region: odd})
    changed = np.any(other.images != clean.images, axis=-1)
    np.testing.assert_array_equal(changed, clean.masks == REGIONS.index(region))


def test_lighting_and_noise_do_not_move_the_mask(faces, clean):
    np.testing.assert_array_equal(faces.masks, clean.masks)
    assert np.mean(faces.images != clean.images) > 0.5


def test_region_ids_valid_and_key_regions_present(sized):
    masks = sized.masks
    assert masks.max() < len(REGIONS)
    for region in ("eyes", "mouth", "nose", "skin", "hair"):
        pixels = (masks == REGIONS.index(region)).sum(axis=(1, 2))
        assert (pixels > 0).all(), region


def test_cue_present_iff_flag_and_isolated(faces):
    cue = faces.masks == REGIONS.index("cue")
    np.testing.assert_array_equal(cue.any(axis=(1, 2)), faces.table["cue"].to_numpy())
    side = round(0.1 * 48)
    assert (cue.sum(axis=(1, 2)) == side * side * faces.table["cue"]).all()
    grown = ndimage.binary_dilation(cue, structure=np.ones((1, 3, 3), dtype=bool))
    assert not (grown & np.isin(faces.masks, HEAD)).any()


# --- landmarks -------------------------------------------------------------

def _distance_to_region(masks: np.ndarray, points: np.ndarray, region: str) -> np.ndarray:
    """Distance (px) from each (x, y) point to the nearest pixel centre of a region."""
    out = np.empty(len(masks))
    for k, (mask, (x, y)) in enumerate(zip(masks, points)):
        rows, cols = np.nonzero(mask == REGIONS.index(region))
        out[k] = np.sqrt((cols - x) ** 2 + (rows - y) ** 2).min()
    return out


@pytest.mark.parametrize("index, region, tolerance", [
    (0, "eyes", 1.0), (1, "eyes", 1.0), (2, "nose", 1.0), (3, "mouth", 1.5), (4, "mouth", 1.5),
])
def test_landmarks_lie_on_their_regions(sized, index, region, tolerance):
    distance = _distance_to_region(sized.masks, sized.landmarks[:, index], region)
    assert distance.max() <= tolerance


def test_left_landmarks_are_image_left(sized):
    x = sized.landmarks[..., 0]
    assert (x[:, 0] < x[:, 1]).all() and (x[:, 3] < x[:, 4]).all()


# --- labels ----------------------------------------------------------------

def _mouth_bend(masks: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Corner height minus mean mouth height at the mid column (px; < 0 = smile)."""
    corners = landmarks[:, 3:5]
    bend = np.empty(len(masks))
    for k, mask in enumerate(masks):
        column = int(round(corners[k, :, 0].mean()))
        rows = np.nonzero(mask[:, column] == REGIONS.index("mouth"))[0]
        bend[k] = corners[k, :, 1].mean() - rows.mean()
    return bend


def test_smiles_raise_the_mouth_corners():
    faces = generate(_params(64, fair=16, biased=0, held=0), seed=5)
    bend = _mouth_bend(faces.masks, faces.landmarks)
    label = faces.table["label"].to_numpy()
    assert bend[label == 1].mean() < -1.0  # corners about 2 px above the centre at 64 px
    assert bend[label == 1].mean() + 1.0 < bend[label == 0].mean()


def test_smile_amount_separates_classes(faces):
    smile, label = faces.table["smile"], faces.table["label"]
    assert smile[label == 1].min() >= 0.4 and smile[label == 0].max() <= 0.1


def test_labels_balanced_within_identity(faces):
    assert (faces.table.groupby("identity")["label"].sum() == 5).all()


# --- identities and splits -------------------------------------------------

def test_splits_are_identity_disjoint(faces):
    splits_per_identity = faces.table.groupby("identity")["split"].nunique()
    assert (splits_per_identity == 1).all()
    assert (faces.table.groupby("identity").size() >= 10).all()


def test_identity_attributes_constant(faces):
    per_identity = faces.table.groupby("identity")[["skin_tone", "age_group", "glasses"]]
    assert (per_identity.nunique() == 1).all().all()


def _face_colour(image: np.ndarray, mask: np.ndarray) -> tuple[int, ...]:
    """Most frequent colour of the skin region (the face part) in a clean image."""
    colours, counts = np.unique(image[mask == REGIONS.index("skin")], axis=0,
                                return_counts=True)
    return tuple(colours[np.argmax(counts)])


def test_skin_colour_constant_per_identity_and_inside_its_band(clean):
    table = clean.table.assign(colour=[_face_colour(i, m)
                                       for i, m in zip(clean.images, clean.masks)])
    assert (table.groupby("identity")["colour"].nunique() == 1).all()
    bands = {"MST 1-3": (0, 3), "MST 4-5": (3, 5), "MST 6-7": (5, 7), "MST 8-10": (7, 10)}
    for band, (low, high) in bands.items():
        swatches = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)]
                             for h in MST_SWATCHES[low:high]])
        colours = np.array(table.loc[table["skin_tone"] == band, "colour"].tolist())
        assert (colours >= swatches.min(0) - 1).all() and (colours <= swatches.max(0) + 1).all()


@pytest.mark.parametrize("split", ["train_fair", "eval"])
def test_balanced_splits(faces, split):
    rows = faces.table[faces.table["split"] == split].drop_duplicates("identity")
    cells = rows.groupby(["skin_tone", "age_group"]).size()
    assert len(cells) == len(SKIN_TONES) * len(AGE_GROUPS) and (cells == 2).all()


def test_biased_split_follows_shares(faces):
    """Tolerance: each band's identity count is within 1 of share * count."""
    rows = faces.table[faces.table["split"] == "train_biased"].drop_duplicates("identity")
    counts = rows["skin_tone"].value_counts()
    shares = SyntheticParams().biased_shares
    for band in SKIN_TONES:
        assert abs(counts[band] - shares[band] * 40) < 1.0
    ages = rows.groupby("skin_tone")["age_group"].value_counts().unstack(fill_value=0)
    assert (abs(ages["young"] - ages["older"]) <= 1).all()


def _agreement(table: pd.DataFrame) -> float:
    return float((table["cue"] == (table["label"] == 1)).mean())


def test_shortcut_planted_only_where_asked(faces):
    """Tolerance: 0.5 +- 0.1 where the cue is random (about 4 standard errors)."""
    table = faces.table
    biased = table[table["split"] == "train_biased"]
    planted = biased["skin_tone"].isin(["MST 6-7", "MST 8-10"])
    assert _agreement(biased[planted]) > 0.85
    assert abs(_agreement(biased[~planted]) - 0.5) < 0.1
    assert abs(_agreement(table[table["split"] == "eval"]) - 0.5) < 0.12
    assert abs(_agreement(table[table["split"] == "train_fair"]) - 0.5) < 0.12


@pytest.mark.parametrize("strength, expected", [(1.0, 1.0), (0.0, 0.0)])
def test_shortcut_strength_extremes(strength, expected):
    faces = generate(_params(fair=0, biased=8, held=0, shortcut_strength=strength), seed=1)
    planted = faces.table[faces.table["skin_tone"].isin(["MST 6-7", "MST 8-10"])]
    assert len(planted) > 0 and _agreement(planted) == expected


# --- validation ------------------------------------------------------------

@pytest.mark.parametrize("name, value, shown", [
    ("image_size", 47, "47"),
    ("image_size", 129, "129"),
    ("images_per_identity", 9, "9"),
    ("identities", {"train": 3}, "train"),
    ("identities", {"eval": -1}, "-1"),
    ("identities", {"train_biased": 3}, "3"),
    ("biased_shares", {"MST 0": 1.0}, "MST 0"),
    ("biased_shares", {"MST 1-3": 0.0, "MST 4-5": 1.0, "MST 6-7": 1.0, "MST 8-10": 1.0}, "0.0"),
    ("biased_shares", {"MST 1-3": 1.0}, "MST 4-5"),
    ("shortcut_groups", ("MST 6-7", "MST 11"), "MST 11"),
    ("shortcut_strength", 1.5, "1.5"),
    ("shortcut_strength", -0.1, "-0.1"),
    ("noise_std", -1.0, "-1.0"),
    ("glasses_rate", 2.0, "2.0"),
])
def test_bad_params_are_refused_with_name_and_value(name, value, shown):
    with pytest.raises(ConfigError) as caught:
        SyntheticParams(**{name: value})
    assert name in str(caught.value) and shown in str(caught.value)


def test_bad_seed_and_recolour_are_refused():
    with pytest.raises(ConfigError, match="seed"):
        generate(_params(fair=1, biased=0, held=0), seed=-1)
    with pytest.raises(ConfigError, match="beard"):
        generate(_params(fair=1, biased=0, held=0), seed=0, recolour={"beard": (0, 0, 0)})
