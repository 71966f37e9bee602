"""Landmarks on real photographs (dlib, offline), alignment with them, and the regions placed from them.

The photographs are the public-domain portraits and LFW crops the real-model demo uses
(:mod:`generator.datasets.sample_faces`), shipped by scikit-image and matplotlib.
"""
from __future__ import annotations

import numpy as np
import pytest

from generator.analysis.alignment import PHOTO_LANDMARKS, alignment_transforms
from generator.analysis.regions import LANDMARK_REGIONS, landmark_regions
from generator.datasets.landmarks import detect_landmarks
from generator.datasets.sample_faces import sample_faces
from generator.errors import DataError


@pytest.fixture(scope="module")
def photographs():
    images, table = sample_faces(64)
    landmarks, report = detect_landmarks(images)
    return images, table, landmarks, report


def test_faces_are_found_on_the_demo_photographs(photographs):
    images, table, landmarks, report = photographs
    found = report["reason"] == ""
    assert len(report) == len(images) == 102
    assert found.mean() >= 0.95, report[~found]  # 98 to 100 of 102 found at 32 to 128 px (measured)
    assert (report.loc[found, "faces_found"] >= 1).all() and report.loc[found, "score"].notna().all()
    assert np.isnan(landmarks[~found.to_numpy()]).all()
    assert set(report.loc[~found, "reason"]) <= {"no face found by the detector"}


def test_landmarks_are_where_a_face_has_them(photographs):
    images, _, landmarks, report = photographs
    found = (report["reason"] == "").to_numpy()
    points = landmarks[found].astype(np.float64)
    left, right, nose = points[:, 0], points[:, 1], points[:, 2]
    distance = np.hypot(*(right - left).T)
    assert (left[:, 0] < right[:, 0]).all()  # image left first
    assert np.isnan(points[:, 3:]).all()  # the 5-point model does not locate the mouth
    # the crops frame the face: eyes about a third of the side apart, in the upper part, the nose below them
    assert np.median(distance / 64) == pytest.approx(0.35, abs=0.07)
    assert np.median((left[:, 1] + right[:, 1]) / 2 / 64) == pytest.approx(0.42, abs=0.1)
    below = nose[:, 1] - (left[:, 1] + right[:, 1]) / 2
    assert (below > 0.3 * distance).mean() > 0.95
    # the astronaut portrait (the first image): both eyes inside the middle of the crop
    assert 16 < landmarks[0, 0, 0] < landmarks[0, 1, 0] < 48


def test_photographs_align_to_the_photo_template(photographs):
    images, _, landmarks, report = photographs
    transforms, fit = alignment_transforms(landmarks, 64, template=PHOTO_LANDMARKS)
    found = (report["reason"] == "").to_numpy()
    assert not fit.loc[~found, "aligned"].any()
    assert (fit.loc[~found, "reason"] == "missing landmarks (NaN)").all()
    assert fit.loc[found, "aligned"].mean() > 0.9
    assert fit.loc[fit["aligned"], "residual_px"].median() < 2.0


def test_regions_from_five_points_without_a_mouth(photographs):
    _, _, landmarks, report = photographs
    masks = landmark_regions(landmarks, (64, 64))
    found = (report["reason"] == "").to_numpy()
    assert (masks[~found] == 0).all()  # no face, no regions
    ids = {name: LANDMARK_REGIONS.index(name) for name in LANDMARK_REGIONS}
    for k in np.flatnonzero(found)[:20]:
        rows = {name: np.nonzero(masks[k] == i)[0] for name, i in ids.items() if name != "background"}
        assert all(len(r) for r in rows.values()), k
        # top to bottom: forehead, brows, eyes, nose, mouth, chin
        order = [np.median(rows[n]) for n in ("forehead", "brows", "eyes", "nose", "mouth", "chin")]
        assert order == sorted(order), (k, order)


def test_a_blank_image_has_no_face_and_bad_input_is_refused():
    blank = np.full((2, 40, 40, 3), 128, dtype=np.uint8)
    landmarks, report = detect_landmarks(blank)
    assert np.isnan(landmarks).all() and list(report["reason"]) == ["no face found by the detector"] * 2
    with pytest.raises(DataError, match="uint8"):
        detect_landmarks(blank.astype(np.float32))


def test_detected_landmarks_match_the_synthetic_faces_ground_truth():
    """On the synthetic faces, whose landmarks are known, the detector finds most and puts the eyes within a pixel."""
    from generator.datasets.synthetic import SyntheticParams, generate

    faces = generate(SyntheticParams(image_size=64, images_per_identity=10,
                                     identities={"train_fair": 0, "train_biased": 0, "eval": 8}), seed=5)
    landmarks, report = detect_landmarks(faces.images)
    found = (report["reason"] == "").to_numpy()
    assert found.mean() > 0.5  # 112 of 160 at seed 5 with 16 identities (measured); cartoon faces are harder
    error = np.abs(landmarks[found, :2] - faces.landmarks[found, :2])
    assert np.median(error) < 1.0 and np.percentile(error, 90) < 2.5  # eye centres, pixels
    # the third point is the base of the nose, just below the synthetic nose tip
    below = landmarks[found, 2, 1] - faces.landmarks[found, 2, 1]
    assert 0.0 < np.median(below) < 3.0
