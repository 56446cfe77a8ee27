"""Where models compute: the one owner of device, dtype and loaded models.

Every model of a run (detectors included) is loaded through :meth:`Runtime.model` and placed by
:meth:`Runtime.place`; stages and detectors receive ready modules and never choose a device themselves.
A runtime may outlive one run: a batch worker keeps one and reuses its models across jobs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..support.errors import LipsyncError


@dataclass
class Runtime:
    """A device, a compute dtype, and the models loaded on them (keyed by architecture and file)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32  # compute dtype (float16 on CUDA where safe)
    # Models measured safe in bfloat16 (``ModelSpec.cpu_bf16``) compute in it; the others, and anything not
    # named by its architecture (the sync scorer, training), in ``dtype``. Set by ``--dtype auto`` on a CPU with
    # native bf16 units.
    cpu_bf16: bool = False
    # ``--dtype int8``: the models with ``ModelSpec.cpu_int8`` run quantized (lipsync_core.compute.quantize), the others
    # as under ``auto``.
    cpu_int8: bool = False
    _models: dict[tuple[str, str], nn.Module] = field(default_factory=dict, repr=False)

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

    def _spec(self, arch: str | None):
        from ..models.registry import SPECS

        return None if arch is None else SPECS.get(arch)  # None: not a torch model (the anime cascade)

    def int8_for(self, arch: str | None) -> bool:
        """Whether registry architecture ``arch`` runs quantized to int8 here."""
        spec = self._spec(arch) if self.cpu_int8 else None
        return spec is not None and spec.cpu_int8

    def dtype_for(self, arch: str | None) -> torch.dtype:
        """The compute dtype of registry architecture ``arch`` (None: a model outside the registry); float32
        for an int8 model, which quantizes its float input itself."""
        spec = self._spec(arch) if self.cpu_bf16 else None
        if spec is not None and spec.cpu_bf16 and not self.int8_for(arch):
            return torch.bfloat16
        return self.dtype

    def precision_for(self, arch: str | None) -> str:
        """``int8``, or the name of :meth:`dtype_for` (e.g. a face-track cache key's detector precision)."""
        return "int8" if self.int8_for(arch) else str(self.dtype_for(arch)).removeprefix("torch.")

    def autocast_for(self, arch: str | None):
        """Autocast context for ``arch``'s compute dtype (a no-op for float32)."""
        dtype = self.dtype_for(arch)
        return torch.autocast(device_type=self.device.type, dtype=dtype, enabled=dtype != torch.float32)

    @property
    def autocast(self):
        """Autocast context for the run's base compute dtype (a no-op for float32)."""
        return self.autocast_for(None)

    def place(self, module: nn.Module) -> nn.Module:
        """``module`` on this device in eval mode, channels-last (15-40 % faster convolutions on CPU, measured for
        Wav2Lip, RRDBNet, BiSeNet and S3FD; the fast layout for cuDNN too). Weights stay float32: the compute
        dtype applies through :attr:`autocast`."""
        module = module.to(self.device).eval()
        if any(p.dim() == 5 for p in module.parameters()):  # 3D convolutions (SyncNet's lip tower): no 4D layout
            return module
        return module.to(memory_format=torch.channels_last)

    def model(self, arch: str, path: str | Path) -> nn.Module:
        """The registry architecture ``arch`` loaded from ``path`` and placed here; loaded once per file."""
        key = (arch, str(Path(path).resolve()))
        if key not in self._models:
            from ..models import load

            self._models[key] = self.ready(arch, load(arch, path, device=self.device))
        return self._models[key]

    def ready(self, arch: str, module: nn.Module) -> nn.Module:
        """``module``, of registry architecture ``arch``, placed, and wrapped to run in int8 if it does here."""
        module = self.place(module)
        if self.int8_for(arch):
            from ..models.registry import SPECS
            from .quantize import Int8OnFirstCall

            module = Int8OnFirstCall(module, keep_float=SPECS[arch].float_classes())
        return module

    def release(self, arch: str, path: str | Path) -> None:
        """Forget a loaded model (its memory is freed once no stage holds it)."""
        self._models.pop((arch, str(Path(path).resolve())), None)
