"""Wav2Lip-HQ's two enhancers: ESRGAN super-resolution of the synced face, and a face-parsing blend mask.

Order in the render pass: sync -> :class:`SuperResolution` (``pred`` 96² -> 384²) ->
:class:`SegmentationMask` (``masks`` from the original crops) -> blend. Both work on face crops
only, never on whole frames. Upstream pastes with a hard
mask; here the mask edge is feathered and, optionally, limited to the lower face.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch import nn

from ..compute.chunking import AdaptiveChunker
from ..models.bisenet import MEAN_RGB, STD_RGB, STRIDE
from ..support.errors import LipsyncError
from . import masks
from .base import Batch, Runtime


def _to_device(x: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    return x.to(runtime.device, non_blocking=True).contiguous(memory_format=torch.channels_last)


@dataclass
class SuperResolution:
    """Upscale every synced face with ESRGAN: ``batch.pred`` (F, h, w, 3) -> (F, h·s, w·s, 3), BGR in [0, 1].

    ``model`` is a built module or a checkpoint path (loaded as ``arch``). The network sees RGB in
    [0, 1] as it was trained; its output is clamped to [0, 1]. Runs in the runtime's dtype for ``arch``.
    """

    model: nn.Module
    batch_size: int = 16
    arch: str = "rrdbnet_x4"
    name: str = "super_resolution"
    runtime: Runtime = field(default_factory=Runtime)
    _net: nn.Module | None = field(default=None, init=False, repr=False)
    _chunker: AdaptiveChunker | None = field(default=None, init=False, repr=False)

    def prepare(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._net = runtime.place(self.model)
        self._chunker = AdaptiveChunker(self.batch_size, what="super-resolution")

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self.runtime.autocast_for(self.arch):
            return self._net(_to_device(x, self.runtime)).float().clamp_(0.0, 1.0).cpu()

    def __call__(self, batch: Batch) -> None:
        if batch.pred is None or len(batch.pred) == 0:
            return
        if self._chunker is None:
            raise RuntimeError("SuperResolution.prepare() was not called")
        rgb = torch.from_numpy(np.ascontiguousarray(batch.pred[..., ::-1], dtype=np.float32)).permute(0, 3, 1, 2)
        out = self._chunker(self._forward, rgb)
        batch.pred = np.ascontiguousarray(out.permute(0, 2, 3, 1).numpy()[..., ::-1])


@dataclass
class SegmentationMask:
    """Blend masks from face parsing of the ORIGINAL crops: fills ``batch.masks`` (box_h, box_w) in [0, 1].

    Per face: crop the box from the frame (before blending), resize to ``size``², RGB with ImageNet
    mean/std, BiSeNet, argmax -> 1 on ``classes`` (default skin, mouth, upper and lower lip, as
    Wav2Lip-HQ) -> resized to the box -> optionally cut to the lowest ``lower_face`` fraction of the
    box -> :func:`masks.feather` with ``feather_px`` (in box pixels), 0 on the box border.
    ``model`` is a built module (returning a tuple whose first element is the logits) or a checkpoint path.
    """

    model: nn.Module
    classes: tuple[int, ...] = masks.HQ_FACE_CLASSES
    feather_px: float = 8.0
    lower_face: float | None = None
    size: int = 512
    batch_size: int = 8
    arch: str = "bisenet19"
    name: str = "segmentation"
    runtime: Runtime = field(default_factory=Runtime)
    _net: nn.Module | None = field(default=None, init=False, repr=False)
    _chunker: AdaptiveChunker | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.size <= 0 or self.size % STRIDE:
            raise LipsyncError(f"segmentation size must be a positive multiple of {STRIDE}, got {self.size}")
        if self.feather_px < 0:
            raise LipsyncError(f"segmentation feather width must be >= 0 pixels, got {self.feather_px}")
        if self.lower_face is not None and not 0.0 < self.lower_face <= 1.0:
            raise LipsyncError(f"lower-face fraction must be in (0, 1], got {self.lower_face}")

    def prepare(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._net = runtime.place(self.model)
        self._chunker = AdaptiveChunker(self.batch_size, what="face segmentation")

    def network_input(self, crops: list[np.ndarray]) -> torch.Tensor:
        """(F, 3, size, size) float32: BGR uint8 crops resized, as RGB normalised with ImageNet mean/std."""
        rgb = np.stack([cv2.resize(c, (self.size, self.size), interpolation=cv2.INTER_LINEAR)[..., ::-1]
                        for c in crops]).astype(np.float32) / 255.0
        rgb = (rgb - np.asarray(MEAN_RGB, np.float32)) / np.asarray(STD_RGB, np.float32)
        return torch.from_numpy(rgb).permute(0, 3, 1, 2)

    def _parse(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self.runtime.autocast_for(self.arch):
            logits = self._net(_to_device(x, self.runtime))[0]
            return logits.argmax(1).to(torch.uint8).cpu()

    def mask_from_parsing(self, parse_map: np.ndarray, box_hw: tuple[int, int]) -> np.ndarray:
        """(box_h, box_w) float32 blend mask from one (size, size) class map."""
        h, w = box_hw
        region = cv2.resize(masks.class_mask(parse_map, self.classes), (w, h), interpolation=cv2.INTER_LINEAR)
        if self.lower_face is not None:
            region = masks.lower_face(region, self.lower_face)
        return masks.feather(region, self.feather_px, zero_border=True)

    def __call__(self, batch: Batch) -> None:
        positions = batch.face_positions
        if not positions:
            batch.masks = []
            return
        if self._chunker is None:
            raise RuntimeError("SegmentationMask.prepare() was not called")
        crops = []
        for i in positions:
            t, b, l, r = batch.boxes[i]
            crop = batch.frames[i][t:b, l:r]
            if crop.shape[:2] != (b - t, r - l) or crop.size == 0:
                raise ValueError(f"face box {batch.boxes[i]} is empty or not inside frame {batch.indices[i]}")
            crops.append(crop)
        parse = self._chunker(self._parse, self.network_input(crops)).numpy()
        batch.masks = [self.mask_from_parsing(p, c.shape[:2]) for p, c in zip(parse, crops)]
