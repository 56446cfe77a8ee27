"""BiSeNet face parsing (19 classes), the face-parsing network used by Wav2Lip-HQ for its blend mask.

Context path: a ResNet-18 backbone (no ImageNet download: the checkpoint holds every weight)
whose stride-16 and stride-32 features are refined by attention and added top-down; the
backbone's stride-8 features stand in for the spatial path. A feature-fusion module merges the
two stride-8 streams. Parameter names follow the published ``79999_iter.pth`` checkpoint.

Classes (index: name): 0 background, 1 skin, 2 l_brow, 3 r_brow, 4 l_eye, 5 r_eye, 6 eye_g,
7 l_ear, 8 r_ear, 9 ear_r, 10 nose, 11 mouth, 12 u_lip, 13 l_lip, 14 neck, 15 neck_l, 16 cloth,
17 hair, 18 hat.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from .card import CheckpointCard, InputCard, ModelCard, PrecisionCard

#: Input normalisation the checkpoint was trained with (RGB in [0, 1], ImageNet statistics).
MEAN_RGB = (0.485, 0.456, 0.406)
STD_RGB = (0.229, 0.224, 0.225)
#: The network downsamples by 32, so inputs must be a multiple of it; Wav2Lip-HQ feeds 512x512.
STRIDE = 32


class ConvBNReLU(nn.Sequential):
    """Bias-free convolution, batch norm, ReLU (a Sequential, so inference can fold the norm into the conv)."""

    def __init__(self, in_ch: int, out_ch: int, ks: int = 3, stride: int = 1, padding: int = 1) -> None:
        super().__init__(OrderedDict(conv=nn.Conv2d(in_ch, out_ch, ks, stride, padding, bias=False),
                                     bn=nn.BatchNorm2d(out_ch), relu=nn.ReLU(inplace=True)))


class BasicBlock(nn.Module):
    """ResNet basic block; a strided 1x1 projection on the shortcut when the shape changes."""

    fold_pairs = (("conv1", "bn1"), ("conv2", "bn2"))  # see models.fuse

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = None
        if in_ch != out_ch or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


def _stage(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(in_ch, out_ch, stride), BasicBlock(out_ch, out_ch, 1))


class ResNet18(nn.Module):
    """ResNet-18 trunk returning the stride-8, -16 and -32 feature maps (no pooling head)."""

    fold_pairs = (("conv1", "bn1"),)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _stage(64, 64, 1)
        self.layer2 = _stage(64, 128, 2)
        self.layer3 = _stage(128, 256, 2)
        self.layer4 = _stage(256, 512, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.layer1(self.maxpool(F.relu(self.bn1(self.conv1(x)))))
        feat8 = self.layer2(x)
        feat16 = self.layer3(feat8)
        feat32 = self.layer4(feat16)
        return feat8, feat16, feat32


def _global_pool(x: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, 1)


class AttentionRefinement(nn.Module):
    """3x3 conv, then channel re-weighting by a sigmoid of the globally pooled features."""

    fold_pairs = (("conv_atten", "bn_atten"),)

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_ch, out_ch)
        self.conv_atten = nn.Conv2d(out_ch, out_ch, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(_global_pool(feat))))


class ContextPath(nn.Module):
    """Backbone plus top-down refinement; returns (stride-8 backbone, stride-8 context, stride-16 context)."""

    def __init__(self) -> None:
        super().__init__()
        self.resnet = ResNet18()
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128)
        self.conv_head16 = ConvBNReLU(128, 128)
        self.conv_avg = ConvBNReLU(512, 128, ks=1, padding=0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        # Global context (a 1x1 map) broadcast over the stride-32 grid, as a nearest upsampling would.
        up32 = self.arm32(feat32) + self.conv_avg(_global_pool(feat32))
        up32 = self.conv_head32(F.interpolate(up32, size=feat16.shape[2:], mode="nearest"))
        up16 = self.arm16(feat16) + up32
        up16 = self.conv_head16(F.interpolate(up16, size=feat8.shape[2:], mode="nearest"))
        return feat8, up16, up32


class FeatureFusion(nn.Module):
    """Concatenate two streams, 1x1 conv, then add a channel-attention-weighted copy."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(in_ch, out_ch, ks=1, padding=0)
        self.conv1 = nn.Conv2d(out_ch, out_ch // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_ch // 4, out_ch, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], 1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(_global_pool(feat)))))
        return feat * atten + feat


class SegmentationHead(nn.Module):
    """3x3 ConvBNReLU then a bias-free 1x1 classifier."""

    def __init__(self, in_ch: int, mid_ch: int, n_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_ch, mid_ch)
        self.conv_out = nn.Conv2d(mid_ch, n_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """``(B, 3, H, W)`` normalised RGB (H, W multiples of 32) -> ``(out, aux16, aux32)`` logits, each
    ``(B, n_classes, H, W)``. Only ``out`` is used for parsing; the auxiliary heads exist because the
    checkpoint holds them (strict loading)."""

    def __init__(self, n_classes: int = 19) -> None:
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = SegmentationHead(256, 256, n_classes)
        self.conv_out16 = SegmentationHead(128, 64, n_classes)
        self.conv_out32 = SegmentationHead(128, 64, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        size = x.shape[2:]
        feat8, context8, context16 = self.cp(x)
        fused = self.ffm(feat8, context8)
        heads = (self.conv_out(fused), self.conv_out16(context8), self.conv_out32(context16))
        out, out16, out32 = (F.interpolate(h, size=size, mode="bilinear", align_corners=True) for h in heads)
        return out, out16, out32


def build_from_state(state: dict[str, torch.Tensor]) -> BiSeNet:
    """An (unloaded) BiSeNet with as many classes as the checkpoint's classifier has outputs."""
    return BiSeNet(n_classes=state["conv_out.conv_out.weight"].shape[0])


CARD = ModelCard(
    "bisenet19", "BiSeNet face parsing (19 classes)", build_from_state,
    CheckpointCard("raw", ("cp.resnet.conv1.weight", "conv_out.conv_out.weight")),
    InputCard(channels="RGB", value_range=(0.0, 1.0), mean=MEAN_RGB, std=STD_RGB, size=512),
    PrecisionCard(cpu_bf16=True, float_outputs=False),
)
