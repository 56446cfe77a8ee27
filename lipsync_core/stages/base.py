"""The render pass's unit of work and the stage protocol.

A :class:`Batch` is a run of consecutive output frames. Stages run in order and mutate it in place:
sync (Wav2Lip, fills ``pred``) -> optional super-resolution (replaces ``pred``) -> optional mask
(fills ``masks``) -> blend (pastes ``pred`` into ``frames``) -> optional restoration/sharpening
(edits ``frames``). Frames are uint8 BGR ``H×W×3``; boxes are ``(top, bottom, left, right)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

Box = tuple[int, int, int, int]
ModelSource = nn.Module | str | Path  # a built module, or a checkpoint path loaded through the registry


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

    @property
    def face_positions(self) -> list[int]:
        return [i for i, b in enumerate(self.boxes) if b is not None]


@dataclass
class Runtime:
    """Where stages compute: chosen by the pipeline, never by a stage."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32  # compute dtype (float16 on CUDA where safe)

    @property
    def autocast(self):
        """Autocast context for the compute dtype (a no-op for float32)."""
        enabled = self.dtype != torch.float32
        return torch.autocast(device_type=self.device.type, dtype=self.dtype, enabled=enabled)


class Stage(Protocol):
    """One step of the render pass."""

    name: str

    def prepare(self, runtime: Runtime) -> None:
        """Load models onto the runtime's device. Called once before the first batch."""

    def __call__(self, batch: Batch) -> None:
        """Process one batch in place."""


def place_model(model: ModelSource, arch: str, runtime: Runtime) -> nn.Module:
    """The module on the runtime's device in eval mode, channels-last (15-40 % faster convolutions on CPU,
    measured for Wav2Lip, RRDBNet, BiSeNet and S3FD; the fast layout for cuDNN too); a path is loaded through
    the model registry as ``arch``."""
    if not isinstance(model, nn.Module):
        from ..models import load

        model = load(arch, model, device=runtime.device)
    return model.to(runtime.device).eval().to(memory_format=torch.channels_last)
