"""Pass 1: a per-frame face track from a stream of (downscaled) frames.

Detection runs on every ``det_stride``-th frame, batched, and boxes (and landmarks) are interpolated linearly
in between. The frames between two detections are detected too, instead of interpolated, when a cheap
frame-difference test on tiny grayscale thumbnails fires (shot cut or large motion), when the two boxes hardly
overlap (fast motion), or when the face is present at one end only: nothing is ever interpolated across a
frame without a face.

With several faces, one is chosen on the first frame that has any (the largest, or the one nearest
``face_point``) and followed by overlap with its last known box, so the track never jumps to another person.
A face that moved farther than its own size is the nearest face that overlaps none of the other people seen
on the previous frame; when only those others are visible the frame has no face (the target is lost, not
replaced). The face is chosen again, by the same rule, after frames without any face and at shot cuts; a
face overlapping the last known box is preferred then, so the same person is kept when the shot returns.

Then :func:`finalize_track` applies the original's pads (clamped to the frame) and its 5-frame smoothing.
Only frames the caller hands in are held, at most ``batch_size * det_stride + 1`` of them at a time, and
no more than about ``CHUNK_BYTES`` of them (full-resolution 4K detection would otherwise hold 3 GB).
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar

import cv2
import numpy as np

from ..support.errors import LipsyncError
from ..support.options import opt
from .boxtrack import parse_track_box
from .smoothing import smooth_boxes, smooth_centred
from .types import Box, Detection, Detector, FaceTrack

#: A detection continues the track when its IoU with the target's last known box is at least this.
MIN_FOLLOW_IOU = 0.25
#: Bytes of detection-size frames held at once by pass 1.
CHUNK_BYTES = 128 * 2**20

#: Side of the grayscale thumbnails compared by the cut / large-motion test.
THUMB_SIZE = 32
#: Two detections of the face this dissimilar (IoU below) are too far apart to interpolate: detect between them.
MOTION_IOU = 0.6

#: The detector a run uses unless its variant or the user picks another (the original's).
DEFAULT_DETECTOR = "s3fd"
_ORIGINAL = "the original inference.py options"
_HARD = "2D animation and hard faces"


_DETECTION = "this package's options"
_BOX4 = ("TOP", "BOTTOM", "LEFT", "RIGHT")


def _track_boxes_parse(uses: tuple[str, ...]) -> bool:
    return all(parse_track_box(k.split()) for k in uses)


@dataclass(frozen=True)
class DetectionOptions:
    """How pass 1 finds the face: the detection flags, read by the tracker and nothing else.

    The face-track cache key is made of the ``keyed`` options (see :meth:`cache_fields`); pads and smoothing
    are applied after the cache, so changing them never re-runs detection. ``cut_threshold`` and
    ``smooth_window`` are fixed settings, not flags.
    """

    detector: str = opt(DEFAULT_DETECTOR, "face detector", _DETECTION, choices=lambda cat: tuple(cat.detectors))
    det_size: int = opt(360, "longest side of frames given to the detector; 0 = full resolution", _DETECTION,
                        check=lambda v: v >= 0, message="--det_size must be >= 0 (0: full resolution)")
    det_stride: int = opt(8, "detect every k-th frame and interpolate; re-detects at cuts", _DETECTION,
                          check=lambda v: v > 0, message="--det_stride must be >= 1")
    face_det_batch_size: int = opt(16, "frames per face-detector call", _ORIGINAL, check=lambda v: v > 0,
                                   message="--face_det_batch_size must be at least 1", keyed=False)
    pads: tuple[int, int, int, int] = opt((0, 10, 0, 0), "padding added to the detected face box", _ORIGINAL,
                                          metavar=_BOX4, check=lambda v: all(p >= 0 for p in v),
                                          message="--pads must be non-negative", keyed=False)
    nosmooth: bool = opt(False, "do not smooth face boxes over time", _ORIGINAL, keyed=False)
    box: tuple[int, int, int, int] | None = opt(None, "fixed face box on every frame; skips detection", _ORIGINAL,
                                                metavar=_BOX4, keyed=False)
    face_point: tuple[int, int] | None = opt(None, "with several faces, follow the one nearest this point "
                                             "(default: the largest)", _DETECTION, metavar=("X", "Y"))
    track_box: tuple[str, ...] | None = opt(None, "set the face box on a frame and follow it through the clip "
                                            "(repeat for more keyframes; no @: the first frame; coordinates as "
                                            "--box)", _HARD, metavar=("TOP BOTTOM LEFT RIGHT", "@SECONDS"),
                                            repeat=True, check=_track_boxes_parse, keyed=False)
    box_keyframes: str | None = opt(None, 'JSON file of keyframes: [{"t": seconds, "box": [top, bottom, left, '
                                    'right]}, ...] (as --track_box)', _HARD, keyed=False)
    no_track_cache: bool = opt(False, "always re-detect faces instead of reusing the cached track", _DETECTION,
                               keyed=False)
    # Mean absolute difference (0..1) of consecutive 32x32 grey thumbnails above which every frame around is
    # detected: talking heads change by at most about 0.035 per frame, hard cuts by about 0.4.
    cut_threshold: float = 0.06
    smooth_window: int = field(default=5, metadata={"keyed": False})

    @property
    def detect_size(self) -> int | None:
        """The longest side the detector sees, None for full resolution."""
        return self.det_size or None

    @property
    def keyframed(self) -> bool:
        """The face box is set by the user on keyframes and tracked (no detector runs)."""
        return bool(self.track_box) or self.box_keyframes is not None

    @property
    def detects(self) -> bool:
        """A detector runs (no fixed ``box``, no keyframes, a detector chosen: a variant may preset none)."""
        return self.box is None and not self.keyframed and self.detector is not None

    #: The options :func:`finalize_track` applies to the detected track, and their values that leave it raw.
    FINISHING: ClassVar[dict[str, object]] = {"pads": (0, 0, 0, 0), "nosmooth": True}

    def raw(self) -> DetectionOptions:
        """These options with boxes as detected: no pads, no smoothing (scoring and dataset crops)."""
        return replace(self, **self.FINISHING)  # type: ignore[arg-type]

    def cache_fields(self) -> dict[str, object]:
        """Every option the raw detected track (:func:`detect_track`) depends on, JSON-able: the ``keyed``
        options and the fixed settings."""
        out: dict[str, object] = {}
        for f in fields(self):
            if not f.metadata.get("keyed", True):
                continue
            v = getattr(self, f.name)
            out[f.name] = [float(x) for x in v] if isinstance(v, tuple) else v
        out["det_size"] = self.detect_size
        return out


def build_track(frames: Iterable[np.ndarray], detector: Detector | None, settings: DetectionOptions, *,
                scale: float = 1.0, frame_size: tuple[int, int], fps: float) -> FaceTrack:
    """The final face track: :func:`detect_track` then :func:`finalize_track`, or a constant ``settings.box``.

    ``frames`` are uint8 BGR, already downscaled by the caller by ``scale`` (see :func:`detection_size`);
    boxes are mapped back by ``1 / scale`` to ``frame_size`` = (width, height) pixels. With ``settings.box``
    the frames are only counted.
    """
    if settings.box is not None:
        return fixed_track(settings.box, sum(1 for _ in frames), fps=fps, frame_size=frame_size)
    if detector is None:  # nothing to detect (a variant whose stage finds its own region): the whole frame
        w, h = frame_size
        return FaceTrack.constant((0, h, 0, w), sum(1 for _ in frames), fps=fps, frame_size=frame_size)
    raw = detect_track(frames, detector, settings, scale=scale, frame_size=frame_size, fps=fps)
    return finalize_track(raw, settings)


def fixed_track(box: Box, n_frames: int, *, fps: float, frame_size: tuple[int, int]) -> FaceTrack:
    """The original's ``--box``: the same (top, bottom, left, right) on every frame, clamped to the frame."""
    w, h = frame_size
    t, b, l, r = (int(v) for v in box)
    t, b, l, r = max(0, t), min(h, b), max(0, l), min(w, r)
    if b <= t or r <= l:
        raise LipsyncError(f"--box {' '.join(str(int(v)) for v in box)} lies outside the {w}x{h} frame; "
                           "give top bottom left right inside it")
    return FaceTrack.constant((t, b, l, r), n_frames, fps=fps, frame_size=frame_size)


def require_face(track: FaceTrack, video: str) -> FaceTrack:
    """``track`` if any frame has a face, else a LipsyncError saying what to try."""
    if not track.any_face:
        raise LipsyncError(f"no face found in any frame of {video}; try the other --detector (s3fd/haar), --det_size 0 "
                           "(full-resolution detection), or give the face with --box top bottom left right")
    return track


# ---------------------------------------------------------------------------------------------------- detection


def detect_track(frames: Iterable[np.ndarray], detector: Detector, settings: DetectionOptions, *,
                 scale: float = 1.0, frame_size: tuple[int, int], fps: float,
                 on_frames: Callable[[int], object] | None = None) -> FaceTrack:
    """The raw track: the followed face per frame (int boxes as the original truncates them), no pads/smoothing.

    ``on_frames(n)`` is called as each frame's face is settled (after its chunk was detected): progress.
    """
    tracker = _Tracker(detector, settings, 1.0 / scale)
    boxes: list[Box | None] = []
    landmarks: list[np.ndarray | None] = []
    for face in tracker.run(iter(frames)):
        if on_frames is not None:
            on_frames(1)
        if face is None:
            boxes.append(None)
            landmarks.append(None)
        else:
            x1, y1, x2, y2 = (int(v) for v in face.box)  # truncation, as the original's int()
            boxes.append((y1, y2, x1, x2))
            landmarks.append(face.landmarks)
    has_landmarks = any(lm is not None for lm in landmarks)
    return FaceTrack(boxes=boxes, fps=fps, frame_size=frame_size, landmarks=landmarks if has_landmarks else None)


class _Follower:
    """Keeps to one person across frames (see the module docstring)."""

    def __init__(self, face_point: tuple[float, float] | None) -> None:
        self.face_point = face_point
        self.last: np.ndarray | None = None  # the target's last known box
        self.others: list[np.ndarray] = []  # the other people's boxes on the last frame with faces
        self.reacquire = True

    def step(self, dets: list[Detection], cut: bool) -> Detection | None:
        if not dets:
            self.reacquire, self.others = True, []  # a frame without any face: choose again when faces come back
            return None
        boxes = np.stack([d.box for d in dets])
        ious = _iou(self.last, boxes) if self.last is not None else np.zeros(len(dets))
        chosen: Detection | None = None
        if ious.max() >= MIN_FOLLOW_IOU:
            chosen = dets[int(np.argmax(ious))]
        elif self.reacquire or cut or self.last is None:
            chosen = self._choose(dets)
        else:
            # The target moved farther than one box: it is the nearest face that is none of the other people.
            last = self.last
            strangers = [d for d in dets if not any(_iou(o, d.box[None])[0] >= MIN_FOLLOW_IOU for o in self.others)]
            if strangers:
                chosen = min(strangers, key=lambda d: _centre_distance(d.box, last))
        self.reacquire = False
        self.others = [d.box for d in dets if d is not chosen]
        if chosen is not None:
            self.last = chosen.box
        return chosen

    def _choose(self, dets: list[Detection]) -> Detection:
        if self.face_point is None:
            return max(dets, key=lambda d: d.area)
        px, py = self.face_point

        def key(d: Detection) -> tuple[bool, float]:
            x1, y1, x2, y2 = d.box
            inside = x1 <= px <= x2 and y1 <= py <= y2
            return not inside, _centre_distance(d.box, np.array([px, py, px, py]))

        return min(dets, key=key)


@dataclass
class _Anchor:
    """The last frame of the previous chunk (always detected): where the next interpolation starts."""

    face: Detection | None


class _Tracker:
    """Streams frames through stride detection, forced re-detection, following and interpolation."""

    def __init__(self, detector: Detector, settings: DetectionOptions, upscale: float) -> None:
        self.detector = detector
        self.settings = settings
        self.upscale = upscale  # detector pixels -> frame pixels
        self.follower = _Follower(settings.face_point)

    def run(self, frames: Iterator[np.ndarray]) -> Iterator[Detection | None]:
        """The followed face of every frame, in order."""
        k, per_chunk = self.settings.det_stride, None
        anchor: _Anchor | None = None
        chunk: list[np.ndarray] = []
        diffs: list[float] = []
        prev_thumb = None
        for index, frame in enumerate(frames):
            thumb = thumbnail(frame)
            diffs.append(0.0 if prev_thumb is None else float(np.abs(thumb - prev_thumb).mean()))
            prev_thumb = thumb
            chunk.append(frame)
            if per_chunk is None:  # batch_size stride frames per chunk, fewer when frames are large
                per_chunk = k * max(1, min(self.settings.face_det_batch_size, CHUNK_BYTES // (frame.nbytes * k)))
            if index % k == 0 and len(chunk) >= per_chunk:  # chunks end on a stride frame
                faces, anchor = self._resolve(index + 1 - len(chunk), chunk, diffs, anchor, last=False)
                yield from faces
                chunk, diffs = [], []
        if chunk:
            yield from self._resolve(index + 1 - len(chunk), chunk, diffs, anchor, last=True)[0]

    def _resolve(self, start: int, chunk: list[np.ndarray], diffs: list[float], anchor: _Anchor | None,
                 last: bool) -> tuple[list[Detection | None], _Anchor]:
        """Faces for frames ``start .. start+len(chunk)-1`` (the last one is detected), and the next anchor."""
        k, n = self.settings.det_stride, len(chunk)
        cuts = [d > self.settings.cut_threshold for d in diffs]
        dets: dict[int, list[Detection]] = {}  # chunk-relative index -> detections

        def gaps() -> list[tuple[int, int]]:  # consecutive detected frames (-1: the anchor) with frames between
            done = ([-1] if anchor is not None else []) + sorted(dets)
            return [(a, b) for a, b in zip(done, done[1:]) if b - a > 1]

        self._detect(chunk, dets, [i for i in range(n) if (start + i) % k == 0 or (last and i == n - 1)])
        # A shot cut or large motion between two detected frames: detect every frame between them.
        self._detect(chunk, dets, [i for a, b in gaps() if any(cuts[a + 1:b + 1]) for i in range(a + 1, b)])
        state = copy.deepcopy(self.follower)
        while True:
            faces = self._follow(dets, cuts, anchor)
            # The face present at one end of a gap only, or moved a lot across it: detect rather than guess.
            unsure = [i for a, b in gaps() if not _interpolable(faces[a], faces[b]) for i in range(a + 1, b)]
            if not unsure:
                break
            self._detect(chunk, dets, unsure)
            self.follower = copy.deepcopy(state)
        for a, b in gaps():
            for i in range(a + 1, b):
                faces[i] = _interpolate(faces[a], faces[b], (i - a) / (b - a))
        return [faces[i] for i in range(n)], _Anchor(faces[n - 1])

    def _detect(self, chunk: list[np.ndarray], dets: dict[int, list[Detection]], idx: list[int]) -> None:
        if not idx:
            return
        found = self.detector.detect([chunk[i] for i in idx])
        for i, ds in zip(idx, found):
            dets[i] = [d.scaled(self.upscale) for d in ds] if self.upscale != 1.0 else ds

    def _follow(self, dets: dict[int, list[Detection]], cuts: list[bool],
                anchor: _Anchor | None) -> dict[int, Detection | None]:
        faces: dict[int, Detection | None] = {-1: anchor.face} if anchor is not None else {}
        for i in sorted(dets):
            faces[i] = self.follower.step(dets[i], cuts[i])
        return faces


def _interpolable(a: Detection | None, b: Detection | None) -> bool:
    if a is None or b is None:
        return a is b  # no face at either end: none between (a face appearing alone would be a cut)
    return float(_iou(a.box, b.box[None])[0]) >= MOTION_IOU


def _interpolate(a: Detection | None, b: Detection | None, t: float) -> Detection | None:
    if a is None or b is None:
        return None
    lm = None
    if a.landmarks is not None and b.landmarks is not None:
        lm = (1 - t) * a.landmarks + t * b.landmarks
    return Detection((1 - t) * a.box + t * b.box, (1 - t) * a.score + t * b.score, lm)


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """The 32x32 grey thumbnail (0..1) whose mean absolute change between frames is the cut test's measure."""
    small = cv2.resize(frame, (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0


def _centre_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2))


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x1, y1, x2, y2) box with each row of ``boxes``."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


# ------------------------------------------------------------------------------------------- pads and smoothing


def finalize_track(raw: FaceTrack, settings: DetectionOptions) -> FaceTrack:
    """Pads (clamped to the frame), then the original's smoothing unless ``nosmooth``; never across a gap."""
    w, h = raw.frame_size
    pt, pb, pl, pr = settings.pads
    boxes: list[Box | None] = []
    for box in raw.boxes:
        if box is None:
            boxes.append(None)
            continue
        t, b, l, r = max(0, box[0] - pt), min(h, box[1] + pb), max(0, box[2] - pl), min(w, box[3] + pr)
        boxes.append((t, b, l, r) if b > t and r > l else None)  # a box wholly outside the frame is no face
    landmarks = raw.landmarks
    if landmarks is not None:
        landmarks = [lm if bx is not None else None for lm, bx in zip(landmarks, boxes)]
    if not settings.nosmooth:
        boxes = _per_run(boxes, lambda run: [tuple(int(v) for v in row)
                                             for row in smooth_boxes(np.array(run), settings.smooth_window)])
        if landmarks is not None:
            landmarks = _per_run(landmarks, lambda run: list(smooth_centred(np.stack(run), settings.smooth_window)))
    return FaceTrack(boxes=boxes, fps=raw.fps, frame_size=raw.frame_size, landmarks=landmarks)


def _per_run(items: list, fn) -> list:
    """Apply ``fn`` to each maximal run of non-None items (a list in, a list of the same length out)."""
    out = list(items)
    i = 0
    while i < len(out):
        if out[i] is None:
            i += 1
            continue
        j = i
        while j < len(out) and out[j] is not None:
            j += 1
        out[i:j] = fn(out[i:j])
        i = j
    return out
