"""RetinaFace with a ResNet-50 backbone (``detection_Resnet50_Final.pth``, CodeFormer's / facexlib's detector).

Backbone: torchvision's ResNet-50 layout (bottlenecks [3, 4, 6, 3], stride on the 3x3 conv, 1x1 conv +
BN projection in each stage's first block) truncated after ``layer4``; its stride-8/16/32 outputs feed a
three-level FPN (1x1 lateral convs, nearest top-down upsampling, 3x3 merge convs), one SSH context module
per level, and per-level 1x1 heads for 2 anchors per location: face/background logits, box offsets and
5 landmark offsets. The network is pure: decoding against prior boxes lives in ``face.retinaface``.

Input: float BGR with (104, 117, 123) subtracted, any size. Output ``(loc (B, N, 4), conf (B, N, 2),
landmarks (B, N, 10))`` with ``conf`` softmaxed, anchors ordered level by level, row-major over the
feature map, then by anchor. Parameter names follow the published checkpoint (a ``module.`` prefix is
stripped by the loader). The block counts and widths are read from the state dict, so reduced test
models go through the same class.
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
class RetinaFaceConfig:
    """Architecture hyper-parameters; defaults are the published ResNet-50 model's."""

    layers: tuple[int, int, int, int] = (3, 4, 6, 3)  # bottleneck blocks per ResNet stage
    width: int = 64  # ResNet base width (stage i has width * 2**i bottleneck channels, 4x that out)
    out_channels: int = 256  # FPN / SSH width
    anchors: int = 2  # anchors per feature-map location

    @property
    def leaky(self) -> float:
        # The reference uses LeakyReLU(0.1) in FPN/SSH only for narrow (mobile) variants; plain ReLU at 256.
        return 0.1 if self.out_channels <= 64 else 0.0


class Bottleneck(nn.Module):
    """torchvision ResNet v1.5 bottleneck: 1x1 -> 3x3 (strided) -> 1x1 (x4), BN after each, residual ReLU."""

    fold_pairs = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))  # see models.fuse

    def __init__(self, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        out_ch = width * 4
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return F.relu(h + (x if self.downsample is None else self.downsample(x)))


class ResNetBody(nn.Module):
    """ResNet stem and four stages; returns the outputs of stages 2, 3 and 4 (strides 8, 16, 32)."""

    fold_pairs = (("conv1", "bn1"),)
    layer1: nn.Sequential  # the stages, registered by name in __init__
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, layers: tuple[int, int, int, int], width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        in_ch = width
        for i, n in enumerate(layers):
            w = width * 2 ** i
            blocks = [Bottleneck(in_ch if b == 0 else w * 4, w, 2 if (b == 0 and i > 0) else 1) for b in range(n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            in_ch = w * 4
        self.out_channels = (width * 8, width * 16, width * 32)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        return c3, c4, self.layer4(c4)


def _conv_bn(in_ch: int, out_ch: int, k: int, leaky: float | None) -> nn.Sequential:
    """Bias-free conv + BN, followed by LeakyReLU(leaky) unless ``leaky`` is None."""
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, k, 1, k // 2, bias=False), nn.BatchNorm2d(out_ch)]
    if leaky is not None:
        layers.append(nn.LeakyReLU(leaky))
    return nn.Sequential(*layers)


class FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, int, int], out_ch: int, leaky: float) -> None:
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], out_ch, 1, leaky)
        self.output2 = _conv_bn(in_channels[1], out_ch, 1, leaky)
        self.output3 = _conv_bn(in_channels[2], out_ch, 1, leaky)
        self.merge1 = _conv_bn(out_ch, out_ch, 3, leaky)
        self.merge2 = _conv_bn(out_ch, out_ch, 3, leaky)

    def forward(self, feats: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p1, p2, p3 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        p2 = self.merge2(p2 + F.interpolate(p3, size=p2.shape[-2:], mode="nearest"))
        p1 = self.merge1(p1 + F.interpolate(p2, size=p1.shape[-2:], mode="nearest"))
        return p1, p2, p3


class SSH(nn.Module):
    """Single-stage headless context module: 3x3, 5x5 and 7x7 receptive fields from stacked 3x3 convs."""

    def __init__(self, in_ch: int, out_ch: int, leaky: float) -> None:
        super().__init__()
        self.conv3X3 = _conv_bn(in_ch, out_ch // 2, 3, None)
        self.conv5X5_1 = _conv_bn(in_ch, out_ch // 4, 3, leaky)
        self.conv5X5_2 = _conv_bn(out_ch // 4, out_ch // 4, 3, None)
        self.conv7X7_2 = _conv_bn(out_ch // 4, out_ch // 4, 3, leaky)
        self.conv7x7_3 = _conv_bn(out_ch // 4, out_ch // 4, 3, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c5 = self.conv5X5_1(x)
        out = torch.cat([self.conv3X3(x), self.conv5X5_2(c5), self.conv7x7_3(self.conv7X7_2(c5))], dim=1)
        return F.relu(out)


class Head(nn.Module):
    """1x1 conv predicting ``values`` numbers per anchor; output (B, H*W*anchors, values)."""

    def __init__(self, in_ch: int, anchors: int, values: int) -> None:
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(in_ch, anchors * values, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1x1(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.values)


class RetinaFace(nn.Module):
    """RetinaFace network: ``forward(x)`` -> ``(loc, conf (softmaxed), landmarks)``; see the module docstring."""

    def __init__(self, cfg: RetinaFaceConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or RetinaFaceConfig()
        self.body = ResNetBody(cfg.layers, cfg.width)
        self.fpn = FPN(self.body.out_channels, cfg.out_channels, cfg.leaky)
        self.ssh1 = SSH(cfg.out_channels, cfg.out_channels, cfg.leaky)
        self.ssh2 = SSH(cfg.out_channels, cfg.out_channels, cfg.leaky)
        self.ssh3 = SSH(cfg.out_channels, cfg.out_channels, cfg.leaky)
        self.ClassHead = nn.ModuleList(Head(cfg.out_channels, cfg.anchors, 2) for _ in range(3))
        self.BboxHead = nn.ModuleList(Head(cfg.out_channels, cfg.anchors, 4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(Head(cfg.out_channels, cfg.anchors, 10) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        levels = self.fpn(self.body(x))
        feats = [self.ssh1(levels[0]), self.ssh2(levels[1]), self.ssh3(levels[2])]
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, feats)], dim=1)
        conf = torch.cat([h(f) for h, f in zip(self.ClassHead, feats)], dim=1)
        landmarks = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats)], dim=1)
        return loc, F.softmax(conf, dim=-1), landmarks


_LAYER_BLOCK = re.compile(r"^body\.layer([1-4])\.(\d+)\.conv1\.weight$")


def config_from_state(state: StateDict) -> RetinaFaceConfig:
    """Read block counts and widths from a (prefix-free) checkpoint's tensor shapes."""
    counts = [0, 0, 0, 0]
    for key in state:
        m = _LAYER_BLOCK.match(key)
        if m:
            stage, block = int(m.group(1)) - 1, int(m.group(2))
            counts[stage] = max(counts[stage], block + 1)
    if not all(counts):
        raise ValueError("not a RetinaFace ResNet checkpoint: missing body.layer1..4")
    return RetinaFaceConfig(
        layers=tuple(counts),  # type: ignore[arg-type]
        width=state["body.conv1.weight"].shape[0],
        out_channels=state["fpn.output1.0.weight"].shape[0],
        anchors=state["ClassHead.0.conv1x1.weight"].shape[0] // 2,
    )


def build_from_state(state: StateDict) -> RetinaFace:
    """An un-loaded :class:`RetinaFace` matching ``state``; a DataParallel ``module.`` prefix is tolerated."""
    if any(k.startswith("module.") for k in state):
        state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    return RetinaFace(config_from_state(state))


CARD = ModelCard(
    "retinaface_resnet50", "RetinaFace ResNet-50 detector", build_from_state,
    CheckpointCard("raw", ("ClassHead.0.conv1x1.weight", "LandmarkHead.0.conv1x1.weight")),
    # CodeFormer's face helper (facexlib): BGR minus (104, 117, 123), no scaling, at any size.
    InputCard(channels="BGR", value_range=(0.0, 255.0), mean=(104.0, 117.0, 123.0)),
    PrecisionCard(cpu_int8=True, int8_float=("Head",), cast_weights=True),
)
