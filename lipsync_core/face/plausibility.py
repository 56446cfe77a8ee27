"""Plausibility checks of a face track: boxes that look like success but are likely not a face.

A detector trained on photographs can put a steady, confident box on a cartoon's navel or whole body. The
checks look at the track and at small grey thumbnails of the frames (:class:`MotionSampler`, kept while pass 1
decodes them) and report, with time ranges:

- ``static``: the box content does not change (less than ``STATIC_CONTENT`` of the frame's change) while the
  frame does, or the box does not move at all (``STATIC_BOX`` of its size) while the frame does;
- ``low``: the box's top lies more than ``LOW_FACE`` box heights below the frame's top (a belly, not a face);
- ``jump``: the box moves by more than half its size, or changes size by 1.5x, between two frames without a cut;
- ``dropout``: the face comes and goes on frames that barely change (``DROPOUT`` of the frames or more).

The thresholds separate real faces from such boxes on the reference media; the measurements behind them are
in ``docs/notes.md``.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from .types import Box, FaceTrack

#: A box whose content changes less than this fraction of the frame's change is static.
STATIC_CONTENT = 0.3
#: A box whose centre and size vary by less than this fraction of its size over a run is static.
STATIC_BOX = 0.01
#: Median mean-absolute difference (0..1) of sampled thumbnails above which a clip is moving.
MOVING = 0.005
#: A box whose top is this many box heights below the frame's top is too low for a face.
LOW_FACE = 4.0
#: Fraction of the frames on which the face may vanish without a cut before the track is called unstable.
DROPOUT = 0.05
#: Consecutive-frame thumbnail difference (as ``DetectionOptions.cut_threshold``) that is a shot cut.
CUT = 0.06
#: Shortest run, in seconds, the static checks judge.
MIN_RUN_S = 1.0

#: Ranges named in a warning line.
MAX_RANGES = 4

THUMB_SIDE = 192
CUT_SIDE = 32
PATCH = 16


@dataclass
class Suspicion:
    """One reason to doubt the track: ``kind`` (see the module doc), where ((start, end) seconds), and why."""

    kind: str
    ranges: list[tuple[float, float]]
    detail: str

    def message(self, hint: str) -> str:
        """One warning line: what, where (the first few ranges) and what to try."""
        where = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in self.ranges[:MAX_RANGES])
        if len(self.ranges) > MAX_RANGES:
            where += f" and {len(self.ranges) - MAX_RANGES} more"
        return f"face track doubtful: {self.detail} ({where}); {hint}"


@dataclass
class MotionSampler:
    """Records what the checks need while frames stream past: a cut flag per frame and a grey thumbnail of
    every ``stride``-th frame (the stride doubles whenever more than ``max_samples`` are held)."""

    stride: int = 5
    max_samples: int = 600
    cuts: list[bool] = field(default_factory=list)
    samples: dict[int, np.ndarray] = field(default_factory=dict)
    _prev: np.ndarray | None = field(default=None, repr=False)

    def watch(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """``frames`` unchanged (uint8 BGR, full resolution or downscaled), recorded on the way."""
        for frame in frames:
            self.add(frame)
            yield frame

    def add(self, frame: np.ndarray) -> None:
        i = len(self.cuts)
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        small = cv2.resize(grey, (CUT_SIDE, CUT_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        self.cuts.append(self._prev is not None and float(np.abs(small - self._prev).mean()) > CUT)
        self._prev = small
        if i % self.stride == 0:
            k = THUMB_SIDE / max(grey.shape)
            size = (max(1, round(grey.shape[1] * k)), max(1, round(grey.shape[0] * k)))
            self.samples[i] = cv2.resize(grey, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
            if len(self.samples) > self.max_samples:
                self.stride *= 2
                self.samples = {j: s for j, s in self.samples.items() if j % self.stride == 0}

    def thumb_scale(self, frame_size: tuple[int, int]) -> float:
        """Full-resolution pixels -> thumbnail pixels."""
        return THUMB_SIDE / max(frame_size)


def check_track(track: FaceTrack, sampler: MotionSampler | None = None) -> list[Suspicion]:
    """The suspicions about ``track`` (best given the raw, unsmoothed track); [] when it looks like a face.

    Without a ``sampler`` only the checks on the boxes alone run (``low``, ``jump``).
    """
    out: list[Suspicion] = []
    fps, boxes = track.fps, track.boxes
    cuts = sampler.cuts if sampler is not None else [False] * track.n_frames
    cuts = list(cuts) + [False] * (track.n_frames - len(cuts))
    runs = _runs(boxes, cuts)
    low = [r for r in runs if _low(boxes[r[0]:r[1]])]
    if low:
        out.append(Suspicion("low", _seconds(low, fps), f"the box lies more than {LOW_FACE:g} box heights "
                                                       "below the frame's top, where a body is, not a face"))
    jumps = [(i, i + 1) for i in range(1, track.n_frames)
             if (a := boxes[i - 1]) is not None and (b := boxes[i]) is not None and not cuts[i] and _jump(a, b)]
    if jumps:
        out.append(Suspicion("jump", _seconds(jumps, fps), "the box jumps by more than half its size or 1.5x in size "
                                                         "from one frame to the next without a cut"))
    if sampler is None:
        return out
    dropped = _dropouts(boxes, cuts)
    if sum(b - a for a, b in dropped) >= max(2, DROPOUT * track.n_frames):
        out.append(Suspicion("dropout", _seconds(dropped, fps), "the detector loses the face on frames that look "
                                                               "like their neighbours, so it is unsure of it"))
    k = sampler.thumb_scale(track.frame_size)
    static = [r for r in runs if r[1] - r[0] >= MIN_RUN_S * fps and _static(boxes, r, sampler, k)]
    if static:
        out.append(Suspicion("static", _seconds(static, fps), "the box or its content stays still while the "
                                                             "picture moves"))
    return out


def hint(detector: str | None) -> str:
    """What to try instead of ``detector``'s track (None: a fixed box the user gave)."""
    if detector is None:
        return "the box is fixed: set it with --track_box TOP BOTTOM LEFT RIGHT [@SECONDS] so it follows the face"
    alt = "--detector anime for an anime face, or " if detector != "anime" else ""
    return f"if the box is not on the face, try {alt}set it yourself: --track_box TOP BOTTOM LEFT RIGHT [@SECONDS]"


def _runs(boxes: list[Box | None], cuts: list[bool]) -> list[tuple[int, int]]:
    """[start, end) frame runs with a box on every frame and no cut inside."""
    out, start = [], None
    for i, b in enumerate(boxes + [None]):
        if b is None or (start is not None and cuts[i]):
            if start is not None:
                out.append((start, i))
            start = i if b is not None else None
        elif start is None:
            start = i
    return out


def _low(boxes: list[Box | None]) -> bool:
    tops = np.array([b[0] / max(1, b[1] - b[0]) for b in boxes if b is not None])
    return bool(len(tops)) and float(np.median(tops)) > LOW_FACE


def _jump(a: Box, b: Box) -> bool:
    size = max(a[1] - a[0], a[3] - a[2], 1)
    shift = np.hypot((b[2] + b[3] - a[2] - a[3]) / 2, (b[0] + b[1] - a[0] - a[1]) / 2)
    ratio = max(1, b[1] - b[0]) / max(1, a[1] - a[0])
    return bool(shift > 0.5 * size or not 1 / 1.5 <= ratio <= 1.5)


def _dropouts(boxes: list[Box | None], cuts: list[bool]) -> list[tuple[int, int]]:
    """Runs of frames without a box, with a box on both sides and no cut at either end."""
    out, i, n = [], 0, len(boxes)
    while i < n:
        if boxes[i] is not None:
            i += 1
            continue
        j = i
        while j < n and boxes[j] is None:
            j += 1
        if i > 0 and j < n and not cuts[i] and not cuts[j]:
            out.append((i, j))
        i = j
    return out


def _static(boxes: list[Box | None], run: tuple[int, int], sampler: MotionSampler, k: float) -> bool:
    idx = [i for i in sorted(sampler.samples) if run[0] <= i < run[1]]
    if len(idx) < 3:
        return False
    frame_change, box_change = [], []
    prev = None
    for i in idx:
        thumb = sampler.samples[i]
        box = boxes[i]
        assert box is not None, "idx holds frames with a box"
        t, b, l, r = (int(round(v * k)) for v in box)
        crop = thumb[max(0, t):max(t + 1, b), max(0, l):max(l + 1, r)]
        patch = cv2.resize(crop, (PATCH, PATCH), interpolation=cv2.INTER_AREA) if crop.size else None
        if prev is not None and patch is not None and prev[1] is not None:
            frame_change.append(float(np.abs(thumb - prev[0]).mean()))
            box_change.append(float(np.abs(patch - prev[1]).mean()))
        prev = (thumb, patch)
    if not frame_change or float(np.median(frame_change)) < MOVING:
        return False
    arr = np.array([boxes[i] for i in range(*run)], np.float64)
    size = float(np.median(np.maximum(arr[:, 1] - arr[:, 0], arr[:, 3] - arr[:, 2])))
    centre = np.column_stack(((arr[:, 2] + arr[:, 3]) / 2, (arr[:, 0] + arr[:, 1]) / 2))
    spread = max(np.ptp(centre, axis=0).max(), np.ptp(arr[:, 1] - arr[:, 0]), np.ptp(arr[:, 3] - arr[:, 2]))
    still = spread < STATIC_BOX * size
    return bool(still or np.median(box_change) < STATIC_CONTENT * np.median(frame_change))


def _seconds(ranges: list[tuple[int, int]], fps: float) -> list[tuple[float, float]]:
    """Frame ranges [a, b) as (start, end) seconds, touching ranges merged."""
    out: list[tuple[float, float]] = []
    for a, b in sorted(ranges):
        s, e = round(a / fps, 2), round(b / fps, 2)
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out
