"""A model ready to be called: one module with its card, device and precision, made by the runtime.

Stages and detectors call a :class:`ModelHandle` as they would call the module; the handle applies what the
runtime decided for the architecture (device, channels-last input, inference mode, the autocast of its
compute dtype or its weights cast to it, int8) so that no consumer names an architecture or a dtype.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from ..models.card import ModelCard


class ModelHandle:
    """``handle(*inputs, **options)``: the module's outputs, computed as the card and the runtime say.

    Tensor inputs go to ``device`` (4-D ones channels-last when the module is laid out so, floating ones cast
    to ``dtype`` where the card casts weights); the forward runs under ``inference_mode`` and, unless the card
    casts weights, the autocast of ``dtype``. Outputs come back float32 when the card asks for float outputs.
    Built by :meth:`lipsync_core.compute.runtime.Runtime.handle`.
    """

    def __init__(self, card: ModelCard, module: nn.Module, device: torch.device, dtype: torch.dtype, *,
                 int8: bool = False, channels_last: bool = True) -> None:
        self.card = card
        self.module = module  # what is called: the placed module, or its int8 or compiled form
        self.device = device
        #: The compute dtype (float32 for an int8 model, which quantizes its float input itself). With a card
        #: that casts weights it is also the dtype the input is given in.
        self.dtype = dtype
        self.int8 = int8
        self.channels_last = channels_last

    @property
    def precision(self) -> str:
        """``int8`` or the compute dtype's name (e.g. a face-track cache key's detector precision)."""
        return "int8" if self.int8 else str(self.dtype).removeprefix("torch.")

    @property
    def input_dtype(self) -> torch.dtype:
        """The dtype the module's weights take input in: ``dtype`` where the card casts weights, else float32."""
        return self.dtype if self.card.precision.cast_weights else torch.float32

    @property
    def input_size(self) -> int | None:
        """The square input side: the card's, or for an architecture sized by its checkpoint the module's."""
        if self.card.input.size is not None:
            return self.card.input.size
        size = getattr(self.module, "img_size", None)
        return None if size is None else int(size)

    def _input(self, x: Any) -> Any:
        if not isinstance(x, torch.Tensor):
            return x
        x = x.to(self.device, non_blocking=True)
        if self.card.precision.cast_weights and x.is_floating_point():
            x = x.to(self.dtype)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _autocast(self) -> AbstractContextManager[Any]:
        if self.card.precision.cast_weights or self.dtype == torch.float32:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def __call__(self, *inputs: Any, **options: Any) -> Any:
        with torch.inference_mode():
            with self._autocast():
                out = self.module(*(self._input(x) for x in inputs), **options)
            return _float(out) if self.card.precision.float_outputs else out

    def __repr__(self) -> str:
        return f"ModelHandle({self.card.name}, {self.device}, {self.precision})"


def _float(out: Any) -> Any:
    """``out`` with every floating tensor in it (also inside tuples and lists) as float32."""
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (tuple, list)):
        return type(out)(_float(o) for o in out)
    return out
