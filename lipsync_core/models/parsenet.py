"""ParseNet face parsing (``parsing_parsenet.pth``, the mask network of CodeFormer's paste-back).

An encoder of stride-2 residual blocks, a body of residual blocks added back onto the encoder
output, and a decoder of x2 (nearest) residual blocks, ending in two 3x3 heads: 19-class parsing
logits and a reconstructed image. Every conv is reflection-padded; convs followed by batch norm
have no bias; activations are LeakyReLU(0.2). Channel counts are ``base_ch * 2**i`` clipped to
``ch_range``. Fully convolutional: the 512 configuration accepts any H and W divisible by
``2**down_steps`` (16). Input RGB in [-1, 1]. Parameter names follow the published checkpoint.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .card import CheckpointCard, InputCard, ModelCard, PrecisionCard
from .checkpoints import StateDict


@dataclass(frozen=True)
class ParseNetConfig:
    """Architecture hyper-parameters; defaults are the published 512 model's."""

    down_steps: int = 4  # log2(in_size / min_feat_size) = log2(512 / 32)
    up_steps: int = 4
    base_ch: int = 64
    res_depth: int = 10
    parsing_ch: int = 19
    ch_range: tuple[int, int] = (32, 256)

    def __post_init__(self) -> None:
        # The first conv is not clipped, so a base width outside the range would not feed the next block.
        if not self.ch_range[0] <= self.base_ch <= self.ch_range[1]:
            raise ValueError(f"base_ch {self.base_ch} must lie in ch_range {self.ch_range}")

    def clip(self, ch: int) -> int:
        return max(self.ch_range[0], min(ch, self.ch_range[1]))


class ConvLayer(nn.Module):
    """[nearest x2] -> reflection pad -> conv (stride 2 when ``down``) -> [BN] -> [LeakyReLU(0.2)]."""

    fold_pairs = (("conv2d", "norm.norm"),)  # see models.fuse (a layer without a norm is skipped there)

    def __init__(self, in_ch: int, out_ch: int, scale: str = "none", norm: bool = False, act: bool = False) -> None:
        super().__init__()
        self.up = scale == "up"
        self.conv2d = nn.Conv2d(in_ch, out_ch, 3, 2 if scale == "down" else 1, bias=not norm)
        self.norm = _Norm(out_ch) if norm else None
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"))
        if self.norm is not None:
            x = self.norm(x)
        return F.leaky_relu(x, 0.2) if self.act else x


class _Norm(nn.Module):
    """Holds the batch norm under the checkpoint's ``norm.norm`` name."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


class ResidualBlock(nn.Module):
    """Two normalised convs plus a shortcut (identity, or a plain conv when shape or scale changes)."""

    def __init__(self, in_ch: int, out_ch: int, scale: str = "none") -> None:
        super().__init__()
        self.shortcut_func = ConvLayer(in_ch, out_ch, scale) if (scale != "none" or in_ch != out_ch) else None
        first, second = {"down": ("none", "down"), "up": ("up", "none"), "none": ("none", "none")}[scale]
        self.conv1 = ConvLayer(in_ch, out_ch, first, norm=True, act=True)
        self.conv2 = ConvLayer(out_ch, out_ch, second, norm=True, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.shortcut_func is None else self.shortcut_func(x)
        return shortcut + self.conv2(self.conv1(x))


class ParseNet(nn.Module):
    """``forward(x)`` -> ``(out_mask (B, parsing_ch, H, W) logits, out_img (B, 3, H, W))``."""

    def __init__(self, cfg: ParseNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or ParseNetConfig()
        head = cfg.base_ch
        encoder: list[nn.Module] = [ConvLayer(3, head)]
        for _ in range(cfg.down_steps):
            encoder.append(ResidualBlock(cfg.clip(head), cfg.clip(head * 2), "down"))
            head *= 2
        body = [ResidualBlock(cfg.clip(head), cfg.clip(head)) for _ in range(cfg.res_depth)]
        decoder = []
        for _ in range(cfg.up_steps):
            decoder.append(ResidualBlock(cfg.clip(head), cfg.clip(head // 2), "up"))
            head //= 2
        self.encoder = nn.Sequential(*encoder)
        self.body = nn.Sequential(*body)
        self.decoder = nn.Sequential(*decoder)
        self.out_img_conv = ConvLayer(cfg.clip(head), 3)
        self.out_mask_conv = ConvLayer(cfg.clip(head), cfg.parsing_ch)

    @property
    def stride(self) -> int:
        """Input sides must be divisible by this."""
        return 2 ** self.cfg.down_steps

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.encoder(x)
        x = self.decoder(feat + self.body(feat))
        return self.out_mask_conv(x), self.out_img_conv(x)


def _count(state: StateDict, prefix: str) -> int:
    pattern = re.compile(rf"^{prefix}\.(\d+)\.")
    return len({m.group(1) for k in state if (m := pattern.match(k))})


def config_from_state(state: StateDict) -> ParseNetConfig:
    """Read the configuration from a checkpoint's tensor shapes.

    The channel clip range is taken as [narrowest, widest] of the block widths actually present, which
    reproduces every width of a clipped ``base_ch * 2**i`` ladder.
    """
    widths = [t.shape[0] for k, t in state.items() if k.endswith("conv1.conv2d.weight")]
    return ParseNetConfig(
        down_steps=_count(state, "encoder") - 1,
        up_steps=_count(state, "decoder"),
        base_ch=state["encoder.0.conv2d.weight"].shape[0],
        res_depth=_count(state, "body"),
        parsing_ch=state["out_mask_conv.conv2d.weight"].shape[0],
        ch_range=(min(widths), max(widths)),
    )


def build_from_state(state: StateDict) -> ParseNet:
    """An un-loaded :class:`ParseNet` whose configuration matches ``state``'s shapes."""
    return ParseNet(config_from_state(state))


CARD = ModelCard(
    "parsenet", "ParseNet face parsing", build_from_state,
    CheckpointCard("raw", ("out_mask_conv.conv2d.weight", "encoder.0.conv2d.weight")),
    InputCard(channels="RGB", value_range=(-1.0, 1.0)),
    PrecisionCard(cpu_bf16=True, float_outputs=False),
)
