"""Alignment to the landmark template: known transforms, round trips, reported failures."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_erosion
from skimage.transform import SimilarityTransform

from generator.analysis.alignment import (
    CANONICAL_LANDMARKS,
    alignment_transforms,
    majority_mask,
    template_pixels,
    unwarp,
    warp_to_template,
)
from generator.datasets.synthetic import REGIONS, SyntheticParams, generate
from generator.errors import DataError

SIZE = 64


@pytest.fixture(scope="module")
def faces():
    return generate(SyntheticParams(image_size=SIZE, identities={"eval": 3}, images_per_identity=10), seed=5)


@pytest.fixture(scope="module")
def fitted(faces):
    return alignment_transforms(faces.landmarks, SIZE)


def _interior(transforms, shape, size, margin=2):
    """Original pixels that stay inside the template frame (and away from both borders) by ``margin`` px."""
    ones = np.ones((len(transforms), *shape))
    inside = unwarp(warp_to_template(ones, transforms, size, order=0), transforms, shape, order=0) > 0.5
    return np.stack([binary_erosion(m, iterations=margin) for m in inside])


def test_known_similarity_is_recovered_exactly():
    truth = SimilarityTransform(scale=0.8, rotation=np.deg2rad(12), translation=(5.0, -3.0))
    target = template_pixels(SIZE)
    landmarks = truth.inverse(target)[None]  # an image whose landmarks are the template moved by `truth`^-1
    transforms, report = alignment_transforms(landmarks, SIZE)
    np.testing.assert_allclose(transforms[0].params, truth.params, atol=1e-9)
    assert report.loc[0, "residual_px"] < 1e-9 and report.loc[0, "aligned"] and report.loc[0, "reason"] == ""


def test_synthetic_landmarks_land_on_template(faces, fitted):
    """Residuals come only from identity geometry (eye distance vs mouth width): RMS <= 1.5 px on average."""
    transforms, report = fitted
    assert report["aligned"].all()
    assert report["residual_px"].mean() <= 1.5
    mapped = np.stack([t(p) for t, p in zip(transforms, faces.landmarks)])
    rms = np.sqrt(((mapped - template_pixels(SIZE)) ** 2).sum(-1).mean(-1))
    np.testing.assert_allclose(rms, report["residual_px"], atol=1e-9)


def test_warp_moves_a_landmark_to_its_aligned_position(faces, fitted):
    """A bright dot at the left-eye landmark lands where the transform sends the landmark (1 px)."""
    transforms, _ = fitted
    x, y = faces.landmarks[0, 0]
    yy, xx = np.mgrid[:SIZE, :SIZE]
    dot = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5 ** 2))[None]
    aligned = warp_to_template(dot, transforms[:1], SIZE)[0]
    peak = np.unravel_index(np.argmax(aligned), aligned.shape)
    expected = transforms[0]([[x, y]])[0]
    assert np.hypot(peak[1] - expected[0], peak[0] - expected[1]) <= 1.0
    assert np.hypot(*(expected - template_pixels(SIZE)[0])) <= 3.0


def test_round_trip_smooth_map_and_face(faces, fitted):
    """Interior pixels (>= 2 px inside both frames): smooth map within 2 % of its peak; face image
    within 8 grey levels on average (bilinear resampling twice blurs the sharp part edges)."""
    transforms, _ = fitted
    k = slice(0, 6)
    inside = _interior(transforms[k], (SIZE, SIZE), SIZE)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    smooth = np.repeat(np.exp(-((xx - 30) ** 2 + (yy - 28) ** 2) / (2 * 8.0 ** 2))[None], 6, axis=0)
    back = unwarp(warp_to_template(smooth, transforms[k], SIZE), transforms[k], (SIZE, SIZE))
    assert np.abs(back - smooth)[inside].max() < 0.02
    images = faces.images[k].astype(np.float64)
    back = unwarp(warp_to_template(images, transforms[k], SIZE), transforms[k], (SIZE, SIZE))
    error = np.abs(back - images)[inside]
    assert error.mean() < 8.0 and np.median(error) < 4.0
    masks = faces.masks[k]
    back = unwarp(warp_to_template(masks, transforms[k], SIZE, order=0), transforms[k], (SIZE, SIZE), order=0)
    assert (back == masks)[inside].mean() > 0.97


def test_failures_are_reported_not_dropped(faces):
    landmarks = faces.landmarks[:4].copy()
    landmarks[1, 2] = np.nan                      # missing nose
    landmarks[2] = landmarks[2, 0]                # all five at one point
    landmarks[3, 0] += [0.0, 25.0]                # left eye detected on the cheek
    transforms, report = alignment_transforms(landmarks, SIZE)
    assert len(report) == 4 and list(report["aligned"]) == [True, False, False, False]
    assert report.loc[1, "reason"] == "missing landmarks (NaN)"
    assert report.loc[2, "reason"] == "degenerate landmarks"
    assert report.loc[3, "reason"].startswith("residual") and "> 4.0 px" in report.loc[3, "reason"]
    assert transforms[1] is None and transforms[3] is None
    aligned = warp_to_template(faces.images[:4], transforms, SIZE)
    assert aligned.shape == (4, SIZE, SIZE, 3)
    assert np.isnan(aligned[1:]).all() and np.isfinite(aligned[0]).all()


def test_missing_mouth_corners_are_left_out_of_the_fit(faces, fitted):
    """dlib's 5-point model gives no mouth: eyes and nose alone fix the same transform on an exact face."""
    transforms, _ = fitted
    truth = transforms[0]
    source = np.linalg.inv(truth.params)  # a face whose landmarks sit exactly where the template maps back
    points = np.c_[template_pixels(SIZE), np.ones(5)] @ source.T
    landmarks = points[None, :, :2].copy()
    landmarks[0, 3:] = np.nan
    found, report = alignment_transforms(landmarks, SIZE)
    assert bool(report.loc[0, "aligned"]) and report.loc[0, "residual_px"] < 1e-6
    assert np.allclose(found[0].params, truth.params, atol=1e-6)


def test_majority_mask_is_a_face(faces, fitted):
    transforms, _ = fitted
    aligned = warp_to_template(faces.masks, transforms, SIZE, order=0)
    aligned[0] = np.nan  # a not-aligned image is ignored
    prototype = majority_mask(aligned, len(REGIONS))
    eyes = template_pixels(SIZE)[:2].round().astype(int)
    assert all(prototype[y, x] == REGIONS.index("eyes") for x, y in eyes)
    assert prototype[0, SIZE // 2] in (REGIONS.index("background"), REGIONS.index("hair"))


def test_bad_input_is_refused():
    with pytest.raises(DataError, match=r"\(N, 5, 2\)"):
        alignment_transforms(np.zeros((2, 4, 2)), SIZE)
    with pytest.raises(DataError, match="transforms"):
        warp_to_template(np.zeros((2, 8, 8)), [None], SIZE)
    assert CANONICAL_LANDMARKS.shape == (5, 2) and (CANONICAL_LANDMARKS[:2, 1] == CANONICAL_LANDMARKS[0, 1]).all()
