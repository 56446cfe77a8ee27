"""Where a drawn mouth is on every frame: a similarity transform (centre, scale, in-plane angle) per frame.

The mouth box is set by the user on keyframes (``--mouth_box TOP BOTTOM LEFT RIGHT [@SECONDS]``) or, without
one, placed in the face box by the detector's :class:`~.types.MouthInBox`. It then moves with a face track (its
position, size and, for a followed box, rotation). Without a face track the area *around* the mouth is followed
instead (:func:`ring_track`: a band around the mouth box, the mouth itself left out of the template, since its
drawing changes every few frames) by the same keyframed box tracker.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .boxtrack import BoxTrack, Keyframe, track_box
from .types import Box, FaceTrack, MouthInBox

#: The followed band around the mouth box, in mouth-box sizes on each side (x, y).
RING = (0.9, 1.1)
#: Pixels added around the mouth box before it is left out of the band's template.
HOLE_MARGIN = 3


@dataclass(frozen=True)
class Placement:
    """The mouth on one frame: the reference mouth box (``MouthTrack.size``) centred at (``cx``, ``cy``), scaled
    by ``scale`` and turned ``angle`` degrees counter-clockwise."""

    cx: float
    cy: float
    scale: float
    angle: float

    def patch_to_frame(self, patch_size: tuple[int, int]) -> np.ndarray:
        """The 2x3 affine map from a reference patch of ``patch_size`` (w, h), centred on the mouth, to the frame."""
        a = math.radians(self.angle)
        c, s = math.cos(a) * self.scale, math.sin(a) * self.scale
        pw, ph = patch_size
        px, py = (pw - 1) / 2, (ph - 1) / 2
        # p_frame = centre + S R (p - patch centre), R turning counter-clockwise on screen (y down).
        return np.array([[c, s, self.cx - c * px - s * py], [-s, c, self.cy + s * px - c * py]], np.float64)


@dataclass
class MouthTrack:
    """The mouth's placement per source frame (None: no face there, the frame passes through) and the size
    (w, h) of the reference mouth box the placements scale."""

    placements: list[Placement | None]
    size: tuple[int, int]


def _rot(angle: float, v: np.ndarray) -> np.ndarray:
    a = math.radians(angle)
    c, s = math.cos(a), math.sin(a)
    return np.array([c * v[0] + s * v[1], -s * v[0] + c * v[1]])


def _face(track: FaceTrack, i: int) -> tuple[np.ndarray, float, float] | None:
    """(centre, size, angle) of the face on frame ``i``, None without one."""
    box = track.boxes[i]
    if box is None:
        return None
    t, b, l, r = box
    centre = track.centres[i].astype(np.float64) if track.centres is not None else np.array([(l + r) / 2,
                                                                                            (t + b) / 2])
    angle = float(track.angles[i]) if track.angles is not None else 0.0
    return centre, float(np.sqrt((b - t) * (r - l))), angle


def default_mouth(track: FaceTrack, where: MouthInBox) -> list[Keyframe]:
    """The mouth box on the first frame with a face, placed in its face box by ``where`` (none without faces)."""
    for i, box in enumerate(track.boxes):
        if box is not None:
            t, b, l, r = box
            w, h = r - l, b - t
            cx, cy, ax, ay = l + where.cx * w, t + where.cy * h, where.ax * w, where.ay * h
            mouth = (int(cy - ay), int(math.ceil(cy + ay)), int(cx - ax), int(math.ceil(cx + ax)))
            return [Keyframe(i / track.fps, mouth)]
    return []


def follow_face(track: FaceTrack, mouths: Sequence[Keyframe]) -> MouthTrack:
    """The mouth keyframes carried along the face track: each frame uses the latest keyframe at or before it
    (the first before any), keeping the mouth's offset from the face centre, its size relative to the face and
    its angle relative to the face's, as on that keyframe."""
    anchors = []
    for kf in sorted(mouths, key=lambda k: k.t):
        j = min(max(0, int(round(kf.t * track.fps))), track.n_frames - 1)
        face = _face(track, j)
        if face is None:
            continue
        centre, size, angle = face
        t, b, l, r = kf.box
        offset = _rot(-angle, np.array([(l + r) / 2, (t + b) / 2]) - centre) / size
        anchors.append((j, offset, (r - l) / size, angle, (r - l, b - t)))
    if not anchors:
        return MouthTrack([None] * track.n_frames, (1, 1))
    ref_w = anchors[0][4][0]
    out: list[Placement | None] = []
    for i in range(track.n_frames):
        face = _face(track, i)
        if face is None:
            out.append(None)
            continue
        centre, size, angle = face
        _, offset, rel_w, angle0, _ = next((a for a in reversed(anchors) if a[0] <= i), anchors[0])
        c = centre + _rot(angle, offset) * size
        out.append(Placement(float(c[0]), float(c[1]), rel_w * size / ref_w, angle - angle0))
    return MouthTrack(out, anchors[0][4])


def ring_keyframe(mouth: Keyframe, frame_size: tuple[int, int]) -> Keyframe:
    """The band around ``mouth``'s box (clipped to the frame), the mouth box (with a margin) as its hole."""
    w, h = frame_size
    t, b, l, r = mouth.box
    mx, my = RING[0] * (r - l), RING[1] * (b - t)
    ring = (max(0, int(t - my)), min(h, int(b + my)), max(0, int(l - mx)), min(w, int(r + mx)))
    hole = (t - HOLE_MARGIN, b + HOLE_MARGIN, l - HOLE_MARGIN, r + HOLE_MARGIN)
    return Keyframe(mouth.t, ring, hole)


def ring_track(frames: Iterable[np.ndarray], mouths: Sequence[Keyframe], *, fps: float,
               frame_size: tuple[int, int]) -> tuple[MouthTrack, BoxTrack]:
    """The mouth followed through ``frames`` by the band around it (no face track): the band's track, as a face
    track, carries the mouth keyframes."""
    followed = track_box(frames, [ring_keyframe(m, frame_size) for m in mouths], fps=fps, frame_size=frame_size)
    return follow_face(followed.track, mouths), followed


def box_of(p: Placement, size: tuple[int, int]) -> Box:
    """The axis-aligned box around a placed mouth box of reference ``size`` (w, h) (for messages and tests)."""
    w, h = size[0] * p.scale, size[1] * p.scale
    a = math.radians(p.angle)
    hw = (abs(math.cos(a)) * w + abs(math.sin(a)) * h) / 2
    hh = (abs(math.sin(a)) * w + abs(math.cos(a)) * h) / 2
    return int(p.cy - hh), int(math.ceil(p.cy + hh)), int(p.cx - hw), int(math.ceil(p.cx + hw))
