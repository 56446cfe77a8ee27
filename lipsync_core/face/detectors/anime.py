"""Anime / 2D-drawn faces: OpenCV's LBP cascade ``lbpcascade_animeface.xml`` (nagadomi, MIT).

The cascade runs with its author's settings (equalised grey image, scaleFactor 1.1, minNeighbors 5,
minSize 24). Its square box covers hair and forehead and puts the eyes near its middle, while Wav2Lip wants an
S3FD-like box: the eyes in the upper half (above the half Wav2Lip redraws), the mouth about three quarters down
and the chin at the bottom, cheek to cheek across. So the box is cut to ``FACE_IN_CASCADE`` (rows and columns of
the cascade box); ``MOUTH`` is where the mouth lies in that box. Where the features sit in both boxes on the
reference anime material: ``docs/notes.md``.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..types import Detection, MouthInBox
from .haar import drop_nested

#: Rows (top, bottom) and columns (left, right) of the cascade box, as fractions, that make the face box.
FACE_IN_CASCADE = (0.25, 0.83, 0.10, 0.90)
#: The mouth region inside the mapped face box: the drawn mouth with a margin, since Wav2Lip draws a
#: photographic mouth that is wider.
MOUTH = MouthInBox(cx=0.5, cy=0.73, ax=0.16, ay=0.10)


def face_box(x: float, y: float, w: float, h: float) -> np.ndarray:
    """The face box (x1, y1, x2, y2) float32 for a cascade box (x, y, w, h): see ``FACE_IN_CASCADE``."""
    t, b, l, r = FACE_IN_CASCADE
    return np.array([x + l * w, y + t * h, x + r * w, y + b * h], np.float32)


class AnimeFaceDetector:
    """Anime faces on uint8 BGR frames with the LBP cascade at ``path``; ``score`` is the neighbour count.

    Boxes are the mapped face boxes (``face_box``), not the cascade's. A cascade box lying inside a larger one
    is dropped, as for Haar. Raises ``LipsyncError`` when ``path`` is not a usable cascade file.
    """

    def __init__(self, path: str | Path, scale_factor: float = 1.1, min_neighbors: int = 5,
                 min_size: int = 24) -> None:
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        # Imported here: the models package imports torch, which reading this module's MOUTH (the run plan, at
        # every CLI start) must not.
        from ...models.cascade import load_cascade

        self._cascade = load_cascade(path)

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        return [self._detect_one(f) for f in frames]

    def _detect_one(self, frame: np.ndarray) -> list[Detection]:
        gray = cv2.equalizeHist(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
        rects, neighbours = self._cascade.detectMultiScale2(gray, scaleFactor=self.scale_factor,
                                                            minNeighbors=self.min_neighbors,
                                                            minSize=(self.min_size, self.min_size))
        if len(rects) == 0:
            return []
        xywh = np.asarray(rects, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(neighbours, dtype=np.float32).reshape(-1)
        corners = np.column_stack((xywh[:, :2], xywh[:, :2] + xywh[:, 2:]))
        keep = sorted(drop_nested(corners), key=lambda i: -scores[i])
        h, w = frame.shape[:2]
        out = []
        for i in keep:
            box = face_box(*xywh[i])
            box[[0, 2]] = np.clip(box[[0, 2]], 0, w)
            box[[1, 3]] = np.clip(box[[1, 3]], 0, h)
            out.append(Detection(box, float(scores[i])))
        return out
