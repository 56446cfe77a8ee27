"""``--dtype auto`` on CPU: bfloat16 for the models measured safe in it, on CPUs with native bf16 units only."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lipsync_core.compute import hardware
from lipsync_core.compute.runtime import Runtime
from lipsync_core.models.registry import CARDS
from lipsync_core.stages.base import Batch

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9654 96-Core Processor
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni
processor\t: 1
model name\t: ignored
flags\t\t: fpu
"""


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_bf16", lambda: True)


@pytest.fixture
def plain_cpu(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_bf16", lambda: False)


def test_cpuinfo_gives_the_first_processors_model_and_flags():
    model, flags = hardware.parse_cpuinfo(CPUINFO)
    assert model == "AMD EPYC 9654 96-Core Processor"
    assert {"avx512_bf16", "avx512f"} <= flags and "amx_bf16" not in flags


@pytest.mark.parametrize("flags, onednn, fast", [({"avx512_bf16"}, True, True), ({"amx_bf16", "amx_tile"}, True, True),
                                                 ({"avx512f"}, True, False), ({"avx512_bf16"}, False, False)])
def test_bf16_counts_as_fast_only_with_native_units_that_onednn_uses(flags, onednn, fast):
    assert hardware.CpuInfo("cpu", frozenset(flags), onednn).fast_bf16 is fast


def test_auto_on_a_bf16_cpu_runs_exactly_the_models_marked_safe_in_bfloat16(bf16_cpu):
    rt = Runtime.resolve("cpu", "auto")
    assert rt.dtype == torch.float32
    for name, card in CARDS.items():
        assert rt.dtype_for(name) == (torch.bfloat16 if card.precision.cpu_bf16 else torch.float32), name
        assert rt.dtype_for(card) == rt.dtype_for(name), name
    assert rt.dtype_for(None) == torch.float32  # models outside the registry (scorer, training) stay float32
    assert rt.dtype_for("wav2lip") == torch.bfloat16 and rt.dtype_for("syncnet_color") == torch.float32


def test_auto_without_native_bf16_and_explicit_float32_stay_float32_everywhere(plain_cpu, monkeypatch):
    assert {Runtime.resolve("cpu", "auto").dtype_for(name) for name in CARDS} == {torch.float32}
    monkeypatch.setattr(hardware, "cpu_bf16", lambda: True)
    assert {Runtime.resolve("cpu", "float32").dtype_for(name) for name in CARDS} == {torch.float32}


class AutocastProbe(nn.Module):
    """A stand-in generator that records the autocast state it is called under."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))
        self.seen: tuple[bool, torch.dtype] | None = None

    def forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        self.seen = (torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))
        return face[:, :3]


@pytest.mark.parametrize("dtype, expected", [("auto", (True, torch.bfloat16)), ("float32", (False, None))])
def test_the_sync_stage_runs_wav2lip_under_the_runtimes_choice(bf16_cpu, dtype, expected):
    from lipsync_core.stages.sync import SyncStage

    probe = AutocastProbe()
    stage = SyncStage(Runtime.resolve("cpu", dtype).handle(probe, CARDS["wav2lip"]))
    frame = np.zeros((64, 64, 3), np.uint8)
    stage(Batch(indices=[0], frames=[frame], boxes=[(0, 64, 0, 64)], mels=np.zeros((1, 80, 16), np.float32)))
    enabled, dt = probe.seen
    assert enabled is expected[0] and (not enabled or dt == expected[1])


def test_int8_quantizes_exactly_the_int8_models_and_runs_the_others_as_auto(bf16_cpu):
    rt, auto = Runtime.resolve("cpu", "int8"), Runtime.resolve("cpu", "auto")
    for name, card in CARDS.items():
        assert rt.int8_for(name) is card.precision.cpu_int8, name
        assert rt.dtype_for(name) == (torch.float32 if card.precision.cpu_int8 else auto.dtype_for(name)), name
    assert rt.precision_for("s3fd") == "int8" and rt.precision_for("wav2lip") == "bfloat16"
    assert not auto.int8_for("s3fd") and auto.precision_for("s3fd") == "float32"


def test_int8_models_get_handles_that_quantize_on_first_call(tmp_path):
    from lipsync_core.compute.quantize import Int8OnFirstCall
    from lipsync_core.testing.checkpoints import write_checkpoint

    rt = Runtime.resolve("cpu", "int8")
    path = write_checkpoint("s3fd", tmp_path / "s3fd.pth")
    handle = rt.load("s3fd", path)
    s3fd = handle.module
    assert isinstance(s3fd, Int8OnFirstCall) and handle.int8 and handle.precision == "int8"
    assert s3fd.keep_float == CARDS["s3fd"].float_classes() and s3fd.keep_float[0].__name__ == "L2Norm"
    assert not isinstance(rt.model("s3fd", path), Int8OnFirstCall)  # the shared module stays float32
    assert rt.load("s3fd", path) is handle  # one conversion per loaded model, kept for later jobs


def test_int8_on_a_gpu_is_refused_with_one_line():
    from lipsync_core.support.errors import LipsyncError

    with pytest.raises(LipsyncError, match=r"^--dtype int8 runs on the CPU only; on a GPU use --dtype auto"):
        Runtime.resolve("cuda", "int8")
