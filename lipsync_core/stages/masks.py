"""Blend-mask construction: pick parsing classes, restrict to the lower face, feather the edge.

All masks are ``(H, W)`` float32 in [0, 1] over one face crop (1 = take the generated pixel).
The intended order is ``class_mask -> lower_face -> feather``: the first two give a hard region
and :func:`feather` turns every edge of it, the lower-face cut included, into a smooth ramp.
"""
from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

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
    inside = (np.asarray(mask) > 0.5).astype(np.uint8)
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
