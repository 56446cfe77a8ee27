"""``--dtype int8``: the models the registry marks ``cpu_int8`` run quantized, within the stated bound.

Bound: on the parity inputs with the procedural weights (quantized as the runtime does it, calibrated on the
input itself), the mean error of every output is within ``INT8_MEAN_BOUND`` x its largest magnitude of the float32
reference (measured worst 3.0 % for S3FD's smallest class map, 1.4-1.9 % elsewhere); a broken layer is off by
10-100 %. Per-pixel errors reach 5-13 % (8 bits per activation), which is why int8 is asked for, never automatic.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lipsync_core.compute.quantize import Int8OnFirstCall
from lipsync_core.models.registry import CARDS
from tests.models.parity import arrays
from tests.models.test_cpu_bf16 import CASES, bf16_model

INT8_MEAN_BOUND = 0.04


@pytest.mark.parametrize("name", [n for n, spec in CARDS.items() if spec.precision.cpu_int8])
def test_int8_outputs_stay_within_the_bound(parity_dir, name):
    inputs, outputs = CASES[name]
    io = arrays(parity_dir, name)
    net = Int8OnFirstCall(bf16_model(parity_dir, name), keep_float=CARDS[name].float_classes())
    with torch.inference_mode():
        out = net(*(torch.from_numpy(io[k]) for k in inputs))
    out = out if isinstance(out, (tuple, list)) else (out,)
    for index, ref_name in outputs.items():
        ref = io[ref_name]
        mean = np.abs(out[index].float().numpy().astype(np.float64) - ref).mean() / np.abs(ref).max()
        assert mean <= INT8_MEAN_BOUND, f"{name}.{ref_name}: int8 mean error {mean:.3g} of max|ref|"


def test_the_detectors_and_super_resolution_are_the_int8_models():
    assert {n for n, spec in CARDS.items() if spec.precision.cpu_int8} == {"s3fd", "retinaface_resnet50", "rrdbnet_x4",
                                                                  "rrdbnet_x2"}


def test_the_model_is_quantized_once_on_its_first_call_and_reused():
    torch.manual_seed(0)
    net = Int8OnFirstCall(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU()).eval())
    with torch.inference_mode():
        first = net(torch.rand(2, 3, 16, 16))
        quantized = net.quantized
        net(torch.rand(3, 3, 20, 24))  # another batch and size: the same converted model
    assert quantized is net.quantized and net.float_module is None
    assert first.shape == (2, 8, 16, 16) and first.dtype == torch.float32
    assert any(".quantized." in type(m).__module__ for m in quantized.modules())  # int8 kernels, not float
