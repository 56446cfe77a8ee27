"""A face box the user sets on one or more keyframes, followed through the clip by template matching.

For drawn characters and faces no detector finds. Each keyframe's box is cut from its frame as a grey
template (scaled so its longer side is about ``work_side`` pixels) and searched for, frame by frame, forwards
until the next keyframe and backwards to the previous one (``cv2.matchTemplate``, normalised correlation, at
three scales around the last one, then at three in-plane angles around the last one, each refined to a fraction
of a step): the track follows position, size and rotation (a similarity transform), e.g. a drawn head's tilt.
A keyframe may exclude a ``hole`` from its template (a region that changes by itself, such as a drawn mouth:
only the area around it is followed). A match scoring below ``min_score`` is
unsure: the tracker keeps looking around the last sure place (so a face that comes back is found again) but
does not move the box. Between two keyframes the forward and backward estimates are cross-faded; frames no
estimate is sure about are interpolated between the nearest sure frames (held at the ends), then the box is
smoothed. The unsure frames are reported as time ranges, so the user can add a keyframe there.

Keyframes (the same coordinates as ``--box``: the frame after crop/resize/rotate; times from the clip's start):

- ``TOP BOTTOM LEFT RIGHT [@SECONDS]`` (:func:`parse_track_box`; no ``@`` means the first frame), or
- a JSON file (:func:`load_keyframes`): ``[{"t": 0.0, "box": [top, bottom, left, right]}, ...]``.

Memory: small grey copies of at most ``max_backward`` frames are held for the backward passes; frames
farther than that before a keyframe get only the forward estimate.
"""
from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..support.errors import LipsyncError
from .smoothing import smooth_centred
from .types import Box, FaceTrack

KEYFRAME_FORMAT = "TOP BOTTOM LEFT RIGHT [@SECONDS]"


@dataclass(frozen=True)
class Keyframe:
    """The face box (top, bottom, left, right) at ``t`` seconds from the start of the clip."""

    t: float
    box: Box
    hole: Box | None = None  # a part of the box left out of the template (it changes by itself)


def parse_track_box(values: Sequence[str | int | float], flag: str = "--track_box") -> Keyframe:
    """A keyframe from ``TOP BOTTOM LEFT RIGHT [@SECONDS]`` (``@2.5`` or ``@ 2.5``); no time means frame 0."""
    words = [str(v) for v in values]
    text = " ".join(words)
    t = 0.0
    if words and "@" in text:
        head, _, tail = text.partition("@")
        words, t = head.split(), _seconds(tail.strip(), f"{flag} {text}")
    if len(words) != 4:
        raise LipsyncError(f"{flag} {text!r}: give {KEYFRAME_FORMAT}, e.g. 120 380 200 420 @1.5")
    try:
        box = tuple(int(round(float(w))) for w in words)
    except ValueError:
        raise LipsyncError(f"{flag} {text!r}: the box must be 4 numbers ({KEYFRAME_FORMAT})") from None
    return Keyframe(t, _checked_box(box, f"{flag} {text!r}"))


def load_keyframes(path: str | Path) -> list[Keyframe]:
    """Keyframes from a JSON file: a list of ``{"t": seconds, "box": [top, bottom, left, right]}``."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LipsyncError(f"keyframe file not found: {p}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LipsyncError(f"{p} is not JSON ({exc}); write a list of "
                           '{"t": seconds, "box": [top, bottom, left, right]}') from None
    if not isinstance(data, list) or not data:
        raise LipsyncError(f'{p}: expected a non-empty list of {{"t": seconds, "box": [top, bottom, left, right]}}')
    out = []
    for n, item in enumerate(data):
        where = f"{p} entry {n}"
        if not isinstance(item, dict) or set(item) != {"t", "box"} or not isinstance(item["box"], list) \
                or len(item["box"]) != 4:
            raise LipsyncError(f'{where}: expected {{"t": seconds, "box": [top, bottom, left, right]}}, got {item!r}')
        try:
            box = tuple(int(round(float(v))) for v in item["box"])
        except (TypeError, ValueError):
            raise LipsyncError(f"{where}: the box must be 4 numbers, got {item['box']!r}") from None
        out.append(Keyframe(_seconds(item["t"], where), _checked_box(box, where)))
    return out


def _seconds(value: object, where: str) -> float:
    try:
        t = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        t = math.nan
    if not math.isfinite(t) or t < 0:
        raise LipsyncError(f"{where}: the time must be seconds >= 0, got {value!r}")
    return t


def _checked_box(box: tuple[int, ...], where: str) -> Box:
    t, b, l, r = box
    if b <= t or r <= l or t < 0 or l < 0:
        raise LipsyncError(f"{where}: the box must have top < bottom and left < right, all >= 0 "
                           f"(top bottom left right), got {t} {b} {l} {r}")
    return t, b, l, r


@dataclass
class BoxTrackSettings:
    """How a keyframed box is followed (how the defaults were chosen: ``docs/notes.md``)."""

    min_score: float = 0.5  # normalised correlation below which a match is unsure
    search: float = 0.35  # search this fraction of the box size around the last sure place, each side
    work_side: int = 96  # the template's longer side, in pixels, after scaling the frames down
    scale_step: float = 0.03  # relative size change tried per frame (each way)
    angle_step: float = 1.5  # in-plane rotation tried per frame, degrees each way (0: no rotation)
    max_angle: float = 30.0  # the rotation never leaves ±this (degrees from the keyframe)
    smooth_window: int = 5
    max_backward: int = 250  # frames held for the backward pass before each keyframe
    near: float = 0.0  # first search only this fraction around the last place (the full ``search`` when the
    # match lands on that area's edge or is unsure); 0: always the full search
    alternate: bool = False  # sizes on even frames and angles on odd ones (3 matches a frame, not 5)

    def __post_init__(self) -> None:
        if not -1.0 < self.min_score < 1.0 or self.search <= 0 or self.work_side < 16 or self.max_backward < 0 \
                or self.smooth_window < 1 or not 0.0 <= self.scale_step < 0.5 or not 0.0 <= self.angle_step < 20 \
                or not 0.0 <= self.near <= self.search:
            raise ValueError(f"invalid box-tracking settings: {self}")


@dataclass
class BoxTrack:
    """The followed box: a face track (a box on every frame), the match score per frame, the unsure ranges."""

    track: FaceTrack  # its ``angles`` are the in-plane rotations
    confidence: np.ndarray  # (n,) float32: the best normalised correlation per frame (1 on keyframes)
    unsure: list[tuple[float, float]]  # (start, end) seconds of runs of frames without a sure match

    @property
    def angles(self) -> np.ndarray:
        """(n,) float32: the box's rotation per frame, degrees counter-clockwise from its keyframe's."""
        assert self.track.angles is not None
        return self.track.angles

    def report(self) -> str:
        """One line for the run's log: where to add keyframes, or that every frame was followed."""
        if not self.unsure:
            return f"tracked box: followed on all {self.track.n_frames} frames"
        ranges = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in self.unsure)
        return (f"tracked box: unsure on {len(self.unsure)} range(s) ({ranges}), box held or interpolated there; "
                "add a keyframe (--track_box ... @SECONDS) inside them if the face is off")


def track_box(frames: Iterable[np.ndarray], keyframes: Sequence[Keyframe], *, fps: float,
              frame_size: tuple[int, int], scale: float = 1.0, settings: BoxTrackSettings | None = None,
              seen: Callable[[int, np.ndarray, np.ndarray], None] | None = None) -> BoxTrack:
    """Follow the keyframes' box through ``frames`` (uint8 BGR, downscaled by the caller by ``scale``).

    ``seen(i, frame, box)``, if given, is called with each frame as it is matched and the box's forward estimate
    there ((x1, y1, x2, y2, angle) in ``frame_size`` pixels; before the first keyframe, that keyframe's box), so a
    caller can keep what it needs of the frames without decoding them again.

    Keyframe boxes and the result are in ``frame_size`` = (width, height) pixels. A keyframe time is rounded to
    the nearest frame; the latest of several on one frame wins. Raises LipsyncError for a keyframe box outside
    the frame or after the clip's end.
    """
    settings = settings or BoxTrackSettings()
    if not keyframes:
        raise LipsyncError(f"no keyframe given: set the face box with --track_box {KEYFRAME_FORMAT}")
    w, h = frame_size
    anchors: dict[int, Box] = {}
    holes: dict[int, Box] = {}
    for kf in keyframes:
        t, b, l, r = kf.box
        if b > h or r > w:
            raise LipsyncError(f"keyframe box {t} {b} {l} {r} at {kf.t:g} s lies outside the {w}x{h} frame; "
                               "give top bottom left right inside it")
        anchors[int(round(kf.t * fps))] = kf.box
        if kf.hole is not None:
            holes[int(round(kf.t * fps))] = kf.hole
    smallest = min(max(b - t, r - l) for t, b, l, r in anchors.values()) * scale
    work = scale * min(1.0, settings.work_side / smallest)  # full-resolution pixels -> work pixels
    matcher = _Matcher(settings, work, scale)
    first = anchors[min(anchors)]
    before = np.array([first[2], first[0], first[3], first[1], 0.0], np.float64)
    n = 0
    for i, frame in enumerate(frames):
        matcher.add(i, frame, anchors.get(i), holes.get(i))
        if seen is not None:
            seen(i, frame, matcher.fwd[i][0] if i in matcher.fwd else before)
        n = i + 1
    late = [k for k in anchors if k >= n]
    if late:
        raise LipsyncError(f"a keyframe at {min(late) / fps:.2f} s is after the clip's end ({n / fps:.2f} s)")
    boxes, conf, sure = matcher.combine(n)
    boxes = _fill_unsure(boxes, sure)
    boxes = _smooth(boxes, settings.smooth_window)
    out: list[Box | None] = []
    for x1, y1, x2, y2 in boxes[:, :4]:
        t, b, l, r = max(0, round(y1)), min(h, round(y2)), max(0, round(x1)), min(w, round(x2))
        out.append((t, b, l, r) if b > t and r > l else None)
    track = FaceTrack(boxes=out, fps=fps, frame_size=frame_size, angles=boxes[:, 4].astype(np.float32),
                      centres=((boxes[:, :2] + boxes[:, 2:4]) / 2).astype(np.float32))
    return BoxTrack(track, conf.astype(np.float32), _ranges(~sure, fps))


@dataclass
class _Template:
    image: np.ndarray  # float32 grey, work pixels
    box: np.ndarray  # (x1, y1, x2, y2) full-resolution pixels of the keyframe's box
    mask: np.ndarray | None = None  # float32 1 where the template counts (None: everywhere)


def _rotated(image: np.ndarray, mask: np.ndarray | None, angle: float) -> tuple[np.ndarray, np.ndarray | None]:
    """``image`` and its mask turned ``angle`` degrees counter-clockwise about the centre, same size; the
    corners that come from outside are masked out."""
    if angle == 0.0:
        return image, mask
    h, w = image.shape
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    img = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    base = mask if mask is not None else np.ones_like(image)
    rot = cv2.warpAffine(base, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    return img, rot


class _Matcher:
    """Forward passes as frames arrive, a backward pass at each keyframe; per-frame estimates of both."""

    def __init__(self, settings: BoxTrackSettings, work: float, scale: float) -> None:
        self.s = settings
        self.work = work  # full-resolution -> work pixels
        self.rel = work / scale  # given frames -> work pixels
        self.buffer: deque[tuple[int, np.ndarray]] = deque(maxlen=settings.max_backward + 1)
        self.fwd: dict[int, tuple[np.ndarray, float]] = {}  # frame -> ((x1, y1, x2, y2, angle) full res, score)
        self.bwd: dict[int, tuple[np.ndarray, float]] = {}
        self.anchor_of: dict[int, int] = {}  # frame -> keyframe its forward estimate started from
        self.keys: list[int] = []
        self.state: tuple[_Template, np.ndarray] | None = None  # template, last sure box
        self.last_key = -1
        self.turn = 0  # frames matched (``alternate``: even ones try sizes, odd ones angles)

    def _grey(self, frame: np.ndarray) -> np.ndarray:
        g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        if self.rel != 1.0:
            size = (max(1, round(g.shape[1] * self.rel)), max(1, round(g.shape[0] * self.rel)))
            g = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
        return g.astype(np.float32)

    def add(self, i: int, frame: np.ndarray, anchor: Box | None, hole: Box | None = None) -> None:
        img = self._grey(frame)
        self.buffer.append((i, img))
        if anchor is not None:
            t, b, l, r = anchor
            box = np.array([l, t, r, b, 0.0], np.float64)
            image = _crop(img, box[:4] * self.work)
            mask = None
            if hole is not None:
                mask = np.ones_like(image)
                ht, hb, hl, hr = ((np.array(hole, np.float64) - [t, t, l, l]) * self.work).round().astype(int)
                mask[max(0, ht):max(0, hb), max(0, hl):max(0, hr)] = 0
            tpl = _Template(image, box[:4], mask)
            self.keys.append(i)
            self.fwd[i] = self.bwd[i] = (box, 1.0)
            self.anchor_of[i] = i
            self._backward(i, tpl)
            self.state = (tpl, box)
            self.last_key = i
        elif self.state is not None:
            tpl, last = self.state
            found, score = self._match(img, tpl, last)
            self.fwd[i] = (found if score >= self.s.min_score else last, score)
            self.anchor_of[i] = self.last_key
            if score >= self.s.min_score:
                self.state = (tpl, found)

    def _backward(self, key: int, tpl: _Template) -> None:
        last = np.append(tpl.box, 0.0)
        for i, img in reversed(list(self.buffer)[:-1]):
            if i <= self.last_key:
                break
            found, score = self._match(img, tpl, last)
            self.bwd[i] = (found if score >= self.s.min_score else last, score)
            if score >= self.s.min_score:
                last = found

    def _match(self, img: np.ndarray, tpl: _Template, last: np.ndarray) -> tuple[np.ndarray, float]:
        """The best match of ``tpl`` near ``last`` ((x1, y1, x2, y2, angle), full res): three sizes around
        ``last``'s at its angle, then three angles around it at the best size (``alternate``: one or the other);
        and its score."""
        size = (last[2:4] - last[:2])
        rel = float(np.mean(size / (tpl.box[2:] - tpl.box[:2])))
        centre = (last[:2] + last[2:4]) / 2 * self.work
        angle = float(last[4])
        self.turn += 1
        sizes, turns = (self.turn % 2 == 0, self.turn % 2 == 1) if self.s.alternate else (True, True)
        search = self.s.search
        here: tuple[float, float, float] | None = None
        if self.s.near:  # the last size and angle near the last place; the full search if it lands on the edge
            score, cx, cy, edge = self._at(img, tpl, centre, rel, angle, self.s.near)
            if score >= self.s.min_score and not edge:
                search, centre, here = self.s.near, np.array([cx, cy]), (score, cx, cy)
        step = self.s.scale_step if sizes else 0.0
        factors = (1 - step, 1.0, 1 + step) if step else (1.0,)
        sized = [here if f == 1.0 and here is not None else self._at(img, tpl, centre, rel * f, angle, search)[:3]
                 for f in factors]
        best = max(range(len(sized)), key=lambda j: sized[j][0])
        score, cx, cy = sized[best]
        k = rel * factors[best]
        if len(sized) == 3 and best == 1 and min(r[0] for r in sized) > -1:
            k *= (1 + step) ** _vertex(*(r[0] for r in sized))  # a size between the steps
        a_step = self.s.angle_step if turns else 0.0
        if a_step:
            angles = (angle - a_step, angle + a_step)
            turned = [self._at(img, tpl, centre, k, a, search)[:3] for a in angles]
            trio = [turned[0], (score, cx, cy), turned[1]]
            j = max(range(3), key=lambda n: trio[n][0])
            score, cx, cy = trio[j]
            angle += (j - 1) * a_step
            if j == 1 and min(r[0] for r in trio) > -1:
                angle += a_step * _vertex(*(r[0] for r in trio))
            angle = float(np.clip(angle, -self.s.max_angle, self.s.max_angle))
        half = (tpl.box[2:] - tpl.box[:2]) * k / 2
        c_full = np.array([cx, cy]) / self.work
        return np.concatenate([c_full - half, c_full + half, [angle]]), score

    def _at(self, img: np.ndarray, tpl: _Template, centre: np.ndarray, k: float, angle: float,
            search: float) -> tuple[float, float, float, bool]:
        """(score, centre x, centre y, on the search area's edge) in work pixels of ``tpl`` scaled by ``k`` and
        turned by ``angle``, searched ``search`` of its size around ``centre``; score -1 when the search area is
        smaller than the template."""
        th, tw = (max(4, round(v * k)) for v in tpl.image.shape)
        interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
        t_img = cv2.resize(tpl.image, (tw, th), interpolation=interp)
        t_mask = None if tpl.mask is None else cv2.resize(tpl.mask, (tw, th), interpolation=cv2.INTER_NEAREST)
        t_img, t_mask = _rotated(t_img, t_mask, angle)
        m = max(2.0, search * max(tw, th))
        x0, y0 = max(0, int(centre[0] - tw / 2 - m)), max(0, int(centre[1] - th / 2 - m))
        x1 = min(img.shape[1], int(math.ceil(centre[0] + tw / 2 + m)))
        y1 = min(img.shape[0], int(math.ceil(centre[1] + th / 2 + m)))
        if x1 - x0 < tw or y1 - y0 < th:
            return -1.0, 0.0, 0.0, True
        res = cv2.matchTemplate(img[y0:y1, x0:x1], t_img, cv2.TM_CCOEFF_NORMED, mask=t_mask)
        res = np.nan_to_num(res, nan=-1.0, posinf=-1.0, neginf=-1.0)
        _, score, _, (px, py) = cv2.minMaxLoc(res)
        dx, dy = _subpixel(res, px, py)
        edge = px in (0, res.shape[1] - 1) or py in (0, res.shape[0] - 1)
        return float(score), x0 + px + dx + tw / 2, y0 + py + dy + th / 2, edge

    def combine(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n, 4) boxes (x1, y1, x2, y2), (n,) scores and (n,) sure flags from the two passes."""
        boxes = np.zeros((n, 5))
        conf = np.full(n, -1.0)
        sure = np.zeros(n, bool)
        keys = sorted(self.keys)
        for i in range(n):
            fwd, bwd = self.fwd.get(i), self.bwd.get(i)
            if fwd is not None and bwd is not None:
                # Cross-fade between the keyframes around i: each estimate counts most near its own keyframe.
                prev, nxt = self.anchor_of[i], next(k for k in keys if k >= i)
                wf = (nxt - i) / (nxt - prev) if nxt > prev else 0.5
                ests = [(*fwd, wf), (*bwd, 1.0 - wf)]
            else:
                ests = [(*e, 1.0) for e in (fwd, bwd) if e is not None]
            if not ests:
                continue
            conf[i] = max(sc for _, sc, _ in ests)
            good = [(bx, wt) for bx, sc, wt in ests if sc >= self.s.min_score]
            if good:
                total = sum(wt for _, wt in good)
                boxes[i] = sum(bx * wt for bx, wt in good) / total if total > 0 else good[0][0]
                sure[i] = True
            else:
                boxes[i] = ests[0][0]
        return boxes, conf, sure


def _crop(img: np.ndarray, box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = min(img.shape[1], max(x2, x1 + 4)), min(img.shape[0], max(y2, y1 + 4))
    return img[y1:y2, x1:x2].copy()


def _vertex(a: float, b: float, c: float) -> float:
    """Where the parabola through (-1, a), (0, b), (1, c) peaks, within ±0.5 (0 when it has no maximum)."""
    den = a - 2 * b + c
    return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den < 0 else 0.0


def _subpixel(res: np.ndarray, x: int, y: int) -> tuple[float, float]:
    """Offset of the peak of a parabola through the maximum and its neighbours, per axis (0 at the border)."""
    def peak(a: float, b: float, c: float) -> float:
        den = a - 2 * b + c
        return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den < 0 else 0.0

    dx = peak(res[y, x - 1], res[y, x], res[y, x + 1]) if 0 < x < res.shape[1] - 1 else 0.0
    dy = peak(res[y - 1, x], res[y, x], res[y + 1, x]) if 0 < y < res.shape[0] - 1 else 0.0
    return dx, dy


def _fill_unsure(boxes: np.ndarray, sure: np.ndarray) -> np.ndarray:
    """Unsure frames interpolated linearly between the nearest sure frames; held before the first/after the last."""
    idx = np.flatnonzero(sure)
    if len(idx) == 0 or sure.all():
        return boxes
    out = boxes.copy()
    frames = np.arange(len(boxes))
    for c in range(boxes.shape[1]):
        out[:, c] = np.interp(frames, idx, boxes[idx, c])
    return out


def _smooth(boxes: np.ndarray, window: int) -> np.ndarray:
    """Centred moving mean of the box centre, size and angle (shrinking at the ends)."""
    if window <= 1 or len(boxes) < 2:
        return boxes
    centre = (boxes[:, :2] + boxes[:, 2:4]) / 2
    size = boxes[:, 2:4] - boxes[:, :2]
    c, s = smooth_centred(centre, window).astype(np.float64), smooth_centred(size, window).astype(np.float64)
    a = smooth_centred(boxes[:, 4:5], window).astype(np.float64)
    return np.concatenate([c - s / 2, c + s / 2, a], axis=1)


def _ranges(flags: np.ndarray, fps: float) -> list[tuple[float, float]]:
    """(start, end) seconds of each run of True (end = the time just after the run's last frame)."""
    out = []
    i, n = 0, len(flags)
    while i < n:
        if flags[i]:
            j = i
            while j < n and flags[j]:
                j += 1
            out.append((round(i / fps, 2), round(j / fps, 2)))
            i = j
        else:
            i += 1
    return out
