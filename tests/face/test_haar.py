"""Haar detector: OpenCV's bundled cascade, boxes extended down to S3FD-like boxes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from lipsync_core.face.detectors import haar
from lipsync_core.face.detectors.haar import CHIN_EXTENSION, HaarDetector
from lipsync_core.support.errors import LipsyncError
from tests.conftest import shared_media


def real_frame(name: str) -> np.ndarray:
    path = shared_media(name)
    if path is None:
        pytest.skip(f"needs a real face ({name} in ../shared/media); a drawn face does not trigger Haar reliably")
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def test_finds_the_face_on_a_real_photo_with_the_chin_extension():
    frame = real_frame("still_real_face.png")  # 256x256; the cascade alone finds x=45 y=62 163x163
    [[det]] = HaarDetector().detect([frame])
    x1, y1, x2, y2 = det.box
    assert (x1, y1, x2) == pytest.approx((45, 62, 208), abs=4)
    assert y2 - y1 == pytest.approx((x2 - x1) * (1 + CHIN_EXTENSION), abs=1)


def test_a_nested_false_positive_inside_the_face_is_dropped():
    frame = real_frame("talking_head_glasses_vrt5.mp4")  # the raw cascade also fires on one eye here
    dets = HaarDetector().detect([frame])[0]
    assert len(dets) == 1
    assert dets[0].box[2] - dets[0].box[0] > 200


def test_a_frame_without_a_face_gives_no_detection():
    flat = np.full((240, 320, 3), 128, np.uint8)
    assert HaarDetector().detect([flat, flat]) == [[], []]


def test_missing_cascade_is_a_one_line_error_naming_opencv_below_5(monkeypatch, tmp_path):
    monkeypatch.setattr(haar.cv2.data, "haarcascades", str(tmp_path) + "/")
    with pytest.raises(LipsyncError, match="opencv-python-headless<5"):
        HaarDetector()
