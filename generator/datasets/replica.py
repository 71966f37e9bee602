"""A stand-in for a real dataset at real scale: FairFace's published layout filled with real photographs.

Timing an audit at the scale users run it (thousands of 224-px faces, a ResNet) needs data in
the layout the loaders read, and nothing may be downloaded. :func:`write_fairface_replica`
writes FairFace's ``fairface-img-margin025-trainval/val/N.jpg`` files and
``fairface_label_val.csv`` from the 102 public-domain photographs of the real-model demo
(:mod:`generator.datasets.sample_faces`), each copy varied by a seeded random crop, flip and
brightness change, with race, age and gender assigned in turn so that every group of race x age
is filled. :func:`write_resnet18` saves a seeded, untrained torchvision ResNet-18 ``state_dict``.

What it is for: the cost of an audit (the network, the image size, the group structure and the
number of images are those of a real one). What it is not: the labels are not the faces' own and
the network is not trained, so the numbers such a build prints say nothing about FairFace.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from generator.errors import ConfigError

__all__ = ["write_fairface_replica", "write_resnet18"]

ROOT_NAME = "fairface-img-margin025-trainval"
LABELS_NAME = "fairface_label_val.csv"


def write_fairface_replica(folder: Path, *, images: int = 2000, size: int = 224, seed: int = 0) -> tuple[Path, Path]:
    """Write ``images`` JPEG files of ``size`` px and their label table in FairFace's layout.

    Returns
    -------
    root, labels : Path
        The image root (``dataset.root``) and the label CSV (``dataset.annotations``).
    """
    from PIL import Image, ImageEnhance

    from generator.datasets.fairface import AGE_BINS, GENDERS, RACES
    from generator.datasets.sample_faces import sample_faces

    if not (isinstance(images, int) and images >= 1) or not (isinstance(size, int) and 32 <= size <= 1024):
        raise ConfigError(f"images = {images!r} and size = {size!r}: use at least 1 image of 32 to 1024 px")
    photos, _ = sample_faces(size + size // 8)
    rng = np.random.default_rng(seed)
    root = Path(folder) / ROOT_NAME
    (root / "val").mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(images):
        photo = Image.fromarray(photos[k % len(photos)])
        left, top = (int(v) for v in rng.integers(0, size // 8 + 1, size=2))
        copy = photo.crop((left, top, left + size, top + size))
        if rng.random() < 0.5:
            copy = copy.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        copy = ImageEnhance.Brightness(copy).enhance(float(rng.uniform(0.8, 1.2)))
        name = f"val/{k + 1}.jpg"
        copy.save(root / name, quality=90)
        group = k // 2  # runs of two, so that the first images already fill race x age
        rows.append((name, AGE_BINS[group % len(AGE_BINS)], GENDERS[k % 2],
                     RACES[(group // len(AGE_BINS)) % len(RACES)], "True"))
    labels = Path(folder) / LABELS_NAME
    pd.DataFrame(rows, columns=["file", "age", "gender", "race", "service_test"]).to_csv(labels, index=False)
    return root, labels


def write_resnet18(path: Path, *, num_classes: int = 2, seed: int = 0) -> Path:
    """Save a seeded, untrained torchvision ResNet-18 ``state_dict`` (no weights are downloaded)."""
    import torch
    from torchvision.models import resnet18

    torch.manual_seed(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(resnet18(weights=None, num_classes=num_classes).state_dict(), path)
    return path
