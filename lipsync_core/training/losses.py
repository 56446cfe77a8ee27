"""The losses of the original Wav2Lip training, written from its published behaviour.

Every loss is computed in float32 or wider, outside autocast: the sigmoid/cosine outputs go through
``binary_cross_entropy`` exactly as the original (log clamped at -100), which autocast refuses in float16.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.disc_qual import fold_time

#: Frames per training window (``syncnet_T``) and mel rows per window (``syncnet_mel_step_size``).
T = 5
MEL_STEP = 16


def unfold_time(frames: torch.Tensor, batch: int) -> torch.Tensor:
    """(T*B, C, H, W) t-major -> (B, C, T, H, W): the inverse of :func:`fold_time`."""
    return torch.stack(torch.split(frames, batch, dim=0), dim=2)


def generate(generator: nn.Module, indiv_mels: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The generator on whole windows, as the original's 5-D path: (B, T, 1, 80, 16) and (B, 6, T, 96, 96)
    -> (B, 3, T, 96, 96). Frames are folded into the batch t-major, so training-mode BatchNorm takes its
    statistics over all B*T frames."""
    audio = torch.cat([indiv_mels[:, t] for t in range(indiv_mels.size(1))], dim=0)
    return unfold_time(generator(audio, fold_time(x)), x.size(0))


def l1_loss(g: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every element of the window, both halves of the face."""
    return F.l1_loss(g.to(gt.dtype), gt)


def bce(p: torch.Tensor, target: float) -> torch.Tensor:
    """``binary_cross_entropy(p, target)`` in at least float32 (log clamped at -100, as PyTorch's BCE)."""
    p = _wide(p)
    with torch.autocast(p.device.type, enabled=False):
        return F.binary_cross_entropy(p, torch.full_like(p, target))


def cosine_loss(audio_emb: torch.Tensor, face_emb: torch.Tensor, target: float | torch.Tensor = 1.0) -> torch.Tensor:
    """BCE of the embeddings' cosine similarity against ``target`` (1 = in sync): the expert's loss.

    The embeddings are non-negative, so the cosine lies in [0, 1]; rounding can push it a hair above 1,
    which BCE would reject, so it is clamped there (no effect on any value below 1).
    """
    a, v = _wide(audio_emb), _wide(face_emb)
    with torch.autocast(a.device.type, enabled=False):
        d = F.cosine_similarity(a, v).clamp(max=1.0).unsqueeze(1)
        y = target if isinstance(target, torch.Tensor) else torch.full_like(d, target)
        return F.binary_cross_entropy(d, y.to(d.dtype).view_as(d))


def lower_half_stack(g: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, 96, 96) -> (B, 3*T, 48, 96): the lower halves, frames stacked on channels (3t + c)."""
    half = g[:, :, :, g.size(3) // 2:]
    return torch.cat([half[:, :, t] for t in range(half.size(2))], dim=1)


def sync_loss(expert: nn.Module, mel: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The expert's verdict on a generated window: ``-log cos(audio, lower-half faces)`` averaged over the batch."""
    audio_emb, face_emb = expert(mel, lower_half_stack(g))
    return cosine_loss(audio_emb, face_emb, 1.0)


def _wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in float32, or as it is when it is float64 already."""
    return t if t.dtype == torch.float64 else t.float()
