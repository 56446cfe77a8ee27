"""S3FD face detector: the original Wav2Lip preprocessing and post-processing around the network.

Preprocessing is the original's, as the S3FD card states it: BGR frames flipped to RGB, minus (104, 117, 123) in
that channel order, no scaling, at whatever resolution the frames come in. Post-processing is vectorised over the
whole batch (the original loops in Python over every candidate anchor): softmax, SSD decoding with variances (0.1,
0.2) against square anchors of side 4*stride at strides 4..128, greedy NMS at IoU 0.3 with the +1-pixel area
convention, keep score > 0.5, negative coordinates clipped to 0.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ...compute.chunking import AdaptiveChunker
from ...compute.handle import ModelHandle
from ..types import Detection

STRIDES = (4, 8, 16, 32, 64, 128)
VARIANCES = (0.1, 0.2)
#: Activation memory one forward may take on CPU: a few frames per forward (a single frame per forward is
#: slower per frame than the original's batches), while pass 1's peak (weights, frames, this) stays below the
#: render pass's. The sizes behind it: ``docs/notes.md``.
CPU_BATCH_BYTES = 256 * 2**20
#: Peak activation bytes per input pixel of one detector forward in float32 (S3FD's, rounded; RetinaFace's is similar).
ACTIVATION_BYTES_PER_PIXEL_FP32 = 512


def cpu_frames_per_batch(height: int, width: int, dtype: torch.dtype, budget: int = CPU_BATCH_BYTES) -> int:
    """Frames of ``height`` x ``width`` one CPU forward may take within ``budget`` bytes of activations (>= 1)."""
    per_frame = height * width * ACTIVATION_BYTES_PER_PIXEL_FP32 * torch.empty(0, dtype=dtype).element_size() // 4
    return max(1, budget // max(1, per_frame))


def decode_maps(maps: Sequence[torch.Tensor], candidate_threshold: float) -> tuple[torch.Tensor, ...]:
    """Candidates of a batch from the 12 head maps ``[cls1, reg1, ..., cls6, reg6]`` (cls already 2-channel).

    Returns ``(image_index, boxes (N, 4) x1y1x2y2, scores)`` for every anchor whose face probability is above
    ``candidate_threshold``, in float32 on the maps' device.
    """
    if len(maps) != 2 * len(STRIDES):
        raise ValueError(f"S3FD gives {2 * len(STRIDES)} maps, got {len(maps)}")
    images, boxes, scores = [], [], []
    for level, stride in enumerate(STRIDES):
        cls, reg = maps[2 * level].float(), maps[2 * level + 1].float()
        prob = torch.softmax(cls, dim=1)[:, 1]  # (B, H, W)
        b, y, x = torch.nonzero(prob > candidate_threshold, as_tuple=True)
        if b.numel() == 0:
            continue
        loc = reg[b, :, y, x]  # (N, 4): dx, dy, dw, dh
        centre = torch.stack((x, y), dim=1).float() * stride + stride / 2
        size = 4.0 * stride
        xy = centre + loc[:, :2] * VARIANCES[0] * size
        wh = size * torch.exp(loc[:, 2:] * VARIANCES[1])
        boxes.append(torch.cat((xy - wh / 2, xy + wh / 2), dim=1))
        scores.append(prob[b, y, x])
        images.append(b)
    if not boxes:
        device = maps[0].device
        return (torch.zeros(0, dtype=torch.long, device=device), torch.zeros(0, 4, device=device),
                torch.zeros(0, device=device))
    return torch.cat(images), torch.cat(boxes), torch.cat(scores)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS with the original's +1-pixel area convention; indices of the kept boxes, best first.

    Boxes are compared only with boxes that are still in play, so the Python loop runs once per kept box.
    """
    order = torch.argsort(scores, descending=True, stable=True)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    keep = []
    while order.numel() > 0:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest]) + 1).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest]) + 1).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[iou <= iou_threshold]
    return torch.stack(keep) if keep else torch.zeros(0, dtype=torch.long, device=boxes.device)


def postprocess(maps: Sequence[torch.Tensor], *, candidate_threshold: float = 0.05, nms_threshold: float = 0.3,
                score_threshold: float = 0.5) -> list[list[Detection]]:
    """Detections per image of a batch of S3FD head maps, best first.

    NMS is greedy in descending score, so a candidate scoring at most ``score_threshold`` can only suppress
    boxes that score even lower and are dropped anyway: filtering at ``score_threshold`` before NMS gives
    exactly the original's candidates -> NMS -> keep order, on far fewer boxes.
    """
    n_images = maps[0].shape[0]
    img, boxes, scores = decode_maps(maps, max(candidate_threshold, score_threshold))
    # One NMS over the whole batch: offsetting each image's boxes far apart means boxes never overlap across images.
    offset = img.to(boxes.dtype)[:, None] * (boxes.abs().max() * 2 + 2 if boxes.numel() else 0)
    keep = nms((boxes + offset).double(), scores, nms_threshold)  # float64: offsets must not cost precision
    kept_img, kept_boxes = img[keep].cpu().numpy(), boxes[keep].clamp(min=0).cpu().numpy()
    kept_scores = scores[keep].cpu().numpy()
    out: list[list[Detection]] = [[] for _ in range(n_images)]
    for i, box, score in zip(kept_img, kept_boxes, kept_scores):
        out[int(i)].append(Detection(box, float(score)))
    return out


class S3FDDetector:
    """Batched S3FD over uint8 BGR frames, fed exactly as the original Wav2Lip feeds it.

    ``model`` is the detector's handle: its module maps a (B, 3, H, W) float tensor to the 12 head maps; the
    handle runs it on its device in its precision. Frames of a batch must share one size. On CPU a forward takes
    as many frames as fit ``cpu_batch_bytes`` of activations (:func:`cpu_frames_per_batch`).
    """

    def __init__(self, model: ModelHandle, batch_size: int = 16, cpu_batch_bytes: int = CPU_BATCH_BYTES) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.model = model
        self.cpu_batch_bytes = cpu_batch_bytes
        self._chunker = AdaptiveChunker(batch_size, what="face detection",
                                        hint="use a smaller --det_size or --device cpu")

    @property
    def batch_size(self) -> int:
        """Frames per forward now (it shrinks after an out-of-memory error, and for large frames on CPU)."""
        return self._chunker.chunk

    def preprocess(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """(B, 3, H, W) float32 network input on the model's device: the card's channel order and normalisation."""
        card = self.model.card.input
        x = torch.from_numpy(np.stack(frames)).to(self.model.device)  # uint8 (B, H, W, 3) BGR; converted on device
        return card.normalise(card.from_bgr(x).permute(0, 3, 1, 2).float())

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        """Detections per frame, best first. Out of device memory on a batch halves the batch size (for this
        and later calls) and retries that batch; at one frame it is a LipsyncError."""
        if not frames:
            return []
        if self.model.device.type != "cuda":
            # Host memory stays bounded: 16 full-resolution 640x360 frames would take ~1.9 GB of activations.
            h, w = frames[0].shape[:2]
            self._chunker.limit(cpu_frames_per_batch(h, w, self.model.dtype, self.cpu_batch_bytes))

        def run(batch: list[np.ndarray]) -> list[list[Detection]]:
            maps = self.model(self.preprocess(batch))
            with torch.inference_mode():
                return postprocess(maps)

        return self._chunker(run, frames, combine=lambda outs: [d for out in outs for d in out])
