"""Blend-mask construction: pick parsing classes, restrict to the lower face, feather the edge; the mouth region.

All masks are ``(H, W)`` float32 in [0, 1] over one face crop (1 = take the generated pixel).
The intended order is ``class_mask -> lower_face -> feather``: the first two give a hard region
and :func:`feather` turns every edge of it, the lower-face cut included, into a smooth ramp.
The mouth region (:func:`mouth_ellipse`, :func:`ellipse_weight`) is an ellipse placed from landmarks or from
where a detector's box holds the mouth; mouth-only blending, CodeFormer's paste-back and sharpening share it.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from ..face.types import MouthInBox

#: BiSeNet (face-parsing) class ids, in the labelling of the published 19-class checkpoint.
SKIN, MOUTH, UPPER_LIP, LOWER_LIP = 1, 11, 12, 13
#: Wav2Lip-HQ's replaced region: skin, inner mouth and both lips.
HQ_FACE_CLASSES: tuple[int, ...] = (SKIN, MOUTH, UPPER_LIP, LOWER_LIP)


def class_mask(parse_map: np.ndarray, classes: Iterable[int]) -> np.ndarray:
    """``(H, W)`` float32 mask that is 1 where the integer class map holds one of ``classes``, else 0."""
    if parse_map.ndim != 2:
        raise ValueError(f"parse_map must be (H, W) class ids, got shape {parse_map.shape}")
    return np.isin(parse_map, np.asarray(tuple(classes))).astype(np.float32)


def lower_face(mask: np.ndarray, fraction: float) -> np.ndarray:
    """Copy of ``mask`` with every row above the lowest ``fraction`` of the crop height set to 0.

    The cut is hard; apply :func:`feather` afterwards to soften it like any other edge.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"lower-face fraction must be in (0, 1], got {fraction}")
    out = np.array(mask, dtype=np.float32, copy=True)
    out[: int(round(out.shape[0] * (1.0 - fraction)))] = 0.0
    return out


def feather(mask: np.ndarray, width_px: float, *, zero_border: bool = False) -> np.ndarray:
    """Soft version of a region: a smooth ramp ``width_px`` pixels wide just inside every edge.

    ``mask`` is read as a region (values > 0.5 are inside). Each inside pixel gets
    ``smoothstep((d - 1) / width_px)``, where ``d`` is its Euclidean distance to the nearest outside
    pixel: the outermost inside pixels are exactly 0, pixels at least ``width_px + 1`` deep are 1,
    and the weight never decreases going inwards (adjacent pixels differ by at most
    ``1.5 / width_px``, so there is no hard step). The ramp lies inside the region, so nothing
    outside it is ever blended. With ``zero_border`` the area beyond the array counts as outside,
    so the result is also 0 on the crop border and fades in from it. ``width_px <= 0`` returns
    the hard region.
    """
    inside: np.ndarray = (np.asarray(mask) > 0.5).astype(np.uint8)
    if width_px <= 0:
        out = inside.astype(np.float32)
        if zero_border:
            out[[0, -1]] = 0.0
            out[:, [0, -1]] = 0.0
        return out
    if zero_border:
        inside = cv2.copyMakeBorder(inside, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    if inside.all():  # no outside pixel: the distance is unbounded
        return np.ones(inside.shape, np.float32)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    if zero_border:
        dist = dist[1:-1, 1:-1]
    t = np.clip((dist - 1.0) / float(width_px), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


# ------------------------------------------------------------------------------------------- the mouth region


#: Largest accepted ``mouth_scale`` (the region then covers most of a face box).
MAX_MOUTH_SCALE = 3.0
#: Where a frontal photographic face's mouth sits in an S3FD-like box.
FRONTAL_MOUTH = MouthInBox()


@dataclass(frozen=True)
class Ellipse:
    """An ellipse in frame pixels: ``centre`` (x, y), semi-axes ``axes`` (a along ``angle``, b across), radians."""

    centre: tuple[float, float]
    axes: tuple[float, float]
    angle: float = 0.0


def mouth_ellipse(box: tuple[int, int, int, int], landmarks: np.ndarray | None = None,
                  placement: MouthInBox = FRONTAL_MOUTH, scale: float = 1.0) -> Ellipse:
    """The mouth region of one face, its semi-axes multiplied by ``scale``.

    From 5-point landmarks (RetinaFace order; mouth corners last): centred a tenth of the mouth width below the
    corners' midpoint, 0.85 x 0.5 mouth widths, turned with the line through the corners. Without landmarks,
    from the (top, bottom, left, right) box and where the detector's boxes hold the mouth (``placement``).
    """
    if landmarks is not None:
        left, right = np.asarray(landmarks, np.float64)[3], np.asarray(landmarks, np.float64)[4]
        d = right - left
        width = float(np.hypot(*d))
        angle = math.atan2(d[1], d[0])
        centre = (left + right) / 2 + 0.1 * width * np.array([-math.sin(angle), math.cos(angle)])
        return Ellipse((float(centre[0]), float(centre[1])), (0.85 * width * scale, 0.5 * width * scale), angle)
    t, b, l, r = box
    return Ellipse((l + placement.cx * (r - l), t + placement.cy * (b - t)),
                   (placement.ax * (r - l) * scale, placement.ay * (b - t) * scale))


def ellipse_weight(ellipse: Ellipse, rect: tuple[int, int, int, int], *, hard: bool = False) -> np.ndarray:
    """The region's weight over ``rect`` = (x0, y0, x1, y1) frame pixels, float32 (y1 - y0, x1 - x0).

    Feathered: 1 inside 70 % of the ellipse, a smoothstep down to exactly 0 at its edge, 0 beyond. ``hard``:
    1 inside the ellipse, 0 outside (for the original's hard paste).
    """
    x0, y0, x1, y1 = rect
    (cx, cy), (a, b), ang = ellipse.centre, ellipse.axes, ellipse.angle
    if a <= 0 or b <= 0 or x1 <= x0 or y1 <= y0:
        return np.zeros((max(0, y1 - y0), max(0, x1 - x0)), np.float32)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    dx, dy = xs - cx, ys - cy
    u = (dx * math.cos(ang) + dy * math.sin(ang)) / a
    v = (-dx * math.sin(ang) + dy * math.cos(ang)) / b
    rho = np.sqrt(u * u + v * v)
    if hard:
        return (rho <= 1.0).astype(np.float32)
    t = np.clip((1.0 - rho) / 0.3, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def ellipse_bounds(ellipse: Ellipse, frame_shape: tuple[int, ...], margin: float = 0.0) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the ellipse's bounding rectangle grown by ``margin`` pixels, clipped to the frame
    (empty when it misses the frame)."""
    (cx, cy), (a, b), ang = ellipse.centre, ellipse.axes, ellipse.angle
    ext_x = math.hypot(a * math.cos(ang), b * math.sin(ang)) + margin
    ext_y = math.hypot(a * math.sin(ang), b * math.cos(ang)) + margin
    h, w = frame_shape[:2]
    x0, y0 = max(0, int(math.floor(cx - ext_x))), max(0, int(math.floor(cy - ext_y)))
    x1, y1 = min(w, int(math.ceil(cx + ext_x)) + 1), min(h, int(math.ceil(cy + ext_y)) + 1)
    return x0, y0, max(x0, x1), max(y0, y1)
