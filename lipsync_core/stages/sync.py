"""The sync stage: crop each face, mask its lower half, run Wav2Lip with the frame's mel window."""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch import nn

from ..compute.chunking import AdaptiveChunker
from .base import Batch, Runtime

IMG_SIZE = 96
CPU_CHUNK = 16


def face_inputs(frames: list[np.ndarray], boxes: list) -> np.ndarray:
    """(F, 96, 96, 6) float32 in [0,1]: the masked crop then the reference crop, as the original feeds them."""
    crops = np.stack([cv2.resize(f[t:b, l:r], (IMG_SIZE, IMG_SIZE)) for f, (t, b, l, r) in zip(frames, boxes)])
    masked = crops.copy()
    masked[:, IMG_SIZE // 2:] = 0
    return np.concatenate([masked, crops], axis=3).astype(np.float32) / 255.0


@dataclass
class SyncStage:
    """Wav2Lip on every frame of the batch that has a face; fills ``batch.pred`` (F, 96, 96, 3) BGR in [0, 1]."""

    model: nn.Module
    batch_size: int = 128
    compile: bool = False
    name: str = "sync"
    runtime: Runtime = field(default_factory=Runtime)
    _chunker: AdaptiveChunker | None = field(default=None, repr=False)

    def prepare(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.model = runtime.place(self.model)
        if self.compile:
            # Batches vary in size (faces per batch, the last batch): compile for dynamic shapes once.
            self.model = torch.compile(self.model, dynamic=True)
        # On CPU, small chunks run as fast as large ones (38 ms/face at 128, 34-35 at 16-32: activations stay in
        # cache) and hold far less memory.
        chunk = self.batch_size if runtime.device.type == "cuda" else min(self.batch_size, CPU_CHUNK)
        self._chunker = AdaptiveChunker(chunk, what="Wav2Lip")

    def _forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        rt = self.runtime
        mel = mel.to(rt.device, non_blocking=True)
        face = face.to(rt.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), rt.autocast_for("wav2lip"):
            return self.model(mel, face).float().cpu()

    def __call__(self, batch: Batch) -> None:
        pos = batch.face_positions
        if not pos:
            batch.pred = np.zeros((0, IMG_SIZE, IMG_SIZE, 3), np.float32)
            return
        faces = face_inputs([batch.frames[i] for i in pos], [batch.boxes[i] for i in pos])
        face_t = torch.from_numpy(faces).permute(0, 3, 1, 2)
        mel_t = torch.from_numpy(np.ascontiguousarray(batch.mels[pos], dtype=np.float32)).unsqueeze(1)
        assert self._chunker is not None, "prepare() was not called"
        out = self._chunker(self._forward, mel_t, face_t)
        batch.pred = out.permute(0, 2, 3, 1).numpy()
