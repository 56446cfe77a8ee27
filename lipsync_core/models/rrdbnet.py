"""ESRGAN's RRDBNet generator (Residual-in-Residual Dense Blocks), with BasicSR's parameter names.

Scale 4 is the plain network (two nearest-neighbour x2 upsamplings); scales 2 and 1 first
pixel-unshuffle the input by 2 or 4, so every scale ends with the same x4 tail and the
checkpoints differ only in ``conv_first``'s input channels. Written from the architecture's
published state-dict layout.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .card import CheckpointCard, InputCard, ModelCard, PrecisionCard

#: Input channels of ``conv_first`` per output channel -> scale (pixel-unshuffle by 4 / 2 / none).
_UNSHUFFLE_BY_SCALE = {4: 1, 2: 2, 1: 4}
_RESIDUAL_SCALE = 0.2  # ESRGAN's residual scaling inside and around each dense block


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, negative_slope=0.2, inplace=True)


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convolutions, each seeing the block input and every earlier output (dense connections)."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(_lrelu(conv(torch.cat(feats, 1))))
        return self.conv5(torch.cat(feats, 1)) * _RESIDUAL_SCALE + x


class RRDB(nn.Module):
    """Three dense blocks in sequence with a scaled residual around them."""

    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * _RESIDUAL_SCALE + x


class RRDBNet(nn.Module):
    """ESRGAN generator: ``(B, num_in_ch, H, W)`` in [0, 1] -> ``(B, num_out_ch, H*scale, W*scale)``.

    For scale 2 (1), H and W must be divisible by 2 (4). The output is not clamped.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, scale: int = 4, num_feat: int = 64,
                 num_block: int = 23, num_grow_ch: int = 32) -> None:
        super().__init__()
        if scale not in _UNSHUFFLE_BY_SCALE:
            raise ValueError(f"RRDBNet scale must be one of {sorted(_UNSHUFFLE_BY_SCALE)}, got {scale}")
        self.scale = scale
        self.unshuffle = _UNSHUFFLE_BY_SCALE[scale]
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle ** 2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = _lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = _lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(_lrelu(self.conv_hr(feat)))


def build_from_state(state: dict[str, torch.Tensor]) -> RRDBNet:
    """An (unloaded) RRDBNet whose configuration is read from a state dict's keys and shapes.

    Assumes as many input as output channels (true of every published ESRGAN/Real-ESRGAN checkpoint),
    which is what makes the scale recoverable from ``conv_first``'s input channels.
    """
    num_feat, first_in = state["conv_first.weight"].shape[:2]
    num_out_ch = state["conv_last.weight"].shape[0]
    num_grow_ch = state["body.0.rdb1.conv1.weight"].shape[0]
    num_block = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    factor = first_in // num_out_ch
    scales = {u * u: s for s, u in _UNSHUFFLE_BY_SCALE.items()}
    if first_in % num_out_ch or factor not in scales:
        raise ValueError(f"RRDBNet: conv_first has {first_in} input channels for {num_out_ch} output channels; "
                         "expected 1x, 4x or 16x (scale 4, 2 or 1)")
    return RRDBNet(num_in_ch=num_out_ch, num_out_ch=num_out_ch, scale=scales[factor], num_feat=num_feat,
                   num_block=num_block, num_grow_ch=num_grow_ch)


_INPUT = InputCard(channels="RGB", value_range=(0.0, 1.0), output_range=(0.0, 1.0))
CARDS = (
    ModelCard("rrdbnet_x4", "ESRGAN RRDBNet x4", build_from_state,
              CheckpointCard("params_ema", ("conv_first.weight", "body.0.rdb1.conv1.weight", "conv_up2.weight"),
                             signature_shapes=(("conv_first.weight", (None, 3, 3, 3)),)),
              _INPUT, PrecisionCard(cpu_bf16=True, cpu_int8=True)),
    ModelCard("rrdbnet_x2", "ESRGAN RRDBNet x2", build_from_state,
              CheckpointCard("params_ema", ("conv_first.weight", "body.0.rdb1.conv1.weight", "conv_up1.weight"),
                             signature_shapes=(("conv_first.weight", (None, 12, 3, 3)),)),
              _INPUT, PrecisionCard(cpu_bf16=True, cpu_int8=True)),
)
