"""Face detection and tracking types shared by every detector and by the pipeline."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

#: A face box as the original's ``--box``: (top, bottom, left, right), ints in frame pixels.
Box = tuple[int, int, int, int]


@dataclass
class Detection:
    """One detected face: ``box`` is (x1, y1, x2, y2) float32 in the pixels of the image given to the detector."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray | None = None  # (5, 2) float32 (eyes, nose, mouth corners) when the detector gives them

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, dtype=np.float32).reshape(4)
        self.score = float(self.score)
        if self.landmarks is not None:
            self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(5, 2)

    @property
    def area(self) -> float:
        return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))

    def scaled(self, sx: float, sy: float | None = None) -> Detection:
        """The same detection with x multiplied by ``sx`` and y by ``sy`` (default ``sx``), e.g. back to full res."""
        xy = np.array([sx, sx if sy is None else sy], dtype=np.float32)
        lm = None if self.landmarks is None else self.landmarks * xy
        return Detection(self.box * np.tile(xy, 2), self.score, lm)


@runtime_checkable
class Detector(Protocol):
    """Finds faces in uint8 BGR HxWx3 frames; the detections of each frame, best first."""

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]: ...


@dataclass
class FaceTrack:
    """The per-frame face of one video: the output of pass 1, small enough to cache.

    ``boxes[i]`` is (top, bottom, left, right) in full-resolution pixels, or None where frame i has no face.
    ``landmarks`` is None when the detector gives none, else one (5, 2) float32 array (or None) per frame.
    """

    boxes: list[Box | None]
    fps: float
    frame_size: tuple[int, int]  # (width, height) of the full-resolution frames
    landmarks: list[np.ndarray | None] | None = None
    # A followed box's (:mod:`.boxtrack`) in-plane rotation, degrees counter-clockwise from its keyframe's, and
    # its exact centre (x, y) per frame; None from detectors. Not cached (keyframed tracks are not).
    angles: np.ndarray | None = None
    centres: np.ndarray | None = None
    n_frames: int = field(init=False)

    def __post_init__(self) -> None:
        self.n_frames = len(self.boxes)
        if self.landmarks is not None and len(self.landmarks) != self.n_frames:
            raise ValueError(f"{len(self.landmarks)} landmark entries for {self.n_frames} boxes")

    @property
    def any_face(self) -> bool:
        return any(b is not None for b in self.boxes)

    def save(self, path: str | Path) -> None:
        """Write the track as an ``.npz`` (missing boxes/landmarks stored as -1 / NaN rows with a mask)."""
        has = np.array([b is not None for b in self.boxes], dtype=bool)
        boxes = np.array([b if b is not None else (-1, -1, -1, -1) for b in self.boxes], dtype=np.int64).reshape(-1, 4)
        arrays: dict[str, Any] = {  # np.savez's **kwds are typed like its keywords
            "boxes": boxes, "has_box": has, "fps": np.float64(self.fps),
            "frame_size": np.array(self.frame_size, dtype=np.int64),
        }
        if self.landmarks is not None:
            lm = np.full((self.n_frames, 5, 2), np.nan, dtype=np.float32)
            for i, pts in enumerate(self.landmarks):
                if pts is not None:
                    lm[i] = pts
            arrays["landmarks"] = lm
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    def head(self, n: int) -> FaceTrack:
        """The track of the first ``n`` frames (all of it when it is shorter)."""
        lm = None if self.landmarks is None else self.landmarks[:n]
        angles = None if self.angles is None else self.angles[:n]
        centres = None if self.centres is None else self.centres[:n]
        return FaceTrack(boxes=self.boxes[:n], fps=self.fps, frame_size=self.frame_size, landmarks=lm,
                         angles=angles, centres=centres)

    @classmethod
    def load(cls, path: str | Path) -> FaceTrack:
        """Read a track written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            boxes: list[Box | None] = [tuple(int(v) for v in b) if h else None  # type: ignore[misc]
                                       for b, h in zip(z["boxes"], z["has_box"])]
            landmarks = None
            if "landmarks" in z.files:
                landmarks = [None if np.isnan(p).any() else p.astype(np.float32) for p in z["landmarks"]]
            w, h = (int(v) for v in z["frame_size"])
            return cls(boxes=boxes, fps=float(z["fps"]), frame_size=(w, h), landmarks=landmarks)

    @classmethod
    def constant(cls, box: Sequence[int], n_frames: int, fps: float, frame_size: tuple[int, int]) -> FaceTrack:
        """A track with the same box on every frame (the original's ``--box``)."""
        t, b, l, r = (int(v) for v in box)
        return cls(boxes=[(t, b, l, r)] * n_frames, fps=fps, frame_size=frame_size)


@dataclass(frozen=True)
class MouthInBox:
    """Where the mouth sits in a detector's face box, for a mouth-only blend mask when there are no landmarks.

    An ellipse: centre (``cx``, ``cy``) and semi-axes (``ax``, ``ay``), all fractions of the box's width/height.
    The default is a frontal photographic face in an S3FD-like box (the mouth at 78 % of its height).
    """

    cx: float = 0.5
    cy: float = 0.78
    ax: float = 0.3
    ay: float = 0.17
