"""SyncNet v2 (Chung & Zisserman, "Out of time", 2016): the network of the published ``syncnet_v2.model``.

Written from joonson/syncnet_python's published layout (``SyncNetModel.S``). Two towers map 5 consecutive
224x224 BGR face frames (raw 0-255 values) and 13x20 MFCC windows (0.2 s) to **raw** 1024-d embeddings (no
normalisation); LSE-D and LSE-C are distances between them. Parameter names and registration order are those
of the published file (``netcnnaud``, ``netfcaud``, ``netfclip``, ``netcnnlip``).
"""
from __future__ import annotations

import torch
from torch import nn

from .card import CheckpointCard, InputCard, ModelCard


def _audio_trunk() -> nn.Sequential:
    def block(cin: int, cout: int, kernel=3, padding=1) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, kernel, padding=padding), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(1, 64),  # (13, 20)
        nn.MaxPool2d(1, 1),  # a no-op kept for the parameter indices
        *block(64, 192),
        nn.MaxPool2d(3, stride=(1, 2)),  # (11, 9)
        *block(192, 384), *block(384, 256), *block(256, 256),
        nn.MaxPool2d(3, stride=2),  # (5, 4)
        *block(256, 512, kernel=(5, 4), padding=0),  # (1, 1)
    )


def _lip_trunk() -> nn.Sequential:
    def block(cin: int, cout: int, kernel, stride=1, padding=0) -> list[nn.Module]:
        return [nn.Conv3d(cin, cout, kernel, stride=stride, padding=padding), nn.BatchNorm3d(cout),
                nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(3, 96, (5, 7, 7), stride=(1, 2, 2)),  # (1, 109, 109): the 5 frames are consumed here
        nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),  # (1, 54, 54)
        *block(96, 256, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)),  # (1, 26, 26)
        nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),  # (1, 13, 13)
        *block(256, 256, (1, 3, 3), padding=(0, 1, 1)),
        *block(256, 256, (1, 3, 3), padding=(0, 1, 1)),
        *block(256, 256, (1, 3, 3), padding=(0, 1, 1)),
        nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),  # (1, 6, 6)
        *block(256, 512, (1, 6, 6)),  # (1, 1, 1)
    )


def _head(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Linear(512, width))


class SyncNetV2(nn.Module):
    """``forward_aud(mfcc (N,1,13,20)) -> (N,1024)``, ``forward_lip(frames (N,3,5,224,224)) -> (N,1024)``.

    ``frames`` are 5 consecutive colour frames in BGR order, float 0..255, as (N, channel, time, H, W);
    ``mfcc`` the raw ``python_speech_features`` values (:func:`lipsync_core.media.audio.mfcc`).
    """

    def __init__(self, embedding: int = 1024) -> None:
        super().__init__()
        self.netcnnaud = _audio_trunk()
        self.netfcaud = _head(embedding)
        self.netfclip = _head(embedding)
        self.netcnnlip = _lip_trunk()

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        return self.netfcaud(self.netcnnaud(x).flatten(1))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        return self.netfclip(self.forward_lipfeat(x))

    def forward_lipfeat(self, x: torch.Tensor) -> torch.Tensor:
        """The lip conv trunk alone: (N, 512) after its last ReLU."""
        return self.netcnnlip(x).flatten(1)

    def forward(self, aud: torch.Tensor, lip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(forward_aud(aud), forward_lip(lip))``."""
        return self.forward_aud(aud), self.forward_lip(lip)


def build_from_state(state: dict[str, torch.Tensor]) -> SyncNetV2:
    """An unloaded :class:`SyncNetV2` whose embedding width is read from the file's last layer."""
    head = state.get("netfclip.3.weight")
    return SyncNetV2(int(head.shape[0]) if head is not None else 1024)


CARD = ModelCard(
    "syncnet_v2", "SyncNet v2 (LSE-D/LSE-C scorer)", build_from_state,
    CheckpointCard("raw", ("netcnnaud.0.weight", "netcnnlip.0.weight", "netfclip.3.weight"),
                   optional=("num_batches_tracked",)),
    InputCard(channels="BGR", value_range=(0.0, 255.0)),
)
