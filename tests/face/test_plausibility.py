"""Plausibility warnings: false tracks are flagged, real faces and the anime detector on Eileen are not."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from lipsync_core.face.detectors.anime import AnimeFaceDetector
from lipsync_core.face.detectors.haar import HaarDetector
from lipsync_core.face.plausibility import MotionSampler, check_track, hint
from lipsync_core.face.track import DetectionOptions, detect_track
from lipsync_core.face.types import FaceTrack
from lipsync_core.media.face_video import detection_scale, detection_size
from tests.conftest import shared_media
from tests.face.anime_media import EILEEN, SITA, anime_path, cascade, frames

REAL_TALKING_HEADS = ("talking_head_man_vrt2.mp4", "talking_head_woman_vrt4.mp4", "talking_head_glasses_vrt5.mp4",
                      "talking_head_vfr_vrt1.mp4", "face_noface_cutaway_7s.mp4",
                      "beard_man_portrait_latentsync_demo2_10s.mp4")


def pass1(clip: list[np.ndarray], detector, fps: float = 25.0, det_size: int = 360):
    """The raw track and the sampler, as pass 1 makes them (det_size frames, default stride)."""
    h, w = clip[0].shape[:2]
    s = detection_scale((w, h), det_size)
    small = (cv2.resize(f, detection_size((w, h), det_size), interpolation=cv2.INTER_AREA) if s < 1 else f
             for f in clip)
    sampler = MotionSampler()
    raw = detect_track(sampler.watch(small), detector, DetectionOptions(det_size=det_size), scale=s,
                       frame_size=(w, h), fps=fps)
    return raw, sampler


def real_clip(name: str, max_frames: int = 125) -> tuple[list[np.ndarray], float]:
    """The first 5 s (the cutaway clip's face, cut, coffee, cut and face again) of a real clip."""
    path = shared_media(name)
    if path is None:
        pytest.skip(f"needs ../shared/media/{name}")
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    out = []
    while len(out) < max_frames:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
    return out, fps


def test_haars_track_on_sita_is_flagged_with_a_hint():
    raw, sampler = pass1(frames(SITA), HaarDetector())
    assert raw.any_face  # Haar does give boxes on the cartoon (over her whole upper body)
    found = check_track(raw, sampler)
    assert found, "Haar's false track on Sita was not flagged"
    line = found[0].message(hint("haar"))
    assert "--detector anime" in line and "--track_box" in line and " s" in line and "\n" not in line


def test_the_raw_cascades_navel_box_on_sita_is_flagged_as_too_low():
    data = json.loads(anime_path("detections.json").read_text())
    boxes = [(y, y + h, x, x + w) for x, y, w, h in data["clips"][SITA]["haar"]["boxes"]]
    sampler = MotionSampler()
    for f in frames(SITA):
        sampler.add(f)
    found = check_track(FaceTrack(boxes, 25.0, (512, 512)), sampler)
    assert [s.kind for s in found] == ["low"] and found[0].ranges == [(0.0, 4.0)]


def test_the_anime_detector_on_eileen_raises_no_warning():
    raw, sampler = pass1(frames(EILEEN), AnimeFaceDetector(cascade()))
    assert raw.any_face and check_track(raw, sampler) == []


@pytest.mark.parametrize("name", REAL_TALKING_HEADS)
def test_no_false_alarm_on_a_real_talking_head(name):
    clip, fps = real_clip(name)
    raw, sampler = pass1(clip, HaarDetector(), fps=fps)
    assert raw.any_face and check_track(raw, sampler) == []


def test_a_fixed_box_on_a_moving_clip_is_flagged_static():
    clip = frames(EILEEN)  # zooms and pans: the face moves, a fixed box does not follow
    sampler = MotionSampler()
    for f in clip:
        sampler.add(f)
    found = check_track(FaceTrack.constant((60, 340, 80, 340), len(clip), 25.0, (400, 480)), sampler)
    assert [s.kind for s in found] == ["static"]


def test_a_box_jumping_between_two_places_is_flagged_at_the_jump():
    boxes = [(10, 60, 10, 60)] * 10 + [(100, 150, 150, 200)] * 10
    [found] = check_track(FaceTrack(boxes, 25.0, (320, 240)))
    assert found.kind == "jump" and found.ranges == [(0.4, 0.44)]


def test_a_face_that_vanishes_without_a_cut_is_flagged_but_one_gone_at_a_cut_is_not():
    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    other = 255 - scene
    box = (20, 80, 40, 100)
    same = MotionSampler()
    for _ in range(40):
        same.add(scene)
    flicker = [box if i % 4 else None for i in range(40)]
    assert [s.kind for s in check_track(FaceTrack(flicker, 25.0, (160, 120)), same)] == ["dropout"]
    cut = MotionSampler()
    for i in range(40):
        cut.add(other if 10 <= i < 30 else scene)  # a cutaway on frames 10-29
    gone = [None if 10 <= i < 30 else box for i in range(40)]
    assert check_track(FaceTrack(gone, 25.0, (160, 120)), cut) == []
