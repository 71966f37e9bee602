"""Loaders of users' datasets on tiny generated fixtures: counts, label mapping, identities, splits, images."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from data_fixtures import (
    CELEBA_ATTRIBUTES,
    fairface_rows,
    make_bfw,
    make_celeba,
    make_csv_dataset,
    make_fairface,
    make_utkface,
    write_image,
)
from PIL import Image

from generator.datasets.bfw import ETHNICITIES, load_bfw
from generator.datasets.celeba import load_celeba
from generator.datasets.csv_table import load_csv
from generator.datasets.fairface import AGE_BINS, GENDERS, RACES, age_group, load_fairface, repair_age
from generator.datasets.images import read_images
from generator.datasets.tables import FaceTable, identity_split, stratified_subsample
from generator.datasets.utkface import RACES as UTK_RACES
from generator.datasets.utkface import load_utkface
from generator.errors import DataError

CORE = ["image_id", "path", "identity", "label"]


def _check_contract(faces: FaceTable) -> None:
    """Properties every loader's table has."""
    table = faces.table
    assert list(table.columns) == CORE + list(faces.attributes)
    assert table.index.equals(pd.RangeIndex(len(table)))
    assert table["image_id"].is_unique and table["path"].is_unique
    assert table["label"].dtype == np.int64
    assert faces.root.is_absolute()
    assert list(faces.skipped.columns) == ["source", "reason"]
    if not faces.has_identity:
        assert (table["identity"] == table["image_id"]).all()


# --- FairFace ----------------------------------------------------------------

def test_fairface_reads_every_row_with_canonical_labels(tmp_path):
    root, csv = make_fairface(tmp_path)
    faces = load_fairface(root, csv)
    _check_contract(faces)
    table, n = faces.table, 18
    assert len(table) == n and faces.skipped.empty and faces.notes == ()
    assert faces.label_names == ("Female", "Male") and faces.attributes == ("race", "age")
    assert table["path"].tolist() == [f"val/{i}.jpg" for i in range(n)]
    assert table["image_id"].tolist() == [f"val_{i}" for i in range(n)]
    assert table["label"].tolist() == [i % 2 for i in range(n)]
    assert table["race"].tolist() == [RACES[i % 7] for i in range(n)]
    assert table["age"].tolist() == [AGE_BINS[i % 9] for i in range(n)]
    assert not faces.has_identity and str(csv) in faces.source


@pytest.mark.parametrize("label, names, period", [("race", RACES, 7), ("age", AGE_BINS, 9), ("gender", GENDERS, 2)])
def test_fairface_label_any_field_in_fixed_order(tmp_path, label, names, period):
    root, csv = make_fairface(tmp_path)
    faces = load_fairface(root, csv, label=label, attributes=("gender",))
    assert faces.label_names == names
    assert faces.table["label"].tolist() == [i % period for i in range(18)]


def test_fairface_values_case_and_spaces_and_70_plus(tmp_path):
    rows = fairface_rows()
    rows[8] = ("val/8.jpg", "70+", " male ", "white", "True")
    faces = load_fairface(*make_fairface(tmp_path, rows))
    assert faces.table.loc[8, ["age", "race", "label"]].tolist() == ["more than 70", "White", 1]


@pytest.mark.parametrize("value, expected", [
    ("3-Sep", "3-9"), ("03-Sep", "3-9"), ("Sep-03", "3-9"), ("Sep-3", "3-9"), ("2019-09-03", "3-9"),
    ("03/09/2019", "3-9"), ("Oct-19", "10-19"), ("19-Oct", "10-19"), ("2019-10-01", "10-19"),
    ("2019-10-01 00:00:00", "10-19"), ("October 2019", "10-19"),
    ("3-9", None), ("more than 70", None), ("Jan-70", None), ("banana", None), ("5-7", None)])
def test_repair_age_reads_spreadsheet_dates_back(value, expected):
    assert repair_age(value) == expected


@pytest.mark.parametrize("age, expected", [(0, "0-2"), (2, "0-2"), (3, "3-9"), (19, "10-19"), (69, "60-69"),
                                           (70, "more than 70"), (116, "more than 70")])
def test_age_group_uses_fairface_bins(age, expected):
    assert age_group(age) == expected


# --- CelebA --------------------------------------------------------------------

def test_celeba_maps_minus_one_one_and_identities(tmp_path):
    root, attributes, identities, values = make_celeba(tmp_path)
    faces = load_celeba(root, attributes, identity_file=identities)
    _check_contract(faces)
    column = {name: j for j, name in enumerate(CELEBA_ATTRIBUTES)}
    table = faces.table
    assert len(table) == 8 and faces.has_identity
    assert faces.label_names == ("not Smiling", "Smiling")
    assert table["label"].tolist() == (values[:, column["Smiling"]] == 1).astype(int).tolist()
    assert table["Male"].tolist() == ["Male" if v == 1 else "not Male" for v in values[:, column["Male"]]]
    assert table["Young"].tolist() == ["Young" if v == 1 else "not Young" for v in values[:, column["Young"]]]
    assert table["identity"].tolist() == [str(100 + i // 2) for i in range(8)]
    assert table["path"].tolist() == [f"{i + 1:06d}.jpg" for i in range(8)]


def test_celeba_without_identity_file_has_one_identity_per_image(tmp_path):
    root, attributes, _, _ = make_celeba(tmp_path)
    faces = load_celeba(root, attributes, label="Eyeglasses", attributes=("Pale_Skin",))
    _check_contract(faces)
    assert not faces.has_identity and faces.attributes == ("Pale_Skin",)


# --- UTKFace ---------------------------------------------------------------------

def test_utkface_reads_labels_from_names(tmp_path):
    faces = load_utkface(make_utkface(tmp_path))
    _check_contract(faces)
    table = faces.table.set_index("path")
    assert len(table) == 5 and faces.skipped.empty and not faces.has_identity
    assert faces.label_names == ("Female", "Male")
    # gender code 0 is male (class 1), 1 is female (class 0)
    assert table.loc["1_0_0_20170109150557335.jpg.chip.jpg", ["label", "race", "age_group"]].tolist() == [
        1, "White", "0-2"]
    assert table.loc["71_1_3_20170110122340456.jpg.chip.jpg", ["label", "race", "age_group"]].tolist() == [
        0, "Indian", "more than 70"]
    assert sorted(table["race"]) == sorted(UTK_RACES)


def test_utkface_race_label(tmp_path):
    faces = load_utkface(make_utkface(tmp_path), label="race", attributes=("gender",))
    assert faces.label_names == UTK_RACES
    assert sorted(faces.table["label"]) == [0, 1, 2, 3, 4]


# --- BFW -------------------------------------------------------------------------

def test_bfw_identities_are_qualified_by_group(tmp_path):
    faces = load_bfw(make_bfw(tmp_path))
    _check_contract(faces)
    table = faces.table
    assert len(table) == 8 * 2 * 2 and faces.has_identity
    assert table["identity"].nunique() == 16
    assert table.groupby("identity").size().eq(2).all()
    first = table.iloc[0]
    assert first["path"] == "asian_females/n000000/0.jpg"
    assert (first["identity"], first["ethnicity"], first["label"]) == ("asian_females/n000000", "Asian", 0)
    assert table.groupby(["ethnicity", "label"]).size().eq(4).all()


def test_bfw_ethnicity_label(tmp_path):
    faces = load_bfw(make_bfw(tmp_path, subjects=1, images=1), label="ethnicity", attributes=("gender",))
    assert faces.label_names == ETHNICITIES
    assert faces.table["label"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert faces.table["gender"].tolist() == ["Female", "Male"] * 4


# --- generic CSV ---------------------------------------------------------------------

def test_csv_sorted_labels_identities_and_attributes(tmp_path):
    rows = [("a.png", "dog", "g1", "p1"), ("b.png", "cat", "g2", "p1"), ("c.png", "dog", "g2", "p2")]
    root, csv = make_csv_dataset(tmp_path, rows)
    faces = load_csv(csv, root, attributes=("group",), identity_column="person")
    _check_contract(faces)
    assert faces.label_names == ("cat", "dog")
    assert faces.table["label"].tolist() == [1, 0, 1]
    assert faces.table["identity"].tolist() == ["p1", "p1", "p2"] and faces.has_identity
    assert faces.table["group"].tolist() == ["g1", "g2", "g2"]


def test_csv_whole_number_labels_sort_numerically_and_label_values_set_order(tmp_path):
    rows = [("a.png", "10", "g", "p"), ("b.png", "2", "g", "p"), ("c.png", "1", "g", "p")]
    root, csv = make_csv_dataset(tmp_path, rows)
    assert load_csv(csv, root).label_names == ("1", "2", "10")
    ordered = load_csv(csv, root, label_values=[10, 2, 1])
    assert ordered.label_names == ("10", "2", "1") and ordered.table["label"].tolist() == [0, 1, 2]


def test_csv_without_label_column_is_unlabelled(tmp_path):
    root, csv = make_csv_dataset(tmp_path, [("a.png", "x"), ("b.png", "y")], header=("image", "group"))
    faces = load_csv(csv, root, label_column=None, attributes=("group",))
    assert faces.label_names == () and faces.table["label"].tolist() == [-1, -1]


# --- splits and subsamples -------------------------------------------------------------

def test_identity_split_is_identity_disjoint_and_deterministic(tmp_path):
    table = load_bfw(make_bfw(tmp_path, subjects=5, images=3)).table
    split = identity_split(table, 0.25, seed=4)
    eval_ids, train_ids = set(table["identity"][split == "eval"]), set(table["identity"][split == "train"])
    assert not eval_ids & train_ids
    assert len(eval_ids) == round(0.25 * 40) and len(train_ids) == 30
    np.testing.assert_array_equal(split, identity_split(table, 0.25, seed=4))
    assert not np.array_equal(split, identity_split(table, 0.25, seed=5))
    shuffled = table.sample(frac=1, random_state=0)
    np.testing.assert_array_equal(identity_split(shuffled, 0.25, seed=4), split[shuffled.index])


def test_identity_split_per_image_without_identities(tmp_path):
    faces = load_fairface(*make_fairface(tmp_path))
    split = identity_split(faces, 0.5, seed=0)
    assert (split == "eval").sum() == 9 and set(split) == {"train", "eval"}


@pytest.mark.parametrize("fraction", [0.0, 1.0, 0.01, 0.99])
def test_identity_split_refuses_an_empty_side(tmp_path, fraction):
    table = load_bfw(make_bfw(tmp_path, subjects=1, images=1)).table
    with pytest.raises(DataError, match="empty"):
        identity_split(table, fraction, seed=0)


def _groups(sizes: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({"g": [g for g, n in sizes.items() for _ in range(n)], "x": range(sum(sizes.values()))})


@pytest.mark.parametrize("sizes, limit, expected", [
    ({"a": 60, "b": 30, "c": 10}, 10, {"a": 6, "b": 3, "c": 1}),
    ({"a": 97, "b": 2, "c": 1}, 10, {"a": 8, "b": 1, "c": 1}),
    ({"a": 50, "b": 25, "c": 25}, 7, {"a": 3, "b": 2, "c": 2}),
    ({"a": 5, "b": 3, "c": 2}, 2, {"a": 1, "b": 1}),
])
def test_stratified_subsample_keeps_shares(sizes, limit, expected):
    table = _groups(sizes)
    sample = stratified_subsample(table, ["g"], limit, seed=1)
    assert sample["g"].value_counts().to_dict() == expected
    assert sample["x"].is_monotonic_increasing and sample.index.equals(pd.RangeIndex(limit))
    pd.testing.assert_frame_equal(sample, stratified_subsample(table, ["g"], limit, seed=1))
    assert not sample.equals(stratified_subsample(table, ["g"], limit, seed=2))


def test_stratified_subsample_keeps_small_tables_whole():
    table = _groups({"a": 3, "b": 2})
    pd.testing.assert_frame_equal(stratified_subsample(table, ["g"], 10, seed=0), table)


# --- images ----------------------------------------------------------------------------

def test_read_images_resizes_bilinear_in_order(tmp_path):
    paths = ["a.png", "sub dir/b.jpg", "c.png"]
    for i, path in enumerate(paths):
        write_image(tmp_path / path, size=16 + 8 * i, seed=i)
    calls = []
    # square files into a 6 x 10 output: stretched as a whole (crop="resize"), as Pillow resizes them
    images, skipped, kept = read_images(tmp_path, paths, (6, 10), crop="resize", progress=calls.append)
    assert images.shape == (3, 6, 10, 3) and images.dtype == np.uint8
    assert kept.all() and skipped.empty and sum(calls) == 3
    expected = np.asarray(Image.open(tmp_path / "sub dir/b.jpg").convert("RGB").resize((10, 6), Image.BILINEAR))
    np.testing.assert_array_equal(images[1], expected)
    again, _, _ = read_images(tmp_path, paths, (6, 10), crop="resize")
    np.testing.assert_array_equal(images, again)


def test_read_images_uniform_colour_stays_exact(tmp_path):
    Image.new("RGB", (31, 17), (12, 200, 99)).save(tmp_path / "flat.png")
    images, _, _ = read_images(tmp_path, ["flat.png"], 8)
    assert images.shape == (1, 8, 8, 3) and (images == [12, 200, 99]).all()


def test_table_paths_feed_read_images(tmp_path):
    faces = load_celeba(*make_celeba(tmp_path)[:2])
    images, skipped, kept = read_images(faces.root, faces.table["path"], 8)
    assert len(images) == len(faces.table) == 8 and kept.all() and skipped.empty
