"""Procedural checkpoints in the published files' formats, for tests, benchmarks and the notebooks' test mode.

``write_checkpoint("wav2lip", path, wrapper="state_dict", legacy=True, module_prefix=True, optimizer=True)``
writes a file shaped like the released ``wav2lip.pth`` (legacy pickle, ``module.`` keys, Adam state), with
the parity formula's deterministic weights. Reduced configurations (``num_block=1`` for RRDBNet, a small
CodeFormer) go through the same registry path as the real ones.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .procedural import procedural_for_module

#: arch -> (class, its config dataclass or None for plain kwargs, fixed constructor kwargs)
_CLASSES: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "wav2lip": ("wav2lip:Wav2Lip", None, {}),
    "s3fd": ("s3fd:S3FD", None, {}),
    "syncnet_color": ("syncnet:SyncNetColor", None, {}),
    "disc_qual": ("disc_qual:DiscQual", None, {}),
    "syncnet_v2": ("syncnet_v2:SyncNetV2", None, {}),
    "rrdbnet_x4": ("rrdbnet:RRDBNet", None, {"scale": 4}),
    "rrdbnet_x2": ("rrdbnet:RRDBNet", None, {"scale": 2}),
    "bisenet19": ("bisenet:BiSeNet", None, {}),
    "codeformer": ("codeformer:CodeFormer", "codeformer:CodeFormerConfig", {}),
    "retinaface_resnet50": ("retinaface:RetinaFace", "retinaface:RetinaFaceConfig", {}),
    "parsenet": ("parsenet:ParseNet", "parsenet:ParseNetConfig", {}),
}


def _import(path: str) -> Any:
    module, name = path.split(":")
    return getattr(importlib.import_module("lipsync_core.models." + module), name)


#: The key each published file keeps its weights under (None: a bare state dict).
WRAPPERS = {"state_dict": "state_dict", "params": "params", "params_ema": "params_ema", "raw": None}


def procedural_module(arch: str, **config: Any) -> nn.Module:
    """``arch`` with procedural weights; ``config`` reduces it (RRDBNet kwargs, or the fields of the
    architecture's config dataclass, e.g. ``CodeFormerConfig``)."""
    cls_path, cfg_path, fixed = _CLASSES[arch]
    cls = _import(cls_path)
    model = cls(_import(cfg_path)(**config)) if cfg_path else cls(**fixed, **config)
    model.load_state_dict(procedural_for_module(model), strict=True)
    return model.eval()


def write_checkpoint(arch: str, path: str | Path, *, wrapper: str = "raw", legacy: bool = False,
                     module_prefix: bool = False, optimizer: bool = False, model: nn.Module | None = None,
                     **config: Any) -> Path:
    """Save ``arch``'s procedural weights (or ``model``'s) as a checkpoint file in a published format."""
    model = model if model is not None else procedural_module(arch, **config)
    state = {("module." + k if module_prefix else k): v.clone() for k, v in model.state_dict().items()}
    key = WRAPPERS[wrapper]
    obj: Any = state if key is None else {key: state}
    if optimizer:
        if key is None:
            raise ValueError("optimizer state needs a wrapper dict (e.g. wrapper='state_dict')")
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=1e-3)
        for p in params:  # one step's worth of Adam moments, as in a training checkpoint
            p.grad = torch.zeros_like(p)
        opt.step()
        obj.update(optimizer=opt.state_dict(), global_step=1000, global_epoch=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


#: S3FD's detection heads, finest first; ``conv3_3``'s confidence has three max-out background channels.
S3FD_HEADS = ("conv3_3_norm", "conv4_3_norm", "conv5_3_norm", "fc7", "conv6_2", "conv7_2")


@torch.no_grad()
def steady_s3fd(model: nn.Module, level: str = "conv7_2", face_prob: float = 0.88) -> nn.Module:
    """Make a procedural S3FD behave like real weights on a talking head, for benchmarks: every frame yields
    the same handful of candidates (the anchors of one coarse ``level``, boxes exactly on their anchors), so
    detection time is the network's, as with real weights, and boxes are steady from frame to frame, as a real
    face's are, so stride and interpolation behave as they would. Procedural weights as they are make every
    anchor a candidate (timing the NMS instead) and move the boxes at random (defeating interpolation)."""
    for head in S3FD_HEADS:
        conf, loc = getattr(model, f"{head}_mbox_conf"), getattr(model, f"{head}_mbox_loc")
        conf.weight.zero_()
        conf.bias.zero_()
        conf.bias[-1] = float(torch.logit(torch.tensor(face_prob))) if head == level else -20.0
        if head == level:
            loc.weight.zero_()
            loc.bias.zero_()
    return model


@torch.inference_mode()
def bias_retinaface_heads(model: nn.Module, net_input: torch.Tensor, candidates: int = 3,
                          threshold: float = 0.8) -> nn.Module:
    """Shift a procedural RetinaFace's face-class biases so ``net_input`` yields about ``candidates`` anchors
    above ``threshold`` (the detector's confidence cut), so the pipeline sees a few faces per frame."""
    _, conf, _ = model(net_input)
    diffs = (conf[..., 1].clamp_min(1e-12).log() - conf[..., 0].clamp_min(1e-12).log()).flatten()
    kth = torch.topk(diffs, min(candidates, diffs.numel())).values[-1]
    delta = float(torch.logit(torch.tensor(threshold)) - kth) + 1e-3
    for head in model.get_submodule("ClassHead").children():
        head.get_parameter("conv1x1.bias")[1::2] += delta  # channels are (background, face) per anchor
    return model
