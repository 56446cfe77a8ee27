"""Wav2Lip's lip-sync expert ``SyncNet_color``, with the parameter names of ``lipsync_expert.pth``.

Written from the original's published layout. Two encoders map a mel window and five stacked
lower-half face crops to L2-normalised 512-d embeddings; their cosine similarity scores the sync.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .card import CheckpointCard, InputCard, ModelCard
from .wav2lip import ConvBlock, conv_stage


class SyncNetColor(nn.Module):
    """``forward(audio (B,1,80,16), face (B,15,48,96)) -> (audio_emb (B,512), face_emb (B,512))``.

    Audio comes first (the original's order). ``face`` stacks 5 BGR frames in [0, 1] on channels, each
    the lower half of a 96x96 crop. Both embeddings are L2-normalised (and non-negative: ReLU outputs).
    """

    def __init__(self) -> None:
        super().__init__()
        self.face_encoder = nn.Sequential(
            ConvBlock(15, 32, 7, 1, 3),  # 48x96
            *conv_stage(32, 64, (1, 2), 2, kernel_size=5),  # 46x47
            *conv_stage(64, 128, 2, 3),  # 23x24
            *conv_stage(128, 256, 2, 2),  # 12x12
            *conv_stage(256, 512, 2, 2),  # 6x6
            ConvBlock(512, 512, 3, 2, 1),  # 3x3
            ConvBlock(512, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0),  # 1x1
        )
        self.audio_encoder = nn.Sequential(
            *conv_stage(1, 32, 1, 2),  # 80x16
            *conv_stage(32, 64, (3, 1), 2),  # 27x16
            *conv_stage(64, 128, 3, 2),  # 9x6
            *conv_stage(128, 256, (3, 2), 2),  # 3x3
            ConvBlock(256, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0),  # 1x1
        )

    def forward(self, audio: torch.Tensor, face: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed_audio(audio), self.embed_face(face)

    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """The unit audio embedding of (B,1,80,16) mel windows."""
        return F.normalize(self.audio_encoder(audio).flatten(1), p=2, dim=1)

    def embed_face(self, face: torch.Tensor) -> torch.Tensor:
        """The unit face embedding of (B,15,48,96) stacked lower-half crops."""
        return F.normalize(self.face_encoder(face).flatten(1), p=2, dim=1)


def build_from_state(state: dict[str, torch.Tensor]) -> SyncNetColor:
    """An unloaded :class:`SyncNetColor` (nothing to read from ``state``)."""
    return SyncNetColor()


CARD = ModelCard(
    "syncnet_color", "Wav2Lip lip-sync expert (SyncNet)", build_from_state,
    CheckpointCard("state_dict", ("face_encoder.0.conv_block.0.weight", "audio_encoder.0.conv_block.0.weight")),
    InputCard(channels="BGR", value_range=(0.0, 1.0)),
)
