"""A corpus of bad dataset inputs.

Each input is either refused with a :class:`DataError` whose message names the
file, the line or column and the value, or skipped with its reason (then kept +
skipped == input), or read with a repair or conversion that is noted.
"""
from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import (
    FAIRFACE_HEADER,
    fairface_rows,
    make_bfw,
    make_celeba,
    make_csv_dataset,
    make_fairface,
    make_utkface,
    write_csv,
    write_image,
)
from PIL import Image

from generator.datasets.bfw import load_bfw
from generator.datasets.celeba import load_celeba
from generator.datasets.csv_table import load_csv
from generator.datasets.fairface import load_fairface
from generator.datasets.images import read_images
from generator.datasets.utkface import load_utkface
from generator.errors import DataError

# --- images that are skipped -----------------------------------------------------------


def _corrupt_png(path: Path) -> None:
    data = bytearray(write_image(path).read_bytes())
    data[60:80] = bytes(20)  # inside the compressed pixel data
    path.write_bytes(bytes(data))


def _truncated_jpeg(path: Path) -> None:
    data = write_image(path).read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def _truncated_jpeg_tail(path: Path) -> None:
    data = write_image(path, size=64).read_bytes()
    path.write_bytes(data[:-200])


def _png_bomb(path: Path) -> None:
    """A 100-byte PNG whose header claims 100000 x 100000 pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(64)))
                     + chunk(b"IEND", b""))


IMAGE_SKIPS = {
    "missing file": ("gone.jpg", lambda path: None, "file not found"),
    "zero-byte file": ("empty.jpg", lambda path: path.touch(), "empty file (0 bytes)"),
    "text file named .jpg": ("notes.jpg", lambda path: path.write_text("not a picture"), "not an image"),
    "folder named .jpg": ("folder.jpg", lambda path: path.mkdir(), "not a file"),
    "corrupt png": ("corrupt.png", _corrupt_png, "corrupt or truncated"),
    "truncated jpeg": ("cut.jpg", _truncated_jpeg, "corrupt or truncated"),
    "truncated jpeg tail": ("tail.jpg", _truncated_jpeg_tail, "truncated"),
    "decompression bomb": ("bomb.png", _png_bomb, "10000000000 pixels"),
}


@pytest.mark.parametrize("name, write, reason", IMAGE_SKIPS.values(), ids=IMAGE_SKIPS)
def test_unusable_image_is_skipped_with_reason(tmp_path, name, write, reason):
    write_image(tmp_path / "good.png")
    write(tmp_path / name)
    images, skipped, kept = read_images(tmp_path, ["good.png", name, "good.png"], 8)
    assert kept.tolist() == [True, False, True] and images.shape == (2, 8, 8, 3)
    assert skipped["path"].tolist() == [name] and reason in skipped["reason"].iloc[0]
    assert kept.sum() + len(skipped) == 3


def test_image_above_max_pixels_is_skipped_naming_count_and_limit(tmp_path):
    write_image(tmp_path / "big.png", size=16)
    write_image(tmp_path / "small.png", size=8)
    images, skipped, kept = read_images(tmp_path, ["big.png", "small.png"], 4, max_pixels=100)
    assert kept.tolist() == [False, True] and len(images) == 1
    assert skipped["reason"].iloc[0] == "too large: 256 pixels (16x16) exceed the limit of 100"


# --- images that are converted ------------------------------------------------------------

def _palette_with_transparency() -> Image.Image:
    image = Image.new("P", (16, 16), 0)
    image.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    image.info["transparency"] = 0
    return image


CONVERSIONS = {
    "grayscale": (Image.new("L", (16, 16), 77), "png", (77, 77, 77), "grayscale converted to RGB"),
    "1-bit": (Image.new("1", (16, 16), 1), "png", (255, 255, 255), "grayscale converted to RGB"),
    "RGBA transparent": (Image.new("RGBA", (16, 16), (255, 0, 0, 0)), "png", (255, 255, 255), "transparency"),
    "RGBA opaque": (Image.new("RGBA", (16, 16), (255, 0, 0, 255)), "png", (255, 0, 0), "transparency"),
    "gray with alpha": (Image.new("LA", (16, 16), (0, 0)), "png", (255, 255, 255), "transparency"),
    "palette": (Image.new("RGB", (16, 16), (10, 20, 30)).quantize(4), "png", (10, 20, 30), "P converted to RGB"),
    "palette transparency": (_palette_with_transparency(), "png", (255, 255, 255), "transparency"),
    "16-bit": (Image.fromarray(np.full((16, 16), 257 * 40, np.uint16)), "png", (40, 40, 40), "16-bit"),
    "CMYK": (Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "tif", (255, 0, 0), "CMYK converted to RGB"),
}


@pytest.mark.parametrize("image, suffix, colour, note", CONVERSIONS.values(), ids=CONVERSIONS)
def test_image_mode_is_converted_to_rgb_and_noted(tmp_path, image, suffix, colour, note):
    image.save(tmp_path / f"odd.{suffix}")
    images, skipped, kept = read_images(tmp_path, [f"odd.{suffix}"], 8)
    assert kept.all() and skipped.empty
    assert images.shape == (1, 8, 8, 3) and (images == colour).all()
    assert any(note in n and n.startswith("1 image:") for n in skipped.attrs["notes"])


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((8, 16, 3), np.uint8)
    pixels[:, :8] = (255, 0, 0)  # left half red, right half blue
    pixels[:, 8:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise: the left edge goes to the top
    Image.fromarray(pixels).save(tmp_path / "turned.png", exif=exif)
    images, skipped, _ = read_images(tmp_path, ["turned.png"], (16, 8))
    assert (images[0, :8] == (255, 0, 0)).all() and (images[0, 8:] == (0, 0, 255)).all()
    assert skipped.attrs["notes"] == ("1 image: EXIF orientation applied",)



def _tall_image() -> np.ndarray:
    """A 12 x 20 (width x height) image: red top 4 rows, blue bottom 4 rows, green between."""
    pixels = np.zeros((20, 12, 3), np.uint8)
    pixels[:, :] = (0, 255, 0)
    pixels[:4] = (255, 0, 0)
    pixels[-4:] = (0, 0, 255)
    return pixels


@pytest.mark.parametrize("crop, top, note", [
    ("centre", (0, 255, 0), "centre-cropped"),   # the centred 12 x 12 square: green only
    ("pad", (0, 0, 0), "padded with black"),     # 4 black columns each side; top row red in the middle
    ("resize", (255, 0, 0), "stretched"),        # the whole image squashed: red at the top
])
def test_non_square_image_is_cropped_padded_or_stretched_and_noted(tmp_path, crop, top, note):
    Image.fromarray(_tall_image()).save(tmp_path / "tall.png")
    Image.fromarray(np.full((12, 12, 3), 9, np.uint8)).save(tmp_path / "square.png")
    images, skipped, kept = read_images(tmp_path, ["tall.png", "square.png"], 12, crop=crop)
    assert kept.all() and images.shape == (2, 12, 12, 3)
    assert tuple(images[0, 0, 0]) == top
    if crop == "centre":
        assert (images[0] == (0, 255, 0)).all()
    if crop == "pad":
        assert (images[0, :, :2] == 0).all() and (images[0, :, -2:] == 0).all()  # black sides (4 of 20 px)
        assert tuple(images[0, 0, 6]) == (255, 0, 0) and tuple(images[0, -1, 6]) == (0, 0, 255)
    if crop == "resize":
        assert tuple(images[0, -1, 6]) == (0, 0, 255)
    assert (images[1] == 9).all()
    assert len(skipped.attrs["notes"]) == 1  # the square image is not counted
    assert skipped.attrs["notes"][0].startswith("1 image: another aspect ratio")
    assert note in skipped.attrs["notes"][0] and f"dataset.crop: {crop}" in skipped.attrs["notes"][0]


def test_unknown_crop_is_refused(tmp_path):
    with pytest.raises(ValueError, match="crop must be one of"):
        read_images(tmp_path, [], 8, crop="squash")

# --- tables that are refused ------------------------------------------------------------------

def _fairface_with(tmp: Path, index: int, row: tuple, **kwargs) -> tuple[Path, Path]:
    rows = fairface_rows()
    rows[index] = row
    return make_fairface(tmp, rows, **kwargs)


def _missing_column(tmp):
    root, csv = make_fairface(tmp, [r[:3] + r[4:] for r in fairface_rows()],
                              header=("file", "age", "gender", "service_test"))
    return lambda: load_fairface(root, csv), [str(csv), "no column 'race'", "columns found: 'file', 'age'"]


def _renamed_column(tmp):
    root, csv = make_fairface(tmp, header=("file", "age", "Gender ", "races", "service_test"))
    return lambda: load_fairface(root, csv), [str(csv), "'gender' (did you mean 'Gender'?)",
                                              "'race' (did you mean 'races'?)"]


def _semicolons(tmp):
    csv = tmp / "faces.csv"
    csv.write_text("file;age;gender;race\nval/0.jpg;20-29;Male;White\n", encoding="utf-8")
    return lambda: load_fairface(tmp, csv), ["no columns 'file', 'gender'", "';' between values"]


def _not_utf8(tmp):
    csv = tmp / "faces.csv"
    csv.write_bytes("image,label\nfa\xe7ade.png,1\n".encode("latin-1"))
    return lambda: load_csv(csv, tmp), [str(csv), "not UTF-8"]


def _trailing_commas(tmp):
    root, csv = make_fairface(tmp)
    lines = csv.read_text(encoding="utf-8").splitlines()
    csv.write_text("\n".join([lines[0]] + [line + "," for line in lines[1:]]), encoding="utf-8")
    return lambda: load_fairface(root, csv), [str(csv), "more values than its header line names"]


def _missing_annotations(tmp):
    return lambda: load_fairface(tmp, tmp / "nope.csv"), [str(tmp / "nope.csv"), "does not exist"]


def _empty_csv(tmp):
    (tmp / "empty.csv").write_text("", encoding="utf-8")
    return lambda: load_fairface(tmp, tmp / "empty.csv"), [str(tmp / "empty.csv"), "is empty", "file, gender"]


def _header_only(tmp):
    csv = write_csv(tmp / "header.csv", FAIRFACE_HEADER, [])
    return lambda: load_fairface(tmp, csv), [str(csv), "has a header but no rows"]


def _unknown_race(tmp):
    root, csv = _fairface_with(tmp, 1, ("val/1.jpg", "3-9", "Male", "Martian", "True"))
    return lambda: load_fairface(root, csv), [f"{csv}, line 3", "column 'race'", "'Martian'",
                                              "Accepted: White, Black, Latino_Hispanic"]


def _unknown_age(tmp):
    root, csv = _fairface_with(tmp, 4, ("val/4.jpg", "5-7", "Male", "White", "True"))
    return lambda: load_fairface(root, csv), [f"{csv}, line 6", "column 'age'", "'5-7'", "0-2, 3-9",
                                              "more than 70, 70+"]


def _empty_gender(tmp):
    root, csv = _fairface_with(tmp, 0, ("val/0.jpg", "0-2", "", "White", "True"))
    return lambda: load_fairface(root, csv), [f"{csv}, line 2", "column 'gender' is empty", "Female, Male"]


def _conflicting_duplicates(tmp):
    rows = fairface_rows() + [("val/3.jpg", "3-9", "Female", "Latino_Hispanic", "True")]
    root, csv = make_fairface(tmp, rows)
    return lambda: load_fairface(root, csv), ["'val/3.jpg' is listed twice", f"{csv}, line 5 has label 'Male'",
                                              f"{csv}, line 20 has label 'Female'"]


def _dot_dot(tmp):
    root, csv = _fairface_with(tmp, 2, ("val/../../secret.jpg", "0-2", "Female", "White", "True"), images=False)
    return lambda: load_fairface(root, csv), [f"{csv}, line 4", "'val/../../secret.jpg'", "leads outside"]


def _absolute(tmp):
    root, csv = _fairface_with(tmp, 2, ("/etc/passwd", "0-2", "Female", "White", "True"), images=False)
    return lambda: load_fairface(root, csv), [f"{csv}, line 4", "'/etc/passwd' is absolute"]


def _symlink_out(tmp):
    outside = write_image(tmp / "outside.png")
    rows = [("in.png", "a", "g", "p"), ("link.png", "b", "g", "p")]
    root, csv = make_csv_dataset(tmp, rows[:1])
    write_csv(csv, ("image", "label", "group", "person"), rows)
    (root / "link.png").symlink_to(outside)
    return lambda: load_csv(csv, root), [f"{csv}, line 3", "'link.png' is a symbolic link leading outside"]


def _label_outside_label_values(tmp):
    root, csv = make_csv_dataset(tmp, [("a.png", "cat", "g", "p"), ("b.png", "dgo", "g", "p")])
    return lambda: load_csv(csv, root, label_values=["cat", "dog"]), [
        f"{csv}, line 3", "column 'label'", "'dgo'", "Accepted: cat, dog"]


def _label_values_repeated(tmp):
    root, csv = make_csv_dataset(tmp, [("a.png", "cat", "g", "p")])
    return lambda: load_csv(csv, root, label_values=["cat", "dog", "cat"]), ["label_values", "'cat' more than once"]


def _label_value_without_images(tmp):
    root, csv = make_csv_dataset(tmp, [("a.png", "cat", "g", "p"), ("b.png", "cat", "g", "p")])
    return lambda: load_csv(csv, root, label_values=["cat", "dog"]), [str(csv), "label class 'dog' has no image"]


def _empty_attribute(tmp):
    root, csv = make_csv_dataset(tmp, [("a.png", "cat", "g", "p"), ("b.png", "dog", "", "p")])
    return lambda: load_csv(csv, root, attributes=("group",)), [f"{csv}, line 3", "column 'group' is empty"]


def _attribute_named_label(tmp):
    root, csv = make_csv_dataset(tmp, [("a.png", "cat", "g", "p")])
    return lambda: load_csv(csv, root, label_column="group", attributes=("label",)), ["'label'", "rename it"]


def _unknown_label_option(tmp):
    root, csv = make_fairface(tmp)
    return lambda: load_fairface(root, csv, label="genders"), ["'genders'", "did you mean 'gender'?"]


def _celeba_count(tmp):
    root, attributes, _, _ = make_celeba(tmp, count=10)
    return lambda: load_celeba(root, attributes), [str(attributes), "line 1 says 10 images but 8 rows follow"]


def _celeba_row_length(tmp):
    root, attributes, _, _ = make_celeba(tmp)
    lines = attributes.read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 1)[0]
    attributes.write_text("\n".join(lines))
    return lambda: load_celeba(root, attributes), [f"{attributes}, line 5", "40 values", "found 39"]


def _celeba_value(tmp):
    root, attributes, _, _ = make_celeba(tmp)
    lines = attributes.read_text().splitlines()
    lines[3] = lines[3][:-2] + " 0"
    attributes.write_text("\n".join(lines))
    return lambda: load_celeba(root, attributes), [f"{attributes}, line 4", "'Young'", "'0'", "accepted: -1, 1"]


def _celeba_unknown_attribute(tmp):
    root, attributes, _, _ = make_celeba(tmp)
    return lambda: load_celeba(root, attributes, label="smiling"), [
        str(attributes), "'smiling' (did you mean 'Smiling'?)", "40 attributes are: 5_o_Clock_Shadow"]


def _celeba_no_count_line(tmp):
    root, attributes, _, _ = make_celeba(tmp)
    attributes.write_text("\n".join(attributes.read_text().splitlines()[1:]))
    return lambda: load_celeba(root, attributes), [str(attributes), "number of images on line 1",
                                                   "found '5_o_Clock_Shadow"]


def _celeba_identity_missing(tmp):
    root, attributes, identities, _ = make_celeba(tmp)
    identities.write_text("".join(identities.read_text().splitlines(keepends=True)[:-1]))
    return lambda: load_celeba(root, attributes, identity_file=identities), [
        str(identities), "no identity for '000008.jpg'"]


def _all_of_a_class_skipped(tmp):
    root = make_utkface(tmp, ["20_0_0_1.jpg", "30_0_1_2.jpg", "40_1_9_3.jpg", "50_1_2.jpg"])
    return lambda: load_utkface(root), [str(root), "label class 'Female' has no image", "2 rows skipped"]


def _bfw_wrong_root(tmp):
    root = make_bfw(tmp, subjects=1, images=1)
    return lambda: load_bfw(root.parent), [str(root.parent), "no usable image", "<group>/<subject>/<image>"]


TABLE_ERRORS: dict[str, Callable] = {
    "missing column": _missing_column,
    "renamed column (did-you-mean)": _renamed_column,
    "semicolon-separated CSV": _semicolons,
    "not UTF-8": _not_utf8,
    "rows longer than the header (trailing commas)": _trailing_commas,
    "missing annotations file": _missing_annotations,
    "empty CSV": _empty_csv,
    "header-only CSV": _header_only,
    "unknown race": _unknown_race,
    "unknown age bin": _unknown_age,
    "empty gender": _empty_gender,
    "conflicting duplicate rows": _conflicting_duplicates,
    "path escaping root with ..": _dot_dot,
    "absolute path": _absolute,
    "symbolic link out of root": _symlink_out,
    "label outside label_values": _label_outside_label_values,
    "label_values repeated": _label_values_repeated,
    "label class without images": _label_value_without_images,
    "empty attribute value": _empty_attribute,
    "attribute named like a core column": _attribute_named_label,
    "unknown label option": _unknown_label_option,
    "CelebA wrong count line": _celeba_count,
    "CelebA row with wrong number of values": _celeba_row_length,
    "CelebA value not -1 or 1": _celeba_value,
    "CelebA unknown attribute": _celeba_unknown_attribute,
    "CelebA count line missing": _celeba_no_count_line,
    "CelebA image without identity": _celeba_identity_missing,
    "empty group after filtering": _all_of_a_class_skipped,
    "BFW root one level too high": _bfw_wrong_root,
}


@pytest.mark.parametrize("build", TABLE_ERRORS.values(), ids=TABLE_ERRORS)
def test_bad_table_is_refused_naming_file_line_and_value(tmp_path, build):
    load, expected = build(tmp_path)
    with pytest.raises(DataError) as error:
        load()
    for text in expected:
        assert text in str(error.value)


# --- tables that are repaired or partly skipped ------------------------------------------------

def test_byte_order_mark_header_is_read(tmp_path):
    faces = load_fairface(*make_fairface(tmp_path, bom=True))
    assert len(faces.table) == 18 and faces.table["path"].iloc[0] == "val/0.jpg"


def test_spreadsheet_mangled_age_bins_are_repaired_and_noted(tmp_path):
    rows = fairface_rows()
    mangled = {1: "03-Sep", 10: "Sep-03", 2: "Oct-19", 11: "2019-10-01 00:00:00"}
    for i, value in mangled.items():
        rows[i] = (rows[i][0], value, *rows[i][2:])
    faces = load_fairface(*make_fairface(tmp_path, rows))
    assert faces.table["age"].tolist() == [r[1] for r in fairface_rows()]
    assert len(faces.notes) == 1 and faces.notes[0].startswith("4 age values")
    assert "'03-Sep' as '3-9'" in faces.notes[0] and "'Oct-19' as '10-19'" in faces.notes[0]


def test_blank_lines_are_ignored_and_line_numbers_kept(tmp_path):
    root, csv = make_fairface(tmp_path)
    lines = csv.read_text(encoding="utf-8").splitlines()
    csv.write_text("\n".join([*lines[:3], "", ",,,,", *lines[3:], ""]), encoding="utf-8")
    faces = load_fairface(root, csv)
    assert len(faces.table) == 18
    rows = fairface_rows()
    rows[5] = ("val/5.jpg", "0-2", "Male", "Alien", "True")
    lines[6] = ",".join(rows[5])
    csv.write_text("\n".join([*lines[:3], "", ",,,,", *lines[3:]]), encoding="utf-8")
    with pytest.raises(DataError, match=f"{csv}, line 9: column 'race'"):
        load_fairface(root, csv)


def test_identical_duplicate_rows_are_dropped_and_listed(tmp_path):
    rows = fairface_rows()
    root, csv = make_fairface(tmp_path, rows + [rows[3], rows[3], rows[5]])
    faces = load_fairface(root, csv)
    assert len(faces.table) == 18 and len(faces.table) + len(faces.skipped) == 21
    assert faces.skipped["source"].tolist() == [f"{csv}, line {n}" for n in (20, 21, 22)]
    assert faces.skipped["reason"].tolist() == [f"duplicate of {csv}, line {n}" for n in (5, 5, 7)]


def test_unicode_and_spaces_in_paths_work(tmp_path):
    names = ["ñandú con espacio/cara 1.png", "视频/脸.png", " padded.png"]
    rows = [(name, "cat" if i else "dog", "g", "p") for i, name in enumerate(names)]
    root, csv = make_csv_dataset(tmp_path, rows[:2], images=True)
    write_image(root / "padded.png")
    write_csv(csv, ("image", "label", "group", "person"), rows)
    faces = load_csv(csv, root)
    assert faces.table["path"].tolist() == [names[0], names[1], "padded.png"]
    assert faces.table["image_id"].is_unique
    images, skipped, kept = read_images(faces.root, faces.table["path"], 8)
    assert kept.all() and skipped.empty and len(images) == 3


def test_utkface_names_lacking_a_field_or_out_of_range_are_skipped(tmp_path):
    bad = {"61_1_20170109142408075.jpg.chip.jpg": "has 3 of the 4 fields",
           "53__0_20170116184028385.jpg.chip.jpg": "gender field ''",
           "30_7_0_20170116184028385.jpg.chip.jpg": "gender field '7' is not a whole number from 0 to 1",
           "30_1_5_20170116184028385.jpg": "race field '5'",
           "x_1_0_20170116184028385.jpg": "age field 'x'"}
    good = ["1_0_0_20170109150557335.jpg.chip.jpg", "25_1_1_20170116174525125.jpg.chip.jpg"]
    root = make_utkface(tmp_path, good + list(bad))
    (root / "README.txt").write_text("not an image")
    faces = load_utkface(root)
    assert len(faces.table) == 2 and len(faces.table) + len(faces.skipped) == 7
    reasons = dict(zip(faces.skipped["source"], faces.skipped["reason"]))
    for name, reason in bad.items():
        assert reason in reasons[str(root / name)]


def test_bfw_unknown_folders_are_skipped(tmp_path):
    root = make_bfw(tmp_path, subjects=1, images=2)
    write_image(root / "latino_males" / "n000009" / "0.jpg")
    write_image(root / "asian_females" / "stray.jpg")
    faces = load_bfw(root)
    assert len(faces.table) == 16 and len(faces.table) + len(faces.skipped) == 18
    reasons = dict(zip(faces.skipped["source"], faces.skipped["reason"]))
    assert "folder 'latino_males' is not one of asian_females" in reasons[str(root / "latino_males/n000009/0.jpg")]
    assert "not at <group>/<subject>/<image>" in reasons[str(root / "asian_females/stray.jpg")]
