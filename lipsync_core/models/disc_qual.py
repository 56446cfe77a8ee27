"""Wav2Lip's visual-quality discriminator ``Wav2Lip_disc_qual``, with the parameter names of the released
``visual_quality_disc.pth``.

Written from the original's published layout. It scores
single frames, lower half only, with no audio and no time context: each frame of a (B, 3, T, 96, 96) clip is
one sample, folded into the batch t-major (row ``t*B + b``). Used only by GAN training (``--gan``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .card import CheckpointCard, InputCard, ModelCard

Size2 = int | tuple[int, int]


class NoNormConv(nn.Module):
    """Conv2d + LeakyReLU(0.01), no normalisation (the original's ``nonorm_Conv2d``; keys ``conv_block.0.*``)."""

    def __init__(self, cin: int, cout: int, kernel_size: Size2, stride: Size2 = 1, padding: Size2 = 0) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv_block(x), 0.01)


def fold_time(clip: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (T*B, C, H, W), t-major (row ``t*B + b``), as the original's ``to_2d``."""
    return torch.cat([clip[:, :, t] for t in range(clip.size(2))], dim=0)


class DiscQual(nn.Module):
    """``forward(faces (B, 3, T, 96, 96)) -> (B*T, 1)`` per-frame probabilities that a frame is real.

    ``faces`` are BGR in [0, 1]; only rows 48-95 (the lower half) are looked at. A 4-D (N, 3, 96, 96) input
    is taken as N frames. ``logits`` gives the scores before the sigmoid and ``features`` the last encoder
    stage, for losses computed outside autocast and for parity checks.
    """

    def __init__(self) -> None:
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(NoNormConv(3, 32, 7, 1, 3)),  # 48x96
            nn.Sequential(NoNormConv(32, 64, 5, (1, 2), 2), NoNormConv(64, 64, 5, 1, 2)),  # 48x48
            nn.Sequential(NoNormConv(64, 128, 5, 2, 2), NoNormConv(128, 128, 5, 1, 2)),  # 24x24
            nn.Sequential(NoNormConv(128, 256, 5, 2, 2), NoNormConv(256, 256, 5, 1, 2)),  # 12x12
            nn.Sequential(NoNormConv(256, 512, 3, 2, 1), NoNormConv(512, 512, 3, 1, 1)),  # 6x6
            nn.Sequential(NoNormConv(512, 512, 3, 2, 1), NoNormConv(512, 512, 3, 1, 1)),  # 3x3
            nn.Sequential(NoNormConv(512, 512, 3, 1, 0), NoNormConv(512, 512, 1, 1, 0)),  # 1x1
        ])
        self.binary_pred = nn.Sequential(nn.Conv2d(512, 1, 1, 1, 0), nn.Sigmoid())

    def features(self, faces: torch.Tensor) -> torch.Tensor:
        """The last encoder stage's output, (B*T, 512, 1, 1)."""
        x = fold_time(faces) if faces.dim() == 5 else faces
        x = x[:, :, x.size(2) // 2:]
        for block in self.face_encoder_blocks:
            x = block(x)
        return x

    def logits(self, faces: torch.Tensor) -> torch.Tensor:
        """Per-frame scores before the sigmoid, (B*T, 1)."""
        feats = self.features(faces)
        return self.binary_pred[0](feats).view(len(feats), -1)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(faces))


def build_from_state(state: dict[str, torch.Tensor]) -> DiscQual:
    """An unloaded :class:`DiscQual` (the architecture has no configuration to read from ``state``)."""
    return DiscQual()


CARD = ModelCard(
    "disc_qual", "Wav2Lip visual quality discriminator", build_from_state,
    CheckpointCard("state_dict", ("face_encoder_blocks.1.1.conv_block.0.weight", "binary_pred.0.weight")),
    InputCard(channels="BGR", value_range=(0.0, 1.0)),
)
