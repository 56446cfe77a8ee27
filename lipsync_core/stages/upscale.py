"""Whole-frame x2 upscaling with an RRDBNet (RealESRGAN_x2plus), tiled so memory stays bounded.

Runs after blending and before face restoration, so the restored face is pasted at the output resolution.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..compute.handle import ModelHandle
from .base import Batch


def upscale_tiled(model: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, scale: int, tile: int,
                  overlap: int) -> torch.Tensor:
    """``model`` over (1, 3, H, W) in tiles of ``tile`` px with ``overlap`` px of context on each side.

    The image is padded to even size and tiles start at even offsets, because RRDBNet x2
    pixel-unshuffles its input; ``tile`` and ``overlap`` must be even.
    """
    _, _, h, w = image.shape
    padded = torch.nn.functional.pad(image, (0, w % 2, 0, h % 2), mode="replicate")
    ph, pw = padded.shape[2:]
    out = image.new_zeros((1, image.shape[1], ph * scale, pw * scale))
    for y in range(0, ph, tile):
        for x in range(0, pw, tile):
            y0, x0 = max(0, y - overlap), max(0, x - overlap)
            y1, x1 = min(ph, y + tile + overlap), min(pw, x + tile + overlap)
            res = model(padded[:, :, y0:y1, x0:x1])
            ty, tx = min(tile, ph - y), min(tile, pw - x)
            oy, ox = (y - y0) * scale, (x - x0) * scale
            out[:, :, y * scale:(y + ty) * scale, x * scale:(x + tx) * scale] = \
                res[:, :, oy:oy + ty * scale, ox:ox + tx * scale]
    return out[:, :, :h * scale, :w * scale]


@dataclass
class UpscaleStage:
    """Doubles every frame (and the face boxes and landmarks with it) with the upscaler's handle ``model``."""

    model: ModelHandle
    scale: int = 2
    tile: int = 256
    overlap: int = 16
    name: str = "upscale"

    def __call__(self, batch: Batch) -> None:
        card, s = self.model.card.input, self.scale
        for i, frame in enumerate(batch.frames):
            x = torch.from_numpy(np.ascontiguousarray(card.from_bgr(frame))).to(self.model.device)
            x = card.normalise(x.permute(2, 0, 1)[None].float())
            with torch.inference_mode():
                y = upscale_tiled(self.model, x, s, self.tile, self.overlap)
                out = card.to_unit(y[0]).round_().byte().permute(1, 2, 0).cpu().numpy()
            batch.frames[i] = np.ascontiguousarray(card.to_bgr(out))
        batch.boxes = [None if b is None else (b[0] * s, b[1] * s, b[2] * s, b[3] * s) for b in batch.boxes]
        if batch.landmarks is not None:
            batch.landmarks = [None if p is None else p * s for p in batch.landmarks]
