"""What this machine's CPU can do fast: bfloat16 matrix units (AMX, AVX-512 BF16) as oneDNN uses them.

Nothing is probed at import; :func:`cpu_bf16` reads the CPU flags once (Linux ``/proc/cpuinfo``) and asks
PyTorch whether its oneDNN build runs bfloat16 on this CPU. Used to choose bfloat16 autocast per model on CPU
(see ``PrecisionCard.cpu_bf16``), where it roughly halves convolution time on CPUs with these units.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

#: CPU flags (as Linux names them) of native bfloat16 dot products: AMX tiles, or AVX-512 BF16 (Cooper Lake,
#: Sapphire Rapids and later, AMD Zen 4 and later).
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
_CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's model name, its bfloat16-relevant flags, and whether oneDNN runs bfloat16 on it."""

    model: str
    flags: frozenset[str]
    onednn_bf16: bool

    @property
    def bf16_units(self) -> tuple[str, ...]:
        """The native bfloat16 units present, e.g. ``("amx_bf16", "avx512_bf16")``; empty if none."""
        return tuple(f for f in BF16_FLAGS if f in self.flags)

    @property
    def fast_bf16(self) -> bool:
        """bfloat16 convolutions and matmuls run natively (not emulated) here."""
        return self.onednn_bf16 and bool(self.bf16_units)

    def describe(self) -> str:
        units = "+".join(self.bf16_units) or "no native bf16"
        return f"{self.model} ({units}; oneDNN bf16 {'yes' if self.onednn_bf16 else 'no'})"


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """(model name, flags) of the first processor in a ``/proc/cpuinfo`` text."""
    model = ""
    flags: frozenset[str] = frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return model, flags


@lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    """This machine's :class:`CpuInfo` (read once). Without ``/proc/cpuinfo`` (macOS, Windows) no flags are
    known, so bfloat16 is never considered fast there."""
    model = ""
    flags: frozenset[str] = frozenset()
    try:
        model, flags = parse_cpuinfo(_CPUINFO.read_text(errors="replace"))
    except OSError:
        pass
    return CpuInfo(model=model or platform.processor() or platform.machine(), flags=flags,
                   onednn_bf16=_onednn_bf16())


def cpu_bf16() -> bool:
    """Whether bfloat16 autocast is worth using on this CPU (native bf16 units that oneDNN uses)."""
    return cpu_info().fast_bf16


def _onednn_bf16() -> bool:
    if not torch.backends.mkldnn.is_available():
        return False
    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(probe()) if probe is not None else False
    except RuntimeError:
        return False
