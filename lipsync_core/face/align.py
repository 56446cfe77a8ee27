"""5-point similarity alignment to the FFHQ 512 face template, and pasting a processed face back.

The template is the one CodeFormer's face helper (facexlib ``FaceRestoreHelper``, 5 landmarks, 512x512
output) aligns to: left eye, right eye, nose tip, left mouth corner, right mouth corner, in image
coordinates ("left" = smaller x), which is also RetinaFace's landmark order. Restoration networks
trained on FFHQ-aligned faces expect exactly this placement.

Conventions: ``M`` is a 2x3 float64 matrix mapping frame pixels to aligned-face pixels (OpenCV's
``warpAffine`` convention, pixel centres at integer coordinates); its inverse maps back.
"""
from __future__ import annotations

import cv2
import numpy as np

#: Landmark positions in a 512x512 aligned face (facexlib's 5-point FFHQ template).
FFHQ_TEMPLATE_512 = np.array([[192.98138, 239.94708], [318.90277, 240.19360], [256.63416, 314.01935],
                              [201.26117, 371.41043], [313.08905, 371.15118]], dtype=np.float64)
#: Fill colour of the aligned face outside the frame (BGR), as the reference helper uses.
BORDER_BGR = (135, 133, 132)


def face_template(size: int = 512) -> np.ndarray:
    """The 5-point template scaled to a ``size`` x ``size`` aligned face, (5, 2) float64."""
    return FFHQ_TEMPLATE_512 * (size / 512.0)


def estimate_affine(landmarks: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping ``landmarks`` onto
    ``template``, as a 2x3 float64 matrix.

    Closed form: with points as complex numbers and both sets centred, the best ``z -> a*z + b`` has
    ``a = sum(conj(p) * q) / sum(|p|^2)``.
    """
    src = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(template, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or len(src) < 2:
        raise ValueError(f"need matching point sets of at least 2 points, got {src.shape} and {dst.shape}")
    p = src[:, 0] + 1j * src[:, 1]
    q = dst[:, 0] + 1j * dst[:, 1]
    p0, q0 = p.mean(), q.mean()
    denom = np.sum(np.abs(p - p0) ** 2)
    if denom <= 1e-12:
        raise ValueError("landmarks are degenerate (all points coincide)")
    a = np.sum(np.conj(p - p0) * (q - q0)) / denom
    b = q0 - a * p0
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]], dtype=np.float64)


def inverse_affine(M: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix (aligned face -> frame for an alignment matrix)."""
    return cv2.invertAffineTransform(np.asarray(M, dtype=np.float64))


def warp_face(frame: np.ndarray, M: np.ndarray, size: int = 512) -> np.ndarray:
    """The ``size`` x ``size`` aligned face: ``frame`` warped by ``M`` (bilinear), ``BORDER_BGR`` outside it."""
    return cv2.warpAffine(frame, np.asarray(M, dtype=np.float64), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=BORDER_BGR)


def face_region(M: np.ndarray, size: int, frame_shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) integer bounds in the frame that contain the aligned square mapped back, clipped to the
    frame; None when it does not overlap the frame."""
    corners = np.array([[0, 0, 1], [size - 1, 0, 1], [0, size - 1, 1], [size - 1, size - 1, 1]], np.float64)
    pts = corners @ inverse_affine(M).T
    h, w = frame_shape[:2]
    x0, y0 = (max(0, int(np.floor(v)) - 1) for v in pts.min(0))
    x1, y1 = min(w, int(np.ceil(pts[:, 0].max())) + 2), min(h, int(np.ceil(pts[:, 1].max())) + 2)
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


def paste_back(frame: np.ndarray, face: np.ndarray, M: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Blend an aligned ``face`` (S x S x 3 uint8) back into ``frame`` in place, and return ``frame``.

    ``mask`` (S x S float in [0, 1], aligned-face space) is the weight of the face. Face and mask are
    warped back with the inverse of ``M`` (bilinear) only over :func:`face_region`; the warped mask is 0
    outside the aligned square, so pixels outside it, and wherever the mask is 0, keep their exact values.
    """
    size = face.shape[0]
    if face.shape[:2] != (size, size) or mask.shape[:2] != (size, size):
        raise ValueError(f"face {face.shape} and mask {mask.shape} must both be square and the same size")
    region = face_region(M, size, frame.shape)
    if region is None:
        return frame
    x0, y0, x1, y1 = region
    inv = inverse_affine(M)
    inv[:, 2] -= (x0, y0)  # warp straight into the region instead of the whole frame
    dsize = (x1 - x0, y1 - y0)
    back = cv2.warpAffine(face.astype(np.float32), inv, dsize, flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = cv2.warpAffine(np.asarray(mask, np.float32), inv, dsize, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    blended = roi + alpha[..., None] * (back - roi)
    frame[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return frame


#: Where the five template points fall inside a face box (fractions of its width and height), from the
#: FFHQ template and the box a face detector draws around that aligned face (forehead to chin, cheek to cheek:
#: x 130-382, y 150-440 of 512). An approximation, for boxes that come without landmarks.
_POINTS_IN_BOX = np.array([[0.25, 0.31], [0.75, 0.31], [0.50, 0.57], [0.28, 0.76], [0.73, 0.76]], np.float32)


def landmarks_from_box(box: tuple[int, int, int, int]) -> np.ndarray:
    """Approximate (5, 2) landmarks for a (top, bottom, left, right) face box: for a fixed ``--box``, Haar boxes
    and faces the landmark detector misses, so restoration still has an alignment (an upright face is assumed)."""
    t, b, l, r = box
    return (_POINTS_IN_BOX * np.array([r - l, b - t], np.float32) + np.array([l, t], np.float32)).astype(np.float32)
