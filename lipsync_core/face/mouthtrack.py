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
from dataclasses import dataclass, field

import cv2
import numpy as np

from .boxtrack import BoxTrack, BoxTrackSettings, Keyframe, track_box
from .types import Box, FaceTrack, MouthInBox

#: The followed band around the mouth box, in mouth-box sizes on each side (x, y).
RING = (0.9, 1.1)
#: Pixels added around the mouth box before it is left out of the band's template.
HOLE_MARGIN = 3
#: How the band is followed: near the last place first, sizes and angles on alternate frames (a drawn head
#: moves little from one frame to the next; the full search takes over when the match lands on the edge).
RING_SETTINGS = BoxTrackSettings(near=0.1, alternate=True)
#: A kept crop's margin around the patch's reach, as a fraction of its size (the final placement is smoothed
#: and cross-faded, so it strays a little from the forward estimate the crop was centred on).
KEEP_MARGIN = 0.15

#: (x0, y0, BGR pixels) of a frame's part kept around the mouth.
Crop = tuple[int, int, np.ndarray]


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
    crops: dict[int, Crop] = field(default_factory=dict, repr=False)  # kept while tracking (ring_track's keep)


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
               frame_size: tuple[int, int], keep: tuple[int, int] | None = None) -> tuple[MouthTrack, BoxTrack]:
    """The mouth followed through ``frames`` by the band around it (no face track): the band's track, as a face
    track, carries the mouth keyframes. ``keep`` (w, h): a patch of that size in mouth-box pixels, centred on the
    mouth, is wanted from every frame later: each frame's part that holds it is kept in ``crops`` as the clip
    goes by (:func:`patch_from_crop`), so the clip is decoded once."""
    rings = [ring_keyframe(m, frame_size) for m in mouths]
    crops: dict[int, Crop] = {}
    seen = None
    if keep is not None:
        anchors = sorted(((int(round(m.t * fps)), m.box, r.box) for m, r in zip(mouths, rings)), key=lambda a: a[0])
        radius = math.hypot(*keep) / 2 + KEEP_MARGIN * max(keep)

        def seen(i: int, frame: np.ndarray, est: np.ndarray) -> None:
            _, (t, b, l, r), (rt, rb, rl, rr) = next((a for a in reversed(anchors) if a[0] <= i), anchors[0])
            k = (est[2] - est[0]) / (rr - rl)
            offset = np.array([(l + r) / 2 - (rl + rr) / 2, (t + b) / 2 - (rt + rb) / 2]) * k
            cx, cy = (est[:2] + est[2:4]) / 2 + _rot(float(est[4]), offset)
            half = radius * k + 3
            x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
            x1, y1 = min(frame.shape[1], int(math.ceil(cx + half))), min(frame.shape[0], int(math.ceil(cy + half)))
            if x1 > x0 and y1 > y0:
                crops[i] = (x0, y0, frame[y0:y1, x0:x1].copy())

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # small images: OpenCV's worker threads cost more than they save (and the decoder,
    # the cue process and the encoder share the cores)
    try:
        followed = track_box(frames, rings, fps=fps, frame_size=frame_size, settings=RING_SETTINGS, seen=seen)
    finally:
        cv2.setNumThreads(threads)
    mouth = follow_face(followed.track, mouths)
    mouth.crops = crops
    return mouth, followed


def patch_from_crop(crop: Crop, frame_size: tuple[int, int], m: np.ndarray,
                    size: tuple[int, int]) -> np.ndarray | None:
    """The patch of ``size`` (w, h) that the 2x3 map ``m`` (patch -> frame) takes from a frame of
    ``frame_size``, from the frame's kept ``crop`` (as ``cv2.warpAffine`` with ``WARP_INVERSE_MAP`` and replicated
    borders would take it from the whole frame); None when the patch reaches outside the crop."""
    x0, y0, img = crop
    h, w = img.shape[:2]
    pw, ph = size
    corners = np.array([[-1, -1, 1], [pw, -1, 1], [-1, ph, 1], [pw, ph, 1]], np.float64) @ m.T
    fw, fh = frame_size
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    if (x0 > 0 and lo[0] < x0) or (y0 > 0 and lo[1] < y0) or (x0 + w < fw and hi[0] > x0 + w - 1) \
            or (y0 + h < fh and hi[1] > y0 + h - 1):
        return None
    local = m.copy()
    local[:, 2] -= (x0, y0)
    return cv2.warpAffine(img, local, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def box_of(p: Placement, size: tuple[int, int]) -> Box:
    """The axis-aligned box around a placed mouth box of reference ``size`` (w, h) (for messages and tests)."""
    w, h = size[0] * p.scale, size[1] * p.scale
    a = math.radians(p.angle)
    hw = (abs(math.cos(a)) * w + abs(math.sin(a)) * h) / 2
    hh = (abs(math.sin(a)) * w + abs(math.cos(a)) * h) / 2
    return int(p.cy - hh), int(math.ceil(p.cy + hh)), int(p.cx - hw), int(math.ceil(p.cx + hw))
