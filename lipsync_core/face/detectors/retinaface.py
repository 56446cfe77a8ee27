"""RetinaFace detector: preprocessing, prior boxes, decoding of boxes and 5 landmarks, thresholds and NMS.

Conventions of CodeFormer's face helper (facexlib ``RetinaFace.detect_faces``): BGR frames at their own size as
float minus (104, 117, 123), no scaling (the RetinaFace card's input); two square anchors per location with sides
(16, 32) / (64, 128) / (256, 512) pixels at strides 8 / 16 / 32; SSD decoding with variances (0.1, 0.2); keep face
probability > 0.8, then greedy NMS at IoU 0.4 (+1-pixel area convention). Decoding is vectorised over the whole
batch; one NMS serves the batch (boxes of different images are offset apart).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ...compute.chunking import AdaptiveChunker
from ...compute.handle import ModelHandle
from ..types import Detection
from .s3fd import CPU_BATCH_BYTES, cpu_frames_per_batch, nms

STEPS = (8, 16, 32)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
VARIANCES = (0.1, 0.2)


def prior_boxes(height: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, 4) anchors ``(cx, cy, w, h)`` as fractions of the image, in the network's output order.

    Per level: feature map ``ceil(H / step) x ceil(W / step)``, row-major, then the level's anchor sizes.
    """
    levels = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        fh, fw = math.ceil(height / step), math.ceil(width / step)
        cy, cx = torch.meshgrid((torch.arange(fh, dtype=torch.float64) + 0.5) * step / height,
                                (torch.arange(fw, dtype=torch.float64) + 0.5) * step / width, indexing="ij")
        s = torch.tensor(sizes, dtype=torch.float64)
        anchors = torch.stack(torch.broadcast_tensors(cx[..., None], cy[..., None], s / width, s / height), dim=-1)
        levels.append(anchors.reshape(-1, 4))
    return torch.cat(levels).float().to(device)


def decode_boxes(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """(..., N, 4) offsets -> (..., N, 4) boxes ``(x1, y1, x2, y2)`` as fractions of the image."""
    centre = priors[:, :2] + loc[..., :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(loc[..., 2:] * VARIANCES[1])
    return torch.cat((centre - size / 2, centre + size / 2), dim=-1)


def decode_landmarks(pre: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """(..., N, 10) offsets -> (..., N, 5, 2) points as fractions of the image."""
    offsets = pre.reshape(*pre.shape[:-1], 5, 2)
    return priors[:, None, :2] + offsets * VARIANCES[0] * priors[:, None, 2:]


def postprocess(loc: torch.Tensor, conf: torch.Tensor, landmarks: torch.Tensor, height: int, width: int, *,
                conf_threshold: float = 0.8, nms_threshold: float = 0.4) -> list[list[Detection]]:
    """Detections per image (best first, pixel coordinates) from the network's batched outputs."""
    priors = prior_boxes(height, width, loc.device)
    if priors.shape[0] != loc.shape[1]:
        raise ValueError(f"{loc.shape[1]} predictions for {priors.shape[0]} anchors at {width}x{height}")
    scores = conf[..., 1].float()
    img, idx = torch.nonzero(scores > conf_threshold, as_tuple=True)
    scale = torch.tensor([width, height], dtype=torch.float32, device=loc.device)
    boxes = decode_boxes(loc[img, idx].float(), priors[idx]) * scale.repeat(2)
    points = decode_landmarks(landmarks[img, idx].float(), priors[idx]) * scale
    scores = scores[img, idx]
    # One NMS for the batch: shifting each image's boxes far apart means boxes never overlap across images.
    offset = img.to(boxes.dtype)[:, None] * (boxes.abs().max() * 2 + 2 if boxes.numel() else 0)
    keep = nms(boxes + offset, scores, nms_threshold)
    out: list[list[Detection]] = [[] for _ in range(loc.shape[0])]
    for i, box, score, pts in zip(img[keep].tolist(), boxes[keep].cpu().numpy(), scores[keep].tolist(),
                                  points[keep].cpu().numpy()):
        out[i].append(Detection(box, score, pts))
    return out


class RetinaFaceDetector:
    """Batched RetinaFace over uint8 BGR frames; each detection carries its 5 landmarks.

    ``model`` is the detector's handle: its module maps a (B, 3, H, W) float tensor to ``(loc, conf (softmaxed),
    landmarks)``; the handle runs it on its device in its precision. Frames of one call may differ in size:
    consecutive frames of the same size are batched together, on CPU as many as fit ``cpu_batch_bytes`` of
    activations. Boxes are not clipped to the frame.
    """

    def __init__(self, model: ModelHandle, batch_size: int = 8, conf_threshold: float = 0.8, nms_threshold: float = 0.4,
                 box_expand: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0),
                 cpu_batch_bytes: int = CPU_BATCH_BYTES) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 0.0 <= conf_threshold < 1.0 or not 0.0 < nms_threshold <= 1.0:
            raise ValueError(f"thresholds out of range: conf {conf_threshold}, nms {nms_threshold}")
        self.model = model
        self.cpu_batch_bytes = cpu_batch_bytes
        self.batch_size = batch_size
        self._chunker = AdaptiveChunker(batch_size, what="face detection",
                                        hint="use a smaller --det_size or --device cpu")
        self.conf_threshold = conf_threshold
        self.nms_threshold = nms_threshold
        self.box_expand = box_expand  # see retinaface_to_s3fd_box: the boxes drive Wav2Lip's crops

    def preprocess(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """(B, 3, H, W) float32 network input on the model's device: the card's channel order and normalisation."""
        card = self.model.card.input
        x = torch.from_numpy(np.stack(frames)).to(self.model.device)  # uint8 (B, H, W, 3) BGR; converted on device
        return card.normalise(card.from_bgr(x).permute(0, 3, 1, 2).float())

    def _batches(self, frames: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        batches: list[list[np.ndarray]] = []
        for f in frames:
            if batches and len(batches[-1]) < self.batch_size and batches[-1][0].shape == f.shape:
                batches[-1].append(f)
            else:
                batches.append([f])
        return batches

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        """Faces of every frame, best first. Out of device memory halves the batch (as S3FD's detector does)."""
        results: list[list[Detection]] = []
        for batch in self._batches(frames):
            h, w = batch[0].shape[:2]
            if self.model.device.type != "cuda":
                self._chunker.limit(cpu_frames_per_batch(h, w, self.model.dtype, self.cpu_batch_bytes))

            def run(part: Sequence[np.ndarray], h: int = h, w: int = w) -> list[list[Detection]]:
                loc, conf, landmarks = self.model(self.preprocess(part))
                with torch.inference_mode():
                    return postprocess(loc, conf, landmarks, h, w, conf_threshold=self.conf_threshold,
                                       nms_threshold=self.nms_threshold)

            found = self._chunker(run, batch, combine=lambda outs: [d for out in outs for d in out])
            results.extend([Detection(retinaface_to_s3fd_box(d.box, self.box_expand), d.score, d.landmarks)
                            for d in dets] for dets in found)
        return results


def retinaface_to_s3fd_box(box: np.ndarray, expand: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
                           ) -> np.ndarray:
    """Map a RetinaFace box ``(x1, y1, x2, y2)`` to the box S3FD would give for Wav2Lip, before Wav2Lip's pads.

    ``expand`` = (top, bottom, left, right): each side moves outwards by that fraction of the box height
    (top/bottom) or width (left/right); negative values move it inwards.

    The default is the identity: both detectors regress the same WIDER FACE annotation box, and Wav2Lip
    successors that swapped S3FD for RetinaFace use its box unchanged. What is known, what is assumed and
    what to measure: ``docs/notes.md``.
    """
    x1, y1, x2, y2 = np.asarray(box, dtype=np.float32).reshape(4)
    top, bottom, left, right = expand
    w, h = x2 - x1, y2 - y1
    return np.array([x1 - left * w, y1 - top * h, x2 + right * w, y2 + bottom * h], dtype=np.float32)
