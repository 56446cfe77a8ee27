"""Model registry: name -> architecture builder and checkpoint convention.

Builders take the (already unwrapped, prefix-stripped) state dict and return an un-loaded module
whose configuration is read from the tensors' shapes where the architecture allows (e.g. the
RRDBNet block count), so reduced test checkpoints go through exactly the same path as real ones.
Builders are referenced by import path so that importing the registry imports no architecture.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from .checkpoints import StateDict


@dataclass(frozen=True)
class ModelSpec:
    """How to build and load one architecture."""

    name: str
    builder: str  # "module:function", function(state_dict) -> nn.Module
    convention: str  # default checkpoint convention, see manifest.CONVENTIONS
    signature: tuple[str, ...]  # keys whose joint presence identifies a checkpoint of this architecture
    description: str
    # (key, shape) pairs a checkpoint must also have, None matching any size: tells apart architectures
    # that share key names (RRDBNet x4 / x2 differ only in conv_first's input channels).
    signature_shapes: tuple[tuple[str, tuple[int | None, ...]], ...] = ()
    torchscript: bool = False  # also published as a TorchScript export whose state_dict has these keys
    # Last name components of buffers a published file may lack (then zero-filled): BatchNorm's
    # ``num_batches_tracked`` counter is unused in eval mode and absent from files saved before torch 0.4.1.
    optional: tuple[str, ...] = ()
    # bfloat16 autocast is measured safe for this model on CPU (tests/models/test_cpu_bf16.py holds the bound);
    # used only where the CPU has native bf16 units (lipsync_core.compute.hardware), float32 everywhere else.
    cpu_bf16: bool = False
    # Runs quantized to int8 under ``--dtype int8`` (CPU; lipsync_core.compute.quantize); ``int8_float`` names the
    # module classes of the builder's module that stay float32 there.
    cpu_int8: bool = False
    int8_float: tuple[str, ...] = ()

    def float_classes(self) -> tuple[type[nn.Module], ...]:
        """The classes named by ``int8_float``."""
        module = importlib.import_module(self.builder.split(":")[0])
        return tuple(getattr(module, name) for name in self.int8_float)

    def build(self, state: StateDict) -> nn.Module:
        module, func = self.builder.split(":")
        fn: Callable[[StateDict], nn.Module] = getattr(importlib.import_module(module), func)
        return fn(state)

    def matches(self, state: StateDict) -> bool:
        """Whether ``state`` (prefix-stripped) looks like a checkpoint of this architecture."""
        if not all(key in state for key in self.signature):
            return False
        for key, shape in self.signature_shapes:
            have = tuple(state[key].shape) if key in state else None
            if have is None or len(have) != len(shape) or any(s is not None and s != h for s, h in zip(shape, have)):
                return False
        return True


_P = "lipsync_core.models."

SPECS: dict[str, ModelSpec] = {s.name: s for s in (
    ModelSpec("wav2lip", _P + "wav2lip:build_from_state", "state_dict",
              ("audio_encoder.0.conv_block.0.weight", "face_decoder_blocks.0.0.conv_block.0.weight"),
              "Wav2Lip generator", torchscript=True, cpu_bf16=True),
    ModelSpec("s3fd", _P + "s3fd:build_from_state", "raw",
              ("conv3_3_norm_mbox_conf.weight", "fc7.weight"), "S3FD face detector", cpu_int8=True,
              int8_float=("L2Norm",)),
    ModelSpec("syncnet_color", _P + "syncnet:build_from_state", "state_dict",
              ("face_encoder.0.conv_block.0.weight", "audio_encoder.0.conv_block.0.weight"),
              "Wav2Lip lip-sync expert (SyncNet)"),
    ModelSpec("disc_qual", _P + "disc_qual:build_from_state", "state_dict",
              ("face_encoder_blocks.1.1.conv_block.0.weight", "binary_pred.0.weight"),
              "Wav2Lip visual quality discriminator"),
    ModelSpec("rrdbnet_x4", _P + "rrdbnet:build_from_state", "params_ema",
              ("conv_first.weight", "body.0.rdb1.conv1.weight", "conv_up2.weight"), "ESRGAN RRDBNet x4",
              signature_shapes=(("conv_first.weight", (None, 3, 3, 3)),), cpu_bf16=True, cpu_int8=True),
    ModelSpec("rrdbnet_x2", _P + "rrdbnet:build_from_state", "params_ema",
              ("conv_first.weight", "body.0.rdb1.conv1.weight", "conv_up1.weight"), "ESRGAN RRDBNet x2",
              signature_shapes=(("conv_first.weight", (None, 12, 3, 3)),), cpu_bf16=True, cpu_int8=True),
    ModelSpec("bisenet19", _P + "bisenet:build_from_state", "raw",
              ("cp.resnet.conv1.weight", "conv_out.conv_out.weight"), "BiSeNet face parsing (19 classes)",
              cpu_bf16=True),
    ModelSpec("codeformer", _P + "codeformer:build_from_state", "params_ema",
              ("position_emb", "quantize.embedding.weight"), "CodeFormer face restoration", cpu_bf16=True),
    ModelSpec("retinaface_resnet50", _P + "retinaface:build_from_state", "raw",
              ("ClassHead.0.conv1x1.weight", "LandmarkHead.0.conv1x1.weight"), "RetinaFace ResNet-50 detector",
              cpu_int8=True, int8_float=("Head",)),
    ModelSpec("syncnet_v2", _P + "syncnet_v2:build_from_state", "raw",
              ("netcnnaud.0.weight", "netcnnlip.0.weight", "netfclip.3.weight"), "SyncNet v2 (LSE-D/LSE-C scorer)",
              optional=("num_batches_tracked",)),
    ModelSpec("parsenet", _P + "parsenet:build_from_state", "raw",
              ("out_mask_conv.conv2d.weight", "encoder.0.conv2d.weight"), "ParseNet face parsing", cpu_bf16=True),
)}


@dataclass(frozen=True)
class FileSpec:
    """A weight that is not a torch checkpoint (no state dict, nothing to build): how the weights cache checks it.

    Its manifest ``arch`` is ``name``; the code that uses the file reads it itself (e.g. ``face.anime``).
    """

    name: str
    validator: str  # "module:function", function(path) raising LipsyncError when the file is unusable
    description: str

    def validate(self, path: Path) -> None:
        module, func = self.validator.split(":")
        getattr(importlib.import_module(module), func)(Path(path))


FILE_SPECS: dict[str, FileSpec] = {s.name: s for s in (
    FileSpec("opencv_cascade", _P + "cascade:validate", "OpenCV cascade classifier (XML)"),
)}
