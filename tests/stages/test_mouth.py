"""Mouth-only blending: only pixels inside the mouth region change, in every stage that pastes a face."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from lipsync_core.face.detectors.anime import MOUTH
from lipsync_core.stages.base import Batch
from lipsync_core.stages.blend import BlendStage, MouthMask
from lipsync_core.stages.masks import Ellipse, ellipse_weight, mouth_ellipse
from lipsync_core.stages.restore import Sharpen
from lipsync_core.support.errors import LipsyncError
from tests.conftest import shared_media
from tests.stages.test_restore import codeformer, scene_batch, stage  # noqa: F401 (fixture)

BOX = (60, 300, 80, 300)


def real_frame() -> np.ndarray:
    path = shared_media("talking_head_man_vrt2.mp4")
    if path is None:
        pytest.skip("needs ../shared/media/talking_head_man_vrt2.mp4 (a real face)")
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    assert ok
    return cv2.resize(frame, (422, 422), interpolation=cv2.INTER_AREA)


def batch_with(frame: np.ndarray, landmarks=None) -> Batch:
    b = Batch(indices=[0], frames=[frame.copy()], boxes=[BOX], mels=np.zeros((1, 80, 16), np.float32),
              landmarks=landmarks)
    b.pred = np.ones((1, 96, 96, 3), np.float32)  # a white face: every pasted pixel shows
    return b


def region(ellipse: Ellipse, shape) -> np.ndarray:
    """(H, W) bool: pixels whose centre lies inside the ellipse."""
    h, w = shape[:2]
    return ellipse_weight(ellipse, (0, 0, w, h), hard=True) > 0.5


@pytest.mark.parametrize("mode", ["feather", "hard"])
def test_only_pixels_inside_the_mouth_region_change(mode):
    frame = real_frame()
    b = batch_with(frame)
    mouth = MouthMask(hard=mode == "hard")
    mouth(b)
    BlendStage(mode, hard_masked=True)(b)
    ellipse = mouth_ellipse(BOX)
    inside = region(ellipse, frame.shape)
    assert np.array_equal(b.frames[0][~inside], frame[~inside])
    centre = tuple(int(v) for v in ellipse.centre)
    assert np.all(b.frames[0][centre[1], centre[0]] == 255)
    if mode == "hard":  # no feathering: the whole region is the pasted face
        assert np.all(b.frames[0][inside] == 255)
    else:  # feathered: the edge keeps most of the source
        changed = np.any(b.frames[0] != frame, axis=2)
        assert changed.sum() < inside.sum()


def test_the_mouth_region_intersects_a_segmentation_mask():
    frame = real_frame()
    b = batch_with(frame)
    t, bo, l, r = BOX
    seg = np.zeros((bo - t, r - l), np.float32)
    seg[:, : (r - l) // 2] = 1.0  # the left half of the box only
    b.masks = [seg]
    MouthMask()(b)
    BlendStage("feather")(b)
    changed = np.any(b.frames[0] != frame, axis=2)
    assert changed.any()
    assert not changed[:, l + (r - l) // 2:].any()  # the right half of the mouth region kept the source
    assert not changed[~region(mouth_ellipse(BOX), frame.shape)].any()


def test_the_region_follows_landmarks_the_detectors_placement_and_the_scale():
    lm = np.array([[150, 140], [230, 140], [190, 190], [160, 240], [220, 240]], np.float32)
    e = mouth_ellipse(BOX, lm)
    assert e.centre == pytest.approx((190, 246)) and e.axes == pytest.approx((51, 30))
    anime = mouth_ellipse(BOX, None, MOUTH, scale=2.0)
    t, b, l, r = BOX
    assert anime.centre == pytest.approx((l + MOUTH.cx * (r - l), t + MOUTH.cy * (b - t)))
    assert anime.axes == pytest.approx((2 * MOUTH.ax * (r - l), 2 * MOUTH.ay * (b - t)))
    batch = batch_with(np.zeros((422, 422, 3), np.uint8), landmarks=[lm])
    MouthMask(placement=MOUTH, use_landmarks=False)(batch)  # landmarks made up from the box: placement wins
    expected = ellipse_weight(mouth_ellipse(BOX, None, MOUTH), (l, t, r, b))
    assert np.array_equal(batch.masks[0], expected)


def test_a_mouth_scale_out_of_range_is_a_one_line_error():
    with pytest.raises(LipsyncError, match="--mouth_scale"):
        MouthMask(scale=0)


def test_feathered_weight_is_one_in_the_core_and_zero_at_the_edge():
    e = Ellipse((50.0, 40.0), (30.0, 20.0))
    w = ellipse_weight(e, (0, 0, 100, 80))
    assert w[40, 50] == 1.0 and w[40, 79] < 0.05 and w[40, 81] == 0.0 and w[40, 71] == 1.0  # 70 % of 30 = 21


def test_codeformer_pastes_back_only_through_the_mouth_region(codeformer):  # noqa: F811
    batch = scene_batch()
    original = batch.frames[0].copy()
    mouth = MouthMask()
    stage(codeformer, mouth=mouth)(batch)
    inside = region(mouth_ellipse(batch.boxes[0], batch.landmarks[0]), original.shape)
    changed = np.any(batch.frames[0] != original, axis=2)
    assert changed.any() and not changed[~inside].any()


def test_sharpening_uses_the_detectors_mouth_placement():
    frame = real_frame()
    b = batch_with(frame)
    Sharpen(2.0, mouth=MouthMask(placement=MOUTH))(b)
    e = mouth_ellipse(BOX, None, MOUTH)
    changed = np.any(b.frames[0] != frame, axis=2)
    assert changed.any() and not changed[~region(e, frame.shape)].any()
