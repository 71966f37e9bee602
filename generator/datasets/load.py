"""Read a user's dataset as the config describes it: one table, then the images.

:func:`load_table` dispatches to the loader of ``dataset.kind`` (FairFace, CelebA,
UTKFace, BFW or a generic CSV), keeps at most ``max_images`` rows with the group
shares of the label and the protected attributes, and assigns splits: every image
is evaluated unless a default model is trained on the data, in which case
``eval_fraction`` of the identities are held out (identity-disjoint).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from generator.errors import DataError

if TYPE_CHECKING:
    from generator.config import DatasetConfig
    from generator.datasets.tables import FaceTable

__all__ = ["content_digest", "load_table"]


def load_table(settings: "DatasetConfig", *, seed: int, trains_models: bool) -> "FaceTable":
    """The dataset's table (no pixels read yet), subsampled and split.

    Returns
    -------
    FaceTable
        With a ``split`` column added (``"train"`` / ``"eval"``).

    Raises
    ------
    DataError
        If a file, column or value is not in an accepted form (the message names it).
    """
    from dataclasses import replace

    from generator.datasets.tables import identity_split, stratified_subsample

    faces = _read(settings)
    table = faces.table
    if faces.label_names and len(faces.label_names) < 2:
        raise DataError(f"dataset.label '{settings.task_label}': at least two classes are needed, "
                        f"got {list(faces.label_names)}")
    strata = (["label"] if faces.label_names else []) + list(faces.attributes)
    if settings.max_images is not None and len(table) > settings.max_images:
        table = stratified_subsample(table, strata, settings.max_images, seed)
    table = table.reset_index(drop=True)
    split = identity_split(table, settings.eval_fraction, seed) if trains_models else np.full(len(table), "eval")
    table = table.assign(split=split)
    if faces.label_names:
        table = table.assign(label_name=[faces.label_names[k] for k in table["label"]])
    return replace(faces, table=table)


def _read(settings: "DatasetConfig") -> "FaceTable":
    """Call the loader of ``settings.kind`` with the config's options."""
    kind, label, attributes = settings.kind, settings.task_label, settings.protected
    if kind == "fairface":
        from generator.datasets.fairface import load_fairface

        return load_fairface(settings.root, settings.annotations, label=label, attributes=attributes)
    if kind == "celeba":
        from generator.datasets.celeba import load_celeba

        return load_celeba(settings.root, settings.annotations, label=label, attributes=attributes,
                           identity_file=settings.identity_file)
    if kind == "utkface":
        from generator.datasets.utkface import load_utkface

        return load_utkface(settings.root, label=label, attributes=attributes)
    if kind == "bfw":
        from generator.datasets.bfw import load_bfw

        return load_bfw(settings.root, label=label, attributes=attributes)
    if kind == "csv":
        from generator.datasets.csv_table import load_csv

        return load_csv(settings.annotations, settings.root, image_column=settings.image_column,
                        label_column=label, attributes=attributes, identity_column=settings.identity_column,
                        label_values=settings.label_values)
    raise DataError(f"dataset.kind '{kind}' is not read from files")


def content_digest(root: Path, paths: pd.Series) -> str:
    """SHA-256 over the relative paths and bytes of the listed files (missing files count as such)."""
    digest = hashlib.sha256()
    for relative in paths:
        path = Path(root) / relative
        digest.update(relative.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()[:16]
