"""The S3FD face detector network (Zhang et al. 2017), with the parameter names of ``s3fd.pth``.

Written from the original's published layout: a VGG16 trunk (conv1_1..conv5_3, five 2x2 max-pools),
``fc6``/``fc7`` as convolutions (fc6: 3x3 with padding 3), two extra stride-2 stages, L2-normalised
conv3_3/conv4_3/conv5_3 features, and a classification + box-regression head on each of the six maps
(strides 4 to 128). Decoding (softmax, anchors, NMS) belongs to the detector in ``face/``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .card import CheckpointCard, InputCard, ModelCard, PrecisionCard

#: VGG16 stages as (name, in channels, out channels); each stage ends with a 2x2 max-pool.
_VGG = ((("conv1_1", 3, 64), ("conv1_2", 64, 64)),
        (("conv2_1", 64, 128), ("conv2_2", 128, 128)),
        (("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256)),
        (("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512)),
        (("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512)))
_FIRST_TAPPED_STAGE = 2  # the outputs (before the pool) of conv3_3, conv4_3 and conv5_3 feed heads
#: The six maps that carry a head (name prefix of the head's keys) and their channels.
_HEADS = (("conv3_3_norm", 256), ("conv4_3_norm", 512), ("conv5_3_norm", 512),
          ("fc7", 1024), ("conv6_2", 512), ("conv7_2", 256))


class L2Norm(nn.Module):
    """Per-position L2 normalisation over channels, then a learned per-channel scale."""

    eps = 1e-10

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The squared sum over channels can overflow float16 on real activations, so normalise in float32.
        xf = x.float()
        norm = xf.pow(2).sum(dim=1, keepdim=True).sqrt() + self.eps
        return (xf / norm * self.weight.float().view(1, -1, 1, 1)).to(x.dtype)


class S3FD(nn.Module):
    """``forward(x (B,3,H,W)) -> [cls1, reg1, ..., cls6, reg6]``.

    ``x`` is a float image with the per-channel means ``(104, 117, 123)`` subtracted, no scaling. Class
    maps have 2 channels (background, face) as logits; regression maps 4. Map k has stride ``2**(k+2)``
    (the ``fc7`` map is slightly larger than H/32 because fc6 pads by 3).
    """

    def __init__(self) -> None:
        super().__init__()
        for stage in _VGG:
            for name, cin, cout in stage:
                self.add_module(name, nn.Conv2d(cin, cout, 3, 1, 1))
        self.fc6 = nn.Conv2d(512, 1024, 3, 1, 3)
        self.fc7 = nn.Conv2d(1024, 1024, 1, 1, 0)
        self.conv6_1 = nn.Conv2d(1024, 256, 1, 1, 0)
        self.conv6_2 = nn.Conv2d(256, 512, 3, 2, 1)
        self.conv7_1 = nn.Conv2d(512, 128, 1, 1, 0)
        self.conv7_2 = nn.Conv2d(128, 256, 3, 2, 1)
        self.conv3_3_norm = L2Norm(256, 10.0)
        self.conv4_3_norm = L2Norm(512, 8.0)
        self.conv5_3_norm = L2Norm(512, 5.0)
        for name, channels in _HEADS:
            # conv3_3's classifier has 3 background logits + 1 face logit ("max-out background").
            self.add_module(f"{name}_mbox_conf", nn.Conv2d(channels, 4 if name == "conv3_3_norm" else 2, 3, 1, 1))
            self.add_module(f"{name}_mbox_loc", nn.Conv2d(channels, 4, 3, 1, 1))

    def _relu_convs(self, h: torch.Tensor, *names: str) -> torch.Tensor:
        for name in names:
            h = getattr(self, name)(h).relu_()  # in place: the conv output is fresh, no second buffer
        return h

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        h = x
        for i, stage in enumerate(_VGG):
            h = self._relu_convs(h, *(name for name, _, _ in stage))
            if i >= _FIRST_TAPPED_STAGE:
                taps.append(h)
            h = F.max_pool2d(h, 2, 2)
        for names in (("fc6", "fc7"), ("conv6_1", "conv6_2"), ("conv7_1", "conv7_2")):
            h = self._relu_convs(h, *names)
            taps.append(h)
        taps[0] = self.conv3_3_norm(taps[0])
        taps[1] = self.conv4_3_norm(taps[1])
        taps[2] = self.conv5_3_norm(taps[2])

        out = []
        for (name, _), feat in zip(_HEADS, taps):
            out += [getattr(self, f"{name}_mbox_conf")(feat), getattr(self, f"{name}_mbox_loc")(feat)]
        cls1 = out[0]
        out[0] = torch.cat((cls1[:, :3].amax(dim=1, keepdim=True), cls1[:, 3:]), dim=1)
        return out


def build_from_state(state: dict[str, torch.Tensor]) -> S3FD:
    """An unloaded :class:`S3FD` (nothing to read from ``state``)."""
    return S3FD()


CARD = ModelCard(
    "s3fd", "S3FD face detector", build_from_state,
    CheckpointCard("raw", ("conv3_3_norm_mbox_conf.weight", "fc7.weight")),
    # The original's preprocessing: RGB order minus (104, 117, 123), no scaling, at any size.
    InputCard(channels="RGB", value_range=(0.0, 255.0), mean=(104.0, 117.0, 123.0)),
    PrecisionCard(cpu_int8=True, int8_float=("L2Norm",), cast_weights=True),
)
