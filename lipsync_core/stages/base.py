"""The render pass's unit of work and the stage protocol.

A :class:`Batch` is a run of consecutive output frames. Stages run in order and mutate it in place:
sync (Wav2Lip, fills ``pred``) -> optional super-resolution (replaces ``pred``) -> optional mask
(fills ``masks``) -> blend (pastes ``pred`` into ``frames``) -> optional restoration/sharpening
(edits ``frames``). Frames are uint8 BGR ``H×W×3``; boxes are ``(top, bottom, left, right)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..face.types import Box

__all__ = ["Batch", "Box", "Stage"]

@dataclass
class Batch:
    indices: list[int]  # output frame numbers
    frames: list[np.ndarray]  # full-resolution BGR uint8, edited in place
    boxes: list[Box | None]  # face box per frame (None: no face, frame passes through)
    mels: np.ndarray  # (B, 80, 16) float32 mel windows
    landmarks: list[np.ndarray | None] | None = None  # (5, 2) float32 per frame, when the track has them
    # Per face (only frames whose box is not None, in order):
    pred: np.ndarray | None = None  # (F, h, w, 3) float32 BGR in [0, 1]: the face to paste into the box
    masks: list[np.ndarray] | None = None  # per face (box_h, box_w) float32 in [0, 1]; None: blend's own mask
    sources: list[int] | None = None  # the source frame of each output frame (the video loops)

    @property
    def face_positions(self) -> list[int]:
        return [i for i, b in enumerate(self.boxes) if b is not None]

    def box(self, i: int) -> Box:
        """The face box of frame ``i``, one of :attr:`face_positions` (it has a box)."""
        b = self.boxes[i]
        assert b is not None, f"frame {i} of the batch has no face"
        return b


class Stage(Protocol):
    """One step of the render pass, built ready: its models arrive as handles
    (:class:`~lipsync_core.compute.handle.ModelHandle`) with its options, so it has nothing to prepare."""

    name: str

    def __call__(self, batch: Batch) -> None:
        """Process one batch in place."""
