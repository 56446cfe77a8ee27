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

from ..compute.chunking import AdaptiveChunker
from ..compute.handle import ModelHandle
from ..models.bisenet import STRIDE
from ..support.errors import LipsyncError
from . import masks
from .base import Batch


@dataclass
class SuperResolution:
    """Upscale every synced face with ESRGAN: ``batch.pred`` (F, h, w, 3) -> (F, h·s, w·s, 3), BGR in [0, 1].

    ``model`` is the super-resolution network's handle. The faces (already in [0, 1], the network's value range)
    go in the card's colour order; the output is clamped to [0, 1].
    """

    model: ModelHandle
    batch_size: int = 16
    name: str = "super_resolution"
    _chunker: AdaptiveChunker = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._chunker = AdaptiveChunker(self.batch_size, what="super-resolution")

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():  # the clamp is in place on the handle's output
            return self.model(x).clamp_(0.0, 1.0).cpu()

    def __call__(self, batch: Batch) -> None:
        if batch.pred is None or len(batch.pred) == 0:
            return
        card = self.model.card.input
        net_in = torch.from_numpy(np.ascontiguousarray(card.from_bgr(batch.pred), dtype=np.float32))
        out = self._chunker(self._forward, net_in.permute(0, 3, 1, 2))
        batch.pred = np.ascontiguousarray(card.to_bgr(out.permute(0, 2, 3, 1).numpy()))


@dataclass
class SegmentationMask:
    """Blend masks from face parsing of the ORIGINAL crops: fills ``batch.masks`` (box_h, box_w) in [0, 1].

    Per face: crop the box from the frame (before blending), resize to ``size``² (default: the card's), in the
    card's colour order and normalisation (RGB with ImageNet mean/std for BiSeNet), the parser, argmax -> 1 on
    ``classes`` (default skin, mouth, upper and lower lip, as Wav2Lip-HQ) -> resized to the box -> optionally
    cut to the lowest ``lower_face`` fraction of the box -> :func:`masks.feather` with ``feather_px`` (in box
    pixels), 0 on the box border. ``model`` is the parser's handle (its module returns a tuple whose first
    element is the logits).
    """

    model: ModelHandle
    classes: tuple[int, ...] = masks.HQ_FACE_CLASSES
    feather_px: float = 8.0
    lower_face: float | None = None
    size: int | None = None
    batch_size: int = 8
    name: str = "segmentation"
    _chunker: AdaptiveChunker = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.size is None:
            self.size = self.model.input_size
        if self.size is None or self.size <= 0 or self.size % STRIDE:
            raise LipsyncError(f"segmentation size must be a positive multiple of {STRIDE}, got {self.size}")
        if self.feather_px < 0:
            raise LipsyncError(f"segmentation feather width must be >= 0 pixels, got {self.feather_px}")
        if self.lower_face is not None and not 0.0 < self.lower_face <= 1.0:
            raise LipsyncError(f"lower-face fraction must be in (0, 1], got {self.lower_face}")
        self._chunker = AdaptiveChunker(self.batch_size, what="face segmentation")

    def network_input(self, crops: list[np.ndarray]) -> torch.Tensor:
        """(F, 3, size, size) float32: BGR uint8 crops resized, in the card's colour order and normalisation."""
        card, size = self.model.card.input, self.size
        assert size is not None  # set in __post_init__
        net_in = np.stack([card.from_bgr(cv2.resize(c, (size, size), interpolation=cv2.INTER_LINEAR))
                           for c in crops]).astype(np.float32)
        return torch.from_numpy(card.normalise(net_in)).permute(0, 3, 1, 2)

    def _parse(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)[0]
        with torch.inference_mode():
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
        crops = []
        for i in positions:
            t, b, l, r = batch.box(i)
            crop = batch.frames[i][t:b, l:r]
            if crop.shape[:2] != (b - t, r - l) or crop.size == 0:
                raise ValueError(f"face box {batch.boxes[i]} is empty or not inside frame {batch.indices[i]}")
            crops.append(crop)
        parse = self._chunker(self._parse, self.network_input(crops)).numpy()
        batch.masks = [self.mask_from_parsing(p, c.shape[:2]) for p, c in zip(parse, crops)]
