"""Face tracking: selection, following, stride + interpolation, cuts, pads, the original's smoothing."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from lipsync_core.face.smoothing import smooth_boxes
from lipsync_core.face.track import (
    DetectionOptions,
    build_track,
    detect_track,
    finalize_track,
    require_face,
)
from lipsync_core.face.types import Detection, FaceTrack
from lipsync_core.media.face_video import detection_size
from lipsync_core.support.errors import LipsyncError
from tests.conftest import shared_media

W, H = 160, 120
XYXY = tuple[float, float, float, float]
Scene = Callable[[int], list[XYXY]]  # frame index -> face boxes (x1, y1, x2, y2)


def render(scene: Scene, n: int, background: Callable[[int], int] = lambda i: 90) -> list[np.ndarray]:
    """Frames showing the scene's faces as bright rectangles, with the frame index stamped in pixel (0, 0)."""
    frames = []
    for i in range(n):
        f = np.full((H, W, 3), background(i), np.uint8)
        for x1, y1, x2, y2 in scene(i):
            f[int(y1):int(y2), int(x1):int(x2)] = 200
        f[0, 0] = (i % 256, i // 256, 0)
        frames.append(f)
    return frames


class ScriptedDetector:
    """Finds exactly the scene's faces (read back through the stamped index); records which frames it saw."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.seen: list[int] = []

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        out = []
        for f in frames:
            i = int(f[0, 0, 0]) + 256 * int(f[0, 0, 1])
            self.seen.append(i)
            out.append([Detection(np.array(b), 0.9) for b in self.scene(i)])
        return out


def raw_track(scene: Scene, n: int, background: Callable[[int], int] = lambda i: 90,
              **settings) -> tuple[FaceTrack, ScriptedDetector]:
    detector = ScriptedDetector(scene)
    track = detect_track(render(scene, n, background), detector, DetectionOptions(**settings),
                         frame_size=(W, H), fps=25.0)
    return track, detector


def tblr(box: XYXY) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = box
    return int(y1), int(y2), int(x1), int(x2)


# -- selection and following ---------------------------------------------------------------------------------


def test_the_largest_face_is_chosen_by_default():
    track, _ = raw_track(lambda i: [(10, 10, 40, 40), (80, 20, 140, 80)], 3, det_stride=1)
    assert track.boxes == [(20, 80, 80, 140)] * 3


def test_the_face_nearest_the_given_point_is_chosen():
    track, _ = raw_track(lambda i: [(10, 10, 40, 40), (80, 20, 140, 80)], 3, det_stride=1, face_point=(30, 30))
    assert track.boxes == [(10, 40, 10, 40)] * 3


def test_following_never_jumps_to_a_face_that_becomes_bigger():
    def scene(i: int) -> list[XYXY]:
        a = (10 + i, 30, 50 + i, 70)  # the chosen face drifts right
        grow = 45 if 10 <= i < 20 else 20  # the other face is bigger on frames 10-19
        return [a, (110 - i, 20, 110 - i + grow, 20 + grow)]

    track, _ = raw_track(scene, 30, det_stride=1)
    assert track.boxes == [tblr(scene(i)[0]) for i in range(30)]


def test_a_lost_face_is_not_replaced_by_another_person():
    def scene(i: int) -> list[XYXY]:
        return ([(20, 20, 70, 70)] if i < 5 else []) + [(110, 30, 140, 60)]

    track, _ = raw_track(scene, 10, det_stride=1)
    assert track.boxes[:5] == [(20, 70, 20, 70)] * 5
    assert track.boxes[5:] == [None] * 5


def test_a_face_that_moves_fast_is_kept_rather_than_swapped_for_a_bigger_bystander():
    def scene(i: int) -> list[XYXY]:
        x = 10 if i < 3 else 45  # the chosen face jumps past its own width; the bystander stays
        return [(x, 60, x + 30, 90), (100, 10, 150, 60)]

    track, _ = raw_track(scene, 6, det_stride=1, face_point=(20, 70))
    assert track.boxes == [tblr(scene(i)[0]) for i in range(6)]


def test_the_face_is_chosen_again_after_frames_without_any_face():
    def scene(i: int) -> list[XYXY]:
        if i < 5:
            return [(20, 20, 70, 70)]
        return [] if i < 8 else [(100, 30, 140, 70)]

    track, _ = raw_track(scene, 12, det_stride=1)
    assert track.boxes[5:8] == [None] * 3
    assert track.boxes[8:] == [(30, 70, 100, 140)] * 4


# -- stride, interpolation, cuts -------------------------------------------------------------------------------


def moving(i: int) -> list[XYXY]:
    x = 20 + 30 * np.sin(i / 30)
    return [(x, 30 + i / 4, x + 50, 90 + i / 4)]


def test_stride_detects_every_kth_frame_and_the_last():
    _, detector = raw_track(moving, 23, det_stride=5, face_det_batch_size=2)
    assert sorted(detector.seen) == [0, 5, 10, 15, 20, 22]


def test_stride_with_interpolation_matches_detection_on_every_frame_for_smooth_motion():
    every, _ = raw_track(moving, 60, det_stride=1)
    strided, _ = raw_track(moving, 60, det_stride=5, face_det_batch_size=3)
    diff = np.abs(np.array(every.boxes) - np.array(strided.boxes))
    assert diff.max() <= 2


def test_a_shot_cut_forces_detection_of_the_frames_around_it():
    def scene(i: int) -> list[XYXY]:
        return [(20, 20, 70, 70)] if i < 7 else [(90, 40, 140, 90)]

    track, detector = raw_track(scene, 16, background=lambda i: 40 if i < 7 else 220, det_stride=5)
    assert {5, 6, 7, 8, 9, 10} <= set(detector.seen)
    assert track.boxes == [tblr(scene(i)[0]) for i in range(16)]  # exact on both sides: nothing blended


def test_nothing_is_interpolated_across_a_frame_without_a_face():
    def scene(i: int) -> list[XYXY]:  # small face: its disappearance alone is no "cut"
        return [] if 5 <= i <= 7 else [(20 + 2 * i, 20, 50 + 2 * i, 50)]

    track, detector = raw_track(scene, 11, det_stride=5)
    assert set(range(11)) == set(detector.seen)  # both gaps touch the face-less stride frame 5
    assert track.boxes == [tblr(b[0]) if b else None for b in map(scene, range(11))]


def test_a_face_that_moves_far_between_two_detections_is_detected_in_between():
    def scene(i: int) -> list[XYXY]:  # a small face jumping right at frame 7: too small a change for a "cut"
        x = 20 if i < 7 else 70
        return [(x, 30, x + 20, 50)]

    track, detector = raw_track(scene, 11, det_stride=5)
    assert set(range(5, 11)) <= set(detector.seen)
    assert track.boxes == [tblr(scene(i)[0]) for i in range(11)]


def test_boxes_are_mapped_back_to_full_resolution():
    detector = ScriptedDetector(lambda i: [(10, 5, 30, 25)])
    track = detect_track(render(lambda i: [], 2), detector, DetectionOptions(det_stride=1), scale=0.25,
                         frame_size=(4 * W, 4 * H), fps=25.0)
    assert track.boxes == [(20, 100, 40, 120)] * 2 and track.frame_size == (4 * W, 4 * H)


def test_detection_size_keeps_the_aspect_and_never_upscales():
    assert detection_size((1280, 720), 320) == (320, 180)
    assert detection_size((640, 360), 1000) == (640, 360)
    assert detection_size((640, 360), None) == (640, 360)


def test_landmarks_are_interpolated_between_detections():
    class WithLandmarks(ScriptedDetector):
        def detect(self, frames):
            found = super().detect(frames)
            return [[Detection(d.box, d.score, np.tile(d.box[:2], (5, 1))) for d in ds] for ds in found]

    detector = WithLandmarks(lambda i: [(10 + 2 * i, 10, 50 + 2 * i, 50)])
    track = detect_track(render(detector.scene, 6), detector, DetectionOptions(det_stride=5), frame_size=(W, H),
                         fps=25.0)
    np.testing.assert_allclose(track.landmarks[2], np.tile([14, 10], (5, 1)), atol=1e-4)


# -- pads, smoothing, fixed box, errors ------------------------------------------------------------------------


def test_pads_are_added_and_clamped_to_the_frame():
    raw = FaceTrack(boxes=[(5, 100, 2, 150)], fps=25.0, frame_size=(W, H))
    out = finalize_track(raw, DetectionOptions(pads=(10, 30, 5, 20), nosmooth=True))
    assert out.boxes == [(0, H, 0, W)]


def test_a_box_outside_the_frame_becomes_no_face_rather_than_an_empty_crop():
    raw = FaceTrack(boxes=[(130, 180, 10, 50), (10, 50, 10, 50)], fps=25.0, frame_size=(W, H))
    out = finalize_track(raw, DetectionOptions(pads=(0, 0, 0, 0), nosmooth=True))
    assert out.boxes == [None, (10, 50, 10, 50)]


def test_smoothing_is_the_originals_forward_mean_truncated_to_int():
    coords = np.array([0, 1, 2, 3, 4, 10, 20])
    boxes = np.stack([coords, coords + 1, coords, coords], axis=1)
    # Rows 0-2: mean of rows i..i+4 -> 2, 4, 7.8 -> 7. Rows 3-6: mean of the last 5 rows as already updated:
    # [7,3,4,10,20] -> 8; [7,8,4,10,20] -> 9; [7,8,9,10,20] -> 10; [7,8,9,10,20] -> 10.
    assert smooth_boxes(boxes, 5)[:, 0].tolist() == [2, 4, 7, 8, 9, 10, 10]


def test_smoothing_never_crosses_a_frame_without_a_face():
    boxes = [(0, 50, 0, 50)] * 5 + [None] + [(60, 110, 60, 110)] * 5
    raw = FaceTrack(boxes=boxes, fps=25.0, frame_size=(W, H))
    assert finalize_track(raw, DetectionOptions(pads=(0, 0, 0, 0))).boxes == boxes


def test_landmarks_are_smoothed_with_a_centred_window():
    spike = [0, 0, 10, 0, 0]
    landmarks = [np.full((5, 2), v, np.float32) for v in spike]
    raw = FaceTrack(boxes=[(10, 40, 10, 40)] * 5, fps=25.0, frame_size=(W, H), landmarks=landmarks)
    out = finalize_track(raw, DetectionOptions())
    assert [round(float(lm[0, 0]), 3) for lm in out.landmarks] == [3.333, 2.5, 2.0, 2.5, 3.333]


def test_nosmooth_keeps_the_padded_boxes():
    boxes = [(10, 40, 10, 40), (20, 50, 20, 50), (10, 40, 10, 40)]
    raw = FaceTrack(boxes=boxes, fps=25.0, frame_size=(W, H))
    out = finalize_track(raw, DetectionOptions(nosmooth=True))
    assert out.boxes == [(t, b + 10, l, r) for t, b, l, r in boxes]


def test_a_fixed_box_gives_a_constant_track_without_detection():
    track = build_track(render(lambda i: [], 7), None, DetectionOptions(box=(10, 60, 20, 90)),
                        frame_size=(W, H), fps=30.0)
    assert track.boxes == [(10, 60, 20, 90)] * 7 and track.fps == 30.0


def test_a_fixed_box_outside_the_frame_is_a_user_error():
    with pytest.raises(LipsyncError, match="--box"):
        build_track(render(lambda i: [], 2), None, DetectionOptions(box=(500, 600, 10, 20)), frame_size=(W, H),
                    fps=25.0)


def test_no_face_anywhere_is_a_one_line_error_naming_the_video():
    track, _ = raw_track(lambda i: [], 6)
    assert not track.any_face
    with pytest.raises(LipsyncError, match="no face found in any frame of clip.mp4") as e:
        require_face(track, "clip.mp4")
    assert "\n" not in str(e.value)


def test_real_cutaway_clip_has_no_face_exactly_on_the_cutaway():
    from lipsync_core.face.detectors.haar import HaarDetector
    from lipsync_core.media.face_video import detection_scale
    from lipsync_core.media.video import FrameReader

    path = shared_media("face_noface_cutaway_7s.mp4")
    if path is None:
        pytest.skip("needs ../shared/media/face_noface_cutaway_7s.mp4 (a real face; Haar ignores drawn ones)")
    settings = DetectionOptions(detector="haar", det_size=320)
    with FrameReader(path) as probe_reader:
        full = probe_reader.size
    with FrameReader(path, size=detection_size(full, settings.detect_size)) as reader:
        track = build_track(reader, HaarDetector(), settings, scale=detection_scale(full, settings.detect_size),
                            frame_size=full, fps=reader.fps)
    faces = [b is not None for b in track.boxes]
    assert track.n_frames == 175
    assert not any(faces[60:110])  # frames 60-109 show hands and coffee only (../shared/media/README.md)
    assert all(faces[:60]) and all(faces[110:])
