"""The sync stage: crop each face, mask its lower half, run Wav2Lip with the frame's mel window."""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..compute.chunking import AdaptiveChunker
from ..compute.handle import ModelHandle
from ..models.card import InputCard
from .base import Batch

CPU_CHUNK = 16


def face_inputs(frames: list[np.ndarray], boxes: list, card: InputCard) -> np.ndarray:
    """(F, S, S, 6) float32 network input, S the card's size: the crop with its lower half masked, then the
    reference crop (as the original feeds them), in the card's colour order and values."""
    size = card.size
    assert size is not None
    crops = np.stack([cv2.resize(f[t:b, l:r], (size, size)) for f, (t, b, l, r) in zip(frames, boxes)])
    crops = card.from_bgr(crops)
    masked = crops.copy()
    masked[:, size // 2:] = 0
    return card.normalise(np.concatenate([masked, crops], axis=3).astype(np.float32))


@dataclass
class SyncStage:
    """Wav2Lip on every frame of the batch that has a face; fills ``batch.pred`` (F, S, S, 3) BGR in [0, 1]."""

    model: ModelHandle
    batch_size: int = 128
    name: str = "sync"
    _chunker: AdaptiveChunker = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # On CPU, small chunks run as fast as large ones (activations stay in cache; docs/notes.md) and hold far
        # less memory.
        cuda = self.model.device.type == "cuda"
        self._chunker = AdaptiveChunker(self.batch_size if cuda else min(self.batch_size, CPU_CHUNK), what="Wav2Lip")

    def _forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        return self.model(mel, face).cpu()

    def __call__(self, batch: Batch) -> None:
        pos = batch.face_positions
        card = self.model.card.input
        if not pos:
            size = self.model.input_size
            assert size is not None
            batch.pred = np.zeros((0, size, size, 3), np.float32)
            return
        faces = face_inputs([batch.frames[i] for i in pos], [batch.boxes[i] for i in pos], card)
        face_t = torch.from_numpy(faces).permute(0, 3, 1, 2)
        mel_t = torch.from_numpy(np.ascontiguousarray(batch.mels[pos], dtype=np.float32)).unsqueeze(1)
        out = self._chunker(self._forward, mel_t, face_t)
        batch.pred = card.to_bgr(out.permute(0, 2, 3, 1).numpy())
