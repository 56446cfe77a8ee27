"""5-point similarity alignment to the FFHQ 512 template, its inverse, and pasting a face back."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from lipsync_core.face.align import (
    FFHQ_TEMPLATE_512,
    estimate_affine,
    face_region,
    face_template,
    inverse_affine,
    paste_back,
    warp_face,
)
from lipsync_core.testing.media import draw_face
from tests.conftest import shared_media

#: Landmarks of ../shared/media/still_real_face.png (256x256), marked by hand: eyes, nose tip, mouth corners.
STILL_LANDMARKS = np.array([[93, 121], [162, 120], [128, 160], [105, 188], [152, 187]], np.float32)


def similarity(scale: float, degrees: float, tx: float, ty: float) -> np.ndarray:
    a = math.radians(degrees)
    return np.array([[scale * math.cos(a), -scale * math.sin(a), tx], [scale * math.sin(a), scale * math.cos(a), ty]])


def apply(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ M[:, :2].T + M[:, 2]


def real_scene() -> tuple[np.ndarray, np.ndarray]:
    """A 360x480 frame holding the real still face turned and shrunk, and its landmarks (or a drawn face)."""
    path = shared_media("still_real_face.png")
    if path is None:
        face, lm = draw_face((256, 256), 0.0, 0.4), face_template(256)
    else:
        face, lm = cv2.imread(str(path)), STILL_LANDMARKS
    place = similarity(0.8, 12.0, 150.0, 60.0)
    frame = np.full((360, 480, 3), 90, np.uint8)
    cv2.warpAffine(face, place, (480, 360), dst=frame, borderMode=cv2.BORDER_TRANSPARENT)
    return frame, apply(place, lm.astype(np.float64)).astype(np.float32)


def test_template_is_the_ffhq_512_one_and_scales_with_size():
    assert FFHQ_TEMPLATE_512[0] == pytest.approx([192.98138, 239.94708])
    np.testing.assert_allclose(face_template(256), FFHQ_TEMPLATE_512 / 2)


def test_exact_similarity_is_recovered():
    true = similarity(2.3, -17.0, 40.0, -85.0)
    landmarks = apply(inverse_affine(true), FFHQ_TEMPLATE_512)
    np.testing.assert_allclose(estimate_affine(landmarks, FFHQ_TEMPLATE_512), true, atol=1e-9)


def test_noisy_fit_is_the_least_squares_optimum():
    rng = np.random.default_rng(3)
    landmarks = apply(similarity(0.5, 8.0, 100.0, 30.0), FFHQ_TEMPLATE_512) + rng.normal(0, 2.0, (5, 2))
    M = estimate_affine(landmarks, FFHQ_TEMPLATE_512)
    residual = np.sum((apply(M, landmarks) - FFHQ_TEMPLATE_512) ** 2)
    for eps in ([1e-3, 0, 0], [0, 1e-3, 0], [0, 0, 1e-2]):  # perturb scale·cos, scale·sin, tx: never better
        p = M.copy()
        p[0] += eps
        p[1] += [-eps[1], eps[0], eps[2]]
        assert np.sum((apply(p, landmarks) - FFHQ_TEMPLATE_512) ** 2) > residual
    assert np.isclose(M[0, 0], M[1, 1]) and np.isclose(M[0, 1], -M[1, 0])  # a similarity, no shear or reflection


def test_degenerate_landmarks_are_rejected():
    with pytest.raises(ValueError, match="degenerate"):
        estimate_affine(np.ones((5, 2)), FFHQ_TEMPLATE_512)


def test_aligned_face_puts_landmarks_on_the_template():
    frame, landmarks = real_scene()
    M = estimate_affine(landmarks, face_template(512))
    face = warp_face(frame, M, 512)
    assert face.shape == (512, 512, 3)
    aligned = apply(M, landmarks.astype(np.float64))
    np.testing.assert_allclose(aligned.mean(0), face_template(512).mean(0), atol=1e-6)  # centroids coincide
    assert np.abs(aligned - face_template(512)).max() < 12.0  # a real face fits the template to ~2% of its size


def test_align_then_paste_back_recovers_the_face_region():
    frame, landmarks = real_scene()
    M = estimate_affine(landmarks, face_template(512))
    out = paste_back(frame.copy(), warp_face(frame, M, 512), M, np.ones((512, 512), np.float32))
    inside = cv2.erode(cv2.warpAffine(np.ones((512, 512), np.uint8), inverse_affine(M), (480, 360)), np.ones((5, 5)))
    err = np.abs(out.astype(int) - frame.astype(int))[inside > 0]
    assert inside.sum() > 20000
    assert err.mean() < 1.0 and np.percentile(err, 99) <= 6


def test_paste_back_changes_nothing_outside_the_face_region():
    frame, landmarks = real_scene()
    M = estimate_affine(landmarks, face_template(512))
    out = paste_back(frame.copy(), np.full((512, 512, 3), 255, np.uint8), M, np.ones((512, 512), np.float32))
    x0, y0, x1, y1 = face_region(M, 512, frame.shape)
    outside = np.ones(frame.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(out[outside], frame[outside])
    assert (out[y0:y1, x0:x1] != frame[y0:y1, x0:x1]).any()
    square = cv2.warpAffine(np.ones((512, 512), np.uint8), inverse_affine(M), (480, 360))
    beyond = cv2.dilate(square, np.ones((3, 3))) == 0  # one pixel past the warped square's edge
    assert np.array_equal(out[beyond], frame[beyond])


def test_paste_back_keeps_pixels_where_the_mask_is_zero():
    frame, landmarks = real_scene()
    M = estimate_affine(landmarks, face_template(512))
    mask = np.zeros((512, 512), np.float32)
    mask[300:420, 150:360] = 1.0  # mouth area only
    out = paste_back(frame.copy(), np.zeros((512, 512, 3), np.uint8), M, mask)
    eyes = apply(inverse_affine(M), face_template(512)[:2]).round().astype(int)
    for x, y in eyes:
        assert np.array_equal(out[y, x], frame[y, x])
    mouth = apply(inverse_affine(M), np.array([[256.0, 360.0]])).round().astype(int)[0]
    assert out[mouth[1], mouth[0]].max() == 0


def test_face_entirely_outside_the_frame_changes_nothing():
    frame = np.full((100, 100, 3), 7, np.uint8)
    M = np.array([[1.0, 0.0, 2000.0], [0.0, 1.0, 0.0]])  # frame pixel (x, y) -> face pixel (x + 2000, y)
    out = paste_back(frame.copy(), np.zeros((64, 64, 3), np.uint8), M, np.ones((64, 64), np.float32))
    assert face_region(M, 64, frame.shape) is None
    assert np.array_equal(out, frame)


def test_landmarks_from_a_box_align_the_face_like_the_template():
    from lipsync_core.face.align import landmarks_from_box

    box = (150, 440, 130, 382)  # the detector box of the template face itself, in 512-pixel template space
    lm = landmarks_from_box(box)
    assert lm.shape == (5, 2) and lm.dtype == np.float32
    assert np.abs(lm - face_template(512)).max() < 8  # pixels of 512
    M = estimate_affine(landmarks_from_box((75, 220, 65, 191)), face_template(512))  # the same face at half size
    assert np.allclose(M[:, :2], [[2, 0], [0, 2]], atol=0.05)
