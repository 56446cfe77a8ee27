"""The card of an architecture: the facts about it that its loaders and its callers need, declared once beside it.

Each architecture module declares its ``CARD`` (or ``CARDS``, when one module serves several published
architectures); :mod:`.registry` collects them. A card says how the network is fed (:class:`InputCard`), how
its checkpoints are recognised and read (:class:`CheckpointCard`) and how it may compute below float32
(:class:`PrecisionCard`). Consumers derive their preprocessing from it instead of repeating sizes, colour
orders and normalisations.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np
import torch
from torch import nn

from .checkpoints import StateDict

Pixels = TypeVar("Pixels", np.ndarray, torch.Tensor)


@dataclass(frozen=True)
class InputCard:
    """How the network's image input is made from uint8 pixels.

    ``channels``: the colour order the network was trained on. ``value_range``: what pixel values 0..255 map to
    before the mean/std (``(0, 255)``: the pixels as they are; ``(0, 1)``: divided by 255; ``(-1, 1)``:
    divided by 127.5, minus 1). ``mean`` / ``std``: per channel in the network's order and in those units,
    subtracted then divided. ``size``: the square input side it was trained at (None: any size, or, for an
    architecture whose size is part of its checkpoint, the loaded module's ``img_size``).
    ``output_range``: the value range of an image output, if it has one.
    """

    channels: Literal["BGR", "RGB"] = "RGB"
    value_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    size: int | None = None
    output_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        lo, hi = self.value_range
        if self.value_range != (0.0, 255.0) and lo not in (0.0, -hi):
            raise ValueError(f"value range {self.value_range} is neither (0, hi) nor (-hi, hi)")

    def from_bgr(self, x: Pixels) -> Pixels:
        """``x`` (channels last, BGR) in the network's colour order; the same swap turns its outputs back to BGR."""
        if self.channels == "BGR":
            return x
        return x.flip(-1) if isinstance(x, torch.Tensor) else x[..., ::-1]

    to_bgr = from_bgr

    def normalise(self, x: Pixels) -> Pixels:
        """Float pixels 0..255 (in the network's colour order) -> the network's values: numpy arrays channels last,
        tensors (N, C, H, W). Only the operations the card needs are applied, in the form the reference code uses."""
        lo, hi = self.value_range
        if (lo, hi) != (0.0, 255.0):
            x = x / (255.0 / hi) if lo == 0.0 else x / (255.0 / (hi - lo)) - hi
        if any(self.mean):
            x = x - self._per_channel(self.mean, x)
        if any(s != 1.0 for s in self.std):
            x = x / self._per_channel(self.std, x)
        return x

    def to_unit(self, y: torch.Tensor) -> torch.Tensor:
        """An image output in ``output_range`` -> clamped and mapped to [0, 255] floats (not rounded)."""
        lo, hi = self.output_range or (0.0, 1.0)
        return (y.clamp(lo, hi) - lo) * (255.0 / (hi - lo))

    @staticmethod
    def _per_channel(values: tuple[float, ...], x: Pixels) -> Pixels:
        if isinstance(x, torch.Tensor):
            return torch.tensor(values, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
        return np.asarray(values, np.float32)


@dataclass(frozen=True)
class CheckpointCard:
    """How a published checkpoint of the architecture is read and recognised."""

    convention: str  # default checkpoint convention, see manifest.CONVENTIONS
    signature: tuple[str, ...]  # keys whose joint presence identifies a checkpoint of this architecture
    # (key, shape) pairs a checkpoint must also have, None matching any size: tells apart architectures
    # that share key names (RRDBNet x4 / x2 differ only in conv_first's input channels).
    signature_shapes: tuple[tuple[str, tuple[int | None, ...]], ...] = ()
    torchscript: bool = False  # also published as a TorchScript export whose state_dict has these keys
    # Last name components of buffers a published file may lack (then zero-filled): BatchNorm's
    # ``num_batches_tracked`` counter is unused in eval mode and absent from files saved before torch 0.4.1.
    optional: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrecisionCard:
    """Where the architecture may compute below float32, and what stays float32 then."""

    # bfloat16 autocast is measured safe on CPU (tests/models/test_cpu_bf16.py holds the bound); used only where
    # the CPU has native bf16 units (lipsync_core.compute.hardware), float32 everywhere else.
    cpu_bf16: bool = False
    # Runs quantized to int8 under ``--dtype int8`` (CPU; lipsync_core.compute.quantize); ``int8_float`` names
    # the module classes (of the architecture's module) that stay float32 there.
    cpu_int8: bool = False
    int8_float: tuple[str, ...] = ()
    # A low compute dtype is applied by casting the weights and the input (the detectors, as the reference
    # code runs them) instead of by autocast.
    cast_weights: bool = False
    # Outputs are returned in float32. False where every caller only takes an argmax, which the compute dtype
    # gives unchanged (the parsers).
    float_outputs: bool = True


@dataclass(frozen=True)
class ModelCard:
    """One architecture: its registry name, builder, input, checkpoint and precision facts."""

    name: str
    description: str
    builder: Callable[[StateDict], nn.Module]  # state dict -> unloaded module, sized from the tensors' shapes
    checkpoint: CheckpointCard
    input: InputCard = field(default_factory=InputCard)
    precision: PrecisionCard = field(default_factory=PrecisionCard)

    def build(self, state: StateDict) -> nn.Module:
        return self.builder(state)

    def float_classes(self) -> tuple[type[nn.Module], ...]:
        """The classes named by ``precision.int8_float``."""
        module = importlib.import_module(self.builder.__module__)
        return tuple(getattr(module, name) for name in self.precision.int8_float)

    def matches(self, state: StateDict) -> bool:
        """Whether ``state`` (prefix-stripped) looks like a checkpoint of this architecture."""
        if not all(key in state for key in self.checkpoint.signature):
            return False
        for key, shape in self.checkpoint.signature_shapes:
            have = tuple(state[key].shape) if key in state else None
            if have is None or len(have) != len(shape) or any(s is not None and s != h for s, h in zip(shape, have)):
                return False
        return True
