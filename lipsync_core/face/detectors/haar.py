"""OpenCV Haar-cascade face detector: no download, so the pipeline runs with only the Wav2Lip checkpoint.

Box mapping to S3FD-like boxes: OpenCV's frontal-face box is square, from mid-forehead to about the chin
(on the real talking-head test clips it ends at or just above the chin). S3FD's box is taller than wide
and includes the chin, which Wav2Lip's crop needs (it regenerates the lower half). So the bottom edge is moved
down by ``CHIN_EXTENSION`` (10 %) of the box height; top, left and right are kept.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ...support.errors import LipsyncError
from ..types import Detection

CASCADE_NAME = "haarcascade_frontalface_default.xml"
CHIN_EXTENSION = 0.10
#: A detection lying this much (fraction of its own area) inside a larger one is a false positive on the same face.
NESTED_FRACTION = 0.8


def cascade_path() -> Path:
    """The bundled frontal-face cascade, or a LipsyncError saying how to get one."""
    root = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(root) / CASCADE_NAME if root else None
    if path is None or not path.is_file():
        raise LipsyncError(f"OpenCV {cv2.__version__} does not bundle {CASCADE_NAME}; "
                           "install opencv-python-headless<5 or use --detector s3fd")
    return path


class HaarDetector:
    """Viola-Jones frontal faces on uint8 BGR frames; ``score`` is the cascade's neighbour count (not a probability).

    Faces smaller than ``min_size_frac`` of the frame's shorter side (and 24 px, the cascade's window) are ignored.
    """

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size_frac: float = 0.06) -> None:
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size_frac = min_size_frac
        self._cascade = cv2.CascadeClassifier(str(cascade_path()))
        if self._cascade.empty():
            raise LipsyncError(f"OpenCV could not load {cascade_path()}; reinstall opencv-python-headless<5")

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        return [self._detect_one(f) for f in frames]

    def _detect_one(self, frame: np.ndarray) -> list[Detection]:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        side = max(24, int(self.min_size_frac * min(gray.shape)))
        rects, neighbours = self._cascade.detectMultiScale2(gray, scaleFactor=self.scale_factor,
                                                            minNeighbors=self.min_neighbors, minSize=(side, side))
        if len(rects) == 0:
            return []
        xywh = np.asarray(rects, dtype=np.float32).reshape(-1, 4)
        boxes = np.column_stack((xywh[:, 0], xywh[:, 1], xywh[:, 0] + xywh[:, 2],
                                 xywh[:, 1] + xywh[:, 3] * (1 + CHIN_EXTENSION)))
        boxes[:, 3] = np.minimum(boxes[:, 3], frame.shape[0])
        scores = np.asarray(neighbours, dtype=np.float32).reshape(-1)
        keep = drop_nested(boxes)
        order = sorted(keep, key=lambda i: -scores[i])
        return [Detection(boxes[i], float(scores[i])) for i in order]


def drop_nested(boxes: np.ndarray) -> list[int]:
    """Indices of the boxes not lying (mostly) inside a larger box."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    for i in range(len(boxes)):
        iw = np.clip(np.minimum(boxes[:, 2], boxes[i, 2]) - np.maximum(boxes[:, 0], boxes[i, 0]), 0, None)
        ih = np.clip(np.minimum(boxes[:, 3], boxes[i, 3]) - np.maximum(boxes[:, 1], boxes[i, 1]), 0, None)
        inside = (iw * ih) / areas[i]
        if not np.any((areas > areas[i]) & (inside >= NESTED_FRACTION)):
            keep.append(i)
    return keep
