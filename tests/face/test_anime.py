"""The anime face detector: the LBP cascade on the shared 2D-animation media, its box mapping, its file checks."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from lipsync_core import models
from lipsync_core.face.detectors.anime import FACE_IN_CASCADE, AnimeFaceDetector, face_box
from lipsync_core.face.track import DetectionOptions, build_track
from lipsync_core.media.face_video import detection_scale, detection_size
from lipsync_core.models.cascade import load_cascade
from lipsync_core.support.errors import LipsyncError
from tests.face.anime_media import EILEEN, FPS, SITA, anime_path, cascade, face_region, frames, on_face


def detect_clip(name: str, det_size: int | None = 360):
    clip = frames(name)
    h, w = clip[0].shape[:2]
    s = detection_scale((w, h), det_size)
    small = [cv2.resize(f, detection_size((w, h), det_size), interpolation=cv2.INTER_AREA) if s < 1 else f
             for f in clip]
    return build_track(small, AnimeFaceDetector(cascade()), DetectionOptions(detector="anime", det_size=det_size or 0),
                       scale=s, frame_size=(w, h), fps=FPS)


def test_eileen_is_found_on_every_frame_inside_her_face_region():
    track = detect_clip(EILEEN)
    region = face_region("eileen")
    assert track.n_frames == 100
    assert all(b is not None and on_face(b, region) for b in track.boxes)


def test_sita_is_not_found_and_nothing_else_is_taken_for_her():
    assert not detect_clip(SITA).any_face


def test_the_eileen_still_gives_one_face_box_from_eyes_to_chin():
    rgba = cv2.imread(str(anime_path("eileen_happy_renpy.png")), cv2.IMREAD_UNCHANGED)
    alpha = rgba[..., 3:].astype(np.float32) / 255
    still = (rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)  # over white, as the README measured
    [det] = AnimeFaceDetector(cascade()).detect([still])[0]
    x1, y1, x2, y2 = det.box
    # animeface's landmarks on this still (detections.json): mouth centre (158, 224.5), chin y 246.
    assert y1 < 150 < 224.5 < y2 and 246 <= y2 <= 265  # eyes (y ~ 150) above, chin just inside the bottom
    assert (224.5 - y1) / (y2 - y1) == pytest.approx(0.74, abs=0.04)  # the mouth where Wav2Lip expects it
    assert x1 < 158 < x2


def test_face_box_cuts_the_cascade_box_by_the_measured_fractions():
    t, b, l, r = FACE_IN_CASCADE
    expected = [10 + 100 * l, 20 + 100 * t, 10 + 100 * r, 20 + 100 * b]
    assert face_box(10, 20, 100, 100).tolist() == pytest.approx(expected)


def test_a_frame_without_a_face_gives_no_detection():
    flat = np.full((240, 320, 3), 128, np.uint8)
    assert AnimeFaceDetector(cascade()).detect([flat]) == [[]]


@pytest.mark.parametrize("content, what", [(b"", "empty"), (b"<html>not found</html>", "not an XML file"),
                                           (b'<?xml version="1.0"?>\n<opencv_storage><a>1</a></opencv_storage>',
                                            "not a readable OpenCV cascade")])
def test_a_bad_cascade_file_is_a_one_line_error(tmp_path, content, what):
    bad = tmp_path / "cascade.xml"
    bad.write_bytes(content)
    with pytest.raises(LipsyncError, match=what) as info:
        AnimeFaceDetector(bad)
    assert "\n" not in str(info.value)


def test_a_truncated_download_fails_the_weights_validator(tmp_path):
    cut = tmp_path / "lbpcascade_animeface.xml"
    cut.write_bytes(cascade().read_bytes()[:100_000])
    check = models.validator("opencv_cascade")
    check(cascade())  # the real file passes
    with pytest.raises(LipsyncError, match="delete it and download it again"):
        check(cut)


def test_a_missing_cascade_file_names_the_path(tmp_path):
    with pytest.raises(LipsyncError, match="cascade file not found"):
        load_cascade(tmp_path / "nope.xml")
