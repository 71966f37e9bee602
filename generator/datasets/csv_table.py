"""A generic dataset: a CSV naming each image, its label and its protected attributes.

The CSV needs a column of image paths relative to the image root, a label
column (optional: without it the table is unlabelled) and one column per
protected attribute, optionally an identity column. Label values become class
indices in the order of ``label_values`` when given, otherwise in sorted order
(numerically when every value is a whole number). Empty label, attribute or
identity values are refused (write an explicit value such as ``unknown``).
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from generator.datasets.tables import FaceTable, assemble, encode, locate, read_csv_checked, refuse_rows
from generator.errors import DataError

__all__ = ["load_csv"]


def load_csv(annotations: str | Path, root: str | Path, *, image_column: str = "image",
             label_column: str | None = "label", attributes: Sequence[str] = (),
             identity_column: str | None = None, label_values: Sequence[object] | None = None) -> FaceTable:
    """Read a generic image table.

    Parameters
    ----------
    annotations : str or Path
        The CSV file (UTF-8, a byte-order mark is accepted).
    root : str or Path
        The folder the image paths are relative to.
    image_column : str
        The column of image paths.
    label_column : str or None
        The column of labels; ``None`` for an unlabelled table (labels ``-1``).
    attributes : sequence of str
        Protected-attribute columns, kept as strings.
    identity_column : str, optional
        The column of subject ids; without it every image is its own identity.
    label_values : sequence, optional
        The label values in class order; a value in the CSV outside it is refused.

    Raises
    ------
    DataError
        For a missing column, an empty value, a label outside ``label_values``
        (naming the line, the value and the accepted values), a repeated entry of
        ``label_values``, or a problem :func:`~generator.datasets.tables.assemble` refuses.
    """
    what = "image table"
    columns = [c for c in (label_column, *attributes, identity_column) if c is not None]
    frame = read_csv_checked(annotations, list(dict.fromkeys([image_column, *columns])), what=what)
    where = locate(annotations, frame.index)
    for column in columns:
        empty = (frame[column] == "").to_numpy()
        if empty.any():
            raise refuse_rows(where[empty], frame[column][empty], column=column, accepted=["any non-empty text"])
    label_names = _label_names(frame[label_column], label_values, where, label_column) if label_column else ()
    label = encode(frame[label_column], label_names) if label_column else np.full(len(frame), -1)
    records = pd.DataFrame({"path": frame[image_column], "label": label, **{a: frame[a] for a in attributes}},
                           index=frame.index)
    if identity_column is not None:
        records["identity"] = frame[identity_column]
    return assemble(records, where, root=root, label_names=label_names, attributes=attributes,
                    has_identity=identity_column is not None, source=f"{what} {annotations}")


def _label_names(values: pd.Series, label_values: Sequence[object] | None, where: pd.Series,
                 column: str) -> tuple[str, ...]:
    """Class names: ``label_values`` as text (checked against the data), or the sorted distinct values."""
    if label_values is None:
        found = pd.unique(values)
        whole = all(re.fullmatch(r"[+-]?\d+", v) for v in found)
        return tuple(sorted(found, key=int) if whole else sorted(found))
    names = tuple(str(v).strip() for v in label_values)
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise DataError(f"label_values lists {repeated[0]!r} more than once: {list(names)}")
    outside = (~values.isin(names)).to_numpy()
    if outside.any():
        raise refuse_rows(where[outside], values[outside], column=column, accepted=names)
    return names
