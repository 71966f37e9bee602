"""Tiny datasets in each supported file format, written on the fly (no real data in git).

Every helper writes into a folder the test owns (``tmp_path``) and returns the
paths a loader needs. Images are 16x16 seeded noise.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from generator.datasets.fairface import AGE_BINS, GENDERS, RACES

__all__ = [
    "CELEBA_ATTRIBUTES",
    "FAIRFACE_HEADER",
    "UTKFACE_NAMES",
    "fairface_rows",
    "make_bfw",
    "make_celeba",
    "make_csv_dataset",
    "make_fairface",
    "make_utkface",
    "write_csv",
    "write_image",
]

FAIRFACE_HEADER = ("file", "age", "gender", "race", "service_test")
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)
# age_gender_race_datetime: genders 0 (male) x3, 1 (female) x2; races 0, 1, 2, 3, 4.
UTKFACE_NAMES = (
    "1_0_0_20170109150557335.jpg.chip.jpg",
    "25_1_1_20170116174525125.jpg.chip.jpg",
    "34_0_2_20170104201443273.jpg.chip.jpg",
    "71_1_3_20170110122340456.jpg.chip.jpg",
    "69_0_4_20170117193422117.jpg.chip.jpg",
)


def write_image(path: Path, *, size: int = 16, seed: int = 0) -> Path:
    """A ``size`` x ``size`` RGB noise image at ``path`` (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], *, bom: bool = False) -> Path:
    """A comma-separated UTF-8 file (with a byte-order mark when ``bom``)."""
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def fairface_rows(n: int = 18) -> list[tuple[str, str, str, str, str]]:
    """``n`` FairFace rows: row i has age bin i % 9, gender i % 2, race i % 7 (all values for n >= 9)."""
    return [(f"val/{i}.jpg", AGE_BINS[i % 9], GENDERS[i % 2], RACES[i % 7], "True") for i in range(n)]


def make_fairface(folder: Path, rows: Sequence[Sequence[object]] | None = None, *,
                  header: Sequence[str] = FAIRFACE_HEADER, bom: bool = False,
                  images: bool = True) -> tuple[Path, Path]:
    """A FairFace image root and ``fairface_label_val.csv``; images for the rows' files when ``images``."""
    rows = fairface_rows() if rows is None else rows
    root = folder / "fairface-img-margin025-trainval"
    root.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows if images else ()):
        write_image(root / str(row[0]), seed=i)
    return root, write_csv(folder / "fairface_label_val.csv", header, rows, bom=bom)


def make_celeba(folder: Path, n: int = 8, *, count: int | None = None) -> tuple[Path, Path, Path, np.ndarray]:
    """``img_align_celeba/``, ``list_attr_celeba.txt`` (line 1 says ``count``, default ``n``) and
    ``identity_CelebA.txt`` (image i has identity ``100 + i // 2``).

    Returns the root, the attribute list, the identity file and the ``(n, 40)`` matrix of -1/1 values
    (bit ``j % 3`` of ``i``, so both values of every attribute occur for n >= 8).
    """
    root = folder / "img_align_celeba"
    values = np.array([[1 if (i >> (j % 3)) & 1 else -1 for j in range(40)] for i in range(n)])
    files = [f"{i + 1:06d}.jpg" for i in range(n)]
    for i, name in enumerate(files):
        write_image(root / name, seed=i)
    lines = [str(n if count is None else count), " ".join(CELEBA_ATTRIBUTES)]
    lines += [f"{name} " + " ".join(f"{v:2d}" for v in row) for name, row in zip(files, values)]
    attributes = folder / "list_attr_celeba.txt"
    attributes.write_text("\n".join(lines) + "\n", encoding="utf-8")
    identities = folder / "identity_CelebA.txt"
    identities.write_text("".join(f"{name} {100 + i // 2}\n" for i, name in enumerate(files)), encoding="utf-8")
    return root, attributes, identities, values


def make_utkface(folder: Path, names: Sequence[str] = UTKFACE_NAMES) -> Path:
    """A UTKFace folder holding one image per file name."""
    root = folder / "UTKFace"
    for i, name in enumerate(names):
        write_image(root / name, seed=i)
    return root


def make_bfw(folder: Path, subjects: int = 2, images: int = 2,
             groups: Sequence[str] = ("asian_females", "asian_males", "black_females", "black_males",
                                      "indian_females", "indian_males", "white_females", "white_males"),
             ) -> Path:
    """``bfw-cropped-aligned/<group>/n00000<k>/<j>.jpg``: the same subject folder names in every group."""
    root = folder / "bfw-cropped-aligned"
    for g, group in enumerate(groups):
        for k in range(subjects):
            for j in range(images):
                write_image(root / group / f"n00000{k}" / f"{j}.jpg", seed=100 * g + 10 * k + j)
    return root


def make_csv_dataset(folder: Path, rows: Sequence[Sequence[object]],
                     header: Sequence[str] = ("image", "label", "group", "person"), *,
                     images: bool = True) -> tuple[Path, Path]:
    """A generic image root and ``faces.csv``; an image for each row's first field when ``images``."""
    root = folder / "images"
    root.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows if images else ()):
        write_image(root / str(row[0]), seed=i)
    return root, write_csv(folder / "faces.csv", header, rows)
