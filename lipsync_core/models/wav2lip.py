"""The Wav2Lip generator (Prajwal et al. 2020) with the parameter names of the released checkpoints.

Written from the original's published layout. A face encoder (7 stages, 96x96 -> 1x1) and an
audio encoder (mel window -> 512x1x1) feed a decoder that upsamples the audio embedding back to 96x96,
concatenating each stage with the matching face-encoder feature (U-Net skips, deepest first).
"""
from __future__ import annotations

import torch
from torch import nn

from .card import CheckpointCard, InputCard, ModelCard, PrecisionCard

Size2 = int | tuple[int, int]


class ConvBlock(nn.Module):
    """Conv2d (or ConvTranspose2d) + BatchNorm2d + ReLU; a residual block adds its input before the ReLU.

    The convolution and the norm sit in ``conv_block`` (keys ``conv_block.0.*`` / ``conv_block.1.*``)
    so that :func:`lipsync_core.models.fuse.fold_batchnorm` can fold the pair.
    """

    def __init__(self, cin: int, cout: int, kernel_size: Size2, stride: Size2 = 1, padding: Size2 = 0,
                 residual: bool = False, transpose: bool = False, output_padding: Size2 = 0) -> None:
        super().__init__()
        if transpose:
            conv: nn.Module = nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding)
        else:
            conv = nn.Conv2d(cin, cout, kernel_size, stride, padding)
        self.conv_block = nn.Sequential(conv, nn.BatchNorm2d(cout))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out += x
        return out.relu_()  # in place on a fresh tensor: saves an allocation and a pass over memory per block


def conv_stage(cin: int, cout: int, stride: Size2, n_res: int, kernel_size: Size2 = 3,
               padding: Size2 = 1) -> list[nn.Module]:
    """A (possibly strided) ConvBlock followed by ``n_res`` residual 3x3 ConvBlocks at ``cout`` channels."""
    return [ConvBlock(cin, cout, kernel_size, stride, padding),
            *(ConvBlock(cout, cout, 3, 1, 1, residual=True) for _ in range(n_res))]


def _up_stage(cin: int, cout: int, n_res: int) -> nn.Sequential:
    """Stride-2 transposed ConvBlock (doubles H and W) followed by ``n_res`` residual ConvBlocks."""
    return nn.Sequential(ConvBlock(cin, cout, 3, 2, 1, transpose=True, output_padding=1),
                         *(ConvBlock(cout, cout, 3, 1, 1, residual=True) for _ in range(n_res)))


class Wav2Lip(nn.Module):
    """``forward(audio (B,1,80,16), face (B,6,96,96)) -> (B,3,96,96)`` in [0, 1].

    Audio comes first (the original's order). Face channels 0-2 are the target crop with its lower half
    zeroed, channels 3-5 the reference crop; BGR in [0, 1]. The output is BGR too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBlock(6, 16, 7, 1, 3)),  # 96x96
            nn.Sequential(*conv_stage(16, 32, 2, 2)),  # 48x48
            nn.Sequential(*conv_stage(32, 64, 2, 3)),  # 24x24
            nn.Sequential(*conv_stage(64, 128, 2, 2)),  # 12x12
            nn.Sequential(*conv_stage(128, 256, 2, 2)),  # 6x6
            nn.Sequential(*conv_stage(256, 512, 2, 1)),  # 3x3
            nn.Sequential(ConvBlock(512, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0)),  # 1x1
        ])
        self.audio_encoder = nn.Sequential(  # 1x80x16 -> 512x1x1
            *conv_stage(1, 32, 1, 2),  # 80x16
            *conv_stage(32, 64, (3, 1), 2),  # 27x16
            *conv_stage(64, 128, 3, 2),  # 9x6
            *conv_stage(128, 256, (3, 2), 1),  # 3x3
            ConvBlock(256, 512, 3, 1, 0), ConvBlock(512, 512, 1, 1, 0),
        )
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(ConvBlock(512, 512, 1, 1, 0)),  # 1x1, then + f6 -> 1024
            nn.Sequential(ConvBlock(1024, 512, 3, 1, 0, transpose=True),  # 3x3, + f5 -> 1024
                          ConvBlock(512, 512, 3, 1, 1, residual=True)),
            _up_stage(1024, 512, 2),  # 6x6, + f4 -> 768
            _up_stage(768, 384, 2),  # 12x12, + f3 -> 512
            _up_stage(512, 256, 2),  # 24x24, + f2 -> 320
            _up_stage(320, 128, 2),  # 48x48, + f1 -> 160
            _up_stage(160, 64, 2),  # 96x96, + f0 -> 80
        ])
        self.output_block = nn.Sequential(ConvBlock(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

    def forward(self, audio: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        feats = []
        x = face
        for block in self.face_encoder_blocks:
            x = block(x)
            feats.append(x)
        x = self.audio_encoder(audio)
        for block in self.face_decoder_blocks:
            x = torch.cat((block(x), feats.pop()), dim=1)
        return self.output_block(x)


def build_from_state(state: dict[str, torch.Tensor]) -> Wav2Lip:
    """An unloaded :class:`Wav2Lip` (the architecture has no configuration to read from ``state``)."""
    return Wav2Lip()


CARD = ModelCard(
    "wav2lip", "Wav2Lip generator", build_from_state,
    CheckpointCard("state_dict", ("audio_encoder.0.conv_block.0.weight", "face_decoder_blocks.0.0.conv_block.0.weight"),
                   torchscript=True),
    InputCard(channels="BGR", value_range=(0.0, 1.0), size=96, output_range=(0.0, 1.0)),
    PrecisionCard(cpu_bf16=True),
)
