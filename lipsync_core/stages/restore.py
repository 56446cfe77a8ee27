"""CodeFormer face restoration of the blended frames, and an optional unsharp mask on the mouth.

Both stages edit ``batch.frames`` in place after the blend and touch only frames with a face.

:class:`CodeFormerRestore` follows CodeFormer's face helper: align the
face with its 5 landmarks to the FFHQ template at the network's size (512), RGB in [-1, 1], CodeFormer
with fidelity ``w`` and AdaIN, clamp, then paste back through a soft mask = min(square with a
feathered edge, blurred ParseNet mask without the background/neck/cloth/hair/hat classes). Unlike
upstream there is no background upsampling: frames keep their size. Landmark smoothing over time is
the face tracker's job.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..compute.chunking import AdaptiveChunker
from ..compute.handle import ModelHandle
from ..face.align import estimate_affine, face_template, paste_back, warp_face
from ..support.errors import LipsyncError
from .base import Batch
from .blend import MouthMask
from .masks import Ellipse, ellipse_bounds, ellipse_weight

#: ParseNet classes that keep the original pixels (zeros of the reference helper's mask colour map;
#: background, neck, cloth, hair and hat in the CelebAMask-HQ-style labelling the network was trained on).
PARSE_EXCLUDED: tuple[int, ...] = (0, 14, 16, 17, 18)
#: Largest accepted unsharp-mask strength (beyond it halos dominate).
MAX_SHARPEN = 5.0


def _odd(x: float) -> int:
    return max(1, int(round(x)) // 2 * 2 + 1)


def paste_mask(size: int, parse_map: np.ndarray | None = None,
               excluded: tuple[int, ...] = PARSE_EXCLUDED) -> np.ndarray:
    """Soft paste-back weight of an aligned ``size`` x ``size`` face, float32 in [0, 1].

    The reference helper's two masks, expressed in aligned-face space (its sizes are for 512 and scale
    with ``size``): a square shrunk by ``size // 20`` with its edge Gaussian-blurred over as much again,
    and, given a ``parse_map`` (class ids, ``size`` x ``size``), 1 outside ``excluded`` blurred twice
    (kernel 101, sigma 11) with a zeroed 10-pixel border. The result is their minimum.
    """
    edge = max(1, size // 20)
    square = np.zeros((size, size), np.float32)
    square[edge:size - edge, edge:size - edge] = 1.0
    mask = cv2.GaussianBlur(square, (2 * edge + 1, 2 * edge + 1), 0)
    if parse_map is None:
        return mask
    if parse_map.shape != (size, size):
        raise ValueError(f"parse map {parse_map.shape} does not match the face size {size}")
    parse: np.ndarray = (~np.isin(parse_map, excluded)).astype(np.float32)
    k, sigma = _odd(101 * size / 512), 11 * size / 512
    parse = cv2.GaussianBlur(cv2.GaussianBlur(parse, (k, k), sigma), (k, k), sigma)
    border = max(1, round(10 * size / 512))
    parse[:border] = parse[-border:] = 0.0
    parse[:, :border] = parse[:, -border:] = 0.0
    return np.minimum(mask, parse)


@dataclass
class CodeFormerRestore:
    """Restore every face that has landmarks with CodeFormer and paste it back; frames without one are untouched.

    ``codeformer`` / ``parser`` are the networks' handles (``codeformer`` / ``parsenet`` cards); ``parser=None``
    pastes through the square mask alone. ``fidelity`` is CodeFormer's ``w`` in [0, 1] (0: trust the codebook,
    1: stay close to the input). With ``mouth`` (mouth-only blending) the restored face is pasted through that
    mouth region only: every other pixel keeps its value from before the stage.
    """

    codeformer: ModelHandle
    parser: ModelHandle | None = None
    fidelity: float = 0.7
    batch_size: int = 4
    parse_size: int = 256
    excluded_classes: tuple[int, ...] = PARSE_EXCLUDED
    mouth: MouthMask | None = None
    name: str = "codeformer"
    _chunker: AdaptiveChunker = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.fidelity <= 1.0:
            raise LipsyncError(f"CodeFormer fidelity must be between 0 and 1, got {self.fidelity}")
        if self.batch_size < 1:
            raise LipsyncError(f"CodeFormer batch size must be at least 1, got {self.batch_size}")
        self._chunker = AdaptiveChunker(self.batch_size, what="CodeFormer")

    @property
    def size(self) -> int:
        """Side of the aligned face: the network's input size (512 for the published model)."""
        size = self.codeformer.input_size
        assert size is not None
        return size

    @staticmethod
    def _net_input(handle: ModelHandle, faces: torch.Tensor) -> torch.Tensor:
        """uint8 BGR (n, S, S, 3) faces -> (n, 3, S, S) float in the card's colour order and values, on the device."""
        card = handle.card.input
        return card.normalise(card.from_bgr(faces.to(handle.device)).permute(0, 3, 1, 2).float())

    def _restore(self, faces: torch.Tensor) -> torch.Tensor:
        """uint8 BGR (n, S, S, 3) faces -> restored, same layout; on the device in between."""
        out = self.codeformer(self._net_input(self.codeformer, faces), w=self.fidelity, adain=True)[0]
        card = self.codeformer.card.input
        return card.to_bgr(card.to_unit(out).round().to(torch.uint8).permute(0, 2, 3, 1)).cpu()

    def _parse(self, faces: torch.Tensor) -> torch.Tensor:
        """uint8 BGR (n, S, S, 3) restored faces -> (n, S, S) uint8 class ids, parsed at ``parse_size``.

        The paste mask is blurred over ~20 % of the face, so parsing at 256 instead of 512 changes nothing
        visible and costs a quarter (``docs/notes.md``)."""
        assert self.parser is not None
        x = self._net_input(self.parser, faces)
        size = x.shape[-1]
        if self.parse_size < size:
            x = F.interpolate(x, size=(self.parse_size, self.parse_size), mode="bilinear", antialias=True)
        labels = self.parser(x)[0]
        with torch.inference_mode():
            labels = labels.argmax(1, keepdim=True)
            return F.interpolate(labels.float(), size=(size, size), mode="nearest")[:, 0].to(torch.uint8).cpu()

    def __call__(self, batch: Batch) -> None:
        positions = batch.face_positions
        if not positions:
            return
        if batch.landmarks is None:
            raise LipsyncError("CodeFormer restoration needs 5-point face landmarks: track faces with RetinaFace")
        size = self.size
        template = face_template(size)
        todo: list[int] = []
        points: list[np.ndarray] = []
        for i in positions:
            p = batch.landmarks[i]
            if p is not None:
                todo.append(i)
                points.append(p)
        if not todo:
            return
        matrices = [estimate_affine(p, template) for p in points]
        aligned = np.stack([warp_face(batch.frames[i], M, size) for i, M in zip(todo, matrices)])
        restored = self._chunker(self._restore, torch.from_numpy(aligned))
        parsed = None if self.parser is None else self._chunker(self._parse, restored).numpy()
        restored_np = restored.numpy()
        for n, (i, M) in enumerate(zip(todo, matrices)):
            mask = paste_mask(size, None if parsed is None else parsed[n], self.excluded_classes)
            if self.mouth is None:
                paste_back(batch.frames[i], restored_np[n], M, mask)
            else:
                self._paste_mouth(batch, i, restored_np[n], M, mask)

    def _paste_mouth(self, batch: Batch, i: int, face: np.ndarray, M: np.ndarray, mask: np.ndarray) -> None:
        """Paste back, then keep the result only through the mouth region (weight 0 everywhere else)."""
        frame = batch.frames[i]
        assert self.mouth is not None and batch.landmarks is not None
        t, b, l, r = box = batch.box(i)
        pasted = paste_back(frame[t:b, l:r].copy(), face, _shifted(M, l, t), mask)
        w = self.mouth.weight(box, batch.landmarks[i])[..., None]
        roi = frame[t:b, l:r].astype(np.float32)
        frame[t:b, l:r] = np.clip(np.rint(roi + w * (pasted.astype(np.float32) - roi)), 0, 255).astype(np.uint8)


def _shifted(M: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """``M`` (frame -> aligned face) for an image that starts at frame pixel (``x0``, ``y0``)."""
    out = np.array(M, np.float64, copy=True)
    out[:, 2] += out[:, :2] @ np.array([x0, y0], np.float64)
    return out


@dataclass
class Sharpen:
    """Unsharp mask (``x + strength * (x - gaussian(x))``) on the mouth of every face, feathered to 0 at the edge.

    ``region``: ``"mouth"`` (an ellipse from the mouth-corner landmarks, or from the lower box without
    landmarks) or ``"face"`` (the ellipse inscribed in the box). The blur's sigma is 1/50 of the region
    width, at least 1 pixel. Pixels outside the region keep their exact values. A strength of 0 means
    no sharpening: do not build the stage then.
    """

    strength: float
    region: str = "mouth"
    mouth: MouthMask = field(default_factory=MouthMask)  # places the mouth region (detector placement, scale)
    name: str = "sharpen"

    def __post_init__(self) -> None:
        if not 0.0 < self.strength <= MAX_SHARPEN:
            raise LipsyncError(f"sharpen strength must be in (0, {MAX_SHARPEN:g}], got {self.strength} "
                               "(0 turns sharpening off)")
        if self.region not in ("mouth", "face"):
            raise LipsyncError(f"sharpen region must be 'mouth' or 'face', got {self.region!r}")

    def _ellipse(self, batch: Batch, i: int) -> Ellipse:
        box = batch.box(i)
        if self.region == "face":
            t, b, l, r = box
            return Ellipse(((l + r) / 2, (t + b) / 2), ((r - l) / 2, (b - t) / 2))
        return self.mouth.ellipse(box, None if batch.landmarks is None else batch.landmarks[i])

    def __call__(self, batch: Batch) -> None:
        for i in batch.face_positions:
            frame = batch.frames[i]
            ellipse = self._ellipse(batch, i)
            sigma = max(1.0, 2.0 * ellipse.axes[0] / 50.0)
            x0, y0, x1, y1 = ellipse_bounds(ellipse, frame.shape, margin=3.0 * sigma)
            if x0 >= x1 or y0 >= y1 or min(ellipse.axes) <= 0:
                continue
            weight = ellipse_weight(ellipse, (x0, y0, x1, y1))
            roi = frame[y0:y1, x0:x1].astype(np.float32)
            detail = roi - cv2.GaussianBlur(roi, (0, 0), sigma)
            out = roi + (self.strength * weight)[..., None] * detail
            frame[y0:y1, x0:x1] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
