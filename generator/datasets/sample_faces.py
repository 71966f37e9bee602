"""Real face photographs that ship with installed packages, for the real-model demo.

No download and nothing in git: scikit-image ships the ``astronaut`` portrait
(Eileen Collins, NASA, public domain) and ``lfw_subset()`` (100 greyscale 25x25 face
crops from Labeled Faces in the Wild, followed by 100 non-face patches); matplotlib
ships ``grace_hopper.jpg`` (US Navy, public domain). The two portraits are cropped
around the face OpenCV's Haar cascade finds (with a 20 % margin, like dlib's chips);
the LFW crops are already faces and are only turned into RGB and resized.

These images carry **no demographic labels**: they demonstrate how explanation
methods behave on a real network; they cannot support a bias audit.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from generator.errors import DataError

__all__ = ["sample_faces"]

PORTRAIT_MARGIN = 0.2


def sample_faces(size: int, *, lfw_faces: int = 100) -> tuple[np.ndarray, pd.DataFrame]:
    """The demo faces resized to ``size`` x ``size``.

    Parameters
    ----------
    size
        Side of the square output images in pixels.
    lfw_faces
        How many of the 100 LFW face crops to include (0-100, in the package's order).

    Returns
    -------
    images : np.ndarray
        ``(N, size, size, 3)`` uint8 RGB.
    table : pd.DataFrame
        ``image_id``, ``identity`` (one per image: identities are unknown), ``source``
        (``"portrait"`` or ``"LFW subset"``), ``description``.
    """
    from PIL import Image

    if not 0 <= lfw_faces <= 100:
        raise DataError(f"lfw_faces must be between 0 and 100, got {lfw_faces}")
    crops, rows = [], []
    for image_id, description, photo in _portraits():
        crops.append(_face_crop(photo, image_id))
        rows.append((image_id, "portrait", description))
    for k, face in enumerate(_lfw()[:lfw_faces]):
        crops.append(np.repeat((face * 255).round().astype(np.uint8)[..., None], 3, axis=2))
        rows.append((f"lfw-{k:03d}", "LFW subset", f"Labeled Faces in the Wild crop {k} (greyscale, 25 x 25)"))
    images = np.stack([np.asarray(Image.fromarray(c).resize((size, size), Image.Resampling.BILINEAR))
                       for c in crops])
    table = pd.DataFrame(rows, columns=["image_id", "source", "description"])
    table.insert(1, "identity", table["image_id"])
    return images, table


def _portraits() -> list[tuple[str, str, np.ndarray]]:
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as hopper:
        hopper_rgb = np.asarray(hopper.convert("RGB"))
    return [("astronaut", "Eileen Collins, NASA portrait (scikit-image 'astronaut', public domain)",
             skimage.data.astronaut()),
            ("grace-hopper", "Grace Hopper, US Navy portrait (matplotlib sample data, public domain)", hopper_rgb)]


def _lfw() -> np.ndarray:
    import skimage.data

    return skimage.data.lfw_subset()[:100]  # the first 100 are faces, the rest are not


def _face_crop(photo: np.ndarray, name: str) -> np.ndarray:
    """The largest face OpenCV's frontal-face Haar cascade finds, with a margin, as a square crop."""
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    boxes = cascade.detectMultiScale(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), 1.1, 5, minSize=(60, 60))
    if len(boxes) == 0:
        raise DataError(f"no face found in the sample image '{name}'")
    x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
    pad = int(round(PORTRAIT_MARGIN * w))
    top, left = max(0, y - pad), max(0, x - pad)
    side = min(w + 2 * pad, photo.shape[0] - top, photo.shape[1] - left)
    return np.ascontiguousarray(photo[top:top + side, left:left + side])
