"""Where models compute: the one owner of device, dtype and loaded models.

Every model of a run (detectors included) is loaded through :meth:`Runtime.model` and made ready to call by
:meth:`Runtime.handle` (a :class:`~lipsync_core.compute.handle.ModelHandle`: device, precision, int8, compile);
stages and detectors receive handles and never choose a device or a dtype themselves.
A runtime may outlive one run: a batch worker keeps one and reuses its models across jobs.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import torch
from torch import nn

from ..models.card import ModelCard
from ..support.errors import LipsyncError
from .handle import ModelHandle


@dataclass
class Runtime:
    """A device, a compute dtype, and the models loaded on them (keyed by architecture and file)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32  # compute dtype (float16 on CUDA where safe)
    # Models measured safe in bfloat16 (``PrecisionCard.cpu_bf16``) compute in it; the others, and anything not
    # named by its architecture (the sync scorer, training), in ``dtype``. Set by ``--dtype auto`` on a CPU with
    # native bf16 units.
    cpu_bf16: bool = False
    # ``--dtype int8``: the models with ``PrecisionCard.cpu_int8`` run quantized (lipsync_core.compute.quantize),
    # the others as under ``auto``.
    cpu_int8: bool = False
    _models: dict[tuple[str, str], nn.Module] = field(default_factory=dict, repr=False)
    _cards: dict[int, ModelCard | None] = field(default_factory=dict, repr=False)  # id(loaded module) -> its card
    _handles: dict[tuple[str, int, bool], tuple[nn.Module, ModelHandle]] = field(default_factory=dict, repr=False)

    @classmethod
    def resolve(cls, device: str = "auto", dtype: str = "auto") -> Runtime:
        """``auto`` picks CUDA when present. The compute dtype ``auto`` is float16 on CUDA; on CPU it is bfloat16
        for the models measured safe in it where the CPU has native bf16 units (AMX, AVX-512 BF16), float32
        otherwise. An explicit dtype applies to every model (``float32``: exact parity), except ``int8`` (CPU
        only): the detectors and super-resolution networks quantized, every other model as under ``auto``."""
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            dev = torch.device(device)
        except RuntimeError:
            raise LipsyncError(f"--device {device} is not a device; use auto, cpu, cuda or cuda:N") from None
        if dtype == "int8" and dev.type != "cpu":
            raise LipsyncError("--dtype int8 runs on the CPU only; on a GPU use --dtype auto (float16)")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise LipsyncError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
        bf16 = int8 = False
        if dtype == "int8":
            from .quantize import engine_available

            if not engine_available():
                raise LipsyncError("--dtype int8 needs PyTorch's x86 quantized engine, which this build of PyTorch "
                                   "lacks (not an x86 CPU?); use --dtype auto")
            dtype, int8 = "auto", True
        if dtype == "auto":
            from .hardware import cpu_bf16

            dtype = "float16" if dev.type == "cuda" else "float32"
            bf16 = dev.type == "cpu" and cpu_bf16()
        return cls(device=dev, dtype=getattr(torch, dtype), cpu_bf16=bf16, cpu_int8=int8)

    def card(self, arch: str | ModelCard | None) -> ModelCard | None:
        """The card of registry architecture ``arch`` (None: not a registry model, e.g. the anime cascade)."""
        if arch is None or isinstance(arch, ModelCard):
            return arch
        from ..models.registry import CARDS

        return CARDS.get(arch)

    def int8_for(self, arch: str | ModelCard | None) -> bool:
        """Whether architecture ``arch`` (its registry name or card) runs quantized to int8 here."""
        card = self.card(arch) if self.cpu_int8 else None
        return card is not None and card.precision.cpu_int8

    def dtype_for(self, arch: str | ModelCard | None) -> torch.dtype:
        """The compute dtype of architecture ``arch`` (None: a model outside the registry); float32 for an int8
        model, which quantizes its float input itself."""
        card = self.card(arch) if self.cpu_bf16 else None
        if card is not None and card.precision.cpu_bf16 and not self.int8_for(arch):
            return torch.bfloat16
        return self.dtype

    def precision_for(self, arch: str | ModelCard | None) -> str:
        """``int8``, or the name of :meth:`dtype_for` (e.g. a face-track cache key's detector precision)."""
        return "int8" if self.int8_for(arch) else str(self.dtype_for(arch)).removeprefix("torch.")

    def place(self, module: nn.Module) -> nn.Module:
        """``module`` on this device in eval mode, channels-last (faster convolutions on CPU, ``docs/notes.md``;
        the fast layout for cuDNN too). Weights stay float32: a handle applies the compute dtype."""
        module = module.to(self.device).eval()
        if not _four_d(module):  # 3D convolutions (SyncNet's lip tower): no 4D layout
            return module
        # Module.to takes memory_format at runtime; torch's overloads for it omit the keyword.
        return module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def model(self, arch: str, path: str | Path) -> nn.Module:
        """The registry architecture ``arch`` loaded from ``path`` and placed here (float32); loaded once per file.

        Callers that run it as a stage or detector ask :meth:`handle` (or :meth:`load`) for its handle."""
        key = (arch, str(Path(path).resolve()))
        if key not in self._models:
            from ..models import load

            self._models[key] = self.place(load(arch, path, device=self.device))
            self._cards[id(self._models[key])] = self.card(arch)
        return self._models[key]

    def load(self, arch: str, path: str | Path, *, compile: bool = False) -> ModelHandle:
        """The handle of architecture ``arch`` loaded from ``path``: :meth:`model`, then :meth:`handle`."""
        return self.handle(self.model(arch, path), compile=compile)

    def handle(self, module: nn.Module, card: ModelCard | None = None, *, compile: bool = False) -> ModelHandle:
        """``module`` ready to be called as architecture ``card`` here (default: the card it was loaded as by
        :meth:`model`), placed, in its compute dtype or int8, and with ``compile`` through ``torch.compile``.

        One handle per module and option: an int8 model converts on its first call and keeps the conversion for
        later calls and jobs. Weights cast to a low dtype (cards with ``cast_weights``) are a copy, so the shared
        module keeps float32 weights for its other users."""
        if card is None:
            card = self._cards.get(id(module))
            if card is None:
                raise ValueError("handle() needs the card of a module this runtime did not load")
        key = (card.name, id(module), compile)
        if key in self._handles:
            return self._handles[key][1]
        dtype = self.dtype_for(card)
        run = self.place(module)
        int8 = self.int8_for(card)
        if int8:
            from .quantize import Int8OnFirstCall

            run = Int8OnFirstCall(run, keep_float=card.float_classes())
        elif card.precision.cast_weights and dtype != torch.float32:
            run = copy.deepcopy(run).to(dtype=dtype)
        if compile:
            # Batches vary in size (faces per batch, the last batch): compile for dynamic shapes once.
            # Compiling a module gives an OptimizedModule (an nn.Module); the stub returns a plain callable.
            run = cast(nn.Module, torch.compile(run, dynamic=True))
        made = ModelHandle(card, run, self.device, dtype, int8=int8, channels_last=_four_d(module))
        self._handles[key] = (module, made)  # the module is held so that its id is not reused
        return made

    def release(self, arch: str, path: str | Path) -> None:
        """Forget a loaded model and its handles (its memory is freed once no stage holds it)."""
        module = self._models.pop((arch, str(Path(path).resolve())), None)
        if module is not None:
            self._cards.pop(id(module), None)
            for key in [k for k in self._handles if k[1] == id(module)]:
                del self._handles[key]


def _four_d(module: nn.Module) -> bool:
    """Whether ``module`` takes the 4D channels-last layout (no 3D convolution weights)."""
    return not any(p.dim() == 5 for p in module.parameters())
