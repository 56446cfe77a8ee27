"""Paste the synced face back into the frame: feathered (default) or the original's hard paste; optionally only
through the mouth region (:class:`MouthMask`)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..face.types import MouthInBox
from ..support.errors import LipsyncError
from .base import Batch
from .masks import MAX_MOUTH_SCALE, Ellipse, ellipse_weight, mouth_ellipse


def _ramp(n: int, start: float, width: float) -> np.ndarray:
    """Smoothstep from 0 at ``start`` to 1 at ``start + width`` over ``n`` pixel centres."""
    x = (np.arange(n, dtype=np.float32) + 0.5 - start) / max(width, 1e-6)
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@lru_cache(maxsize=64)
def lower_face_mask(h: int, w: int, top: float = 0.45, edge: float = 0.12) -> np.ndarray:
    """Soft mask (h, w) float32 over the lower face: 0 above ``top``·h, 1 in the mouth area, 0 at every box edge.

    ``edge`` is the feather width as a fraction of the box size; the mask reaches exactly 0 on the box
    border, so pasting leaves no step where the box ends. Wav2Lip only redraws the lower half (its input
    hides it), so the upper half keeps the original pixels.
    """
    ew, eh = max(1.0, edge * w), max(1.0, edge * h)
    vy = _ramp(h, top * h, eh) * _ramp(h, 0.0, eh)[::-1]
    vx = _ramp(w, 0.0, ew) * _ramp(w, 0.0, ew)[::-1]
    m = np.outer(vy, vx).astype(np.float32)
    m.setflags(write=False)
    return m


@dataclass
class MouthMask:
    """Mouth-only blending: each face's mask becomes its mouth region (intersected with a mask already there,
    e.g. the HQ segmentation), so only pixels inside it change.

    The region is :func:`masks.mouth_ellipse` (the track's landmarks when it has them and ``use_landmarks``,
    else ``placement`` in the box), its semi-axes times ``scale``; feathered to 0 at its edge, or ``hard`` (0/1)
    for the original's hard paste. ``use_landmarks=False`` when the landmarks were made up from the box (for
    restoration), so the detector's own placement wins. Runs after the segmentation mask, before the blend;
    :meth:`weight` gives restoration the same region.
    """

    placement: MouthInBox = MouthInBox()
    scale: float = 1.0
    hard: bool = False
    use_landmarks: bool = True
    name: str = "mouth_mask"

    def __post_init__(self) -> None:
        if not 0.0 < self.scale <= MAX_MOUTH_SCALE:
            raise LipsyncError(f"--mouth_scale must be in (0, {MAX_MOUTH_SCALE:g}], got {self.scale}")

    def ellipse(self, box: tuple[int, int, int, int], landmarks: np.ndarray | None) -> Ellipse:
        """The mouth region of the face in ``box`` (top, bottom, left, right), in frame pixels."""
        return mouth_ellipse(box, landmarks if self.use_landmarks else None, self.placement, self.scale)

    def weight(self, box: tuple[int, int, int, int], landmarks: np.ndarray | None) -> np.ndarray:
        """The region over the (top, bottom, left, right) box: (bottom - top, right - left) float32 in [0, 1]."""
        t, b, l, r = box
        return ellipse_weight(self.ellipse(box, landmarks), (l, t, r, b), hard=self.hard)

    def __call__(self, batch: Batch) -> None:
        out = []
        for k, i in enumerate(batch.face_positions):
            m = self.weight(batch.box(i), None if batch.landmarks is None else batch.landmarks[i])
            out.append(m if batch.masks is None else np.minimum(m, batch.masks[k]))
        batch.masks = out


@dataclass
class BlendStage:
    """Resize each predicted face to its box and blend it in: ``feather`` or ``hard`` (original parity).

    ``batch.masks`` (segmentation, mouth region), when given, weight the feathered blend; the hard paste
    ignores them (the original's whole box) unless ``hard_masked``, which pastes where the mask is above 0.5
    (mouth-only with ``--blend hard``).
    """

    mode: str = "feather"
    hard_masked: bool = False
    name: str = "blend"

    def __call__(self, batch: Batch) -> None:
        if batch.pred is None:
            return
        for k, i in enumerate(batch.face_positions):
            t, b, l, r = batch.box(i)
            frame = batch.frames[i]
            if self.mode == "hard":
                # The original casts to uint8 before resizing; kept for parity.
                patch = cv2.resize((batch.pred[k] * 255.0).astype(np.uint8), (r - l, b - t))
                if self.hard_masked and batch.masks is not None:
                    keep = batch.masks[k] > 0.5
                    frame[t:b, l:r][keep] = patch[keep]
                else:
                    frame[t:b, l:r] = patch
                continue
            shrink = batch.pred[k].shape[0] > b - t  # e.g. a 384-pixel super-resolved face into a smaller box
            patch = cv2.resize(batch.pred[k], (r - l, b - t),
                               interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR) * 255.0
            mask = batch.masks[k] if batch.masks is not None else lower_face_mask(b - t, r - l)
            region = frame[t:b, l:r].astype(np.float32)
            region += mask[..., None] * (patch - region)
            frame[t:b, l:r] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
