"""CelebA (Liu et al., 2015): 40 binary attributes per aligned face crop.

``list_attr_celeba.txt`` holds the image count on line 1, the attribute names on
line 2, then one line per image: ``000001.jpg -1  1  1 ...`` (whitespace
separated, ``-1`` for absent, ``1`` for present). The images are in
``img_align_celeba/``, the folder ``root`` points at. ``identity_CelebA.txt``
(``000001.jpg 2880`` per line) optionally gives the identities.

Liu, Z., Luo, P., Wang, X. and Tang, X. (2015). Deep learning face attributes in
the wild. ICCV.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from generator.datasets.tables import FaceTable, assemble, did_you_mean, locate
from generator.errors import DataError

__all__ = ["load_celeba", "read_attribute_list"]


def load_celeba(root: str | Path, annotations: str | Path, *, label: str = "Smiling",
                attributes: Sequence[str] = ("Male", "Young"),
                identity_file: str | Path | None = None) -> FaceTable:
    """Read CelebA's attribute list (and optionally its identity file).

    Parameters
    ----------
    root : str or Path
        The ``img_align_celeba`` folder.
    annotations : str or Path
        ``list_attr_celeba.txt``.
    label : str
        One of the attribute names on line 2; class names ``("not <label>", "<label>")``.
    attributes : sequence of str
        Attribute names kept as protected attributes, with values ``"<name>"`` or
        ``"not <name>"``.
    identity_file : str or Path, optional
        ``identity_CelebA.txt``; without it every image is its own identity.

    Raises
    ------
    DataError
        If the count on line 1 differs from the number of rows, a row has the
        wrong number of values or a value other than -1 and 1, an attribute name
        is unknown (the message lists the names found), or an image lacks an identity.
    """
    names, files, present, lines = read_attribute_list(annotations)
    for name in dict.fromkeys([label, *attributes]):
        if name not in names:
            raise DataError(f"CelebA attribute list {annotations} has no attribute {name!r}"
                            f"{did_you_mean(name, names)}; its {len(names)} attributes are: {', '.join(names)}")
    column = {name: k for k, name in enumerate(names)}
    records = pd.DataFrame({"path": files, "label": present[:, column[label]].astype(np.int64),
                            **{a: np.where(present[:, column[a]], a, f"not {a}") for a in attributes}})
    if identity_file is not None:
        records["identity"] = _identities(Path(identity_file), files, annotations)
    return assemble(records, locate(annotations, lines), root=root, label_names=(f"not {label}", label),
                    attributes=attributes, has_identity=identity_file is not None,
                    source=f"CelebA attribute list {annotations}")


def read_attribute_list(path: str | Path) -> tuple[list[str], list[str], np.ndarray, list[int]]:
    """Parse ``list_attr_celeba.txt``.

    Returns
    -------
    names : list of str
        The attribute names of line 2.
    files : list of str
        The image file of each row.
    present : numpy.ndarray of bool, shape (rows, attributes)
        ``True`` where the value is ``1``.
    lines : list of int
        The line number of each row in the file.
    """
    text = _read_lines(Path(path), "CelebA attribute list")
    if len(text) < 2 or not text[0].strip().isdigit():
        found = repr(text[0].strip()[:40]) if text else "an empty file"
        raise DataError(f"CelebA attribute list {path}: expected the number of images on line 1 and the "
                        f"attribute names on line 2, found {found}")
    count, names = int(text[0]), text[1].split()
    rows = [(n, line.split()) for n, line in enumerate(text[2:], start=3) if line.strip()]
    if len(rows) != count:
        raise DataError(f"CelebA attribute list {path}: line 1 says {count} images but {len(rows)} rows follow")
    for n, fields in rows:
        if len(fields) != len(names) + 1:
            raise DataError(f"CelebA attribute list {path}, line {n}: expected an image name and {len(names)} "
                            f"values (one per attribute on line 2), found {len(fields) - 1} values")
    values = np.array([fields[1:] for _, fields in rows], dtype=object).reshape(len(rows), len(names))
    bad = np.argwhere((values != "1") & (values != "-1"))
    if len(bad):
        row, col = bad[0]
        raise DataError(f"CelebA attribute list {path}, line {rows[row][0]}: attribute {names[col]!r} has the "
                        f"value {values[row, col]!r}; accepted: -1, 1")
    return names, [fields[0] for _, fields in rows], values == "1", [n for n, _ in rows]


def _identities(path: Path, files: list[str], annotations: str | Path) -> list[str]:
    """The identity of each file from ``identity_CelebA.txt``."""
    known: dict[str, str] = {}
    for n, line in enumerate(_read_lines(path, "CelebA identity file"), start=1):
        fields = line.split()
        if fields and len(fields) != 2:
            raise DataError(f"CelebA identity file {path}, line {n}: expected '<image> <identity>', found {line!r}")
        if fields:
            known[fields[0]] = fields[1]
    missing = [f for f in files if f not in known]
    if missing:
        raise DataError(f"CelebA identity file {path} has no identity for {missing[0]!r} "
                        f"({len(missing)} images of {annotations} lack one)")
    return [known[f] for f in files]


def _read_lines(path: Path, what: str) -> list[str]:
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist or is not a file")
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None
