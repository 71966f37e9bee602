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

import io
from collections.abc import Sequence
from pathlib import Path

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
    head = _read_text(Path(path), "CelebA attribute list").split("\n", 2)
    if len(head) < 2 or not head[0].strip().isdigit():
        raise DataError(f"CelebA attribute list {path}: expected the number of images on line 1 and the "
                        f"attribute names on line 2, found {head[0].strip()[:40]!r}")
    count, names = int(head[0]), head[1].split()
    rows = _rows(Path(path), head[2] if len(head) > 2 else "", len(names))
    if len(rows) != count:
        raise DataError(f"CelebA attribute list {path}: line 1 says {count} images but {len(rows)} rows follow")
    values = rows.iloc[:, 1:].to_numpy()
    bad = np.argwhere((values != "1") & (values != "-1"))
    if len(bad):
        row, col = bad[0]
        raise DataError(f"CelebA attribute list {path}, line {rows.index[row]}: attribute {names[col]!r} has the "
                        f"value {values[row, col]!r}; accepted: -1, 1")
    return names, rows[0].tolist(), values == "1", rows.index.tolist()


def _rows(path: Path, body: str, n_names: int) -> pd.DataFrame:
    """The image rows (text, column 0 the file), indexed by line number; each must hold ``n_names`` values."""
    try:
        rows = pd.read_csv(io.StringIO(body), sep=r"\s+", header=None, names=range(n_names + 1), dtype=str,
                           keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=range(n_names + 1))
    except pd.errors.ParserError:  # a row with too many values
        _refuse_row_length(path, body, n_names)
    rows.index += 3
    rows = rows[(rows != "").any(axis=1)]
    if (rows == "").any(axis=None):  # a row with too few values
        _refuse_row_length(path, body, n_names)
    return rows


def _refuse_row_length(path: Path, body: str, n_names: int) -> None:
    """Raise the error naming the first row that does not hold an image name and ``n_names`` values."""
    for number, line in enumerate(body.splitlines(), start=3):
        fields = line.split()
        if fields and len(fields) != n_names + 1:
            raise DataError(f"CelebA attribute list {path}, line {number}: expected an image name and {n_names} "
                            f"values (one per attribute on line 2), found {len(fields) - 1} values")
    raise DataError(f"CelebA attribute list {path} could not be read as whitespace-separated rows")


def _identities(path: Path, files: list[str], annotations: str | Path) -> list[str]:
    """The identity of each file from ``identity_CelebA.txt``."""
    known: dict[str, str] = {}
    for n, line in enumerate(_read_text(path, "CelebA identity file").splitlines(), start=1):
        fields = line.split()
        if fields and len(fields) != 2:
            raise DataError(f"CelebA identity file {path}, line {n}: expected '<image> <identity>', found {line!r}")
        if fields:
            known[fields[0]] = fields[1]
    missing = [f for f in files if f not in known]
    if missing:
        raise DataError(f"CelebA identity file {path} has no identity for {missing[0]!r} "
                        f"({len(missing)} of the {len(files)} images in {annotations} have none)")
    return [known[f] for f in files]


def _read_text(path: Path, what: str) -> str:
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist or is not a file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None
